"""The failed-login limiter: only failures are limited, per real client address, in bounded memory and time."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from service.api.auth import FailedAuthLimiter, client_key
from service.recognition.faces import FaceModel
from service.server import trusted_proxy_list
from service.settings import Settings
from tests.conftest import LiveServer, auth

LIMIT = 3
BAD = auth("frk_not_a_real_token")


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fail(http: httpx.Client, times: int, headers: dict[str, str] | None = None) -> list[int]:
    """Status codes of ``times`` requests with a wrong token."""
    return [http.get("/api/auth/me", headers={**BAD, **(headers or {})}).status_code for _ in range(times)]


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_failures_per_minute": LIMIT})


# ----- over HTTP ----------------------------------------------------------------------------------------
def test_repeated_failures_from_one_address_get_429_with_retry_after(limited: Settings, face_model: FaceModel) -> None:
    with LiveServer(limited, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        assert fail(http, LIMIT) == [401] * LIMIT
        refused = http.get("/api/auth/me", headers=BAD)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["success"] is False


def test_a_valid_token_still_works_from_a_limited_address(
    limited: Settings, face_model: FaceModel, tokens: Callable[..., str]
) -> None:
    good = tokens("example.com", "user")
    with LiveServer(limited, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        assert fail(http, LIMIT + 1)[-1] == 429
        response = http.get("/api/auth/me", headers=auth(good))
    assert response.status_code == 200
    assert response.json()["domain"] == "example.com"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "frk_another_guess"}], ids=["missing", "invalid"])
def test_a_limited_address_without_a_valid_token_gets_429(
    limited: Settings, face_model: FaceModel, headers: dict[str, str]
) -> None:
    with LiveServer(limited, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        fail(http, LIMIT)
        response = http.get("/api/auth/me", headers=headers)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


def test_without_trusted_proxies_a_rotating_x_forwarded_for_does_not_escape_the_limit(
    limited: Settings, face_model: FaceModel
) -> None:
    assert limited.trusted_proxies == ""  # the default: nobody's forwarded headers are believed
    with LiveServer(limited, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        codes = [
            http.get("/api/auth/me", headers={**BAD, "X-Forwarded-For": f"198.51.100.{n}"}).status_code
            for n in range(LIMIT + 2)
        ]
    assert codes == [401] * LIMIT + [429, 429]  # all counted against the socket's address, 127.0.0.1


def test_a_trusted_proxy_s_x_forwarded_for_names_the_client(limited: Settings, face_model: FaceModel) -> None:
    behind_proxy = limited.model_copy(update={"trusted_proxies": "127.0.0.1"})
    alice, bob = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
    with LiveServer(behind_proxy, model=face_model) as server, httpx.Client(base_url=server.url) as http:
        assert fail(http, LIMIT + 1, alice)[-1] == 429
        assert fail(http, 1, bob) == [401]  # another client behind the same proxy is not limited


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    assert trusted_proxy_list(" 127.0.0.1, 10.0.0.0/8 ,::1") == ["127.0.0.1", "10.0.0.0/8", "::1"]
    assert trusted_proxy_list("") == []
    with pytest.raises(ValueError, match="localhost"):
        trusted_proxy_list("localhost")


# ----- the limiter itself, on a fake clock --------------------------------------------------------------
def test_an_address_is_limited_after_per_minute_failures_within_a_minute() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(per_minute=LIMIT, clock=clock)
    for _ in range(LIMIT - 1):
        limiter.record_failure("192.0.2.1")
        clock.advance(1)
    assert limiter.retry_after("192.0.2.1") is None
    limiter.record_failure("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") is not None
    assert limiter.retry_after("192.0.2.2") is None


def test_retry_after_counts_down_to_when_the_oldest_counted_failure_leaves_the_window() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(per_minute=2, clock=clock)
    limiter.record_failure("192.0.2.1")
    clock.advance(10)
    limiter.record_failure("192.0.2.1")
    assert limiter.retry_after("192.0.2.1") == 50
    clock.advance(49.5)
    assert limiter.retry_after("192.0.2.1") == 1
    clock.advance(0.5)
    assert limiter.retry_after("192.0.2.1") is None


def test_failures_spread_wider_than_the_window_never_limit() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(per_minute=LIMIT, clock=clock)
    for _ in range(100):
        limiter.record_failure("192.0.2.1")
        clock.advance(60 / (LIMIT - 1))
        assert limiter.retry_after("192.0.2.1") is None


def test_memory_stays_at_the_cap_however_many_addresses_fail() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(per_minute=LIMIT, max_clients=1000, clock=clock)
    for number in range(50_000):
        limiter.record_failure(f"10.{number >> 16}.{(number >> 8) & 255}.{number & 255}")
    assert len(limiter) == 1000


def test_at_the_cap_the_address_that_failed_least_recently_is_forgotten_first() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(per_minute=LIMIT, max_clients=10, clock=clock)
    for _ in range(LIMIT):
        limiter.record_failure("192.0.2.1")  # limited, and keeps trying below
    for number in range(100):
        limiter.record_failure(f"10.0.0.{number}")
        limiter.record_failure("192.0.2.1")
    assert len(limiter) == 10
    assert limiter.retry_after("192.0.2.1") is not None


def test_addresses_whose_failures_left_the_window_are_forgotten() -> None:
    clock = FakeClock()
    limiter = FailedAuthLimiter(per_minute=LIMIT, clock=clock)
    for number in range(500):
        limiter.record_failure(f"10.0.{number >> 8}.{number & 255}")
    clock.advance(61)
    limiter.record_failure("192.0.2.1")
    assert len(limiter) == 1


def test_a_failure_costs_the_same_with_a_full_table() -> None:
    # The old limiter scanned its whole table per failure once full: this loop took minutes with it.
    limiter = FailedAuthLimiter(per_minute=30, max_clients=10_000)
    started = time.perf_counter()
    for number in range(200_000):
        limiter.record_failure(f"10.{number >> 16}.{(number >> 8) & 255}.{number & 255}")
    assert len(limiter) == 10_000
    assert time.perf_counter() - started < 10  # about 0.3 s here


def test_ipv6_clients_are_counted_by_their_64_network() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("unknown") == "unknown"
