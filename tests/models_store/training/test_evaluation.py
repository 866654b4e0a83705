"""Report figures: totals, rank correlation, calibration bins, errors by segment (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models_store.training.evaluation import (
    best_blend_weight,
    calibration_bins,
    errors_by_segment,
    regression_metrics,
)


def test_the_total_and_the_ranking_show_what_mae_hides() -> None:
    actual = np.array([0.0, 0.0, 0.0, 10.0, 30.0])
    # Predicting 0 for everyone: a small MAE for zero-inflated money, but the total is
    # 100% short and the ranking says nothing.
    zeros = regression_metrics(actual, np.zeros(5))
    assert zeros["total_error"] == -1.0
    assert "spearman" not in zeros  # undefined: JSON has no NaN, the card leaves it out
    ordered = regression_metrics(actual, np.array([1.0, 2.0, 3.0, 8.0, 26.0]))
    assert ordered["total_error"] == pytest.approx(40 / 40 - 1)
    assert ordered["spearman"] > 0.8
    assert "total_error" not in regression_metrics(np.zeros(3), np.ones(3))


def test_calibration_bins_compare_means_per_bin_of_the_prediction() -> None:
    rng = np.random.default_rng(0)
    predicted = rng.uniform(0, 100, 10_000)
    actual = predicted + rng.normal(0, 5, 10_000)
    bins = calibration_bins(actual, predicted)
    assert len(bins) == 10
    assert bins["rows"].sum() == 10_000
    assert bins["predicted"].is_monotonic_increasing
    np.testing.assert_allclose(bins["actual"], bins["predicted"], atol=0.5)
    assert len(calibration_bins(actual[:3], predicted[:3])) == 3


def test_errors_by_segment() -> None:
    segments = pd.Series(["small", "small", "large"])
    table = errors_by_segment(np.array([1.0, 2.0, 10.0]), np.array([2.0, 2.0, 4.0]), segments)
    by = table.set_index("segment")
    assert by.loc["small", "mae"] == 0.5
    assert by.loc["large", "bias"] == -6.0
    assert by.loc["large", "rows"] == 1


def test_the_blend_weight_follows_the_metric_the_target_needs() -> None:
    # Mostly zeros with rare large values: the median-like component wins on MAE, the
    # mean-like one on RMSE.
    actual = np.array([0.0] * 8 + [100.0, 100.0])
    median_like, mean_like = np.zeros(10), np.full(10, 20.0)
    assert best_blend_weight(actual, median_like, mean_like, metric="mae") == 1.0
    assert best_blend_weight(actual, median_like, mean_like, metric="rmse") == 0.0
