"""Token authentication middleware and the admin guard."""

from __future__ import annotations

import time
from collections import defaultdict, deque
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


class FailedAuthLimiter:
    """Sliding one-minute window of failed authentications per client address."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def _trim(self, client: str, now: float) -> deque[float]:
        window = self._failures[client]
        while window and now - window[0] > 60:
            window.popleft()
        return window

    def retry_after(self, client: str) -> int | None:
        """Seconds until this client may try again, or None if it is not limited."""
        now = time.monotonic()
        window = self._trim(client, now)
        if len(window) < self.per_minute:
            if not window:
                self._failures.pop(client, None)
            return None
        return max(1, int(60 - (now - window[0])) + 1)

    def record_failure(self, client: str) -> None:
        """Count one failed attempt."""
        now = time.monotonic()
        if len(self._failures) >= MAX_TRACKED_CLIENTS:
            # Many addresses failing once each must not grow memory without bound: forget the quiet ones.
            for quiet in [c for c, w in self._failures.items() if not w or now - w[-1] > 60]:
                del self._failures[quiet]
        self._failures[client].append(now)


class TokenAuthMiddleware(AbstractAuthenticationMiddleware):
    """Resolve the request's token to a :class:`Principal` stored as ``request.user``."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        state = connection.app.state
        limiter: FailedAuthLimiter = state.auth_limiter
        client = connection.client.host if connection.client else "unknown"
        retry_after = limiter.retry_after(client)
        if retry_after is not None:
            raise TooManyRequestsException(
                "Too many failed authentication attempts; try again later",
                headers={"Retry-After": str(retry_after)},
            )
        token = token_from_header(connection.headers.get("authorization"))
        if token is None:
            limiter.record_failure(client)
            raise NotAuthorizedException("Missing Authorization header with an API token")
        sessions: sessionmaker[Session] = state.sessions
        principal = await anyio.to_thread.run_sync(_authenticate, sessions, token)
        if principal is None:
            limiter.record_failure(client)
            raise NotAuthorizedException("Invalid or revoked API token")
        return AuthenticationResult(user=principal, auth=token)


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
