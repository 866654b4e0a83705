"""Dead-letter routing: a rejected message goes to the DLQ unchanged, with headers saying why."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable

from faust.types import RecordMetadata, TopicT

from features.definitions import FEATURE_NAMES
from streams.metrics import DEAD_LETTERS
from streams.source_records import Headers, SourceRecord


def dead_letter_headers(record: SourceRecord, error: str, reason: str = "invalid") -> Headers:
    """Headers naming where a rejected message came from and what was wrong with it."""
    return [
        *record.headers,
        ("profitstream.source.topic", record.topic.encode()),
        ("profitstream.source.partition", str(record.partition).encode()),
        ("profitstream.source.offset", str(record.offset).encode()),
        ("profitstream.error.reason", reason.encode()),
        ("profitstream.error", error.encode()[:1024]),
    ]


async def send_to_dlq(
    dlq: TopicT, record: SourceRecord, error: str, reason: str = "invalid"
) -> Awaitable[RecordMetadata]:
    """Forward ``record`` byte-for-byte to the DLQ and count it by reason.

    Returns the send, resolved once the broker has the record: the caller waits for it
    before the source offset may be committed. Delivery is at least once: a message
    rejected again after a crash is sent again (its source headers tell the copies apart).
    """
    headers = dead_letter_headers(record, error, reason)
    sent = await dlq.send(key=record.key, value=record.value, headers=headers)
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
