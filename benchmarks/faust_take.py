"""A bare Faust app whose agent only counts `take_events` batches: Faust's own ceiling.

Run by `benchmarks.feature_pipeline` as a subprocess:
`python -m benchmarks.faust_take BOOTSTRAP TOPIC[,TOPIC] TOTAL BATCH DATADIR RESULT`; writes
the events/s between the first and the last batch to the file RESULT, then exits.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import faust
from faust.types import StreamT


def _report(path: Path, events_per_s: float) -> None:
    # Once, at the very end: blocking the loop no longer matters.
    path.write_text(f"{events_per_s:.1f}\n")


def main() -> None:
    bootstrap, topic_names, total_text, batch_text, datadir, result = sys.argv[1:7]
    total, batch = int(total_text), int(batch_text)
    app_id = f"bench-take-{uuid.uuid4().hex[:8]}"
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        datadir=datadir,
        web_enabled=False,
        autodiscover=False,
        topic_disable_leader=True,
        broker_session_timeout=6,
        broker_heartbeat_interval=1.5,
    )
    topic = app.topic(
        *topic_names.split(","), key_serializer="raw", value_serializer="raw", internal=False
    )
    seen = 0
    first: tuple[float, int] | None = None

    @app.agent(topic)
    async def count(stream: StreamT[bytes]) -> None:
        nonlocal seen, first
        async for events in stream.take_events(batch, within=0.05):  # type: ignore[attr-defined]
            seen += len(events)
            now = time.perf_counter()
            if first is None:
                first = (now, seen)
            if seen >= total:
                _report(Path(result), (seen - first[1]) / (now - first[0]))
                # A measuring tool: no graceful shutdown needed (unique group, scratch dir).
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()


if __name__ == "__main__":
    main()
