"""Dead-letter routing: a rejected message goes to the DLQ unchanged, with headers saying why."""

from __future__ import annotations

from collections.abc import Awaitable

from faust.types import RecordMetadata, TopicT

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
