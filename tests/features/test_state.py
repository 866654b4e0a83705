"""Applying events to a client's state: order, duplicates, lateness, replays (pure).

The properties are what the stream relies on: within the allowed lateness the order of
arrival does not change the features; a duplicate or a replayed offset changes nothing;
compacting and encoding the state change nothing.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from features.definitions import FEATURE_NAMES, compute_features, feature_dict
from features.events import Event, EventStream, encode_event, parse_event
from features.state import (
    ApplyResult,
    ClientState,
    apply_event,
    compact,
    record_offset,
    state_fields,
    state_from_fields,
)
from features.windows import DAY_SECONDS
from tests.assertions import assert_features_close

START = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
LATENESS = 7 * DAY_SECONDS
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)

PAYLOADS: dict[str, Any] = {
    "ticket_opened": st.fixed_dictionaries({"ticket_id": st.just("t1"),
                                            "priority": st.sampled_from(["low", "high"]),
                                            "category": st.just("network")}),
    "ticket_resolved": st.fixed_dictionaries({"ticket_id": st.just("t1"),
                                              "resolution_hours": st.floats(0, 100),
                                              "sla_met": st.booleans()}),
    "time_logged": st.fixed_dictionaries({"technician_id": st.just("x"),
                                          "hours": st.floats(0.1, 8), "billable": st.booleans(),
                                          "labour_cost_rate": st.floats(20, 90)}),
    "satisfaction_survey": st.fixed_dictionaries({"score": st.integers(1, 5)}),
    "contact": st.fixed_dictionaries({"channel": st.just("email")}),
    "endpoints_changed": st.fixed_dictionaries({"managed_endpoints": st.integers(0, 500)}),
    "service_changed": st.fixed_dictionaries({"service": st.sampled_from(["backup", "cloud"]),
                                              "change": st.sampled_from(["added", "removed"])}),
    "contract_signed": st.fixed_dictionaries({"contract_id": st.just("k1"),
                                              "monthly_recurring_value": st.floats(100, 9000),
                                              "term_months": st.integers(1, 36),
                                              "included_hours": st.floats(0, 80),
                                              "services": st.just(["helpdesk", "backup"])}),
    "contract_cancelled": st.fixed_dictionaries({"contract_id": st.just("k1")}),
    "invoice_issued": st.fixed_dictionaries({"invoice_id": st.just("i1"),
                                             "amount": st.floats(0, 20000)}),
    "payment_received": st.fixed_dictionaries({"invoice_id": st.just("i1"),
                                               "amount": st.floats(0, 20000),
                                               "days_late": st.integers(0, 90)}),
    "credit_issued": st.fixed_dictionaries({"amount": st.floats(0, 500)}),
    "cost_incurred": st.fixed_dictionaries({"amount": st.floats(0, 900),
                                            "category": st.sampled_from(["licence",
                                                                         "third_party"])}),
}  # fmt: skip
BILLING = {"contract_signed", "contract_cancelled", "invoice_issued", "payment_received",
           "credit_issued", "cost_incurred"}  # fmt: skip


def _stream(event_type: str) -> EventStream:
    return "billing" if event_type in BILLING else "activity"


@st.composite
def event_lists(draw: st.DrawFn, span_s: float, max_size: int = 25) -> list[Event]:
    """Distinct events of one client with event times inside ``span_s`` seconds."""
    count = draw(st.integers(1, max_size))
    events = []
    for index in range(count):
        event_type = draw(st.sampled_from(sorted(PAYLOADS)))
        offset = draw(st.integers(0, int(span_s)))
        payload = draw(PAYLOADS[event_type])
        raw = encode_event(event_type, event_id=f"e{index}", client_id="acme",
                           event_time=START + offset, payload=payload)  # fmt: skip
        events.append(parse_event(raw, _stream(event_type), now=FAR_FUTURE))
    return events


def _state(events: list[Event]) -> tuple[ClientState, list[ApplyResult]]:
    state = ClientState("acme")
    return state, [apply_event(state, event, LATENESS) for event in events]


def _as_of(events: list[Event]) -> float:
    return max(event.timestamp for event in events) + 3600


@settings(max_examples=150, deadline=None)
@given(event_lists(span_s=LATENESS), st.randoms(use_true_random=False))
def test_arrival_order_within_the_lateness_does_not_change_features(
    events: list[Event], rnd: Any
) -> None:
    shuffled = list(events)
    rnd.shuffle(shuffled)
    in_order, outcomes = _state(events)
    out_of_order, shuffled_outcomes = _state(shuffled)
    assert set(outcomes) == set(shuffled_outcomes) == {ApplyResult.APPLIED}
    as_of = _as_of(events)
    assert_features_close(compute_features(out_of_order, as_of), compute_features(in_order, as_of))


@settings(max_examples=100, deadline=None)
@given(event_lists(span_s=60 * DAY_SECONDS), st.data())
def test_duplicates_are_counted_once(events: list[Event], data: st.DataObject) -> None:
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=10))
    with_duplicates = list(events)
    for repeat in repeats:
        with_duplicates.insert(data.draw(st.integers(0, len(with_duplicates))), repeat)
    original, outcomes = _state(events)
    duplicated, duplicated_outcomes = _state(with_duplicates)
    # A repeat can only be seen as late or duplicate: never applied twice.
    applied = duplicated_outcomes.count(ApplyResult.APPLIED)
    assert applied <= len(events)
    if outcomes.count(ApplyResult.APPLIED) == len(events) == applied:
        as_of = _as_of(events)
        assert_features_close(
            compute_features(duplicated, as_of), compute_features(original, as_of)
        )


def _round_trip(state: ClientState) -> ClientState:
    """The state through its codec and msgpack, as the table row stores it."""
    raw = msgpack.packb(state_fields(state), use_bin_type=True)
    return state_from_fields(msgpack.unpackb(raw, raw=False, strict_map_key=False))


@settings(max_examples=100, deadline=None)
@given(event_lists(span_s=400 * DAY_SECONDS, max_size=40))
def test_compact_and_codec_change_no_feature(events: list[Event]) -> None:
    state, _ = _state(events)
    as_of = _as_of(events)
    before = compute_features(state, as_of)
    restored = _round_trip(state)
    assert restored == state
    compact(restored, LATENESS)
    assert_features_close(compute_features(restored, as_of), before)
    assert_features_close(compute_features(_round_trip(restored), as_of), before)


def test_an_event_older_than_the_lateness_bound_is_late_per_stream() -> None:
    def event(event_type: str, event_id: str, days: float, payload: dict[str, Any]) -> Event:
        when = START + days * DAY_SECONDS
        raw = encode_event(event_type, event_id=event_id, client_id="acme",
                           event_time=when, payload=payload)  # fmt: skip
        return parse_event(raw, _stream(event_type), now=FAR_FUTURE)

    contact: dict[str, Any] = {"channel": "phone"}
    state = ClientState("acme")
    assert apply_event(state, event("contact", "a", 10, contact), LATENESS) == ApplyResult.APPLIED
    assert apply_event(state, event("contact", "b", 3.5, contact), LATENESS) == ApplyResult.APPLIED
    assert apply_event(state, event("contact", "c", 2.9, contact), LATENESS) == ApplyResult.LATE
    # Billing has a watermark of its own: an old invoice is not late for activity's sake.
    invoice: dict[str, Any] = {"invoice_id": "i", "amount": 10.0}
    assert (
        apply_event(state, event("invoice_issued", "d", 1, invoice), LATENESS)
        == ApplyResult.APPLIED
    )
    assert apply_event(state, event("contact", "a", 10, contact), LATENESS) == ApplyResult.DUPLICATE
    assert state.version == 3


def test_replayed_offsets_are_recognised() -> None:
    state = ClientState("acme")
    assert record_offset(state, "client-activity:3", 10)
    assert not record_offset(state, "client-activity:3", 10)
    assert not record_offset(state, "client-activity:3", 9)
    assert record_offset(state, "client-activity:3", 11)
    assert record_offset(state, "billing:3", 0)


def test_features_of_a_small_history() -> None:
    def at(day: float) -> float:
        return START + day * DAY_SECONDS

    state = ClientState("acme")
    log: list[tuple[str, str, float, dict[str, Any]]] = [
        ("contract_signed", "billing", 0, {"contract_id": "k", "monthly_recurring_value": 1000.0,
                                          "term_months": 12, "included_hours": 10.0,
                                          "services": ["helpdesk"]}),
        ("endpoints_changed", "activity", 0, {"managed_endpoints": 20}),
        ("invoice_issued", "billing", 1, {"invoice_id": "i1", "amount": 1000.0}),
        ("time_logged", "activity", 2, {"technician_id": "t", "hours": 4.0, "billable": True,
                                        "labour_cost_rate": 50.0}),
        ("time_logged", "activity", 100, {"technician_id": "t", "hours": 2.0, "billable": False,
                                          "labour_cost_rate": 50.0}),
        ("cost_incurred", "billing", 2, {"amount": 100.0, "category": "licence"}),
        ("ticket_opened", "activity", 95, {"ticket_id": "x", "priority": "low",
                                           "category": "other"}),
        ("satisfaction_survey", "activity", 99, {"score": 4}),
        ("payment_received", "billing", 20, {"invoice_id": "i1", "amount": 1000.0, "days_late": 5}),
    ]  # fmt: skip
    for index, (event_type, _, day, payload) in enumerate(log):
        raw = encode_event(event_type, event_id=f"e{index}", client_id="acme",
                           event_time=at(day), payload=dict(payload))  # fmt: skip
        event = parse_event(raw, _stream(event_type), now=FAR_FUTURE)
        assert apply_event(state, event) == ApplyResult.APPLIED
    features = feature_dict(state, at(100.5))
    assert features["revenue_180d"] == 1000.0
    assert features["revenue_90d"] == 0.0  # the invoice (day 1) is outside days 11..100
    assert features["labour_hours_180d"] == 6.0
    assert features["labour_cost_180d"] == 300.0
    assert features["realised_margin_180d"] == (1000.0 - 300.0 - 100.0) / 1000.0
    assert features["effective_hourly_rate_180d"] == 1000.0 / 6.0
    assert features["contract_utilisation_30d"] == 2.0 / (10.0 * 30 / (365.25 / 12))
    assert features["tickets_per_endpoint_30d"] == 1 / 20
    assert features["satisfaction_mean_30d"] == 4.0
    assert features["days_since_last_payment"] == 80.5
    assert features["mean_days_late_180d"] == 5.0
    assert features["contract_active"] == 1.0
    assert features["service_helpdesk"] == 1.0
    assert features["service_backup"] == 0.0
    assert features["term_remaining_days"] == 12 * 365.25 / 12 - 100.5
    assert set(features) == set(FEATURE_NAMES)


def test_lifetime_purchases_are_counted_whatever_the_order() -> None:
    def invoice(event_id: str, days: float, amount: float) -> Event:
        raw = encode_event("invoice_issued", event_id=event_id, client_id="acme",
                           event_time=at(days), payload={"invoice_id": event_id,
                                                         "amount": amount})  # fmt: skip
        return parse_event(raw, "billing", now=FAR_FUTURE)

    def at(day: float) -> float:
        return START + day * DAY_SECONDS

    # Within the allowed lateness of each other, so no order makes one of them late.
    events = [invoice("a", 35, 100.0), invoice("b", 40, 50.0), invoice("c", 38, 25.0)]
    forward, backward = ClientState("acme"), ClientState("acme")
    for event in events:
        apply_event(forward, event)
    for event in reversed(events):
        apply_event(backward, event)
    assert forward == backward
    features = feature_dict(forward, at(70))
    assert features["invoices_lifetime"] == 3
    assert features["revenue_lifetime"] == 175.0
    assert features["days_since_last_invoice"] == 30.0
    assert features["invoices_per_30d_lifetime"] == 3 * 30 / 35
    assert features["invoice_recency_share"] == 30 / 35
    assert math.isnan(feature_dict(ClientState("new"), at(1))["invoice_recency_share"])
