"""Compact per-client state and the one function that applies an event to it.

The stream (Faust table) and the offline builder both use ``apply_event``; features
are computed from the state by ``features.definitions``. The state also remembers
what it has applied: recent ``event_id``s (for duplicates) and the source offset per
topic-partition (for replays after a crash or rebalance), so applying the same
message twice changes nothing.

Lateness is judged per client *and per input stream* (activity, billing): Kafka keeps
the order within a partition but not between two topics, and every bucket field is fed
by one stream only, so each outcome and each float sum depends on one partition's
order alone. The stream and the offline builder therefore agree bit for bit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import chain
from typing import Any

from features.events import (
    STREAM_OF,
    Contact,
    ContractCancelled,
    ContractRenewed,
    ContractSigned,
    CostIncurred,
    CreditIssued,
    EndpointsChanged,
    Event,
    InvoiceIssued,
    PaymentReceived,
    SatisfactionSurvey,
    ServiceChanged,
    TicketOpened,
    TicketResolved,
    TimeLogged,
)
from features.windows import DAY_SECONDS, day_of, oldest_useful_day

DEFAULT_ALLOWED_LATENESS_S = 7 * DAY_SECONDS

# Daily bucket layout: one float per field, summed over the day's events.
BUCKET_FIELDS: tuple[str, ...] = (
    "revenue",
    "payments",
    "credits",
    "labour_hours",
    "billable_hours",
    "labour_cost",
    "licence_cost",
    "third_party_cost",
    "tickets_opened",
    "sla_breaches",
    "tickets_resolved",
    "resolution_hours",
    "satisfaction_sum",
    "satisfaction_count",
    "payment_count",
    "days_late_sum",
    "contacts",
)
F = {name: index for index, name in enumerate(BUCKET_FIELDS)}
WIDTH = len(BUCKET_FIELDS)


class ApplyResult(StrEnum):
    """What applying an event did."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    LATE = "late"
    REPLAYED = "replayed"


# Last-writer-wins registers are ordered by (event_time, event_id): the order of
# arrival then never decides which value wins.
Stamp = tuple[float, str]


@dataclass(slots=True)
class Contract:
    """The contract as of its latest event."""

    stamp: Stamp
    active: bool
    monthly_recurring_value: float
    term_months: int
    included_hours: float
    started_at: float


@dataclass(slots=True)
class ClientState:
    """Everything the features of one client are computed from."""

    client_id: str
    days: dict[int, list[float]] = field(default_factory=dict)
    watermarks: dict[str, float] = field(default_factory=dict)
    first_event_time: float | None = None
    last_contact: float | None = None
    last_payment: float | None = None
    last_ticket: float | None = None
    contract: Contract | None = None
    endpoints: tuple[Stamp, int] | None = None
    services: dict[str, tuple[Stamp, bool]] = field(default_factory=dict)
    seen: dict[str, dict[str, float]] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    version: int = 0
    # Lifetime purchases, for clients who buy without a contract (what buy-till-you-die
    # models use: how often, how recently, how much). Sums and extremes only, so the
    # order events arrive in never changes them.
    invoices: int = 0
    invoiced: float = 0.0
    first_invoice: float | None = None
    last_invoice: float | None = None

    @property
    def watermark(self) -> float | None:
        """The latest event time applied, over both streams."""
        return max(self.watermarks.values()) if self.watermarks else None

    @property
    def latest_event(self) -> tuple[str, float] | None:
        """(event_id, event time) of the latest applied event (ties: the greatest id)."""
        remembered = [(ts, event_id) for ids in self.seen.values() for event_id, ts in ids.items()]
        if not remembered:
            return None
        ts, event_id = max(remembered)
        return event_id, ts

    def bucket(self, timestamp: float) -> list[float]:
        """The (new or existing) bucket of a timestamp's day."""
        day = day_of(timestamp)
        values = self.days.get(day)
        if values is None:
            values = self.days[day] = [0.0] * WIDTH
        return values


def _later(time: float | None, candidate: float) -> float:
    return candidate if time is None or candidate > time else time


