"""The event contract of the two input topics: typed schemas, JSON on the wire, and validation.

Every event is one JSON object: ``schema_version``, ``event_id``, ``client_id``,
``event_time`` (ISO-8601 with a UTC offset), ``type`` and a ``payload`` whose shape the
type fixes. ``client-activity`` carries the activity types, ``billing`` the billing types.

The models are strict: a JSON value is taken only as its own type (no ``"5"`` or ``true``
for a number, no ``5.0`` for an integer, no epoch number for a time), so the JSON Schema
generated from them (``json_schemas``) accepts exactly what ``parse_event`` accepts.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from features.bounded_json import JsonBoundsError, check_bounds

SCHEMA_VERSION = 1
MAX_EVENT_BYTES = 16 * 1024
MAX_EVENT_DEPTH = 64  # an event nests 3 deep (event, payload, services)
MAX_FUTURE = timedelta(days=1)

# Patterns end with `$(?!\n)`: JSON Schema reads them as ECMA-262, where `$` is the end of
# the text, but Python's `re` (used by the `jsonschema` package and by these models) also
# matches `$` before a final newline. The look-ahead makes every engine agree.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$(?!\n)"
# RFC 3339 with seconds and an offset, upper-case `T` and `Z`, years 1970 to 2999: times
# are handled as epoch seconds, and the range keeps any offset inside what `datetime` holds.
# Digits are spelled [0-9]: `\d` also matches other scripts' digits in Python.
EVENT_TIME_PATTERN = (
    r"^(?:19[7-9][0-9]|2[0-9]{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$(?!\n)"
)
_EVENT_TIME = re.compile(EVENT_TIME_PATTERN)


def _event_time(value: object) -> datetime:
    """A JSON string matching ``EVENT_TIME_PATTERN`` that names a real date, in UTC."""
    if not isinstance(value, str) or not _EVENT_TIME.match(value):
        raise PydanticCustomError(
            "event_time",
            "must be an ISO-8601 string with seconds and a timezone offset, "
            "like 2024-03-01T09:00:00Z or 2024-03-01T10:00:00+01:00",
        )
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError as exc:  # a day the month lacks, like 2025-02-30
        raise PydanticCustomError("event_time", str(exc)) from None


def _json_integer(value: object) -> object:
    # Literal[1] alone takes true and 1.0, even in strict mode: both equal 1 in Python.
    if type(value) is not int:
        raise PydanticCustomError("schema_version", "must be the JSON integer 1")
    return value


Identifier = Annotated[str, StringConstraints(pattern=IDENTIFIER_PATTERN)]
EventTime = Annotated[
    datetime,
    PlainValidator(_event_time, json_schema_input_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": EVENT_TIME_PATTERN}),
]
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


# Strict: no coercion between JSON types. Python's `re` engine: the patterns above need
# a look-ahead, which pydantic's default (Rust) engine lacks.
_CONTRACT = ConfigDict(extra="forbid", frozen=True, strict=True, regex_engine="python-re")


class _Payload(BaseModel):
    model_config = _CONTRACT


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
    model_config = _CONTRACT

    schema_version: Annotated[Literal[1], BeforeValidator(_json_integer)]
    event_id: Identifier
    client_id: Identifier
    event_time: EventTime

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


RejectReason = Literal["oversized", "invalid", "key_mismatch", "future", "late"]
# The DLQ's `profitstream.error.reason` for input events, in the order the checks run (the
# first that fails names the message). `late` is judged against the client's state
# (`features.state`), the others by `parse_event`.
REJECT_REASONS: tuple[RejectReason, ...] = get_args(RejectReason)


class InvalidEventError(ValueError):
    """A message that breaks the contract; ``reason`` is a short machine-readable class."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: RejectReason = reason
        self.detail = detail


class _Key(Enum):
    VALUE_ONLY = "value only"


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        location = ".".join(str(part) for part in error["loc"]) or "event"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def _key_error(key: bytes | None, client_id: str) -> str | None:
    """Why ``key`` is not the key of ``client_id``'s events, or None when it is."""
    if key is None:
        # A null key lands on any partition: the client's state would split across workers.
        return f"the message has no key; it must be the client_id {client_id!r}"
    if key != client_id.encode():
        return f"message key {key[:160]!r} != client_id {client_id!r}"
    return None


def parse_event(
    raw: bytes,
    stream: EventStream,
    *,
    key: bytes | Literal[_Key.VALUE_ONLY] | None = _Key.VALUE_ONLY,
    now: datetime | None = None,
    max_future: timedelta = MAX_FUTURE,
) -> Event:
    """Validate one message of ``stream``; raise ``InvalidEventError`` saying what is wrong.

    ``key`` is the message's key (``None`` when it has none) and must equal the event's
    ``client_id``: the topics are partitioned by it. Leave it out only to check a value
    without a message around it. ``now`` is when the check runs; an ``event_time`` more
    than ``max_future`` after it is rejected.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise InvalidEventError("oversized", f"{len(raw)} bytes > {MAX_EVENT_BYTES}")
    try:
        # Pydantic's parser has its own recursion limit; this makes the message plain.
        check_bounds(raw, max_bytes=MAX_EVENT_BYTES, max_depth=MAX_EVENT_DEPTH)
    except JsonBoundsError as exc:
        raise InvalidEventError("invalid", str(exc)) from None
    try:
        event: Event = _ADAPTERS[stream].validate_json(raw)
    except ValidationError as exc:
        raise InvalidEventError("invalid", _describe(exc)) from exc
    mismatch = None if key is _Key.VALUE_ONLY else _key_error(key, event.client_id)
    if mismatch is not None:
        raise InvalidEventError("key_mismatch", mismatch)
    limit = (now or datetime.now(UTC)) + max_future
    if event.event_time > limit:
        raise InvalidEventError(
            "future", f"event_time {event.event_time.isoformat()} is after {limit}"
        )
    return event


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# What a JSON Schema validator does not check by default, said where producers look.
SCHEMA_NOTE = (
    "One event of the topic. Two rules are stricter than JSON Schema's defaults: an "
    "`integer` is a JSON number written without a fraction or exponent (1, not 1.0 or "
    "1e0), and `format: date-time` is asserted (a date the calendar has)."
)


TOPIC_OF: dict[EventStream, str] = {"activity": "client-activity", "billing": "billing"}


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of each topic's events, generated from the models above."""
    return {
        topic: {
            "$schema": JSON_SCHEMA_DIALECT,
            "description": SCHEMA_NOTE,
            **_ADAPTERS[stream].json_schema(),
        }
        for stream, topic in TOPIC_OF.items()
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
