"""Sticky A/B assignment: which arm of an experiment a client is in (pure).

A client's point in [0, 1) comes from sha256(salt, client_id); it is in the challenger
arm when the point is below the challenger's share. Raising the share (a ramp) only moves
clients from the champion to the challenger, never back, and the same client gets the
same arm on every worker and after every restart: nothing is stored, it is recomputed.
"""

from __future__ import annotations

import hashlib
from typing import Literal

Arm = Literal["champion", "challenger"]


def assignment_point(client_id: str, salt: str) -> float:
    """A uniform number in [0, 1) fixed by the client and the experiment's salt."""
    digest = hashlib.sha256(f"{salt}\0{client_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_arm(client_id: str, salt: str, challenger_share: float) -> Arm:
    """The client's arm when the challenger scores ``challenger_share`` of clients."""
    if not 0.0 <= challenger_share <= 1.0:
        raise ValueError(f"challenger_share must be in [0, 1], not {challenger_share}")
    return "challenger" if assignment_point(client_id, salt) < challenger_share else "champion"
