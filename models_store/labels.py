"""The training target: a client's realised margin over (t, t+H], from its events.

Money in the margin, by event type (the same fields the ``realised_margin`` features sum):
revenue = ``invoice_issued`` amounts; cost = ``time_logged`` hours × labour cost rate +
``cost_incurred`` (licence and third-party) + ``credit_issued``. Payments, tickets and
everything else carry no money of the margin.

Rule for clients without revenue in the horizon: the margin *ratio* is undefined (NaN);
such (client, cutoff) rows are left out of training and evaluation of the ratio target
and counted in the report. The *absolute* margin (revenue − cost) is always defined; its
rows leave out only clients with neither revenue nor cost in the horizon (gone).

Labels use every valid event once (de-duplicated by ``event_id``), late ones included:
lateness decides what the stream could know at the time, not what happened.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from features.events import (
    CostIncurred,
    CreditIssued,
    Event,
    InvoiceIssued,
    TimeLogged,
)

# Targets in money (the currency of the events), as opposed to the margin ratio.
MONEY_TARGETS: frozenset[str] = frozenset({"margin_abs"})


def realised_in_target(target: str, revenue: float, cost: float) -> float | None:
    """What a horizon's money makes of the target (None: a ratio without revenue)."""
    if target in MONEY_TARGETS:
        return revenue - cost
    ratio = margin_ratio(revenue, cost)
    return None if math.isnan(ratio) else ratio


def persistence_feature(target: str) -> str:
    """The feature that is the naive forecast of the target: its value over the 90 days
    before (an outcome's baseline, and the experiment guardrail's reference)."""
    return "margin_abs_90d" if target in MONEY_TARGETS else "realised_margin_90d"


def margin_parts(event: Event) -> tuple[float, float]:
    """(revenue, cost) that one event adds to its client's margin."""
    if isinstance(event, InvoiceIssued):
        return event.payload.amount, 0.0
    if isinstance(event, TimeLogged):
        return 0.0, event.payload.hours * event.payload.labour_cost_rate
    if isinstance(event, CostIncurred | CreditIssued):
        return 0.0, event.payload.amount
    return 0.0, 0.0


@dataclass(frozen=True)
class MoneyLedger:
    """One client's margin-bearing events in event-time order, with running totals."""

    times: np.ndarray
    revenue: np.ndarray  # cumulative, aligned with times
    cost: np.ndarray

    def between(self, start: float, end: float) -> tuple[float, float]:
        """(revenue, cost) of the events with start < event_time <= end."""
        lo = int(np.searchsorted(self.times, start, side="right"))
        hi = int(np.searchsorted(self.times, end, side="right"))
        if hi <= lo:
            return 0.0, 0.0
        before_rev = self.revenue[lo - 1] if lo > 0 else 0.0
        before_cost = self.cost[lo - 1] if lo > 0 else 0.0
        return float(self.revenue[hi - 1] - before_rev), float(self.cost[hi - 1] - before_cost)


def ledgers(events: Iterable[Event]) -> dict[str, MoneyLedger]:
    """Per client, the ledger of its margin-bearing events (each ``event_id`` once)."""
    seen: set[str] = set()
    rows: dict[str, list[tuple[float, float, float]]] = {}
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        revenue, cost = margin_parts(event)
        if revenue or cost:
            rows.setdefault(event.client_id, []).append((event.timestamp, revenue, cost))
    result = {}
    for client, entries in rows.items():
        # Sorting by time only: a stable order keeps equal-time events in arrival order.
        entries.sort(key=lambda entry: entry[0])
        table = np.array(entries, dtype=np.float64)
        result[client] = MoneyLedger(
            times=table[:, 0], revenue=np.cumsum(table[:, 1]), cost=np.cumsum(table[:, 2])
        )
    return result


def margin_ratio(revenue: float, cost: float) -> float:
    """Gross margin ratio; NaN without revenue (the documented rule, never a division by 0)."""
    return (revenue - cost) / revenue if revenue > 0 else float("nan")
