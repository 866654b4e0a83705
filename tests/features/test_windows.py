"""Daily buckets and windows (pure)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from features.windows import DAY_SECONDS, day_of, window_totals


def test_day_of_is_the_utc_day() -> None:
    assert day_of(0) == 0
    assert day_of(DAY_SECONDS - 0.001) == 0
    assert day_of(-1) == -1
    assert day_of(datetime(2025, 3, 31, 23, 59, tzinfo=UTC).timestamp()) == 20178


def test_a_window_covers_the_n_days_ending_with_as_of() -> None:
    days = {100: [1.0], 71: [10.0], 70: [100.0], 101: [1000.0]}
    (thirty,) = window_totals(days, as_of_day=100, windows=(30,), width=1)
    assert thirty == [11.0]  # days 71..100; 70 is outside, 101 is after as_of


@given(
    st.dictionaries(
        st.integers(0, 400), st.lists(st.floats(0, 1e6), min_size=2, max_size=2), max_size=60
    ),
    st.integers(0, 400),
)
def test_windows_are_nested_and_match_a_direct_sum(
    days: dict[int, list[float]], as_of: int
) -> None:
    totals = window_totals(days, as_of, (30, 90, 180), width=2)
    for length, row in zip((30, 90, 180), totals, strict=True):
        inside = [values for day, values in sorted(days.items()) if 0 <= as_of - day < length]
        for field in range(2):
            expected = 0.0
            for values in inside:
                expected += values[field]
            # Python 3.12+ compensates float sums, so compare to rounding, not to the bit.
            assert math.isclose(row[field], expected, rel_tol=1e-12, abs_tol=1e-9)
    # Bit for bit independent of insertion order: stream and offline build dicts differently.
    shuffled = dict(sorted(days.items(), reverse=True))
    assert window_totals(shuffled, as_of, (30, 90, 180), width=2) == totals
    assert all(a <= b for a, b in zip(totals[0], totals[1], strict=True))
    assert all(a <= b for a, b in zip(totals[1], totals[2], strict=True))
