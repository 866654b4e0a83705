"""The kinds of export ``profitstream import`` reads and the events one row of each makes.

A kind names the fields a row can give (each read from a column or set as a constant in
the mapping), which of them the mapping must give, and how a row becomes events. Every
event has ``client_id`` and a time (``time``); the payload fields are the contract's
(``features.events``), plus a few that exports hold instead (a due date for ``days_late``,
a resolution time for ``resolution_hours``, an SLA in hours for ``sla_met``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from features.events import STREAM_OF, EventStream
from features.imports.cells import CellError
from features.windows import DAY_SECONDS

FieldType = Literal["identifier", "text", "choice", "choices", "number", "integer", "boolean",
                    "time"]  # fmt: skip
Values = Mapping[str, Any]  # a row's parsed values; a field that is blank or not mapped is absent
CONTRACT_EVENTS = ("signed", "renewed", "cancelled")


@dataclass(frozen=True)
class FieldSpec:
    """A field a row of a kind can give."""

    name: str
    type: FieldType
    required: bool = False  # the mapping must give it (a column or a constant)
    help: str = ""


@dataclass(frozen=True)
class PlannedEvent:
    """An event a row makes, before it is encoded and validated. ``identity``: the values
    that name it among the kind's events (None: its whole content does)."""

    type: str
    time: datetime
    payload: dict[str, Any]
    identity: tuple[str, ...] | None


@dataclass(frozen=True)
class Kind:
    """One kind of export."""

    name: str
    help: str
    fields: tuple[FieldSpec, ...]
    build: Callable[[Values], list[PlannedEvent]]
    # Groups of fields of which the mapping must give at least one (payments: days_late
    # or due_time).
    one_of: tuple[tuple[str, ...], ...] = ()

    def field(self, name: str) -> FieldSpec | None:
        """The field called ``name``, if the kind has it."""
        return next((spec for spec in self.fields if spec.name == name), None)


def _type_name(event_class: type) -> str:
    (name,) = get_args(event_class.model_fields["type"].annotation)  # type: ignore[attr-defined]
    return str(name)


# Event type name ("invoice_issued") -> its input stream, from the contract itself.
STREAM_OF_TYPE: dict[str, EventStream] = {
    _type_name(event_class): stream for event_class, stream in STREAM_OF.items()
}

COMMON = (
    FieldSpec("client_id", "identifier", True, "the client (the message key)"),
    FieldSpec("time", "time", True, "when it happened"),
)


def _optional(values: Values, *names: str) -> dict[str, Any]:
    return {name: values[name] for name in names if name in values}


def _need(values: Values, name: str, why: str) -> Any:
    if name not in values:
        raise CellError("missing", f"{name} is empty; {why}")
    return values[name]


def _days_between(due: datetime, paid: datetime) -> int:
    """Whole days a payment came after its due time (0 when on time or early)."""
    return max(0, math.floor((paid - due).total_seconds() / DAY_SECONDS))


def _invoices(v: Values) -> list[PlannedEvent]:
    payload = {"invoice_id": v["invoice_id"], "amount": v["amount"], **_optional(v, "kind")}
    return [PlannedEvent("invoice_issued", v["time"], payload, (v["invoice_id"],))]


def _payments(v: Values) -> list[PlannedEvent]:
    if "days_late" in v:
        days_late = v["days_late"]
    else:
        days_late = _days_between(_need(v, "due_time", "a payment needs days_late or it"),
                                  v["time"])  # fmt: skip
    payload = {"invoice_id": v["invoice_id"], "amount": v["amount"], "days_late": days_late}
    return [PlannedEvent("payment_received", v["time"], payload, None)]


def _purchases(v: Values) -> list[PlannedEvent]:
    paid = v.get("paid_time", v["time"])
    if "days_late" in v:
        days_late = v["days_late"]
    elif "due_time" in v:
        days_late = _days_between(v["due_time"], paid)
    else:
        days_late = 0  # a purchase is paid when it is made unless the export says otherwise
    invoice = {"invoice_id": v["invoice_id"], "amount": v["amount"], **_optional(v, "kind")}
    payment = {"invoice_id": v["invoice_id"], "amount": v["amount"], "days_late": days_late}
    identity = (v["invoice_id"],)
    return [PlannedEvent("invoice_issued", v["time"], invoice, identity),
            PlannedEvent("payment_received", paid, payment, identity)]  # fmt: skip


