"""No control record stops the fold, and every outcome makes a valid, bounded audit record."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models_store.control.audit_records import MAX_AUDIT_BYTES, CommandRecord, command_record
from models_store.control.commands import Role
from models_store.control.fold import ControlFold, ControlRecord, FoldResult
from models_store.control.rejections import Rejection
from models_store.control.signing import Keyring, Principal, issue, new_key, sign
from tests.services.record_schemas import checked

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
V2 = "profitability@2.0.0"
ADMIN = Principal("alice", Role.ADMIN, bytes.fromhex(new_key()))
KEYRING = Keyring({ADMIN.name: ADMIN})
DEEP = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"


class Log:
    """A control log being folded from offset 0."""

    def __init__(self) -> None:
        self.fold = ControlFold(KEYRING)

    def raw(self, value: bytes) -> FoldResult:
        offset = self.fold.next_offset
        outcome = self.fold.apply(ControlRecord(offset, value, int(NOW.timestamp() * 1000)))
        assert self.fold.next_offset == offset + 1  # always past the record
        return outcome

    def send(self, document: Any) -> FoldResult:
        return self.raw(json.dumps(document).encode())


def _audited(outcome: FoldResult) -> dict[str, Any]:
    """The audit record, checked to be strict JSON within the size bound that reads back
    as a valid record."""
    encoded = command_record(outcome).to_json()
    assert len(encoded) <= MAX_AUDIT_BYTES + 2048  # the summary itself, and the states
    record: dict[str, Any] = json.loads(encoded)
    json.dumps(record, allow_nan=False)
    CommandRecord.model_validate(record)
    checked("profitability-audit", record)
    for name in ("command_id", "type", "issued_by", "issued_at"):
        assert record[name] is None or isinstance(record[name], str)
    assert isinstance(record["args"], dict)
    return record


def _rejected(outcome: FoldResult, reason: Rejection) -> dict[str, Any]:
    assert (outcome.accepted, outcome.reason) == (False, reason), outcome.message
    assert outcome.before == outcome.after
    assert "\n" not in outcome.message
    return _audited(outcome)


def test_a_100k_deep_message_is_rejected_as_malformed_and_the_fold_goes_on() -> None:
    log = Log()
    outcome = log.raw(DEEP)
    record = _rejected(outcome, Rejection.MALFORMED)
    assert outcome.message == "nested 100001 deep; at most 64 allowed"
    assert record["offset"] == 0
    registered = log.send(issue("register", {"model": V2}, ADMIN, issued_at=NOW))
    assert registered.accepted, registered.message


def test_a_deep_signed_command_under_the_size_limit_is_malformed() -> None:
    nested: Any = 1
    for _ in range(70):
        nested = [nested]
    document = issue("register", {"model": V2, "extra": nested}, ADMIN, issued_at=NOW)
    _rejected(Log().send(document), Rejection.MALFORMED)


@pytest.mark.parametrize(
    "args",
    ["profitability@2.0.0", ["profitability@2.0.0"], 7, 1.5, True, {"model": ["x"] * 3}],
)
def test_unsigned_commands_with_args_of_any_type_are_audited(args: Any) -> None:
    document = {"type": "register", "issued_by": "mallory", "args": args}
    record = _rejected(Log().send(document), Rejection.UNSIGNED)
    expected = args if isinstance(args, dict) else {"not_an_object": args}
    assert record["args"] == expected


def test_signed_commands_with_args_of_the_wrong_type_are_malformed() -> None:
    for args in ("profitability@2.0.0", [V2], 3):
        document = sign({**issue("register", {}, ADMIN, issued_at=NOW), "args": args}, ADMIN.key)
        record = _rejected(Log().send(document), Rejection.MALFORMED)
        assert record["args"] == {"not_an_object": args}
        assert record["issued_by"] == "alice"


def test_fields_of_the_wrong_type_are_shown_as_json_text() -> None:
    document = {"type": 5, "issued_by": ["a", 1], "command_id": {"x": None}, "signature": "s"}
    record = _rejected(Log().send(document), Rejection.UNKNOWN_PRINCIPAL)
    assert (record["type"], record["issued_by"], record["command_id"]) == (
        "5",
        '["a", 1]',
        '{"x": null}',
    )


def test_an_erasure_with_args_that_are_not_an_object_never_shows_them() -> None:
    document = {"type": "erase_client", "args": "client-42"}
    record = _rejected(Log().send(document), Rejection.UNSIGNED)
    assert "client-42" not in json.dumps(record)
    assert set(record["args"]) == {"args_sha256"}


def test_a_command_over_the_size_limit_is_malformed_and_its_audit_record_small() -> None:
    value = json.dumps({"type": "register", "args": {"model": "x" * 1_100_000}}).encode()
    outcome = Log().raw(value)
    record = _rejected(outcome, Rejection.MALFORMED)
    assert outcome.message == "1.0 MiB; at most 256.0 KiB allowed"
    assert record["args"] == {}
    assert (outcome.size, outcome.sha256) == (len(value), hashlib.sha256(value).hexdigest())


def test_an_audit_record_over_its_bound_names_the_command_by_digest() -> None:
    value = json.dumps({"type": "t" * 50_000, "args": {"blob": "b" * 150_000}}).encode()
    record = _rejected(Log().raw(value), Rejection.UNSIGNED)
    assert len(json.dumps(record)) < MAX_AUDIT_BYTES // 8
    assert record["args"] == {}
    assert record["type"] == "t" * 128 + "..."
    digest = record["command_digest"]
    assert digest["size"] == len(value)
    assert digest["sha256"] == hashlib.sha256(value).hexdigest()
    assert digest["why"].endswith("at most 64.0 KiB allowed")
    assert record["outcome"] == "rejected"
    assert record["reason"] == "unsigned"


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\xff\xfe[\x00]\x00",
        b"NaN",
        b'{"a": Infinity}',
        b"[1e999]",
        b'"x"',
        b"[]",
        b"1" * 5000,
    ],
)
def test_anything_but_a_json_object_is_malformed(value: bytes) -> None:
    _rejected(Log().raw(value), Rejection.MALFORMED)


def test_an_unforeseen_failure_is_an_internal_rejection(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()

    def broken(_: Any) -> None:
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr(log.fold, "_check_role", broken)
    outcome = log.send(issue("register", {"model": V2}, ADMIN, issued_at=NOW))
    _rejected(outcome, Rejection.INTERNAL)
    expected = "the fold failed on it: ZeroDivisionError: division by zero second line"
    assert outcome.message == expected
    monkeypatch.undo()
    again = log.send(issue("register", {"model": V2}, ADMIN, issued_at=NOW))
    assert again.accepted, again.message


def test_a_signature_the_check_cannot_compare_is_rejected() -> None:
    # hmac.compare_digest raises TypeError on a non-ASCII str.
    document = {**issue("register", {"model": V2}, ADMIN, issued_at=NOW), "signature": "é"}
    outcome = Log().send(document)
    assert not outcome.accepted
    _audited(outcome)


_SCALAR = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_ANY = st.recursive(
    _SCALAR,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=12,
)
_FIELDS = ("schema_version", "command_id", "type", "issued_by", "issued_at", "nonce",
           "expected_revision", "args", "signature")  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(_FIELDS), _ANY | st.sampled_from(["alice", "register"])),
    st.booleans(),
)
def test_the_fold_never_raises_and_every_outcome_is_auditable(
    document: dict[str, Any], signed: bool
) -> None:
    if signed:
        document = sign(document, ADMIN.key)
    first, second = Log(), Log()
    outcome = first.send(document)
    _audited(outcome)
    # Deterministic: another worker folding the same record decides the same.
    other = second.send(document)
    assert (other.accepted, other.reason, other.message) == (
        outcome.accepted, outcome.reason, outcome.message,
    )  # fmt: skip
    assert first.fold.state == second.fold.state
