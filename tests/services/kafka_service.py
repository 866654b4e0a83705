"""The Kafka broker a test run talks to, chosen by ``PROFITSTREAM_TEST_KAFKA``.

``tansu`` (default): the embedded broker; ``apache``: Apache Kafka from Maven Central;
``docker``: testcontainers; ``host:port``: an existing broker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.errors import ProfitstreamError
from streams.kafka.preflight import check_kafka
from streams.settings import KafkaSecurity, parse_broker_list
from streams.stack.embedded import start_server
from streams.stack.processes import free_port, stop_pid
from streams.stack.servers import TANSU
from tests.services.apache_kafka import POM, apache_kafka
from tests.services.docker_engine import require_docker


def classpath_cache_dir() -> Path:
    """Where the Apache Kafka classpath is cached, keyed by the pom so a version bump refetches."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    return Path.home() / ".cache" / "profitstream" / f"kafka-{digest}"


@contextmanager
def kafka_broker(choice: str, workdir: Path) -> Iterator[str]:
    """Yield the ``host:port`` of a live broker for the whole test session."""
    if choice == "tansu":
        process = start_server(
            TANSU,
            TANSU.find_binary(),
            host="127.0.0.1",
            port=(port := free_port()),
            workdir=workdir,
            timeout_s=30,
            die_with_parent=True,
        )
        try:
            yield f"127.0.0.1:{port}"
        finally:
            stop_pid(process.pid)
            process.wait()
    elif choice == "apache":
        with apache_kafka(workdir, classpath_cache_dir()) as bootstrap:
            yield bootstrap
    elif choice == "docker":
        require_docker()
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield str(container.get_bootstrap_server())
    else:
        try:
            servers = parse_broker_list(choice)
        except ValueError as exc:
            raise ProfitstreamError(
                f"PROFITSTREAM_TEST_KAFKA={choice!r}: {exc}; use tansu, apache, docker or host:port"
            ) from exc
        check_kafka(servers, KafkaSecurity())
        yield ",".join(servers)
