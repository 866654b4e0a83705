"""Sticky A/B assignment: which arm of an experiment a client is in (pure).

A client's point in [0, 1) comes from sha256(salt, client_id); it is in the challenger
arm when the point is below the challenger's share. Nothing is stored, the arm is
recomputed, so the same client gets the same arm on every worker and after every restart.

Stickiness under a ramp: the challenger arm at share s is {points < s}, a subset of the
arm at any s' > s, so raising the share only moves clients from the champion to the
challenger, never back. A new salt (a new experiment) draws new points, independent of
the previous experiment's, so one experiment's arms do not leak into the next.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Literal

Arm = Literal["champion", "challenger"]


def assignment_point(client_id: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by the client and the experiment's salt."""
    digest = hashlib.sha256(f"{salt}\0{client_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _check_share(share: float, name: str) -> None:
    # Written as a negated range so NaN is refused too.
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], not {share}")


def assign_arm(client_id: str, salt: str, challenger_share: float) -> Arm:
    """The client's arm when the challenger scores ``challenger_share`` of clients."""
    _check_share(challenger_share, "challenger_share")
    return "challenger" if assignment_point(client_id, salt) < challenger_share else "champion"


@dataclass(frozen=True)
class RampSchedule:
    """Challenger shares to ramp through, e.g. ``(0.05, 0.25, 0.5, 1.0)``; may be empty."""

    steps: tuple[float, ...]

    def __post_init__(self) -> None:
        if any(not 0.0 < step <= 1.0 for step in self.steps):
            raise ValueError(f"ramp steps must be in (0, 1], not {self.steps}")
        if any(later <= earlier for earlier, later in itertools.pairwise(self.steps)):
            raise ValueError(f"ramp steps must be strictly increasing, not {self.steps}")

    def after(self, current: float) -> float | None:
        """The first step above ``current``; None at (or past) the end of the schedule."""
        _check_share(current, "current share")
        # The current share may be off-schedule (an operator set it by hand): take the
        # first step above it rather than the step after its index.
        return next((step for step in self.steps if step > current), None)


def next_share(schedule: tuple[float, ...], current: float) -> float | None:
    """The ramp's next share after ``current`` (None at the end); refuses bad schedules."""
    return RampSchedule(schedule).after(current)
