"""A seeded MSP portfolio simulator with a hidden ground truth.

Each client has latent traits (size, price level, neediness, ticket complexity, scope
creep, late paying, overage billing) and evolves in 30-day periods: endpoints grow,
tickets follow endpoints and seasonality, hours beyond the included ones creep in,
SLA breaches lower satisfaction, low satisfaction raises the hazard of cancelling,
contracts renew with the current size, projects bring one-off invoices, licences cost
per endpoint. ``step`` draws a period's totals; ``features.simulation.messages`` turns
them into events and ``features.simulation.oracle`` judges what can be predicted.

Those are contract clients. A portfolio can hold transactional clients instead, or both
(``simulate``'s ``kind``; ``features.simulation.transactional``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np

from features.events import ServiceType
from features.simulation.periods import PERIOD_DAYS as PERIOD_DAYS
from features.simulation.periods import PERIOD_S as PERIOD_S
from features.simulation.transactional import Shopper, simulate_shopper

PortfolioKind = Literal["contract", "transactional", "mixed"]
PORTFOLIO_KINDS: tuple[PortfolioKind, ...] = get_args(PortfolioKind)
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


@dataclass(frozen=True)
class Portfolio:
    """A simulated portfolio: per contract client, its traits, drawn periods and the state
    at the start of each; and the transactional clients (``shoppers``)."""

    start: float
    periods: int
    seed: int
    clients: list[tuple[str, Traits, list[PeriodDraws], list[Dynamics]]]
    shoppers: list[Shopper] = field(default_factory=list)
    kind: PortfolioKind = "contract"

    @property
    def size(self) -> int:
        """Clients of both kinds."""
        return len(self.clients) + len(self.shoppers)


def simulate(
    clients: int, months: int, seed: int, start: float, kind: PortfolioKind = "contract"
) -> Portfolio:
    """Draw ``clients`` clients over ``months`` 30-day periods from ``start`` (epoch s).

    ``kind``: contract clients, transactional ones, or ``mixed`` (the first half contract,
    the rest transactional). The transactional clients draw from their own random stream,
    so the contract clients of a seed are the same whatever else the portfolio holds.
    """
    if kind not in PORTFOLIO_KINDS:
        raise ValueError(f"portfolio kind {kind!r} is not one of {', '.join(PORTFOLIO_KINDS)}")
    contracts = {"contract": clients, "transactional": 0, "mixed": clients // 2}[kind]
    rng = np.random.default_rng(seed)
    result = []
    for index in range(contracts):
        traits, dyn = draw_traits(rng)
        states, draws = [], []
        for _ in range(months):
            states.append(copy.copy(dyn))  # the state at the start of each period
            draws.append(step(traits, dyn, rng))
        result.append((f"client-{index:05d}", traits, draws, states))
    shopper_rng = np.random.default_rng([seed, 1])
    shoppers = [simulate_shopper(f"client-{index:05d}", months, shopper_rng,
                                 opening=index == contracts)
                for index in range(contracts, clients)]  # fmt: skip
    return Portfolio(start=start, periods=months, seed=seed, clients=result, shoppers=shoppers,
                     kind=kind)  # fmt: skip
