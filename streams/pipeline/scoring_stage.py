"""Rescore the clients a batch changed and decide which predictions to emit.

One model call per batch and model, in a worker thread so the event loop keeps serving
(XGBoost and the forest release the GIL while they predict); drivers (TreeSHAP, the costly
part) only for the predictions that are emitted. During an A/B experiment each client is
scored by the model of its arm (sticky: ``models_store.experiments.assignment``); in a shadow
experiment the challenger also scores every client the champion emits for, and those
predictions go to the shadow topic only. The decision uses the last prediction
emitted for each client, kept in its table row (``ClientRow.emitted``), so a replay after
a crash decides against what was last acknowledged. A replayed batch may cut the two input
topics elsewhere than the lost one (its worker fetched differently), so it can score other
features and emit other predictions; ids are digests of the payloads
(``models_store.scoring.prediction.content_id``), so a re-emitted copy has the same id only when
it says the same thing.

While an experiment runs, each model call is counted for its arm (``health``: clients
scored and failed, call latency, distance from the persistence forecast); the worker
publishes the counts for the experiment's guardrails (``streams.control.health_reports``).
Every scored client's label-free error estimate goes into the accuracy book per model and
arm, and each emitted prediction's estimate and its model's target into ``Scored.notes``,
which the tracked prediction keeps until its outcome (``streams.control.accuracy_reports``).
With drift monitoring on, every scored row and its prediction is also counted into the
event-time window of its model and arm (``drift``: bin counts, numpy-vectorised per group),
and each emitted prediction's drivers; ``streams.control.drift_reports`` publishes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np

from models_store.experiments.arm_health import ArmHealth, HealthBook, HealthKey, observe_call
from models_store.experiments.outcomes import persistence_index
from models_store.experiments.tracking import PredictionNote
from models_store.monitoring.accuracy import AccuracyBook, counts_in_estimate
from models_store.monitoring.book import DriftBook
from models_store.monitoring.window import DriftWindow
from models_store.scoring.emission import EmissionPolicy, Emitted, Reason, decide
from models_store.scoring.prediction import Prediction, build_prediction
from models_store.scoring.scorer import Score, Scorer
from models_store.scoring.shift import outside_training_range
from streams.control.active_models import ActiveDeployment
from streams.metrics import (
    FEATURES_OUTSIDE_TRAINING,
    PREDICTION_LATENCY,
    PREDICTIONS_EMITTED,
    PREDICTIONS_SUPPRESSED,
    SCORING_FAILURES,
    SCORING_SECONDS,
)
from streams.pipeline.client_row import ClientRow

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Rescore:
    """A changed client: its row, features as of its latest event, and what triggered it."""

    row: ClientRow
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
    """What a batch's rescoring produced: predictions for the main topic, the shadow
    challenger's for the shadow topic, and the clients that could not be scored."""

    predictions: list[Prediction]
    failures: list[ScoringFailure]
    shadow: list[Prediction] = field(default_factory=list)
    # By prediction id: what the outcome of an emitted or shadow prediction records beside it.
    notes: dict[str, PredictionNote] = field(default_factory=dict)


@dataclass
class _Group:
    """Clients scored by one model, in one arm."""

    scorer: Scorer
    arm: str | None
    members: list[int] = field(default_factory=list)


