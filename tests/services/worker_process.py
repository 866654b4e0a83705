"""A `profitstream worker` as a real child process, stopped (and its log shown) after the test."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streams.stack.processes import last_log_line, spawn, stop_pid, wait_until


@dataclass(frozen=True)
class WorkerProcess:
    """A running worker: its web address and log."""

    pid: int
    web_port: int
    log_path: Path

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """HTTP GET on the worker's web port: (status, body)."""
        return self.request("GET", path, None, headers)

    def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """HTTP POST of a JSON body on the worker's web port: (status, body)."""
        return self.request("POST", path, body, {"Content-Type": "application/json",
                                                 **(headers or {})})  # fmt: skip

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None
    ) -> tuple[int, bytes]:
        """One HTTP request: (status, body); (0, b"") when nothing answers."""
        url = f"http://127.0.0.1:{self.web_port}{path}"
        request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=5) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), bytes(exc.read())
        except OSError:
            return 0, b""


@contextmanager
def running_worker(env: dict[str, str], ready_timeout_s: float = 90.0) -> Iterator[WorkerProcess]:
    """Start a worker with ``env`` (``PROFITSTREAM_*``) and wait until ``/ready`` says 200."""
    log_path = Path(env["PROFITSTREAM_DATA_DIR"]) / "worker.log"
    process = spawn(
        [sys.executable, "-m", "streams.cli", "worker"], log_path, env=env, die_with_parent=True
    )
    worker = WorkerProcess(process.pid, int(env["PROFITSTREAM_WEB_PORT"]), log_path)
    try:
        wait_until(
            lambda: worker.get("/ready")[0] == 200,
            timeout_s=ready_timeout_s,
            what="the worker",
            process=process,
            log_path=log_path,
        )
        yield worker
    finally:
        stop_pid(process.pid, timeout_s=30)
        process.wait()
        # Shown by pytest only when the test fails.
        print(f"--- worker log {log_path} (last line: {last_log_line(log_path)})")
        print(log_path.read_text(errors="replace")[-6000:])
