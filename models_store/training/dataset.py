"""The training set: features as of each cutoff t and the realised margin of (t, t+H].

Features come from the offline builder's own code path (``parsed_events`` →
``apply_event`` → ``compute_features``) with its semantics: as of t, a client's state
holds every valid event with ``event_time <= t``, applied in arrival order. Replaying
the whole log once per cutoff would cost cutoffs × events; instead each client's state
is carried from one cutoff to the next and only the events of (t_prev, t] are applied,
which gives the same sequence (so the same state) whenever none of them arrived before
an event already applied. When one did (a late arrival across the cutoff), that client
is rebuilt from its events ≤ t. No event after t can reach a row of cutoff t.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from features.as_of import before_day
from features.definitions import FEATURE_NAMES, compute_features
from features.events import MAX_FUTURE, Event
from features.offline import LoggedMessage, messages_of, parsed_events
from features.state import DEFAULT_ALLOWED_LATENESS_S, ClientState, apply_event
from features.windows import DAY_SECONDS
from models_store.errors import TrainingDataError
from models_store.labels import ledgers, margin_ratio
from models_store.registry.card import Target
from models_store.training.cutoffs import day_text, schedule

Progress = Callable[[str, int, int], None]  # (step, done, total)
# The top-level event_time of a message, found without parsing the JSON: the contract's
# time is a short string (RFC 3339), so 64 characters is plenty.
_EVENT_TIME_FIELD = re.compile(rb'"event_time"\s*:\s*"([^"]{1,64})"')


@dataclass(frozen=True)
class History:
    """The parsed event log: valid events in arrival order, and what it covers."""

    events: list[Event]
    messages: int
    start: float  # 00:00 UTC of the first event's day
    end: float  # end of the last event's UTC day: an export covers whole days
    fingerprint: str  # sha256 of every message (stream, key, value) in arrival order


@dataclass(frozen=True)
class TrainingSet:
    """One row per (client, cutoff) the client existed at: features, label and baselines."""

    frame: pd.DataFrame
    cutoffs: list[float]
    horizon_s: float
    target: Target
    history: History

    @property
    def labelled(self) -> pd.DataFrame:
        """The rows the model learns from and is judged on: for the ratio, those with
        revenue in the horizon (the ratio of the others is undefined); for the absolute
        margin, every row: choosing rows by what happened in the horizon would teach "money
        given that there was some" and apply it to everyone, clients who buy nothing more
        included."""
        frame = self.frame
        if self.target == "margin_ratio":
            return frame[frame["label"].notna()]
        return frame


def log_span(
    frame: pd.DataFrame, until: float | None = None, now: datetime | None = None
) -> tuple[float, float] | None:
    """The span [start, end) ``load_history`` would give, bounded cheaply, without
    validating any event: from the log's ``event_time`` column (epoch seconds) when it has
    one, else from each message's ``event_time`` field. Invalid messages count too, so the
    bound is at least the valid events' span (times the parse refuses as too far in the
    future excepted): a history this bound finds too short is too short, and is refused
    before the costly parse. None when no message has a readable event time."""
    if "event_time" in frame.columns and pd.api.types.is_numeric_dtype(frame["event_time"]):
        times = frame["event_time"].to_numpy(dtype=np.float64)
        times = times[np.isfinite(times)]
    else:
        found = []
        for value in frame["value"]:
            match = _EVENT_TIME_FIELD.search(bytes(value))
            if match is not None:
                found.append(match.group(1).decode("ascii", "replace"))
        stamps = pd.to_datetime(pd.Series(found, dtype=object), utc=True, errors="coerce",
                                format="ISO8601").dropna()  # fmt: skip
        epoch = pd.Timestamp(0, tz=UTC)
        times = (stamps - epoch).dt.total_seconds().to_numpy(dtype=np.float64)
    if not times.size:
        return None
    latest_valid = ((now or datetime.now(UTC)) + MAX_FUTURE).timestamp()
    first, latest = float(times.min()), min(float(times.max()), latest_valid)
    start = float(np.floor(first / DAY_SECONDS) * DAY_SECONDS)
    end = float(np.floor(latest / DAY_SECONDS) + 1) * DAY_SECONDS if until is None else until
    return start, end


def load_history(
    frame: pd.DataFrame,
    until: float | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> History:
    """Parse an event-log frame (``features.offline`` columns) into a ``History``."""
    digest = hashlib.sha256()
    total = len(frame)

    def hashed(messages: Iterable[LoggedMessage]) -> Iterator[LoggedMessage]:
        for number, message in enumerate(messages, 1):
            digest.update(f"{message.stream}\0{len(message.value)}\0".encode())
            digest.update(message.key or b"")
            digest.update(message.value)
            if progress is not None and number % 20_000 == 0:
                progress("parsing events", number, total)
            yield message

    events = list(parsed_events(hashed(messages_of(frame)), now=now))
    if progress is not None:
        progress("parsing events", total, total)
    if not events:
        raise TrainingDataError(
            "the event history has no valid events; export the activity and billing topics "
            "(or run `profitstream simulate --out history.parquet`)"
        )
    times = [event.timestamp for event in events]
    start = float(np.floor(min(times) / DAY_SECONDS) * DAY_SECONDS)
    end = float(np.floor(max(times) / DAY_SECONDS) + 1) * DAY_SECONDS if until is None else until
    return History(events, total, start, end, digest.hexdigest())


def cutoff_schedule(spec: str, history: History, horizon_s: float) -> list[float]:
    """The cutoffs of ``spec`` in the history (``training.cutoffs.schedule``), or a clear
    error when the horizon leaves none."""
    span_days = (history.end - history.start) / DAY_SECONDS
    if horizon_s >= history.end - history.start:
        raise TrainingDataError(
            f"the history covers {span_days:.0f} days, not more than the "
            f"{horizon_s / DAY_SECONDS:.0f}-day horizon: no cutoff has both a past and a whole "
            "horizon; pass a shorter --horizon or a longer history"
        )
    cutoffs = schedule(spec, history.start, history.end, horizon_s)
    if not cutoffs:
        raise TrainingDataError(
            f"no cutoff fits between {day_text(history.start)} and "
            f"{day_text(history.end - horizon_s)} with --cutoffs {spec}; use a denser schedule "
            "or a shorter --horizon"
        )
    return cutoffs


def build_training_set(
    history: History,
    cutoffs: list[float],
    horizon_s: float,
    target: Target = "margin_ratio",
    allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S,
    progress: Progress | None = None,
) -> TrainingSet:
    """Rows of (client, cutoff): ``FEATURE_NAMES`` as of t, the label of (t, t+H], and the
    persistence baseline: the realised margin of (t−H, t]. t = cutoff − 1 ms, the as-of
    instant of the cutoff's day (``features.as_of``)."""
    positions: dict[str, list[int]] = {}
    for index, event in enumerate(history.events):
        positions.setdefault(event.client_id, []).append(index)
    clients = sorted(positions)
    times = {c: np.array([history.events[i].timestamp for i in positions[c]]) for c in clients}
    states: dict[str, ClientState] = {}
    applied_upto: dict[str, int] = {}  # per client: position (in its list) of the last applied
    money = ledgers(history.events)
    features: list[list[float]] = []
    keys: list[tuple[str, float]] = []
    labels: list[tuple[float, float, float, float]] = []
    previous = -np.inf
    for done, boundary in enumerate(sorted(cutoffs)):
        # A cutoff is the start of a UTC day; its rows are as of the instant before it
        # (``features.as_of``: whole-day windows ending with the day before), and its label
        # starts right after that instant.
        cutoff = before_day(boundary)
        for client in clients:
            client_times = times[client]
            fresh = np.flatnonzero((client_times > previous) & (client_times <= cutoff))
            state = states.get(client)
            if fresh.size and state is not None and fresh[0] < applied_upto[client]:
                # A late arrival: the order of events ≤ t is not the old order plus the new.
                state = None
                fresh = np.flatnonzero(client_times <= cutoff)
            if fresh.size:
                if state is None:
                    state = states[client] = ClientState(client)
                events = history.events
                indices = positions[client]
                for position in fresh:
                    apply_event(state, events[indices[position]], allowed_lateness_s)
                applied_upto[client] = max(applied_upto.get(client, -1), int(fresh[-1]))
            if state is None:
                continue
            features.append(compute_features(state, cutoff))
            keys.append((client, boundary))
            ledger = money.get(client)
            if ledger is None:
                labels.append((0.0, 0.0, 0.0, 0.0))
            else:
                ahead = ledger.between(cutoff, cutoff + horizon_s)
                labels.append((*ahead, *ledger.between(cutoff - horizon_s, cutoff)))
        previous = cutoff
        if progress is not None:
            progress("features at each cutoff", done + 1, len(cutoffs))
    frame = pd.DataFrame(features, columns=list(FEATURE_NAMES), dtype="float64")
    frame.insert(0, "client_id", [client for client, _ in keys])
    frame.insert(1, "cutoff", np.array([cutoff for _, cutoff in keys], dtype=np.float64))
    money_table = np.array(labels, dtype=np.float64).reshape(-1, 4)
    revenue, cost, past_revenue, past_cost = money_table.T
    frame["horizon_revenue"] = revenue
    frame["horizon_cost"] = cost
    if target == "margin_ratio":
        frame["label"] = [margin_ratio(r, c) for r, c in zip(revenue, cost, strict=True)]
        frame["persistence"] = [
            margin_ratio(r, c) for r, c in zip(past_revenue, past_cost, strict=True)
        ]
    else:
        frame["label"] = revenue - cost
        frame["persistence"] = past_revenue - past_cost
    return TrainingSet(frame, sorted(cutoffs), horizon_s, target, history)
