"""Read offsets of a partition on demand: the ones missing before a fetched record (see
partition_progress), and where a partition begins and ends."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.preflight import MAX_PARTITION_FETCH_BYTES
from streams.kafka.records import SourceRecord, from_consumer_record

log = logging.getLogger(__name__)


class GapReader:
    """A group-less aiokafka consumer that reads given offset ranges on demand."""

    def __init__(self, consumer_options: dict[str, Any]) -> None:
        self._options: dict[str, Any] = {
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_partition_fetch_bytes": MAX_PARTITION_FETCH_BYTES,
            **consumer_options,
        }
        self._consumer: AIOKafkaConsumer | None = None

    async def _ensure_started(self) -> AIOKafkaConsumer:
        # Created on first use, inside the worker's event loop.
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**self._options)
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def beginning(self, topic: str, partition: int) -> int:
        """The partition's first retained offset."""
        consumer = await self._ensure_started()
        tp = TopicPartition(topic, partition)
        offsets = await consumer.beginning_offsets([tp])
        return int(offsets[tp])

    async def end(self, topic: str, partition: int) -> int:
        """The partition's end offset (the next offset to be written)."""
        consumer = await self._ensure_started()
        tp = TopicPartition(topic, partition)
        offsets = await consumer.end_offsets([tp])
        return int(offsets[tp])

    async def read(self, topic: str, partition: int, offsets: range) -> list[SourceRecord]:
        """Every record with an offset in ``offsets`` (holes in the log simply have none)."""
        consumer = await self._ensure_started()
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offsets.start)
        records: list[SourceRecord] = []
        while await consumer.position(tp) < offsets.stop:
            batch = await consumer.getmany(tp, timeout_ms=2000, max_records=len(offsets))
            fetched = batch.get(tp, [])
            if not fetched:
                break  # nothing more to read before the stop offset (a hole, or compaction)
            records.extend(from_consumer_record(r) for r in fetched if r.offset in offsets)
        log.warning(
            "re-read %d record(s) of %s:%d offsets %d..%d missing before the batch",
            len(records), topic, partition, offsets.start, offsets.stop - 1,
        )  # fmt: skip
        return records

    async def close(self) -> None:
        """Stop the consumer if it was started."""
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
