"""`profitstream stack up|status|down` with the real Tansu and valkey-server binaries."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from streams.kafka.preflight import kafka_answers, redis_answers
from streams.settings import KafkaSecurity
from streams.stack.processes import free_port, pid_is_alive, read_record, wait_until
from tests.services.cli import assert_one_line_error, run_cli
from tests.services.worker_process import running_worker

pytestmark = pytest.mark.stack


def test_up_status_down(data_dir: Path) -> None:
    stack = ("--data-dir", str(data_dir), "stack")
    up = run_cli(*stack, "up")
    assert up.returncode == 0, up.stderr
    assert "Kafka broker (Tansu): started at kafka://127.0.0.1:" in up.stdout

    kafka = read_record(data_dir / "stack", "kafka")
    redis_record = read_record(data_dir / "stack", "redis")
    assert kafka is not None
    assert redis_record is not None
    assert (data_dir / "stack" / "kafka.pid").read_text().strip() == str(kafka.pid)
    assert kafka_answers([f"127.0.0.1:{kafka.port}"], KafkaSecurity())
    assert redis_answers(f"redis://127.0.0.1:{redis_record.port}/0")

    status = run_cli(*stack, "status")
    assert status.returncode == 0, status.stdout
    assert f"kafka://127.0.0.1:{kafka.port}" in status.stdout
    assert f"redis://127.0.0.1:{redis_record.port}/0" in status.stdout

    again = run_cli(*stack, "up")
    assert again.returncode == 0
    assert again.stdout.count("already running") == 2

    config = run_cli("--data-dir", str(data_dir), "config")
    assert f"127.0.0.1:{kafka.port}" in config.stdout

    down = run_cli(*stack, "down")
    assert down.returncode == 0
    assert down.stdout.count(": stopped") == 2
    assert not pid_is_alive(kafka.pid, kafka.binary)
    assert not pid_is_alive(redis_record.pid, redis_record.binary)
    assert run_cli(*stack, "status").returncode == 1


def test_failed_up_leaves_nothing_running(data_dir: Path) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        # Kafka starts first and must be stopped again when Redis cannot start.
        result = run_cli("--data-dir", str(data_dir), "stack", "up", "--redis-port", str(port))
    assert_one_line_error(result, "already in use", "--redis-port")
    assert read_record(data_dir / "stack", "kafka") is None
    assert not any(json.loads(p.read_text()) for p in (data_dir / "stack").glob("*.json"))


def test_the_readme_path_simulate_into_the_stack_and_read_features(data_dir: Path) -> None:
    """`stack up`, `worker` and `simulate --to-kafka` with nothing configured but the data dir."""
    assert run_cli("--data-dir", str(data_dir), "stack", "up").returncode == 0
    redis_record = read_record(data_dir / "stack", "redis")
    assert redis_record is not None
    redis_url = f"redis://127.0.0.1:{redis_record.port}/0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFITSTREAM_")}
    env |= {
        "PROFITSTREAM_DATA_DIR": str(data_dir),
        "PROFITSTREAM_WEB_PORT": str(free_port()),
        "PROFITSTREAM_BROKER_SESSION_TIMEOUT_S": "6",
    }
    with running_worker(env) as worker:
        # docs/cli.md's first run (fewer clients), on the default topic names of the stack.
        simulated = run_cli(
            "--data-dir", str(data_dir), "simulate", "--clients", "5", "--months", "3",
            "--to-kafka", env=env,
        )  # fmt: skip
        assert simulated.returncode == 0, simulated.stderr

        def features() -> dict[str, Any]:
            status, body = worker.get("/clients/client-00000/features")
            return cast(dict[str, Any], json.loads(body)) if status == 200 else {}

        wait_until(
            lambda: features().get("version", 0) > 10,
            timeout_s=60,
            what="features of client-00000 from more than 10 events",
        )
        assert features()["features"]["revenue_90d"] > 0
    assert _hget(redis_url, "profitstream:client:client-00000", "version") is not None


def _hget(url: str, key: str, field: str) -> str | None:
    with redis.Redis.from_url(url, decode_responses=True) as client:
        return cast(str | None, client.hget(key, field))
