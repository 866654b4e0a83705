"""What control-plane tests share: a registry with two versions, keys, commands, the trail."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from features.simulation.messages import history_frame, simulated_messages
from features.simulation.portfolio import simulate
from models_store.control.signing import new_key
from models_store.registry import open_registry
from models_store.registry.card import CARD_FILE
from models_store.training.train import TrainingRequest, train
from models_store.training.tuning import SearchBudget
from streams.cli.control_client import audit_records, publish, read_topic
from streams.settings import Settings
from tests.services.event_log import START
from tests.services.record_schemas import checked

V1, V2 = "profitability@1.0.0", "profitability@2.0.0"


def two_version_registry(root: Path) -> Path:
    """A registry under ``root`` with one trained model as 1.0.0 and again (same trees) as
    2.0.0; returns the registry's path."""
    log = history_frame(simulated_messages(simulate(100, 15, seed=21, start=START)))
    request = TrainingRequest(name="profitability", version="1.0.0", validation_cutoffs=2,
                              test_cutoffs=2, budget=SearchBudget(4, 2, 30))  # fmt: skip
    bundle = train(log, request, root / "b").bundle
    registry = open_registry(str(root / "registry"))
    registry.register(bundle)
    second = root / "v2"
    shutil.copytree(bundle, second)
    card = json.loads((second / CARD_FILE).read_text())
    card["version"] = "2.0.0"
    (second / CARD_FILE).write_text(json.dumps(card))
    registry.register(second)
    return root / "registry"


def write_keys(path: Path, roles: dict[str, str]) -> Path:
    """A keys file with a fresh key for each principal (name -> role)."""
    principals = {name: {"role": role, "key": new_key()} for name, role in roles.items()}
    path.write_text(json.dumps({"principals": principals}))
    return path


def control_env(
    worker_env: dict[str, str], registry: Path, keys: Path, **extra: str
) -> dict[str, str]:
    """A worker's environment: v1 deployed from ``registry``, commands signed as alice."""
    return {**worker_env, "PROFITSTREAM_MODEL_REGISTRY": str(registry),
            "PROFITSTREAM_MODEL": V1, "PROFITSTREAM_CONTROL_KEYS": str(keys),
            "PROFITSTREAM_CONTROL_PRINCIPAL": "alice", **extra}  # fmt: skip


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a CLI with ``env`` would load."""
    variables = {k.removeprefix("PROFITSTREAM_").lower(): v for k, v in env.items()
                 if k.startswith("PROFITSTREAM_") and "__" not in k}  # fmt: skip
    topics = {k.removeprefix("PROFITSTREAM_TOPICS__").lower(): v for k, v in env.items()
              if k.startswith("PROFITSTREAM_TOPICS__")}  # fmt: skip
    return Settings.model_validate({**variables, "topics": topics})


def command(env: dict[str, str], bootstrap: str, kind: str, **args: Any) -> dict[str, Any]:
    """Publish a command as the CLI does; return its audit record (accepted or not)."""
    published = asyncio.run(
        publish(settings_of(env), [bootstrap], {}, kind, args, key="profitability", wait_s=60)
    )
    assert published.audit is not None, f"no audit record for {kind}"
    return checked("profitability-audit", published.audit)  # type: ignore[no-any-return]


def audit(env: dict[str, str], bootstrap: str) -> list[dict[str, Any]]:
    """The audit trail's records so far."""
    topic = env["PROFITSTREAM_TOPICS__AUDIT"]
    records = audit_records(asyncio.run(read_topic([bootstrap], {}, topic)))
    return [checked("profitability-audit", record) for record in records]
