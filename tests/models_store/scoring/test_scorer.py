"""Scoring (pure apart from the model call): tiers, drivers, one call per batch, and a
row's score independent of its batch."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from features.definitions import FEATURE_NAMES
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.portfolio import simulate
from models_store.model.profit_model import ProfitModel
from models_store.registry import open_registry
from models_store.registry.bundle import verify_bundle
from models_store.registry.card import RiskTiers
from models_store.scoring.scorer import Scorer, top_drivers
from models_store.training.train import TrainingRequest, TrainingResult, train
from models_store.training.tuning import SearchBudget

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("margin", "tier"),
    [(-0.4, "loss"), (-1e-9, "loss"), (0.0, "at_risk"), (0.2499, "at_risk"), (0.25, "healthy"),
     (0.4999, "healthy"), (0.5, "strong"), (0.93, "strong")],
)  # fmt: skip
def test_risk_tiers_have_documented_bounds(margin: float, tier: str) -> None:
    assert RiskTiers().tier(margin) == tier  # the margin ratio's, and older cards'


def test_top_drivers_by_absolute_contribution_with_undefined_values() -> None:
    names = ("a", "b", "c", "d")
    contributions = np.array([0.1, -0.5, 0.3, 0.0, 0.42])  # the last column is the bias
    values = np.array([1.0, math.nan, 3.0, 4.0])
    drivers = top_drivers(contributions, values, names, 3)
    assert [d.feature for d in drivers] == ["b", "c", "a"]
    assert drivers[0].value is None
    assert drivers[0].contribution == -0.5


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    log = history_frame(simulated_messages(simulate(100, 15, seed=4, start=START)))
    request = TrainingRequest(name="margin", version="1.0.0", validation_cutoffs=2, test_cutoffs=2,
                              budget=SearchBudget(4, 2, 30))  # fmt: skip
    return train(log, request, tmp_path_factory.mktemp("bundles"))


def test_the_scorer_loads_from_the_registry_and_scores_like_the_model(
    trained: TrainingResult, tmp_path: Path
) -> None:
    registry = open_registry(str(tmp_path / "registry"))
    registry.register(trained.bundle)
    scorer = Scorer.from_registry(registry, "margin@1.0.0", tmp_path / "cache", drivers=4)
    model = ProfitModel.load(trained.bundle, verify_bundle(trained.bundle))
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.5, size=(50, len(FEATURE_NAMES)))
    x[::7, 3] = np.nan
    scores = scorer.score(x)
    margin = model.predict(x)
    lower, upper = model.interval(x, margin)
    for i, score in enumerate(scores):
        assert score.margin == pytest.approx(margin[i], abs=1e-12)
        assert (score.lower, score.upper) == pytest.approx((lower[i], upper[i]), abs=1e-12)
        assert score.lower <= score.margin <= score.upper
        assert score.level == 0.9
        assert score.tier == scorer.card.risk_tiers.tier(score.margin)
        assert len(score.drivers) == 4
    with pytest.raises(ValueError, match="expected rows of"):
        scorer.score(x[:, :10])


def test_a_rows_score_does_not_depend_on_the_rest_of_its_batch(trained: TrainingResult) -> None:
    # The stream scores whatever clients a batch changed in one call; a replay batches them
    # otherwise, and must still produce the same payload (drivers included) for a row.
    scorer = Scorer(verify_bundle(trained.bundle),
                    ProfitModel.load(trained.bundle, verify_bundle(trained.bundle)))  # fmt: skip
    rng = np.random.default_rng(5)
    x = rng.lognormal(1.0, 1.0, size=(200, len(FEATURE_NAMES)))
    x[::5, 7] = np.nan
    alone = [scorer.score(x[i : i + 1])[0] for i in range(len(x))]
    for _ in range(10):
        rows = rng.permutation(len(x))[: rng.integers(2, len(x))]
        assert scorer.score(x[rows]) == [alone[i] for i in rows]
