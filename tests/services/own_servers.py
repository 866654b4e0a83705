"""Servers a single test owns and may stop, flush or freeze: a valkey-server and a Tansu
broker of its own, so the session's shared servers are never disturbed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from streams.stack.embedded import start_server
from streams.stack.processes import free_port, stop_pid
from streams.stack.servers import TANSU, VALKEY, ServerKind


@dataclass
class OwnServer:
    """One server process on a fixed port, which the test can stop and start again."""

    kind: ServerKind
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client address: ``redis://127.0.0.1:P/0`` or ``kafka://127.0.0.1:P``."""
        return self.kind.url("127.0.0.1", self.port)

    @property
    def address(self) -> str:
        """``127.0.0.1:P``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it (empty: neither server keeps data across a restart here) and wait
        until it answers."""
        self.process = start_server(self.kind, self.kind.find_binary(), host="127.0.0.1",
                                    port=self.port, workdir=self.workdir, timeout_s=30,
                                    die_with_parent=True)  # fmt: skip

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL) and reap it."""
        if self.process is not None:
            self.resume()
            stop_pid(self.process.pid)
            self.process.wait()
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: it keeps its sockets but answers nothing, like a hung server."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after ``freeze``."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGCONT)


@contextlib.contextmanager
def own_server(kind: ServerKind, workdir: Path) -> Iterator[OwnServer]:
    """A started server of the test's own, stopped at the end whatever happened."""
    server = OwnServer(kind, workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def own_valkey(workdir: Path) -> contextlib.AbstractContextManager[OwnServer]:
    """A valkey-server of the test's own (no persistence: a restart comes back empty)."""
    return own_server(VALKEY, workdir)


def own_tansu(workdir: Path) -> contextlib.AbstractContextManager[OwnServer]:
    """A Tansu broker of the test's own (memory storage: freeze it, do not restart it)."""
    return own_server(TANSU, workdir)
