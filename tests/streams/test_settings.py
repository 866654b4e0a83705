"""Settings: parsing, validation messages and masking (pure, no services)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from streams.cli.context import describe_validation_error
from streams.settings import KafkaSecurity, Settings, mask_url_password, parse_broker_list


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("kafka://localhost:9092", ["localhost:9092"]),
        ("127.0.0.1:9092", ["127.0.0.1:9092"]),
        ("kafka://a:1, kafka://b:2", ["a:1", "b:2"]),
    ],
)
def test_broker_lists_parse(raw: str, expected: list[str]) -> None:
    assert parse_broker_list(raw) == expected


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("http://localhost:9092", "kafka:// scheme"),
        ("kafka://localhost", "kafka://host:port"),
        ("kafka://localhost:99999", "invalid port"),
        ("kafka://localhost:9092/x", "kafka://host:port"),
        (" , ", "empty"),
    ],
)
def test_bad_broker_lists_say_why(raw: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        parse_broker_list(raw)


def test_environment_variables_fill_nested_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFITSTREAM_BROKER", "kafka://k1:9092,kafka://k2:9092")
    monkeypatch.setenv("PROFITSTREAM_TOPICS__ACTIVITY", "acts")
    monkeypatch.setenv("PROFITSTREAM_SECURITY__PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("PROFITSTREAM_SECURITY__SASL_PASSWORD", "s3cret")
    settings = Settings()
    assert settings.topics.activity == "acts"
    assert settings.topics.billing == "billing"
    assert settings.security.protocol == "SASL_PLAINTEXT"
    assert settings.processing_guarantee == "at_least_once"
    assert settings.stack_dir == Path(".profitstream") / "stack"


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFITSTREAM_WEB_PORT", "7000")
    assert Settings(web_port=7001).web_port == 7001


def test_display_masks_secrets() -> None:
    settings = Settings(
        redis_url="redis://:hunter2@cache:6379/0",
        security=KafkaSecurity(
            protocol="SASL_SSL", sasl_username="ops", sasl_password=SecretStr("pw-123")
        ),
    )
    shown = settings.display()
    assert shown["security.sasl_password"] == "***"
    assert shown["redis_url"] == "redis://:***@cache:6379/0"
    assert "hunter2" not in repr(shown)
    assert "pw-123" not in repr(shown)
    assert shown["security.sasl_username"] == "ops"


def test_mask_leaves_urls_without_password_alone() -> None:
    assert mask_url_password("redis://cache:6379/0") == "redis://cache:6379/0"


def test_validation_errors_name_the_environment_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(broker="nope://x", topic_partitions=0)
    message = describe_validation_error(caught.value)
    assert "PROFITSTREAM_BROKER: broker 'nope://x' must use the kafka:// scheme" in message
    assert "PROFITSTREAM_TOPIC_PARTITIONS" in message


def test_sasl_ssl_needs_a_context_plaintext_does_not() -> None:
    assert Settings().security.ssl_context() is None
    assert Settings(security=KafkaSecurity(protocol="SASL_SSL")).security.ssl_context() is not None


def test_exactly_once_is_refused_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROFITSTREAM_PROCESSING_GUARANTEE", "exactly_once")
    with pytest.raises(ValidationError, match="effectively-once by itself"):
        Settings()
