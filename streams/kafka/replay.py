"""Replay an event log to the input topics at a steady rate, in arrival order, with progress."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from features.offline import LoggedMessage
from streams.kafka.preflight import aiokafka_security_kwargs
from streams.settings import Settings


async def replay_to_kafka(
    messages: Sequence[LoggedMessage], settings: Settings, bootstrap: list[str], rate: float
) -> float:
    """Produce ``messages`` keyed by client at ``rate`` messages/s (0: as fast as possible).

    Arrival order is kept, so each client's events stay in the order the log has them.
    Returns the achieved rate.
    """
    topics = {"activity": settings.topics.activity, "billing": settings.topics.billing}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        max_batch_size=256 * 1024,
        acks="all",
        enable_idempotence=False,
        **aiokafka_security_kwargs(settings.security),
    )
    await producer.start()
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:>8.0f} ev/s"), TimeRemainingColumn())  # fmt: skip
    started = time.monotonic()
    try:
        with Progress(*columns) as progress:
            task = progress.add_task("replay", total=len(messages), rate=0.0)
            pending = []
            for index, message in enumerate(messages):
                pending.append(
                    await producer.send(topics[message.stream], message.value, key=message.key)
                )
                if rate > 0 and index % 100 == 99:
                    ahead = (index + 1) / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                if index % 2000 == 1999:
                    await asyncio.gather(*pending)
                    pending.clear()
                    elapsed = time.monotonic() - started
                    progress.update(task, completed=index + 1, rate=(index + 1) / elapsed)
            await asyncio.gather(*pending)
            elapsed = time.monotonic() - started
            progress.update(task, completed=len(messages), rate=len(messages) / elapsed)
    finally:
        await producer.stop()
    return len(messages) / max(elapsed, 1e-9)
