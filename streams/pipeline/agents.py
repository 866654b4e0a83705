"""The Faust side of the input path: the subscription, the batch reader task, rebalance hooks.

The agent subscribes to both input topics so that Faust's assignor gives each worker
co-partitioned input and changelog partitions; the records themselves are read in
batches by ``InputReader`` (see there why not through the agent's stream).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import StreamT

from streams.pipeline.batch import BatchProcessor
from streams.pipeline.input_reader import InputReader
from streams.settings import Settings


def register_agents(
    app: faust.App, settings: Settings, pipeline: BatchProcessor, reader: InputReader
) -> None:
    """Attach the input subscription, the reader task and its rebalance hooks to ``app``."""
    inputs = app.topic(
        settings.topics.activity,
        settings.topics.billing,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topic_partitions,
        internal=True,
    )

    @app.agent(inputs, name="client-features")
    async def client_features(stream: StreamT[bytes]) -> None:
        # Paused in Faust's consumer; what slips through a resume is read by the reader too.
        async for _ in stream:
            pass

    async def read_inputs() -> None:
        await reader.run()

    app.task(read_inputs)

    async def on_revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await reader.on_revoked()
        pipeline.forget(set(args[0]))

    async def on_assigned(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        reader.on_assigned()

    app.on_partitions_revoked.connect(on_revoked)
    app.on_partitions_assigned.connect(on_assigned)
