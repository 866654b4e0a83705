"""docker-compose.yml: valid against the Compose Specification's JSON Schema (vendored in
compose_spec/), and tied to the files the tests run, so it cannot drift from them: the
Prometheus config and targets, the Grafana data source and dashboard, the Kafka version and
broker settings of the Apache Kafka the tests start, the image's entrypoint."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy.grafana.build_dashboard import DATASOURCE, OUT
from tests.services.apache_kafka import _server_properties
from tests.services.prometheus_server import PROMETHEUS_DIR, ROOT, binary

SCHEMA = Path(__file__).resolve().parent / "compose_spec" / "compose-spec.json"
COMPOSE = ROOT / "docker-compose.yml"
GRAFANA = ROOT / "deploy" / "grafana"
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of the service's bind mounts (``./...``)."""
    binds = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            binds[target] = source
    return binds


def test_the_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(compose)]  # fmt: skip
    assert errors == []
    broken = dict(compose, services={"x": {"image": 5}})
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))  # the schema bites


def test_every_bind_mount_is_a_file_of_the_repo(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for source in _mounts(service).values():
            assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_prometheus_runs_the_tested_config_and_scrapes_the_compose_workers(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    prometheus = services["prometheus"]
    assert _mounts(prometheus)["/etc/prometheus"] == "./deploy/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # The image's version is the Debian binary's the tests run.
    tag = prometheus["image"].rpartition(":v")[2]
    version = subprocess.run([binary("prometheus"), "--version"], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    assert re.search(rf"version {re.escape(tag)}\b", version), (tag, version.splitlines()[0])
    targets = [t for group in _yaml(PROMETHEUS_DIR / "targets" / "workers.yml")
               for t in group["targets"]]  # fmt: skip
    workers = [f"{services[w]['hostname']}:{services[w]['environment']['PROFITSTREAM_WEB_PORT']}"
               for w in WORKERS]  # fmt: skip
    assert targets == workers
    managers = [t for group in _yaml(PROMETHEUS_DIR / "alertmanagers" / "alertmanager.yml")
                for t in group["targets"]]  # fmt: skip
    assert managers == ["alertmanager:9093"]
    assert "9093:9093" in services["alertmanager"]["ports"]
    assert _mounts(services["alertmanager"]) == {
        "/etc/alertmanager/alertmanager.yml": "./deploy/alertmanager/alertmanager.yml"
    }


def test_the_workers_have_their_own_data_dirs_and_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    envs = [services[w]["environment"] for w in WORKERS]
    assert len({e["PROFITSTREAM_DATA_DIR"] for e in envs}) == len(WORKERS)
    assert len({e["PROFITSTREAM_WEB_PORT"] for e in envs}) == len(WORKERS)
    assert len({e["PROFITSTREAM_APP_ID"] for e in envs}) == 1  # one consumer group
    for name, env in zip(WORKERS, envs, strict=True):
        port = env["PROFITSTREAM_WEB_PORT"]
        assert f"{port}:{port}" in services[name]["ports"]
        assert env["PROFITSTREAM_WEB_HOST"] == "0.0.0.0"
        assert services[name]["command"] == ["worker"]
        data = {v.split(":")[1] for v in services[name]["volumes"]}
        assert any(env["PROFITSTREAM_DATA_DIR"].startswith(d) for d in data), name
    dockerfile = (ROOT / services["worker-1"]["build"]["dockerfile"]).read_text()
    assert 'ENTRYPOINT ["profitstream"]' in dockerfile
    assert re.search(r"^USER profitstream$", dockerfile, flags=re.MULTILINE)


def test_grafana_is_provisioned_with_the_built_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    provider = _yaml(GRAFANA / "provisioning" / "dashboards" / "profitstream.yml")
    dashboards = provider["providers"][0]["options"]["path"]
    assert ROOT / mounts[dashboards] == OUT.parent
    source = _yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")["datasources"][0]
    assert {"type": source["type"], "uid": source["uid"]} == DATASOURCE
    assert source["url"] == "http://prometheus:9090"
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards}/{OUT.name}"


def test_kafka_is_the_version_and_configuration_the_tests_run(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>(.+)</kafka.version>", pom)
    assert version is not None
    assert kafka["image"] == f"apache/kafka:{version.group(1)}"
    ours = {k.removeprefix("KAFKA_").lower().replace("_", "."): str(v)
            for k, v in kafka["environment"].items()}  # fmt: skip
    tests = dict(line.split("=", 1) for line in
                 _server_properties(Path("/tmp"), 1, 2).splitlines() if line)  # fmt: skip
    # Addresses, paths and partition counts are the host's; every other setting is shared.
    local = {"controller.quorum.voters", "listeners", "advertised.listeners", "log.dirs",
             "num.partitions", "offsets.topic.num.partitions",
             "transaction.state.log.num.partitions"}  # fmt: skip
    shared = {k: v for k, v in tests.items() if k not in local}
    assert {k: ours.get(k) for k in shared} == shared
