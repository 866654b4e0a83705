"""A seeded MSP portfolio simulator with a hidden ground truth.

Each client has latent traits (size, price level, neediness, ticket complexity, scope
creep, late paying, overage billing) and evolves in 30-day periods: endpoints grow,
tickets follow endpoints and seasonality, hours beyond the included ones creep in,
SLA breaches lower satisfaction, low satisfaction raises the hazard of cancelling,
contracts renew with the current size, projects bring one-off invoices, licences cost
per endpoint. ``step`` draws a period's totals; ``expand`` turns them into events.

Ground truth: the margin of the next 90 days (three periods) is noisy given everything
the generator knows. ``oracle`` re-draws those periods from each cutoff's state many
times: its mean is the best possible prediction, and its R² against the realised
margins is the best accuracy any model can reach on this data.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.events import ServiceType, encode_event
from features.windows import DAY_SECONDS

PERIOD_DAYS = 30
PERIOD_S = PERIOD_DAYS * DAY_SECONDS
HORIZON_PERIODS = 3  # 90 days
TIERS = {  # price per endpoint and month, included hours per endpoint and month, services
    "essential": (28.0, 0.10, ("helpdesk", "monitoring")),
    "standard": (42.0, 0.16, ("helpdesk", "monitoring", "backup", "security")),
    "premium": (61.0, 0.24, tuple(service.value for service in ServiceType)),
}
LICENCE_PER_ENDPOINT = {"helpdesk": 0.0, "monitoring": 2.5, "backup": 4.0, "security": 6.0,
                        "cloud": 5.0, "network": 1.5}  # fmt: skip


@dataclass(frozen=True)
class Traits:
    """Latent, fixed traits of a client: what a model can only infer from behaviour."""

    tier: str
    price_factor: float  # < 0.8: an underpriced contract
    neediness: float  # tickets per endpoint relative to the portfolio
    complexity: float  # mean technician hours per ticket
    creep: float  # growth of unticketed hours beyond the contract, per period
    late_payer: bool
    bills_overage: bool
    growth: float  # mean log growth of endpoints per period
    cost_rate: float  # mean technician cost per hour


@dataclass
class Dynamics:
    """The state a client carries from one period to the next."""

    endpoints: int
    active: bool = True
    contract_number: int = 0
    monthly_value: float = 0.0
    included_hours: float = 0.0
    term_periods: int = 12
    periods_left: int = 0
    satisfaction: float = 4.3
    creep_hours: float = 0.0
    period: int = 0


@dataclass
class PeriodDraws:
    """Everything random about one period of one client, and its money totals."""

    period: int
    endpoints: int
    active: bool
    signed: bool
    renewed: bool
    cancelled: bool
    monthly_value: float
    included_hours: float
    term_periods: int
    ticket_hours: np.ndarray
    ticket_breaches: np.ndarray
    cost_rates: np.ndarray
    creep_hours: float
    overage_hours: float
    overage_amount: float
    credits: list[float]
    licence_cost: float
    third_party_cost: float
    project_amount: float
    project_hours: float
    surveys: list[int]
    contacts: int
    revenue: float = field(init=False)
    cost: float = field(init=False)

    def __post_init__(self) -> None:
        labour = float(np.sum(self.ticket_hours * self.cost_rates[: self.ticket_hours.size]))
        # Creep and project hours are logged by the first technician of the period.
        labour += sum(h * float(self.cost_rates[0]) for h in work_logs(self.creep_hours))
        labour += sum(h * float(self.cost_rates[0]) for h in work_logs(self.project_hours))
        self.revenue = (self.monthly_value if self.active else 0.0) + self.overage_amount + \
            self.project_amount  # fmt: skip
        self.cost = labour + self.licence_cost + self.third_party_cost + sum(self.credits)


def work_logs(hours: float, chunk: float = 8.0) -> list[float]:
    """Hours as the time entries a technician would log: at most ``chunk`` hours each."""
    entries = []
    remaining = round(hours, 2)
    while remaining > 0.005:
        entries.append(round(min(chunk, remaining), 2))
        remaining = round(remaining - entries[-1], 2)
    return entries


def draw_traits(rng: np.random.Generator) -> tuple[Traits, Dynamics]:
    """A new client: latent traits and its starting state."""
    endpoints = int(np.clip(np.round(rng.lognormal(math.log(35), 0.8)), 3, 800))
    tier = str(rng.choice(list(TIERS), p=[0.4, 0.4, 0.2]))
    traits = Traits(
        tier=tier,
        price_factor=float(np.clip(rng.lognormal(0.0, 0.18), 0.55, 1.6)),
        neediness=float(rng.lognormal(0.0, 0.45)),
        complexity=float(rng.lognormal(math.log(1.6), 0.35)),
        creep=float(rng.exponential(0.004)) if rng.random() < 0.35 else 0.0,
        late_payer=bool(rng.random() < 0.15),
        bills_overage=bool(rng.random() < 0.5),
        growth=float(rng.normal(0.004, 0.01)),
        cost_rate=float(rng.uniform(34.0, 52.0)),
    )
    return traits, Dynamics(endpoints=endpoints)


def _season(period: int) -> float:
    # More tickets in the periods after the new year and before summer.
    return 1.0 + 0.15 * math.sin(2 * math.pi * (period % 12) / 12)


def step(traits: Traits, dyn: Dynamics, rng: np.random.Generator) -> PeriodDraws:
    """Draw one period and advance ``dyn`` to the next."""
    price, hours_per_endpoint, _ = TIERS[traits.tier]
    signed = renewed = cancelled = False
    if dyn.active and dyn.periods_left <= 0:
        signed = dyn.contract_number == 0
        renewed = not signed
        dyn.contract_number += 1
        uplift = 1.0 if signed else 1.03
        dyn.monthly_value = round(dyn.endpoints * price * traits.price_factor * uplift, 2)
        dyn.included_hours = round(dyn.endpoints * hours_per_endpoint, 1)
        dyn.term_periods = int(rng.choice([12, 24, 36])) if signed else 12
        dyn.periods_left = dyn.term_periods
    active = dyn.active
    load = dyn.endpoints * 0.12 * traits.neediness * _season(dyn.period) if active else 0.0
    tickets = int(rng.poisson(load))
    ticket_hours = rng.gamma(2.0, traits.complexity / 2.0, size=tickets).round(2) + 0.25
    cost_rates = np.clip(rng.normal(traits.cost_rate, 4.0, size=max(tickets, 1)), 20, 90).round(2)
    hours = float(ticket_hours.sum())
    utilisation = hours / dyn.included_hours if dyn.included_hours > 0 else 1.0
    breach_p = 1 / (1 + math.exp(-(-3.0 + 2.2 * utilisation)))
    breaches = rng.random(tickets) < breach_p
    dyn.creep_hours = dyn.creep_hours + traits.creep * dyn.endpoints if active else 0.0
    creep = round(dyn.creep_hours * float(rng.lognormal(0.0, 0.2)), 2) if active else 0.0
    overage = max(0.0, hours + creep - dyn.included_hours) if active else 0.0
    overage_amount = round(overage * 85.0, 2) if traits.bills_overage and overage > 1 else 0.0
    credits = [round(0.04 * dyn.monthly_value, 2) for _ in range(int(breaches.sum()))
               if rng.random() < 0.3]  # fmt: skip
    licence = (sum(LICENCE_PER_ENDPOINT[s] for s in TIERS[traits.tier][2]) * dyn.endpoints
               * float(rng.lognormal(0.0, 0.05))) if active else 0.0  # fmt: skip
    third_party = round(float(rng.lognormal(math.log(300), 0.6)), 2) if active and \
        rng.random() < 0.15 else 0.0  # fmt: skip
    project = active and rng.random() < 0.06
    project_amount = round(float(rng.lognormal(math.log(4000), 0.5)), 2) if project else 0.0
    project_hours = round(project_amount * 0.55 / traits.cost_rate, 2) if project else 0.0
    breach_rate = float(breaches.mean()) if tickets else 0.0
    dyn.satisfaction = 0.7 * dyn.satisfaction + 0.3 * (4.5 - 3.0 * breach_rate)
    surveys = [int(np.clip(round(dyn.satisfaction + rng.normal(0, 0.7)), 1, 5))
               for _ in range(int(rng.binomial(tickets, 0.3)))] if active else []  # fmt: skip
    contacts = int(rng.poisson(1.5 + 0.4 * tickets)) if active else 0
    draws = PeriodDraws(
        period=dyn.period, endpoints=dyn.endpoints, active=active, signed=signed,
        renewed=renewed, cancelled=False, monthly_value=dyn.monthly_value,
        included_hours=dyn.included_hours, term_periods=dyn.term_periods,
        ticket_hours=ticket_hours, ticket_breaches=breaches, cost_rates=cost_rates,
        creep_hours=creep, overage_hours=overage, overage_amount=overage_amount,
        credits=credits, licence_cost=round(licence, 2), third_party_cost=third_party,
        project_amount=project_amount, project_hours=project_hours, surveys=surveys,
        contacts=contacts,
    )  # fmt: skip
    if active:
        hazard = 0.004 + 0.08 * max(0.0, 3.6 - dyn.satisfaction)
        if rng.random() < hazard:
            cancelled = True
            dyn.active = False
        dyn.periods_left -= 1
        dyn.endpoints = max(1, round(dyn.endpoints * math.exp(traits.growth + rng.normal(0, 0.03))))
    draws.cancelled = cancelled
    dyn.period += 1
    return draws


def horizon_margin(periods: list[PeriodDraws]) -> float:
    """Gross margin ratio of some periods (NaN without revenue, as the label rule says)."""
    revenue = sum(p.revenue for p in periods)
    cost = sum(p.cost for p in periods)
    return (revenue - cost) / revenue if revenue > 0 else math.nan


@dataclass(frozen=True)
class Portfolio:
    """A simulated portfolio: per client, its traits and its drawn periods."""

    start: float
    periods: int
    seed: int
    clients: list[tuple[str, Traits, list[PeriodDraws], list[Dynamics]]]


def simulate(clients: int, months: int, seed: int, start: float) -> Portfolio:
    """Draw ``clients`` clients over ``months`` 30-day periods from ``start`` (epoch s)."""
    rng = np.random.default_rng(seed)
    result = []
    for index in range(clients):
        traits, dyn = draw_traits(rng)
        states, draws = [], []
        for _ in range(months):
            states.append(copy.copy(dyn))  # the state at the start of each period
            draws.append(step(traits, dyn, rng))
        result.append((f"client-{index:05d}", traits, draws, states))
    return Portfolio(start=start, periods=months, seed=seed, clients=result)


def oracle_rows(
    portfolio: Portfolio,
    draws_per_cutoff: int = 16,
    progress: Callable[[int], None] | None = None,
) -> pd.DataFrame:
    """Best-possible predictions of the next 90 days' margin at each period boundary.

    For every client and cutoff with a full horizon ahead (and revenue in it), the
    horizon is re-drawn ``draws_per_cutoff`` times from the cutoff's state; the mean is
    the oracle's prediction, next to the margin that was actually drawn. One row per
    (client_id, cutoff epoch s): prediction, estimate_variance (of that mean), actual.
    """
    rng = np.random.default_rng(portfolio.seed + 1)
    rows: list[tuple[str, float, float, float, float]] = []
    for client_id, traits, draws, states in portfolio.clients:
        if progress is not None:
            progress(1)
        for cutoff in range(1, portfolio.periods - HORIZON_PERIODS + 1):
            actual = horizon_margin(draws[cutoff : cutoff + HORIZON_PERIODS])
            if math.isnan(actual):
                continue
            samples = []
            for _ in range(draws_per_cutoff):
                dyn = copy.copy(states[cutoff])
                sample = horizon_margin([step(traits, dyn, rng) for _ in range(HORIZON_PERIODS)])
                if not math.isnan(sample):
                    samples.append(sample)
            if len(samples) > 1:
                rows.append((client_id, portfolio.start + cutoff * PERIOD_S,
                             float(np.mean(samples)),
                             float(np.var(samples, ddof=1)) / len(samples), actual))  # fmt: skip
    columns = ["client_id", "cutoff", "prediction", "estimate_variance", "actual"]
    return pd.DataFrame(rows, columns=columns)


def oracle_expected_r2(
    actual: np.ndarray, prediction: np.ndarray, estimate_variance: np.ndarray
) -> float:
    """R² of the oracle's exact mean: the mean of K draws is itself noisy (variance s²/K),
    which would understate the oracle, so that part is taken out of the squared error."""
    residual = float(np.mean((actual - prediction) ** 2)) - float(np.mean(estimate_variance))
    return 1.0 - residual / float(np.var(actual))


def oracle(
    portfolio: Portfolio,
    draws_per_cutoff: int = 16,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """The oracle's figures over every cutoff (see ``oracle_rows``)."""
    return oracle_summary(oracle_rows(portfolio, draws_per_cutoff, progress), draws_per_cutoff)


