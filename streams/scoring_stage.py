"""Rescore the clients a batch changed and decide which predictions to emit.

One model call per batch, in a worker thread so the event loop keeps serving (XGBoost and
the forest release the GIL while they predict); drivers (TreeSHAP, the costly part) only
for the predictions that are emitted. The decision uses the last prediction
emitted for each client, kept in its state (``ClientState.emitted``), so after a crash the
replayed batch decides, and identifies, its predictions exactly as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass
from datetime import UTC, datetime

import numpy as np

from features.state import ClientState
from models_store.emission import EmissionPolicy, Emitted, Reason, decide
from models_store.prediction import Prediction, build_prediction
from models_store.scoring import Score, Scorer
from streams.metrics import (
    PREDICTION_LATENCY,
    PREDICTIONS_EMITTED,
    PREDICTIONS_SUPPRESSED,
    SCORING_FAILURES,
    SCORING_SECONDS,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rescore:
    """A changed client: its state, features as of its latest event, and what triggered it."""

    state: ClientState
    features: list[float]
    as_of: float
    event_id: str | None
    event_time: float | None
    produced_ms: int | None  # the triggering message's Kafka timestamp


@dataclass(frozen=True)
class ScoringFailure:
    """A client the model could not score: it goes to the DLQ, the batch goes on."""

    client: Rescore
    error: str


@dataclass(frozen=True)
class Scored:
    """What a batch's rescoring produced."""

    predictions: list[Prediction]
    failures: list[ScoringFailure]


class ScoringStage:
    """Scores changed clients; returns the predictions to emit and updates ``emitted``."""

    def __init__(self, scorer: Scorer, policy: EmissionPolicy) -> None:
        self.scorer = scorer
        self.policy = policy
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")

    def close(self) -> None:
        """Stop the scoring thread."""
        self._executor.shutdown(wait=False)

    async def run(self, clients: list[Rescore]) -> Scored:
        """Score ``clients`` in one model call and keep the meaningful changes."""
        if not clients:
            return Scored([], [])
        matrix = np.array([client.features for client in clients], dtype=np.float64)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        ids = [client.state.client_id for client in clients]
        scores = await loop.run_in_executor(self._executor, self._score_each_if_needed, matrix, ids)
        ref = self.scorer.ref
        chosen: list[tuple[int, Reason, Score]] = []
        failures = []
        for index, (client, score) in enumerate(zip(clients, scores, strict=True)):
            if isinstance(score, str):
                failures.append(ScoringFailure(client, score))
                continue
            memo = client.state.emitted
            new = Emitted(score.margin, score.tier, ref, None, client.as_of)
            reason = decide(None if memo is None else Emitted(*memo), new, self.policy)
            if reason is None:
                PREDICTIONS_SUPPRESSED.inc()
                continue
            client.state.emitted = astuple(new)
            chosen.append((index, reason, score))
        explained: list[Score] = []
        if chosen:
            rows = [index for index, _, _ in chosen]
            explained = await loop.run_in_executor(
                self._executor, self.scorer.explain, matrix[rows], [s for _, _, s in chosen]
            )
        SCORING_SECONDS.observe(time.perf_counter() - started)
        scored_at = datetime.now(UTC)
        now_ms = scored_at.timestamp() * 1000
        emitted: list[Prediction] = []
        for (index, reason, _), score in zip(chosen, explained, strict=True):
            client = clients[index]
            latency = None if client.produced_ms is None else max(0.0, now_ms - client.produced_ms)
            emitted.append(
                build_prediction(
                    self.scorer.card,
                    client.state.client_id,
                    score,
                    event_id=client.event_id,
                    event_time=client.event_time,
                    features_as_of=client.as_of,
                    scored_at=scored_at,
                    latency_ms=latency,
                    reason=reason.value,
                )
            )
            PREDICTIONS_EMITTED.labels(reason=reason.value).inc()
            if latency is not None:
                PREDICTION_LATENCY.observe(latency / 1000)
        return Scored(emitted, failures)

    def _score_each_if_needed(self, matrix: np.ndarray, ids: list[str]) -> list[Score | str]:
        """The batch in one call; if the model refuses it, row by row, so one bad client
        leaves only itself unscored (its error in place of its score)."""
        try:
            return list(self.scorer.predict(matrix))
        except Exception:
            log.exception(
                "scoring %d clients in one call failed; scoring them one by one", len(ids)
            )
        result: list[Score | str] = []
        for client_id, row in zip(ids, matrix, strict=True):
            try:
                result.append(self.scorer.predict(row[np.newaxis, :])[0])
            except Exception as exc:
                SCORING_FAILURES.inc()
                log.warning("client %s could not be scored: %s", client_id, exc)
                result.append(f"{type(exc).__name__}: {exc}")
        return result
