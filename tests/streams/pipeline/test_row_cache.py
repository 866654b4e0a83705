"""The bounded LRU of decoded client rows (pure)."""

from __future__ import annotations

from features.state import ClientState
from streams.pipeline.client_row import ClientRow
from streams.pipeline.row_cache import RowCache


def test_least_recently_used_goes_first() -> None:
    cache = RowCache(2)
    cache.put(ClientRow(ClientState("a")))
    cache.put(ClientRow(ClientState("b")))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put(ClientRow(ClientState("c")))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert len(cache) == 2


def test_capacity_zero_caches_nothing_and_clear_forgets_all() -> None:
    off = RowCache(0)
    off.put(ClientRow(ClientState("a")))
    assert off.get("a") is None
    cache = RowCache(5)
    cache.put(ClientRow(ClientState("a")))
    cache.discard("a")
    cache.put(ClientRow(ClientState("b")))
    cache.clear()
    assert cache.get("a") is None
    assert cache.get("b") is None
