"""Checks run before a worker starts, so a bad address fails in one clear line, not a traceback."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError

from streams.errors import ProfitstreamError
from streams.settings import KafkaSecurity, mask_url_password

# What a group-less consumer may fetch of one partition at a time: more than the largest
# record a broker takes by default (message.max.bytes, about 1 MiB), so that an oversized
# record is read, and dead-lettered, instead of leaving its reader stuck in front of it.
MAX_PARTITION_FETCH_BYTES = 4 << 20


def aiokafka_security_kwargs(security: KafkaSecurity) -> dict[str, Any]:
    """The aiokafka client arguments for the configured SASL/TLS options."""
    kwargs: dict[str, Any] = {"security_protocol": security.protocol}
    context = security.ssl_context()
    if context is not None:
        kwargs["ssl_context"] = context
    if security.protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = security.sasl_mechanism
        kwargs["sasl_plain_username"] = security.sasl_username
        kwargs["sasl_plain_password"] = (
            security.sasl_password.get_secret_value() if security.sasl_password else None
        )
    return kwargs


async def _broker_count(bootstrap: list[str], security: KafkaSecurity, timeout_s: float) -> int:
    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        **aiokafka_security_kwargs(security),
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout_s)
        return len(client.cluster.brokers())
    finally:
        await client.close()


def kafka_answers(bootstrap: list[str], security: KafkaSecurity, timeout_s: float = 2.0) -> bool:
    """Whether a Kafka broker at ``bootstrap`` answers a metadata request."""
    # aiokafka logs every refused connection; the caller reports the outcome itself.
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(_broker_count(bootstrap, security, timeout_s)) > 0
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        logger.setLevel(level)


def check_kafka(bootstrap: list[str], security: KafkaSecurity, timeout_s: float = 10.0) -> None:
    """Fail with a one-line error unless the broker answers within ``timeout_s``."""
    if not kafka_answers(bootstrap, security, timeout_s):
        raise ProfitstreamError(
            f"cannot reach a Kafka broker at {','.join(bootstrap)} within {timeout_s:.0f}s; "
            "start one with `profitstream stack up` or set PROFITSTREAM_BROKER=kafka://host:port"
        )


def redis_answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether a Redis server at ``url`` answers PING."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def check_redis(url: str, timeout_s: float = 5.0) -> None:
    """Fail with a one-line error unless Redis at ``url`` answers PING."""
    if not redis_answers(url, timeout_s):
        raise ProfitstreamError(
            f"cannot reach Redis at {mask_url_password(url)}; start one with "
            "`profitstream stack up` or set PROFITSTREAM_REDIS_URL=redis://host:port/0"
        )