def apply_event(
    state: ClientState, event: Event, allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S
) -> ApplyResult:
    """Apply one valid event of ``state.client_id``; say whether it counted.

    Late (older than the client's latest event by more than the allowed lateness) is
    checked before duplicate, so the outcome never depends on when ``compact`` ran.
    """
    ts = event.timestamp
    stream = STREAM_OF[type(event)]
    watermark = state.watermarks.get(stream)
    if watermark is not None and ts < watermark - allowed_lateness_s:
        return ApplyResult.LATE
    seen = state.seen.setdefault(stream, {})
    if event.event_id in seen:
        return ApplyResult.DUPLICATE
    seen[event.event_id] = ts
    state.watermarks[stream] = _later(watermark, ts)
    if state.first_event_time is None or ts < state.first_event_time:
        state.first_event_time = ts
    state.version += 1
    _APPLY[type(event)](state, event, ts)
    return ApplyResult.APPLIED


def _ticket_opened(state: ClientState, event: Any, ts: float) -> None:
    state.bucket(ts)[F["tickets_opened"]] += 1
    state.last_ticket = _later(state.last_ticket, ts)


def _ticket_resolved(state: ClientState, event: Any, ts: float) -> None:
    bucket = state.bucket(ts)
    bucket[F["tickets_resolved"]] += 1
    bucket[F["resolution_hours"]] += event.payload.resolution_hours
    if not event.payload.sla_met:
        bucket[F["sla_breaches"]] += 1


def _time_logged(state: ClientState, event: Any, ts: float) -> None:
    bucket = state.bucket(ts)
    hours = event.payload.hours
    bucket[F["labour_hours"]] += hours
    bucket[F["labour_cost"]] += hours * event.payload.labour_cost_rate
    if event.payload.billable:
        bucket[F["billable_hours"]] += hours


def _survey(state: ClientState, event: Any, ts: float) -> None:
    bucket = state.bucket(ts)
    bucket[F["satisfaction_sum"]] += event.payload.score
    bucket[F["satisfaction_count"]] += 1


def _contact(state: ClientState, event: Any, ts: float) -> None:
    state.bucket(ts)[F["contacts"]] += 1
    state.last_contact = _later(state.last_contact, ts)


def _endpoints(state: ClientState, event: Any, ts: float) -> None:
    stamp = (ts, event.event_id)
    if state.endpoints is None or stamp > state.endpoints[0]:
        state.endpoints = (stamp, event.payload.managed_endpoints)


def _set_service(state: ClientState, service: str, stamp: Stamp, added: bool) -> None:
    current = state.services.get(service)
    if current is None or stamp > current[0]:
        state.services[service] = (stamp, added)


def _service_changed(state: ClientState, event: Any, ts: float) -> None:
    added = event.payload.change == "added"
    _set_service(state, str(event.payload.service), (ts, event.event_id), added)


def _contract(state: ClientState, event: Any, ts: float) -> None:
    stamp = (ts, event.event_id)
    terms = event.payload
    for service in terms.services:
        _set_service(state, str(service), stamp, True)
    if state.contract is None or stamp > state.contract.stamp:
        state.contract = Contract(
            stamp=stamp,
            active=True,
            monthly_recurring_value=terms.monthly_recurring_value,
            term_months=terms.term_months,
            included_hours=terms.included_hours,
            started_at=ts,
        )


def _contract_cancelled(state: ClientState, event: Any, ts: float) -> None:
    stamp = (ts, event.event_id)
    if state.contract is None or stamp > state.contract.stamp:
        state.contract = Contract(stamp, False, 0.0, 0, 0.0, ts)


def _invoice(state: ClientState, event: Any, ts: float) -> None:
    state.bucket(ts)[F["revenue"]] += event.payload.amount
    state.invoices += 1
    state.invoiced += event.payload.amount
    if state.first_invoice is None or ts < state.first_invoice:
        state.first_invoice = ts
    state.last_invoice = _later(state.last_invoice, ts)


def _payment(state: ClientState, event: Any, ts: float) -> None:
    bucket = state.bucket(ts)
    bucket[F["payments"]] += event.payload.amount
    bucket[F["payment_count"]] += 1
    bucket[F["days_late_sum"]] += event.payload.days_late
    state.last_payment = _later(state.last_payment, ts)


def _credit(state: ClientState, event: Any, ts: float) -> None:
    state.bucket(ts)[F["credits"]] += event.payload.amount


def _cost(state: ClientState, event: Any, ts: float) -> None:
    field_name = "licence_cost" if event.payload.category == "licence" else "third_party_cost"
    state.bucket(ts)[F[field_name]] += event.payload.amount


