"""The portfolio as messages: realistic enough to learn from, bad input as asked (pure)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pytest

from features.events import parse_event
from features.offline import LoggedMessage, parsed_events, replay
from features.simulation.messages import expand_purchases, simulated_messages
from features.simulation.portfolio import PERIOD_S, PORTFOLIO_KINDS, PortfolioKind, simulate
from features.simulation.transactional import Purchase, ShopperPeriod, draw_shopper_traits
from features.state import ApplyResult

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()


def test_arrival_order_and_injected_fractions() -> None:
    messages = simulated_messages(
        simulate(60, 6, seed=1, start=START), malformed=0.02, duplicate=0.02, late=0.01
    )
    assert [m.arrival_time for m in messages] == sorted(m.arrival_time for m in messages)
    injected = Counter(m.injected for m in messages)
    clean = injected[""] + injected["late"]
    for kind, fraction in (("malformed", 0.02), ("duplicate", 0.02), ("late", 0.01)):
        assert 0.5 * fraction < injected[kind] / clean < 1.5 * fraction, (kind, injected)
    # Malformed copies never parse; duplicates re-send an event_id already sent.
    logged = [LoggedMessage(m.stream, m.key, m.value) for m in messages]  # type: ignore[arg-type]
    valid = list(parsed_events(logged))
    assert len(valid) == len(messages) - injected["malformed"]
    ids = Counter(json.loads(m.value)["event_id"] for m in messages if m.injected == "duplicate")
    assert ids
    _, outcomes = replay(valid, as_of=float("inf"))
    # A re-sent copy of a late message is judged late first, so a few count as late.
    assert 0.9 * injected["duplicate"] <= outcomes[ApplyResult.DUPLICATE] <= injected["duplicate"]
    assert outcomes[ApplyResult.LATE] > 0


def test_every_event_type_occurs() -> None:
    portfolio = simulate(80, 8, seed=2, start=START)
    messages = simulated_messages(portfolio)
    types = {json.loads(m.value)["type"] for m in messages}
    assert len(types) >= 12, types


@pytest.mark.parametrize("kind", PORTFOLIO_KINDS)
def test_every_message_of_every_kind_passes_the_event_contract(kind: PortfolioKind) -> None:
    messages = simulated_messages(simulate(60, 9, seed=6, start=START, kind=kind))
    for m in messages:
        parse_event(m.value, m.stream, key=m.key)  # type: ignore[arg-type]
    types = Counter(json.loads(m.value)["type"] for m in messages)
    if kind == "transactional":
        # Purchases only: no contract, no endpoints, no surveys; some returns and tickets.
        assert set(types) == {"invoice_issued", "payment_received", "cost_incurred",
                              "credit_issued", "ticket_opened", "time_logged",
                              "ticket_resolved"}, types  # fmt: skip
        assert types["invoice_issued"] > 10 * types["ticket_opened"]
    else:
        assert types["contract_signed"] > 0


def test_a_purchase_at_the_end_of_a_period_keeps_its_money_in_it() -> None:
    """The oracle counts a purchase's money in its period; so must the events' times."""
    rng = np.random.default_rng(1)
    traits = draw_shopper_traits(rng, 12 * PERIOD_S)
    last = 3 * PERIOD_S - 10
    purchase = Purchase(last, 80.0, 48.0, last, last, 0.75, 0)
    messages = list(expand_purchases("client-1", traits, ShopperPeriod(2, [purchase],
                                     traits.cost_rate), START, rng))  # fmt: skip
    money = {"invoice_issued", "cost_incurred", "credit_issued", "time_logged"}
    events = [json.loads(m.value) for m in messages]
    assert {e["type"] for e in events} >= money
    for m, event in zip(messages, events, strict=True):
        if event["type"] in money:
            assert START + 2 * PERIOD_S <= m.event_time < START + 3 * PERIOD_S, event
