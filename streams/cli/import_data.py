"""`profitstream import`: tabular exports and a mapping file in, a validated event log out.

The mapping and the conversion are ``features.imports``; this module reads the files,
shows progress, writes the log and the report of rejected rows, and prints the summary.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.imports.conversion import Rejection, SourceResult, convert, event_log
from features.imports.mapping import MappingError, SourcePlan, parse_mapping
from streams.errors import ProfitstreamError

REPORT_COLUMNS = tuple(f.name for f in fields(Rejection))


@dataclass(frozen=True)
class ImportRequest:
    """What the user passed to `import`."""

    mapping: Path
    out: Path
    rejected: Path | None


def rejected_path(out: Path) -> Path:
    """The default report of rejected rows: beside the event log."""
    return out.with_name(out.stem + ".rejected.csv")


def read_mapping(path: Path) -> list[SourcePlan]:
    """The checked mapping file, or one clear error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfitstreamError(
            f"cannot read the mapping {path}: {exc.strerror or exc}; pass a TOML mapping file "
            "(docs/models.md#bring-your-own-data)"
        ) from None
    try:
        return parse_mapping(text)
    except MappingError as exc:
        raise ProfitstreamError(f"{path}: {exc}") from None


def read_source(path: Path, plan: SourcePlan) -> pd.DataFrame:
    """One source's table: a CSV read as text (ids keep their zeros, nothing is guessed),
    or a Parquet file with its own types."""
    if not path.is_file():
        raise ProfitstreamError(f"sources.{plan.name}: no file {path}; fix file = in the mapping")
    try:
        if path.suffix.lower() == ".csv":
            # Spreadsheets start UTF-8 CSVs with a byte-order mark; it is no part of a name.
            utf8 = plan.encoding.lower().replace("_", "-") in ("utf-8", "utf8")
            return pd.read_csv(path, dtype=str, keep_default_na=False, sep=plan.delimiter,
                               encoding="utf-8-sig" if utf8 else plan.encoding)  # fmt: skip
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
    except UnicodeDecodeError as exc:
        raise ProfitstreamError(
            f"sources.{plan.name}: {path} is not {plan.encoding} text ({exc.reason}); set "
            'encoding = "latin-1" (or the export\'s encoding) in the mapping'
        ) from None
    except LookupError as exc:
        raise ProfitstreamError(f"sources.{plan.name}: encoding: {exc}") from None
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ProfitstreamError(f"sources.{plan.name}: cannot read {path}: {message}") from None
    raise ProfitstreamError(f"sources.{plan.name}: {path}: use a .csv or .parquet file")


def write_rejections(rejections: list[Rejection], path: Path) -> None:
    """The report: CSV (``REPORT_COLUMNS``) or JSON Lines, by the file's extension."""
    rows = [asdict(rejection) for rejection in rejections]
    if path.suffix.lower() == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        pd.DataFrame(rows, columns=list(REPORT_COLUMNS)).to_csv(path, index=False)


def _check_destinations(request: ImportRequest) -> Path:
    if request.out.suffix.lower() != ".parquet":
        raise ProfitstreamError(f"--out {request.out}: the event log is a .parquet file")
    report = request.rejected or rejected_path(request.out)
    if report.suffix.lower() not in (".csv", ".jsonl"):
        raise ProfitstreamError(f"--rejected {report}: use a .csv or .jsonl file")
    for path in (request.out, report):
        if not path.parent.is_dir():
            raise ProfitstreamError(f"directory {path.parent} does not exist; create it first")
    return report


def _summary(results: list[SourceResult]) -> Table:
    table = Table(title="import")
    for column in ("source", "kind", "file", "rows", "imported", "events", "rejected",
                   "reasons"):  # fmt: skip
        justify = "right" if column in ("rows", "imported", "events", "rejected") else "left"
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for result in results:
        reasons: dict[str, int] = {}
        for rejection in result.rejections:
            reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
        table.add_row(
            escape(result.plan.name), result.plan.kind.name, escape(result.plan.file),
            f"{result.rows:,}", f"{result.imported_rows:,}", f"{len(result.events):,}",
            f"[red]{len(result.rejections):,}[/]" if result.rejections else "0",
            ", ".join(f"{reason} {count:,}" for reason, count in sorted(reasons.items())),
        )  # fmt: skip
    return table


def run_import(request: ImportRequest, out: Console, err: Console) -> None:
    """Convert every source, write the log and the report, print the summary."""
    plans = read_mapping(request.mapping)
    report = _check_destinations(request)
    now = datetime.now(UTC)
    seen: dict[str, tuple[str, int]] = {}
    results: list[SourceResult] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=err, transient=True) as progress:
        for plan in plans:
            path = request.mapping.parent / plan.file
            task = progress.add_task(f"reading {plan.name}", total=None)
            frame = read_source(path, plan)
            progress.update(task, description=f"importing {plan.name}", total=len(frame))
            try:
                result = convert(plan, frame, now=now, seen=seen,
                                 progress=lambda done, t=task: progress.update(t, completed=done))  # type: ignore[misc]  # fmt: skip
            except MappingError as exc:
                raise ProfitstreamError(f"{request.mapping}: {exc}") from None
            results.append(result)
    events = [event for result in results for event in result.events]
    rejections = [rejection for result in results for rejection in result.rejections]
    write_rejections(rejections, report)
    out.print(_summary(results))
    if not events:
        raise ProfitstreamError(
            f"no row made a valid event; the reasons are in {report}, fix the mapping or the export"
        )
    log = event_log(events)
    partial = request.out.with_name(request.out.name + ".partial")
    log.to_parquet(partial, index=False)
    os.replace(partial, request.out)  # a reader never sees half a log
    first, last = (datetime.fromtimestamp(t, UTC).isoformat() for t in
                   (log["event_time"].min(), log["event_time"].max()))  # fmt: skip
    clients = log["key"].nunique()
    out.print(f"event log: {request.out} ({len(log):,} events of {clients:,} clients, "
              f"{first} to {last})", highlight=False)  # fmt: skip
    out.print(f"rejected rows: {report} ({len(rejections):,})", highlight=False)
