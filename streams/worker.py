"""`profitstream worker`: check the addresses, then run the Faust worker until it is stopped."""

from __future__ import annotations

from pathlib import Path

import faust

from streams.active_models import registry_loader
from streams.app import create_app
from streams.endpoints import kafka_bootstrap, redis_url
from streams.errors import ProfitstreamError
from streams.preflight import check_kafka, check_redis
from streams.settings import Settings
from streams.stack.processes import require_free_port


def run_worker(settings: Settings) -> None:
    """Run one worker in the foreground; SIGTERM/SIGINT stop it cleanly."""
    bootstrap = kafka_bootstrap(settings)
    url = redis_url(settings)
    check_kafka(bootstrap, settings.security)
    check_redis(url)
    require_free_port(
        settings.web_host,
        settings.web_port,
        "the worker's web server",
        "pass --web-port or set PROFITSTREAM_WEB_PORT",
    )
    # The model is fetched, verified and loaded before the worker starts: /ready (table
    # recovery done) then also means the model is in memory.
    scorer = registry_loader(settings)(settings.model) if settings.model else None
    app = create_app(settings, bootstrap, url, scorer)
    datadir = Path(app.conf.datadir)
    try:
        datadir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProfitstreamError(
            f"cannot create the data dir {datadir}: {exc.strerror}; "
            "set PROFITSTREAM_DATA_DIR to a writable directory"
        ) from exc
    worker = faust.Worker(app, loglevel=settings.log_level)
    worker.execute_from_commandline()
