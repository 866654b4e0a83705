"""The model card: everything a registry entry says about a model version.

A card is the registry's record of a version. Its ``artifacts`` map each file of the
bundle to its sha256; nothing is parsed (let alone unpickled) before the bytes on disk
match it. ``features`` fixes the order and dtype of the input vector; a worker refuses
a card whose features differ from the running feature code.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from features.definitions import FEATURE_NAMES
from models_store.errors import FeatureMismatchError

CARD_SCHEMA_VERSION = 1
CARD_FILE = "card.json"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
Target = Literal["margin_ratio", "margin_abs"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureSpec(_Frozen):
    """One input column, in model order."""

    name: str
    dtype: Literal["float64"] = "float64"


class ArtifactEntry(_Frozen):
    """One file of the bundle, by path relative to the bundle directory."""

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)
    format: str  # e.g. "xgboost-ubj", "joblib", "json"


class TrainingData(_Frozen):
    """What the model learnt from: enough to reproduce the training set."""

    fingerprint: str  # sha256 over the event log's messages and the cutoffs
    events: int
    clients: int
    history_start: datetime
    history_end: datetime
    train_cutoffs: list[datetime]
    validation_cutoffs: list[datetime]
    test_cutoffs: list[datetime]
    rows: dict[str, int]  # per split
    # How rows were split (``models_store.training.splits``): "time" (roles by cutoff; every
    # card written before the client split existed) or "clients" (hashed client groups,
    # judged at the validation/test cutoffs), and why that kind.
    split: Literal["time", "clients"] = "time"
    split_reason: str = ""


class IntervalCalibration(_Frozen):
    """Split-conformal calibration of the prediction interval."""

    method: str
    level: float = Field(gt=0, lt=1)
    quantile: float = Field(ge=0)  # the calibrated half-width (in units of the scale model)
    calibration_rows: int
    test_coverage: float | None = None
    test_mean_width: float | None = None


class ModelCard(_Frozen):
    """A model version: identity, data, features, parameters, quality, artifacts."""

    schema_version: int = CARD_SCHEMA_VERSION
    name: str = Field(pattern=NAME_PATTERN)
    version: str
    created_at: datetime
    description: str = ""
    target: Target
    horizon_days: int = Field(gt=0)
    features: list[FeatureSpec]
    training_data: TrainingData
    hyperparameters: dict[str, dict[str, Any]]
    blend: dict[str, float]  # component -> weight, summing to 1
    # Held-out (test) figures per model and baseline: r2, mae, rmse, bias, rows; "oracle"
    # (expected R² and MAE on the same rows) when trained on simulator data.
    metrics: dict[str, dict[str, float]]
    # Validation MAE per model: what tuning and the blend weight were chosen on.
    validation: dict[str, float] = Field(default_factory=dict)
    intervals: IntervalCalibration
    explanations: dict[str, Any]
    libraries: dict[str, str]
    artifacts: dict[str, ArtifactEntry]

    @field_validator("version")
    @classmethod
    def _semantic(cls, value: str) -> str:
        if not SEMVER.match(value):
            raise ValueError(f"version {value!r} is not MAJOR.MINOR.PATCH")
        return value

    @property
    def ref(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Input columns in model order."""
        return tuple(spec.name for spec in self.features)

    def to_json(self) -> str:
        """The card as stable, human-readable JSON."""
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelCard:
        """Parse a card (pydantic validation errors propagate)."""
        return cls.model_validate_json(text)


def version_key(version: str) -> tuple[int, int, int]:
    """Sort key of a semantic version."""
    match = SEMVER.match(version)
    if match is None:
        raise ValueError(f"version {version!r} is not MAJOR.MINOR.PATCH")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def current_feature_specs() -> list[FeatureSpec]:
    """The running feature code's input vector."""
    return [FeatureSpec(name=name) for name in FEATURE_NAMES]


def feature_set_digest(names: tuple[str, ...] | list[str]) -> str:
    """sha256 of the ordered feature names: equal digests, same input vector."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def check_features(card: ModelCard) -> None:
    """Refuse a card whose input vector is not what the running feature code computes."""
    running = tuple(FEATURE_NAMES)
    trained = card.feature_names
    if trained == running:
        return
    missing = [name for name in trained if name not in running]
    extra = [name for name in running if name not in trained]
    detail = []
    if missing:
        detail.append(f"the feature code no longer computes {missing[:5]}")
    if extra:
        detail.append(f"the model does not know {extra[:5]}")
    if not detail:
        detail.append("the same features in another order")
    raise FeatureMismatchError(
        f"{card.ref} was trained on other features than this worker computes: "
        f"{'; '.join(detail)}; retrain it with this version of profitstream"
    )
