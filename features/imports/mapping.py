"""The column mapping file of ``profitstream import`` (TOML, read with the standard
library's ``tomllib``): which file holds which kind of export, and which column (or
constant) gives each field. Checked whole before any row is read; every problem is a
``MappingError`` whose message is one line naming the key to fix.

    timezone = "Europe/London"          # for times without an offset (optional)

    [sources.purchases]                 # a name of your choice, shown in the report
    file = "purchases.csv"              # .csv or .parquet, relative to the mapping file
    kind = "purchases"                  # default: the name
    columns = { client_id = "Customer ID", time = "InvoiceDate", invoice_id = "Invoice",
                amount = "Total" }
    constants = { kind = "project" }    # a field the file has no column for
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from features.imports.cells import (
    CellError,
    CellFormat,
    NaiveTimeError,
    boolean_of,
    instant_of,
    integer_of,
    items_of,
    number_of,
    text_of,
)
from features.imports.kinds import KINDS, FieldSpec, Kind, fields_of

Scalar = str | int | float | bool


class MappingError(ValueError):
    """A mapping that cannot be used as written; the message says which key and how."""


class SourceMapping(BaseModel):
    """One ``[sources.NAME]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str
    kind: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    constants: dict[str, Scalar | list[str]] = Field(default_factory=dict)
    recode: dict[str, dict[str, Scalar]] = Field(default_factory=dict)
    id: list[str] | None = None
    timezone: str | None = None
    time_format: str | None = None
    decimal_separator: str = Field(".", min_length=1, max_length=1)
    thousands_separator: str = Field("", max_length=1)
    encoding: str = "utf-8"
    delimiter: str = Field(",", min_length=1, max_length=1)


class MappingFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str | None = None
    sources: dict[str, SourceMapping] = Field(min_length=1)


@dataclass(frozen=True)
class SourcePlan:
    """One source, checked: its kind, where each field comes from, how cells read."""

    name: str
    file: str
    kind: Kind
    columns: dict[str, str]  # field -> column
    constants: dict[str, Any]  # field -> parsed value
    recode: dict[str, dict[str, Scalar]]
    id_columns: tuple[str, ...] | None
    cell_format: CellFormat
    encoding: str
    delimiter: str

    @property
    def needed_columns(self) -> list[str]:
        """Every column of the file the mapping reads, in mapping order."""
        wanted = [*self.columns.values(), *(self.id_columns or ())]
        return list(dict.fromkeys(wanted))


def _zone(name: str | None, key: str) -> tzinfo | None:
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(
            f'{key} = {name!r} is not an IANA time zone; write e.g. "Europe/London" or "UTC"'
        ) from None


def parse_value(spec: FieldSpec, value: object, fmt: CellFormat) -> Any:
    """A non-blank cell (or constant) read as ``spec``'s type; ``CellError`` when it does not."""
    if spec.type == "identifier" or spec.type == "text":
        return text_of(value)
    if spec.type == "choice":
        return text_of(value).lower()
    if spec.type == "choices":
        return [item.lower() for item in items_of(value)]
    if spec.type == "number":
        return number_of(value, fmt)
    if spec.type == "integer":
        return integer_of(value, fmt)
    if spec.type == "boolean":
        return boolean_of(value)
    if spec.type == "time":
        return instant_of(value, fmt)
    raise AssertionError(spec.type)


def _describe(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    location = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    return f"{location}: {message}" if location else message


def _plan(name: str, source: SourceMapping, default_zone: tzinfo | None) -> SourcePlan:
    key = f"sources.{name}"
    kind_name = source.kind or name
    kind = KINDS.get(kind_name)
    if kind is None:
        raise MappingError(
            f"{key}: unknown kind {kind_name!r}; set kind = one of {', '.join(KINDS)}"
        )
    known = {spec.name: spec for spec in fields_of(kind)}
    for table, fields in (("columns", source.columns), ("constants", source.constants),
                          ("recode", source.recode)):  # fmt: skip
        unknown = sorted(set(fields) - set(known))
        if unknown:
            raise MappingError(
                f"{key}.{table}: {', '.join(unknown)} is not a field of {kind.name}; its "
                f"fields are {', '.join(known)}"
            )
    both = sorted(set(source.columns) & set(source.constants))
    if both:
        raise MappingError(f"{key}: {', '.join(both)} is both a column and a constant; keep one")
    given = set(source.columns) | set(source.constants)
    for spec in known.values():
        if spec.required and spec.name not in given:
            raise MappingError(
                f'{key}: map {spec.name} to a column (columns.{spec.name} = "...") or set '
                f"constants.{spec.name}"
            )
    for group in kind.one_of:
        if not given & set(group):
            raise MappingError(f"{key}: {kind.name} needs one of {' or '.join(group)} "
                               "in columns or constants")  # fmt: skip
    if source.decimal_separator == source.thousands_separator:
        raise MappingError(f"{key}: decimal_separator and thousands_separator must differ")
    fmt = CellFormat(
        timezone=_zone(source.timezone, f"{key}.timezone") or default_zone,
        time_format=source.time_format,
        decimal_separator=source.decimal_separator,
        thousands_separator=source.thousands_separator,
    )
    constants = {}
    for field, value in source.constants.items():
        try:
            constants[field] = parse_value(known[field], value, fmt)
        except (CellError, NaiveTimeError) as exc:
            raise MappingError(f"{key}.constants.{field}: {exc}") from None
    if source.id is not None and not source.id:
        raise MappingError(f"{key}.id: name at least one column, or leave id out")
    return SourcePlan(
        name=name, file=source.file, kind=kind, columns=dict(source.columns),
        constants=constants, recode={f: dict(t) for f, t in source.recode.items()},
        id_columns=None if source.id is None else tuple(source.id), cell_format=fmt,
        encoding=source.encoding, delimiter=source.delimiter,
    )  # fmt: skip


def parse_mapping(text: str) -> list[SourcePlan]:
    """The sources of a mapping file's text, checked, in the file's order."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"not valid TOML: {exc}") from None
    try:
        mapping = MappingFile.model_validate(document)
    except ValidationError as exc:
        raise MappingError(_describe(exc)) from None
    zone = _zone(mapping.timezone, "timezone")
    return [_plan(name, source, zone) for name, source in mapping.sources.items()]


def check_columns(plan: SourcePlan, columns: list[str]) -> None:
    """Every column the mapping names is in the file, or a ``MappingError`` naming it."""
    missing = [column for column in plan.needed_columns if column not in columns]
    if missing:
        shown = ", ".join(repr(c) for c in columns[:12]) + (" ..." if len(columns) > 12 else "")
        raise MappingError(
            f"sources.{plan.name}: {plan.file} has no column {', '.join(map(repr, missing))}; "
            f"its columns are {shown or 'none'}"
        )
