"""One consumed input message, as the input reader or the gap reader fetched it."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

Headers = list[tuple[str, bytes]]


def partition_key(topic: str, partition: int) -> str:
    """``topic:partition``, the key of all per-partition bookkeeping (progress, state offsets)."""
    return f"{topic}:{partition}"


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """Where a message was (topic, partition, offset) and what it held."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int | None = None  # when the producer sent it (CreateTime)

    @property
    def topic_partition(self) -> str:
        """This record's ``partition_key``."""
        return partition_key(self.topic, self.partition)


def headers_of(raw: object) -> Headers:
    """Kafka headers (a list of pairs or a mapping) as a list of (str, bytes)."""
    if not raw:
        return []
    pairs = raw.items() if isinstance(raw, dict) else (raw or [])
    return [
        (str(name), value if isinstance(value, bytes) else str(value).encode())
        for name, value in pairs  # type: ignore[attr-defined]
    ]


def from_consumer_record(record: ConsumerRecord[bytes, bytes]) -> SourceRecord:
    """The record of a message read directly with aiokafka."""
    return SourceRecord(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers=headers_of(record.headers),
        timestamp_ms=record.timestamp,
    )
