"""Training/serving shift: values outside the training range are counted (pure)."""

from __future__ import annotations

import math

import numpy as np

from models_store.registry.card import FeatureSpec
from models_store.scoring.shift import outside_training_range, shift_summary, training_ranges


def test_ranges_ignore_undefined_values_and_older_cards_never_flag() -> None:
    rows = np.array([[1.0, math.nan, 5.0], [3.0, math.nan, -2.0]])
    assert training_ranges(rows, ["a", "b", "c"]) == {
        "a": (1.0, 3.0), "b": (None, None), "c": (-2.0, 5.0)
    }  # fmt: skip
    specs = [FeatureSpec(name="a", training_min=1.0, training_max=3.0), FeatureSpec(name="b"),
             FeatureSpec(name="c", training_min=-2.0, training_max=5.0)]  # fmt: skip
    scored = np.array([[1.0, 1e9, 5.0], [0.5, 0.0, math.nan], [3.5, math.nan, 6.0]])
    outside = outside_training_range(scored, specs)
    assert outside.tolist() == [[False, False, False], [True, False, False], [True, False, True]]
    assert shift_summary(outside, ["a", "b", "c"]) == (
        "2 of 3 rows (67%); most often a (67%), c (33%)"
    )
    assert shift_summary(outside[:1], ["a", "b", "c"]) == ""
