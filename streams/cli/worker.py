"""`profitstream worker`: check the addresses, the data dir and the topics, then run the Faust
worker until it is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import faust
from mode.utils.logging import setup_logging

from streams.app import create_app
from streams.cli.endpoints import kafka_bootstrap, redis_url
from streams.control.active_models import registry_loader
from streams.kafka.preflight import aiokafka_security_kwargs, check_kafka, check_redis
from streams.kafka.topic_admin import (
    TopicSpec,
    changelog_topic,
    ensure_topics,
    internal_topic,
    product_topics,
)
from streams.pipeline.data_dir import drop_stale_state, exclusive_data_dir
from streams.settings import Settings
from streams.stack.processes import require_free_port


def app_topics(app: faust.App, settings: Settings) -> list[TopicSpec]:
    """Every topic the worker's consumer group reads or its app writes: the product's, the
    tables' changelogs and Faust's leader topic, with the names Faust gives them."""
    specs = product_topics(settings)
    for table in app.tables.values():
        name = table.changelog_topic.get_topic_name()
        specs.append(changelog_topic(name, table.partitions or settings.topic_partitions, settings))
    specs.append(internal_topic(leader_topic_name(app), settings))
    return specs


def leader_topic_name(app: faust.App) -> str:
    """The topic Faust's ``LeaderAssignor`` elects its leader with."""
    return f"{app.conf.id}-__assignor-__leader"


async def prepare_broker(app: faust.App, settings: Settings, bootstrap: list[str]) -> None:
    """Create and check every topic, then drop local table state the changelog lost."""
    options: dict[str, Any] = aiokafka_security_kwargs(settings.security)
    await ensure_topics(app_topics(app, settings), bootstrap, options)
    for table in app.tables.values():
        partitions = table.partitions or settings.topic_partitions
        await drop_stale_state(
            Path(app.conf.tabledir), table.name, table.changelog_topic.get_topic_name(),
            partitions, bootstrap, options,
        )  # fmt: skip


def run_apart(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` on a loop of its own, leaving the thread's event loop alone: the
    app is built already, and Faust takes that loop when it starts."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coroutine)
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()


def run_worker(settings: Settings) -> None:
    """Run one worker in the foreground; SIGTERM/SIGINT stop it cleanly."""
    bootstrap = kafka_bootstrap(settings)
    url = redis_url(settings)
    check_kafka(bootstrap, settings.security)
    check_redis(url)
    # Faust's datadir, as create_app sets it: one worker per app id and data dir.
    datadir = settings.data_dir / "faust" / settings.app_id
    with exclusive_data_dir(datadir, settings.data_dir):
        require_free_port(
            settings.web_host,
            settings.web_port,
            "the worker's web server",
            "pass --web-port or set PROFITSTREAM_WEB_PORT",
        )
        # What happens before Faust starts is logged as Faust logs (it sets this up again).
        setup_logging(loglevel=settings.log_level)
        # The model is fetched, verified and loaded before the worker starts: /ready (table
        # recovery done) then also means the model is in memory.
        scorer = registry_loader(settings)(settings.model) if settings.model else None
        app = create_app(settings, bootstrap, url, scorer)
        # Every topic exists before the consumer group forms: a topic created meanwhile
        # stays out of the assignment until the next metadata refresh (minutes).
        app.conf.topic_allow_declare = False
        run_apart(prepare_broker(app, settings, bootstrap))
        worker = faust.Worker(app, loglevel=settings.log_level)
        worker.execute_from_commandline()
