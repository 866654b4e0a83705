"""One consumed input message, whichever client read it (Faust's stream or the gap reader)."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord
from faust.types import EventT

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a message was (topic, partition, offset) and what it held."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers

    @property
    def topic_partition(self) -> str:
        """``topic:partition``, the key of the per-partition bookkeeping."""
        return f"{self.topic}:{self.partition}"


def _headers(raw: object) -> Headers:
    pairs = raw.items() if isinstance(raw, dict) else (raw or [])
    return [
        (str(name), value if isinstance(value, bytes) else str(value).encode())
        for name, value in pairs  # type: ignore[attr-defined]
    ]


def from_event(event: EventT[bytes]) -> SourceRecord:
    """The record of a Faust event (raw key and value)."""
    message = event.message
    value = message.value
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=value if isinstance(value, bytes) else b"",
        headers=_headers(message.headers),
    )


def from_consumer_record(record: ConsumerRecord[bytes, bytes]) -> SourceRecord:
    """The record of a message read directly with aiokafka."""
    return SourceRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers=_headers(list(record.headers)),
    )
