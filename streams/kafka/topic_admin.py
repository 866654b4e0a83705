"""Create and check every topic of the worker before its consumer group forms.

A topic created while the group is forming is left out of the assignment until the next
metadata refresh (about 5 minutes on Apache Kafka), so ``run_worker`` creates the
missing ones here, waits until the broker reports a leader for each partition, and only
then starts Faust (which is told not to create topics itself: one owner, one set of
settings).

Planning is pure (``plan_topics``): from the desired ``TopicSpec``s and the broker's
description of the existing topics it returns what to create and the ``Finding``s, each
one line saying what is wrong and how to fix it. Errors stop the worker; warnings are
logged. A config the broker does not report (Tansu reports only the configs a topic was
created with) is not checked, and one INFO line says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from streams.errors import ProfitstreamError
from streams.settings import Settings

log = logging.getLogger(__name__)

# input: read by the worker (co-partitioned with the table); output: written by it;
# predictions: the output downstream services follow (compacted unless configured not to);
# control/audit: single-partition logs; changelog: a table's; internal: Faust's own.
Role = Literal["input", "output", "predictions", "control", "audit", "changelog", "internal"]
Severity = Literal["error", "warning"]

TOPIC_ALREADY_EXISTS = 36
FOREVER = "-1"


@dataclass(frozen=True)
class TopicSpec:
    """A topic as the worker wants it: created like this, checked against this."""

    name: str
    role: Role
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExistingTopic:
    """A topic as the broker describes it; ``configs`` holds only what the broker reported."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """Something wrong with an existing topic, in one line: what, and how to fix it."""

    severity: Severity
    message: str


@dataclass(frozen=True)
class TopicPlan:
    """What to create, what is wrong, and which topics' configs could not be checked."""

    create: tuple[TopicSpec, ...]
    findings: tuple[Finding, ...]
    unchecked: tuple[str, ...]

    @property
    def errors(self) -> list[str]:
        """The findings that stop the worker."""
        return [f.message for f in self.findings if f.severity == "error"]


def _configs(settings: Settings, configs: Mapping[str, str | int]) -> dict[str, str]:
    """Topic configs as the broker takes them (strings), with min.insync.replicas if set."""
    result = {key: str(value) for key, value in configs.items()}
    if settings.topic_min_insync_replicas is not None:
        result["min.insync.replicas"] = str(settings.topic_min_insync_replicas)
    return result


def product_topics(settings: Settings) -> list[TopicSpec]:
    """The topics of DESIGN.md with the configured names, partitions and configs."""
    names = settings.topics
    replicas = settings.topic_replication_factor
    partitions = settings.topic_partitions
    timed = _configs(
        settings, {"cleanup.policy": "delete", "retention.ms": settings.topic_retention_ms}
    )
    kept = {"cleanup.policy": "delete", "retention.bytes": FOREVER}

    def spec(name: str, role: Role, count: int, configs: dict[str, str]) -> TopicSpec:
        return TopicSpec(name, role, count, replicas, configs)

    control = _configs(settings, {**kept, "retention.ms": FOREVER})
    audit = _configs(settings, {**kept, "retention.ms": settings.audit_retention_ms})
    # Compacted, a new subscriber finds every client's latest prediction from offset 0,
    # however long the client has been quiet, and an erasure tombstone removes the client.
    # No retention.ms: under `compact` alone the broker deletes nothing by age.
    predictions = (
        _configs(settings, {"cleanup.policy": "compact"})
        if settings.predictions_compacted
        else timed
    )
    return [
        spec(names.activity, "input", partitions, timed),
        spec(names.billing, "input", partitions, timed),
        spec(names.predictions, "predictions", partitions, predictions),
        spec(names.shadow, "output", partitions, timed),
        # One partition (one order for every worker's fold), kept forever: every worker
        # folds it from offset 0, and compaction by key would drop commands the fold needs.
        spec(names.control, "control", 1, control),
        spec(names.audit, "audit", 1, audit),
        spec(names.monitoring, "output", partitions, timed),
        spec(names.dlq, "output", partitions, timed),
    ]


def changelog_topic(name: str, partitions: int, settings: Settings) -> TopicSpec:
    """A table's changelog: compacted (the latest value per key is the table)."""
    configs = _configs(settings, {"cleanup.policy": "compact"})
    return TopicSpec(name, "changelog", partitions, settings.topic_replication_factor, configs)


def internal_topic(name: str, settings: Settings) -> TopicSpec:
    """One of Faust's own single-partition topics (the assignor's leader topic)."""
    return TopicSpec(name, "internal", 1, settings.topic_replication_factor, _configs(settings, {}))


def _error(message: str) -> Finding:
    return Finding("error", message)


