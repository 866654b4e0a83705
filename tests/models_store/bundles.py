"""Small but real model bundles for registry tests: an XGBoost model, a JSON file, a card."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import xgboost

from models_store.registry.bundle import artifact_entry
from models_store.registry.card import (
    CARD_FILE,
    IntervalCalibration,
    ModelCard,
    TrainingData,
    current_feature_specs,
)

MODEL_FILE = "xgboost.ubj"
NOTES_FILE = "notes/training.json"


def make_bundle(directory: Path, name: str, version: str, *, seed: int = 0) -> Path:
    """Write the bundle ``name@version`` into ``directory`` (created) and return it.

    The files' bytes depend on ``name``, ``version`` and ``seed``, so no two bundles of a
    test share an artifact (a test can find a stored file by its sha256).
    """
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(f"{name}@{version}#{seed}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    features = current_feature_specs()
    x = rng.normal(size=(20, len(features)))
    y = x[:, 0] * 0.3 + rng.normal(scale=0.1, size=20)
    model = xgboost.XGBRegressor(n_estimators=3, max_depth=2, random_state=seed, n_jobs=1)
    model.fit(x, y)
    model.save_model(directory / MODEL_FILE)
    (directory / NOTES_FILE).parent.mkdir(exist_ok=True)
    (directory / NOTES_FILE).write_text(
        json.dumps({"model": name, "version": version, "y": y[:3].tolist()})
    )

    start = datetime(2024, 1, 1, tzinfo=UTC)
    cutoffs = [start + timedelta(days=30 * month) for month in range(6, 12)]
    card = ModelCard(
        name=name,
        version=version,
        created_at=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        description=f"test bundle {name}@{version}",
        target="margin_ratio",
        horizon_days=90,
        features=features,
        training_data=TrainingData(
            fingerprint=digest.hex(),
            events=12_345,
            clients=200,
            history_start=start,
            history_end=start + timedelta(days=365),
            train_cutoffs=cutoffs[:4],
            validation_cutoffs=cutoffs[4:5],
            test_cutoffs=cutoffs[5:],
            rows={"train": 800, "validation": 200, "test": 200},
        ),
        hyperparameters={"xgboost": {"n_estimators": 3, "max_depth": 2}},
        blend={"xgboost": 1.0},
        metrics={
            "blend": {"r2": 0.61, "mae": 0.042, "rmse": 0.055, "bias": 0.001},
            "persistence": {"r2": 0.35, "mae": 0.061, "rmse": 0.08, "bias": 0.0},
        },
        intervals=IntervalCalibration(
            method="split-conformal",
            level=0.9,
            quantile=1.64,
            calibration_rows=200,
            test_coverage=0.91,
        ),
        explanations={"method": "xgboost pred_contribs", "top_features": []},
        libraries={"xgboost": xgboost.__version__, "numpy": np.__version__},
        artifacts={
            "xgboost": artifact_entry(directory, MODEL_FILE, "xgboost-ubj"),
            "notes": artifact_entry(directory, NOTES_FILE, "json"),
        },
    )
    (directory / CARD_FILE).write_text(card.to_json())
    return directory
