"""What the control log folds into: the deployment and the rest of the control state (pure).

``ControlState`` only changes through ``models_store.control.transitions``, one accepted
command at a time, so every worker folding the same log holds equal states.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from models_store.experiments.design import Experiment


@dataclass(frozen=True)
class Deployment:
    """What scores clients: the champion and, while one runs, the experiment.

    ``revision`` is the revision of the command that last changed it; it tells workers
    (and the partition rows of the client table) when to switch.
    """

    revision: int
    champion: str | None
    experiment: Experiment | None


@dataclass(frozen=True)
class ControlState:
    """The folded control log."""

    revision: int = 0  # accepted commands so far
    deployment: Deployment = Deployment(0, None, None)
    previous: tuple[str, ...] = ()  # earlier champions, most recent last (rollback)
    registered: frozenset[str] = frozenset()
    retired: frozenset[str] = frozenset()
    ended_experiments: frozenset[str] = frozenset()
    erased: frozenset[str] = frozenset()  # client ids


def client_digest(client_id: str) -> str:
    """How audit records name an erased client: sha256 of its id, hex."""
    return hashlib.sha256(client_id.encode()).hexdigest()
