"""Fixtures of the control-plane tests: the principals' keys (the registry: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.control_plane import write_keys


@pytest.fixture
def control_keys(tmp_path: Path) -> Path:
    """Keys of alice (admin), otto (operator) and the experiment monitor (admin)."""
    return write_keys(tmp_path / "keys.json",
                      {"alice": "admin", "otto": "operator", "monitor": "admin"})  # fmt: skip
