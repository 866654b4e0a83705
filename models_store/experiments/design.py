"""A running experiment's configuration, as the control log's fold holds it (pure).

Started by an ``experiment_start`` command and changed by ``experiment_ramp``; the fold's
transitions (``models_store.control.transitions``) own its life, the rest of
``experiments`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Experiment:
    """A running experiment: champion against ``challenger`` for a share of clients."""

    experiment_id: str
    challenger: str
    mode: Literal["ab", "shadow"]
    share: float
    schedule: tuple[float, ...]
    salt: str
    metric: str
    min_samples: int
    alpha: float
    max_duration_days: float
    auto_promote: bool
    guardrails: dict[str, float]
    started_at: float  # broker time of the start command, epoch seconds
    started_revision: int
