"""Topic administration before the worker starts: the plan (pure) and the real broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete
from aiokafka.structs import TopicPartition

from models_store.control.fold import ControlFold
from models_store.control.signing import Keyring
from models_store.scoring.scorer import Scorer
from streams.app import create_app
from streams.cli.worker import app_topics, leader_topic_name
from streams.control.active_models import ActiveModels
from streams.control.log import ControlLog
from streams.errors import ProfitstreamError
from streams.kafka.topic_admin import (
    ExistingTopic,
    TopicAdmin,
    TopicSpec,
    changelog_topic,
    config_entries,
    describe_metadata,
    ensure_topics,
    leaderless,
    plan_topics,
    product_topics,
)
from streams.kafka.topics import declare_topics
from streams.settings import Settings, TopicNames
from tests.services.cli import assert_one_line_error, run_cli

BOOTSTRAP = "broker:9092"


def _settings(**extra: object) -> Settings:
    return Settings.model_validate({"app_id": "app", **extra})


def _specs(settings: Settings | None = None) -> list[TopicSpec]:
    settings = settings or _settings()
    return [*product_topics(settings), changelog_topic("app-client-state-changelog", 8, settings)]


def _as_created(spec: TopicSpec, **change: object) -> ExistingTopic:
    """``spec`` as a broker that applied every config describes it, with ``change``."""
    configs = {
        "cleanup.policy": "delete",
        "retention.ms": "604800000",
        "retention.bytes": "-1",
        "min.insync.replicas": "1",
        **spec.configs,
    }
    partitions = int(str(change.pop("partitions", spec.partitions)))
    replicas = int(str(change.pop("replication_factor", spec.replication_factor)))
    configs |= {key.replace("_", "."): str(value) for key, value in change.items()}
    return ExistingTopic(spec.name, partitions, replicas, configs)


def _existing(specs: list[TopicSpec], **changes: Mapping[str, object]) -> dict[str, ExistingTopic]:
    """Every spec as created, but for ``changes`` keyed by topic name."""
    return {s.name: _as_created(s, **changes.get(s.name, {})) for s in specs}


def test_the_topics_of_design_md_with_their_configs() -> None:
    specs = {s.name: s for s in _specs(_settings(topic_min_insync_replicas=2))}
    names = TopicNames()
    assert specs[names.control].partitions == 1
    assert specs[names.control].configs == {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "min.insync.replicas": "2",
    }
    assert specs[names.audit].partitions == 1
    assert specs[names.audit].configs["retention.ms"] == "-1"
    assert specs[names.activity].partitions == specs[names.billing].partitions == 8
    # Compacted by default: each client's latest prediction stays, whatever its age.
    assert specs[names.predictions].configs == {
        "cleanup.policy": "compact",
        "min.insync.replicas": "2",
    }
    assert specs[names.shadow].configs["retention.ms"] == "604800000"
    assert specs["app-client-state-changelog"].configs["cleanup.policy"] == "compact"
    timed = {s.name: s for s in _specs(_settings(predictions_compacted=False))}
    assert timed[names.predictions].configs == {
        "cleanup.policy": "delete",
        "retention.ms": "604800000",
    }


def test_the_app_topics_carry_the_names_faust_gives_them(tmp_path: Path) -> None:
    settings = _settings(data_dir=tmp_path)
    app = create_app(settings, ["127.0.0.1:1"], "redis://127.0.0.1:1/0")
    names = {spec.name: spec for spec in app_topics(app, settings)}
    assert names["app-client-state-changelog"].role == "changelog"
    assert names["app-client-state-changelog"].partitions == 8
    assigner: Any = app._leader_assignor  # its topic name is not part of LeaderAssignorT
    assert leader_topic_name(app) == assigner._leader_topic_name
    assert names[leader_topic_name(app)].partitions == 1
    # Faust's own declarations carry what the worker creates.
    declared = declare_topics(faust.App("other", autodiscover=False), settings)
    for topic in declared.all():
        spec = names[topic.get_topic_name()]
        assert (topic.partitions, topic.replicas) == (spec.partitions, spec.replication_factor)
        assert topic.config == spec.configs


def test_nothing_exists_so_everything_is_created_without_findings() -> None:
    plan = plan_topics(_specs(), {}, BOOTSTRAP)
    assert [s.name for s in plan.create] == [s.name for s in _specs()]
    assert plan.findings == ()


def test_everything_as_created_is_fine() -> None:
    plan = plan_topics(_specs(), _existing(_specs()), BOOTSTRAP)
    assert plan.create == ()
    assert plan.findings == ()
    assert plan.unchecked == ()


def test_a_control_log_with_a_finite_retention_is_an_error_with_the_fix() -> None:
    control = TopicNames().control
    existing = _existing(_specs(), **{control: {"retention_ms": 604800000}})
    plan = plan_topics(_specs(), existing, BOOTSTRAP)
    assert plan.errors == [
        f"topic {control} has retention.ms=604800000: the control log must be kept forever "
        "(every worker folds it from offset 0); run `kafka-configs.sh --bootstrap-server "
        f"{BOOTSTRAP} --alter --entity-type topics --entity-name {control} --add-config "
        "cleanup.policy=delete,retention.ms=-1,retention.bytes=-1`"
    ]


def test_a_compacted_or_size_bounded_control_log_is_an_error() -> None:
    control = TopicNames().control
    for change, fragment in (
        ({"cleanup_policy": "compact"}, "cleanup.policy=compact: compaction drops commands"),
        ({"retention_bytes": 1 << 30}, "retention.bytes=1073741824"),
    ):
        plan = plan_topics(_specs(), _existing(_specs(), **{control: change}), BOOTSTRAP)
        assert len(plan.errors) == 1, plan
        assert fragment in plan.errors[0]


def test_control_and_audit_need_exactly_one_partition() -> None:
    names = TopicNames()
    existing = _existing(_specs(), **{names.control: {"partitions": 3},
                                      names.audit: {"partitions": 2}})  # fmt: skip
    errors = plan_topics(_specs(), existing, BOOTSTRAP).errors
    assert len(errors) == 2
    assert errors[0].startswith(f"topic {names.control} has 3 partitions: the control log needs")
    assert "PROFITSTREAM_TOPICS__AUDIT" in errors[1]


def test_input_topics_must_be_co_partitioned() -> None:
    names = TopicNames()
    existing = _existing(_specs(), **{names.billing: {"partitions": 4}})
    errors = plan_topics(_specs(), existing, BOOTSTRAP).errors
    assert len(errors) == 1
    assert f"{names.activity} has 8, {names.billing} has 4" in errors[0]
    assert "--partitions 8" in errors[0]


def test_inputs_with_other_partitions_than_the_table_name_the_setting() -> None:
    names = TopicNames()
    specs = _specs()
    only_inputs = {
        name: ExistingTopic(name, 4, 1, {"retention.ms": "604800000"})
        for name in (names.activity, names.billing)
    }
    plan = plan_topics(specs, only_inputs, BOOTSTRAP)
    assert len(plan.errors) == 2
    assert all(e.endswith("set PROFITSTREAM_TOPIC_PARTITIONS=4") for e in plan.errors)


def test_a_changelog_that_is_not_compacted_is_an_error() -> None:
    plan = plan_topics(
        _specs(), _existing(_specs(), **{"app-client-state-changelog": {
            "cleanup_policy": "delete"}}), BOOTSTRAP,
    )  # fmt: skip
    assert len(plan.errors) == 1
    assert "--add-config cleanup.policy=compact`" in plan.errors[0]


def test_a_predictions_topic_compacted_otherwise_than_configured_is_a_warning() -> None:
    predictions = TopicNames().predictions
    fix = (
        f"run `kafka-configs.sh --bootstrap-server {BOOTSTRAP} --alter --entity-type topics "
        f"--entity-name {predictions} --add-config"
    )
    for policy in ("delete", "compact,delete"):
        existing = _existing(_specs(), **{predictions: {"cleanup_policy": policy}})
        plan = plan_topics(_specs(), existing, BOOTSTRAP)
        assert plan.errors == []  # the worker runs; subscribers get another picture
        assert [f.message for f in plan.findings] == [
            f"topic {predictions} has cleanup.policy={policy}, but "
            "PROFITSTREAM_PREDICTIONS_COMPACTED is true (compaction only keeps each client's "
            f"latest prediction for new subscribers, whatever its age); {fix} "
            "cleanup.policy=compact` or set PROFITSTREAM_PREDICTIONS_COMPACTED=false"
        ]
    timed = _specs(_settings(predictions_compacted=False))
    plan = plan_topics(timed, _existing(timed, **{predictions: {"cleanup_policy": "compact"}}),
                       BOOTSTRAP)  # fmt: skip
    assert [f.message for f in plan.findings] == [
        f"topic {predictions} has cleanup.policy=compact, but "
        "PROFITSTREAM_PREDICTIONS_COMPACTED is false (predictions are deleted after "
        f"retention.ms=604800000 instead); {fix} cleanup.policy=delete,retention.ms=604800000` "
        "or set PROFITSTREAM_PREDICTIONS_COMPACTED=true"
    ]
    # Compacted as configured: its retention.ms (which the broker ignores) is not checked.
    compacted = _existing(_specs(), **{predictions: {"retention_ms": 1000}})
    assert plan_topics(_specs(), compacted, BOOTSTRAP).findings == ()
    # A broker that reports no cleanup.policy (Tansu, for a topic it auto-created).
    bare = {**_existing(_specs()), predictions: ExistingTopic(predictions, 8, 1, {})}
    plan = plan_topics(_specs(), bare, BOOTSTRAP)
    assert (plan.findings, plan.unchecked) == ((), (predictions,))


def test_durability_and_retention_below_the_settings_are_warnings() -> None:
    settings = _settings(topic_replication_factor=3, topic_min_insync_replicas=2)
    specs = _specs(settings)
    names = TopicNames()
    existing = _existing(
        specs,
        **{
            names.predictions: {"replication_factor": 1, "min_insync_replicas": 1},
            names.dlq: {"retention_ms": 86_400_000},
            names.audit: {"retention_ms": 604800000},
        },
    )
    plan = plan_topics(specs, existing, BOOTSTRAP)
    assert plan.errors == []
    messages = [f.message for f in plan.findings]
    assert len(messages) == 4, messages
    assert "replication factor 1, below PROFITSTREAM_TOPIC_REPLICATION_FACTOR=3" in messages[0]
    assert "min.insync.replicas=1, below PROFITSTREAM_TOPIC_MIN_INSYNC_REPLICAS=2" in messages[1]
    assert "PROFITSTREAM_AUDIT_RETENTION_MS is -1" in messages[2]
    assert f"{names.dlq} has retention.ms=86400000" in messages[3]


def test_configs_the_broker_does_not_report_are_not_checked() -> None:
    specs = _specs()
    bare = {s.name: ExistingTopic(s.name, s.partitions, 1, {}) for s in specs}
    plan = plan_topics(specs, bare, BOOTSTRAP)
    assert plan.findings == ()
    assert set(plan.unchecked) == {s.name for s in specs}


def test_responses_are_read_as_the_broker_sends_them() -> None:
    metadata = [
        {"error_code": 0, "topic": "a", "partitions": [
            {"partition": 0, "leader": 1, "replicas": [1, 2]},
            {"partition": 1, "leader": -1, "replicas": [2]}]},
        {"error_code": 3, "topic": "gone", "partitions": []},
    ]  # fmt: skip
    assert describe_metadata(metadata) == {"a": ExistingTopic("a", 2, 1)}
    assert leaderless(metadata, {"a", "b"}) == {"a", "b"}
    described = {"resources": [
        {"error_code": 0, "resource_name": "a", "config_entries": [
            {"config_names": "retention.ms", "config_value": "-1"},
            {"config_names": "segment.ms", "config_value": None}]},
        {"error_code": 3, "resource_name": "b", "config_entries": []},
    ]}  # fmt: skip
    assert config_entries(described) == {"a": {"retention.ms": "-1"}}


def _no_model(ref: str) -> Scorer:
    raise AssertionError(f"no model is loaded here ({ref})")


# --- against the live broker -----------------------------------------------------------------


def _broker_specs(unique: str, partitions: int = 4, **extra: object) -> list[TopicSpec]:
    settings = _settings(
        app_id=unique,
        topic_partitions=partitions,
        topics={name: f"{unique}-{name}" for name in TopicNames.model_fields},
        **extra,
    )
    return [
        *product_topics(settings),
        changelog_topic(f"{unique}-client-state-changelog", partitions, settings),
    ]


def _create_topic(bootstrap: str, topic: NewTopic) -> None:
    """Create ``topic`` and wait until the broker's metadata shows it, as an old topic is."""

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([topic])
        finally:
            await admin.close()
        async with TopicAdmin([bootstrap], {}) as waiting:
            await waiting.wait_for_leaders({topic.name}, timeout_s=30)

    asyncio.run(create())