def _sla_met(v: Values, hours: float) -> bool:
    if "sla_met" in v:
        return bool(v["sla_met"])
    return bool(hours <= _need(v, "sla_hours", "a resolved ticket needs sla_met or sla_hours"))


def _tickets(v: Values) -> list[PlannedEvent]:
    identity = (v["ticket_id"],)
    opened = {"ticket_id": v["ticket_id"], "priority": v["priority"], "category": v["category"]}
    events = [PlannedEvent("ticket_opened", v["time"], opened, identity)]
    if "resolved_time" in v:
        resolved_at: datetime = v["resolved_time"]
        hours = v.get("resolution_hours", (resolved_at - v["time"]).total_seconds() / 3600)
        resolved = {"ticket_id": v["ticket_id"], "resolution_hours": hours,
                    "sla_met": _sla_met(v, hours)}  # fmt: skip
        events.append(PlannedEvent("ticket_resolved", resolved_at, resolved, identity))
    return events


def _ticket_resolutions(v: Values) -> list[PlannedEvent]:
    hours = v["resolution_hours"]
    payload = {"ticket_id": v["ticket_id"], "resolution_hours": hours,
               "sla_met": _sla_met(v, hours)}  # fmt: skip
    return [PlannedEvent("ticket_resolved", v["time"], payload, (v["ticket_id"],))]


def _time_entries(v: Values) -> list[PlannedEvent]:
    payload = _optional(v, "technician_id", "hours", "billable", "labour_cost_rate")
    return [PlannedEvent("time_logged", v["time"], payload, None)]


def _contracts(v: Values) -> list[PlannedEvent]:
    event = v.get("event", "signed")
    if event not in CONTRACT_EVENTS:
        raise CellError("unreadable", f"event {event!r} is not one of {', '.join(CONTRACT_EVENTS)}")
    contract_id = v["contract_id"]
    cancelled = {"contract_id": contract_id, **_optional(v, "reason")}
    if event == "cancelled":
        return [PlannedEvent("contract_cancelled", v["time"], cancelled,
                             (contract_id, v["time"].isoformat()))]  # fmt: skip
    why = f"a {event} contract needs its terms"
    terms = {
        "contract_id": contract_id,
        "monthly_recurring_value": _need(v, "monthly_recurring_value", why),
        "term_months": _need(v, "term_months", why),
        "included_hours": _need(v, "included_hours", why),
        "services": v.get("services", []),
    }
    events = [PlannedEvent(f"contract_{event}", v["time"], terms,
                           (contract_id, v["time"].isoformat()))]  # fmt: skip
    if "cancelled_time" in v:
        when: datetime = v["cancelled_time"]
        events.append(PlannedEvent("contract_cancelled", when, cancelled,
                                   (contract_id, when.isoformat())))  # fmt: skip
    return events


def _single(event_type: str, *names: str) -> Callable[[Values], list[PlannedEvent]]:
    def build(v: Values) -> list[PlannedEvent]:
        return [PlannedEvent(event_type, v["time"], _optional(v, *names), None)]

    return build


