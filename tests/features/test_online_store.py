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


def test_mirror_markers_per_partition_and_a_conditional_rewrite(
    redis_url: str, unique: str
) -> None:
    async def scenario() -> tuple[dict[int, str | None], bool, bool, dict[int, str | None]]:
        store = OnlineStore.from_url(redis_url, namespace=unique)
        try:
            await store.ping()
            # Only while it exists: a flush between the two writes must not be papered over.
            absent = await store.write_marker(1, "ok late", only_if_present=True)
            await store.write_marker(0, "rebuilding w", only_if_present=False)
            present = await store.write_marker(0, "ok w", only_if_present=True)
            before = await store.read_markers([0, 1])
            return before, absent, present, await store.read_markers([])
        finally:
            await store.close()

    markers, absent, present, none = asyncio.run(scenario())
    assert (absent, present) == (False, True)
    assert markers == {0: "ok w", 1: None}
    assert none == {}
