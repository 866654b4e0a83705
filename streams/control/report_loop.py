"""The loop every periodic publisher of a worker runs (arm health, accuracy, drift)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def report_every(report: Callable[[], Awaitable[int]], interval_s: float, what: str) -> None:
    """Call ``report`` every ``interval_s`` for as long as the worker runs; a failure is
    logged (``what`` could not be published) and tried again at the next interval."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await report()
        except Exception:
            log.exception("could not publish %s; retrying in %.0fs", what, interval_s)
