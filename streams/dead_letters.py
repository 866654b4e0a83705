"""Dead-letter routing: a rejected message goes to the DLQ unchanged, with headers saying why."""

from __future__ import annotations

from faust.types import Message, TopicT

from streams.metrics import DEAD_LETTERS

Headers = list[tuple[str, bytes]]


def dead_letter_headers(message: Message, error: str, reason: str = "invalid") -> Headers:
    """Headers naming where a rejected message came from and what was wrong with it."""
    original = list(message.headers or [])
    return [
        *[
            (str(key), value if isinstance(value, bytes) else value.encode())
            for key, value in original
        ],
        ("profitstream.source.topic", message.topic.encode()),
        ("profitstream.source.partition", str(message.partition).encode()),
        ("profitstream.source.offset", str(message.offset).encode()),
        ("profitstream.error.reason", reason.encode()),
        ("profitstream.error", error.encode()[:1024]),
    ]


async def send_to_dlq(dlq: TopicT, message: Message, error: str, reason: str = "invalid") -> None:
    """Forward ``message`` byte-for-byte to the DLQ and count it by reason."""
    headers = dead_letter_headers(message, error, reason)
    await dlq.send(key=message.key, value=message.value, headers=headers)
    DEAD_LETTERS.labels(source_topic=message.topic, reason=reason).inc()
