"""Control commands: what ops publish on `profitability-control` (schema version 1).

A command is a JSON object: who issued it, when, a nonce, the deployment revision it was
written against, its arguments, and an HMAC-SHA256 signature over everything else
(``models_store.control.signing``). ``docs/schemas/profitability-control.schema.json`` is
generated from ``Command``.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from models_store.registry.card import NAME_PATTERN, SEMVER

COMMAND_SCHEMA_VERSION = 1
# name@MAJOR.MINOR.PATCH: commands name exact versions (the CLI resolves aliases), so every
# worker folding the log means the same model whatever the registry's aliases say later.
EXACT_REF = rf"^{NAME_PATTERN.strip('^$')}@{SEMVER.pattern.strip('^$')}$"
EXPERIMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
REASON_MAX_CHARS = 500


class Role(StrEnum):
    """What a principal may do: each role may do everything the one before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


ROLE_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterArgs(_Args):
    """``register``: a version already in the registry becomes deployable."""

    model: Annotated[str, Field(pattern=EXACT_REF)]


class DeployArgs(_Args):
    """``deploy``: the version becomes the champion."""

    model: Annotated[str, Field(pattern=EXACT_REF)]


class RollbackArgs(_Args):
    """``rollback``: back to the previous champion, or to a named deployable version."""

    model: Annotated[str | None, Field(pattern=EXACT_REF)] = None


class RetireArgs(_Args):
    """``retire``: the version may no longer be deployed (it stays in the registry)."""

    model: Annotated[str, Field(pattern=EXACT_REF)]


class Guardrails(_Args):
    """Bounds that stop an experiment (and roll its challenger back) when broken."""

    max_error_rate: float = Field(default=0.01, ge=0, le=1)
    max_latency_ms: float = Field(default=5_000, gt=0)
    # Mean |challenger - persistence| over mean |champion - persistence|, before any horizon
    # closes: a challenger that drifts much further from the obvious forecast is suspect.
    max_drift_ratio: float = Field(default=2.0, gt=1)


class ExperimentStartArgs(_Args):
    """``experiment_start``: challenger against the champion (``ab``), or beside it
    without emitting to the main topic (``shadow``)."""

    experiment_id: Annotated[str, Field(pattern=EXPERIMENT_ID)]
    challenger: Annotated[str, Field(pattern=EXACT_REF)]
    mode: Literal["ab", "shadow"] = "ab"
    share: float = Field(default=0.05, ge=0, le=1)
    schedule: tuple[float, ...] = ()
    salt: str = Field(min_length=1, max_length=64)
    metric: Literal["mae"] = "mae"
    min_samples: int = Field(default=200, ge=1)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    max_duration_days: float = Field(default=180, gt=0)
    auto_promote: bool = True
    guardrails: Guardrails = Guardrails()

    @field_validator("schedule")
    @classmethod
    def _increasing(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < step <= 1 for step in value) or list(value) != sorted(set(value)):
            raise ValueError("must be strictly increasing shares in (0, 1], e.g. [0.05, 0.25, 1]")
        return value


class ExperimentRampArgs(_Args):
    """``experiment_ramp``: a new challenger share, or (none given) the schedule's next step."""

    experiment_id: Annotated[str, Field(pattern=EXPERIMENT_ID)]
    share: float | None = Field(default=None, ge=0, le=1)


class ExperimentStopArgs(_Args):
    """``experiment_stop``: end the experiment; the champion scores every client again."""

    experiment_id: Annotated[str, Field(pattern=EXPERIMENT_ID)]
    reason: str = Field(default="stopped by an operator", max_length=REASON_MAX_CHARS)


class ExperimentPromoteArgs(_Args):
    """``experiment_promote``: the challenger becomes the champion; the experiment ends."""

    experiment_id: Annotated[str, Field(pattern=EXPERIMENT_ID)]
    reason: str = Field(default="promoted by an operator", max_length=REASON_MAX_CHARS)


class EraseClientArgs(_Args):
    """``erase_client``: forget everything about a client and never score it again."""

    client_id: str = Field(min_length=1, max_length=256)


class CommandType(StrEnum):
    """The commands, with the role each needs (``REQUIRED_ROLE``)."""

    REGISTER = "register"
    DEPLOY = "deploy"
    ROLLBACK = "rollback"
    RETIRE = "retire"
    EXPERIMENT_START = "experiment_start"
    EXPERIMENT_RAMP = "experiment_ramp"
    EXPERIMENT_STOP = "experiment_stop"
    EXPERIMENT_PROMOTE = "experiment_promote"
    ERASE_CLIENT = "erase_client"


