"""Every error leaves the server as ``{"success": false, "error": "<message>"}``."""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR, HTTP_503_SERVICE_UNAVAILABLE

from service.batches.runner import OverloadedError

logger = logging.getLogger("service.api")


def error_response(status_code: int, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    """The JSON error body every failing endpoint answers with."""
    return Response(
        content={"success": False, "error": message},
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


EXCEPTION_HANDLERS: dict[Any, Any] = {
    OverloadedError: overloaded_handler,
    HTTPException: http_exception_handler,
    Exception: internal_error_handler,
}
