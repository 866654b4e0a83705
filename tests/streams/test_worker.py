"""The worker end to end on a live broker and Redis (PROFITSTREAM_TEST_KAFKA / _REDIS).

Events come from an independent client (librdkafka via confluent-kafka), the worker is
a real `profitstream worker` process, and the result is read back from Redis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import redis

from streams.stack.processes import free_port, wait_until
from tests.services.kafka_clients import consume, partition_counts, produce
from tests.services.worker_process import running_worker

CLIENTS = 5


def _count(redis_url: str, key: str) -> str | None:
    """The mirrored count, read straight from Redis (not through the product's store)."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return cast(str | None, client.hget(key, "event_count"))


def _activity(client: int, seq: int) -> tuple[bytes, bytes]:
    event = {"event_id": f"e-{client}-{seq}", "client_id": f"client-{client}", "type": "contact"}
    return f"client-{client}".encode(), json.dumps(event).encode()


def test_worker_counts_events_per_client_into_redis_and_routes_bad_keys_to_the_dlq(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str
) -> None:
    def counts() -> dict[str, str | None]:
        return {
            f"client-{c}": _count(redis_url, f"{unique}:client:client-{c}") for c in range(CLIENTS)
        }

    with running_worker(worker_env) as worker:
        # Apache Kafka does not auto-create topics: the worker must create its own.
        expected_partitions = {
            f"{unique}-{name}": 4
            for name in ("activity", "billing", "predictions", "monitoring", "dlq")
        }
        expected_partitions |= {f"{unique}-control": 1, f"{unique}-audit": 1}
        wait_until(
            lambda: (
                partition_counts(kafka_bootstrap, list(expected_partitions)) == expected_partitions
            ),
            timeout_s=30,
            what=f"topics {expected_partitions}",
        )
        messages: list[tuple[bytes | None, bytes]] = [
            _activity(c, seq) for seq in range(10) for c in range(CLIENTS)
        ]
        messages.insert(17, (None, b"an unkeyed message"))
        produce(kafka_bootstrap, f"{unique}-activity", messages)

        expected = {f"client-{c}": "10" for c in range(CLIENTS)}
        wait_until(lambda: counts() == expected, timeout_s=60, what=f"counts {expected}")

        dead = consume(kafka_bootstrap, f"{unique}-dlq", expected=1)
        assert [record.value for record in dead] == [b"an unkeyed message"]
        headers = dead[0].headers
        assert headers["profitstream.source.topic"] == f"{unique}-activity".encode()
        assert int(headers["profitstream.source.offset"]) >= 0
        assert b"no key" in headers["profitstream.error"]

        status, body = worker.get("/metrics")
        assert status == 200
        assert (
            f'profitstream_events_consumed_total{{topic="{unique}-activity"}} 51.0' in body.decode()
        )
        assert (
            f'profitstream_dead_letters_total{{source_topic="{unique}-activity"}} 1.0'
            in body.decode()
        )
        assert worker.get("/health")[0] == 200


def test_counts_survive_a_restart_on_a_fresh_disk_through_the_changelog(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path
) -> None:
    key = f"{unique}:client:client-0"
    with running_worker(worker_env):
        produce(kafka_bootstrap, f"{unique}-activity", [_activity(0, s) for s in range(3)])
        wait_until(lambda: _count(redis_url, key) == "3", timeout_s=60, what="count 3")

    # A new data dir: the RocksDB state is gone, only the changelog topic remains.
    restarted = {
        **worker_env,
        "PROFITSTREAM_DATA_DIR": str(tmp_path / "fresh-disk"),
        "PROFITSTREAM_WEB_PORT": str(free_port()),
    }
    with running_worker(restarted):
        produce(kafka_bootstrap, f"{unique}-activity", [_activity(0, 3)])
        wait_until(lambda: _count(redis_url, key) == "4", timeout_s=60, what="count 4")
