"""Outcome tracking: a tracked prediction's realised margin equals the training label of the
same client and time (the same money rule), and closes only when no event can still count."""

from __future__ import annotations

import json
import math

import pytest

from features.offline import LoggedMessage, parsed_events
from features.simulation.messages import simulated_messages
from features.simulation.portfolio import simulate
from features.state import DEFAULT_ALLOWED_LATENESS_S, ApplyResult, ClientState, apply_event
from models_store.experiments.records import OutcomeRecord
from models_store.experiments.tracking import (
    TrackedPredictions,
    add_money_to_tracked,
    close_horizons,
)
from models_store.labels import ledgers, margin_parts, margin_ratio
from tests.models_store.experiments.test_outcomes import START, tracked_prediction

DAY = 86_400.0
HORIZON = 90 * DAY


def test_the_realised_margin_of_a_stream_equals_the_label_of_its_horizon() -> None:
    messages = simulated_messages(simulate(40, 9, seed=3, start=START), duplicate=0.05)
    events = list(parsed_events(LoggedMessage(m.stream, m.key, m.value) for m in messages))  # type: ignore[arg-type]
    as_of = START + 100.5 * DAY
    states: dict[str, ClientState] = {}
    tracked: dict[str, TrackedPredictions] = {}
    outcomes: dict[str, list[OutcomeRecord]] = {}
    for event in events:  # arrival order, as the stream applies them (streams/pipeline/batch.py)
        state = states.setdefault(event.client_id, ClientState(event.client_id))
        if apply_event(state, event) is not ApplyResult.APPLIED:
            continue
        client = event.client_id
        if client not in tracked and client not in outcomes:
            # A champion prediction and, beside it, a shadow challenger's.
            tracked[client] = TrackedPredictions(
                tracked_prediction(client, as_of), tracked_prediction(client, as_of, "shadow")
            )
        if client not in tracked:
            continue
        money = add_money_to_tracked(tracked[client], event.timestamp, *margin_parts(event))
        still_open, closed = close_horizons(money, state.watermarks, DEFAULT_ALLOWED_LATENESS_S)
        tracked[client] = still_open
        if closed:
            assert len(closed) == 2  # same horizon: both close with the same event
            assert not still_open
            del tracked[client]
            outcomes[client] = closed
    ledger = ledgers(events)
    assert len(outcomes) > 20
    for client, (record, shadow) in outcomes.items():
        assert (record.arm, shadow.arm) == ("champion", "shadow")
        assert (shadow.revenue, shadow.cost) == (record.revenue, record.cost)
        revenue, cost = ledger[client].between(as_of, as_of + HORIZON)
        assert record.revenue == pytest.approx(revenue, rel=1e-12)
        assert record.cost == pytest.approx(cost, rel=1e-12)
        label = margin_ratio(revenue, cost)
        realised = record.realised
        assert (realised is None and math.isnan(label)) or realised == pytest.approx(label)
        assert record.persistence is None  # NaN is written as null
        assert "client_id" not in json.loads(record.to_json())  # the prediction id links it
