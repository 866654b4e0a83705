"""Predictions in the stream (live broker and Redis): emitted on meaningful change only,
the latest equal to batch scoring of the client's features as of the same event time.

A model is trained on one simulated portfolio and registered; a worker loads it and a
second portfolio (with malformed, duplicate and late messages) is produced to it by an
independent client (librdkafka).
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import redis

from features.definitions import FEATURE_NAMES
from features.offline import build_features
from features.simulation.messages import SimulatedMessage, history_frame, simulated_messages
from features.simulation.portfolio import simulate
from models_store.registry import open_registry
from models_store.scoring.prediction import Prediction
from models_store.scoring.scorer import Scorer
from models_store.training.train import TrainingRequest, train
from models_store.training.tuning import SearchBudget
from streams.stack.processes import wait_until
from tests.services.event_log import ReplayedLog, metric, produce_log, rebuild, simulated_log
from tests.services.kafka_clients import consume, partition_counts
from tests.services.worker_process import WorkerProcess, running_worker

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
MODEL = "profitability@1.0.0"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry holding a model trained on another portfolio than the one streamed."""
    root = tmp_path_factory.mktemp("models")
    log = history_frame(simulated_messages(simulate(100, 15, seed=21, start=START)))
    request = TrainingRequest(name="profitability", version="1.0.0", validation_cutoffs=2,
                              test_cutoffs=2, budget=SearchBudget(4, 2, 30))  # fmt: skip
    open_registry(str(root / "registry")).register(train(log, request, root / "b").bundle)
    return root / "registry"


@dataclass
class Run:
    """What a worker emitted for a replayed log."""

    log: ReplayedLog
    by_client: dict[str, list[Prediction]]
    emitted: int
    suppressed: int
    stored: dict[str, str | None]


def _stream(
    env: dict[str, str], bootstrap: str, redis_url: str, unique: str,
    messages: list[SimulatedMessage],
    while_running: Callable[[WorkerProcess, dict[str, list[Prediction]]], None] | None = None,
) -> Run:  # fmt: skip
    with running_worker(env) as worker:
        topics = {f"{unique}-activity": 4, f"{unique}-billing": 4, f"{unique}-predictions": 4}
        wait_until(lambda: partition_counts(bootstrap, list(topics)) == topics, timeout_s=30,
                   what=f"topics {topics}")  # fmt: skip
        produce_log(bootstrap, unique, messages)
        wait_until(
            lambda: sum(metric(worker, "profitstream_batch_events_sum").values()) >= len(messages),
            timeout_s=300, what="the worker to process every message",
        )  # fmt: skip
        emitted = int(sum(metric(worker, "profitstream_predictions_emitted_total").values()))
        suppressed = int(sum(metric(worker, "profitstream_predictions_suppressed_total").values()))
        records = consume(bootstrap, f"{unique}-predictions", emitted, timeout_s=60)
        log = rebuild(messages)
        with redis.Redis.from_url(redis_url, decode_responses=True) as client:
            stored = {c: client.hget(f"{unique}:client:{c}", "prediction") for c in log.states}
        assert len(records) == emitted > 0
        by_client: dict[str, list[Prediction]] = defaultdict(list)
        for record in sorted(records, key=lambda r: (r.partition, r.offset)):
            prediction = Prediction.model_validate_json(record.value or b"")
            assert record.key == prediction.client_id.encode()
            by_client[prediction.client_id].append(prediction)
        assert set(by_client) == set(log.states)
        if while_running is not None:
            while_running(worker, by_client)
    return Run(log, dict(by_client), emitted, suppressed, stored)


def _env(worker_env: dict[str, str], registry: Path, **extra: str) -> dict[str, str]:
    return {**worker_env, "PROFITSTREAM_MODEL_REGISTRY": str(registry),
            "PROFITSTREAM_MODEL": MODEL, **extra}  # fmt: skip


