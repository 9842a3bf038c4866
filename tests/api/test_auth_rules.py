"""Authentication rules: the two header forms, which routes are public, the admin guard, and the failed-login
limiter (per client, per minute, only failures counted). The middleware runs in a small in-process app on a real
SQLite database, so no server and no models are needed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.datastructures import State
from litestar.testing import TestClient
from sqlalchemy.orm import Session, sessionmaker

from service.api.auth import (
    MAX_TRACKED_CLIENTS,
    WINDOW_SECONDS,
    FailedAuthLimiter,
    admin_only,
    auth_middleware,
    client_key,
    create_auth_limiter,
    token_from_header,
)
from service.db.tokens import Principal, create_token, revoke_token
from service.settings import Settings

LIMIT = 3


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# ----- the header ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("frk_abc", "frk_abc"),
        ("Bearer frk_abc", "frk_abc"),
        ("bearer frk_abc", "frk_abc"),
        ("BEARER   frk_abc  ", "frk_abc"),
        ("  frk_abc  ", "frk_abc"),
        ("Token frk_abc", "Token frk_abc"),  # only Bearer is a scheme; anything else is the token as sent
        ("Bearer", None),
        ("Bearer   ", None),
        ("   ", None),
        ("", None),
        (None, None),
    ],
)
def test_the_token_is_the_header_value_with_or_without_the_bearer_scheme(header: str | None, token: str | None) -> None:
    assert token_from_header(header) == token


# ----- client addresses -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("testclient", "testclient"),
        ("unknown", "unknown"),
    ],
)
def test_failures_are_counted_per_ipv4_address_and_per_ipv6_64_network(host: str, key: str) -> None:
    assert client_key(host) == key


# ----- the limiter ----------------------------------------------------------------------------------------
def test_a_client_is_limited_once_it_fails_per_minute_times_within_the_window() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(LIMIT, clock=clock)
    for _ in range(LIMIT - 1):
        limiter.record_failure("a")
        clock.now += 10
    assert limiter.retry_after("a") is None
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 40  # the oldest counted failure (20 s ago) leaves the window in 40 s
    assert limiter.retry_after("b") is None


def test_retry_after_rounds_up_and_ends_exactly_when_the_oldest_failure_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(2, clock=clock)
    limiter.record_failure("a")
    clock.now += 0.25
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 60  # 59.75 s, rounded up
    clock.now += 59.0
    assert limiter.retry_after("a") == 1  # 0.75 s
    clock.now += 0.75
    assert limiter.retry_after("a") is None


def test_only_the_last_per_minute_failures_count() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(2, clock=clock)
    for _ in range(5):
        limiter.record_failure("a")
        clock.now += 20
    # failures at 0, 20, 40, 60, 80 s; now 100 s: the last two (60, 80) count -> free at 120 s
    assert limiter.retry_after("a") == 20


def test_the_window_is_a_minute_by_default() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(1, clock=clock)
    limiter.record_failure("a")
    clock.now += 59.5
    assert limiter.retry_after("a") == 1
    clock.now += 0.5
    assert limiter.retry_after("a") is None
    assert WINDOW_SECONDS == 60.0


def test_a_client_whose_failures_left_the_window_is_forgotten() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(LIMIT, window=10, clock=clock)
    limiter.record_failure("a")
    limiter.record_failure("b")
    clock.now += 5
    limiter.record_failure("b")
    clock.now += 5  # a's only failure is 10 s old: out of the window; b's last one is 5 s old
    assert limiter.retry_after("c") is None
    assert len(limiter) == 1
    clock.now += 4.9
    limiter.record_failure("c")
    assert len(limiter) == 2
    clock.now += 0.1
    assert limiter.retry_after("c") is None
    assert len(limiter) == 1


def test_at_the_cap_the_client_that_failed_least_recently_is_forgotten_first() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(1, max_clients=3, clock=clock)
    for client in ("a", "b", "c"):
        limiter.record_failure(client)
    limiter.record_failure("a")  # a failed again: b is now the least recent
    limiter.record_failure("d")
    assert len(limiter) == 3
    assert limiter.retry_after("b") is None
    assert all(limiter.retry_after(client) is not None for client in ("a", "c", "d"))


def test_the_limiter_tracks_ten_thousand_clients_at_most_by_default() -> None:
    limiter = FailedAuthLimiter(1)
    for number in range(MAX_TRACKED_CLIENTS + 5):
        limiter.record_failure(str(number))
    assert len(limiter) == MAX_TRACKED_CLIENTS == 10_000


def test_the_app_s_limiter_takes_its_rate_from_the_settings(settings: Settings) -> None:
    limiter = create_auth_limiter(settings.model_copy(update={"auth_failures_per_minute": 2}))
    limiter.record_failure("a")
    assert limiter.retry_after("a") is None
    limiter.record_failure("a")
    assert limiter.retry_after("a") == 60
    assert (limiter.window, limiter.max_clients) == (60.0, 10_000)


# ----- the middleware and the admin guard -----------------------------------------------------------------
@get("/api/whoami", sync_to_thread=False)
def whoami(request: Request[Principal, str, Any]) -> dict[str, Any]:
    return {"token_id": request.user.token_id, "domain": request.user.domain, "role": request.user.role}


@get("/api/admin-only", guards=[admin_only], sync_to_thread=False)
def admin_route() -> str:
    return "ok"


@get("/api/docs/page", sync_to_thread=False)
def docs_page() -> str:
    return "docs"


@get("/api/open", opt={"exclude_from_auth": True}, sync_to_thread=False)
def open_route() -> str:
    return "open"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> FailedAuthLimiter:
    return FailedAuthLimiter(LIMIT, clock=clock)


@pytest.fixture
def http(sessions: sessionmaker[Session], limiter: FailedAuthLimiter) -> Iterator[TestClient[Litestar]]:
    app = Litestar(
        route_handlers=[whoami, admin_route, docs_page, open_route],
        middleware=[auth_middleware()],
        state=State({"sessions": sessions, "auth_limiter": limiter}),
    )
    with TestClient(app) as client:
        yield client


def token(sessions: sessionmaker[Session], role: str = "user", domain: str = "example.com") -> tuple[int, str]:
    with sessions.begin() as session:
        row, secret = create_token(session, domain, role)  # type: ignore[arg-type]
        return row.id, secret


@pytest.mark.parametrize("form", ["{}", "Bearer {}"])
def test_a_valid_token_in_either_form_is_the_request_s_principal(
    http: TestClient[Litestar], sessions: sessionmaker[Session], form: str
) -> None:
    token_id, secret = token(sessions, "admin", "acme.test")
    response = http.get("/api/whoami", headers={"Authorization": form.format(secret)})
    assert response.status_code == 200
    assert response.json() == {"token_id": token_id, "domain": "acme.test", "role": "admin"}


def test_a_request_without_a_token_is_401_and_says_the_header_is_missing(http: TestClient[Litestar]) -> None:
    response = http.get("/api/whoami")
    assert response.status_code == 401
    assert response.json()["detail"] == "Missing Authorization header with an API token"


def test_an_unknown_or_revoked_token_is_401(http: TestClient[Litestar], sessions: sessionmaker[Session]) -> None:
    token_id, secret = token(sessions)
    with sessions.begin() as session:
        revoke_token(session, token_id)
    for value in ("frk_not-a-token", secret, f"Bearer {secret}"):
        response = http.get("/api/whoami", headers={"Authorization": value})
        assert response.status_code == 401
        assert response.json()["detail"] == "Invalid or revoked API token"


def test_repeated_failures_get_429_with_retry_after_and_the_refusals_are_not_counted(
    http: TestClient[Litestar], limiter: FailedAuthLimiter, clock: FakeClock
) -> None:
    bad = {"Authorization": "frk_wrong"}
    for _ in range(LIMIT):
        assert http.get("/api/whoami", headers=bad).status_code == 401
        clock.now += 1
    refused = http.get("/api/whoami", headers=bad)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "57"  # the first failure, 3 s ago, leaves the window in 57 s
    assert refused.json()["detail"] == "Too many failed authentication attempts; try again later"
    assert http.get("/api/whoami").status_code == 429  # a missing token is a failure too
    clock.now += 57
    assert http.get("/api/whoami", headers=bad).status_code == 401  # the refusals did not extend the wait
    assert len(limiter) == 1


def test_a_valid_token_passes_from_a_limited_address(
    http: TestClient[Litestar], sessions: sessionmaker[Session]
) -> None:
    _, secret = token(sessions)
    for _ in range(LIMIT + 1):
        http.get("/api/whoami", headers={"Authorization": "frk_wrong"})
    assert http.get("/api/whoami", headers={"Authorization": secret}).status_code == 200


def test_a_valid_token_is_not_counted_as_a_failure(
    http: TestClient[Litestar], sessions: sessionmaker[Session], limiter: FailedAuthLimiter
) -> None:
    _, secret = token(sessions)
    for _ in range(LIMIT + 2):
        assert http.get("/api/whoami", headers={"Authorization": secret}).status_code == 200
    assert len(limiter) == 0


def test_api_docs_and_routes_marked_public_need_no_token(
    http: TestClient[Litestar], limiter: FailedAuthLimiter
) -> None:
    assert http.get("/api/docs/page").text == "docs"
    assert http.get("/api/open").text == "open"
    assert len(limiter) == 0


def test_only_an_admin_token_passes_the_admin_guard(
    http: TestClient[Litestar], sessions: sessionmaker[Session]
) -> None:
    _, user = token(sessions, "user")
    _, admin = token(sessions, "admin")
    refused = http.get("/api/admin-only", headers={"Authorization": user})
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This action requires an admin token"
    assert http.get("/api/admin-only", headers={"Authorization": admin}).status_code == 200


def call(
    app: Litestar, client: tuple[str, int] | None, authorization: bytes = b"frk_wrong"
) -> tuple[int, dict[str, str]]:
    """One GET /api/whoami straight through ASGI, from ``client`` (None: a connection without a peer address)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/whoami",
        "raw_path": b"/api/whoami",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", authorization)],
        "client": client,
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    start = sent[0]
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}


