"""What a model's training data looked like, kept in its card for drift monitoring.

Per feature (and for the model's predictions) a compact binned distribution: interior bin
edges at the deciles of the finite training values (ties merged, so fewer bins for features
with few distinct values), the count of rows per bin and the count of rows without a finite
value. Plus the share of rows in which each feature is among the top-k SHAP drivers. The
stream compares its recent scored rows with these (``models_store.monitoring``). Built at
training time (``models_store.monitoring.reference``); cards written before have none, and
no drift is computed for them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BinnedDistribution(BaseModel):
    """Rows per bin: bin i holds ``edges[i-1] <= x < edges[i]`` (the first below
    ``edges[0]``, the last from ``edges[-1]`` up); ``missing``: rows with NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    edges: list[float] = Field(description="ascending, distinct interior edges")
    counts: list[int] = Field(description="one more than the edges")
    missing: int = Field(ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> BinnedDistribution:
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(f"{len(self.edges)} edges need {len(self.edges) + 1} counts")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must be strictly ascending")
        if any(count < 0 for count in self.counts):
            raise ValueError("counts must not be negative")
        return self

    @property
    def rows(self) -> int:
        """Every row counted, missing ones included."""
        return sum(self.counts) + self.missing


class DriftReference(BaseModel):
    """The training distribution the stream's drift is measured against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    feature_rows: str = Field(description="which rows the features were binned on")
    features: dict[str, BinnedDistribution]
    prediction_rows: str = Field(description="which rows the model's predictions come from")
    prediction: BinnedDistribution
    drivers_k: int = Field(ge=1, description="a feature is a driver if among the top k |SHAP|")
    driver_rows: int = Field(ge=0)
    driver_share: dict[str, float] = Field(
        description="share of the explained rows with the feature among their top-k drivers"
    )
