"""The client table's row codec (pure): rows round-trip in format 6, and rows written by
the code of every earlier format (2 to 5, in stored_rows.txt) still decode."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import msgpack
import pytest

from features.state import STATE_FIELDS, ClientState, Contract, state_fields
from models_store.experiments.outcomes import Tracked
from models_store.experiments.tracking import TrackedPredictions
from models_store.scoring.emission import Emitted
from streams.pipeline.client_row import ROW_FORMAT, ClientRow, decode_row, encode_row

WIDTH = 17
STATE = ClientState(
    "client-7",
    days={19675: [float(i) for i in range(WIDTH)], 19676: [0.5] * WIDTH},
    watermarks={"activity": 1.7e9, "billing": 1.7e9 - 10},
    first_event_time=1.69e9, last_contact=1.699e9, last_payment=None, last_ticket=1.7e9,
    contract=Contract((1.69e9, "ev-c"), True, 1200.0, 12, 10.0, 1.69e9),
    endpoints=((1.695e9, "ev-e"), 20),
    services={"helpdesk": ((1.69e9, "ev-c"), True)},
    seen={"activity": {"ev-a": 1.7e9}, "billing": {"ev-b": 1.7e9 - 10}},
    offsets={"t-activity:3": 10, "t-billing:3": 4},
    version=7,
)  # fmt: skip
EMITTED = Emitted(0.41, "healthy", "m@1.0.0", None, 1.7e9)
TRACKED = Tracked(1.7e9, 1.7e9 + 90 * 86400, "p1", "m@1.0.0", "e1", "challenger", 0.4, 0.1, 0.7,
                  float("nan"), 120.0, 80.0)  # fmt: skip
SHADOW = Tracked(1.7e9, 1.7e9 + 90 * 86400, "p2", "m@2.0.0", "e1", "shadow", 0.3, 0.0, 0.6, 0.2,
                 0.0, 0.0)  # fmt: skip
# What each earlier format knew of the memos (3 added emitted, 4 tracked, 5 the shadow's).
EXPECTED = {
    2: ClientRow(STATE),
    3: ClientRow(STATE, EMITTED),
    4: ClientRow(STATE, EMITTED, TrackedPredictions(TRACKED)),
    5: ClientRow(STATE, EMITTED, TrackedPredictions(TRACKED, SHADOW)),
}


def _stored_rows() -> dict[int, bytes]:
    lines = (Path(__file__).parent / "stored_rows.txt").read_text().splitlines()
    rows = [line.split() for line in lines if line and not line.startswith("#")]
    return {int(number): bytes.fromhex(raw) for number, _, raw in rows}


def _same(a: ClientRow, b: ClientRow) -> bool:
    """Equal, where NaN equals NaN (a tracked prediction's undefined persistence)."""

    def no_nan(row: ClientRow) -> ClientRow:
        tracked = [None if t is None else replace(t, persistence=-1.0 if math.isnan(t.persistence)
                                                  else t.persistence)
                   for t in (row.tracked.emitted, row.tracked.shadow)]  # fmt: skip
        return replace(row, tracked=TrackedPredictions(*tracked))

    return no_nan(a) == no_nan(b)


@pytest.mark.parametrize("row_format", [2, 3, 4, 5])
def test_a_row_stored_in_each_earlier_format_decodes(row_format: int) -> None:
    stored = _stored_rows()[row_format]
    assert msgpack.unpackb(stored, raw=False, strict_map_key=False)[0] == row_format
    assert _same(decode_row(stored), EXPECTED[row_format])


def test_rows_round_trip_in_the_current_format() -> None:
    for row in [*EXPECTED.values(), ClientRow(ClientState("new")),
                ClientRow(STATE, None, TrackedPredictions(None, SHADOW))]:  # fmt: skip
        raw = encode_row(row)
        assert msgpack.unpackb(raw, raw=False, strict_map_key=False)[0] == ROW_FORMAT
        assert _same(decode_row(raw), row)
        # Rewriting an upgraded row gives the same bytes.
        assert encode_row(decode_row(raw)) == raw


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 7 is not 2 to 6"):
        decode_row(msgpack.packb([7, [], None, None, None]))


def test_a_format_6_row_without_the_lifetime_purchases_decodes_with_none_counted() -> None:
    """Rows written by format 6 before the state kept lifetime purchases (14 fields)."""
    raw = msgpack.packb([6, state_fields(STATE)[:STATE_FIELDS], None, None, None])
    decoded = decode_row(raw)
    assert decoded.state == STATE
    assert (decoded.state.invoices, decoded.state.first_invoice) == (0, None)
