"""`GET /predictions` against a live worker with a model (live broker and Redis): paging
with a small limit returns every scored client exactly once, in order, each equal to
`/clients/{id}/prediction` and to `profitstream predictions export` (read from the topic);
an erased client leaves the pages; bad queries get 422 field errors. The index's query
parsing alone (no services) at the end."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from features.online_store import OnlineStore
from streams.views import PAGE_MAX, page_query
from tests.services.cli import run_cli
from tests.services.control_plane import control_env
from tests.services.event_log import produce_log, rebuild, simulated_log, wait_until_consumed
from tests.services.worker_process import WorkerProcess, running_worker

TOKEN = "page-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _page(worker: WorkerProcess, query: str) -> tuple[int, dict[str, Any]]:
    status, body = worker.get(f"/predictions{query}", AUTH)
    return status, json.loads(body)


def _every_page(worker: WorkerProcess, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Follow ``next_after`` from the first page to the last: the predictions, and pages."""
    found: list[dict[str, Any]] = []
    after: str | None = None
    pages = 0
    while True:
        query = f"?limit={limit}" + ("" if after is None else f"&after={quote(after, safe='')}")
        status, page = _page(worker, query)
        assert status == 200, page
        assert set(page) == {"predictions", "next_after"}
        assert len(page["predictions"]) <= limit
        found += page["predictions"]
        pages += 1
        after = page["next_after"]
        if after is None:
            return found, pages


