"""One cell of an export read as the type an event field needs: text, number, integer,
boolean, time or a list of choices. A CSV cell is text; a Parquet cell may already be a
number, a timestamp or a list. Nothing is guessed: what does not read is an error that
says why, and a time without an offset needs a time zone from the mapping."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Literal

import pandas as pd

CellProblem = Literal["missing", "unreadable"]
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
LIST_SEPARATORS = (";", "|", ",")


class CellError(ValueError):
    """A cell that is empty where a value is needed (``missing``) or does not read as its
    type (``unreadable``)."""

    def __init__(self, reason: CellProblem, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: CellProblem = reason
        self.detail = detail


class NaiveTimeError(ValueError):
    """A time without a UTC offset while the mapping names no time zone: the whole mapping
    is wrong, not one row."""


@dataclass(frozen=True)
class CellFormat:
    """How a source writes numbers and times."""

    timezone: tzinfo | None = None
    time_format: str | None = None  # strptime format; None: ISO-8601
    decimal_separator: str = "."
    thousands_separator: str = ""


def is_blank(value: object) -> bool:
    """An empty cell: an empty or blank text, a missing value (None, NaN, NaT, NA) or an
    empty list."""
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple):
        return len(value) == 0
    if hasattr(value, "__len__") and hasattr(value, "dtype"):  # a numpy array from Parquet
        return len(value) == 0
    try:
        return bool(pd.isna(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return False


def text_of(value: object) -> str:
    """A cell as text: an integral number without its ``.0`` (a Parquet float column of ids
    holds 12346.0 for 12346)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value)


def decimal_of(value: object, fmt: CellFormat) -> Decimal:
    """A finite decimal number from a number or a text such as ``1234.50`` (or
    ``1.234,50`` with the source's separators)."""
    if isinstance(value, bool):
        raise CellError("unreadable", f"{value!r} is a boolean, not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CellError("unreadable", f"{value!r} is not a finite number")
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        number = value
    else:
        text = str(value).strip()
        if fmt.thousands_separator:
            text = text.replace(fmt.thousands_separator, "")
        if fmt.decimal_separator != ".":
            text = text.replace(fmt.decimal_separator, ".")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CellError("unreadable", f"{str(value)!r} is not a number") from None
    if not number.is_finite():
        raise CellError("unreadable", f"{str(value)!r} is not a finite number")
    return number


def number_of(value: object, fmt: CellFormat) -> float:
    """A number as the event contract holds it (a JSON number, a float)."""
    return float(decimal_of(value, fmt))


def integer_of(value: object, fmt: CellFormat) -> int:
    """A whole number; ``5`` or ``5.0``, not ``5.5``."""
    number = decimal_of(value, fmt)
    if number != number.to_integral_value():
        raise CellError("unreadable", f"{text_of(value)!r} is not a whole number")
    return int(number)


def boolean_of(value: object) -> bool:
    """``true``/``false``, ``yes``/``no``, ``y``/``n``, ``t``/``f``, ``1``/``0`` (any case)."""
    if isinstance(value, bool):
        return value
    word = text_of(value).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise CellError("unreadable", f"{text_of(value)!r} is not true/false, yes/no or 1/0")


def instant_of(value: object, fmt: CellFormat) -> datetime:
    """A point in time in UTC from an ISO-8601 text (or ``fmt.time_format``), a timestamp
    or a date. A time without an offset is read in ``fmt.timezone``; with none,
    ``NaiveTimeError``. An ambiguous local time (the hour the clocks go back) takes the
    earlier offset."""
    if isinstance(value, datetime):
        moment = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if fmt.time_format is None:
                moment = datetime.fromisoformat(text)
            else:
                moment = datetime.strptime(text, fmt.time_format)
        except ValueError:
            wanted = fmt.time_format or "ISO-8601, e.g. 2024-03-01T09:00:00+01:00"
            raise CellError("unreadable", f"{text!r} is not a time ({wanted})") from None
    else:
        raise CellError(
            "unreadable", f"{value!r} is not a time: write it as ISO-8601 text or a timestamp"
        )
    if moment.utcoffset() is None:
        if fmt.timezone is None:
            raise NaiveTimeError(text_of(value))
        moment = moment.replace(tzinfo=fmt.timezone)
    return moment.astimezone(UTC)


def items_of(value: object) -> list[str]:
    """A list cell: a Parquet list, or a text separated by ``;``, ``|`` or ``,``."""
    if isinstance(value, str):
        text = value.strip()
        separator = next((s for s in LIST_SEPARATORS if s in text), None)
        parts = [text] if separator is None else text.split(separator)
    elif hasattr(value, "__iter__"):
        parts = [text_of(item) for item in value]
    else:
        parts = [text_of(value)]
    return [part.strip() for part in parts if part.strip()]