@pytest.fixture
def app(sessions: sessionmaker[Session], limiter: FailedAuthLimiter) -> Litestar:
    return Litestar(
        route_handlers=[whoami],
        middleware=[auth_middleware()],
        state=State({"sessions": sessions, "auth_limiter": limiter}),
    )


def test_each_client_address_has_its_own_count(app: Litestar) -> None:
    for _ in range(LIMIT):
        assert call(app, ("192.0.2.1", 5000))[0] == 401
    assert call(app, ("192.0.2.1", 5001))[0] == 429  # another port, same address
    assert call(app, ("192.0.2.2", 5000))[0] == 401
    assert call(app, ("2001:db8::1", 5000))[0] == 401


def test_clients_of_one_ipv6_64_network_share_a_count(app: Litestar) -> None:
    for host in ("2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1::3"):
        assert call(app, (host, 5000))[0] == 401
    assert call(app, ("2001:db8:0:1:ffff::9", 5000))[0] == 429
    assert call(app, ("2001:db8:0:2::1", 5000))[0] == 401


def test_connections_without_a_peer_address_share_one_count(app: Litestar) -> None:
    for _ in range(LIMIT):
        assert call(app, None)[0] == 401
    status, headers = call(app, None)
    assert (status, headers["retry-after"]) == (429, "60")
    assert call(app, ("192.0.2.1", 5000))[0] == 401
