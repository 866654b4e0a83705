"""The stream's scoring stage (pure apart from the model): one call per batch, emission
decisions kept in the client row, a client the model refuses isolated from the rest."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pytest

from features.definitions import FEATURE_NAMES
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.portfolio import simulate
from features.state import ClientState
from models_store.control.state import Deployment
from models_store.experiments.design import Experiment
from models_store.model.profit_model import ProfitModel
from models_store.monitoring.book import DriftBook
from models_store.registry.bundle import verify_bundle
from models_store.scoring.emission import EmissionPolicy
from models_store.scoring.scorer import Scorer
from models_store.training.train import TrainingRequest, train
from models_store.training.tuning import SearchBudget
from streams.control.active_models import ActiveDeployment
from streams.pipeline.client_row import ClientRow
from streams.pipeline.scoring_stage import Rescore, ScoringStage

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


@pytest.fixture(scope="module")
def scorer(tmp_path_factory: pytest.TempPathFactory) -> Scorer:
    log = history_frame(simulated_messages(simulate(100, 15, seed=8, start=START)))
    request = TrainingRequest(name="m", version="1.0.0", validation_cutoffs=2, test_cutoffs=2,
                              budget=SearchBudget(4, 2, 30))  # fmt: skip
    bundle = train(log, request, tmp_path_factory.mktemp("b")).bundle
    card = verify_bundle(bundle)
    return Scorer(card, ProfitModel.load(bundle, card))


def _rescore(client: str, features: list[float], as_of: float = 1e9) -> Rescore:
    return Rescore(ClientRow(ClientState(client)), features, as_of, f"{client}-ev", as_of, None)


def test_decisions_are_remembered_and_a_bad_client_is_isolated(scorer: Scorer) -> None:
    stage = ScoringStage(EmissionPolicy(delta=0.02))
    active = ActiveDeployment(Deployment(1, scorer.ref, None), scorer, None)
    rng = np.random.default_rng(3)
    rows = [list(rng.lognormal(2, 1, len(FEATURE_NAMES))) for _ in range(5)]
    broken = list(rows[2])
    broken[0] = math.inf  # XGBoost refuses infinite input
    clients = [_rescore(f"c{i}", row) for i, row in enumerate(rows)]
    clients[2] = _rescore("c2", broken)
    try:
        scored = asyncio.run(stage.run(clients, active))
        assert [f.client.row.client_id for f in scored.failures] == ["c2"]
        assert "inf" in scored.failures[0].error.lower()
        assert {p.client_id for p in scored.predictions} == {"c0", "c1", "c3", "c4"}
        assert all(p.reason == "first" and len(p.drivers) == 5 for p in scored.predictions)
        assert clients[0].row.emitted is not None
        assert clients[2].row.emitted is None
        # The same features again: nothing moved, nothing emitted.
        again = [Rescore(c.row, c.features, 2e9, "later", 2e9, None) for c in clients]
        assert asyncio.run(stage.run(again, active)).predictions == []
    finally:
        stage.close()


Mode = Literal["ab", "shadow"]


def _experiment(mode: Mode, share: float, challenger: str) -> Experiment:
    return Experiment(
        experiment_id="e1", challenger=challenger, mode=mode, share=share, schedule=(),
        salt="salt", metric="mae", min_samples=10, alpha=0.05, max_duration_days=90,
        auto_promote=True, guardrails={}, started_at=0.0, started_revision=2,
    )  # fmt: skip


def test_each_client_is_scored_by_its_arm_and_a_model_change_is_emitted(scorer: Scorer) -> None:
    challenger = Scorer(scorer.card.model_copy(update={"version": "2.0.0"}), scorer.model)
    rng = np.random.default_rng(4)
    clients = [_rescore(f"client-{i}", list(rng.lognormal(2, 1, len(FEATURE_NAMES))))
               for i in range(60)]  # fmt: skip
    stage = ScoringStage(EmissionPolicy(delta=0.02))
    champion_only = ActiveDeployment(Deployment(1, scorer.ref, None), scorer, None)
    deployment = Deployment(2, scorer.ref, _experiment("ab", 0.5, challenger.ref))
    ab = ActiveDeployment(deployment, scorer, challenger)
    try:
        asyncio.run(stage.run(clients, champion_only))
        later = [Rescore(c.row, c.features, 2e9, "later", 2e9, None) for c in clients]
        scored = asyncio.run(stage.run(later, ab))
        by_arm = {p.client_id: p for p in scored.predictions}
        arms = {c.row.client_id: ab.arm_of(c.row.client_id) for c in clients}
        # Only the challenger's clients changed model (and arm): all of them are emitted.
        assert set(by_arm) == set(arms)  # the arm itself is new for everyone
        for client_id, prediction in by_arm.items():
            assert prediction.experiment is not None
            assert prediction.experiment.arm == arms[client_id]
            expected = "2.0.0" if arms[client_id] == "challenger" else scorer.card.version
            assert prediction.model.version == expected
        assert 10 < sum(arm == "challenger" for arm in arms.values()) < 50
        assert scored.shadow == []
        # Health is counted per arm while the experiment runs (not before it).
        health = {key.arm: (key, counts) for key, counts in stage.health.items()}
        assert set(health) == {"champion", "challenger"}
        for arm, (key, counts) in health.items():
            assert (key.experiment_id, key.deployment_revision) == ("e1", 2)
            expected_model = challenger.ref if arm == "challenger" else scorer.ref
            assert key.model == expected_model
            assert counts.scored == sum(a == arm for a in arms.values())
            assert (counts.failures, counts.calls) == (0, 1)
        assert sum(counts.scored for _, counts in health.values()) == len(clients)
    finally:
        stage.close()


def test_a_shadow_challenger_scores_beside_the_champion_without_emitting(scorer: Scorer) -> None:
    challenger = Scorer(scorer.card.model_copy(update={"version": "3.0.0"}), scorer.model)
    rng = np.random.default_rng(5)
    clients = [_rescore(f"s-{i}", list(rng.lognormal(2, 1, len(FEATURE_NAMES))))
               for i in range(5)]  # fmt: skip
    deployment = Deployment(2, scorer.ref, _experiment("shadow", 0.0, challenger.ref))
    stage = ScoringStage(EmissionPolicy(delta=0.02))
    try:
        scored = asyncio.run(stage.run(clients, ActiveDeployment(deployment, scorer, challenger)))
    finally:
        stage.close()
    assert {p.model.version for p in scored.predictions} == {scorer.card.version}
    assert all(p.experiment is None for p in scored.predictions)
    assert [p.client_id for p in scored.shadow] == [p.client_id for p in scored.predictions]
    for main, shadow in zip(scored.predictions, scored.shadow, strict=True):
        assert shadow.model.version == "3.0.0"
        assert shadow.experiment is not None
        assert shadow.experiment.arm == "shadow"
        assert shadow.predicted_margin == main.predicted_margin  # the same trees here
        assert shadow.prediction_id != main.prediction_id
    health = {key.arm: counts for key, counts in stage.health.items()}
    assert set(health) == {"champion", "shadow"}
    assert health["champion"].scored == health["shadow"].scored == len(clients)
    assert health["shadow"].drift == pytest.approx(health["champion"].drift)  # same trees


def test_scored_rows_and_emitted_drivers_are_counted_for_drift_per_model_and_arm(
    scorer: Scorer,
) -> None:
    assert scorer.card.drift_reference is not None  # trained now: the card has one
    challenger = Scorer(scorer.card.model_copy(update={"version": "2.0.0"}), scorer.model)
    rng = np.random.default_rng(6)
    clients = [_rescore(f"d-{i}", list(rng.lognormal(2, 1, len(FEATURE_NAMES))), 1.7e9)
               for i in range(60)]  # fmt: skip
    deployment = Deployment(2, scorer.ref, _experiment("ab", 0.5, challenger.ref))
    active = ActiveDeployment(deployment, scorer, challenger)
    stage = ScoringStage(EmissionPolicy(delta=0.02), drift=DriftBook(days=7))
    try:
        scored = asyncio.run(stage.run(clients, active))
        again = asyncio.run(stage.run(clients, active))  # rescored, nothing emitted
    finally:
        stage.close()
    assert again.predictions == []
    assert stage.drift is not None
    windows = {key: window.summary() for key, window in stage.drift.windows.items()}
    arms = {c.row.client_id: active.arm_of(c.row.client_id) for c in clients}
    assert {(k.model, k.arm, k.experiment_id) for k in windows} == {
        (scorer.ref, "champion", "e1"), (challenger.ref, "challenger", "e1")
    }  # fmt: skip
    for key, summary in windows.items():
        members = sum(arm == key.arm for arm in arms.values())
        assert summary.rows == 2 * members  # every scored row counts, emitted or not
        assert summary.explained == sum(
            p.experiment is not None and p.experiment.arm == key.arm for p in scored.predictions
        )
        assert summary.last_day == int(1.7e9 // 86_400)
