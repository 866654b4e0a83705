"""Pure parts of "no single message takes a worker down": dead letters that fit one produce
request, the minimal audit record, the experiment monitor skipping unreadable records."""

from __future__ import annotations

import hashlib
import json

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from models_store.control.audit_records import minimal_command_record
from models_store.control.fold import FoldResult
from models_store.control.rejections import Rejection
from models_store.control.state import ControlState, Deployment
from models_store.experiments.sequential_test import SequentialDesign
from models_store.experiments.verdict import ExperimentTally
from streams.control.experiment_monitor import add_record
from streams.kafka.dead_letters import dead_letter_headers, fit_for_dlq
from streams.kafka.records import SourceRecord

LIMIT = 1_000_000  # Faust's default producer_max_request_size


def _record(value: bytes, key: bytes | None = b"client-1", headers: int = 0) -> SourceRecord:
    return SourceRecord(
        topic="billing", partition=2, offset=7, key=key, value=value,
        headers=[(f"h{i}", b"x" * 100) for i in range(headers)],
    )  # fmt: skip


def _errors(record: SourceRecord) -> list[tuple[str, bytes]]:
    return dead_letter_headers(record, "oversized: too big", "oversized")[len(record.headers) :]


def _producer_size(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> int:
    # What aiokafka's producer compares with max_request_size before it sends.
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers))


def test_a_message_that_fits_goes_unchanged() -> None:
    record = _record(b"{}" * 1000, headers=2)
    assert fit_for_dlq(record, _errors(record), LIMIT) == (
        record.key, record.value, dead_letter_headers(record, "oversized: too big", "oversized")
    )  # fmt: skip


@pytest.mark.parametrize("size", [999_000, 1_030_000, 1_048_576, 5_000_000])
def test_a_message_too_large_for_one_request_is_cut_and_says_so(size: int) -> None:
    value = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    record = _record(value, headers=3)
    key, cut, headers = fit_for_dlq(record, _errors(record), LIMIT)
    assert _producer_size(key, cut, headers) <= LIMIT
    named = dict(headers)
    assert named["profitstream.truncated"] == b"true"
    assert named["profitstream.original.size"] == str(size).encode()
    assert named["profitstream.original.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert named["profitstream.error.reason"] == b"oversized"
    assert named["h2"] == b"x" * 100  # its own headers kept
    assert key == record.key
    assert value.startswith(cut)
    assert len(cut) > LIMIT - 4096


def test_huge_keys_and_headers_of_its_own_are_cut_too() -> None:
    record = _record(b"v" * 10, key=b"k" * 600_000, headers=5000)
    key, cut, headers = fit_for_dlq(record, _errors(record), LIMIT)
    assert _producer_size(key, cut, headers) <= LIMIT
    named = dict(headers)
    assert named["profitstream.original.headers_dropped"] == b"5000"
    assert named["profitstream.original.key_size"] == b"600000"
    assert "h0" not in named
    assert key == b"k" * 1024
    assert cut == b"v" * 10


def _outcome(accepted: bool) -> FoldResult:
    before = ControlState()
    after = ControlState(revision=1, deployment=Deployment(1, "m@1.0.0", None)) if accepted \
        else before  # fmt: skip
    reason = None if accepted else Rejection.UNSIGNED
    return FoldResult(3, 1_795_000_000.0, accepted, reason, "msg", {"args": "x"}, before, after)


@pytest.mark.parametrize("accepted", [True, False])
def test_the_minimal_audit_record_keeps_the_folds_verdict(accepted: bool) -> None:
    written = minimal_command_record(3, 1_795_000_000.0, _outcome(accepted), "TypeError: boom")
    record = json.loads(written.to_json())
    assert record["kind"] == "command"
    assert record["offset"] == 3
    assert record["reason"] == "audit_failed"
    assert record["outcome"] == ("accepted" if accepted else "rejected")
    assert record["fold_reason"] == (None if accepted else "unsigned")
    assert record["after"]["revision"] == (1 if accepted else 0)
    assert record["args"] == {}
    assert "TypeError: boom" in record["message"]


def test_the_monitor_counts_and_skips_records_it_cannot_read() -> None:
    tally = ExperimentTally("exp-1", SequentialDesign(alpha=0.05, min_samples=2))
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge_number = json.dumps({"experiment_id": "exp-1", "kind": "outcome", "arm": "champion",
                              "prediction_id": "p1", "realised": 10**400,
                              "predicted": 0.1}).encode()  # fmt: skip
    for value in (deep, b"x" * (2 << 20), b"not json", b"[1, 2]", b"NaN", huge_number):
        add_record(tally, value)
    assert tally.ignored == {"unreadable": 5, "malformed": 1}


def test_the_monitor_rejects_an_object_that_is_no_monitoring_record() -> None:
    tally = ExperimentTally("exp-1", SequentialDesign(alpha=0.05, min_samples=2))
    big = b'{"pad": "' + b"x" * (1_000_000 - 11) + b'"}'  # readable, but no kind
    for value in (big, b"{}", b'{"kind": 3, "experiment_id": "exp-1"}'):
        error = add_record(tally, value)
        assert error is not None
        assert error.startswith("malformed: not a monitoring record")
    # Records of another kind or experiment are the topic's own: skipped, not rejected.
    for record in ({"kind": "experiment_result", "experiment_id": "exp-1"},
                   {"kind": "outcome", "experiment_id": "exp-2"}):  # fmt: skip
        assert add_record(tally, json.dumps(record).encode()) is None
    assert tally.ignored == {"malformed": 3}
