"""Event-time windows over daily buckets.

A window of N days, as of time T, covers the N UTC calendar days ending with T's day
(so a 30-day window as of 2025-03-31 12:00 covers 2025-03-02 to 2025-03-31). Buckets are
per UTC day, which makes every window a sum of whole buckets and lets windows decay as
``as_of`` moves forward even when no event arrives.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import chain

import numpy as np

DAY_SECONDS = 86_400
WINDOWS_DAYS: tuple[int, ...] = (30, 90, 180)
LONGEST_WINDOW_DAYS = max(WINDOWS_DAYS)


def day_of(timestamp: float) -> int:
    """The UTC day number (days since 1970-01-01) of a timestamp in seconds."""
    return math.floor(timestamp / DAY_SECONDS)


def window_totals(
    days: Mapping[int, Sequence[float]],
    as_of_day: int,
    windows: Sequence[int],
    width: int,
) -> list[list[float]]:
    """Per window, the element-wise sum of the buckets of the days inside it.

    Days after ``as_of_day`` are ignored; ``windows`` must be ascending. Each sum adds
    the days in ascending order (``cumsum`` is sequential, unlike ``sum``), so the float
    result does not depend on the dict's insertion order.
    """
    longest = max(windows)
    inside = sorted(day for day in days if 0 <= as_of_day - day < longest)
    if not inside:
        return [[0.0] * width for _ in windows]
    # fromiter over one flat chain is several times faster than array() of nested lists.
    flat = chain.from_iterable(days[day] for day in inside)
    matrix = np.fromiter(flat, np.float64, count=len(inside) * width).reshape(-1, width)
    ordered = np.array(inside)
    totals = []
    for length in windows:
        start = int(np.searchsorted(ordered, as_of_day - length + 1))
        if start == len(inside):
            totals.append([0.0] * width)
        else:
            totals.append(np.cumsum(matrix[start:], axis=0)[-1].tolist())
    return totals


def oldest_useful_day(watermark_day: int) -> int:
    """Buckets before this day can fall in no window as of the watermark or later."""
    return watermark_day - LONGEST_WINDOW_DAYS + 1
