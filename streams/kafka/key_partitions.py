"""Which partition a keyed message lands in: the default partitioner (murmur2, as Kafka's
Java client, aiokafka and so Faust use) over the topic's partitions on the broker."""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner


def client_partition(key: str, partitions: int) -> int:
    """The partition the default partitioner gives a message keyed by ``key``."""
    every = list(range(partitions))
    return int(DefaultPartitioner()(key.encode(), every, every))


async def partition_count(options: dict[str, Any], topic: str) -> int | None:
    """The topic's partition count on the broker (None: no such topic). ``options`` are
    the aiokafka client options (``bootstrap_servers`` and security)."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for entry in described:
        if entry["topic"] == topic and entry["error_code"] == 0:
            return len(entry["partitions"])
    return None


async def key_partition(options: dict[str, Any], topic: str, key: str) -> int | None:
    """The partition of ``topic`` that messages keyed by ``key`` go to (None: no topic)."""
    count = await partition_count(options, topic)
    return None if count is None else client_partition(key, count)
