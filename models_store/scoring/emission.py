"""When a new score becomes a prediction on the topic (pure).

A client's new score is emitted when, compared with the last prediction emitted for it:
- there is none yet;
- the prediction moved by more than ``delta`` × the model's scale (its card's
  ``prediction_scale``: 1 for the margin ratio, so margin-ratio points; for money targets
  the portfolio's spread of predictions, so 0.02 is 2% of it);
- the risk tier changed;
- the model (name@version) or the experiment arm changed;
- ``heartbeat_s`` of event time passed since the last emission (0 = never).
Otherwise nothing is emitted, and the last emitted prediction stays the reference (so a
slow drift is emitted once it adds up to more than ``delta``).

A shadow challenger's predictions (reason ``shadow``, on the shadow topic) are not decided
here: one is made for each client the champion emits for, so the two can be compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why a prediction was emitted."""

    FIRST = "first"
    MARGIN = "margin_moved"
    TIER = "tier_changed"
    MODEL = "model_changed"
    ARM = "arm_changed"
    HEARTBEAT = "heartbeat"
    SHADOW = "shadow"  # a shadow challenger's, beside each champion prediction


@dataclass(frozen=True)
class Emitted:
    """What is remembered of the last prediction emitted for a client."""

    margin: float
    tier: str
    model: str
    arm: str | None
    event_time: float


@dataclass(frozen=True)
class EmissionPolicy:
    """Thresholds of ``decide``."""

    delta: float = 0.02
    heartbeat_s: float = 0.0


def decide(
    last: Emitted | None, new: Emitted, policy: EmissionPolicy, scale: float = 1.0
) -> Reason | None:
    """Why ``new`` must be emitted after ``last``, or None if it need not be (``scale``:
    what ``policy.delta`` is a fraction of)."""
    if last is None:
        return Reason.FIRST
    if new.model != last.model:
        return Reason.MODEL
    if new.arm != last.arm:
        return Reason.ARM
    if new.tier != last.tier:
        return Reason.TIER
    if abs(new.margin - last.margin) > policy.delta * scale:
        return Reason.MARGIN
    if policy.heartbeat_s > 0 and new.event_time - last.event_time >= policy.heartbeat_s:
        return Reason.HEARTBEAT
    return None
