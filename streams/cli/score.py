"""`profitstream score`: batch predictions for feature rows, or for an event history as of a time.

The output has the prediction payload's fields as columns; drivers are a JSON list. Rows
come in as Parquet or CSV with ``client_id``, ``as_of`` and every feature column
(``event_id`` and ``event_time`` are used when present), or as an event log
(``features.offline`` columns) with ``--as-of``. In a CSV event log ``key`` and ``value``
are text: the message as written (UTF-8), or Python's ``b'...'`` form that pandas writes
for the bytes of a Parquet log.

The model: ``--model`` if given; else the champion the control log deploys (read from
the audit trail); else, when no broker is configured or nothing is deployed yet,
``PROFITSTREAM_MODEL``. A line on stderr says which one scored and why.
"""

from __future__ import annotations

import ast
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import Progress

from features.as_of import AS_OF_EXAMPLES, parse_as_of
from features.definitions import FEATURE_NAMES, compute_features
from features.offline import HISTORY_COLUMNS, messages_of, parsed_events, replay
from models_store.registry import open_registry
from models_store.scoring.prediction import FLAT_COLUMNS, build_prediction
from models_store.scoring.scorer import Score, Scorer
from models_store.scoring.shift import outside_training_range, shift_summary
from streams.cli.publishing import deployment_state, resolve_ref
from streams.errors import ProfitstreamError
from streams.settings import Settings

CHUNK_ROWS = 10_000
# Read as text from a CSV: an id like "00123" must not turn into the number 123.
TEXT_COLUMNS = {"client_id": str, "event_id": str, "stream": str, "key": str, "value": str}


@dataclass(frozen=True)
class ScoreRequest:
    """What the user passed to `score`."""

    source: Path
    destination: Path
    model: str | None
    as_of: float | None  # the as-of instant (``features.as_of``)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise ProfitstreamError(
            f"no input at {path}; pass feature rows or an event log (.parquet/.csv)"
        )
    try:
        if path.suffix == ".csv":
            return pd.read_csv(path, dtype=TEXT_COLUMNS)
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
    except Exception as exc:  # pandas/pyarrow raise many types for a bad file
        raise ProfitstreamError(f"cannot read {path}: {exc}") from exc
    raise ProfitstreamError(f"{path}: use a .parquet or .csv file")


def message_bytes(value: object) -> bytes | None:
    """A key or value of an event-log message as bytes: bytes as they are, text as UTF-8
    (or the bytes written as ``b'...'``), None for a missing key."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    text = str(value)
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            literal = ast.literal_eval(text)  # a literal only: nothing is evaluated
        except (ValueError, SyntaxError):
            literal = None
        if isinstance(literal, bytes):
            return literal
    return text.encode()


def event_log(table: pd.DataFrame) -> pd.DataFrame:
    """An event log whose ``key`` and ``value`` are bytes, as ``features.offline`` reads them
    (a CSV holds them as text)."""
    log = table.copy()
    log["key"] = [message_bytes(key) for key in log["key"]]
    log["value"] = [message_bytes(value) or b"" for value in log["value"]]
    return log


def _epoch(value: object, column: str) -> float:
    """Epoch seconds from a number or a text by the as-of rule (``features.as_of``)."""
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    try:
        return parse_as_of(str(value))
    except ValueError as exc:
        raise ProfitstreamError(f"column {column}: {exc}") from None


def _optional(row: pd.Series, column: str) -> object | None:
    value = row.get(column)
    return None if value is None or pd.isna(value) else value


def rows_from_history(history: pd.DataFrame, as_of: float) -> pd.DataFrame:
    """Feature rows of every client as of the instant ``as_of`` (``features.as_of``), with
    its latest event as the trigger: for a date's instant, the training rows of that cutoff."""
    when = as_of
    states, _ = replay(parsed_events(messages_of(history)), when)
    records = []
    for client in sorted(states):
        state = states[client]
        latest = state.latest_event
        row: dict[str, object] = dict(
            zip(FEATURE_NAMES, compute_features(state, when), strict=True)
        )
        row.update(client_id=client, as_of=when, event_id=latest[0] if latest else None,
                   event_time=latest[1] if latest else None)  # fmt: skip
        records.append(row)
    return pd.DataFrame.from_records(records)


