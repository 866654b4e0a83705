"""No single message takes a worker down (live broker: Tansu, and Apache Kafka in CI).

A worker with a model deployed and a shadow experiment running gets, on the control
topic, on both input topics and on the monitoring topic, a message nested 100,000 deep
and one of 1.03 MB (and, on the inputs and the monitoring topic, one nested 5,000 deep in
10 KB). It stays up; the control records are audited as ``malformed`` and dead-lettered;
the input ones are dead-lettered with their reason (the 1.03 MB ones cut to fit one
produce request, with the original's size and sha256); the monitor counts the unreadable
records and goes on; a valid event and a valid command after them are applied. A worker
started afterwards on an empty data dir folds the same log, poison included, and becomes
ready. Neither log has an ERROR line (rejected commands are WARNINGs).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from features.events import encode_event
from streams.control_client import experiment_results, read_key_partition
from streams.stack.processes import free_port, wait_until
from tests.services.control_plane import V2, audit, command, control_env
from tests.services.kafka_clients import consume
from tests.services.worker_process import running_worker

DEEP = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
LARGE = b'{"type": "register", "args": {"model": "' + b"x" * 1_030_000 + b'"}}'
SHALLOW_DEEP = b"[" * 5_000 + b"]" * 5_000  # 10 KB: under the input size limit
CLIENT = "client-after-poison"


def _produce(bootstrap: str, topic: str, key: bytes, values: list[bytes]) -> None:
    """Produce with room for a 1.03 MB message (librdkafka refuses over 1 MB by default);
    keys placed as the worker's clients place them."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "message.max.bytes": 2_000_000,
                         "partitioner": "murmur2_random"})  # fmt: skip
    errors: list[str] = []

    def on_delivery(err: object, _: object) -> None:
        if err is not None:
            errors.append(str(err))

    for value in values:
        producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert not errors, errors


def _commands(env: dict[str, str], bootstrap: str) -> dict[int, dict[str, Any]]:
    return {r["offset"]: r for r in audit(env, bootstrap) if r["kind"] == "command"}


def _results(env: dict[str, str], bootstrap: str, experiment_id: str) -> list[dict[str, Any]]:
    raw = asyncio.run(read_key_partition(
        [bootstrap], {}, env["PROFITSTREAM_TOPICS__MONITORING"], experiment_id, 0))  # fmt: skip
    return experiment_results(raw, experiment_id)


# aiokafka logs a retriable coordinator lookup at ERROR, then retries: Apache Kafka answers
# so while it creates __consumer_offsets for the first group of a fresh cluster.
_FRESH_CLUSTER = "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailable"


def _errors_in(log: Path) -> list[str]:
    text = log.read_text(errors="replace")
    return [line[:300] for line in text.splitlines()
            if re.search(r"\[(ERROR|CRITICAL)\]|Traceback", line)
            and _FRESH_CLUSTER not in line]  # fmt: skip