def _warning(message: str) -> Finding:
    return Finding("warning", message)


def _alter(bootstrap: str, topic: str, configs: str) -> str:
    return (
        f"run `kafka-configs.sh --bootstrap-server {bootstrap} --alter --entity-type topics "
        f"--entity-name {topic} --add-config {configs}`"
    )


def _single_partition_findings(spec: TopicSpec, topic: ExistingTopic) -> list[Finding]:
    if topic.partitions == 1:
        return []
    setting = f"PROFITSTREAM_TOPICS__{spec.role.upper()}"
    return [
        _error(
            f"topic {topic.name} has {topic.partitions} partitions: the {spec.role} log needs "
            f"exactly 1 (one order for every worker); point {setting} at a new topic "
            "(the worker creates it)"
        )
    ]


def _control_retention_findings(topic: ExistingTopic, bootstrap: str) -> list[Finding]:
    fix = _alter(bootstrap, topic.name, "cleanup.policy=delete,retention.ms=-1,retention.bytes=-1")
    found = []
    policy = topic.configs.get("cleanup.policy")
    if policy is not None and "compact" in policy:
        why = "compaction drops commands the control fold needs"
        found.append(_error(f"topic {topic.name} has cleanup.policy={policy}: {why}; {fix}"))
    for key in ("retention.ms", "retention.bytes"):
        value = topic.configs.get(key)
        if value is not None and value != FOREVER:
            why = "the control log must be kept forever (every worker folds it from offset 0)"
            found.append(_error(f"topic {topic.name} has {key}={value}: {why}; {fix}"))
    return found


def _co_partition_findings(
    specs: Sequence[TopicSpec], existing: Mapping[str, ExistingTopic], bootstrap: str
) -> list[Finding]:
    """Inputs and changelogs must all have the table's partitions (Faust co-partitions them)."""
    inputs = [existing[s.name] for s in specs if s.role == "input" and s.name in existing]
    counts = {t.partitions for t in inputs}
    if len(counts) > 1:
        shown = ", ".join(f"{t.name} has {t.partitions}" for t in inputs)
        most = max(counts)
        add = f"kafka-topics.sh --bootstrap-server {bootstrap} --alter --topic NAME"
        return [
            _error(
                "the input topics must have the same number of partitions (the table is "
                f"co-partitioned with them): {shown}; add partitions with `{add} --partitions "
                f"{most}` and set PROFITSTREAM_TOPIC_PARTITIONS={most}"
            )
        ]
    found = []
    for spec in specs:
        topic = existing.get(spec.name)
        if spec.role not in ("input", "changelog") or topic is None:
            continue
        if topic.partitions != spec.partitions:
            what = "input topic" if spec.role == "input" else "changelog"
            found.append(
                _error(
                    f"{what} {topic.name} has {topic.partitions} partitions, the table "
                    f"{spec.partitions} (PROFITSTREAM_TOPIC_PARTITIONS): "
                    f"set PROFITSTREAM_TOPIC_PARTITIONS={topic.partitions}"
                )
            )
    return found


def _changelog_findings(topic: ExistingTopic, bootstrap: str) -> list[Finding]:
    policy = topic.configs.get("cleanup.policy")
    if policy is None or "compact" in policy:
        return []
    why = "the table would lose every client whose last change is older than the retention"
    fix = _alter(bootstrap, topic.name, "cleanup.policy=compact")
    return [_error(f"changelog {topic.name} has cleanup.policy={policy}: {why}; {fix}")]


def _policies(value: str) -> set[str]:
    """The policies of a ``cleanup.policy`` value (``compact,delete``, ``[compact, delete]``)."""
    return {part.strip() for part in value.strip("[]").split(",") if part.strip()}


def _predictions_policy_findings(
    spec: TopicSpec, topic: ExistingTopic, bootstrap: str
) -> list[Finding]:
    """A warning when the predictions topic is not compacted as configured (or is, when
    compaction is off): the worker runs either way, subscribers get another picture."""
    wanted = spec.configs["cleanup.policy"]
    have = topic.configs.get("cleanup.policy")
    if have is None or _policies(have) == {wanted}:
        return []
    setting = "PROFITSTREAM_PREDICTIONS_COMPACTED"
    if wanted == "compact":
        why = (
            "compaction only keeps each client's latest prediction for new subscribers, "
            "whatever its age"
        )
        fix = _alter(bootstrap, topic.name, "cleanup.policy=compact")
        other = "false"
    else:
        retention = spec.configs["retention.ms"]
        why = f"predictions are deleted after retention.ms={retention} instead"
        fix = _alter(bootstrap, topic.name, f"cleanup.policy=delete,retention.ms={retention}")
        other = "true"
    shown = "true" if wanted == "compact" else "false"
    return [
        _warning(
            f"topic {topic.name} has cleanup.policy={have}, but {setting} is {shown} ({why}); "
            f"{fix} or set {setting}={other}"
        )
    ]