_APPLY = {
    TicketOpened: _ticket_opened,
    TicketResolved: _ticket_resolved,
    TimeLogged: _time_logged,
    SatisfactionSurvey: _survey,
    Contact: _contact,
    EndpointsChanged: _endpoints,
    ServiceChanged: _service_changed,
    ContractSigned: _contract,
    ContractRenewed: _contract,
    ContractCancelled: _contract_cancelled,
    InvoiceIssued: _invoice,
    PaymentReceived: _payment,
    CreditIssued: _credit,
    CostIncurred: _cost,
}


def compact(state: ClientState, allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S) -> None:
    """Forget what can no longer matter: ids of events too old to be applied, old buckets.

    Changes no feature as of the watermark or later and no future outcome of
    ``apply_event`` (anything older than the lateness bound is late before it is looked up).
    """
    if state.watermark is None:
        return
    for stream, seen in state.seen.items():
        horizon = state.watermarks[stream] - allowed_lateness_s
        state.seen[stream] = {event_id: ts for event_id, ts in seen.items() if ts >= horizon}
    # A late-but-allowed event may still land up to the lateness bound before the
    # watermark, so keep the buckets it could touch as well.
    first_day = oldest_useful_day(day_of(state.watermark)) - day_of(allowed_lateness_s) - 1
    state.days = {day: values for day, values in state.days.items() if day >= first_day}


def record_offset(state: ClientState, topic_partition: str, offset: int) -> bool:
    """Remember a consumed source offset; ``False`` if it was applied before (a replay)."""
    previous = state.offsets.get(topic_partition)
    if previous is not None and offset <= previous:
        return False
    state.offsets[topic_partition] = offset
    return True


def state_fields(state: ClientState) -> list[Any]:
    """The state as a list of msgpack-ready fields (the table row embeds it; never pickle)."""
    contract = state.contract
    return [
        state.client_id,
        list(state.days),
        # One float64 blob for every bucket: msgpack would spend 9 bytes and a Python
        # call per float; struct packs them in one C call.
        struct.pack(f"<{len(state.days) * WIDTH}d", *chain.from_iterable(state.days.values())),
        state.watermarks,
        state.first_event_time,
        state.last_contact,
        state.last_payment,
        state.last_ticket,
        None
        if contract is None
        else [
            list(contract.stamp),
            contract.active,
            contract.monthly_recurring_value,
            contract.term_months,
            contract.included_hours,
            contract.started_at,
        ],
        None if state.endpoints is None else [list(state.endpoints[0]), state.endpoints[1]],
        {name: [list(stamp), added] for name, (stamp, added) in state.services.items()},
        state.seen,
        state.offsets,
        state.version,
        state.invoices,
        state.invoiced,
        state.first_invoice,
        state.last_invoice,
    ]


# How many fields table rows of formats 2 to 5 embed flat: the state before the lifetime
# purchases, which such rows (and format 6 rows written before them) decode without.
STATE_FIELDS = 14
_LIFETIME_DEFAULTS: list[Any] = [0, 0.0, None, None]


def state_from_fields(fields: list[Any]) -> ClientState:
    """The inverse of ``state_fields``."""
    if len(fields) == STATE_FIELDS:
        fields = [*fields, *_LIFETIME_DEFAULTS]
    (client_id, day_numbers, packed, watermarks, first, contact, payment, ticket, contract,
     endpoints, services, seen, offsets, version, invoices, invoiced, first_invoice,
     last_invoice) = fields  # fmt: skip
    flat = struct.unpack(f"<{len(packed) // 8}d", packed)
    return ClientState(
        client_id=client_id,
        days={
            day: list(flat[index * WIDTH : (index + 1) * WIDTH])
            for index, day in enumerate(day_numbers)
        },
        watermarks=watermarks,
        first_event_time=first,
        last_contact=contact,
        last_payment=payment,
        last_ticket=ticket,
        contract=None
        if contract is None
        else Contract((contract[0][0], contract[0][1]), *contract[1:]),
        endpoints=None if endpoints is None else ((endpoints[0][0], endpoints[0][1]), endpoints[1]),
        services={name: ((s[0][0], s[0][1]), s[1]) for name, s in services.items()},
        seen=seen,
        offsets=offsets,
        version=version,
        invoices=invoices,
        invoiced=invoiced,
        first_invoice=first_invoice,
        last_invoice=last_invoice,
    )
