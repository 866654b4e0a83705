"""Fixtures of the field suite: a model registry with two versions and the operators' keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.services.control_plane import write_keys


@pytest.fixture(scope="session")
def field_registry(control_registry: Path) -> Path:
    """One trained model registered as profitability@1.0.0 and again (same trees) as 2.0.0
    (the session's shared registry: training it again would cost a minute)."""
    return control_registry


@pytest.fixture
def field_keys(tmp_path: Path) -> Path:
    """Keys of alice (admin), who signs the operators' commands."""
    return write_keys(tmp_path / "keys.json", {"alice": "admin"})
