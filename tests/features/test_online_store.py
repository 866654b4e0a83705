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


def test_pages_follow_the_index_in_byte_order_and_skip_what_has_no_prediction(
    redis_url: str, unique: str
) -> None:
    """Written and deleted in one pipeline with the hashes, the index pages every client
    once, in byte order; an id whose hash expired or holds no prediction is skipped, and
    still moves the cursor on."""
    ids = ["b", "a/1", "A", "c.9", "a", "a:0", "z@x", "0"]

    async def scenario() -> tuple[list[tuple[list[tuple[str, str]], str | None]], int]:
        store = OnlineStore.from_url(redis_url, namespace=unique)
        try:
            await store.write_many({c: {"as_of": 1.0, "prediction": f'{{"c": "{c}"}}'}
                                    for c in ids}, ttl_s=60)  # fmt: skip
            await store.write("nopred", {"as_of": 1.0})  # features only: no prediction yet
            await store.write_many({"gone": {"prediction": "{}"}}, ttl_s=60)
            deleted = await store.delete_many(["b", "never-written"])
            # An expired hash leaves its id in the index.
            await store.write_many({"expired": {"prediction": "{}"}})
            await store._client.delete(store.key("expired"))
            await store._client.delete(store.key("gone"))
            pages = []
            after = None
            while True:
                page = await store.read_predictions(after, 3)
                pages.append(page)
                after = page[1]
                if after is None:
                    return pages, deleted
        finally:
            await store.close()

    pages, deleted = asyncio.run(scenario())
    assert deleted == 1
    found = [client for page, _ in pages for client, _ in page]
    expected = sorted(set(ids) - {"b"})
    assert found == expected  # each once, in byte order ("A" < "a" < "a/1" < "a:0")
    first_page, _ = pages[0]
    assert dict(first_page) == {"0": '{"c": "0"}', "A": '{"c": "A"}', "a": '{"c": "a"}'}
    # Cursors: the last id looked at (also when it had nothing to show), None at the end.
    index = sorted([*expected, "expired", "gone", "nopred"])
    assert [after for _, after in pages] == [*index[2:-1:3], None]
