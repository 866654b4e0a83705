"""The event contract is strict, and the published JSON Schema says exactly what it accepts.

Issue 13 found null-key events applied and wrong types coerced (`true` and `"5"` as
numbers, `"yes"` as a boolean, epoch numbers as times, `schema_version: true` as 1).
Here: those cases one by one; every bad kind of ``tests.services.bad_events`` gets its
documented DLQ reason (hypothesis); and for generated documents the JSON Schema's verdict
(the ``jsonschema`` package on the committed docs/schemas/, ``format`` asserted) equals
``parse_event``'s.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, TypeChecker, validators

from features.bounded_json import load_bounded
from features.events import (
    MAX_EVENT_BYTES,
    MAX_EVENT_DEPTH,
    REJECT_REASONS,
    SCHEMA_NOTE,
    EventStream,
    InvalidEventError,
    parse_event,
)
from tests.services.bad_events import (
    KIND_REASONS,
    PLACEHOLDER,
    Json,
    bad_event_times,
    bad_message,
    encode,
    field_schema,
    published_schema,
    valid_event,
    valid_value,
    wrong_type_values,
)

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2030, 1, 1, tzinfo=UTC)  # valid_event draws times up to 2029
FAR_FUTURE = datetime(9000, 1, 1, tzinfo=UTC)  # no time of the contract is after it
STREAMS: tuple[EventStream, ...] = ("activity", "billing")
PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

FORMATS = Draft202012Validator.FORMAT_CHECKER


def _json_integer(_: TypeChecker, instance: object) -> bool:
    # A JSON number written without a fraction or exponent: what json.loads makes an int.
    return type(instance) is int


# Draft 2020-12 with `integer` as the schemas' description defines it (JSON Schema's own
# `integer` also takes 1.0, which the contract refuses: see the test of that gap below).
ContractValidator = validators.extend(  # type: ignore[no-untyped-call]  # untyped in stubs
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _json_integer),
)


def _is_text(document: Json) -> bool:
    """Every string (keys too) is Unicode text: ``"\\ud800"`` decodes to no character."""
    if isinstance(document, str):
        try:
            document.encode()
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(document, dict):
        return all(_is_text(k) and _is_text(v) for k, v in document.items())
    if isinstance(document, list):
        return all(_is_text(item) for item in document)
    return True


def schema_accepts(raw: bytes, stream: EventStream) -> bool:
    """The verdict of the committed JSON Schema on ``raw`` (strict JSON first)."""
    try:
        # Bounded so that a deep document fails here rather than with RecursionError; no
        # document the schema accepts nests more than 3 deep anyway.
        document = load_bounded(raw, max_bytes=MAX_EVENT_BYTES, max_depth=MAX_EVENT_DEPTH)
    except ValueError:
        return False
    validator = ContractValidator(published_schema(stream), format_checker=FORMATS)
    return _is_text(document) and bool(validator.is_valid(document))


def validator_accepts(raw: bytes, stream: EventStream) -> bool:
    """``parse_event``'s verdict on the value alone (no key, no clock that could refuse)."""
    assert len(raw) <= MAX_EVENT_BYTES
    reason = _reason(raw, stream, key=None, now=FAR_FUTURE, check_key=False)
    assert reason in (None, "invalid"), reason
    return reason is None


def _reason(
    raw: bytes | None,
    stream: EventStream,
    key: bytes | None,
    now: datetime = NOW,
    *,
    check_key: bool = True,
) -> str | None:
    """The DLQ reason of a message, None when it is applied."""
    try:
        if check_key:
            parse_event(raw or b"", stream, key=key, now=now)
        else:
            parse_event(raw or b"", stream, now=now)
    except InvalidEventError as exc:
        return exc.reason
    return None


def _time_logged(**changes: Json) -> dict[str, Any]:
    payload = {"technician_id": "tech-1", "hours": 1.5, "billable": True, "labour_cost_rate": 40}
    event: dict[str, Any] = {"schema_version": 1, "event_id": "e-1", "client_id": "acme",
                             "event_time": "2025-05-01T12:00:00Z", "type": "time_logged",
                             "payload": payload}  # fmt: skip
    for name, value in changes.items():
        if name in payload:
            payload[name] = value
        else:
            event[name] = value
    return event


def test_the_schema_validator_asserts_date_time() -> None:
    # Without rfc3339-validator, jsonschema skips `format: date-time` without a word.
    assert "date-time" in FORMATS.checkers