async def _describe(bootstrap: str, names: list[str]) -> dict[str, ExistingTopic]:
    async with TopicAdmin([bootstrap], {}) as admin:
        return await admin.describe(names)


def test_the_worker_creates_every_topic_with_its_configs_once(
    kafka_bootstrap: str, unique: str
) -> None:
    specs = _broker_specs(unique)
    first = asyncio.run(ensure_topics(specs, [kafka_bootstrap], {}))
    assert {s.name for s in first.create} == {s.name for s in specs}
    assert first.findings == ()
    assert first.unchecked == ()  # the broker reports what the topics were created with

    described = asyncio.run(_describe(kafka_bootstrap, [s.name for s in specs]))
    for spec in specs:
        assert described[spec.name].partitions == spec.partitions
        for key, value in spec.configs.items():
            assert described[spec.name].configs[key] == value, (spec.name, key)

    again = asyncio.run(ensure_topics(specs, [kafka_bootstrap], {}))
    assert again.create == ()
    assert again.findings == ()


def test_a_predictions_topic_with_the_other_cleanup_policy_is_reported_not_refused(
    kafka_bootstrap: str, unique: str
) -> None:
    """Made by hand before the worker with delete retention (as before compaction was the
    default), or compacted while compaction is off: a warning naming the fix, and the
    worker creates the rest and goes on."""
    for compacted, created, fix in (
        (
            True,
            {"cleanup.policy": "delete", "retention.ms": "604800000"},
            "cleanup.policy=compact`",
        ),
        (False, {"cleanup.policy": "compact"}, "cleanup.policy=delete,retention.ms=604800000`"),
    ):
        specs = _broker_specs(f"{unique}{int(compacted)}", predictions_compacted=compacted)
        predictions = next(s for s in specs if s.role == "predictions")
        _create_topic(kafka_bootstrap, NewTopic(predictions.name, 4, 1, topic_configs=created))
        plan = asyncio.run(ensure_topics(specs, [kafka_bootstrap], {}))
        assert {s.name for s in plan.create} == {s.name for s in specs} - {predictions.name}
        (finding,) = plan.findings
        assert finding.severity == "warning"
        assert finding.message.startswith(
            f"topic {predictions.name} has cleanup.policy={created['cleanup.policy']}, but "
            f"PROFITSTREAM_PREDICTIONS_COMPACTED is {str(compacted).lower()}"
        ), finding.message
        assert finding.message.endswith(
            f"{fix} or set PROFITSTREAM_PREDICTIONS_COMPACTED={str(not compacted).lower()}"
        ), finding.message


