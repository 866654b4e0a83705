"""Scoring (pure apart from the model call): tiers, ids, drivers, one call per batch."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from features.definitions import FEATURE_NAMES
from features.simulator import history_frame, simulate, simulated_messages
from models_store.bundle import verify_bundle
from models_store.profit_model import ProfitModel
from models_store.registry import open_registry
from models_store.scoring import Scorer, prediction_id, risk_tier, top_drivers
from models_store.training import TrainingRequest, TrainingResult, train
from models_store.tuning import SearchBudget

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("margin", "tier"),
    [(-0.4, "loss"), (-1e-9, "loss"), (0.0, "at_risk"), (0.2499, "at_risk"), (0.25, "healthy"),
     (0.4999, "healthy"), (0.5, "strong"), (0.93, "strong")],
)  # fmt: skip
def test_risk_tiers_have_documented_bounds(margin: float, tier: str) -> None:
    assert risk_tier(margin) == tier


def test_prediction_ids_are_deterministic_and_distinct() -> None:
    first = prediction_id("client-1", "ev-9", "profitability@1.0.0")
    assert first == prediction_id("client-1", "ev-9", "profitability@1.0.0")
    assert len(first) == 32
    others = {
        prediction_id("client-2", "ev-9", "profitability@1.0.0"),
        prediction_id("client-1", "ev-10", "profitability@1.0.0"),
        prediction_id("client-1", "ev-9", "profitability@1.0.1"),
    }
    assert first not in others
    assert len(others) == 3


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
        assert score.tier == risk_tier(score.margin)
        assert len(score.drivers) == 4
    with pytest.raises(ValueError, match="expected rows of"):
        scorer.score(x[:, :10])
