"""The Redis online store: one hash per client, mirroring the stream's table for outside readers.

Beside the hashes, one marker per table partition (``{namespace}:mirror:{partition}``) says
that the worker owning the partition has written the mirror of all its clients: a Redis
that was flushed, or restarted without persistence, has none, and the owner rebuilds
(``streams.pipeline.mirror_rebuild``).

And one sorted set, ``{namespace}:clients``, of every client id with a hash, all scored 0 so
that Redis orders them by their bytes: ``GET /predictions`` pages through it in a stable
order (SCAN has none, and may return a key twice). ``write_many`` and ``delete_many``, the
only writers, update it in the same pipeline as the hashes. A hash that expired (TTL)
leaves its id in the index; readers skip such ids.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

FieldValue = str | int | float
PREDICTION_FIELD = "prediction"
# A dead Redis fails fast, a hung one within these: the worker decides when to try again.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5.0


def redis_client(url: str) -> aioredis.Redis:
    """An asyncio client of the Redis at ``url`` whose failed calls raise at once: no
    retries inside redis-py (its ``Redis()`` constructor defaults to 3 with backoff), so
    an outage is seen when it starts; the caller decides when to try again."""
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=READ_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )


class OnlineStore:
    """Per-client Redis hashes under ``{namespace}:client:{client_id}``.

    The namespace (the app id) keeps two deployments, or two tests, on one
    Redis apart.
    """

    def __init__(self, client: aioredis.Redis, namespace: str) -> None:
        self._client = client
        self._namespace = namespace

    @classmethod
    def from_url(cls, url: str, namespace: str) -> OnlineStore:
        """A store on the Redis server at ``url``."""
        return cls(redis_client(url), namespace)

    def key(self, client_id: str) -> str:
        """The Redis key of a client's hash."""
        return f"{self._namespace}:client:{client_id}"

    @property
    def index_key(self) -> str:
        """The Redis key of the ordered index of client ids."""
        return f"{self._namespace}:clients"

    async def write(self, client_id: str, fields: Mapping[str, FieldValue]) -> None:
        """Set some fields of a client's hash."""
        await self.write_many({client_id: fields})

    async def write_many(
        self, rows: Mapping[str, Mapping[str, FieldValue]], ttl_s: int | None = None
    ) -> None:
        """Set fields of many clients in one round trip, refreshing each hash's TTL."""
        if not rows:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for client_id, fields in rows.items():
                key = self.key(client_id)
                pipe.hset(key, mapping=dict(fields))
                if ttl_s:
                    pipe.expire(key, ttl_s)
            pipe.zadd(self.index_key, dict.fromkeys(rows, 0))
            await pipe.execute()

    async def read(self, client_id: str) -> dict[str, str]:
        """All fields of a client's hash (empty if the client is unknown)."""
        return dict(
            await cast(Awaitable[dict[str, str]], self._client.hgetall(self.key(client_id)))
        )

    async def delete_many(self, client_ids: Iterable[str]) -> int:
        """Remove clients' hashes and index entries (right to erasure); returns how many
        hashes existed."""
        ids = list(client_ids)
        if not ids:
            return 0
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.delete(*[self.key(client_id) for client_id in ids])
            pipe.zrem(self.index_key, *ids)
            deleted, _ = await pipe.execute()
        return int(deleted)

    async def read_predictions(
        self, after: str | None, limit: int
    ) -> tuple[list[tuple[str, str]], str | None]:
        """One page of the index: (client id, prediction JSON) of the clients after
        ``after`` (exclusive; None: from the first) in byte order, at most ``limit`` ids
        looked at, and the id to ask after next (None when the index has no more). Ids
        whose hash expired or holds no prediction are skipped."""
        start = "-" if after is None else f"({after}"
        # One id more than the page says whether another page follows.
        ids = await cast(
            Awaitable[list[str]],
            self._client.zrangebylex(self.index_key, start, "+", start=0, num=limit + 1),
        )
        page, more = ids[:limit], len(ids) > limit
        if not page:
            return [], None
        async with self._client.pipeline(transaction=False) as pipe:
            for client_id in page:
                pipe.hget(self.key(client_id), PREDICTION_FIELD)
            values: list[str | None] = await pipe.execute()
        found = [(c, v) for c, v in zip(page, values, strict=True) if v is not None]
        return found, page[-1] if more else None

    async def ping(self) -> None:
        """Raise unless Redis answers."""
        await cast(Awaitable[bool], self._client.ping())

    def marker_key(self, partition: int) -> str:
        """The Redis key of a table partition's mirror marker."""
        return f"{self._namespace}:mirror:{partition}"

    async def read_markers(self, partitions: Iterable[int]) -> dict[int, str | None]:
        """The mirror markers of ``partitions`` (None where there is none), in one round trip."""
        numbers = sorted(set(partitions))
        if not numbers:
            return {}
        keys = [self.marker_key(partition) for partition in numbers]
        values = await cast(Awaitable[list[str | None]], self._client.mget(keys))
        return dict(zip(numbers, values, strict=True))

    async def write_marker(self, partition: int, value: str, *, only_if_present: bool) -> bool:
        """Set a partition's marker (no TTL); with ``only_if_present``, only if it still
        exists. Returns whether it was set."""
        key = self.marker_key(partition)
        return bool(await self._client.set(key, value, xx=only_if_present))

    async def close(self) -> None:
        """Release the connection pool."""
        await self._client.aclose()