def test_a_control_topic_kept_for_a_week_stops_the_worker_before_it_creates_anything(
    kafka_bootstrap: str, unique: str
) -> None:
    specs = _broker_specs(unique)
    control = next(s for s in specs if s.role == "control")

    week = {"cleanup.policy": "delete", "retention.ms": "604800000"}
    _create_topic(kafka_bootstrap, NewTopic(control.name, 1, 1, topic_configs=week))
    with pytest.raises(ProfitstreamError) as raised:
        asyncio.run(ensure_topics(specs, [kafka_bootstrap], {}))
    message = str(raised.value)
    assert message.startswith(f"topic {control.name} has retention.ms=604800000")
    assert "--add-config cleanup.policy=delete,retention.ms=-1,retention.bytes=-1`" in message
    assert set(asyncio.run(_describe(kafka_bootstrap, [s.name for s in specs]))) == {control.name}


def test_the_worker_refuses_a_control_topic_with_two_partitions_in_one_line(
    kafka_bootstrap: str, worker_env: dict[str, str]
) -> None:
    control = worker_env["PROFITSTREAM_TOPICS__CONTROL"]

    _create_topic(kafka_bootstrap, NewTopic(control, 2, 1))
    result = run_cli("worker", env=worker_env)
    assert_one_line_error(result, f"topic {control} has 2 partitions", "needs exactly 1")


