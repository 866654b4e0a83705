"""The simulator's clock: a portfolio evolves in 30-day periods from its start."""

from __future__ import annotations

from features.windows import DAY_SECONDS

PERIOD_DAYS = 30
PERIOD_S = PERIOD_DAYS * DAY_SECONDS
