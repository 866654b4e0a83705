"""A simulated portfolio as the messages its clients produce, in arrival order.

``expand`` turns one drawn period of a contract client into events, ``expand_purchases``
one of a transactional client; ``simulated_messages`` adds the bad input asked for
(malformed, re-sent, late); ``history_frame`` is the event log as written to disk.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.events import encode_event
from features.simulation.portfolio import PERIOD_S, TIERS, PeriodDraws, Portfolio, Traits, work_logs
from features.simulation.transactional import ShopperPeriod, ShopperTraits
from features.windows import DAY_SECONDS


@dataclass(frozen=True)
class SimulatedMessage:
    """One message as produced to a topic, with when it happened and when it arrived."""

    stream: str
    key: bytes
    value: bytes
    event_time: float
    arrival_time: float
    injected: str = ""


class _Emitter:
    """Messages of one client's period: numbered event ids, small arrival delays."""

    def __init__(self, client_id: str, period: int, rng: np.random.Generator) -> None:
        self.client_id = client_id
        self.period = period
        self.rng = rng
        self.counter = iter(range(1_000_000))

    def __call__(
        self, stream: str, event_type: str, when: float, payload: dict[str, Any]
    ) -> SimulatedMessage:
        when = float(math.floor(when))
        event_id = f"{self.client_id}-p{self.period}-{next(self.counter)}"
        raw = encode_event(event_type, event_id=event_id, client_id=self.client_id,
                           event_time=when, payload=payload)  # fmt: skip
        delay = float(self.rng.exponential(20.0))
        return SimulatedMessage(stream, self.client_id.encode(), raw, when, when + delay)


def expand(
    client_id: str, traits: Traits, draws: PeriodDraws, start: float, rng: np.random.Generator
) -> Iterator[SimulatedMessage]:
    """The events of one drawn period, with event times inside it and small arrival delays."""
    base = start + draws.period * PERIOD_S
    message = _Emitter(client_id, draws.period, rng)

    def at() -> float:
        # Early enough that the time logged 30 minutes later is still in this period.
        return base + float(rng.uniform(0, PERIOD_S - 7200))

    services = list(TIERS[traits.tier][2])
    contract_id = f"{client_id}-k{draws.period}"
    if draws.signed or draws.renewed:
        kind = "contract_signed" if draws.signed else "contract_renewed"
        yield message("billing", kind, base, {
            "contract_id": contract_id, "monthly_recurring_value": draws.monthly_value,
            "term_months": draws.term_periods, "included_hours": draws.included_hours,
            "services": services})  # fmt: skip
        if draws.signed:
            for service in services:
                yield message("activity", "service_changed", base + 1,
                              {"service": service, "change": "added"})  # fmt: skip
    if not draws.active:
        return
    yield message("activity", "endpoints_changed", base + 60,
                  {"managed_endpoints": draws.endpoints})  # fmt: skip
    invoices = [("recurring", draws.monthly_value, base + 3600)]
    if draws.overage_amount:
        invoices.append(("overage", draws.overage_amount, base + PERIOD_S - 3600))
    if draws.project_amount:
        invoices.append(("project", draws.project_amount, at()))
    for number, (kind, amount, when) in enumerate(invoices):
        invoice_id = f"{client_id}-i{draws.period}-{number}"
        yield message("billing", "invoice_issued", when,
                      {"invoice_id": invoice_id, "amount": amount, "kind": kind})  # fmt: skip
        late = int(rng.exponential(25.0 if traits.late_payer else 1.5))
        yield message("billing", "payment_received", when + (14 + late) * DAY_SECONDS,
                      {"invoice_id": invoice_id, "amount": amount, "days_late": late})  # fmt: skip
    for index, (hours, breached) in enumerate(zip(draws.ticket_hours, draws.ticket_breaches,
                                                  strict=True)):  # fmt: skip
        opened = at()
        ticket_id = f"{client_id}-t{draws.period}-{index}"
        priority = str(rng.choice(["low", "medium", "high"]))
        category = str(rng.choice(["hardware", "software", "network", "user_request"]))
        ticket = {"ticket_id": ticket_id, "priority": priority, "category": category}
        yield message("activity", "ticket_opened", opened, ticket)
        resolution = float(hours) * float(rng.uniform(2, 8))
        technician = f"tech-{int(rng.integers(1, 12))}"
        yield message("activity", "time_logged", opened + 1800, {
            "technician_id": technician, "hours": float(hours), "billable": True,
            "labour_cost_rate": float(draws.cost_rates[index])})  # fmt: skip
        yield message("activity", "ticket_resolved", opened + resolution * 3600, {
            "ticket_id": ticket_id, "resolution_hours": round(resolution, 2),
            "sla_met": not bool(breached)})  # fmt: skip
    rate = float(draws.cost_rates[0])
    for total, billable in ((draws.creep_hours, False), (draws.project_hours, True)):
        for hours in work_logs(total):
            yield message("activity", "time_logged", at(), {
                "technician_id": "tech-0", "hours": hours, "billable": billable,
                "labour_cost_rate": rate})  # fmt: skip
    for amount in draws.credits:
        yield message("billing", "credit_issued", at(), {"amount": amount, "reason": "sla"})
    if draws.licence_cost:
        yield message("billing", "cost_incurred", base + 7200,
                      {"amount": draws.licence_cost, "category": "licence"})  # fmt: skip
    if draws.third_party_cost:
        yield message("billing", "cost_incurred", at(),
                      {"amount": draws.third_party_cost, "category": "third_party"})  # fmt: skip
    for score in draws.surveys:
        yield message("activity", "satisfaction_survey", at(), {"score": score})
    for _ in range(draws.contacts):
        channel = str(rng.choice(["email", "phone", "portal", "chat"]))
        yield message("activity", "contact", at(), {"channel": channel})
    if draws.cancelled:
        yield message("billing", "contract_cancelled", base + PERIOD_S - 60,
                      {"contract_id": contract_id, "reason": "dissatisfied"})  # fmt: skip


