"""Where the broker and Redis are: the configured address, else the running embedded stack."""

from __future__ import annotations

from streams.errors import ProfitstreamError
from streams.settings import Settings, parse_broker_list
from streams.stack.embedded import running_url


def kafka_bootstrap(settings: Settings) -> list[str]:
    """``host:port`` of every bootstrap broker."""
    url = settings.broker or running_url(settings.stack_dir, "kafka")
    if url is None:
        raise ProfitstreamError(
            "no Kafka broker configured and no embedded stack running under "
            f"{settings.data_dir}; run `profitstream stack up` or set "
            "PROFITSTREAM_BROKER=kafka://host:port"
        )
    return parse_broker_list(url)


def redis_url(settings: Settings) -> str:
    """The Redis URL of the online store."""
    url = settings.redis_url or running_url(settings.stack_dir, "redis")
    if url is None:
        raise ProfitstreamError(
            "no Redis configured and no embedded stack running under "
            f"{settings.data_dir}; run `profitstream stack up` or set "
            "PROFITSTREAM_REDIS_URL=redis://host:port/0"
        )
    return url
