"""Every error leaves the server as ``{"success": false, "error": "<message>"}``."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_404_NOT_FOUND,
    HTTP_409_CONFLICT,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from sqlalchemy import exc as sa_exc

from service.common.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    NothingUsableError,
    ServiceError,
)
from service.common.runner import OverloadedError

logger = logging.getLogger("service.api")
DATABASE_RETRY_AFTER = 5  # seconds a client should wait before retrying while the database is unreachable
DATABASE_UNAVAILABLE = "Database unavailable"


def error_response(
    status_code: int, message: str, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
) -> Response[Any]:
    """The JSON error body every failing endpoint answers with (``extra`` adds detail fields)."""
    return Response(
        content={"success": False, "error": message, **(extra or {})},
        status_code=status_code,
        media_type=MediaType.JSON,
        headers=headers,
    )


def _validation_message(exc: ValidationException) -> str:
    details = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = item.get("key")
            text = item.get("message", "")
            details.append(f"{key}: {text}" if key else str(text))
    return f"Invalid request: {'; '.join(details)}" if details else exc.detail


def http_exception_handler(_request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Map Litestar HTTP exceptions (404, 405, 400, 401, 403, 413, ...) to the JSON error body."""
    message = _validation_message(exc) if isinstance(exc, ValidationException) else exc.detail
    return error_response(exc.status_code, message, headers=exc.headers)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Log unexpected errors in full, answer without internals."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(HTTP_500_INTERNAL_SERVER_ERROR, "Internal server error")


def overloaded_handler(_request: Request[Any, Any, Any], exc: OverloadedError) -> Response[Any]:
    """A full work queue: 503 with the queue's expected wait as ``Retry-After``."""
    return error_response(HTTP_503_SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": str(exc.retry_after)})


SERVICE_ERROR_STATUS: dict[type[ServiceError], int] = {
    NotFoundError: HTTP_404_NOT_FOUND,
    ConflictError: HTTP_409_CONFLICT,
    InvalidInputError: HTTP_400_BAD_REQUEST,
    NothingUsableError: HTTP_400_BAD_REQUEST,
}


def service_error_handler(_request: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    """A use case refused the request: its status by error class, its message, and per-file reasons if any."""
    status = next((code for kind, code in SERVICE_ERROR_STATUS.items() if isinstance(exc, kind)), HTTP_400_BAD_REQUEST)
    return error_response(status, str(exc), extra=exc.details or None)


def database_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database cannot be used right now (down, unreachable, out of connections)
    rather than a fault in a query."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection came free within db_pool_timeout
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        # OperationalError: refused/lost connections, server shutting down, SQLite busy or locked.
        # InterfaceError: the driver's connection is already closed.
        return exc.connection_invalidated or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return False


def database_error_handler(request: Request[Any, Any, Any], exc: sa_exc.SQLAlchemyError) -> Response[Any]:
    """An unreachable database is a 503 with ``Retry-After`` (the pool reconnects by itself); any other SQL
    error is a 500."""
    if not database_unavailable(exc):
        return internal_error_handler(request, exc)
    # One line, no traceback: an outage makes every request fail the same way.
    logger.warning("database unavailable on %s %s: %s", request.method, request.url.path, str(exc).splitlines()[0])
    return error_response(
        HTTP_503_SERVICE_UNAVAILABLE, DATABASE_UNAVAILABLE, headers={"Retry-After": str(DATABASE_RETRY_AFTER)}
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    ServiceError: service_error_handler,
    OverloadedError: overloaded_handler,
    sa_exc.SQLAlchemyError: database_error_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
