"""Reading one cell: numbers with the source's separators, whole numbers, booleans, times
with offsets (or in the mapping's time zone), lists; Parquet's own types as they come."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from features.imports.cells import (
    CellError,
    CellFormat,
    NaiveTimeError,
    boolean_of,
    decimal_of,
    instant_of,
    integer_of,
    is_blank,
    items_of,
    number_of,
    text_of,
)

PLAIN = CellFormat()
GERMAN = CellFormat(decimal_separator=",", thousands_separator=".")
LONDON = CellFormat(timezone=ZoneInfo("Europe/London"))


@pytest.mark.parametrize(("cell", "fmt", "expected"), [
    ("139.12", PLAIN, Decimal("139.12")), (" 7 ", PLAIN, Decimal(7)), ("1e3", PLAIN, Decimal(1000)),
    ("1.234,50", GERMAN, Decimal("1234.50")), (12, PLAIN, Decimal(12)),
    (0.1, PLAIN, Decimal("0.1")), (Decimal("2.50"), PLAIN, Decimal("2.50")),
])  # fmt: skip
def test_numbers_read_exactly(cell: object, fmt: CellFormat, expected: Decimal) -> None:
    assert decimal_of(cell, fmt) == expected


@pytest.mark.parametrize("cell", ["12,50", "€5", "NaN", "inf", "", True, float("nan")])
def test_what_is_not_a_finite_number_is_unreadable(cell: object) -> None:
    with pytest.raises(CellError) as caught:
        number_of(cell, PLAIN)
    assert caught.value.reason == "unreadable"


def test_whole_numbers_take_no_fraction() -> None:
    assert integer_of("5", PLAIN) == integer_of("5.0", PLAIN) == integer_of(5.0, PLAIN) == 5
    with pytest.raises(CellError, match="not a whole number"):
        integer_of("5.5", PLAIN)


@pytest.mark.parametrize(("cell", "expected"), [
    ("yes", True), ("Y", True), ("TRUE", True), ("1", True), (1, True), (True, True),
    ("no", False), ("f", False), ("0", False), (False, False), (0.0, False),
])  # fmt: skip
def test_booleans(cell: object, expected: bool) -> None:
    assert boolean_of(cell) is expected


def test_a_boolean_is_not_guessed() -> None:
    with pytest.raises(CellError, match="not true/false"):
        boolean_of("maybe")


@pytest.mark.parametrize(("cell", "expected"), [
    ("2024-03-01T09:00:00Z", datetime(2024, 3, 1, 9, tzinfo=UTC)),
    ("2024-03-01T10:00:00+01:00", datetime(2024, 3, 1, 9, tzinfo=UTC)),
    ("2024-03-01 10:00:00.5+01:00", datetime(2024, 3, 1, 9, 0, 0, 500_000, tzinfo=UTC)),
    (pd.Timestamp("2024-03-01 10:00", tz="Europe/Paris"), datetime(2024, 3, 1, 9, tzinfo=UTC)),
    (datetime(2024, 3, 1, 4, tzinfo=timezone(timedelta(hours=-5))),
     datetime(2024, 3, 1, 9, tzinfo=UTC)),
])  # fmt: skip
def test_times_with_an_offset_need_no_time_zone(cell: object, expected: datetime) -> None:
    assert instant_of(cell, PLAIN) == expected


@pytest.mark.parametrize(("cell", "expected"), [
    ("2024-01-15 09:00", datetime(2024, 1, 15, 9, tzinfo=UTC)),  # winter: GMT
    ("2024-07-15 09:00", datetime(2024, 7, 15, 8, tzinfo=UTC)),  # summer: BST
    ("2024-07-15", datetime(2024, 7, 14, 23, tzinfo=UTC)),  # a date: its local midnight
    (date(2024, 7, 15), datetime(2024, 7, 14, 23, tzinfo=UTC)),
    (pd.Timestamp("2024-07-15 09:00"), datetime(2024, 7, 15, 8, tzinfo=UTC)),
])  # fmt: skip
def test_times_without_an_offset_are_read_in_the_time_zone(
    cell: object, expected: datetime
) -> None:
    assert instant_of(cell, LONDON) == expected
    with pytest.raises(NaiveTimeError):
        instant_of(cell, PLAIN)


def test_a_time_format_reads_local_exports() -> None:
    fmt = CellFormat(timezone=ZoneInfo("Europe/London"), time_format="%m/%d/%Y %H:%M")
    assert instant_of("12/1/2010 8:26", fmt) == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    with pytest.raises(CellError, match="not a time"):
        instant_of("2010-12-01 08:26", fmt)
    with pytest.raises(CellError, match="not a time"):
        instant_of(1_700_000_000, LONDON)  # an epoch number: seconds or milliseconds?


def test_ids_lose_a_float_columns_fraction_only() -> None:
    assert text_of(12346.0) == "12346"
    assert text_of(" 00123 ") == "00123"
    assert text_of(12.5) == "12.5"


def test_lists_and_blanks() -> None:
    assert items_of("helpdesk; backup") == ["helpdesk", "backup"]
    assert items_of("a|b") == ["a", "b"]
    assert items_of(np.array(["cloud", "network"])) == ["cloud", "network"]
    blanks: list[object] = ["", "  ", None, float("nan"), pd.NaT, pd.NA, [], np.array([])]
    for blank in blanks:
        assert is_blank(blank)
    for value in ("0", 0, False, ["x"]):
        assert not is_blank(value)