@pytest.mark.parametrize(
    "change",
    [
        {"hours": True}, {"hours": "1.5"}, {"labour_cost_rate": "40"}, {"hours": None},
        {"billable": "yes"}, {"billable": 1}, {"billable": "true"},
        {"event_time": 1714567890}, {"event_time": 1714567890.5}, {"event_time": "1714567890"},
        {"event_time": "2025-05-01T12:00:00"}, {"event_time": "2025-05-01 12:00:00Z"},
        {"event_time": "2025-05-01T12:00Z"}, {"event_time": "2025-02-30T12:00:00Z"},
        {"schema_version": True}, {"schema_version": 1.0}, {"schema_version": "1"},
        {"event_id": 7}, {"client_id": "acme\n"},
    ],
)  # fmt: skip
def test_wrong_types_found_in_the_probe_are_invalid(change: dict[str, Json]) -> None:
    raw = json.dumps(_time_logged(**change)).encode()
    assert _reason(raw, "activity", b"acme") == "invalid"
    assert not schema_accepts(raw, "activity")


def test_integers_are_integers_and_numbers_take_integers() -> None:
    survey = {"schema_version": 1, "event_id": "e-1", "client_id": "acme",
              "event_time": "2025-05-01T12:00:00+02:00", "type": "satisfaction_survey"}  # fmt: skip
    for score, accepted in ((4, True), (4.0, False), (4.5, False), (True, False), ("4", False)):
        raw = json.dumps({**survey, "payload": {"score": score}}).encode()
        assert (_reason(raw, "activity", b"acme") is None) is accepted, score
        assert schema_accepts(raw, "activity") is accepted, score
    integral = json.dumps(_time_logged(hours=2, labour_cost_rate=40)).encode()
    event = parse_event(integral, "activity", key=b"acme", now=NOW)
    assert event.payload.hours == 2.0  # type: ignore[union-attr]
    assert schema_accepts(integral, "activity")


def test_the_key_must_be_the_client_id_and_a_null_key_is_a_mismatch() -> None:
    raw = json.dumps(_time_logged()).encode()
    assert _reason(raw, "activity", b"acme") is None
    assert _reason(raw, "activity", None) == "key_mismatch"
    assert _reason(raw, "activity", b"") == "key_mismatch"
    assert _reason(raw, "activity", b"ACME") == "key_mismatch"
    with pytest.raises(InvalidEventError, match="has no key"):
        parse_event(raw, "activity", key=None, now=NOW)
    # Without a key argument only the value is checked (a value outside any message).
    assert parse_event(raw, "activity", now=NOW).client_id == "acme"
    # The checks run in the documented order: a bad value is `invalid` whatever its key.
    assert _reason(b"[]", "activity", None) == "invalid"
    future = json.dumps(_time_logged(event_time="2999-01-01T00:00:00Z")).encode()
    assert _reason(future, "activity", None) == "key_mismatch"
    assert _reason(future, "activity", b"acme") == "future"


