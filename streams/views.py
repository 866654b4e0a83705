"""HTTP views on the worker's web port: liveness, readiness, metrics, client features and
predictions, what-if scoring and the deployed model.

When ``PROFITSTREAM_API_TOKEN`` is set, every view but /health, /ready and /metrics wants
``Authorization: Bearer <token>`` (401 otherwise, with the reason).

What a request brings (path, query, headers, body) is checked by ``streams.http_input``
before anything uses it: hostile input gets a 4xx with a reason, never a 500.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import faust
import numpy as np
from faust.types import TableT
from faust.web import Request, Response, View
from prometheus_client import generate_latest
from redis.exceptions import RedisError

from features.as_of import parse_as_of
from features.definitions import feature_dict
from features.online_store import OnlineStore
from models_store.scoring.scorer import Scorer
from streams.control.active_models import ActiveDeployment, ActiveModels
from streams.http_input import (
    bearer_error,
    body_size_error,
    client_id_error,
    declared_size,
    read_what_if,
)
from streams.metrics import publish_health
from streams.pipeline.client_table import read_state
from streams.readiness import waiting_for
from streams.worker_health import WorkerHealth

log = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Response]]
# aiohttp takes the charset separately and rejects it inside content_type.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4"
# GET /predictions: clients per page (a page is one ZRANGEBYLEX and one pipelined HGET each).
PAGE_DEFAULT = 100
PAGE_MAX = 1000
# ASCII digits only (int() also takes " 5", "+5", "5_0", "٥"), and few: int() of a
# 5,000-digit string raises.
_PAGE_LIMIT = re.compile(r"[0-9]{1,9}")


def _unprocessable(web: View, field: str, message: str) -> Response:
    return web.json({"detail": [{"loc": ["query", field], "msg": message}]}, status=422)


def _bad_client_id(web: View, client_id: str) -> Response | None:
    reason = client_id_error(client_id)
    if reason is None:
        return None
    return web.json({"detail": [{"loc": ["path", "client_id"], "msg": reason}]}, status=422)


def page_query(after: str | None, limit: str | None) -> tuple[int, list[dict[str, Any]]]:
    """The page size of ``GET /predictions`` and the field errors of its query: ``after`` a
    client id (absent: from the first client), ``limit`` 1 to ``PAGE_MAX``."""
    errors: list[dict[str, Any]] = []
    if after is not None and (reason := client_id_error(after)) is not None:
        errors.append({"loc": ["query", "after"], "msg": reason})
    size = PAGE_DEFAULT
    if limit is not None:
        size = int(limit) if _PAGE_LIMIT.fullmatch(limit) else 0
        if not 1 <= size <= PAGE_MAX:
            errors.append({"loc": ["query", "limit"], "msg": f"must be an integer from 1 to "
                           f"{PAGE_MAX}"})  # fmt: skip
    return size, errors


def _card_summary(scorer: Scorer) -> dict[str, Any]:
    card = scorer.card
    return {
        "name": card.name, "version": card.version, "target": card.target,
        "horizon_days": card.horizon_days, "created_at": card.created_at.isoformat(),
        "blend": card.blend, "interval_level": card.intervals.level,
        "test_metrics": card.metrics.get("blend", {}),
    }  # fmt: skip


def loaded_models(active: ActiveDeployment | None) -> dict[str, str]:
    """Role -> ``name@version`` of the models a deployment scores with."""
    if active is None:
        return {}
    loaded = {"champion": active.champion, "challenger": active.challenger}
    return {role: scorer.ref for role, scorer in loaded.items() if scorer is not None}


def register_views(
    app: faust.App,
    states: TableT[str, bytes],
    store: OnlineStore,
    models: ActiveModels,
    health: WorkerHealth,
    token: str | None = None,
) -> None:
    """Attach ``/health``, ``/ready``, ``/metrics``, ``/clients/{id}/features``,
    ``/clients/{id}/prediction``, ``/predictions``, ``POST /predict`` and ``/models``."""

    # surrogateescape: os.environ may hand undecodable bytes over (never matched then).
    expected = None if token is None else f"Bearer {token}".encode("utf-8", "surrogateescape")

    def guarded(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def check(web: View, request: Request, **kwargs: Any) -> Response:
            if expected is not None:
                reason = bearer_error(request.headers.get("Authorization"), expected)
                if reason is not None:
                    return web.json({"detail": reason}, status=401)
            return await handler(web, request, **kwargs)

        return check

    # Liveness: fails only when the batch loop is stuck (input waiting, no batch for long,
    # nothing readiness reports to explain it): a restart may help then, not in an outage.
    @app.page("/health")
    async def liveness(web: View, request: Request) -> Response:
        stalled = health.stalled(time.monotonic())
        if stalled is not None:
            return web.json({"status": "stalled", "detail": stalled}, status=503)
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web: View, request: Request) -> Response:
        waiting = waiting_for(app, models.waiting_for(), health)
        if waiting:
            return web.json({"ready": False, "waiting_for": waiting}, status=503)
        return web.json({"ready": True})

    # Open like /health: Prometheus scrapes it, and it holds counts, not client data.
    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        active = models.current
        publish_health(health, not waiting_for(app, models.waiting_for(), health),
                       None if active is None else active.deployment,
                       loaded_models(active))  # fmt: skip
        return web.bytes(generate_latest(), content_type=PROMETHEUS_CONTENT_TYPE)

    @app.page("/models")
    @guarded
    async def deployed_models(web: View, request: Request) -> Response:
        active = models.current
        if active is None or active.champion is None:
            return web.json({"deployed": None, "detail": "no model deployed: no scoring"})
        experiment = active.deployment.experiment
        return web.json({
            "deployed": _card_summary(active.champion),
            "deployment_revision": active.revision,
            "experiment": None if experiment is None else {
                "id": experiment.experiment_id, "mode": experiment.mode,
                "share": experiment.share,
                "challenger": None if active.challenger is None
                else _card_summary(active.challenger),
            },
        })  # fmt: skip

    @app.page("/clients/{client_id}/prediction")
    @guarded
    async def client_prediction(web: View, request: Request, client_id: str) -> Response:
        if (bad := _bad_client_id(web, client_id)) is not None:
            return bad
        if health.redis_error is not None:
            return web.json({"detail": f"redis unreachable: {health.redis_error}"}, status=503)
        try:
            latest = (await store.read(client_id)).get("prediction")
        except (RedisError, OSError) as exc:
            return web.json({"detail": f"redis unreachable: {type(exc).__name__}: {exc}"},
                            status=503)  # fmt: skip
        if latest is None and health.mirror != "ok":
            # Not a 404: Redis may have lost it, and the mirror is not rebuilt yet.
            detail = f"redis mirror not verified yet ({health.mirror}): try again"
            return web.json({"detail": detail}, status=503)
        if latest is None:
            return web.json({"detail": f"no prediction for client {client_id!r}"}, status=404)
        return web.json(json.loads(latest))

    # Every client's latest prediction, a page at a time, in the byte order of client ids
    # (the store's index). Any worker answers for all clients: Redis is shared.
    @app.page("/predictions")
    @guarded
    async def predictions_page(web: View, request: Request) -> Response:
        after = request.query.get("after")
        limit, errors = page_query(after, request.query.get("limit"))
        if errors:
            return web.json({"detail": errors}, status=422)
        if health.redis_error is not None:
            return web.json({"detail": f"redis unreachable: {health.redis_error}"}, status=503)
        if health.mirror != "ok":
            # Redis may have lost clients that the rebuild has not written back yet.
            detail = f"redis mirror not verified yet ({health.mirror}): try again"
            return web.json({"detail": detail}, status=503)
        try:
            found, next_after = await store.read_predictions(after, limit)
        except (RedisError, OSError) as exc:
            return web.json({"detail": f"redis unreachable: {type(exc).__name__}: {exc}"},
                            status=503)  # fmt: skip
        predictions = []
        for client_id, raw in found:
            try:
                predictions.append(json.loads(raw))
            except (ValueError, RecursionError):  # not a worker's: one line, the page goes on
                log.warning("the prediction of client %r in Redis is not JSON: skipped", client_id)
        return web.json({"predictions": predictions, "next_after": next_after})

    async def predict(web: View, request: Request) -> Response:
        active = models.current
        scorer = None if active is None else active.champion
        if scorer is None:
            detail = "no model deployed: set PROFITSTREAM_MODEL or deploy one"
            return web.json({"detail": detail}, status=503)
        # Refused unread when announced too large; aiohttp caps a chunked body at 1 MiB.
        too_large = body_size_error(declared_size(request.headers.get("Content-Length")))
        raw = b"" if too_large else await request.read()
        too_large = too_large or body_size_error(len(raw))
        if too_large is not None:
            return web.json({"detail": [{"loc": ["body"], "msg": too_large}]}, status=413)
        what_if = read_what_if(raw)
        if isinstance(what_if, list):
            return web.json({"detail": what_if}, status=422)
        loop = asyncio.get_running_loop()
        row = np.array([what_if.vector], dtype=np.float64)
        score = (await loop.run_in_executor(None, scorer.score, row))[0]
        return web.json({
            "client_id": what_if.client_id,
            "predicted_margin": score.margin,
            "interval": {"lower": score.lower, "upper": score.upper, "level": score.level},
            "risk_tier": score.tier,
            "drivers": [{"feature": d.feature, "value": d.value,
                         "contribution": d.contribution} for d in score.drivers],
            "model": {"name": scorer.card.name, "version": scorer.card.version},
        })  # fmt: skip

    @app.page("/predict")
    class Predict(View):
        """``POST /predict``: a what-if feature vector in, a prediction out."""

        post = guarded(predict)

    @app.page("/clients/{client_id}/features")
    @guarded
    async def client_features(web: View, request: Request, client_id: str) -> Response:
        if (bad := _bad_client_id(web, client_id)) is not None:
            return bad
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
