"""Transactional clients: no contract, irregular purchases, buy till you die.

The classic generative story, BG/NBD for how often and how long and Gamma-Gamma for how
much: while alive a client buys at a Poisson rate λ; after each repeat purchase it drops
out for good with probability p; across clients λ ~ Gamma(r, α) and p ~ Beta(a, b). A
purchase's spend is Gamma with shape s and the client's mean μ = s/ν, ν ~ Gamma(q, γ).
A purchase is an invoice and its payment, with the cost of the goods as a third-party
cost; now and then it is returned (credited in full) or brings a support ticket with the
time logged on it, in the same period. Clients are acquired (their first purchase) over
the first half of the history, so most are known well before the last horizons.

Everything about a client's future is in its traits and whether it is alive, so the
expected revenue and margin of a horizon have a closed form (``expected_horizon``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from features.simulation.periods import PERIOD_S
from features.windows import DAY_SECONDS

# BG/NBD and Gamma-Gamma parameters (λ per day): a skewed, zero-inflated portfolio, where
# about half the clients that are alive and most that have dropped out buy nothing in 90 days.
RATE_SHAPE, RATE_RATE = 0.7, 40.0  # λ ~ Gamma(r, α): mean one purchase in ~57 days
DROPOUT_A, DROPOUT_B = 1.0, 3.0  # p ~ Beta(a, b): mean 0.25
SPEND_SHAPE = 4.0  # s: a purchase's spend varies by 50% around the client's mean
SPEND_Q, SPEND_GAMMA = 3.0, 45.0  # ν ~ Gamma(q, γ): mean spend s·γ/(q−1) = 90
TICKET_HOURS_SHAPE, TICKET_HOURS_SCALE, TICKET_HOURS_MIN = 2.0, 0.25, 0.1
ACQUISITION_SHARE = 0.5  # first purchases fall in the first half of the history


@dataclass(frozen=True)
class ShopperTraits:
    """Latent, fixed traits of a transactional client."""

    birth_s: int  # its first purchase, in seconds after the portfolio's start
    purchase_rate: float  # λ: purchases per day while alive
    dropout: float  # p: probability of leaving after each repeat purchase
    mean_spend: float  # μ: expected amount of one purchase
    goods_cost: float  # cost of the goods, as a share of the amount
    return_rate: float  # share of purchases returned and credited in full
    ticket_rate: float  # support tickets per purchase
    cost_rate: float  # technician cost per hour
    late_payer: bool  # pays on terms, often late, rather than at the till


@dataclass(frozen=True)
class Purchase:
    """One purchase and what follows from it (all inside its 30-day period)."""

    at_s: int  # seconds after the portfolio's start
    amount: float
    goods_cost: float
    returned_at_s: int | None
    ticket_at_s: int | None
    ticket_hours: float
    days_late: int


@dataclass
class ShopperPeriod:
    """The purchases of one 30-day period of one client, and its money totals."""

    period: int
    purchases: list[Purchase]
    cost_rate: float
    revenue: float = field(init=False)
    cost: float = field(init=False)

    def __post_init__(self) -> None:
        self.revenue = sum(p.amount for p in self.purchases)
        self.cost = sum(
            p.goods_cost
            + (p.amount if p.returned_at_s is not None else 0.0)
            + p.ticket_hours * self.cost_rate
            for p in self.purchases
        )


@dataclass(frozen=True)
class Shopper:
    """A simulated transactional client: traits, drawn periods, and when it dropped out."""

    client_id: str
    traits: ShopperTraits
    periods: list[ShopperPeriod]
    dropout_s: int | None  # the instant of its last purchase when it left; None: alive

    def acquired_before(self, t_s: int) -> bool:
        """Whether its first purchase is before ``t_s`` (so a cutoff at t_s knows it)."""
        return self.traits.birth_s < t_s

    def alive_at(self, t_s: int) -> bool:
        """Acquired and not yet dropped out at ``t_s`` (a purchase at t_s is after it)."""
        return self.acquired_before(t_s) and (self.dropout_s is None or self.dropout_s >= t_s)


def draw_shopper_traits(rng: np.random.Generator, span_s: int) -> ShopperTraits:
    """A new transactional client, acquired within the first part of ``span_s``."""
    nu = float(rng.gamma(SPEND_Q, 1.0 / SPEND_GAMMA))
    return ShopperTraits(
        birth_s=int(rng.uniform(0, ACQUISITION_SHARE * span_s)),
        purchase_rate=float(rng.gamma(RATE_SHAPE, 1.0 / RATE_RATE)),
        dropout=float(rng.beta(DROPOUT_A, DROPOUT_B)),
        mean_spend=SPEND_SHAPE / nu,
        goods_cost=float(rng.beta(12.0, 8.0)),
        return_rate=float(rng.beta(1.0, 24.0)),
        ticket_rate=float(rng.beta(1.0, 12.0)),
        cost_rate=round(float(rng.uniform(30.0, 45.0)), 2),
        late_payer=bool(rng.random() < 0.1),
    )


def purchase_instants(
    traits: ShopperTraits, from_s: int, until_s: int, rng: np.random.Generator, first: bool
) -> tuple[list[int], int | None]:
    """Purchase instants in [from_s, until_s) of a client alive at ``from_s``, and the
    instant it dropped out (None: still alive). ``first``: its first purchase is at
    ``from_s``; BG/NBD has no dropout after it, only after each repeat purchase."""
    instants = [from_s] if first else []
    t = float(from_s)
    while True:
        t += float(rng.exponential(1.0 / traits.purchase_rate)) * DAY_SECONDS
        if t >= until_s:
            return instants, None
        instants.append(int(t))
        if rng.random() < traits.dropout:
            return instants, int(t)


def _later_in_period(at_s: int, rng: np.random.Generator) -> int:
    # After the purchase, early enough that what is logged 30 minutes later is still in
    # its period: the horizon's money is then exactly the money of its periods.
    room = (at_s // PERIOD_S + 1) * PERIOD_S - 3600 - at_s
    return at_s + int(rng.uniform(0, room)) if room > 0 else at_s


def draw_purchase(traits: ShopperTraits, at_s: int, rng: np.random.Generator) -> Purchase:
    """What one purchase at ``at_s`` costs and brings."""
    amount = max(0.01, round(float(rng.gamma(SPEND_SHAPE, traits.mean_spend / SPEND_SHAPE)), 2))
    returned = _later_in_period(at_s, rng) if rng.random() < traits.return_rate else None
    ticket = _later_in_period(at_s, rng) if rng.random() < traits.ticket_rate else None
    hours = (
        round(TICKET_HOURS_MIN + float(rng.gamma(TICKET_HOURS_SHAPE, TICKET_HOURS_SCALE)), 2)
        if ticket is not None
        else 0.0
    )
    late = int(rng.exponential(20.0)) if traits.late_payer else 0
    return Purchase(at_s, amount, round(amount * traits.goods_cost, 2), returned, ticket,
                    hours, late)  # fmt: skip


def draw_periods(
    traits: ShopperTraits, instants: list[int], periods: int, rng: np.random.Generator
) -> list[ShopperPeriod]:
    """The purchases at ``instants`` grouped into ``periods`` 30-day periods."""
    grouped: list[list[Purchase]] = [[] for _ in range(periods)]
    for at_s in instants:
        grouped[at_s // PERIOD_S].append(draw_purchase(traits, at_s, rng))
    return [ShopperPeriod(k, purchases, traits.cost_rate) for k, purchases in enumerate(grouped)]


def simulate_shopper(
    client_id: str, periods: int, rng: np.random.Generator, opening: bool = False
) -> Shopper:
    """Draw one transactional client over ``periods`` 30-day periods. ``opening``: it is
    acquired at the very start (training counts cutoffs from the log's first day, the
    oracle from the portfolio's start: an event at the start makes them the same)."""
    span_s = periods * PERIOD_S
    traits = draw_shopper_traits(rng, span_s)
    if opening:
        traits = replace(traits, birth_s=0)
    instants, dropout = purchase_instants(traits, traits.birth_s, span_s, rng, first=True)
    return Shopper(client_id, traits, draw_periods(traits, instants, periods, rng), dropout)


def expected_purchases(traits: ShopperTraits, days: float) -> float:
    """E[purchases in the next ``days``] of a client alive now: purchases come at rate λ
    while alive and it is alive at s with probability e^{−λps}, so ∫ λe^{−λps} ds."""
    rate = traits.purchase_rate * traits.dropout
    return -math.expm1(-rate * days) / traits.dropout


def expected_margin_per_purchase(traits: ShopperTraits) -> float:
    """E[revenue − cost] of one purchase: goods, returns (credited in full) and tickets."""
    hours = TICKET_HOURS_MIN + TICKET_HOURS_SHAPE * TICKET_HOURS_SCALE
    return traits.mean_spend * (1.0 - traits.goods_cost - traits.return_rate) - \
        traits.ticket_rate * hours * traits.cost_rate  # fmt: skip


def expected_horizon(traits: ShopperTraits, alive: bool, days: float) -> tuple[float, float]:
    """(E[revenue], E[margin]) of the next ``days`` given the traits and whether it is alive."""
    if not alive:
        return 0.0, 0.0
    purchases = expected_purchases(traits, days)
    return purchases * traits.mean_spend, purchases * expected_margin_per_purchase(traits)