def test_poison_on_every_topic_is_rejected_and_the_worker_stays_up(
    worker_env: dict[str, str], kafka_bootstrap: str, unique: str,
    control_registry: Path, control_keys: Path, tmp_path: Path,
) -> None:  # fmt: skip
    env = control_env(worker_env, control_registry, control_keys,
                      PROFITSTREAM_MONITOR_INTERVAL_S="0.5")  # fmt: skip
    experiment_id = f"{unique}-shadow"
    inputs = [env["PROFITSTREAM_TOPICS__ACTIVITY"], env["PROFITSTREAM_TOPICS__BILLING"]]
    started_at = time.monotonic()
    with running_worker(env) as worker:
        assert command(env, kafka_bootstrap, "register", model=V2)["outcome"] == "accepted"
        shadow = command(env, kafka_bootstrap, "experiment_start", experiment_id=experiment_id,
                         challenger=V2, mode="shadow", salt="s")  # fmt: skip
        assert shadow["outcome"] == "accepted", shadow
        before = max(_commands(env, kafka_bootstrap))

        _produce(kafka_bootstrap, env["PROFITSTREAM_TOPICS__CONTROL"], b"profitability",
                 [DEEP, LARGE])  # fmt: skip
        for topic in inputs:
            _produce(kafka_bootstrap, topic, CLIENT.encode(), [DEEP, LARGE, SHALLOW_DEEP])
        _produce(kafka_bootstrap, env["PROFITSTREAM_TOPICS__MONITORING"],
                 experiment_id.encode(), [DEEP, LARGE, SHALLOW_DEEP])  # fmt: skip
        # LARGE is JSON there (1 MiB is allowed), just not a record of the experiment's.
        wait_until(lambda: any(r.get("ignored", {}).get("unreadable", 0) == 2
                               for r in _results(env, kafka_bootstrap, experiment_id)),
                   timeout_s=60, what="the monitor to count the unreadable records")  # fmt: skip
        # After the poison, on the same partitions: a valid event and a valid command.
        event = encode_event("contact", event_id="e-after", client_id=CLIENT,
                             event_time=time.time() - 60, payload={"channel": "email"})  # fmt: skip
        _produce(kafka_bootstrap, inputs[0], CLIENT.encode(), [event])
        stopped = command(env, kafka_bootstrap, "experiment_stop", experiment_id=experiment_id)
        assert stopped["outcome"] == "accepted", stopped
        assert stopped["offset"] == before + 3

        wait_until(lambda: worker.get(f"/clients/{CLIENT}/features")[0] == 200,
                   timeout_s=60, what="the valid event after the poison")  # fmt: skip
        assert worker.get("/health")[0] == 200
        dead = consume(kafka_bootstrap, env["PROFITSTREAM_TOPICS__DLQ"], 8, timeout_s=60)
        commands = _commands(env, kafka_bootstrap)
        errors = _errors_in(worker.log_path)
    print(f"poison handled in {time.monotonic() - started_at:.1f}s")

    deep, large = commands[before + 1], commands[before + 2]
    assert (deep["outcome"], deep["reason"]) == ("rejected", "malformed")
    assert deep["message"] == "nested 100001 deep; at most 64 allowed"
    assert (large["outcome"], large["reason"]) == ("rejected", "malformed")
    assert large["message"].endswith("KiB; at most 256.0 KiB allowed")

    assert len(dead) == 8, [d.headers.get("profitstream.error") for d in dead]
    by_source = {(d.headers["profitstream.source.topic"].decode(),
                  int(d.headers["profitstream.source.offset"])): d for d in dead}  # fmt: skip
    control = env["PROFITSTREAM_TOPICS__CONTROL"]
    for offset in (before + 1, before + 2):
        letter = by_source[(control, offset)]
        assert letter.headers["profitstream.error.reason"] == b"control_malformed"
    reasons: dict[str, list[bytes]] = {}
    for letter in dead:
        topic = letter.headers["profitstream.source.topic"].decode()
        reasons.setdefault(topic, []).append(letter.headers["profitstream.error.reason"])
        original = {len(DEEP): DEEP, len(LARGE): LARGE}
        if "profitstream.truncated" in letter.headers:
            size = int(letter.headers["profitstream.original.size"])
            assert size == len(LARGE)
            assert letter.headers["profitstream.original.sha256"] == (
                hashlib.sha256(original[size]).hexdigest().encode())  # fmt: skip
            assert LARGE.startswith(letter.value or b"")
        else:
            assert letter.value in (DEEP, SHALLOW_DEEP)
    for topic in inputs:
        assert sorted(reasons[topic]) == [b"invalid", b"oversized", b"oversized"]
    shallow = [d for d in dead if d.value == SHALLOW_DEEP]
    assert all(b"nested 5000 deep; at most 64 allowed" in d.headers["profitstream.error"]
               for d in shallow)  # fmt: skip
    assert len([d for d in dead if "profitstream.truncated" in d.headers]) == 3
    assert not errors, errors

    # The poison stays in the log: a worker that starts from nothing folds it too.
    fresh = {**env, "PROFITSTREAM_DATA_DIR": str(tmp_path / "empty"),
             "PROFITSTREAM_WEB_PORT": str(free_port())}  # fmt: skip
    with running_worker(fresh) as again:
        assert again.get("/health")[0] == 200
        wait_until(lambda: again.get(f"/clients/{CLIENT}/features")[0] == 200,
                   timeout_s=60, what="the restarted worker to serve the client")  # fmt: skip
        errors = _errors_in(again.log_path)
        replayed = again.log_path.read_text(errors="replace")
    assert not errors, errors
    # Rejections it folds while catching up are history: logged, but not as warnings.
    assert "rejected (malformed): nested 100001 deep" in replayed
    assert "WARNING] control offset" not in replayed
