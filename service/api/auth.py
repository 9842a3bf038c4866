"""Token authentication middleware and the admin guard."""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import anyio
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from sqlalchemy.orm import Session, sessionmaker

from service.db.tokens import Principal, authenticate
from service.settings import Settings

EXCLUDE_OPT_KEY = "exclude_from_auth"


def token_from_header(value: str | None) -> str | None:
    """The token of an ``Authorization: <token>`` or ``Authorization: Bearer <token>`` header."""
    if not value:
        return None
    value = value.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    return value or None


MAX_TRACKED_CLIENTS = 10_000
WINDOW_SECONDS = 60.0


def client_key(host: str) -> str:
    """The key failures are counted under: the address, or for IPv6 its /64 (one host usually holds all of it)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return host


class FailedAuthLimiter:
    """Failed authentications per client in a sliding window, in bounded memory and O(1) time per failure.

    A client keeps only its last ``per_minute`` failure times (the oldest of them says whether and how long it
    is limited). Clients are ordered by their latest failure, so the stalest is forgotten first, in O(1): when
    its failures have left the window, or when ``max_clients`` are tracked.
    """

    def __init__(
        self,
        per_minute: int,
        *,
        window: float = WINDOW_SECONDS,
        max_clients: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        """How many clients are tracked."""
        return len(self._failures)

    def retry_after(self, client: str) -> int | None:
        """Seconds until this client may try again, or None if it is not limited."""
        now = self._clock()
        self._forget_quiet(now)
        failures = self._failures.get(client)
        if failures is None or len(failures) < self.per_minute:
            return None
        wait = self.window - (now - failures[0])
        return math.ceil(wait) if wait > 0 else None

    def record_failure(self, client: str) -> None:
        """Count one failed attempt."""
        now = self._clock()
        failures = self._failures.get(client)
        if failures is None:
            failures = self._failures[client] = deque(maxlen=self.per_minute)
        else:
            self._failures.move_to_end(client)
        failures.append(now)
        self._forget_quiet(now)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def _forget_quiet(self, now: float) -> None:
        # The first client has the oldest latest failure: once that left the window, none of its failures count.
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if now - oldest[-1] < self.window:
                return
            self._failures.popitem(last=False)


class TokenAuthMiddleware(AbstractAuthenticationMiddleware):
    """Resolve the request's token to a :class:`Principal` stored as ``request.user``."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        state = connection.app.state
        token = token_from_header(connection.headers.get("authorization"))
        if token is not None:
            sessions: sessionmaker[Session] = state.sessions
            principal = await anyio.to_thread.run_sync(_authenticate, sessions, token)
            # A valid token always passes: the limiter keys on addresses, which proxies and NAT share.
            if principal is not None:
                return AuthenticationResult(user=principal, auth=token)
        limiter: FailedAuthLimiter = state.auth_limiter
        # The address uvicorn reports: the socket's peer, or X-Forwarded-For only from FACEREC_TRUSTED_PROXIES.
        client = client_key(connection.client.host if connection.client else "unknown")
        retry_after = limiter.retry_after(client)
        if retry_after is not None:
            # Not counted: the client may try again after Retry-After, and the table does not grow for it.
            raise TooManyRequestsException(
                "Too many failed authentication attempts; try again later",
                headers={"Retry-After": str(retry_after)},
            )
        limiter.record_failure(client)
        if token is None:
            raise NotAuthorizedException("Missing Authorization header with an API token")
        raise NotAuthorizedException("Invalid or revoked API token")


def _authenticate(sessions: sessionmaker[Session], token: str) -> Principal | None:
    with sessions.begin() as session:
        return authenticate(session, token)


PUBLIC_PATHS = ["^/api/docs"]


def auth_middleware() -> DefineMiddleware:
    """The middleware; API docs, static assets and routes with ``opt={"exclude_from_auth": True}`` stay public."""
    return DefineMiddleware(TokenAuthMiddleware, exclude=PUBLIC_PATHS, exclude_from_auth_key=EXCLUDE_OPT_KEY)


def admin_only(connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler) -> None:
    """Guard: only admin tokens may pass."""
    principal: Principal = connection.user
    if not principal.is_admin:
        raise PermissionDeniedException("This action requires an admin token")


def create_auth_limiter(settings: Settings) -> FailedAuthLimiter:
    """The per-app failed-authentication limiter."""
    return FailedAuthLimiter(settings.auth_failures_per_minute)
