"""When a worker may serve and process: every reason it cannot do its job now."""

from __future__ import annotations

import faust

from streams.worker_health import WorkerHealth


def recovery_waiting(app: faust.App) -> str | None:
    """``table recovery`` until the tables are recovered, ``rebalance`` while one runs."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # missing from TableManagerT
    if not recovery.completed.is_set():
        return "table recovery"
    return "rebalance" if app.rebalancing else None


def is_ready(app: faust.App) -> bool:
    """Ready once table recovery has finished and no rebalance is under way."""
    return recovery_waiting(app) is None


def waiting_for(app: faust.App, models_waiting: str | None, health: WorkerHealth) -> list[str]:
    """Every reason ``/ready`` says 503 (empty: ready): table recovery or a rebalance, the
    control log or models (``models_waiting``, from the loaded models), the broker, Redis
    and its mirror, held input partitions."""
    reasons = [reason for reason in (recovery_waiting(app), models_waiting) if reason]
    return reasons + health.problems()
