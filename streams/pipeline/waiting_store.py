"""The online store as the worker uses it: writes wait out a Redis outage, every call
reports whether Redis answered.

A write or delete of the batch path that fails is tried again, with exponential backoff
capped at ``PROFITSTREAM_RETRY_BACKOFF_MAX_S``, until Redis answers: the batch stays
unacknowledged meanwhile (the input reader reads no further), and since hash writes and
deletes are idempotent, trying one again applies nothing twice. Reads (the HTTP views,
the mirror check) are tried once: their callers answer 503 or try later. One WARNING
when Redis starts failing, one INFO when it answers again, not one line per try.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from features.online_store import FieldValue, OnlineStore
from streams.metrics import REDIS_FAILURES
from streams.worker_health import WorkerHealth

log = logging.getLogger(__name__)
_T = TypeVar("_T")
FIRST_BACKOFF_S = 0.1


def backoff_s(failures: int, cap_s: float) -> float:
    """How long to wait after the ``failures``-th failure in a row: 0.1 s, doubling, capped."""
    return min(cap_s, FIRST_BACKOFF_S * 2.0 ** min(failures - 1, 30))


def describe(exc: BaseException) -> str:
    """A one-line description of a failed call."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class WaitingStore(OnlineStore):
    """``OnlineStore`` whose writes wait for Redis and whose calls keep ``health`` current."""

    def __init__(
        self, client: aioredis.Redis, namespace: str, health: WorkerHealth, backoff_max_s: float
    ) -> None:
        super().__init__(client, namespace)
        self._health = health
        self._backoff_max_s = backoff_max_s
        self._failing_since: float | None = None
        # Called when Redis answers again after failing (it may have come back empty).
        self.on_reconnect: list[Callable[[], None]] = []

    # --- writes: wait until done ---------------------------------------------------------

    async def write_many(
        self, rows: Mapping[str, Mapping[str, FieldValue]], ttl_s: int | None = None
    ) -> None:
        """Set fields of many clients, trying again until Redis answers."""
        if rows:
            await self._until_done(lambda: OnlineStore.write_many(self, rows, ttl_s))

    async def delete_many(self, client_ids: Iterable[str]) -> int:
        """Remove clients' hashes, trying again until Redis answers."""
        ids = list(client_ids)
        return await self._until_done(lambda: OnlineStore.delete_many(self, ids))

    async def write_marker(self, partition: int, value: str, *, only_if_present: bool) -> bool:
        """Set a partition's mirror marker, trying again until Redis answers."""
        return await self._until_done(
            lambda: OnlineStore.write_marker(
                self, partition, value, only_if_present=only_if_present
            )
        )

    # --- reads: once ---------------------------------------------------------------------

    async def read(self, client_id: str) -> dict[str, str]:
        """All fields of a client's hash; raises when Redis does not answer."""
        return await self._once(super().read(client_id))

    async def read_predictions(
        self, after: str | None, limit: int
    ) -> tuple[list[tuple[str, str]], str | None]:
        """A page of the clients' latest predictions; raises when Redis does not answer."""
        return await self._once(super().read_predictions(after, limit))

    async def read_markers(self, partitions: Iterable[int]) -> dict[int, str | None]:
        """The mirror markers of ``partitions``; raises when Redis does not answer."""
        return await self._once(super().read_markers(partitions))

    async def ping(self) -> None:
        """Raise unless Redis answers."""
        await self._once(super().ping())

    # --- bookkeeping ---------------------------------------------------------------------

    async def _until_done(self, call: Callable[[], Awaitable[_T]]) -> _T:
        failures = 0
        while True:
            try:
                return await self._once(call())
            except (RedisError, OSError):
                failures += 1
                await asyncio.sleep(backoff_s(failures, self._backoff_max_s))

    async def _once(self, call: Awaitable[_T]) -> _T:
        try:
            result = await call
        except (RedisError, OSError) as exc:
            self._failed(exc)
            raise
        self._answered()
        return result

    def _failed(self, exc: BaseException) -> None:
        REDIS_FAILURES.inc()
        error = describe(exc)
        if self._health.redis_failed(error):
            self._failing_since = time.monotonic()
            log.warning("Redis does not answer (%s): batches wait, tried again every %.1f s "
                        "at most; /ready says 503 until it answers", error,
                        self._backoff_max_s)  # fmt: skip

    def _answered(self) -> None:
        if not self._health.redis_answered():
            return
        down_s = 0.0 if self._failing_since is None else time.monotonic() - self._failing_since
        log.info("Redis answers again after %.1f s; checking the mirror", down_s)
        for callback in self.on_reconnect:
            callback()
