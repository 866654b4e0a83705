"""The event contract: what is accepted and what is rejected, with which reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, get_args

import pytest

from features.events import (
    ACTIVITY_TYPES,
    BILLING_TYPES,
    MAX_EVENT_BYTES,
    InvalidEventError,
    TimeLogged,
    encode_event,
    json_schemas,
    parse_event,
)

NOW = datetime(2025, 6, 1, tzinfo=UTC)
T = datetime(2025, 5, 1, 12, tzinfo=UTC).timestamp()


def _raw(event_type: str = "time_logged", **overrides: Any) -> dict[str, Any]:
    payload = {"technician_id": "tech-1", "hours": 1.5, "billable": True, "labour_cost_rate": 40}
    event: dict[str, Any] = json.loads(
        encode_event(event_type, event_id="e-1", client_id="acme", event_time=T, payload=payload)
    )
    event.update(overrides)
    return event


def _parse(event: dict[str, Any], stream: str = "activity", **kwargs: Any) -> Any:
    return parse_event(json.dumps(event).encode(), stream, now=NOW, **kwargs)  # type: ignore[arg-type]


def test_a_valid_event_parses_to_its_type_in_utc() -> None:
    event = _parse(_raw(event_time="2025-05-01T14:00:00+02:00"), key=b"acme")
    assert isinstance(event, TimeLogged)
    assert event.timestamp == T
    assert event.payload.hours == 1.5


@pytest.mark.parametrize(
    ("change", "reason", "detail"),
    [
        ({"type": "teleport"}, "invalid", "does not match any of the expected tags"),
        ({"type": "invoice_issued"}, "invalid", "does not match"),  # billing type on activity
        ({"payload": {"technician_id": "t", "hours": -1, "billable": True,
                      "labour_cost_rate": 1}}, "invalid", "payload.hours"),
        ({"payload": {"hours": 1}}, "invalid", "Field required"),
        ({"event_time": "2025-05-01T12:00:00"}, "invalid", "timezone"),
        ({"event_time": "2030-01-01T00:00:00Z"}, "future", "is after"),
        ({"schema_version": 2}, "invalid", "schema_version"),
        ({"client_id": ""}, "invalid", "client_id"),
        ({"surprise": 1}, "invalid", "Extra inputs"),
        ({"payload": {"technician_id": "t", "hours": "lots", "billable": True,
                      "labour_cost_rate": 1}}, "invalid", "payload.hours"),
    ],
)  # fmt: skip
def test_contract_violations_name_the_problem(
    change: dict[str, Any], reason: str, detail: str
) -> None:
    with pytest.raises(InvalidEventError) as caught:
        _parse(_raw(**change))
    assert caught.value.reason == reason
    assert detail in caught.value.detail


def test_negative_money_is_rejected() -> None:
    event = _raw("invoice_issued", payload={"invoice_id": "i1", "amount": -5})
    with pytest.raises(InvalidEventError, match=r"payload\.amount"):
        _parse(event, "billing")


def test_the_key_must_be_the_client_id() -> None:
    with pytest.raises(InvalidEventError) as caught:
        _parse(_raw(), key=b"someone-else")
    assert caught.value.reason == "key_mismatch"


def test_oversized_and_non_json_messages() -> None:
    with pytest.raises(InvalidEventError) as caught:
        parse_event(b" " * (MAX_EVENT_BYTES + 1), "activity")
    assert caught.value.reason == "oversized"
    with pytest.raises(InvalidEventError, match="Invalid JSON"):
        parse_event(b"\x00\x01 not json", "billing")


def test_every_type_has_a_schema_on_its_topic() -> None:
    schemas = json_schemas()
    for topic, types in (("client-activity", ACTIVITY_TYPES), ("billing", BILLING_TYPES)):
        mapping = schemas[topic]["discriminator"]["mapping"]
        assert set(mapping) == {get_args(t.model_fields["type"].annotation)[0] for t in types}
