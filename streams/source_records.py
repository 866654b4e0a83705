"""One consumed input message, as the input reader or the gap reader fetched it."""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord

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
        headers=_headers(record.headers),
    )
