"""Start, find and stop server processes that outlive the command that started them."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from streams.errors import ProfitstreamError


@dataclass(frozen=True)
class ServerRecord:
    """What the state file remembers of a started server."""

    name: str
    pid: int
    host: str
    port: int
    binary: str
    log_path: str
    started_at: float


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on (or holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers bind (aiohttp, Tansu, valkey): connections of a stopped server in
        # TIME_WAIT must not make its port look taken for a minute after it stopped.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def require_free_port(host: str, port: int, what: str, hint: str) -> None:
    """Fail with a one-line error if ``host:port`` is taken."""
    if not port_is_free(host, port):
        raise ProfitstreamError(f"port {host}:{port} for {what} is already in use; {hint}")


def pid_is_alive(pid: int, binary: str) -> bool:
    """Whether ``pid`` still runs ``binary`` (a recycled pid of another program does not count)."""
    try:
        # /proc/PID/exe, not cmdline: valkey-server rewrites its process title.
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return not _is_zombie(pid) and Path(exe).resolve() == Path(binary).resolve()


def _die_with_parent() -> None:
    # Linux PR_SET_PDEATHSIG: the child gets SIGKILL when its parent dies, even by SIGKILL.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def spawn(
    argv: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, output appended to ``log_path``.

    ``die_with_parent`` is for test harnesses: the server cannot outlive the test run.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )
        except OSError as exc:
            raise ProfitstreamError(f"cannot start {argv[0]}: {exc.strerror}") from exc


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM ``pid``, then SIGKILL if it has not exited within ``timeout_s``."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


def wait_until(
    ready: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``ready`` until it is true; fail with the log's last line if the process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ProfitstreamError(
                f"{what} exited with code {process.returncode} during start-up: "
                f"{last_log_line(log_path)}"
            )
        if ready():
            return
        time.sleep(0.1)
    raise ProfitstreamError(
        f"{what} did not become ready within {timeout_s:.0f}s; see {log_path or 'its log'}"
    )


def last_log_line(log_path: Path | None) -> str:
    """The last non-empty line of a log file, for one-line error messages."""
    if log_path is None or not log_path.exists():
        return "(no log)"
    lines = [line.strip() for line in log_path.read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return lines[-1][:300] if lines else "(empty log)"


def tcp_accepts(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def write_record(stack_dir: Path, record: ServerRecord) -> None:
    """Persist a server's pid file and state file (atomically)."""
    stack_dir.mkdir(parents=True, exist_ok=True)
    for path, text in (
        (stack_dir / f"{record.name}.pid", f"{record.pid}\n"),
        (stack_dir / f"{record.name}.json", json.dumps(asdict(record), indent=2)),
    ):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)


def read_record(stack_dir: Path, name: str) -> ServerRecord | None:
    """The recorded server ``name``, or ``None`` if none was recorded."""
    path = stack_dir / f"{name}.json"
    try:
        return ServerRecord(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise ProfitstreamError(
            f"stack state file {path} is unreadable ({exc}); "
            "remove it and run `profitstream stack up`"
        ) from exc


def forget_record(stack_dir: Path, name: str) -> None:
    """Remove a server's pid and state files."""
    for suffix in (".pid", ".json"):
        (stack_dir / f"{name}{suffix}").unlink(missing_ok=True)