def _setting_findings(spec: TopicSpec, topic: ExistingTopic, bootstrap: str) -> list[Finding]:
    """Warnings: durability below the settings, a retention other than configured."""
    found = []
    if topic.replication_factor < spec.replication_factor:
        found.append(
            _warning(
                f"topic {topic.name} has replication factor {topic.replication_factor}, below "
                f"PROFITSTREAM_TOPIC_REPLICATION_FACTOR={spec.replication_factor}; raise it "
                "with kafka-reassign-partitions.sh"
            )
        )
    wanted = spec.configs.get("min.insync.replicas")
    have = topic.configs.get("min.insync.replicas")
    if wanted is not None and have is not None and int(have) < int(wanted):
        fix = _alter(bootstrap, topic.name, f"min.insync.replicas={wanted}")
        setting = f"PROFITSTREAM_TOPIC_MIN_INSYNC_REPLICAS={wanted}"
        found.append(
            _warning(f"topic {topic.name} has min.insync.replicas={have}, below {setting}; {fix}")
        )
    # A compacted predictions topic has no retention.ms to check (the broker ignores it).
    if spec.role in ("input", "output", "predictions", "audit") and "retention.ms" in spec.configs:
        wanted = spec.configs["retention.ms"]
        have = topic.configs.get("retention.ms")
        if have is not None and have != wanted:
            setting = "PROFITSTREAM_" + (
                "AUDIT_RETENTION_MS" if spec.role == "audit" else "TOPIC_RETENTION_MS"
            )
            fix = _alter(bootstrap, topic.name, f"retention.ms={wanted}")
            found.append(
                _warning(
                    f"topic {topic.name} has retention.ms={have}, {setting} is {wanted}; "
                    f"{fix} or set {setting}={have}"
                )
            )
    return found


# The configs each role's checks read: a topic missing any of them is reported unchecked.
CHECKED_CONFIGS: dict[Role, tuple[str, ...]] = {
    "input": ("retention.ms",),
    "output": ("retention.ms",),
    "predictions": ("cleanup.policy",),
    "control": ("cleanup.policy", "retention.ms", "retention.bytes"),
    "audit": ("retention.ms",),
    "changelog": ("cleanup.policy",),
    "internal": (),
}


def checked_configs(spec: TopicSpec) -> tuple[str, ...]:
    """The configs the checks of ``spec`` read (a timed predictions topic: its retention too)."""
    if spec.role == "predictions" and "retention.ms" in spec.configs:
        return ("cleanup.policy", "retention.ms")
    return CHECKED_CONFIGS[spec.role]


def plan_topics(
    specs: Sequence[TopicSpec], existing: Mapping[str, ExistingTopic], bootstrap: str
) -> TopicPlan:
    """What to create and what is wrong, from the desired and the existing topics."""
    create = tuple(spec for spec in specs if spec.name not in existing)
    findings = _co_partition_findings(specs, existing, bootstrap)
    unchecked = []
    for spec in specs:
        topic = existing.get(spec.name)
        if topic is None:
            continue
        if spec.role in ("control", "audit"):
            findings += _single_partition_findings(spec, topic)
        if spec.role == "control":
            findings += _control_retention_findings(topic, bootstrap)
        if spec.role == "changelog":
            findings += _changelog_findings(topic, bootstrap)
        if spec.role == "predictions":
            findings += _predictions_policy_findings(spec, topic, bootstrap)
        findings += _setting_findings(spec, topic, bootstrap)
        if any(key not in topic.configs for key in checked_configs(spec)):
            unchecked.append(spec.name)
    return TopicPlan(create, tuple(findings), tuple(unchecked))


def describe_metadata(topics: Iterable[Mapping[str, Any]]) -> dict[str, ExistingTopic]:
    """Existing topics (without configs) from a metadata response's topic entries."""
    result = {}
    for entry in topics:
        partitions = entry.get("partitions") or []
        if entry.get("error_code", 0) != 0 or not partitions:
            continue
        replicas = min(len(p.get("replicas") or []) for p in partitions)
        result[entry["topic"]] = ExistingTopic(entry["topic"], len(partitions), replicas)
    return result


def leaderless(topics: Iterable[Mapping[str, Any]], names: set[str]) -> set[str]:
    """Which of ``names`` the metadata does not show yet with a leader for every partition."""
    ready = {
        entry["topic"]
        for entry in topics
        if entry.get("error_code", 0) == 0
        and entry.get("partitions")
        and all(p.get("leader", -1) >= 0 for p in entry["partitions"])
    }
    return names - ready


