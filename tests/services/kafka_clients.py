"""Independent Kafka clients (confluent-kafka / librdkafka) that tests use to talk to the worker."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient


@dataclass(frozen=True)
class Record:
    """One consumed message."""

    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]
    partition: int
    offset: int


def produce(
    bootstrap: str,
    topic: str,
    messages: Sequence[tuple[bytes | None, bytes]],
    partitioner: str = "consistent_random",
) -> None:
    """Produce ``(key, value)`` pairs and wait until every one is acknowledged.

    ``partitioner="murmur2_random"`` places keys as Kafka's Java client and aiokafka do
    (librdkafka's default hashes keys with CRC32).
    """
    errors: list[str] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "partitioner": partitioner})  # fmt: skip

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    for key, value in messages:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages not delivered to {topic}"
    assert not errors, errors


def _headers(raw: object) -> dict[str, bytes]:
    # librdkafka hands headers back as a list of (name, bytes-or-None) pairs.
    pairs = raw if isinstance(raw, list) else []
    return {str(name): value or b"" for name, value in pairs}


def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Partitions per existing topic among ``topics`` (missing topics are left out)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    metadata = admin.list_topics(timeout=10)
    return {
        name: len(metadata.topics[name].partitions)
        for name in topics
        if name in metadata.topics and metadata.topics[name].error is None
    }


def consume(bootstrap: str, topic: str, expected: int, timeout_s: float = 30.0) -> list[Record]:
    """Read ``topic`` from the start, with no consumer group, until ``expected`` records arrive."""
    # assign() rather than subscribe(): Tansu holds a first group join for half the
    # session timeout, and a test reader needs no group anyway.
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False}
    )
    records: list[Record] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions: list[int] = []
        while not partitions and time.monotonic() < deadline:
            metadata = consumer.list_topics(topic, timeout=5).topics.get(topic)
            if metadata is not None and metadata.error is None:
                partitions = list(metadata.partitions)
            else:
                time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        while len(records) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            records.append(
                Record(
                    key=message.key(),
                    value=message.value(),
                    headers=_headers(message.headers()),
                    partition=int(message.partition() or 0),
                    offset=int(message.offset() or 0),
                )
            )
    finally:
        consumer.close()
    return records
