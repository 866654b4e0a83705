"""When a worker may serve and process: table recovery finished, no rebalance under way."""

from __future__ import annotations

import faust


def is_ready(app: faust.App) -> bool:
    """Ready once table recovery has finished and no rebalance is under way."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # missing from TableManagerT
    return bool(recovery.completed.is_set() and not app.rebalancing)
