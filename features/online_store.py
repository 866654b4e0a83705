"""The Redis online store: one hash per client, mirroring the stream's table for outside readers."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping
from typing import cast

import redis.asyncio as aioredis

FieldValue = str | int | float


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
        return cls(aioredis.Redis.from_url(url, decode_responses=True), namespace)

    def key(self, client_id: str) -> str:
        """The Redis key of a client's hash."""
        return f"{self._namespace}:client:{client_id}"

    async def write(self, client_id: str, fields: Mapping[str, FieldValue]) -> None:
        """Set some fields of a client's hash."""
        # redis-py types its commands as sync-or-async; on the asyncio client they are awaitable.
        await cast(Awaitable[int], self._client.hset(self.key(client_id), mapping=dict(fields)))

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
            await pipe.execute()

    async def read(self, client_id: str) -> dict[str, str]:
        """All fields of a client's hash (empty if the client is unknown)."""
        return dict(
            await cast(Awaitable[dict[str, str]], self._client.hgetall(self.key(client_id)))
        )

    async def delete_many(self, client_ids: Iterable[str]) -> int:
        """Remove clients' hashes (right to erasure); returns how many existed."""
        keys = [self.key(client_id) for client_id in client_ids]
        return int(await self._client.delete(*keys)) if keys else 0

    async def close(self) -> None:
        """Release the connection pool."""
        await self._client.aclose()
