"""The embedded-stack tests' data dir, whose stack is always torn down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.stack.processes import pid_is_alive, read_record, stop_pid
from tests.services.cli import run_cli


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose stack is torn down after the test, whatever happened."""
    yield tmp_path
    run_cli("--data-dir", str(tmp_path), "stack", "down")
    for name in ("kafka", "redis"):
        record = read_record(tmp_path / "stack", name)
        if record is not None and pid_is_alive(record.pid, record.binary):
            stop_pid(record.pid)
