"""The stream's scoring stage (pure apart from the model): one call per batch, emission
decisions kept in the client state, a client the model refuses isolated from the rest."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from features.definitions import FEATURE_NAMES
from features.simulator import history_frame, simulate, simulated_messages
from features.state import ClientState
from models_store.bundle import verify_bundle
from models_store.emission import EmissionPolicy
from models_store.profit_model import ProfitModel
from models_store.scoring import Scorer
from models_store.training import TrainingRequest, train
from models_store.tuning import SearchBudget
from streams.scoring_stage import Rescore, ScoringStage

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
    return Rescore(ClientState(client), features, as_of, f"{client}-ev", as_of, None)


def test_decisions_are_remembered_and_a_bad_client_is_isolated(scorer: Scorer) -> None:
    stage = ScoringStage(scorer, EmissionPolicy(delta=0.02))
    rng = np.random.default_rng(3)
    rows = [list(rng.lognormal(2, 1, len(FEATURE_NAMES))) for _ in range(5)]
    broken = list(rows[2])
    broken[0] = math.inf  # XGBoost refuses infinite input
    clients = [_rescore(f"c{i}", row) for i, row in enumerate(rows)]
    clients[2] = _rescore("c2", broken)
    try:
        scored = asyncio.run(stage.run(clients))
        assert [f.client.state.client_id for f in scored.failures] == ["c2"]
        assert "inf" in scored.failures[0].error.lower()
        assert {p.client_id for p in scored.predictions} == {"c0", "c1", "c3", "c4"}
        assert all(p.reason == "first" and len(p.drivers) == 5 for p in scored.predictions)
        assert clients[0].state.emitted is not None
        assert clients[2].state.emitted is None
        # The same features again: nothing moved, nothing emitted.
        again = [Rescore(c.state, c.features, 2e9, "later", 2e9, None) for c in clients]
        assert asyncio.run(stage.run(again)).predictions == []
    finally:
        stage.close()
