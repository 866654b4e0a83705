"""Fixtures of the control-plane tests: a registry with two versions, the principals' keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.control_plane import two_version_registry, write_keys


@pytest.fixture(scope="session")
def control_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One trained model registered as 1.0.0, and again (same trees) as 2.0.0."""
    return two_version_registry(tmp_path_factory.mktemp("models"))


@pytest.fixture
def control_keys(tmp_path: Path) -> Path:
    """Keys of alice (admin), otto (operator) and the experiment monitor (admin)."""
    return write_keys(tmp_path / "keys.json",
                      {"alice": "admin", "otto": "operator", "monitor": "admin"})  # fmt: skip