def feature_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Check a feature-row table: ``client_id``, ``as_of`` and every feature, numbers only."""
    missing = [c for c in ("client_id", "as_of", *FEATURE_NAMES) if c not in table.columns]
    if missing:
        shown = ", ".join(missing[:8]) + (
            f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        )
        raise ProfitstreamError(
            f"the input lacks columns {shown}; it needs client_id, as_of (epoch seconds or "
            "ISO-8601) and every feature (docs/models.md), or an event log with --as-of"
        )
    try:
        table[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ProfitstreamError(
            f"feature columns must be numbers (empty for undefined): {exc}"
        ) from exc
    return table


def predictions_frame(scorer: Scorer, rows: pd.DataFrame, progress: Progress) -> pd.DataFrame:
    """The payload fields, one row per input row; one model call per chunk of rows."""
    task = progress.add_task("scoring", total=len(rows))
    features = rows[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    scored_at = datetime.now(UTC)
    out: list[dict[str, object]] = []
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows.iloc[start : start + CHUNK_ROWS]
        scores = scorer.score(features[start : start + CHUNK_ROWS])
        for (_, row), score in zip(chunk.iterrows(), scores, strict=True):
            out.append(_payload_row(scorer, row, score, scored_at))
        progress.advance(task, len(chunk))
    return pd.DataFrame(out, columns=list(FLAT_COLUMNS))


def _payload_row(
    scorer: Scorer, row: pd.Series, score: Score, scored_at: datetime
) -> dict[str, object]:
    as_of = row["as_of"]
    event_id = _optional(row, "event_id")
    event_time = _optional(row, "event_time")
    prediction = build_prediction(
        scorer.card,
        str(row["client_id"]),
        score,
        event_id=None if event_id is None else str(event_id),
        event_time=None if event_time is None else _epoch(event_time, "event_time"),
        features_as_of=_epoch(as_of, "as_of"),
        scored_at=scored_at,
    )
    return prediction.flat()


def chosen_model(requested: str | None, settings: Settings) -> tuple[str, str]:
    """The exact model to score with, and why that one (see the module docstring)."""
    if requested is not None:
        return resolve_ref(settings, requested), "--model"
    champion, why = deployed_champion(settings)
    if champion is not None:
        return champion, why
    if settings.model is None:
        raise ProfitstreamError(
            f"which model? {why}: pass --model NAME[@VERSION] or set PROFITSTREAM_MODEL"
        )
    return resolve_ref(settings, settings.model), f"PROFITSTREAM_MODEL; {why}"


def deployed_champion(settings: Settings) -> tuple[str | None, str]:
    """The champion the control log deploys and why it is the one; or None and why not
    (no broker configured, nothing deployed yet). An unreachable broker is an error:
    scoring with another model than the deployed one must not happen by accident."""
    from streams.stack.embedded import running_url

    if settings.broker is None and running_url(settings.stack_dir, "kafka") is None:
        return None, "no broker configured"
    try:
        state = deployment_state(settings)
    except ProfitstreamError as exc:
        raise ProfitstreamError(
            f"cannot read the deployed champion: {exc}; or pass --model NAME@X.Y.Z"
        ) from exc
    if state is None or not state.get("champion"):
        return None, "nothing deployed"
    return str(state["champion"]), f"the deployed champion, control revision {state['revision']}"


def run_scoring(request: ScoreRequest, settings: Settings, console: Console) -> None:
    """Read, score with the chosen model, write; one line says what was written."""
    if request.destination.suffix not in (".parquet", ".csv"):
        raise ProfitstreamError(f"--out {request.destination}: use a .parquet or .csv file")
    table = _read_table(request.source)
    if set(HISTORY_COLUMNS) <= set(table.columns):
        if request.as_of is None:
            raise ProfitstreamError(
                f"{request.source} is an event log: pass --as-of, e.g. {AS_OF_EXAMPLES}"
            )
        rows = rows_from_history(event_log(table), request.as_of)
        if rows.empty:
            raise ProfitstreamError(
                f"{request.source} has no valid event at or before "
                f"{datetime.fromtimestamp(request.as_of, UTC).isoformat()}; "
                "pass a later --as-of"
            )
    else:
        rows = feature_rows(table)
    ref, why = chosen_model(request.model, settings)
    console.print(f"scoring with {ref} ({why})", highlight=False)
    with tempfile.TemporaryDirectory() as cache:
        scorer = Scorer.from_registry(open_registry(settings.registry_uri), ref, Path(cache))
    with Progress(console=console, transient=True) as progress:
        result = predictions_frame(scorer, rows, progress)
    features = rows[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    outside = outside_training_range(features, scorer.card.features)
    shifted = shift_summary(outside, FEATURE_NAMES)
    if shifted:
        console.print(
            f"warning: features outside {scorer.ref}'s training range in {shifted}: the model "
            "predicts flat there; train on a history that covers them", highlight=False,
        )  # fmt: skip
    if request.destination.suffix == ".csv":
        result.to_csv(request.destination, index=False)
    else:
        result.to_parquet(request.destination, index=False)
    console.print(f"{len(result):,} predictions by {scorer.ref}: {request.destination}")