def expand_purchases(
    client_id: str,
    traits: ShopperTraits,
    draws: ShopperPeriod,
    start: float,
    rng: np.random.Generator,
) -> Iterator[SimulatedMessage]:
    """The events of one transactional period: per purchase an invoice (a one-off, so of
    the contract's kind ``project``), its payment (at the till, or on terms by a late
    payer) and the cost of the goods; a return's credit; a ticket with its time logged."""
    message = _Emitter(client_id, draws.period, rng)
    period_end = start + (draws.period + 1) * PERIOD_S
    for number, purchase in enumerate(draws.purchases):
        when = start + purchase.at_s
        invoice_id = f"{client_id}-i{draws.period}-{number}"
        invoice = {"invoice_id": invoice_id, "amount": purchase.amount, "kind": "project"}
        yield message("billing", "invoice_issued", when, invoice)
        paid = when + 60 if not traits.late_payer else \
            when + (14 + purchase.days_late) * DAY_SECONDS  # fmt: skip
        yield message("billing", "payment_received", paid, {
            "invoice_id": invoice_id, "amount": purchase.amount,
            "days_late": purchase.days_late})  # fmt: skip
        yield message("billing", "cost_incurred", when,
                      {"amount": purchase.goods_cost, "category": "third_party"})  # fmt: skip
        if purchase.returned_at_s is not None:
            yield message("billing", "credit_issued", start + purchase.returned_at_s,
                          {"amount": purchase.amount, "reason": "return"})  # fmt: skip
        if purchase.ticket_at_s is not None:
            opened = start + purchase.ticket_at_s
            ticket_id = f"{client_id}-t{draws.period}-{number}"
            category = str(rng.choice(["hardware", "software", "user_request", "other"]))
            ticket = {"ticket_id": ticket_id, "priority": "low", "category": category}
            yield message("activity", "ticket_opened", opened, ticket)
            # Logged in the purchase's period, whose money the oracle counts with it.
            logged = min(opened + 1800, period_end - 1)
            yield message("activity", "time_logged", logged, {
                "technician_id": f"tech-{int(rng.integers(1, 12))}",
                "hours": purchase.ticket_hours, "billable": False,
                "labour_cost_rate": traits.cost_rate})  # fmt: skip
            resolution = purchase.ticket_hours * float(rng.uniform(2, 8))
            yield message("activity", "ticket_resolved", logged + resolution * 3600, {
                "ticket_id": ticket_id, "resolution_hours": round(resolution, 2),
                "sla_met": True})  # fmt: skip


