"""Offline point-in-time features: what the stream would hold, rebuilt from an event log.

The log (``profitstream simulate --out``, or an export of the topics) has one row per
message in arrival order: ``stream`` ("activity" or "billing"), ``key`` and ``value``
(the raw bytes as they were on the topic). ``build_features`` parses every message with
the stream's own validation and applies, in arrival order, every valid event with
``event_time <= as_of`` through the stream's own ``apply_event``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd

from features.definitions import FEATURE_NAMES, compute_features
from features.events import Event, EventStream, InvalidEventError, parse_event
from features.state import DEFAULT_ALLOWED_LATENESS_S, ApplyResult, ClientState, apply_event

HISTORY_COLUMNS = ("arrival", "stream", "key", "value")


@dataclass(frozen=True)
class LoggedMessage:
    """One message of an event log, as it arrived."""

    stream: EventStream
    key: bytes | None
    value: bytes


def messages_of(history: pd.DataFrame) -> Iterator[LoggedMessage]:
    """The messages of a history frame in arrival order."""
    missing = set(HISTORY_COLUMNS) - set(history.columns)
    if missing:
        raise ValueError(f"event history lacks columns {sorted(missing)}")
    ordered = history.sort_values("arrival", kind="stable")
    for stream, key, value in zip(ordered["stream"], ordered["key"], ordered["value"], strict=True):
        yield LoggedMessage(stream, None if key is None else bytes(key), bytes(value))


def parsed_events(
    messages: Iterable[LoggedMessage], now: datetime | None = None
) -> Iterator[Event]:
    """The valid events among ``messages``, in order (invalid ones are what the DLQ gets)."""
    now = now or datetime.now(UTC)
    for message in messages:
        try:
            yield parse_event(message.value, message.stream, key=message.key, now=now)
        except InvalidEventError:
            continue


def replay(
    events: Iterable[Event],
    as_of: float,
    allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S,
) -> tuple[dict[str, ClientState], dict[ApplyResult, int]]:
    """Client states after applying every event with ``event_time <= as_of``, and the outcomes."""
    states: dict[str, ClientState] = {}
    outcomes = dict.fromkeys(ApplyResult, 0)
    for event in events:
        if event.timestamp > as_of:
            continue
        state = states.get(event.client_id)
        if state is None:
            state = states[event.client_id] = ClientState(event.client_id)
        outcomes[apply_event(state, event, allowed_lateness_s)] += 1
    return states, outcomes


def build_features(
    history: pd.DataFrame,
    as_of: datetime | float,
    allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S,
) -> pd.DataFrame:
    """Per client (index ``client_id``), the features as of ``as_of``, ``FEATURE_NAMES`` columns."""
    as_of_s = as_of.timestamp() if isinstance(as_of, datetime) else float(as_of)
    states, _ = replay(parsed_events(messages_of(history)), as_of_s, allowed_lateness_s)
    clients = sorted(states)
    rows = [compute_features(states[client], as_of_s) for client in clients]
    frame = pd.DataFrame(rows, index=pd.Index(clients, name="client_id"), columns=FEATURE_NAMES)
    return frame.astype("float64")
