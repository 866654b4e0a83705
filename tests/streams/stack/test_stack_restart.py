"""`stack down` / `stack up` under a worker: Tansu forgets its topics, the worker starts clean."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, cast

import pytest

from streams.stack.processes import free_port, wait_until
from tests.services.cli import run_cli
from tests.services.worker_process import WorkerProcess, running_worker

pytestmark = pytest.mark.stack


def _features(worker: WorkerProcess, client: str) -> dict[str, Any]:
    status, body = worker.get(f"/clients/{client}/features")
    return cast(dict[str, Any], json.loads(body)) if status == 200 else {}


def _simulate(data_dir: Path, env: dict[str, str]) -> None:
    simulated = run_cli(
        "--data-dir", str(data_dir), "simulate", "--clients", "3", "--months", "2",
        "--to-kafka", env=env,
    )  # fmt: skip
    assert simulated.returncode == 0, simulated.stderr


def test_a_worker_starts_again_after_the_stack_was_restarted(data_dir: Path) -> None:
    data_dir = data_dir
    stack = ("--data-dir", str(data_dir), "stack")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROFITSTREAM_")}
    env |= {
        "PROFITSTREAM_DATA_DIR": str(data_dir),
        "PROFITSTREAM_WEB_PORT": str(free_port()),
        "PROFITSTREAM_BROKER_SESSION_TIMEOUT_S": "6",
    }
    assert run_cli(*stack, "up").returncode == 0
    with running_worker(env) as worker:
        _simulate(data_dir, env)
        wait_until(lambda: _features(worker, "client-00000").get("version", 0) > 3,
                   timeout_s=60, what="features of client-00000")  # fmt: skip
        before = _features(worker, "client-00000")["version"]

    assert run_cli(*stack, "down").returncode == 0
    assert run_cli(*stack, "up").returncode == 0
    with running_worker(env) as worker:
        log = worker.log_path.read_text(errors="replace")
        assert "ConsistencyError" not in log
        assert log.count("deleted the local state of table client-state") == 1
        # The same events again: the client's state is built once more, not on top of the
        # stale one (whose progress rows would also have skipped them).
        _simulate(data_dir, env)
        wait_until(lambda: _features(worker, "client-00000").get("version", 0) >= before,
                   timeout_s=60, what="features of client-00000 after the restart")  # fmt: skip
        assert _features(worker, "client-00000")["version"] == before
