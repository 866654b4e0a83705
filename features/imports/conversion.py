"""A table of one source into validated events, and the events into the event log.

Each row is read through its ``SourcePlan``, turned into events by its kind, encoded as
the wire does (``encode_event``) and validated by the contract (``parse_event``, keyed by
the client as on the topics). A row is taken whole or not at all: when a cell is missing
or unreadable, an event breaks the contract, or an event repeats one already imported,
the row is rejected with a reason and none of its events is kept.

Event ids are derived from the kind, the event type, the client and what names the row
(the kind's own id such as ``invoice_id``, the mapping's ``id`` columns, or else the
event's whole content), so importing the same export again gives the same events and the
stream's de-duplication by ``event_id`` holds across imports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from features.events import EventStream, InvalidEventError, encode_event, parse_event
from features.imports.cells import CellError, NaiveTimeError, is_blank, items_of, text_of
from features.imports.kinds import STREAM_OF_TYPE, FieldSpec, PlannedEvent, fields_of
from features.imports.mapping import MappingError, SourcePlan, check_columns, parse_value

# The columns of an imported event log: the four ``features.offline`` reads, then what
# helps a reader trace an event back to its row.
LOG_COLUMNS = ("arrival", "stream", "key", "value", "event_time", "event_type", "event_id",
               "source", "row")  # fmt: skip
PROGRESS_EVERY = 5_000


@dataclass(frozen=True)
class ImportedEvent:
    """One valid event, as its message and where it came from."""

    stream: EventStream
    key: bytes
    value: bytes
    event_id: str
    event_type: str
    event_time: float
    source: str
    row: int


@dataclass(frozen=True)
class Rejection:
    """A row that made no event: which, and why. ``row`` counts data rows from 1 (the
    header is not a row: row 1 is line 2 of a CSV)."""

    source: str
    file: str
    row: int
    reason: str  # missing | unreadable | duplicate | the contract's (invalid, future, ...)
    detail: str


@dataclass
class SourceResult:
    """What one source gave."""

    plan: SourcePlan
    rows: int = 0
    events: list[ImportedEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def imported_rows(self) -> int:
        """Rows whose events were all kept."""
        return self.rows - len(self.rejections)


def event_id_of(kind: str, event_type: str, client_id: str, identity: tuple[str, ...]) -> str:
    """A deterministic event id (a contract identifier) for an event named by ``identity``."""
    text = "\x1f".join((kind, event_type, client_id, *identity))
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"{kind.replace('_', '-')}.{event_type.replace('_', '-')}.{digest}"


def _content(planned: PlannedEvent) -> tuple[str, ...]:
    payload = json.dumps(planned.payload, sort_keys=True, separators=(",", ":"))
    return (planned.time.isoformat(), payload)


def _cell(plan: SourcePlan, spec: FieldSpec, column: str, raw: object) -> Any:
    table = plan.recode.get(spec.name)
    try:
        if spec.type == "choices":
            items = items_of(raw)
            return [str(table.get(item, item) if table else item).lower() for item in items]
        if table is not None:
            raw = table.get(text_of(raw), raw)
        return parse_value(spec, raw, plan.cell_format)
    except CellError as exc:
        raise CellError(exc.reason, f"column {column!r}: {exc.detail}") from None
    except NaiveTimeError as exc:
        raise MappingError(
            f"sources.{plan.name}: column {column!r} holds a time without a UTC offset "
            f'({str(exc)!r}); set timezone = "Area/City" (IANA, e.g. "Europe/London") in the '
            "mapping, or export times with an offset"
        ) from None


class _Rows:
    """The mapped columns of a table as Python lists (one list per field), read per row."""

    def __init__(self, plan: SourcePlan, frame: pd.DataFrame) -> None:
        self.plan = plan
        self.specs = {spec.name: spec for spec in fields_of(plan.kind)}
        self.columns = {f: (c, frame[c].tolist()) for f, c in plan.columns.items()}
        self.ids = [(c, frame[c].tolist()) for c in plan.id_columns or ()]

    def values(self, index: int) -> dict[str, Any]:
        values = dict(self.plan.constants)
        for name, (column, cells) in self.columns.items():
            raw = cells[index]
            spec = self.specs[name]
            if is_blank(raw):
                if spec.required:
                    raise CellError("missing", f"column {column!r} is empty")
                continue
            values[name] = _cell(self.plan, spec, column, raw)
        return values

    def identity(self, index: int) -> tuple[str, ...] | None:
        if not self.ids:
            return None
        for column, cells in self.ids:
            if is_blank(cells[index]):
                raise CellError("missing", f"id column {column!r} is empty")
        return tuple(text_of(cells[index]) for _, cells in self.ids)


def _event(
    plan: SourcePlan, planned: PlannedEvent, client_id: str, identity: tuple[str, ...],
    row: int, now: datetime,
) -> ImportedEvent:  # fmt: skip
    event_id = event_id_of(plan.kind.name, planned.type, client_id, identity)
    raw = encode_event(planned.type, event_id=event_id, client_id=client_id,
                       event_time=planned.time.timestamp(), payload=planned.payload)  # fmt: skip
    stream = STREAM_OF_TYPE[planned.type]
    key = client_id.encode()
    try:
        event = parse_event(raw, stream, key=key, now=now)
    except InvalidEventError as exc:
        named = exc.detail.startswith(planned.type)  # the contract names the type of a field
        raise InvalidEventError(
            exc.reason, exc.detail if named else f"{planned.type}: {exc.detail}"
        ) from None
    return ImportedEvent(stream, key, raw, event_id, planned.type, event.timestamp, plan.name,
                         row)  # fmt: skip


def _row_events(plan: SourcePlan, rows: _Rows, index: int, now: datetime) -> list[ImportedEvent]:
    values = rows.values(index)
    explicit = rows.identity(index)
    client_id = values["client_id"]
    return [
        _event(plan, planned, client_id, explicit or planned.identity or _content(planned),
               index + 1, now)
        for planned in plan.kind.build(values)
    ]  # fmt: skip


def convert(
    plan: SourcePlan,
    frame: pd.DataFrame,
    *,
    now: datetime,
    seen: dict[str, tuple[str, int]],
    progress: Callable[[int], None] | None = None,
) -> SourceResult:
    """The events of every row of ``frame`` (the source's table) and the rejected rows.

    ``seen`` maps the event ids imported so far (from any source) to their (source, row):
    an event that repeats one of them rejects its row as ``duplicate``; it is updated with
    this source's events. ``now`` is the contract's clock (events more than a day after it
    are ``future``). A time without an offset and no time zone raises ``MappingError``.
    """
    check_columns(plan, [str(column) for column in frame.columns])
    rows = _Rows(plan, frame)
    result = SourceResult(plan, rows=len(frame))
    for index in range(len(frame)):
        number = index + 1
        try:
            events = _row_events(plan, rows, index, now)
        except (CellError, InvalidEventError) as exc:
            result.rejections.append(
                Rejection(plan.name, plan.file, number, exc.reason, exc.detail)
            )
            events = []
        repeated = next((event for event in events if event.event_id in seen), None)
        if repeated is not None:
            source, row = seen[repeated.event_id]
            detail = f"repeats row {row} of {source} ({repeated.event_type} {repeated.event_id})"
            result.rejections.append(Rejection(plan.name, plan.file, number, "duplicate", detail))
            events = []
        for event in events:
            seen[event.event_id] = (plan.name, number)
        result.events.extend(events)
        if progress is not None and number % PROGRESS_EVERY == 0:
            progress(number)
    if progress is not None:
        progress(len(frame))
    return result


def event_log(events: list[ImportedEvent]) -> pd.DataFrame:
    """The event log (``LOG_COLUMNS``), ordered by event time (ties by event id, so the
    order of the export's rows does not matter): ``arrival`` numbers that order."""
    ordered = sorted(events, key=lambda event: (event.event_time, event.event_id))
    return pd.DataFrame(
        {
            "arrival": np.arange(len(ordered), dtype=np.int64),
            "stream": [event.stream for event in ordered],
            "key": [event.key for event in ordered],
            "value": [event.value for event in ordered],
            "event_time": np.array([event.event_time for event in ordered], dtype=np.float64),
            "event_type": [event.event_type for event in ordered],
            "event_id": [event.event_id for event in ordered],
            "source": [event.source for event in ordered],
            "row": np.array([event.row for event in ordered], dtype=np.int64),
        },
        columns=list(LOG_COLUMNS),
    )
