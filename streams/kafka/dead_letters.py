"""Dead-letter routing: a rejected message goes to the DLQ unchanged, with headers saying why.

Unchanged unless it would not fit in one produce request (Faust's
``producer_max_request_size``, 1,000,000 bytes by default): a message just under the
broker's own limit (1 MiB) does not once the DLQ's headers are added, and the producer
would refuse it. Then its value is cut to fit and headers say so, with the original's
size and sha256 (``fit_for_dlq``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Awaitable

from faust.types import RecordMetadata, TopicT

from features.definitions import FEATURE_NAMES
from streams.kafka.records import Headers, SourceRecord
from streams.metrics import DEAD_LETTERS


def dead_letter_headers(record: SourceRecord, error: str, reason: str = "invalid") -> Headers:
    """Headers naming where a rejected message came from and what was wrong with it."""
    return [*record.headers, *_error_headers(record, error, reason)]


def _error_headers(record: SourceRecord, error: str, reason: str) -> Headers:
    return [
        ("profitstream.source.topic", record.topic.encode()),
        ("profitstream.source.partition", str(record.partition).encode()),
        ("profitstream.source.offset", str(record.offset).encode()),
        ("profitstream.error.reason", reason.encode()),
        ("profitstream.error", error.encode()[:1024]),
    ]


# Room for the record batch's own fields and the length prefixes of key, value, headers.
RECORD_OVERHEAD_BYTES = 1024
# What a cut message keeps of its key and of its own headers (they may be large too).
KEPT_KEY_BYTES = 1024
KEPT_HEADER_BYTES = 16 * 1024


def record_size(key: bytes | None, value: bytes, headers: Headers) -> int:
    """An upper bound of the bytes a record takes in a produce request."""
    named = sum(len(name.encode()) + len(data) for name, data in headers)
    return RECORD_OVERHEAD_BYTES + len(key or b"") + len(value) + named + 10 * len(headers)


def fit_for_dlq(
    record: SourceRecord, errors: Headers, limit: int
) -> tuple[bytes | None, bytes, Headers]:
    """The dead letter of ``record`` with the headers ``errors`` added: unchanged if it
    fits in ``limit`` bytes; else its value cut to fit, with the headers
    ``profitstream.truncated``, ``profitstream.original.size`` and ``.sha256`` (of the
    whole value). A key or headers of its own too large to leave room are cut or dropped
    too, which further headers say."""
    key, value, own = record.key, record.value, record.headers
    if record_size(key, value, [*own, *errors]) <= limit:
        return key, value, [*own, *errors]
    marks: Headers = [
        ("profitstream.truncated", b"true"),
        ("profitstream.original.size", str(len(value)).encode()),
        ("profitstream.original.sha256", hashlib.sha256(value).hexdigest().encode()),
    ]
    if record_size(None, b"", own) > KEPT_HEADER_BYTES:
        marks.append(("profitstream.original.headers_dropped", str(len(own)).encode()))
        own = []
    if key is not None and len(key) > KEPT_KEY_BYTES:
        marks.append(("profitstream.original.key_size", str(len(key)).encode()))
        key = key[:KEPT_KEY_BYTES]
    headers = [*own, *errors, *marks]
    room = max(0, limit - record_size(key, b"", headers))
    return key, value[:room], headers


async def send_to_dlq(
    dlq: TopicT, record: SourceRecord, error: str, reason: str = "invalid"
) -> Awaitable[RecordMetadata]:
    """Forward ``record`` byte-for-byte to the DLQ and count it by reason.

    Returns the send, resolved once the broker has the record: the caller waits for it
    before the source offset may be committed. Delivery is at least once: a message
    rejected again after a crash is sent again (its source headers tell the copies apart).
    A message too large for one produce request is cut (``fit_for_dlq``).
    """
    limit = int(dlq.app.conf.producer_max_request_size)
    key, value, headers = fit_for_dlq(record, _error_headers(record, error, reason), limit)
    sent = await dlq.send(key=key, value=value, headers=headers)
    DEAD_LETTERS.labels(source_topic=record.topic, reason=reason).inc()
    return sent


async def send_scoring_failure(
    dlq: TopicT, client_id: str, features: list[float], as_of: float, error: str
) -> Awaitable[RecordMetadata]:
    """Report a client the model could not score: its features (JSON, NaN as null) keyed by
    client, with headers saying what failed. The rest of its batch is scored as usual."""
    value = json.dumps({
        "client_id": client_id,
        "features_as_of": as_of,
        "features": {name: _json_number(value)
                     for name, value in zip(FEATURE_NAMES, features, strict=True)},
    }).encode()  # fmt: skip
    headers = [
        ("profitstream.error.reason", b"scoring_failed"),
        ("profitstream.error", error.encode()[:1024]),
    ]
    sent = await dlq.send(key=client_id.encode(), value=value, headers=headers)
    DEAD_LETTERS.labels(source_topic="scoring", reason="scoring_failed").inc()
    return sent


def _json_number(value: float) -> float | str | None:
    # Strict JSON has no NaN or infinity: undefined is null, an infinity is spelled out.
    if math.isnan(value):
        return None
    return value if math.isfinite(value) else str(value)