REQUIRED_ROLE: dict[CommandType, Role] = {
    CommandType.REGISTER: Role.OPERATOR,
    CommandType.DEPLOY: Role.ADMIN,
    CommandType.ROLLBACK: Role.ADMIN,
    CommandType.RETIRE: Role.ADMIN,
    CommandType.EXPERIMENT_START: Role.OPERATOR,
    CommandType.EXPERIMENT_RAMP: Role.OPERATOR,
    CommandType.EXPERIMENT_STOP: Role.OPERATOR,
    # Promotion changes the champion: what deploy does.
    CommandType.EXPERIMENT_PROMOTE: Role.ADMIN,
    CommandType.ERASE_CLIENT: Role.ADMIN,
}

ARGS_OF: dict[CommandType, type[_Args]] = {
    CommandType.REGISTER: RegisterArgs,
    CommandType.DEPLOY: DeployArgs,
    CommandType.ROLLBACK: RollbackArgs,
    CommandType.RETIRE: RetireArgs,
    CommandType.EXPERIMENT_START: ExperimentStartArgs,
    CommandType.EXPERIMENT_RAMP: ExperimentRampArgs,
    CommandType.EXPERIMENT_STOP: ExperimentStopArgs,
    CommandType.EXPERIMENT_PROMOTE: ExperimentPromoteArgs,
    CommandType.ERASE_CLIENT: EraseClientArgs,
}

CommandArgs = (
    RegisterArgs | DeployArgs | RollbackArgs | RetireArgs | ExperimentStartArgs
    | ExperimentRampArgs | ExperimentStopArgs | ExperimentPromoteArgs | EraseClientArgs
)  # fmt: skip


class Command(BaseModel):
    """One signed control command (the envelope; ``args`` depend on ``type``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    command_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    type: CommandType
    issued_by: str = Field(min_length=1, max_length=64)
    # With a time zone (ISO-8601 with Z or +00:00): the fold compares it with broker time.
    issued_at: AwareDatetime
    nonce: str = Field(min_length=16, max_length=64, pattern=r"^[0-9a-f]+$")
    # The deployment revision the issuer saw; null: apply whatever the state is.
    expected_revision: int | None = Field(default=None, ge=0)
    args: dict[str, Any]
    signature: str = Field(pattern=r"^[0-9a-f]{64}$")

    def parsed_args(self) -> CommandArgs:
        """``args`` validated against the command type's schema (raises ``ValidationError``)."""
        return ARGS_OF[self.type].model_validate(self.args)  # type: ignore[return-value]


SEED_TYPE: Literal["seed"] = "seed"


class SeedArgs(_Args):
    """``seed``: the model that becomes the first champion."""

    model: Annotated[str, Field(pattern=EXACT_REF)]


class Seed(BaseModel):
    """What a worker writes on a control log that never deployed a champion: its configured
    ``PROFITSTREAM_MODEL``. It is unsigned (a worker holds no signing key of its own), so the
    fold accepts it only while no champion was ever deployed: it can start a deployment,
    never change one. The first seed in the log wins on every worker."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    command_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    type: Literal["seed"]
    issued_by: str = Field(min_length=1, max_length=256)
    issued_at: AwareDatetime
    args: SeedArgs


def seed_record(model: str, worker: str, at: datetime, command_id: str) -> bytes:
    """The bytes of a seed record naming ``model`` (an exact ``NAME@X.Y.Z``)."""
    seed = Seed(command_id=command_id, type=SEED_TYPE, issued_by=worker, issued_at=at,
                args=SeedArgs(model=model))  # fmt: skip
    return seed.model_dump_json().encode()


def signed_body(document: dict[str, Any]) -> bytes:
    """The canonical bytes a signature covers: every field but ``signature``, as JSON with
    sorted keys and no spaces."""
    body = {key: value for key, value in document.items() if key != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def control_schema_file() -> tuple[str, str]:
    """(file name, JSON Schema text) of the control topic's commands."""
    schema = Command.model_json_schema()
    schema["$defs"] = {
        **schema.get("$defs", {}),
        **{kind.value: TypeAdapter(args).json_schema() for kind, args in ARGS_OF.items()},
        # Unsigned, and only ever accepted on a log that never deployed a champion.
        "seed_record": Seed.model_json_schema(),
    }
    schema["description"] = (
        "A signed control command. `args` follows the schema named by `type` in $defs."
    )
    return "profitability-control.schema.json", json.dumps(schema, indent=2,
                                                          sort_keys=True) + "\n"  # fmt: skip
