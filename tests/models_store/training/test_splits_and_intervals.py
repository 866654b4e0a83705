"""Conformal intervals and metrics (pure, with hypothesis); the splits: test_splits.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models_store.model.conformal import conformal_quantile, coverage, interval, scores
from models_store.training.evaluation import (
    best_blend_weight,
    persistence_baseline,
    regression_metrics,
)

DAY = 86_400.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), level=st.sampled_from([0.8, 0.9, 0.95]))
def test_conformal_intervals_cover_exchangeable_rows(seed: int, level: float) -> None:
    rng = np.random.default_rng(seed)
    n_cal, n_new = 2000, 4000
    scale = rng.lognormal(0, 0.7, n_cal + n_new)  # heteroscedastic noise, σ known up to a factor
    y = rng.normal(0, 1, n_cal + n_new) * scale
    predicted = np.zeros_like(y)
    q = conformal_quantile(scores(y[:n_cal], predicted[:n_cal], 3 * scale[:n_cal]), level)
    lower, upper = interval(predicted[n_cal:], 3 * scale[n_cal:], q)
    assert abs(coverage(y[n_cal:], lower, upper) - level) < 0.03


def test_conformal_quantile_is_the_corrected_rank() -> None:
    values = np.arange(1.0, 11.0)  # 1..10
    assert conformal_quantile(values, 0.5) == 6.0  # ceil(11 * 0.5) = 6th smallest
    assert conformal_quantile(values, 0.95) == float("inf")  # too few rows for that level
    with pytest.raises(ValueError, match="not in"):
        conformal_quantile(values, 1.0)


def test_metrics_and_baselines() -> None:
    actual = np.array([0.1, 0.2, 0.3, 0.4])
    perfect = regression_metrics(actual, actual.copy())
    assert perfect["r2"] == 1.0
    assert perfect["mae"] == 0.0
    mean = regression_metrics(actual, np.full(4, actual.mean()))
    assert mean["r2"] == pytest.approx(0.0)
    assert list(persistence_baseline(np.array([0.5, np.nan]), 0.2)) == [0.5, 0.2]
    rng = np.random.default_rng(1)
    truth = rng.normal(size=500)
    first, second = truth + rng.normal(0, 0.5, 500), truth + rng.normal(0, 1.0, 500)
    # For Gaussian errors the least-MAE blend is the least-variance one: 1/0.25 : 1/1 → 0.8.
    assert best_blend_weight(truth, first, second) == pytest.approx(0.8, abs=0.1)
    assert best_blend_weight(truth, truth, second) == 1.0
    assert best_blend_weight(truth, second, truth) == 0.0
