"""Comparisons shared by the feature tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

from features.definitions import FEATURE_NAMES

REL_TOL = 1e-9


def assert_features_close(
    actual: Sequence[float], expected: Sequence[float], context: str = ""
) -> None:
    """Equal feature vectors: NaN matches NaN, floats to 1e-9 relative."""
    assert len(actual) == len(expected) == len(FEATURE_NAMES)
    for name, a, e in zip(FEATURE_NAMES, actual, expected, strict=True):
        if math.isnan(e):
            assert math.isnan(a), f"{context} {name}: {a} != NaN"
        else:
            assert math.isclose(a, e, rel_tol=REL_TOL, abs_tol=1e-12), (
                f"{context} {name}: {a} != {e}"
            )
