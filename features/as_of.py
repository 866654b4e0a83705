"""The as-of rule: which events a feature row "as of T" holds, for training, scoring and serving.

Features as of an instant T hold every valid event with ``event_time <= T``, and their
windows are the whole UTC days ending with T's day (``features.windows``). T is written
as epoch seconds or as an ISO-8601 time with a UTC offset (``Z``, ``+02:00``); a time
without an offset is refused, never guessed.

A date D (``2025-01-10``) stands for the last millisecond before D begins in UTC: as of
D means everything that happened before D, windows ending with the day before. A training
cutoff D is exactly that, so ``score --as-of D`` on an event log gives the training rows
of cutoff D, and the horizon of its label starts where the features stop.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

# A date is as of one millisecond before it starts: the resolution of a Kafka timestamp.
BEFORE_DAY_S = 0.001
AS_OF_MIN = datetime(1970, 1, 1, tzinfo=UTC).timestamp()
AS_OF_MAX = datetime(3000, 1, 1, tzinfo=UTC).timestamp() - 1
AS_OF_RANGE = "between 1970-01-01T00:00:00Z and 2999-12-31T23:59:59Z (epoch 0 to 32503679999)"
AS_OF_EXAMPLES = "2025-01-10 (everything before that UTC day) or 2025-01-10T12:00:00Z"
# Epoch seconds spelled in ASCII: float() alone would also take "nan", "1_0", "١٢".
_EPOCH = re.compile(r"-?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def day_start(day: date) -> float:
    """00:00 UTC of ``day`` in epoch seconds."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def before_day(boundary: float) -> float:
    """The as-of instant of a date (or training cutoff) whose day starts at ``boundary``."""
    return boundary - BEFORE_DAY_S


def parse_as_of(text: str) -> float:
    """The as-of instant T of ``text`` (see the module docstring); ``ValueError`` saying
    why when it is no date, no time with an offset, no epoch number, or out of range."""
    raw = text  # not stripped: " 12" is no number a careful client sends
    shown = repr(raw[:40])
    if _EPOCH.fullmatch(raw):
        # float() of a long digit string is inf, never an error; the range check refuses it.
        instant = float(raw)
    elif _DATE.fullmatch(raw):
        try:
            instant = before_day(day_start(date.fromisoformat(raw)))
        except ValueError:
            raise ValueError(f"{shown} is not a calendar date, e.g. {AS_OF_EXAMPLES}") from None
    else:
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise ValueError(
                f"{shown} is neither epoch seconds nor an ISO-8601 time or date, "
                f"e.g. {AS_OF_EXAMPLES}"
            ) from None
        if moment.utcoffset() is None:
            raise ValueError(
                f"{shown} needs a UTC offset, e.g. {moment:%Y-%m-%dT%H:%M:%S}Z or "
                f"{moment:%Y-%m-%dT%H:%M:%S}+02:00"
            )
        instant = moment.timestamp()  # any year 1 to 9999 and offset: a float, checked after
    if not AS_OF_MIN <= instant <= AS_OF_MAX:
        raise ValueError(f"{shown} must be {AS_OF_RANGE}")
    return instant


def parse_end(text: str) -> float:
    """The end of a history cut at ``text`` (``train --until``): a date's 00:00 UTC, so the
    history holds what is as of that date; a time (with an offset) or epoch seconds as is."""
    if _DATE.fullmatch(text):
        parse_as_of(text)  # the same checks and messages as an as-of date
        return day_start(date.fromisoformat(text))
    return parse_as_of(text)