def _check_http(
    worker: WorkerProcess, by_client: dict[str, list[Prediction]], scorer: Scorer
) -> None:
    """The query API: latest prediction, deployed model, what-if scoring, bearer token."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    client_id, sequence = next(iter(by_client.items()))
    path = f"/clients/{client_id}/prediction"
    assert worker.get(path)[0] == 401
    assert worker.get(path, {"Authorization": "Bearer wrong"})[0] == 401
    assert worker.get("/health")[0] == 200  # health and readiness stay open
    status, body = worker.get(path, auth)
    assert status == 200
    assert Prediction.model_validate_json(body) == sequence[-1]
    assert worker.get("/clients/nobody/prediction", auth)[0] == 404
    status, body = worker.get("/models", auth)
    assert status == 200
    assert json.loads(body)["deployed"]["version"] == "1.0.0"

    status, body = worker.get(f"/clients/{client_id}/features", auth)
    assert status == 200
    features = json.loads(body)["features"]
    status, body = worker.post("/predict", json.dumps({"features": features}).encode(), auth)
    assert status == 200, body
    answer = json.loads(body)
    vector = [np.nan if features[n] is None else features[n] for n in FEATURE_NAMES]
    score = scorer.score(np.array([vector], dtype=float))[0]
    assert answer["predicted_margin"] == score.margin
    assert answer["interval"]["upper"] == score.upper
    assert answer["risk_tier"] == score.tier
    assert [d["feature"] for d in answer["drivers"]] == [d.feature for d in score.drivers]

    broken = {k: v for k, v in features.items() if k != "revenue_30d"}
    broken["revenue_45d"] = 1.0
    broken["tickets_opened_30d"] = "many"
    status, body = worker.post("/predict", json.dumps({"features": broken}).encode(), auth)
    assert status == 422
    errors = {tuple(e["loc"][2:]): e["msg"] for e in json.loads(body)["detail"]}
    assert errors == {("revenue_30d",): "missing", ("revenue_45d",): "not a feature of this model",
                      ("tickets_opened_30d",): "must be a number or null"}  # fmt: skip
    status, _ = worker.post("/predict", b'{"features": {"revenue_30d": Infinity}}', auth)
    assert status == 422
    assert worker.post("/predict", b"not json", auth)[0] == 422
    assert worker.post("/predict", b"{}", {})[0] == 401


def test_predictions_are_emitted_only_on_meaningful_change(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str,
    registry: Path, tmp_path: Path,
) -> None:  # fmt: skip
    delta = 0.05
    # Small batches, as when events trickle in: each client is rescored many times.
    env = _env(worker_env, registry, PROFITSTREAM_PREDICTION_DELTA=str(delta),
               PROFITSTREAM_BATCH_MAX_EVENTS="100", PROFITSTREAM_API_TOKEN=TOKEN)  # fmt: skip
    messages = simulated_log(120, 8, malformed=0.01, duplicate=0.02, late=0.01, seed=5)
    scorer = Scorer.from_registry(open_registry(str(registry)), MODEL, tmp_path / "cache")
    run = _stream(env, kafka_bootstrap, redis_url, unique, messages,
                  lambda worker, by_client: _check_http(worker, by_client, scorer))  # fmt: skip

    # Most rescores move the margin by less than delta and keep the tier: nothing emitted.
    assert run.suppressed > run.emitted
    applied = sum(n for outcome, n in run.log.outcomes.items() if outcome.value == "applied")
    assert run.emitted + run.suppressed <= applied
    for client_id, sequence in run.by_client.items():
        assert sequence[0].reason == "first"
        for before, after in itertools.pairwise(sequence):
            if after.reason == "margin_moved":
                assert abs(after.predicted_margin - before.predicted_margin) > delta
            else:  # no heartbeat configured, one model
                assert after.reason == "tier_changed", after.reason
                assert after.risk_tier != before.risk_tier
            assert after.features_as_of >= before.features_as_of
        latest = sequence[-1]
        assert json.loads(run.stored[client_id] or "{}") == json.loads(latest.to_json())
        assert latest.latency_ms is not None
        assert 0 <= latest.latency_ms < 600_000


def test_the_latest_prediction_equals_batch_scoring_as_of_its_event_time(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str,
    registry: Path, tmp_path: Path,
) -> None:  # fmt: skip
    """With delta 0 every change of margin is emitted, so each client's latest prediction
    has the margin and tier of scoring the offline features as of that prediction's time.

    Its interval and drivers may be older: an event that arrives after the last emission
    without moving the watermark (within the allowed lateness) changes the features, and if
    no tree split of the margin model moves, the margin stays bit-identical and nothing is
    emitted (the emission policy looks at margin and tier, not the interval). Whether that
    happens depends on how the two topics interleave, so it is seen only sometimes (a loaded
    CI run: same margin, lower -0.7855 vs -0.7829)."""
    env = _env(worker_env, registry, PROFITSTREAM_PREDICTION_DELTA="0")
    messages = simulated_log(120, 8, malformed=0.01, duplicate=0.02, late=0.01, seed=6)
    run = _stream(env, kafka_bootstrap, redis_url, unique, messages)

    history = history_frame(messages)
    scorer = Scorer.from_registry(open_registry(str(registry)), MODEL, tmp_path / "cache")
    same_interval = same_drivers = 0
    for client_id, sequence in run.by_client.items():
        latest = sequence[-1]
        assert latest.features_as_of.timestamp() == run.log.states[client_id].watermark
        own = history[history["key"] == client_id.encode()]
        row = build_features(own, latest.features_as_of.timestamp()).loc[client_id]
        score = scorer.score(row[list(FEATURE_NAMES)].to_numpy(dtype=float)[np.newaxis, :])[0]
        assert latest.predicted_margin == pytest.approx(score.margin, rel=1e-9, abs=1e-12)
        assert latest.risk_tier == score.tier
        same_interval += (latest.interval.lower, latest.interval.upper) == pytest.approx(
            (score.lower, score.upper), rel=1e-9, abs=1e-12
        )
        same_drivers += [d.feature for d in latest.drivers] == [d.feature for d in score.drivers]
        assert latest.model.version == "1.0.0"
    # Only a client whose last change moved no margin split may show an older interval.
    assert same_interval >= 0.9 * len(run.by_client), (same_interval, len(run.by_client))
    assert same_drivers >= 0.9 * len(run.by_client), (same_drivers, len(run.by_client))
