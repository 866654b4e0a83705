"""The bounded LRU of decoded client states (pure)."""

from __future__ import annotations

from features.state import ClientState
from streams.pipeline.state_cache import StateCache


def test_least_recently_used_goes_first() -> None:
    cache = StateCache(2)
    cache.put("a", ClientState("a"))
    cache.put("b", ClientState("b"))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", ClientState("c"))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None
    assert len(cache) == 2


def test_capacity_zero_caches_nothing_and_clear_forgets_all() -> None:
    off = StateCache(0)
    off.put("a", ClientState("a"))
    assert off.get("a") is None
    cache = StateCache(5)
    cache.put("a", ClientState("a"))
    cache.discard("a")
    cache.put("b", ClientState("b"))
    cache.clear()
    assert cache.get("a") is None
    assert cache.get("b") is None
