"""Cutoff schedules (pure): which UTC days of a history's span are training cutoffs.

A cutoff is the start of a UTC day; its rows are as of the instant before it
(``features.as_of``) and its label is the horizon after it. A cutoff needs history
before it and a whole horizon after it: start < t and t + H <= end.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

from features.as_of import day_start
from features.windows import DAY_SECONDS
from models_store.errors import TrainingDataError


def parse_duration_days(text: str) -> int:
    """``90d`` (or ``90``) → 90; anything else is a clear error."""
    value = text.strip().lower().removesuffix("d")
    if not value.isdigit() or int(value) <= 0:
        raise TrainingDataError(f"duration {text!r} is not a number of days such as 90d")
    return int(value)


def is_explicit(spec: str) -> bool:
    """Whether ``spec`` lists dates rather than a rule (``30d``, ``monthly``)."""
    return "," in spec or "-" in spec


def explicit_dates(spec: str) -> list[float]:
    """``YYYY-MM-DD,...`` as sorted, distinct day starts (00:00 UTC)."""
    cutoffs = set()
    for text in spec.split(","):
        try:
            day = date.fromisoformat(text.strip())
        except ValueError:
            raise TrainingDataError(
                f"cutoff {text.strip()!r} is not a YYYY-MM-DD date (a cutoff is a whole UTC "
                "day: its rows hold everything before it)"
            ) from None
        if len(text.strip()) != 10:
            raise TrainingDataError(
                f"cutoff {text.strip()!r}: write the UTC day as YYYY-MM-DD (a cutoff is a "
                "whole day: its rows hold everything before it)"
            )
        cutoffs.add(day_start(day))
    return sorted(cutoffs)


def schedule(spec: str, start: float, end: float, horizon_s: float) -> list[float]:
    """The cutoffs of ``spec`` inside (start, end − H]: ``30d`` (every 30 days from the first
    day), ``monthly`` (each first of a calendar month) or explicit dates. Empty when none
    fits; an explicit date outside the usable range is an error naming the range."""
    spec = spec.strip().lower()
    last = end - horizon_s
    if spec == "monthly":
        cutoffs: list[float] = []
        day = datetime.fromtimestamp(start, UTC).date().replace(day=1)
        while True:
            day = (day + timedelta(days=32)).replace(day=1)
            t = day_start(day)
            if t > last:
                return cutoffs
            cutoffs.append(t)
    if is_explicit(spec):
        cutoffs = explicit_dates(spec)
        for t in cutoffs:
            if not start < t <= last:
                raise TrainingDataError(
                    f"cutoff {day_text(t)} is outside the usable range: the history runs "
                    f"{day_text(start)} to {day_text(end)}, so cutoffs must fall after "
                    f"{day_text(start)} and no later than {day_text(last)}"
                )
        return cutoffs
    step = parse_duration_days(spec) * DAY_SECONDS
    steps = np.arange(start + step, last + 1, step, dtype=np.float64)
    return [float(t) for t in steps if t <= last]


def first_cutoff_lead_s(spec: str, start: float) -> float:
    """How far after the history's start the schedule's first cutoff can fall at best."""
    spec = spec.strip().lower()
    if spec == "monthly":
        first = datetime.fromtimestamp(start, UTC).date().replace(day=1) + timedelta(days=32)
        return day_start(first.replace(day=1)) - start
    if is_explicit(spec):
        return DAY_SECONDS
    return float(parse_duration_days(spec) * DAY_SECONDS)


def day_text(t: float) -> str:
    """The UTC date of ``t``, ``YYYY-MM-DD``."""
    return datetime.fromtimestamp(t, UTC).date().isoformat()
