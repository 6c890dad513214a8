"""``GET /metrics``: Prometheus exposition (public, or behind ``server.metrics_token``)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from max_server import metrics
from max_server.api.deps import SettingsDep
from max_server.errors import Unauthorized

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def prometheus(request: Request, settings: SettingsDep) -> Response:
    """Counters, histograms and gauges for Prometheus."""
    expected = settings.server.metrics_token
    if expected:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), expected.encode()):
            raise Unauthorized("/metrics needs the metrics token", code="invalid_token")
    metrics.DATABASE.app = request.app
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
