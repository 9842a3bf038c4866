"""Cross-origin access: which other web pages may call the API from a browser (FACEREC_CORS_ALLOW_ORIGINS)."""

from __future__ import annotations

from litestar.config.cors import CORSConfig

from service.settings import Settings


def cors_config(settings: Settings) -> CORSConfig | None:
    """Litestar's CORS for the configured origins; None (no CORS headers at all: same origin only) when unset.

    Litestar answers preflights before routing and authentication, and adds the headers to every response
    (errors included), so a page on an allowed origin can send ``Authorization`` and read any answer.
    """
    origins = settings.cors_origins
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type"],
        # The CSV's file name, and when to retry after a 429 or 503.
        expose_headers=["Content-Disposition", "Retry-After"],
        max_age=600,
    )