class ScoringStage:
    """Scores changed clients; returns the predictions to emit and updates ``emitted``."""

    def __init__(
        self,
        policy: EmissionPolicy,
        accuracy: AccuracyBook | None = None,
        drift: DriftBook | None = None,
    ) -> None:
        self.policy = policy
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        # Cumulative counts of this worker's model calls, per experiment arm.
        self.health: HealthBook = {}
        # Realised and estimated accuracy per model and arm (outcomes: the batch adds them).
        self.accuracy = accuracy if accuracy is not None else AccuracyBook(500, 30 * 86_400.0)
        # Drift windows per model and arm (None: drift monitoring is off).
        self.drift = drift

    def close(self) -> None:
        """Stop the scoring thread."""
        self._executor.shutdown(wait=False)

    async def run(self, clients: list[Rescore], active: ActiveDeployment) -> Scored:
        """Score ``clients`` with the deployment's models (one call per model) and keep the
        meaningful changes."""
        if not clients or active.champion is None:
            return Scored([], [])
        started = time.perf_counter()
        matrix = np.array([client.features for client in clients], dtype=np.float64)
        experiment = active.deployment.experiment
        groups: dict[str, _Group] = {}
        for index, client in enumerate(clients):
            arm = active.arm_of(client.row.client_id)
            scorer = active.challenger if arm == "challenger" else active.champion
            assert scorer is not None  # an A/B experiment always has its challenger loaded
            group = groups.setdefault(f"{scorer.ref}/{arm}", _Group(scorer, arm))
            group.members.append(index)
        emitted: list[Prediction] = []
        failures: list[ScoringFailure] = []
        notes: dict[str, PredictionNote] = {}
        scored_at = datetime.now(UTC)
        for group in groups.values():
            chosen = await self._choose(group, clients, matrix, failures, active)
            if not chosen:
                continue
            rows = [index for index, _, _ in chosen]
            explained = await self._in_thread(
                group.scorer.explain, matrix[rows], [score for _, _, score in chosen]
            )
            tag = None if group.arm is None or experiment is None else (
                experiment.experiment_id, group.arm)  # fmt: skip
            window = self._drift_window(group.scorer, group.arm or "champion", active)
            for (index, reason, _), score in zip(chosen, explained, strict=True):
                prediction = self._prediction(group.scorer, clients[index], score, scored_at,
                                              reason, tag)  # fmt: skip
                emitted.append(prediction)
                notes[prediction.prediction_id] = _note(group.scorer, score)
                PREDICTIONS_EMITTED.labels(reason=reason.value).inc()
                if window is not None:
                    window.add_drivers(clients[index].as_of, [d.feature for d in score.drivers])
        shadow = []
        if active.shadow is not None and experiment is not None and emitted:
            shadow = await self._shadow(active, emitted, clients, matrix, scored_at, notes)
        SCORING_SECONDS.observe(time.perf_counter() - started)
        return Scored(emitted, failures, shadow, notes)

    async def _choose(
        self,
        group: _Group,
        clients: list[Rescore],
        matrix: np.ndarray,
        failures: list[ScoringFailure],
        active: ActiveDeployment,
    ) -> list[tuple[int, Reason, Score]]:
        """Score a group; return (client index, why, score) of the predictions to emit."""
        ids = [clients[index].row.client_id for index in group.members]
        began = time.perf_counter()
        scores = await self._in_thread(
            self._score_each_if_needed, group.scorer, matrix[group.members], ids
        )
        self._count(active, group.arm or "champion", group.scorer, began, scores,
                    matrix[group.members])  # fmt: skip
        self._count_shift(group.scorer, matrix[group.members])
        self._estimate(group.scorer, group.arm, [clients[i] for i in group.members], scores)
        self._count_drift(active, group.arm or "champion", group.scorer, clients,
                          group.members, matrix, scores)  # fmt: skip
        ref = group.scorer.ref
        scale = group.scorer.card.prediction_scale
        chosen = []
        for index, score in zip(group.members, scores, strict=True):
            client = clients[index]
            if isinstance(score, str):
                failures.append(ScoringFailure(client, score))
                continue
            new = Emitted(score.margin, score.tier, ref, group.arm, client.as_of)
            reason = decide(client.row.emitted, new, self.policy, scale)
            if reason is None:
                PREDICTIONS_SUPPRESSED.inc()
                continue
            client.row.emitted = new
            chosen.append((index, reason, score))
        return chosen

    def _estimate(
        self, scorer: Scorer, arm: str | None, clients: list[Rescore], scores: list[Score | str]
    ) -> None:
        """Add the scored clients' estimated |error| to the accuracy book."""
        self.accuracy.know(scorer.card)
        target = scorer.card.target
        ratio_persistence = persistence_index("margin_ratio")  # recent revenue or not
        self.accuracy.add_estimates(scorer.ref, arm, (
            (client.row.client_id, client.as_of, score.estimated_error)
            for client, score in zip(clients, scores, strict=True)
            if not isinstance(score, str) and score.estimated_error is not None
            and counts_in_estimate(target, client.features[ratio_persistence])
        ))  # fmt: skip

    @staticmethod
    def _count_shift(scorer: Scorer, rows: np.ndarray) -> None:
        """Count the feature values outside the model's training range, per feature."""
        specs = scorer.card.features
        outside = outside_training_range(rows, specs).sum(axis=0)
        for index in np.flatnonzero(outside):
            FEATURES_OUTSIDE_TRAINING.labels(feature=specs[index].name).inc(int(outside[index]))

    def _drift_window(
        self, scorer: Scorer, arm: str, active: ActiveDeployment
    ) -> DriftWindow | None:
        """The drift window of ``scorer`` in ``arm`` (None: monitoring off, or no reference)."""
        if self.drift is None:
            return None
        experiment = active.deployment.experiment
        experiment_id = None if experiment is None else experiment.experiment_id
        return self.drift.window(scorer.card, arm, experiment_id)

    def _count_drift(
        self,
        active: ActiveDeployment,
        arm: str,
        scorer: Scorer,
        clients: list[Rescore],
        members: list[int],
        matrix: np.ndarray,
        scores: list[Score | str],
    ) -> None:
        """Count the scored rows and their predictions into the model's drift window."""
        window = self._drift_window(scorer, arm, active)
        if window is None:
            return
        good = [i for i, score in enumerate(scores) if not isinstance(score, str)]
        rows = [members[i] for i in good]
        window.add_scored(
            np.array([clients[i].as_of for i in rows], dtype=np.float64),
            matrix[rows],
            np.array([s.margin for s in scores if not isinstance(s, str)], dtype=np.float64),
        )

    def _count(
        self,
        active: ActiveDeployment,
        arm: str,
        scorer: Scorer,
        began: float,
        scores: list[Score | str],
        rows: np.ndarray,
    ) -> None:
        """Add one model call to its arm's health counts (only while an experiment runs)."""
        experiment = active.deployment.experiment
        if experiment is None:
            return
        latency_ms = (time.perf_counter() - began) * 1000
        key = HealthKey(experiment.experiment_id, active.revision, arm, scorer.ref)
        good = [i for i, score in enumerate(scores) if not isinstance(score, str)]
        self.health[key] = observe_call(
            self.health.get(key, ArmHealth()),
            latency_ms=latency_ms,
            predicted=[score.margin for score in scores if not isinstance(score, str)],
            persistence=[float(rows[i, persistence_index(scorer.card.target)]) for i in good],
            failures=len(scores) - len(good),
        )

    async def _shadow(
        self,
        active: ActiveDeployment,
        emitted: list[Prediction],
        clients: list[Rescore],
        matrix: np.ndarray,
        scored_at: datetime,
        notes: dict[str, PredictionNote],
    ) -> list[Prediction]:
        """The shadow challenger's predictions of the clients the champion emitted for
        (without drivers: they are compared, not explained)."""
        scorer, experiment = active.shadow, active.deployment.experiment
        assert scorer is not None
        assert experiment is not None
        index_of = {client.row.client_id: i for i, client in enumerate(clients)}
        rows = [index_of[prediction.client_id] for prediction in emitted]
        ids = [prediction.client_id for prediction in emitted]
        began = time.perf_counter()
        scores = await self._in_thread(self._score_each_if_needed, scorer, matrix[rows], ids)
        self._count(active, "shadow", scorer, began, scores, matrix[rows])
        self._estimate(scorer, "shadow", [clients[row] for row in rows], scores)
        self._count_drift(active, "shadow", scorer, clients, rows, matrix, scores)
        tag = (experiment.experiment_id, "shadow")
        predictions = []
        for row, score in zip(rows, scores, strict=True):
            if isinstance(score, str):
                continue
            prediction = self._prediction(scorer, clients[row], score, scored_at, Reason.SHADOW,
                                          tag)  # fmt: skip
            notes[prediction.prediction_id] = _note(scorer, score)
            predictions.append(prediction)
        return predictions

    @staticmethod
    def _prediction(
        scorer: Scorer,
        client: Rescore,
        score: Score,
        scored_at: datetime,
        reason: Reason,
        experiment: tuple[str, str] | None,
    ) -> Prediction:
        now_ms = scored_at.timestamp() * 1000
        latency = None if client.produced_ms is None else max(0.0, now_ms - client.produced_ms)
        if latency is not None and reason is not Reason.SHADOW:
            PREDICTION_LATENCY.observe(latency / 1000)
        return build_prediction(
            scorer.card,
            client.row.client_id,
            score,
            event_id=client.event_id,
            event_time=client.event_time,
            features_as_of=client.as_of,
            scored_at=scored_at,
            latency_ms=latency,
            reason=reason,
            experiment=experiment,
        )

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    @staticmethod
    def _score_each_if_needed(
        scorer: Scorer, matrix: np.ndarray, ids: list[str]
    ) -> list[Score | str]:
        """The batch in one call; if the model refuses it, row by row, so one bad client
        leaves only itself unscored (its error in place of its score)."""
        try:
            return list(scorer.predict(matrix))
        except Exception:
            log.exception(
                "scoring %d clients in one call failed; scoring them one by one", len(ids)
            )
        result: list[Score | str] = []
        for client_id, row in zip(ids, matrix, strict=True):
            try:
                result.append(scorer.predict(row[np.newaxis, :])[0])
            except Exception as exc:
                SCORING_FAILURES.inc()
                log.warning("client %s could not be scored: %s", client_id, exc)
                result.append(f"{type(exc).__name__}: {exc}")
        return result


def _note(scorer: Scorer, score: Score) -> PredictionNote:
    return PredictionNote(target=scorer.card.target, estimated_error=score.estimated_error)
