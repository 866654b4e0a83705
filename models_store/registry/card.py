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
from models_store.registry.drift_reference import DriftReference

CARD_SCHEMA_VERSION = 1
CARD_FILE = "card.json"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
Target = Literal["margin_ratio", "margin_abs"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureSpec(_Frozen):
    """One input column, in model order, and the range of its finite values in the
    training rows (trees predict flat beyond it: scoring counts values outside it)."""

    name: str
    dtype: Literal["float64"] = "float64"
    training_min: float | None = None
    training_max: float | None = None


TierName = Literal["loss", "at_risk", "healthy", "strong"]
TIER_NAMES: tuple[TierName, ...] = ("loss", "at_risk", "healthy", "strong")
RATIO_TIER_BOUNDS = (0.0, 0.25, 0.5)


class RiskTiers(_Frozen):
    """How a predicted value becomes a risk tier: ``loss`` below ``bounds[0]``, ``at_risk``
    below ``bounds[1]``, ``healthy`` below ``bounds[2]``, else ``strong``.

    ``thresholds``: fixed bounds in the target's unit (for the margin ratio 0, 25%, 50%).
    ``portfolio_quantiles``: for money targets, 0 (a loss) and the given quantiles of the
    model's predictions on the validation rows, so a tier says where a client stands in
    the portfolio whatever its currency and size.
    """

    basis: Literal["thresholds", "portfolio_quantiles"] = "thresholds"
    bounds: tuple[float, float, float] = RATIO_TIER_BOUNDS
    quantiles: tuple[float, float] | None = None

    @field_validator("bounds")
    @classmethod
    def _ascending(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if not value[0] <= value[1] <= value[2]:
            raise ValueError(f"tier bounds {value} are not ascending")
        return value

    def tier(self, value: float) -> TierName:
        """The tier of a predicted value."""
        for name, upper in zip(TIER_NAMES, self.bounds, strict=False):
            if value < upper:
                return name
        return TIER_NAMES[-1]


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


class ErrorEstimate(_Frozen):
    """The label-free error model (``models_store.model.error_estimate``): fitted on the
    validation rows' |error|, checked on the test rows (in the target's unit)."""

    method: str
    fitted_rows: int
    test_rows: int
    test_estimated_mae: float = Field(description="mean estimated |error| on the test rows")
    test_mae: float = Field(description="the blend's realised MAE on the same rows")
    test_correlation: float | None = Field(
        description="Spearman correlation of estimated and realised |error| per test row"
    )


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
    # Validation error per model in ``selection_metric``: what tuning and the blend weight
    # were chosen on (older cards: MAE).
    validation: dict[str, float] = Field(default_factory=dict)
    # The XGBoost loss: absolute error (a median) for the ratio, squared error (a mean)
    # for money; the metric every choice was made on.
    objective: str = "reg:absoluteerror"
    selection_metric: Literal["mae", "rmse"] = "mae"
    intervals: IntervalCalibration
    # The label-free error estimate (None: trained before it existed; no estimate).
    error_estimate: ErrorEstimate | None = None
    # Cards written before tiers were stored per model used the margin-ratio thresholds.
    risk_tiers: RiskTiers = Field(default_factory=RiskTiers)
    # What PROFITSTREAM_PREDICTION_DELTA is a fraction of: 1 for the margin ratio; for
    # money targets a typical spread of the predictions (so 0.02 means 2% of it).
    prediction_scale: float = Field(default=1.0, gt=0)
    explanations: dict[str, Any]
    libraries: dict[str, str]
    artifacts: dict[str, ArtifactEntry]
    # The training distribution drift is measured against (None: an older card, no drift).
    drift_reference: DriftReference | None = None

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


def current_feature_specs(
    ranges: dict[str, tuple[float | None, float | None]] | None = None,
) -> list[FeatureSpec]:
    """The running feature code's input vector, with each feature's training range."""
    known = ranges or {}
    return [
        FeatureSpec(name=name, training_min=known.get(name, (None, None))[0],
                    training_max=known.get(name, (None, None))[1])
        for name in FEATURE_NAMES
    ]  # fmt: skip


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