def config_entries(response: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Topic name -> reported configs, from a DescribeConfigs response (as an object)."""
    result: dict[str, dict[str, str]] = {}
    for resource in response.get("resources", []):
        if resource.get("error_code", 0) != 0:
            continue
        entries = resource.get("config_entries") or []
        result[resource["resource_name"]] = {
            str(e.get("config_names", e.get("config_name"))): str(e["config_value"])
            for e in entries
            if e.get("config_value") is not None
        }
    return result


class TopicAdmin:
    """The broker side: describe, create, wait for leaders (one admin client)."""

    def __init__(self, bootstrap: list[str], options: dict[str, Any]) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
        self.bootstrap = ",".join(bootstrap)

    async def __aenter__(self) -> TopicAdmin:
        await self._admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._admin.close()

    async def _metadata(self) -> list[dict[str, Any]]:
        # All topics: a request naming a missing topic makes Tansu create it (4 partitions).
        return list(await self._admin.describe_topics())

    async def describe(self, names: Iterable[str]) -> dict[str, ExistingTopic]:
        """The existing ones among ``names``, with the configs the broker reports."""
        wanted = set(names)
        found = {n: t for n, t in describe_metadata(await self._metadata()).items() if n in wanted}
        if not found:
            return {}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in sorted(found)]
        try:
            responses = await self._admin.describe_configs(resources)
        except KafkaError as exc:
            log.info("the broker does not describe topic configs (%s)", exc)
            return found
        configs: dict[str, dict[str, str]] = {}
        for response in responses:
            configs |= config_entries(response.to_object())
        return {
            name: ExistingTopic(t.name, t.partitions, t.replication_factor, configs.get(name, {}))
            for name, t in found.items()
        }

    async def create(self, specs: Sequence[TopicSpec]) -> None:
        """Create ``specs``; one that another worker created meanwhile is fine."""
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.configs))
            for s in specs
        ]
        response = await self._admin.create_topics(new)
        for name, code, message in response.topic_errors:
            if code not in (0, TOPIC_ALREADY_EXISTS):
                spec = next(s for s in specs if s.name == name)
                raise ProfitstreamError(
                    f"cannot create topic {name} ({spec.partitions} partitions, replication "
                    f"factor {spec.replication_factor}, {_shown(spec.configs)}): error {code} "
                    f"{message or ''}; create it by hand or check "
                    "PROFITSTREAM_TOPIC_REPLICATION_FACTOR / PROFITSTREAM_TOPIC_MIN_INSYNC_REPLICAS"
                )

    async def wait_for_leaders(self, names: set[str], timeout_s: float) -> None:
        """Until the metadata shows every partition of ``names`` with a leader."""
        deadline = time.monotonic() + timeout_s
        while missing := leaderless(await self._metadata(), names):
            if time.monotonic() > deadline:
                raise ProfitstreamError(
                    f"the broker at {self.bootstrap} created {', '.join(sorted(missing))} but "
                    f"reports no leader for them after {timeout_s:.0f}s; check the broker's log"
                )
            await asyncio.sleep(0.1)


def _shown(configs: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(configs.items())) or "broker defaults"


def report(plan: TopicPlan) -> None:
    """Raise the errors as one line; else log the warnings and what went unchecked."""
    if plan.errors:
        raise ProfitstreamError(" | ".join(plan.errors))
    for finding in plan.findings:
        log.warning("%s", finding.message)
    if plan.unchecked:
        shown = ", ".join(plan.unchecked)
        log.info("the broker does not report the configs of %s: not checked", shown)


async def ensure_topics(
    specs: Sequence[TopicSpec],
    bootstrap: list[str],
    options: dict[str, Any],
    timeout_s: float = 30.0,
) -> TopicPlan:
    """Create the missing topics, wait for their leaders, check them all; return the final
    plan (``create`` lists what this call created). Raises ``ProfitstreamError`` on errors."""
    names = [spec.name for spec in specs]
    async with TopicAdmin(bootstrap, options) as admin:
        before = plan_topics(specs, await admin.describe(names), admin.bootstrap)
        if before.errors:
            report(before)  # before creating anything: a wrong setup stays as it was
        if before.create:
            await admin.create(before.create)
            await admin.wait_for_leaders({s.name for s in before.create}, timeout_s)
            log.info("created topic(s) %s", ", ".join(s.name for s in before.create))
            after = plan_topics(specs, await admin.describe(names), admin.bootstrap)
        else:
            after = before
    report(after)
    return TopicPlan(before.create, after.findings, after.unchecked)
