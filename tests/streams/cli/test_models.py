"""`profitstream models list/show/register` as a user runs them: output, exit codes, errors."""

from __future__ import annotations

import json
from pathlib import Path

from models_store.registry import open_registry
from models_store.registry.bundle import read_card
from models_store.registry.card import ModelCard
from tests.models_store.bundles import MODEL_FILE, make_bundle
from tests.services.cli import assert_one_line_error, run_cli


def registry_env(uri: str | Path) -> dict[str, str]:
    return {"PROFITSTREAM_MODEL_REGISTRY": str(uri)}


def test_register_list_and_show(tmp_path: Path) -> None:
    env = registry_env(tmp_path / "registry")
    for version in ("1.10.0", "1.2.0"):
        bundle = make_bundle(tmp_path / version, "margin", version)
        result = run_cli("models", "register", str(bundle), env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"registered margin@{version}")
    # A registry alias (NAME@champion / @challenger name what the control log deploys).
    open_registry(str(tmp_path / "registry")).set_alias("margin", "stable", "1.2.0")

    listed = run_cli("models", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [line for line in listed.stdout.splitlines() if "margin" in line]
    assert len(rows) == 2, listed.stdout
    assert "1.2.0" in rows[0]  # semantic order, not registration or string order
    assert "1.10.0" in rows[1]
    assert "stable" in rows[0]
    assert "0.61" in rows[0]  # held-out R² of the blend
    assert "0.042" in rows[0]  # and its MAE

    shown = run_cli("models", "show", "margin@stable", env=env)
    assert shown.returncode == 0, shown.stderr
    card = read_card(tmp_path / "1.2.0")
    for fragment in (
        "margin@1.2.0",
        "stable",
        "margin_ratio, 90 days ahead",
        "split-conformal",
        "persistence",
        MODEL_FILE,
        card.artifacts["xgboost"].sha256,
        card.artifacts["notes"].sha256,
    ):
        assert fragment in shown.stdout, fragment

    raw = run_cli("models", "show", "margin", "--json", env=env)
    assert raw.returncode == 0, raw.stderr
    assert ModelCard.model_validate(json.loads(raw.stdout)) == read_card(tmp_path / "1.10.0")


def test_missing_version_is_one_line_error(tmp_path: Path) -> None:
    open_registry(str(tmp_path / "registry")).register(make_bundle(tmp_path / "b", "m", "1.0.0"))
    result = run_cli("models", "show", "m@2.0.0", env=registry_env(tmp_path / "registry"))
    assert_one_line_error(result, "m has no version 2.0.0", "1.0.0", "profitstream models list")


def test_tampered_bundle_is_refused_with_one_line_error(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "m", "1.0.0")
    (bundle / MODEL_FILE).write_bytes(b"{}")
    env = registry_env(tmp_path / "registry")

    result = run_cli("models", "register", str(bundle), env=env)

    assert_one_line_error(result, f"m@1.0.0: artifact {MODEL_FILE} has sha256", "changed")
    assert "no models registered" in run_cli("models", "list", env=env).stdout


def test_default_registry_lives_in_the_data_dir(tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b", "m", "1.0.0")
    result = run_cli("--data-dir", str(tmp_path / "data"), "models", "register", str(bundle))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "registry" / "m" / "1.0.0" / MODEL_FILE).is_file()


def test_mlflow_registry_list_and_show(tmp_path: Path) -> None:
    uri = f"mlflow+sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    env = registry_env(uri)

    empty = run_cli("models", "list", env=env)  # creates the database: MLflow stays quiet
    assert empty.returncode == 0, empty.stderr
    assert empty.stderr == ""
    assert empty.stdout.startswith("no models registered in mlflow+sqlite:")

    card = open_registry(uri).register(make_bundle(tmp_path / "b", "m", "1.0.0"))
    shown = run_cli("models", "show", "m", env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stderr == ""
    assert "m@1.0.0" in shown.stdout
    assert card.artifacts["xgboost"].sha256 in shown.stdout
