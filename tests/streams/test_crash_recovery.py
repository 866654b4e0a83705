"""A worker killed mid-stream and restarted on an empty disk (live broker and Redis).

Nothing may be lost or applied twice: the restarted worker rebuilds its table from the
changelog topic alone, Faust re-delivers what was not committed (the client states know
which offsets they hold), and any offset Faust's stream skipped is re-read by the worker
itself (streams/pipeline/progress.py). Compared with the offline builder at the end.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis

from features.definitions import compute_features
from features.serving import features_from_fields
from streams.stack.processes import free_port, wait_until
from tests.assertions import assert_features_close
from tests.services.event_log import client_features, metric, produce_log, rebuild, simulated_log
from tests.services.worker_process import running_worker


def _hash(redis_url: str, unique: str, client_id: str) -> dict[str, str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return dict(client.hgetall(f"{unique}:client:{client_id}"))


def test_a_crash_mid_stream_and_a_restart_on_an_empty_disk_lose_and_double_nothing(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str, tmp_path: Path
) -> None:
    messages = simulated_log(30, 12, malformed=0.0, duplicate=0.01, late=0.0)
    expected = rebuild(messages)
    # Small batches, so the crash lands mid-stream.
    worker_env = {**worker_env, "PROFITSTREAM_BATCH_MAX_EVENTS": "200"}
    with running_worker(worker_env) as worker:
        produce_log(kafka_bootstrap, unique, messages)
        wait_until(
            lambda: sum(metric(worker, "profitstream_batch_events_sum").values()) > 0,
            timeout_s=60,
            what="the first processed batch",
        )
        processed_before_crash = sum(metric(worker, "profitstream_batch_events_sum").values())
        # No clean shutdown: whatever was applied but not committed comes again.
        os.kill(worker.pid, signal.SIGKILL)
    assert 0 < processed_before_crash < len(messages), "the crash came too late to test anything"

    # An empty data dir: the states come back from the changelog topic alone.
    restarted = {
        **worker_env,
        "PROFITSTREAM_DATA_DIR": str(tmp_path / "fresh-disk"),
        "PROFITSTREAM_WEB_PORT": str(free_port()),
    }
    with running_worker(restarted) as worker:
        wait_until(
            lambda: all(
                _hash(redis_url, unique, c).get("as_of") == repr(s.watermark)
                for c, s in expected.states.items()
            ),
            timeout_s=120,
            what="every client's latest event in Redis",
        )
        for client_id, state in expected.states.items():
            fields = _hash(redis_url, unique, client_id)
            as_of, online = features_from_fields(fields)
            assert_features_close(online, compute_features(state, as_of), client_id)
            # version counts applied events: one lost or applied twice would show here.
            served = client_features(worker, client_id, as_of)["version"]
            assert (served, fields["version"]) == (state.version, str(state.version)), client_id
        # Shown with -s or on failure: what the restart recognised or had to re-read.
        print("after the restart:", metric(worker, "profitstream_event_outcomes_total"))
        print("re-read:", metric(worker, "profitstream_offsets_reread_total"))
