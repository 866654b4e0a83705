"""Run `profitstream` as a user would: a separate process, judged by exit code and output."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """``profitstream ARGS`` with ``env`` added to a clean ``PROFITSTREAM_*``-free environment."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PROFITSTREAM_")}
    base["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """An expected failure: exit code != 0, one ``error:`` line naming the problem, no traceback."""
    assert result.returncode != 0, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
