"""Two workers of one app: a rebalance mid-stream loses and doubles nothing (live broker, Redis).

Worker A processes the first half of a log alone; worker B joins, so the partitions are
split between them; the second half is produced while both run. Every client's Redis
hash (written by whichever worker owns its partition) must then equal the offline
builder, version included: an event applied twice or lost would show in it.
"""

from __future__ import annotations

import redis

from features.definitions import compute_features
from features.serving import features_from_fields
from streams.stack.processes import free_port, wait_until
from tests.assertions import assert_features_close
from tests.services.event_log import metric, produce_log, rebuild, simulated_log
from tests.services.worker_process import running_worker


def _hashes(redis_url: str, unique: str, clients: list[str]) -> dict[str, dict[str, str]]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return {c: dict(client.hgetall(f"{unique}:client:{c}")) for c in clients}


def test_a_second_worker_joining_mid_stream_changes_no_result(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str
) -> None:
    messages = simulated_log(30, 12, malformed=0.01, duplicate=0.01, late=0.01, seed=5)
    expected = rebuild(messages)
    half = len(messages) // 2
    clients = sorted(expected.states)
    second = {
        **worker_env,
        "PROFITSTREAM_DATA_DIR": worker_env["PROFITSTREAM_DATA_DIR"] + "-b",
        "PROFITSTREAM_WEB_PORT": str(free_port()),
    }
    with running_worker(worker_env) as first:
        produce_log(kafka_bootstrap, unique, messages[:half])
        wait_until(
            lambda: sum(metric(first, "profitstream_events_consumed_total").values()) >= half,
            timeout_s=60,
            what="worker A to read the first half",
        )
        with running_worker(second) as joined:
            produce_log(kafka_bootstrap, unique, messages[half:])

            def all_current() -> bool:
                hashes = _hashes(redis_url, unique, clients)
                return all(
                    hashes[c].get("version") == str(expected.states[c].version) for c in clients
                )

            wait_until(all_current, timeout_s=120, what="every client's last event in Redis")
            read_by_b = sum(metric(joined, "profitstream_events_consumed_total").values())
    assert read_by_b > 0, "the second worker got no partition: nothing was rebalanced"

    for client_id, fields in _hashes(redis_url, unique, clients).items():
        state = expected.states[client_id]
        as_of, online = features_from_fields(fields)
        assert_features_close(online, compute_features(state, as_of), client_id)
        assert fields["version"] == str(state.version), client_id