def test_a_control_log_whose_head_was_deleted_says_so_instead_of_waiting_forever(
    kafka_bootstrap: str, unique: str
) -> None:
    topic = f"{unique}-control"

    async def scenario() -> tuple[int, ControlLog]:
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
        await producer.start()
        try:
            forever = {"retention.ms": "-1", "retention.bytes": "-1"}
            await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=forever)])
            for n in range(3):
                await producer.send_and_wait(topic, json.dumps({"n": n}).encode(), partition=0)
            # What retention does to the head of the log.
            await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(2)})
        except Exception as exc:  # the broker may not implement DeleteRecords
            pytest.skip(f"the broker cannot delete records: {exc!r}")
        finally:
            await producer.stop()
            await admin.close()
        control = ControlLog(
            topic, ControlFold(Keyring({})), {"bootstrap_servers": kafka_bootstrap}
        )
        await asyncio.wait_for(control.run(), 30)  # returns: nothing it could fold
        return 2, control

    beginning, control = asyncio.run(scenario())
    assert control.problem is not None
    assert control.problem.startswith(
        f"the control log {topic} starts at offset {beginning}: its head was deleted"
    )
    assert not control.caught_up.is_set()
    models = ActiveModels(control, _no_model)
    assert models.waiting_for() == control.problem