def _corrupt(message: SimulatedMessage, rng: np.random.Generator, number: int) -> SimulatedMessage:
    """A broken variant of a message, of one of the kinds the validation rejects."""
    event = json.loads(message.value)
    event["event_id"] = f"{event['event_id']}-bad{number}"
    kind = int(rng.integers(0, 6))
    if kind == 0:
        raw = message.value[: len(message.value) // 2]  # truncated JSON
    else:
        if kind == 1:
            event["type"] = "teleport_requested"
        elif kind == 2:
            event.pop("client_id")
        elif kind == 3:
            event["payload"] = {**event["payload"], "amount": -1.0, "hours": -1.0}
            event["type"] = "credit_issued" if message.stream == "billing" else "time_logged"
        elif kind == 4:
            event["event_time"] = "2999-01-01T00:00:00Z"
        else:
            event["payload"] = "not an object"
        raw = json.dumps(event).encode()
    return SimulatedMessage(message.stream, message.key, raw, message.event_time,
                            message.arrival_time + 0.5, "malformed")  # fmt: skip


def simulated_messages(
    portfolio: Portfolio,
    *,
    malformed: float = 0.0,
    duplicate: float = 0.0,
    late: float = 0.0,
    allowed_lateness_days: float = 7.0,
) -> list[SimulatedMessage]:
    """Every message of the portfolio in arrival order, with the stated fractions injected.

    Malformed messages are extra (broken copies); duplicates re-send a message within
    the hour; late messages arrive 1.5 to 4 times the allowed lateness after their event
    time. The clean events, and so the ground truth, stay as drawn. The log ends with the
    last period: payments due later have not happened yet when it is exported.
    """
    rng = np.random.default_rng(portfolio.seed + 2)
    end = portfolio.start + portfolio.periods * PERIOD_S
    clean: list[SimulatedMessage] = []
    for client_id, traits, draws, _ in portfolio.clients:
        for period in draws:
            clean.extend(m for m in expand(client_id, traits, period, portfolio.start, rng)
                         if m.event_time < end)  # fmt: skip
    for shopper in portfolio.shoppers:
        for purchases in shopper.periods:
            clean.extend(m for m in expand_purchases(shopper.client_id, shopper.traits,
                                                     purchases, portfolio.start, rng)
                         if m.event_time < end)  # fmt: skip
    extra: list[SimulatedMessage] = []
    result: list[SimulatedMessage] = []
    lateness_s = allowed_lateness_days * DAY_SECONDS
    for number, message in enumerate(clean):
        roll = rng.random()
        if roll < late:
            delay = float(rng.uniform(1.5, 4.0)) * lateness_s
            arrival = message.event_time + delay
            message = SimulatedMessage(message.stream, message.key, message.value,
                                       message.event_time, arrival, "late")  # fmt: skip
        result.append(message)
        if rng.random() < duplicate:
            extra.append(SimulatedMessage(message.stream, message.key, message.value,
                                          message.event_time,
                                          message.arrival_time + float(rng.uniform(1, 3600)),
                                          "duplicate"))  # fmt: skip
        if rng.random() < malformed:
            extra.append(_corrupt(message, rng, number))
    result.extend(extra)
    result.sort(key=lambda m: m.arrival_time)
    return result


def history_frame(messages: list[SimulatedMessage]) -> pd.DataFrame:
    """The event log as a frame (``features.offline`` columns plus what helps people read it)."""
    return pd.DataFrame(
        {
            "arrival": np.arange(len(messages), dtype=np.int64),
            "arrival_time": [m.arrival_time for m in messages],
            "stream": [m.stream for m in messages],
            "key": [m.key for m in messages],
            "value": [m.value for m in messages],
            "event_time": [m.event_time for m in messages],
            "injected": [m.injected for m in messages],
        }
    )
