"""The Faust app, built from settings: topics, tables, agents and views wired together."""

from __future__ import annotations

from typing import Any

import faust

from features.online_store import redis_client
from models_store.control.fold import ControlFold
from models_store.control.signing import Keyring, Principal, load_keyring
from models_store.monitoring.accuracy import AccuracyBook
from models_store.monitoring.book import DriftBook
from models_store.scoring.emission import EmissionPolicy
from models_store.scoring.scorer import Scorer
from streams.control.accuracy_reports import AccuracyReports
from streams.control.active_models import ActiveModels, registry_loader
from streams.control.audit_trail import register_audit_trail
from streams.control.drift_reports import DriftReports
from streams.control.experiment_monitor import ExperimentMonitor
from streams.control.health_reports import HealthReports
from streams.control.log import ControlLog
from streams.control.seed import ControlSeed
from streams.errors import ProfitstreamError
from streams.kafka import commit_guard
from streams.kafka.faust_logging import quiet_malformed_requests, quiet_paused_inputs
from streams.kafka.gap_reader import GapReader
from streams.kafka.preflight import aiokafka_security_kwargs
from streams.kafka.topics import declare_topics
from streams.pipeline.agents import register_agents
from streams.pipeline.batch import BatchProcessor
from streams.pipeline.client_table import declare_client_table
from streams.pipeline.input_reader import InputReader
from streams.pipeline.mirror_rebuild import MirrorKeeper
from streams.pipeline.scoring_stage import ScoringStage
from streams.pipeline.waiting_store import WaitingStore
from streams.settings import KafkaSecurity, Settings
from streams.views import register_views
from streams.worker_health import WorkerHealth


def broker_credentials(
    security: KafkaSecurity,
) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """Faust credentials for the configured SASL/TLS options (``None`` for plaintext)."""
    context = security.ssl_context()
    if security.protocol.startswith("SASL"):
        password = security.sasl_password.get_secret_value() if security.sasl_password else None
        return faust.SASLCredentials(
            username=security.sasl_username,
            password=password,
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def monitor_principal(settings: Settings, keyring: Keyring) -> Principal | None:
    """Who the experiment monitor signs as (None: it only publishes results)."""
    name = settings.control_monitor_principal
    if name is None:
        return None
    principal = keyring.get(name)
    if principal is None:
        raise ProfitstreamError(
            f"PROFITSTREAM_CONTROL_MONITOR_PRINCIPAL={name} is not in the control keys "
            f"({settings.control_keys}); add it with `profitstream control keygen {name} "
            "--role admin --keys FILE`"
        )
    return principal


def create_app(
    settings: Settings, bootstrap: list[str], redis_url: str, scorer: Scorer | None = None
) -> faust.App:
    """A Faust app for ``settings`` on the given broker and Redis. ``scorer`` (the verified,
    loaded ``PROFITSTREAM_MODEL``) is the champion until the control log deploys another."""
    commit_guard.install()
    quiet_paused_inputs((settings.topics.activity, settings.topics.billing))
    quiet_malformed_requests()
    session_timeout = settings.broker_session_timeout_s
    options: dict[str, Any] = {
        "broker": [f"kafka://{server}" for server in bootstrap],
        "broker_credentials": broker_credentials(settings.security),
        "store": "rocksdb://",
        # Keyed by app id: two apps must never share RocksDB files.
        "datadir": str(settings.data_dir / "faust" / settings.app_id),
        "topic_partitions": settings.topic_partitions,
        "processing_guarantee": settings.processing_guarantee,
        "web_host": settings.web_host,
        "web_bind": settings.web_host,
        "web_port": settings.web_port,
        "broker_session_timeout": session_timeout,
        # Faust insists on a heartbeat well inside the session timeout.
        "broker_heartbeat_interval": min(3.0, session_timeout / 4),
        "autodiscover": False,
        # Tansu under-reports a changelog's end after a multi-record batch, so a standby that
        # read to the true end fails this check when it takes over (ConsistencyError). What the
        # check guards against, a changelog that lost what the local state holds, is checked
        # before the worker starts instead (streams/pipeline/data_dir.py).
        "recovery_consistency_check": False,
    }
    app = faust.App(settings.app_id, **options)
    topics = declare_topics(app, settings)
    states = declare_client_table(app, settings.topic_partitions)
    # One picture of the worker's health: written by the reader, the store, the mirror keeper.
    worker_health = WorkerHealth()
    store = WaitingStore(
        redis_client(redis_url), settings.app_id, worker_health, settings.retry_backoff_max_s
    )
    consumer_options = {
        "bootstrap_servers": bootstrap,
        **aiokafka_security_kwargs(settings.security),
    }
    gaps = GapReader(consumer_options)

    async def close_clients(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        await store.close()
        await gaps.close()
        scoring.close()

    app.on_before_shutdown.connect(close_clients)

    keyring = load_keyring(settings.control_keys) if settings.control_keys else Keyring({})
    fold = ControlFold(
        keyring, max_age_s=settings.control_max_age_s, max_skew_s=settings.control_max_skew_s
    )
    control = ControlLog(settings.topics.control, fold, consumer_options)
    seed = None
    if scorer is not None:
        seed = ControlSeed(control, topics.control, scorer.ref, settings.worker_id).run
    models = ActiveModels(control, registry_loader(settings), seed)
    if scorer is not None:
        models.keep(scorer)

    async def fold_control_log() -> None:
        await control.run()

    async def follow_deployments() -> None:
        await models.run()

    app.task(fold_control_log)
    app.task(follow_deployments)

    policy = EmissionPolicy(settings.prediction_delta, settings.prediction_heartbeat_s)
    accuracy = AccuracyBook(settings.accuracy_window_outcomes, settings.accuracy_estimate_span_s)
    drift = DriftBook(settings.drift_window_days) if settings.drift_monitoring else None
    scoring = ScoringStage(policy, accuracy, drift)
    pipeline = BatchProcessor(settings, topics, states, store, gaps, models, scoring)
    mirror = MirrorKeeper(
        settings, states, store, worker_health, consumer_options, pipeline.worker_id
    )
    store.on_reconnect.append(mirror.wake)

    async def keep_mirror() -> None:
        await mirror.watch()

    app.task(keep_mirror)
    reader = InputReader(app, settings, pipeline, models, consumer_options, worker_health, mirror)
    register_agents(app, settings, pipeline, reader)
    register_audit_trail(app, topics, control)
    health = HealthReports(scoring.health, topics.monitoring, pipeline.worker_id)
    signer = monitor_principal(settings, keyring)
    monitor = ExperimentMonitor(app, topics, control, consumer_options, signer, pipeline.worker_id)

    async def report_health() -> None:
        await health.run(settings.monitor_interval_s)

    async def monitor_experiments() -> None:
        await monitor.run(settings.monitor_interval_s)

    accuracy_reports = AccuracyReports(accuracy, topics.monitoring, health.incarnation)

    async def report_accuracy() -> None:
        await accuracy_reports.run(settings.monitor_interval_s)

    app.task(report_health)
    app.task(report_accuracy)
    app.task(monitor_experiments)
    if drift is not None:
        drift_reports = DriftReports(drift, topics.monitoring, pipeline.worker_id,
                                     min_rows=settings.drift_min_rows,
                                     top=settings.drift_top_features)  # fmt: skip

        async def report_drift() -> None:
            await drift_reports.run(settings.drift_interval_s)

        app.task(report_drift)
    token = settings.api_token.get_secret_value() if settings.api_token else None
    register_views(app, states, store, models, worker_health, token)
    return app