_MONEY = "a decimal number, >= 0"
KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("invoices", "one row = an invoice: invoice_issued", (
        FieldSpec("invoice_id", "identifier", True),
        FieldSpec("amount", "number", True, _MONEY),
        FieldSpec("kind", "choice", help="recurring | project | overage (default recurring)"),
    ), _invoices),
    Kind("payments", "one row = a payment: payment_received", (
        FieldSpec("invoice_id", "identifier", True),
        FieldSpec("amount", "number", True, _MONEY),
        FieldSpec("days_late", "integer", help="whole days after the due date"),
        FieldSpec("due_time", "time", help="instead of days_late: when it was due"),
    ), _payments, one_of=(("days_late", "due_time"),)),
    Kind("purchases", "one row = an invoice and its payment (a purchase or transaction log): "
         "invoice_issued at time, payment_received at paid_time (default: time)", (
        FieldSpec("invoice_id", "identifier", True),
        FieldSpec("amount", "number", True, _MONEY),
        FieldSpec("kind", "choice", help="recurring | project | overage (default recurring)"),
        FieldSpec("paid_time", "time", help="when it was paid (default: time)"),
        FieldSpec("days_late", "integer", help="default: from due_time, else 0"),
        FieldSpec("due_time", "time"),
    ), _purchases),
    Kind("credits", "one row = a credit note: credit_issued", (
        FieldSpec("amount", "number", True, _MONEY),
        FieldSpec("reason", "text"),
    ), _single("credit_issued", "amount", "reason")),
    Kind("costs", "one row = a licence or third-party cost: cost_incurred", (
        FieldSpec("amount", "number", True, _MONEY),
        FieldSpec("category", "choice", True, "licence | third_party"),
    ), _single("cost_incurred", "amount", "category")),
    Kind("tickets", "one row = a ticket: ticket_opened at time, ticket_resolved at "
         "resolved_time when the row has one", (
        FieldSpec("ticket_id", "identifier", True),
        FieldSpec("priority", "choice", True, "low | medium | high | critical"),
        FieldSpec("category", "choice", True,
                  "hardware | software | network | security | user_request | other"),
        FieldSpec("resolved_time", "time", help="empty: not resolved yet"),
        FieldSpec("resolution_hours", "number", help="default: resolved_time - time"),
        FieldSpec("sla_met", "boolean"),
        FieldSpec("sla_hours", "number", help="instead of sla_met: met when resolved within"),
    ), _tickets),
    Kind("ticket_resolutions", "one row = a resolution: ticket_resolved at time", (
        FieldSpec("ticket_id", "identifier", True),
        FieldSpec("resolution_hours", "number", True),
        FieldSpec("sla_met", "boolean"),
        FieldSpec("sla_hours", "number", help="instead of sla_met: met when resolved within"),
    ), _ticket_resolutions, one_of=(("sla_met", "sla_hours"),)),
    Kind("time_entries", "one row = time a technician logged: time_logged", (
        FieldSpec("technician_id", "identifier", True),
        FieldSpec("hours", "number", True, "> 0, <= 24"),
        FieldSpec("billable", "boolean", True),
        FieldSpec("labour_cost_rate", "number", True, "the MSP's cost per hour"),
    ), _time_entries),
    Kind("contracts", "one row = a contract event: contract_signed, contract_renewed or "
         "contract_cancelled at time (by event), and contract_cancelled at cancelled_time "
         "when the row has one", (
        FieldSpec("contract_id", "identifier", True),
        FieldSpec("event", "choice", help="signed | renewed | cancelled (default signed)"),
        FieldSpec("monthly_recurring_value", "number", help="needed unless cancelled"),
        FieldSpec("term_months", "integer", help="needed unless cancelled"),
        FieldSpec("included_hours", "number", help="needed unless cancelled"),
        FieldSpec("services", "choices",
                  help="helpdesk, monitoring, backup, security, cloud, network; separated "
                  "by ; | or , (default none)"),
        FieldSpec("cancelled_time", "time"),
        FieldSpec("reason", "text", help="why it was cancelled"),
    ), _contracts),
    Kind("surveys", "one row = a satisfaction survey: satisfaction_survey", (
        FieldSpec("score", "integer", True, "1 to 5"),
    ), _single("satisfaction_survey", "score")),
    Kind("contacts", "one row = a contact: contact", (
        FieldSpec("channel", "choice", True, "email | phone | portal | chat | onsite"),
    ), _single("contact", "channel")),
    Kind("endpoints", "one row = a managed endpoint count: endpoints_changed", (
        FieldSpec("managed_endpoints", "integer", True),
    ), _single("endpoints_changed", "managed_endpoints")),
    Kind("services", "one row = a service added or removed: service_changed", (
        FieldSpec("service", "choice", True,
                  "helpdesk | monitoring | backup | security | cloud | network"),
        FieldSpec("change", "choice", True, "added | removed"),
    ), _single("service_changed", "service", "change")),
)}  # fmt: skip


def fields_of(kind: Kind) -> tuple[FieldSpec, ...]:
    """Every field a row of ``kind`` can give, the common ones first."""
    return COMMON + kind.fields
