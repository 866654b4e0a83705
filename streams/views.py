"""HTTP views on the worker's web port: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import faust
from faust.web import Request, Response, View
from prometheus_client import generate_latest

# aiohttp takes the charset separately and rejects it inside content_type.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"


def is_ready(app: faust.App) -> bool:
    """Ready once table recovery has finished and no rebalance is under way."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # missing from TableManagerT
    return bool(recovery.completed.is_set() and not app.rebalancing)


def register_views(app: faust.App) -> None:
    """Attach ``/health``, ``/ready`` and ``/metrics``."""

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web: View, request: Request) -> Response:
        if is_ready(app):
            return web.json({"ready": True})
        return web.json({"ready": False, "waiting_for": "table recovery"}, status=503)

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        return web.bytes(generate_latest(), content_type=PROMETHEUS_CONTENT_TYPE)
