"""HTTP views on the worker's web port: liveness, readiness, metrics and client features."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import faust
from faust.types import TableT
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from features.definitions import feature_dict
from streams.client_table import read_state
from streams.readiness import is_ready

# aiohttp takes the charset separately and rejects it inside content_type.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"


def parse_as_of(raw: str) -> float:
    """``as_of`` from a query string: ISO-8601 with an offset, or epoch seconds."""
    try:
        return float(raw)
    except ValueError:
        pass
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("needs a UTC offset, e.g. 2025-01-31T00:00:00Z")
    return moment.timestamp()


def _unprocessable(web: View, field: str, message: str) -> Response:
    return web.json({"detail": [{"loc": ["query", field], "msg": message}]}, status=422)


def register_views(app: faust.App, states: TableT[str, bytes]) -> None:
    """Attach ``/health``, ``/ready``, ``/metrics`` and ``/clients/{id}/features``."""

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

    @app.page("/clients/{client_id}/features")
    async def client_features(web: View, request: Request, client_id: str) -> Response:
        state = read_state(states, client_id)
        if state is None or state.watermark is None:
            return web.json({"detail": f"unknown client {client_id!r}"}, status=404)
        as_of = state.watermark
        raw = request.query.get("as_of")
        if raw is not None:
            try:
                as_of = parse_as_of(raw)
            except ValueError as exc:
                return _unprocessable(web, "as_of", str(exc))
            if as_of < state.watermark:
                return _unprocessable(web, "as_of", "is before the client's latest event")
        features = feature_dict(state, as_of)
        return web.json(
            {
                "client_id": client_id,
                "as_of": datetime.fromtimestamp(as_of, UTC).isoformat(),
                "as_of_epoch": as_of,
                "version": state.version,
                "features": {k: None if math.isnan(v) else v for k, v in features.items()},
            }
        )
