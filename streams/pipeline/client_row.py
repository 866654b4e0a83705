"""A client's row of the table: its feature state and the memos of its predictions.

The state (``features.state``) is what features are computed from; the memos are what the
stream remembers of its own predictions for the client: the last one emitted (what the
next emission decision compares with, ``models_store.scoring.emission``) and the ones
awaiting their outcome (``models_store.experiments.tracking``). They are kept in the same
row, written in the same changelog message, so a replay after a crash decides emissions
and outcomes exactly as before.

Stored as msgpack (never pickle). Format 6 nests the state's fields; formats 2 to 5
(before the memos left the state) kept them flat after the format number, followed by
the memos the format knew: 3 added the emitted memo, 4 the tracked one, 5 the shadow's.
Every format still decodes, so a worker upgrades a table in place as it rewrites rows.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from typing import Any

import msgpack

from features.state import STATE_FIELDS, ClientState, state_fields, state_from_fields
from models_store.experiments.outcomes import Tracked
from models_store.experiments.tracking import NOTHING_TRACKED, TrackedPredictions
from models_store.scoring.emission import Emitted

ROW_FORMAT = 6
_FLAT_FORMATS = (2, 3, 4, 5)


@dataclass(slots=True)
class ClientRow:
    """One client's row: its feature state and what the stream remembers of its predictions."""

    state: ClientState
    emitted: Emitted | None = None
    tracked: TrackedPredictions = field(default=NOTHING_TRACKED)

    @property
    def client_id(self) -> str:
        """The client the row is about."""
        return self.state.client_id


def _emitted(fields: list[Any] | None) -> Emitted | None:
    return None if fields is None else Emitted(*fields)


def _tracked(fields: list[Any] | None) -> Tracked | None:
    return None if fields is None else Tracked(*fields)


def _fields(memo: Emitted | Tracked | None) -> list[Any] | None:
    return None if memo is None else list(astuple(memo))


def encode_row(row: ClientRow) -> bytes:
    """The row as compact bytes for the table and its changelog."""
    tracked = row.tracked
    return bytes(
        msgpack.packb(
            [
                ROW_FORMAT,
                state_fields(row.state),
                _fields(row.emitted),
                _fields(tracked.emitted),
                _fields(tracked.shadow),
            ],
            use_bin_type=True,
        )
    )


def decode_row(raw: bytes) -> ClientRow:
    """The inverse of ``encode_row``; also reads rows written in formats 2 to 5."""
    fields = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    row_format = fields[0]
    if row_format == ROW_FORMAT:
        _, state, emitted, tracked, shadow = fields
    elif row_format in _FLAT_FORMATS:
        state = fields[1 : 1 + STATE_FIELDS]
        memos = fields[1 + STATE_FIELDS :]
        emitted, tracked, shadow = memos + [None] * (3 - len(memos))
    else:
        raise ValueError(f"client row format {row_format} is not 2 to {ROW_FORMAT}")
    return ClientRow(
        state_from_fields(state),
        _emitted(emitted),
        TrackedPredictions(_tracked(tracked), _tracked(shadow)),
    )