def oracle_summary(rows: pd.DataFrame, draws_per_cutoff: int) -> dict[str, Any]:
    """Expected R² and MAE of the oracle over ``rows``."""
    y, p = rows["actual"].to_numpy(), rows["prediction"].to_numpy()
    return {
        "oracle_expected_r2": oracle_expected_r2(y, p, rows["estimate_variance"].to_numpy()),
        "oracle_mae": float(np.mean(np.abs(y - p))),
        "pairs": len(rows),
        "draws_per_cutoff": draws_per_cutoff,
        "horizon_days": HORIZON_PERIODS * PERIOD_DAYS,
        "label": "gross margin ratio of (t, t+90d]; pairs without revenue left out",
    }


@dataclass(frozen=True)
class SimulatedMessage:
    """One message as produced to a topic, with when it happened and when it arrived."""

    stream: str
    key: bytes
    value: bytes
    event_time: float
    arrival_time: float
    injected: str = ""


def expand(
    client_id: str, traits: Traits, draws: PeriodDraws, start: float, rng: np.random.Generator
) -> Iterator[SimulatedMessage]:
    """The events of one drawn period, with event times inside it and small arrival delays."""
    base = start + draws.period * PERIOD_S
    counter = iter(range(1_000_000))

    def message(
        stream: str, event_type: str, when: float, payload: dict[str, Any]
    ) -> SimulatedMessage:
        when = float(math.floor(when))
        event_id = f"{client_id}-p{draws.period}-{next(counter)}"
        raw = encode_event(event_type, event_id=event_id, client_id=client_id, event_time=when,
                           payload=payload)  # fmt: skip
        delay = float(rng.exponential(20.0))
        return SimulatedMessage(stream, client_id.encode(), raw, when, when + delay)

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