def test_times_are_utc_and_keep_their_instant() -> None:
    raw = json.dumps(_time_logged(event_time="2025-05-01T14:00:00.250+02:00")).encode()
    event = parse_event(raw, "activity", key=b"acme", now=NOW)
    assert event.event_time == datetime(2025, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    assert event.event_time.tzinfo is UTC


@pytest.mark.parametrize("bad", bad_event_times("2024-03-01T10:00:00Z"))
def test_every_bad_time_is_refused_by_both(bad: str) -> None:
    raw = json.dumps(_time_logged(event_time=bad)).encode()
    assert _reason(raw, "activity", b"acme") == "invalid"
    assert not schema_accepts(raw, "activity")


def test_the_reason_vocabulary_is_the_documented_one() -> None:
    assert REJECT_REASONS == ("oversized", "invalid", "key_mismatch", "future", "late")
    assert set(KIND_REASONS.values()) == set(REJECT_REASONS) - {"late"}
    topics = (ROOT / "docs" / "topics.md").read_text()
    header_row = next(line for line in topics.splitlines()
                      if line.startswith("| `profitstream.error.reason` |"))  # fmt: skip
    page = (ROOT / "docs" / "events.md").read_text()
    for reason in REJECT_REASONS:
        assert f"`{reason}`" in header_row, reason
        assert f". `{reason}`: " in page, reason


@PROPERTY
@given(st.sampled_from(STREAMS), st.randoms(use_true_random=False))
def test_events_drawn_from_the_schema_are_accepted(stream: EventStream, rng: Random) -> None:
    document = valid_event(stream, rng)
    raw = encode(document, rng)
    event = parse_event(raw, stream, key=document["client_id"].encode(), now=NOW)
    assert (event.event_id, event.client_id, event.type) == (
        document["event_id"], document["client_id"], document["type"])  # fmt: skip
    assert event.event_time == datetime.fromisoformat(document["event_time"])
    assert schema_accepts(raw, stream)


@settings(PROPERTY, max_examples=400)
@given(
    st.sampled_from(sorted(KIND_REASONS)),
    st.sampled_from(STREAMS),
    st.randoms(use_true_random=False),
)
def test_every_bad_kind_gets_its_documented_reason(
    kind: str, stream: EventStream, rng: Random
) -> None:
    key, value = bad_message(kind, stream, valid_event(stream, rng), rng)
    assert _reason(value, stream, key) == KIND_REASONS[kind], (key, (value or b"")[:300])


# -- the JSON Schema and the validator agree -------------------------------------------------

# Kinds decided by the schema (the others: size, key and clock are outside it).
SCHEMA_KINDS = sorted(kind for kind, reason in KIND_REASONS.items() if reason == "invalid")


def _replacement(stream: EventStream, event: dict[str, Any], path: tuple[str, ...],
                 rng: Random) -> Json:  # fmt: skip
    """Some value for the field at ``path``: valid, of a wrong type, near a boundary, or
    another field's."""
    schema = field_schema(stream, event, path)
    current = event[path[0]] if len(path) == 1 else event["payload"][path[1]]
    pool: list[Json] = [valid_value(schema, rng) for _ in range(3)]
    pool += wrong_type_values(schema, valid_value(schema, rng))
    if schema.get("format") == "date-time":
        pool += bad_event_times(str(current))
    if schema.get("type") in ("number", "integer"):
        pool += [0, -0.0, 5e-324, -1, 1e9, 1e9 + 1, 24, 24.000001, 10_000, 1e308, 10**30]
    other = json.loads(json.dumps(rng.choice(list(event.values()))))  # a copy: no cycles
    pool += [other, "", "a" * 129, "é", 1.0, 2]
    return rng.choice(pool)


def contract_document(stream: EventStream, rng: Random) -> bytes:
    """A document near the contract: valid, a field or three changed, a bad kind, or any JSON."""
    event = valid_event(stream, rng)
    way = rng.random()
    if way < 0.25:
        return encode(event, rng)
    if way < 0.75:
        for _ in range(rng.randint(1, 3)):
            payload = event.get("payload")
            paths: list[tuple[str, ...]] = [(name,) for name in event]
            if isinstance(payload, dict):
                paths += [("payload", name) for name in payload]
            path = rng.choice(paths)
            if path[0] == "type" or path[0] not in event:
                continue  # a changed type leaves no schema to draw the others from
            value = _replacement(stream, event, path, rng)
            if len(path) == 1:
                event[path[0]] = value
            else:
                event["payload"][path[1]] = value
        return encode(event, rng)
    if way < 0.92:
        _, value = bad_message(rng.choice(SCHEMA_KINDS), stream, event, rng)
        return value or b""
    return encode(_any_json(rng, 3), rng)


def _any_json(rng: Random, depth: int) -> Json:
    scalars: list[Json] = [None, True, False, 0, 1, -1, 1.0, 2.5, 1e300, "", "x", "1", PLACEHOLDER]
    if depth == 0 or rng.random() < 0.4:
        return rng.choice(scalars)
    if rng.random() < 0.5:
        return [_any_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    names = ["schema_version", "type", "payload", "event_id", "x"]
    return {rng.choice(names): _any_json(rng, depth - 1) for _ in range(rng.randint(0, 4))}


@settings(PROPERTY, max_examples=500)
@given(st.sampled_from(STREAMS), st.randoms(use_true_random=False))
def test_the_json_schema_and_the_validator_agree(stream: EventStream, rng: Random) -> None:
    raw = contract_document(stream, rng)
    assert schema_accepts(raw, stream) == validator_accepts(raw, stream), raw[:400]


def test_they_agree_on_4000_seeded_documents_of_both_verdicts() -> None:
    rng = Random(20_13)
    verdicts = {True: 0, False: 0}
    for number in range(4000):
        stream = STREAMS[number % 2]
        raw = contract_document(stream, rng)
        verdict = schema_accepts(raw, stream)
        assert verdict == validator_accepts(raw, stream), raw[:400]
        verdicts[verdict] += 1
    print(f"schema == parse_event on 4000 documents: {verdicts[True]} accepted by both, "
          f"{verdicts[False]} refused by both")  # fmt: skip
    assert min(verdicts.values()) >= 1000


def test_the_one_gap_of_plain_json_schema_is_written_in_the_schema() -> None:
    """Draft 2020-12 reads 12.0 as an integer; the contract does not, and says so."""
    plain = Draft202012Validator(published_schema("billing"), format_checker=FORMATS)
    contract = {"schema_version": 1.0, "event_id": "k-1", "client_id": "acme",
                "event_time": "2025-05-01T12:00:00Z", "type": "contract_signed",
                "payload": {"contract_id": "k1", "monthly_recurring_value": 100,
                            "term_months": 12.0, "included_hours": 5, "services": []}}  # fmt: skip
    assert plain.is_valid(contract)
    assert not schema_accepts(json.dumps(contract).encode(), "billing")
    assert _reason(json.dumps(contract).encode(), "billing", b"acme") == "invalid"
    for schema in (published_schema("activity"), published_schema("billing")):
        assert schema["description"] == SCHEMA_NOTE
        assert "without a fraction or exponent" in SCHEMA_NOTE
