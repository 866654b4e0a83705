"""Outcome joining: a tracked prediction's realised margin equals the training label of the
same client and time (the same money rule), and closes only when no event can still count."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from features.offline import LoggedMessage, parsed_events
from features.simulation.messages import simulated_messages
from features.simulation.portfolio import simulate
from features.state import DEFAULT_ALLOWED_LATENESS_S, ApplyResult, ClientState, apply_event
from models_store.experiments.outcomes import (
    Tracked,
    add_money,
    add_money_to_state,
    close_horizons,
    is_closed,
)
from models_store.experiments.records import OutcomeRecord
from models_store.labels import ledgers, margin_parts, margin_ratio

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
DAY = 86_400.0
HORIZON = 90 * DAY


def _tracked(client: str, as_of: float, arm: str = "champion") -> Tracked:
    return Tracked(as_of, as_of + HORIZON, f"p-{client}-{arm}", "m@1.0.0", "e1", arm,
                   0.3, 0.1, 0.5, float("nan"))  # fmt: skip


def test_the_realised_margin_of_a_stream_equals_the_label_of_its_horizon() -> None:
    messages = simulated_messages(simulate(40, 9, seed=3, start=START), duplicate=0.05)
    events = list(parsed_events(LoggedMessage(m.stream, m.key, m.value) for m in messages))  # type: ignore[arg-type]
    as_of = START + 100.5 * DAY
    states: dict[str, ClientState] = {}
    outcomes: dict[str, list[OutcomeRecord]] = {}
    for event in events:  # arrival order, as the stream applies them (streams/feature_pipeline)
        state = states.setdefault(event.client_id, ClientState(event.client_id))
        if apply_event(state, event) is not ApplyResult.APPLIED:
            continue
        if state.tracked is None and event.client_id not in outcomes:
            # A champion prediction and, beside it, a shadow challenger's.
            state.tracked = _tracked(event.client_id, as_of).memo()
            state.shadow_tracked = _tracked(event.client_id, as_of, "shadow").memo()
        add_money_to_state(state, event.timestamp, *margin_parts(event))
        closed = close_horizons(state, DEFAULT_ALLOWED_LATENESS_S)
        if closed:
            assert len(closed) == 2  # same horizon: both close with the same event
            assert (state.tracked, state.shadow_tracked) == (None, None)
            outcomes[event.client_id] = closed
    money = ledgers(events)
    assert len(outcomes) > 20
    for client, (record, shadow) in outcomes.items():
        assert (record.arm, shadow.arm) == ("champion", "shadow")
        assert (shadow.revenue, shadow.cost) == (record.revenue, record.cost)
        revenue, cost = money[client].between(as_of, as_of + HORIZON)
        assert record.revenue == pytest.approx(revenue, rel=1e-12)
        assert record.cost == pytest.approx(cost, rel=1e-12)
        label = margin_ratio(revenue, cost)
        realised = record.realised
        assert (realised is None and math.isnan(label)) or realised == pytest.approx(label)
        assert record.persistence is None  # NaN is written as null
        assert "client_id" not in json.loads(record.to_json())  # the prediction id links it


def test_a_horizon_closes_only_after_its_end_plus_the_allowed_lateness() -> None:
    memo = _tracked("c", START)
    assert not is_closed(memo, START + HORIZON, 7 * DAY)
    assert not is_closed(memo, START + HORIZON + 7 * DAY, 7 * DAY)
    assert is_closed(memo, START + HORIZON + 7 * DAY + 1, 7 * DAY)
    # Money outside (as_of, until] does not count; inside it does.
    assert add_money(memo, START, 10.0, 0.0) == memo
    assert add_money(memo, START + HORIZON + 1, 10.0, 0.0) == memo
    assert add_money(memo, START + HORIZON, 10.0, 4.0).revenue == 10.0
    assert Tracked.of(memo.memo()) == memo or math.isnan(Tracked.of(memo.memo()).persistence)
