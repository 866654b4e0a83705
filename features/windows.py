"""Event-time windows over daily buckets.

A window of N days, as of time T, covers the N UTC calendar days ending with T's day
(so a 30-day window as of 2025-03-31 12:00 covers 2025-03-02 to 2025-03-31). Buckets are
per UTC day, which makes every window a sum of whole buckets and lets windows decay as
``as_of`` moves forward even when no event arrives.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence

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

    Days after ``as_of_day`` are ignored; ``windows`` must be ascending. Each field is
    summed over its days in ascending day order with the built-in ``sum`` on a column
    (a C loop), so the result does not depend on the dict's insertion order.
    """
    longest = max(windows)
    inside = sorted(day for day in days if 0 <= as_of_day - day < longest)
    if not inside:
        return [[0.0] * width for _ in windows]
    columns = list(zip(*(days[day] for day in inside), strict=True))
    totals = []
    for length in windows:
        start = bisect_left(inside, as_of_day - length + 1)
        if start == 0:
            totals.append([sum(column) for column in columns])
        elif start == len(inside):
            totals.append([0.0] * width)
        else:
            totals.append([sum(column[start:]) for column in columns])
    return totals


def oldest_useful_day(watermark_day: int) -> int:
    """Buckets before this day can fall in no window as of the watermark or later."""
    return watermark_day - LONGEST_WINDOW_DAYS + 1
