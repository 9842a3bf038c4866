"""``GET /metrics``: Prometheus text format (HTTP metrics from Litestar's plugin plus the service's own)."""

from __future__ import annotations

import hmac
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from service.api.auth import EXCLUDE_OPT_KEY, token_from_header
from service.api.state import Services

# Route templates, not raw paths, keep the label set small; the scrape itself is not counted.
HTTP_METRICS = PrometheusConfig(app_name="facerec", prefix="facerec_http", group_path=True, exclude=["^/metrics"])


@get("/metrics", opt={EXCLUDE_OPT_KEY: True}, include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Response[bytes]:
    """Every metric; protected by ``FACEREC_METRICS_TOKEN`` (``Authorization: Bearer ...``) when that is set."""
    expected = services.settings.metrics_token
    if expected:
        given = token_from_header(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise NotAuthorizedException("A valid metrics token is required")
    services.metrics.set_index_sizes(services.gallery.store.loaded_domains())
    body = generate_latest(REGISTRY) + generate_latest(services.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
