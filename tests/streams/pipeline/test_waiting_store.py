"""The worker's Redis store across a real outage: a valkey-server of the test's own is
stopped and started again empty on the same port."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from features.online_store import redis_client
from streams.pipeline.waiting_store import WaitingStore
from streams.worker_health import WorkerHealth
from tests.services.own_servers import own_valkey


async def _until(condition: object, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def test_a_write_waits_out_an_outage_and_reports_it_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="streams.pipeline.waiting_store")
    with own_valkey(tmp_path) as valkey:

        async def scenario() -> tuple[float, dict[str, str], int]:
            health = WorkerHealth(mirror="ok")
            store = WaitingStore(redis_client(valkey.url), "ns", health, backoff_max_s=0.5)
            reconnects: list[float] = []
            store.on_reconnect.append(lambda: reconnects.append(time.monotonic()))
            try:
                await store.write_many({"a": {"x": 1}})
                await store.write_marker(0, "ok", only_if_present=False)
                valkey.stop()
                writing = asyncio.create_task(store.write_many({"b": {"x": 2}}, ttl_s=60))
                await _until(lambda: health.redis_error is not None, 10)
                assert health.problems() == [f"redis unreachable: {health.redis_error}"]
                await asyncio.sleep(2.0)  # several tries, still waiting
                assert not writing.done()
                with pytest.raises(RedisConnectionError):  # reads are tried once
                    await store.read("a")
                await asyncio.to_thread(valkey.start)  # empty: no persistence
                started = time.monotonic()
                await asyncio.wait_for(writing, 10)
                assert (health.redis_error, health.mirror) == (None, "unchecked")
                assert await store.read_markers([0]) == {0: None}  # it came back empty
                return reconnects[0] - started, await store.read("b"), len(reconnects)
            finally:
                await store.close()

        after_s, written, reconnects = asyncio.run(scenario())
    assert written == {"x": "2"}
    assert reconnects == 1
    assert after_s < 2.0  # backoff capped at 0.5 s
    lines = [r for r in caplog.records if r.name == "streams.pipeline.waiting_store"]
    assert [r.levelname for r in lines] == ["WARNING", "INFO"], [r.message for r in lines]
