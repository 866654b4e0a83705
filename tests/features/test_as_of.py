"""The one as-of rule (pure): what `score --as-of`, `/features?as_of=` and a training
cutoff mean, and every hostile spelling refused with a reason."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.as_of import AS_OF_MAX, BEFORE_DAY_S, before_day, day_start, parse_as_of

# Timing depends on the (shared, 2-core) machine more than on the code.
_NO_DEADLINE = settings(deadline=None)
_ANY_TEXT = st.text(st.characters(codec=None), max_size=60)  # lone surrogates included


# The 9 probes of issue 13 finding 5, at the edge (the live worker: test_http_fuzz.py).
@pytest.mark.parametrize("raw", ["1e308", "1e12", "-1", "1" * 400, "0001-01-01T00:00:00Z"])
def test_as_of_outside_the_range_of_event_times_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="between 1970-01-01T00:00:00Z and 2999-12-31"):
        parse_as_of(raw)


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "Infinity", "1_000", "١٢٣", " 12"])
def test_as_of_is_no_number_python_reads_loosely(raw: str) -> None:
    with pytest.raises(ValueError, match="is neither epoch seconds nor an ISO-8601 time"):
        parse_as_of(raw)


def test_as_of_takes_epoch_seconds_and_iso_times_with_an_offset() -> None:
    assert parse_as_of("1735603200") == 1735603200.0
    assert parse_as_of("1.7356032e9") == 1735603200.0
    assert parse_as_of("2024-12-31T00:00:00Z") == 1735603200.0
    assert parse_as_of("2024-12-31T02:00:00+02:00") == 1735603200.0
    assert parse_as_of("2024-12-31T00:00:00.250-05:00") == 1735603200.0 + 5 * 3600 + 0.25
    assert parse_as_of("2999-12-31T23:59:59Z") == AS_OF_MAX
    with pytest.raises(ValueError, match=r"needs a UTC offset, e\.g\. 2024-12-31T00:00:00Z"):
        parse_as_of("2024-12-31T00:00:00")
    for garbage in ("0x10", "2025-02-30T00:00:00Z"):
        with pytest.raises(ValueError, match="neither epoch seconds nor an ISO-8601 time"):
            parse_as_of(garbage)
    with pytest.raises(ValueError, match="not a calendar date"):
        parse_as_of("2025-02-30")
    with pytest.raises(ValueError, match="must be between"):
        parse_as_of("9999-12-31T23:59:59-23:59")


@given(st.dates(min_value=date(1970, 1, 2), max_value=date(2999, 12, 31)))
def test_a_date_is_everything_before_that_utc_day(day: date) -> None:
    """As of D = the last millisecond of the day before, whatever the date: the instant a
    training cutoff D's features are computed at, and inside the day before D."""
    as_of = parse_as_of(day.isoformat())
    assert as_of == before_day(day_start(day))
    assert day_start(day) - BEFORE_DAY_S * 1.5 < as_of < day_start(day)
    moment = datetime.fromtimestamp(as_of, UTC)
    assert moment.date() == day - timedelta(days=1)


@_NO_DEADLINE
@given(st.one_of(_ANY_TEXT, st.floats().map(repr), st.integers().map(str),
                 st.datetimes(timezones=st.timezones()).map(datetime.isoformat)))  # fmt: skip
def test_as_of_is_a_time_datetime_holds_or_a_value_error(raw: str) -> None:
    try:
        as_of = parse_as_of(raw)
    except ValueError:
        return
    assert datetime.fromtimestamp(as_of, UTC).year < 3000
