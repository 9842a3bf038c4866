"""``GET /metrics``: Prometheus text format (HTTP metrics from Litestar's plugin plus the service's own).

With several server workers the figures are those of every worker (see :meth:`ServiceMetrics.exposition`).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.auth import EXCLUDE_OPT_KEY, token_from_header
from service.api.state import Services

# Route templates, not raw paths, keep the label set small; the scrape itself is not counted. The plugin makes
# its metrics in the worker process, which starts with PROMETHEUS_MULTIPROC_DIR set when there are several
# workers, so they are shared between workers like the service's own.
HTTP_METRICS = PrometheusConfig(app_name="facerec", prefix="facerec_http", group_path=True, exclude=["^/metrics"])


def is_loopback(host: str | None) -> bool:
    """Whether a client address is this machine's loopback."""
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@get("/metrics", opt={EXCLUDE_OPT_KEY: True}, include_in_schema=False, sync_to_thread=False)
def metrics(request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Response[bytes]:
    """Every metric. With ``FACEREC_METRICS_TOKEN`` set it needs ``Authorization: Bearer <it>``; without, only
    loopback clients may scrape (the figures name every tenant's domain)."""
    expected = services.settings.metrics_token
    if expected:
        given = token_from_header(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise NotAuthorizedException("A valid metrics token is required")
    elif not is_loopback(request.client.host if request.client else None):
        raise PermissionDeniedException("Metrics are served to loopback only; set FACEREC_METRICS_TOKEN to scrape")
    services.metrics.set_index_sizes(services.gallery.store.loaded_domains())
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
