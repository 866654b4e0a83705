"""`profitstream stack up|down|status`: the embedded broker and Redis, on loopback, as processes."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from streams.stack.processes import (
    ServerRecord,
    forget_record,
    free_port,
    pid_is_alive,
    read_record,
    require_free_port,
    spawn,
    stop_pid,
    wait_until,
    write_record,
)
from streams.stack.servers import EMBEDDED_SERVERS, ServerKind


@dataclass(frozen=True)
class ServerStatus:
    """One embedded server as ``status`` reports it."""

    kind: ServerKind
    record: ServerRecord | None
    running: bool
    started_now: bool = False

    @property
    def url(self) -> str | None:
        """The server's address while it runs."""
        if self.record is None or not self.running:
            return None
        return self.kind.url(self.record.host, self.record.port)


def status(stack_dir: Path) -> list[ServerStatus]:
    """What runs, and where, according to the state files and the process table."""
    result = []
    for kind in EMBEDDED_SERVERS:
        record = read_record(stack_dir, kind.name)
        running = record is not None and pid_is_alive(record.pid, record.binary)
        result.append(ServerStatus(kind, record, running))
    return result


def running_url(stack_dir: Path, name: str) -> str | None:
    """The URL of the embedded server ``name`` ("kafka" or "redis") if it runs."""
    for server in status(stack_dir):
        if server.kind.name == name:
            return server.url
    return None


def up(
    stack_dir: Path,
    *,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
    timeout_s: float = 30.0,
) -> list[ServerStatus]:
    """Start whichever embedded server is not running yet and wait until each answers.

    A port of 0 (the default) picks a free one. If one server fails to start, the
    ones this call started are stopped again, so a failed ``up`` leaves nothing behind.
    """
    ports = ports or {}
    binaries = {kind.name: kind.find_binary() for kind in EMBEDDED_SERVERS}
    current = {server.kind.name: server for server in status(stack_dir)}
    started: list[ServerRecord] = []
    result = []
    try:
        for kind in EMBEDDED_SERVERS:
            if current[kind.name].running:
                result.append(current[kind.name])
                continue
            port = ports.get(kind.name, 0)
            flag = f"--{kind.name}-port"
            if port:
                require_free_port(
                    host, port, kind.title, f"pass another {flag} or {flag} 0 for a free one"
                )
            else:
                port = free_port(host)
            record = _start(kind, binaries[kind.name], host, port, stack_dir, timeout_s)
            started.append(record)
            result.append(ServerStatus(kind, record, running=True, started_now=True))
    except BaseException:
        for record in started:
            stop_pid(record.pid)
            forget_record(stack_dir, record.name)
        raise
    return result


def start_server(
    kind: ServerKind,
    binary: str,
    *,
    host: str,
    port: int,
    workdir: Path,
    timeout_s: float,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start one server, logging to ``workdir/NAME.log``, and wait until it answers."""
    log_path = workdir / f"{kind.name}.log"
    process = spawn(
        kind.argv(binary, host, port, workdir / kind.name),
        log_path,
        die_with_parent=die_with_parent,
    )
    try:
        wait_until(
            lambda: kind.answers(host, port),
            timeout_s=timeout_s,
            what=kind.title,
            process=process,
            log_path=log_path,
        )
    except BaseException:
        stop_pid(process.pid)
        process.wait()
        raise
    return process


def _start(
    kind: ServerKind, binary: str, host: str, port: int, stack_dir: Path, timeout_s: float
) -> ServerRecord:
    process = start_server(
        kind, binary, host=host, port=port, workdir=stack_dir, timeout_s=timeout_s
    )
    record = ServerRecord(
        name=kind.name,
        pid=process.pid,
        host=host,
        port=port,
        binary=binary,
        log_path=str((stack_dir / f"{kind.name}.log").resolve()),
        started_at=time.time(),
    )
    write_record(stack_dir, record)
    return record


def down(stack_dir: Path) -> list[ServerStatus]:
    """Stop every recorded embedded server; report what was running before."""
    before = status(stack_dir)
    for server in before:
        if server.record is not None:
            if server.running:
                stop_pid(server.record.pid)
            forget_record(stack_dir, server.kind.name)
    return before