def _exported(env: dict[str, str]) -> list[dict[str, Any]]:
    result = run_cli("predictions", "export", env=env)
    assert result.returncode == 0, result
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_every_client_is_paged_once_in_order_and_an_erased_one_leaves(
    worker_env: dict[str, str], kafka_bootstrap: str, redis_url: str, unique: str,
    control_registry: Path, control_keys: Path,
) -> None:  # fmt: skip
    env = control_env(worker_env, control_registry, control_keys,
                      PROFITSTREAM_PREDICTION_DELTA="0", PROFITSTREAM_API_TOKEN=TOKEN)  # fmt: skip
    messages = simulated_log(30, 6, malformed=0, duplicate=0, late=0, seed=8)
    clients = sorted(rebuild(messages).states)
    with running_worker(env) as worker:
        produce_log(kafka_bootstrap, unique, messages)
        wait_until_consumed(worker, len(messages), timeout_s=180)
        assert worker.get("/predictions")[0] == 401

        found, pages = _every_page(worker, limit=7)
        ids = [p["client_id"] for p in found]
        assert ids == clients  # each once, in order
        assert pages == -(-len(clients) // 7)
        for prediction in found:
            status, body = worker.get(f"/clients/{prediction['client_id']}/prediction", AUTH)
            assert (status, json.loads(body)) == (200, prediction)
        # The topic says the same: its last record per client is what Redis holds.
        assert _exported(env) == found
        status, whole = _page(worker, "")  # default limit 100: one page
        assert (status, whole) == (200, {"predictions": found, "next_after": None})
        status, tail = _page(worker, f"?after={clients[-2]}")
        assert tail == {"predictions": [found[-1]], "next_after": None}
        status, beyond = _page(worker, "?after=zzz&limit=5")
        assert (status, beyond) == (200, {"predictions": [], "next_after": None})

        for query, errors in (
            ("?limit=0", {"limit"}), ("?limit=1001", {"limit"}), ("?limit=x", {"limit"}),
            ("?limit=1.5", {"limit"}), ("?limit=", {"limit"}), ("?limit=%2B5", {"limit"}),
            ("?after=-x", {"after"}), ("?after=", {"after"}),
            ("?after=a%20b&limit=-1", {"after", "limit"}),
        ):  # fmt: skip
            status, answer = _page(worker, query)
            assert status == 422, (query, answer)
            assert {e["loc"][1] for e in answer["detail"]} == errors, (query, answer)
            assert all(e["loc"][0] == "query" and e["msg"] for e in answer["detail"])

        victim = clients[3]
        erased = run_cli("clients", "erase", victim, env=env)
        assert erased.returncode == 0, erased
        after_erasure, _ = _every_page(worker, limit=4)
        assert [p["client_id"] for p in after_erasure] == [c for c in clients if c != victim]
        assert after_erasure == [p for p in found if p["client_id"] != victim]
        assert worker.get(f"/clients/{victim}/prediction", AUTH)[0] == 404
        # The topic: its tombstone is the victim's last record.
        assert _exported(env) == after_erasure

        timings = _page_latency(worker, redis_url, unique)
    for line in timings:
        print(line)


def _page_latency(worker: WorkerProcess, redis_url: str, namespace: str) -> list[str]:
    """Fill the worker's store with 10,000 more clients (through ``write_many``, as a batch
    writes them), and one whose prediction is not JSON, and time paging through all of
    them over HTTP."""
    payload = json.dumps(_payload("x"))

    async def fill() -> None:
        store = OnlineStore.from_url(redis_url, namespace)
        try:
            for start in range(0, 10_000, 1000):
                rows = {f"zz-{n:05d}": {"prediction": payload.replace('"x"', f'"zz-{n:05d}"')}
                        for n in range(start, start + 1000)}  # fmt: skip
                await store.write_many(rows, ttl_s=600)
            # Not a worker's value: skipped with a WARNING, never a 500.
            await store.write_many({"zz-bad": {"prediction": "[" * 100_000}})
        finally:
            await store.close()

    asyncio.run(fill())
    lines = []
    for limit in (100, PAGE_MAX):
        after: str | None = None
        seconds: list[float] = []
        seen: list[str] = []
        while True:
            query = f"?limit={limit}" + ("" if after is None else f"&after={after}")
            started = time.perf_counter()
            status, page = _page(worker, query)
            seconds.append(time.perf_counter() - started)
            assert status == 200, page
            seen += [p["client_id"] for p in page["predictions"]]
            after = page["next_after"]
            if after is None:
                break
        assert seen == sorted(set(seen))
        assert "zz-bad" not in seen
        assert len(seen) >= 10_000
        lines.append(
            f"GET /predictions?limit={limit}: {len(seen):,} clients in {len(seconds)} pages, "
            f"{sum(seconds):.2f}s; per page median {statistics.median(seconds) * 1000:.1f} ms, "
            f"max {max(seconds) * 1000:.1f} ms"
        )
    return lines


def _payload(client_id: str) -> dict[str, Any]:
    """A prediction payload of about the stream's size (5 drivers)."""
    driver = {"feature": "cost_to_revenue_180d", "value": 0.55, "contribution": -0.041}
    return {"schema_version": 1, "prediction_id": "5f0c" * 8, "client_id": client_id,
            "predicted_margin": 0.412, "horizon_days": 90,
            "interval": {"lower": 0.231, "upper": 0.593, "level": 0.9}, "risk_tier": "healthy",
            "drivers": [driver] * 5, "model": {"name": "profitability", "version": "1.0.3"},
            "experiment": None, "event_id": "inv-2024-0042", "event_time": "2024-03-01T09:00:00Z",
            "features_as_of": "2024-03-01T09:00:00Z", "scored_at": "2024-03-01T09:00:00.412Z",
            "latency_ms": 38.2, "reason": "margin_moved"}  # fmt: skip


# --- pure --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after", "limit", "size", "bad"),
    [
        (None, None, 100, set()),
        ("client-1", "1", 1, set()),
        ("a", "1000", 1000, set()),
        ("a", "0001", 1, set()),
        (None, "1001", 1001, {"limit"}),
        (None, "0", 0, {"limit"}),
        (None, "-1", 0, {"limit"}),
        (None, " 5", 0, {"limit"}),
        (None, "٥", 0, {"limit"}),
        (None, "9" * 5000, 0, {"limit"}),
        (None, "1e3", 0, {"limit"}),
        ("", None, 100, {"after"}),
        ("a" * 129, None, 100, {"after"}),
        ("é", "x", 0, {"after", "limit"}),
        ("ok\n", None, 100, {"after"}),
    ],
)
def test_the_page_query_is_checked_at_the_edge(
    after: str | None, limit: str | None, size: int, bad: set[str]
) -> None:
    got, errors = page_query(after, limit)
    assert {e["loc"][1] for e in errors} == bad
    if not bad:
        assert got == size
