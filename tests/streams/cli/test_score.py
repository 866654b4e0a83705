"""`profitstream score` as a user runs it: feature rows or an event log in, payload columns out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.as_of import day_start, parse_as_of
from features.definitions import FEATURE_NAMES
from features.offline import build_features
from features.simulation.messages import history_frame, simulated_messages
from features.simulation.portfolio import simulate
from models_store.registry import open_registry
from models_store.scoring.prediction import FLAT_COLUMNS
from models_store.scoring.scorer import Scorer
from models_store.training.dataset import build_training_set, load_history
from models_store.training.train import TrainingRequest, train
from models_store.training.tuning import SearchBudget
from streams.cli.score import rows_from_history
from tests.services.cli import assert_one_line_error, run_cli

START = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
AS_OF = "2025-01-10T12:00:00Z"  # the CLI refuses a time without an offset


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], pd.DataFrame]:
    """An event log on disk, and a registry holding a model trained on it."""
    root = tmp_path_factory.mktemp("score")
    log = history_frame(simulated_messages(simulate(80, 15, seed=6, start=START)))
    log.to_parquet(root / "history.parquet")
    request = TrainingRequest(name="profitability", version="1.0.0", validation_cutoffs=2,
                              test_cutoffs=2, budget=SearchBudget(4, 2, 30))  # fmt: skip
    result = train(log, request, root / "bundles")
    open_registry(str(root / "registry")).register(result.bundle)
    env = {
        "PROFITSTREAM_MODEL_REGISTRY": str(root / "registry"),
        "PROFITSTREAM_MODEL": "profitability",
    }
    return root, env, log


def test_feature_rows_and_the_event_log_give_the_same_predictions(
    setup: tuple[Path, dict[str, str], pd.DataFrame], tmp_path: Path
) -> None:
    root, env, log = setup
    from_log = tmp_path / "from_log.parquet"
    result = run_cli("score", "--in", str(root / "history.parquet"), "--as-of", AS_OF,
                     "--out", str(from_log), env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "80 predictions by profitability@1.0.0" in result.stderr
    predicted = pd.read_parquet(from_log)
    assert list(predicted.columns) == list(FLAT_COLUMNS)

    as_of = datetime.fromisoformat(AS_OF).replace(tzinfo=UTC).timestamp()
    features = build_features(log, as_of).reset_index()
    features["as_of"] = as_of
    rows = tmp_path / "features.csv"
    features.to_csv(rows, index=False)
    from_rows = tmp_path / "from_rows.csv"
    result = run_cli("score", "--in", str(rows), "--out", str(from_rows), "--model",
                     "profitability@1.0.0", env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    again = pd.read_csv(from_rows)
    np.testing.assert_allclose(again["predicted_margin"], predicted["predicted_margin"],
                               rtol=1e-9, atol=1e-12)  # fmt: skip
    assert list(again["risk_tier"]) == list(predicted["risk_tier"])
    # The same instant with another offset: the same predictions.
    east = tmp_path / "east.parquet"
    result = run_cli("score", "--in", str(root / "history.parquet"), "--as-of",
                     "2025-01-10T14:00:00+02:00", "--out", str(east), env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    pd.testing.assert_series_equal(pd.read_parquet(east)["predicted_margin"],
                                   predicted["predicted_margin"])  # fmt: skip

    scorer = Scorer.from_registry(open_registry(env["PROFITSTREAM_MODEL_REGISTRY"]),
                                  "profitability@1.0.0", tmp_path / "cache")  # fmt: skip
    direct = scorer.score(features[list(FEATURE_NAMES)].to_numpy())
    np.testing.assert_array_equal(predicted["predicted_margin"], [s.margin for s in direct])
    first = predicted.iloc[0]
    assert len(first["prediction_id"]) == 32
    assert predicted["prediction_id"].is_unique
    assert first["features_as_of"].startswith("2025-01-10T12:00:00")
    assert first["interval_lower"] <= first["predicted_margin"] <= first["interval_upper"]
    drivers = json.loads(first["drivers"])
    assert len(drivers) == 5
    assert set(drivers[0]) == {"feature", "value", "contribution"}


def test_bad_input_is_one_line_each(
    setup: tuple[Path, dict[str, str], pd.DataFrame], tmp_path: Path
) -> None:
    root, env, _ = setup
    history = str(root / "history.parquet")
    out = str(tmp_path / "out.parquet")
    assert_one_line_error(run_cli("score", "--in", history, "--out", out, env=env),
                          "is an event log: pass --as-of")  # fmt: skip
    partial = tmp_path / "partial.csv"
    pd.DataFrame({"client_id": ["c"], "revenue_30d": [1.0]}).to_csv(partial, index=False)
    assert_one_line_error(run_cli("score", "--in", str(partial), "--out", out, env=env),
                          "lacks columns as_of, payments_30d")  # fmt: skip
    missing = run_cli("score", "--in", history, "--as-of", AS_OF, "--out", out, "--model",
                      "profitability@9.9.9", env=env)  # fmt: skip
    assert_one_line_error(missing, "no version 9.9.9", "versions: 1.0.0")
    unchosen = {k: v for k, v in env.items() if k != "PROFITSTREAM_MODEL"}
    none = run_cli("score", "--in", history, "--as-of", AS_OF, "--out", out, env=unchosen)
    assert_one_line_error(none, "pass --model NAME[@VERSION] or set PROFITSTREAM_MODEL")
    json_out = str(tmp_path / "out.json")
    wrong = run_cli("score", "--in", history, "--as-of", AS_OF, "--out", json_out, env=env)
    assert_one_line_error(wrong, "use a .parquet or .csv")
    assert not (tmp_path / "out.parquet").exists()


def test_features_outside_the_training_range_get_a_warning_line(
    setup: tuple[Path, dict[str, str], pd.DataFrame], tmp_path: Path
) -> None:
    _, env, log = setup
    as_of = datetime.fromisoformat(AS_OF).timestamp()
    features = build_features(log, as_of).reset_index()
    features["as_of"] = as_of
    rows = tmp_path / "features.csv"
    # Ten times the longest tenure the model saw: outside for every row.
    features["tenure_days"] = features["tenure_days"].max() * 10 + 1e4
    features.to_csv(rows, index=False)
    result = run_cli("score", "--in", str(rows), "--out", str(tmp_path / "out.csv"), env=env)
    assert result.returncode == 0, result.stderr
    assert f"features outside profitability@1.0.0's training range in {len(features)} of " in (
        result.stderr
    )
    assert "tenure_days (100%)" in result.stderr


def test_as_of_a_date_gives_the_training_rows_of_that_cutoff() -> None:
    """The as-of rule (``features.as_of``): `score --as-of D` on an event log computes, for
    every client, exactly the features of the training rows at cutoff D; 00:00 of D is a
    later instant (its windows end with day D itself, its ages are 1 ms older)."""
    log = history_frame(simulated_messages(simulate(40, 8, seed=4, start=START), late=0.05,
                                           duplicate=0.02))  # fmt: skip
    cutoff = day_start(date(2024, 5, 1))
    training = build_training_set(load_history(log), [cutoff], 90 * 86_400.0).frame
    expected = training.set_index("client_id")[list(FEATURE_NAMES)]
    for spelling in ("2024-05-01", "2024-04-30T23:59:59.999Z", "2024-05-01T01:59:59.999+02:00"):
        scored = rows_from_history(log, parse_as_of(spelling)).set_index("client_id")
        assert len(scored) == 40
        pd.testing.assert_frame_equal(scored[list(FEATURE_NAMES)], expected, check_exact=True)
    midnight = rows_from_history(log, parse_as_of("2024-05-01T00:00:00Z")).set_index("client_id")
    assert not midnight[list(FEATURE_NAMES)].equals(expected)
