"""The Faust table of client states, read and written on behalf of each client's own event.

Faust picks both the changelog partition and the RocksDB partition of a table write
from the *current event*. In a batch (``take_events``) that is whichever event came
last, possibly of another partition, so the agent acts as each client's own latest
event while it touches that client's state, the way Faust's stream iteration does.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import faust
from faust.streams import _current_event
from faust.types import EventT, TableT

from features.state import ClientState, decode_state, encode_state

TABLE_NAME = "client-state"


def declare_client_table(app: faust.App, partitions: int) -> TableT[str, bytes]:
    """The table: client_id -> encoded ``ClientState`` (msgpack bytes), with its changelog."""
    # value_type=bytes makes Faust store and send the value as is ("raw").
    return app.Table(
        TABLE_NAME, default=None, partitions=partitions, key_type=str, value_type=bytes
    )


@contextmanager
def acting_as(event: EventT[bytes]) -> Iterator[None]:
    """Make ``event`` Faust's current event for the duration of the block."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def load_state(table: TableT[str, bytes], client_id: str, event: EventT[bytes]) -> ClientState:
    """The client's state (a new one for an unknown client), read from its partition."""
    with acting_as(event):
        raw = table.get(client_id)
    return ClientState(client_id) if raw is None else decode_state(raw)


def save_state(table: TableT[str, bytes], state: ClientState, event: EventT[bytes]) -> None:
    """Write the state to the table (and so its changelog) in ``event``'s partition."""
    with acting_as(event):
        table[state.client_id] = encode_state(state)


def read_state(table: TableT[str, bytes], client_id: str) -> ClientState | None:
    """The state of a client from outside the stream (e.g. an HTTP view), if known."""
    raw = table.get(client_id)
    return None if raw is None else decode_state(raw)
