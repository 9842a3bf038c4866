"""Swagger UI for ``/api/docs`` with its scripts and styles served by this server, so the docs work offline."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from service.api.auth import EXCLUDE_OPT_KEY

# The swagger-ui-bundle-v2 wheel ships Swagger UI's dist folder, named after its version (swagger-ui-5.31.0).
SWAGGER_UI_DIR = Path(swagger_ui_path)
ASSETS_PATH = "/assets"
# No favicon request at all (Litestar's default icon comes from a CDN).
NO_FAVICON = "<link rel='icon' href='data:,'>"
# The version is part of every asset URL, so browsers may keep the files for as long as they like.
ASSETS_CACHE = CacheControlHeader(max_age=365 * 24 * 3600, public=True)


class OfflineSwaggerRenderPlugin(SwaggerRenderPlugin):
    """Swagger UI whose JavaScript and CSS come from ``<docs path>/assets/swagger-ui-<version>/`` (no CDN)."""

    def __init__(self) -> None:
        super().__init__(favicon=NO_FAVICON)

    def receive_router(self, router: Router) -> None:
        """Serve the assets beside the docs page (public, as the page is) and point the page at them."""
        super().receive_router(router)
        base = f"{router.path.rstrip('/')}{ASSETS_PATH}/{SWAGGER_UI_DIR.name}"
        self.js_url = f"{base}/swagger-ui-bundle.js"
        self.css_url = f"{base}/swagger-ui.css"
        self.standalone_preset_js_url = f"{base}/swagger-ui-standalone-preset.js"
        router.register(
            create_static_files_router(
                path=ASSETS_PATH,
                directories=[SWAGGER_UI_DIR.parent],
                name="swagger-ui-assets",
                cache_control=ASSETS_CACHE,
                include_in_schema=False,
                opt={EXCLUDE_OPT_KEY: True},
            )
        )
