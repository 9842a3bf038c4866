"""Serve the web page and its static assets."""

from __future__ import annotations

from pathlib import Path

from litestar import Router, get
from litestar.di import NamedDependency
from litestar.response import Template
from litestar.static_files import create_static_files_router

from service import __version__
from service.api.auth import EXCLUDE_OPT_KEY
from service.api.state import Services

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

# The page only talks to its own origin; data never becomes markup (the script builds DOM nodes).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@get(["/", "/web"], opt={EXCLUDE_OPT_KEY: True}, include_in_schema=False, sync_to_thread=False)
def page(services: NamedDependency[Services]) -> Template:
    """The single-page web app shell."""
    settings = services.settings
    return Template(
        template_name="index.html",
        context={
            "version": __version__,
            "max_batch_size": settings.max_batch_size,
            "max_file_mb": settings.max_file_mb,
        },
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def web_router() -> Router:
    """The page and ``/static/*`` (public: they hold no data; the data comes from the API with a token)."""
    static = create_static_files_router(
        path="/static", directories=[STATIC_DIR], opt={EXCLUDE_OPT_KEY: True}, include_in_schema=False
    )
    return Router(path="/", route_handlers=[page, static])
