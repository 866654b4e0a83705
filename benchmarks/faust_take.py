"""A bare Faust app whose agent only counts `take_events` batches: Faust's own ceiling.

Run by `benchmarks/feature_pipeline.py` as a subprocess:
`python -m benchmarks.faust_take BOOTSTRAP TOPIC[,TOPIC] TOTAL BATCH DATADIR`; prints the
events/s between the first and the last batch as its last line, then exits.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import faust
from faust.types import StreamT


def main() -> None:
    bootstrap, topic_names, total_text, batch_text, datadir = sys.argv[1:6]
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
                print(f"{(seen - first[1]) / (now - first[0]):.1f}", flush=True)
                # A measuring tool: no graceful shutdown needed (unique group, scratch dir).
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "--loglevel", "warning"]
    app.main()


if __name__ == "__main__":
    main()
