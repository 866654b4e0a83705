"""A real Apache Kafka broker (KRaft, single node) from jars Maven fetches from Maven Central."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from streams.errors import ProfitstreamError
from streams.kafka.preflight import kafka_answers
from streams.settings import KafkaSecurity
from streams.stack.processes import free_port, spawn, stop_pid, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
POM = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
LOG4J = REPO_ROOT / "deploy" / "kafka" / "log4j.properties"
HEAP = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC"]


def kafka_classpath(cache_dir: Path) -> str:
    """The broker's classpath; Maven caches the jars in ~/.m2, we cache the list."""
    cached = cache_dir / "classpath.txt"
    if cached.exists():
        classpath = cached.read_text().strip()
        if classpath and all(Path(jar).exists() for jar in classpath.split(":")):
            return classpath
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ProfitstreamError("Maven (mvn) is not on PATH; install it: apt-get install maven")
    cache_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "-f",
            str(POM),
            "dependency:build-classpath",
            f"-Dmdep.outputFile={cached}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0:
        raise ProfitstreamError(f"mvn could not fetch Apache Kafka: {result.stdout[-500:]}")
    return cached.read_text().strip()


def _server_properties(workdir: Path, port: int, controller_port: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={workdir / 'logs'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            # Tests start consumer groups often; Kafka's 3 s default delay would add up.
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            "",
        ]
    )


@contextmanager
def apache_kafka(workdir: Path, cache_dir: Path, timeout_s: float = 90.0) -> Iterator[str]:
    """Run a single-node KRaft broker under ``workdir``; yield its ``host:port``."""
    classpath = kafka_classpath(cache_dir)
    java = shutil.which("java")
    if java is None:
        raise ProfitstreamError(
            "java is not on PATH; install a JDK 17: apt-get install openjdk-17-jre"
        )
    port, controller_port = free_port(), free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    properties = workdir / "server.properties"
    properties.write_text(_server_properties(workdir, port, controller_port))
    jvm = [java, *HEAP, f"-Dlog4j.configuration=file:{LOG4J}", "-cp", classpath]
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    formatted = subprocess.run(
        [*jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if formatted.returncode != 0:
        raise ProfitstreamError(f"kafka storage format failed: {formatted.stdout[-500:]}")
    log_path = workdir / "kafka.log"
    process = spawn([*jvm, "kafka.Kafka", str(properties)], log_path, die_with_parent=True)
    try:
        bootstrap = f"127.0.0.1:{port}"
        wait_until(
            lambda: kafka_answers([bootstrap], KafkaSecurity()),
            timeout_s=timeout_s,
            what="Apache Kafka",
            process=process,
            log_path=log_path,
        )
        yield bootstrap
    finally:
        stop_pid(process.pid, timeout_s=20)
        process.wait()


@dataclass
class OwnApacheKafka:
    """A single-node KRaft broker a test owns: fixed ports and a log dir under ``workdir``,
    formatted once, so ``stop`` then ``start`` brings back the same broker, topics,
    committed offsets and all."""

    workdir: Path
    cache_dir: Path
    timeout_s: float = 90.0
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _jvm: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        """``127.0.0.1:P``, the bootstrap address."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``kafka://127.0.0.1:P``, for ``PROFITSTREAM_BROKER``."""
        return f"kafka://{self.address}"

    @property
    def log_path(self) -> Path:
        """The broker's own log (both runs append to it)."""
        return self.workdir / "kafka.log"

    @property
    def properties(self) -> Path:
        """Its ``server.properties``."""
        return self.workdir / "server.properties"

    def format(self) -> None:
        """Write ``server.properties`` and format the log dir with a fresh cluster id."""
        java = shutil.which("java")
        if java is None:
            raise ProfitstreamError(
                "java is not on PATH; install a JDK 17: apt-get install openjdk-17-jre"
            )
        classpath = kafka_classpath(self.cache_dir)
        self._jvm = [java, *HEAP, f"-Dlog4j.configuration=file:{LOG4J}", "-cp", classpath]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.properties.write_text(
            _server_properties(self.workdir, self.port, self.controller_port)
        )
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        formatted = subprocess.run(
            [*self._jvm, "kafka.tools.StorageTool", "format", "-t", cluster_id,
             "-c", str(self.properties)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if formatted.returncode != 0:
            raise ProfitstreamError(f"kafka storage format failed: {formatted.stdout[-500:]}")

    def start(self) -> None:
        """Start it on its ports and log dir; wait until it answers a metadata request.

        Call it from a thread that lives as long as the broker should: the broker gets
        SIGKILL when the thread that spawned it ends (Linux's parent-death signal)."""
        assert self._jvm, "format() first"
        assert self.process is None, "already running"
        self.process = spawn([*self._jvm, "kafka.Kafka", str(self.properties)], self.log_path,
                             die_with_parent=True)  # fmt: skip
        wait_until(
            lambda: kafka_answers([self.address], KafkaSecurity()),
            timeout_s=self.timeout_s,
            what="Apache Kafka",
            process=self.process,
            log_path=self.log_path,
        )

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (a clean shutdown, SIGKILL only after ``timeout_s``), wait for it to
        exit; return its exit code."""
        assert self.process is not None, "not running"
        process, self.process = self.process, None
        stop_pid(process.pid, timeout_s=timeout_s)
        return process.wait()


@contextmanager
def own_apache_kafka(
    workdir: Path, cache_dir: Path, timeout_s: float = 90.0
) -> Iterator[OwnApacheKafka]:
    """A started broker of the test's own (``stop``/``start`` it at will), stopped at the
    end whatever happened."""
    broker = OwnApacheKafka(workdir, cache_dir, timeout_s)
    broker.format()
    broker.start()
    try:
        yield broker
    finally:
        if broker.process is not None:
            broker.stop(timeout_s=20)
