"""The training reference of drift: decile bins, missing values apart, driver shares (pure)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from features.definitions import CALENDAR_FEATURES, FEATURE_NAMES
from models_store.monitoring.window import Binner
from models_store.registry.drift_reference import (
    BinnedDistribution,
    binned,
    drift_reference,
    driver_indices,
)
from models_store.scoring.scorer import top_drivers


def test_bins_sit_at_the_deciles_and_missing_values_are_apart() -> None:
    values = np.concatenate([np.arange(1000, dtype=np.float64), [math.nan, math.inf]])
    distribution = binned(values)
    assert distribution.edges == [100.0 * i for i in range(1, 10)]
    assert distribution.counts == [100] * 10
    assert distribution.missing == 2
    assert distribution.rows == 1002


def test_ties_merge_bins_and_no_bin_is_empty_in_training() -> None:
    zeros_mostly = np.array([0.0] * 700 + [1.0] * 200 + [5.0] * 100)
    distribution = binned(zeros_mostly)
    assert distribution.edges == [1.0, 5.0]
    assert distribution.counts == [700, 200, 100]
    assert binned(np.full(50, 3.0)) == BinnedDistribution(edges=[], counts=[50], missing=0)
    assert binned(np.full(4, math.nan)) == BinnedDistribution(edges=[], counts=[0], missing=4)


def test_the_reference_leaves_calendar_features_out_and_counts_drivers_like_scoring() -> None:
    rng = np.random.default_rng(1)
    rows = rng.lognormal(2, 1, (300, len(FEATURE_NAMES)))
    contributions = rng.normal(size=(40, len(FEATURE_NAMES)))
    reference = drift_reference(rows, FEATURE_NAMES, rows[:, 0], contributions, 5)
    assert set(reference.features) == set(FEATURE_NAMES) - set(CALENDAR_FEATURES)
    assert reference.prediction.rows == 300
    expected: dict[str, int] = {}
    for i in range(40):
        for driver in top_drivers(contributions[i], rows[i], FEATURE_NAMES, 5):
            expected[driver.feature] = expected.get(driver.feature, 0) + 1
    shares = {n: s for n, s in reference.driver_share.items() if s > 0}
    kept = {n: c / 40 for n, c in expected.items() if n not in CALENDAR_FEATURES}
    assert shares == kept
    assert driver_indices(contributions, 5).shape == (40, 5)


special = st.sampled_from([math.nan, math.inf, 0.0, 1.0])
column_values = arrays(np.float64, st.integers(1, 60), elements=st.floats(-5, 5) | special)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(column_values, column_values), min_size=1, max_size=4))
def test_the_binner_counts_each_column_as_searchsorted_does(
    columns: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    distributions = [binned(train) for train, _ in columns]
    rows = max(len(scored) for _, scored in columns)
    matrix = np.full((rows, len(columns)), math.nan)
    for c, (_, scored) in enumerate(columns):
        matrix[: len(scored), c] = scored
    binner = Binner.of(distributions)
    counted = binner.count(matrix)
    for c, distribution in enumerate(distributions):
        values = matrix[:, c]
        finite = values[np.isfinite(values)]
        bins = len(distribution.edges) + 1
        expected = np.bincount(np.searchsorted(distribution.edges, finite, side="right"),
                               minlength=bins)  # fmt: skip
        assert counted[c, :bins].tolist() == expected.tolist()
        assert counted[c, bins] == np.count_nonzero(~np.isfinite(values))
        assert counted[c, bins + 1 :].sum() == 0
    reference = binner.reference(distributions)
    for c, distribution in enumerate(distributions):
        assert reference[c].sum() == distribution.rows
