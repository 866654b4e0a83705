"""The event contract of the two input topics: typed schemas, JSON on the wire, and validation.

Every event is one JSON object: ``schema_version``, ``event_id``, ``client_id``,
``event_time`` (ISO-8601 with a UTC offset), ``type`` and a ``payload`` whose shape the
type fixes. ``client-activity`` carries the activity types, ``billing`` the billing types.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)

SCHEMA_VERSION = 1
MAX_EVENT_BYTES = 16 * 1024
MAX_FUTURE = timedelta(days=1)

Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")]
Money = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Hours = Annotated[float, Field(ge=0, le=10_000, allow_inf_nan=False)]


class ServiceType(StrEnum):
    """Managed services a contract can bundle."""

    HELPDESK = "helpdesk"
    MONITORING = "monitoring"
    BACKUP = "backup"
    SECURITY = "security"
    CLOUD = "cloud"
    NETWORK = "network"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketOpenedPayload(_Payload):
    """A support ticket was opened."""

    ticket_id: Identifier
    priority: Literal["low", "medium", "high", "critical"]
    category: Literal["hardware", "software", "network", "security", "user_request", "other"]


class TicketResolvedPayload(_Payload):
    """A ticket was resolved."""

    ticket_id: Identifier
    resolution_hours: Hours = Field(description="hours from opening to resolution")
    sla_met: bool


class TimeLoggedPayload(_Payload):
    """A technician logged time on the client."""

    technician_id: Identifier
    hours: Annotated[float, Field(gt=0, le=24, allow_inf_nan=False)]
    billable: bool
    labour_cost_rate: Money = Field(description="the MSP's cost per hour of this technician")


class SatisfactionSurveyPayload(_Payload):
    """A satisfaction survey came back."""

    score: Annotated[int, Field(ge=1, le=5)]


class ContactPayload(_Payload):
    """The client contacted the MSP (or the other way round)."""

    channel: Literal["email", "phone", "portal", "chat", "onsite"]


class EndpointsChangedPayload(_Payload):
    """The number of managed endpoints (devices) changed."""

    managed_endpoints: Annotated[int, Field(ge=0, le=1_000_000)]


class ServiceChangedPayload(_Payload):
    """A managed service was added or removed."""

    service: ServiceType
    change: Literal["added", "removed"]


class ContractPayload(_Payload):
    """Terms of a signed or renewed contract."""

    contract_id: Identifier
    monthly_recurring_value: Money
    term_months: Annotated[int, Field(ge=1, le=120)]
    included_hours: Hours = Field(description="technician hours included per month")
    services: Annotated[list[ServiceType], Field(max_length=len(ServiceType))]


class ContractCancelledPayload(_Payload):
    """A contract ended early."""

    contract_id: Identifier
    reason: Annotated[str, StringConstraints(max_length=200)] = ""


class InvoiceIssuedPayload(_Payload):
    """An invoice was issued."""

    invoice_id: Identifier
    amount: Money
    kind: Literal["recurring", "project", "overage"] = "recurring"


class PaymentReceivedPayload(_Payload):
    """A payment arrived."""

    invoice_id: Identifier
    amount: Money
    days_late: Annotated[int, Field(ge=0, le=3650)]


class CreditIssuedPayload(_Payload):
    """A credit note was issued (revenue given back)."""

    amount: Money
    reason: Annotated[str, StringConstraints(max_length=200)] = ""


class CostIncurredPayload(_Payload):
    """A licence or third-party cost attributable to the client."""

    amount: Money
    category: Literal["licence", "third_party"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1]
    event_id: Identifier
    client_id: Identifier
    event_time: AwareDatetime

    @field_validator("event_time")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @property
    def timestamp(self) -> float:
        """``event_time`` as seconds since the epoch."""
        return self.event_time.timestamp()


class TicketOpened(_Event):
    type: Literal["ticket_opened"]
    payload: TicketOpenedPayload


class TicketResolved(_Event):
    type: Literal["ticket_resolved"]
    payload: TicketResolvedPayload


class TimeLogged(_Event):
    type: Literal["time_logged"]
    payload: TimeLoggedPayload


class SatisfactionSurvey(_Event):
    type: Literal["satisfaction_survey"]
    payload: SatisfactionSurveyPayload


class Contact(_Event):
    type: Literal["contact"]
    payload: ContactPayload


class EndpointsChanged(_Event):
    type: Literal["endpoints_changed"]
    payload: EndpointsChangedPayload


class ServiceChanged(_Event):
    type: Literal["service_changed"]
    payload: ServiceChangedPayload


class ContractSigned(_Event):
    type: Literal["contract_signed"]
    payload: ContractPayload


class ContractRenewed(_Event):
    type: Literal["contract_renewed"]
    payload: ContractPayload


class ContractCancelled(_Event):
    type: Literal["contract_cancelled"]
    payload: ContractCancelledPayload


class InvoiceIssued(_Event):
    type: Literal["invoice_issued"]
    payload: InvoiceIssuedPayload


class PaymentReceived(_Event):
    type: Literal["payment_received"]
    payload: PaymentReceivedPayload


class CreditIssued(_Event):
    type: Literal["credit_issued"]
    payload: CreditIssuedPayload


class CostIncurred(_Event):
    type: Literal["cost_incurred"]
    payload: CostIncurredPayload


ActivityEvent = Annotated[
    TicketOpened
    | TicketResolved
    | TimeLogged
    | SatisfactionSurvey
    | Contact
    | EndpointsChanged
    | ServiceChanged,
    Field(discriminator="type"),
]
BillingEvent = Annotated[
    ContractSigned
    | ContractRenewed
    | ContractCancelled
    | InvoiceIssued
    | PaymentReceived
    | CreditIssued
    | CostIncurred,
    Field(discriminator="type"),
]
Event = TicketOpened | TicketResolved | TimeLogged | SatisfactionSurvey | Contact | \
    EndpointsChanged | ServiceChanged | ContractSigned | ContractRenewed | ContractCancelled | \
    InvoiceIssued | PaymentReceived | CreditIssued | CostIncurred  # fmt: skip

EventStream = Literal["activity", "billing"]
ACTIVITY_TYPES: tuple[type[_Event], ...] = (
    TicketOpened, TicketResolved, TimeLogged, SatisfactionSurvey, Contact, EndpointsChanged,
    ServiceChanged,
)  # fmt: skip
BILLING_TYPES: tuple[type[_Event], ...] = (
    ContractSigned, ContractRenewed, ContractCancelled, InvoiceIssued, PaymentReceived,
    CreditIssued, CostIncurred,
)  # fmt: skip
STREAM_OF: dict[type[_Event], EventStream] = {
    **{event_type: "activity" for event_type in ACTIVITY_TYPES},
    **{event_type: "billing" for event_type in BILLING_TYPES},
}
_ADAPTERS: dict[EventStream, TypeAdapter[Any]] = {
    "activity": TypeAdapter(ActivityEvent),
    "billing": TypeAdapter(BillingEvent),
}


class InvalidEventError(ValueError):
    """A message that breaks the contract; ``reason`` is a short machine-readable class."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        location = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def parse_event(
    raw: bytes,
    stream: EventStream,
    *,
    key: bytes | None = None,
    now: datetime | None = None,
    max_future: timedelta = MAX_FUTURE,
) -> Event:
    """Validate one message of ``stream``; raise ``InvalidEventError`` saying what is wrong.

    ``key``, when given, must equal the event's ``client_id`` (the topics are keyed by it).
    ``now`` is when the check runs; an ``event_time`` more than ``max_future`` after it
    is rejected.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEventError("oversized", f"{len(raw)} bytes > {MAX_EVENT_BYTES}")
    try:
        event: Event = _ADAPTERS[stream].validate_json(raw)
    except ValidationError as exc:
        raise InvalidEventError("invalid", _describe(exc)) from exc
    if key is not None and key != event.client_id.encode():
        raise InvalidEventError(
            "key_mismatch", f"message key {key!r} != client_id {event.client_id!r}"
        )
    limit = (now or datetime.now(UTC)) + max_future
    if event.event_time > limit:
        raise InvalidEventError(
            "future", f"event_time {event.event_time.isoformat()} is after {limit}"
        )
    return event


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of each topic's events, generated from the models above."""
    return {
        "client-activity": _ADAPTERS["activity"].json_schema(),
        "billing": _ADAPTERS["billing"].json_schema(),
    }


def encode_event(
    event_type: str,
    *,
    event_id: str,
    client_id: str,
    event_time: float,
    payload: dict[str, Any],
) -> bytes:
    """An event as JSON bytes on the wire (``event_time`` in epoch seconds, written as UTC)."""
    when = datetime.fromtimestamp(event_time, UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "event_id": event_id,
            "client_id": client_id,
            "event_time": when,
            "type": event_type,
            "payload": payload,
        },
        separators=(",", ":"),
    ).encode()
