"""The Redis online store against a live Redis (PROFITSTREAM_TEST_REDIS)."""

from __future__ import annotations

import asyncio

from features.online_store import OnlineStore


def test_write_then_read_and_namespaces_stay_apart(redis_url: str, unique: str) -> None:
    async def scenario() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        mine = OnlineStore.from_url(redis_url, namespace=unique)
        other = OnlineStore.from_url(redis_url, namespace=f"{unique}-other")
        try:
            await mine.write("acme", {"event_count": 3, "margin": 0.25})
            await mine.write("acme", {"event_count": 4})
            return await mine.read("acme"), await other.read("acme"), await mine.read("nobody")
        finally:
            await mine.close()
            await other.close()

    acme, other_acme, nobody = asyncio.run(scenario())
    assert acme == {"event_count": "4", "margin": "0.25"}
    assert other_acme == {}
    assert nobody == {}
