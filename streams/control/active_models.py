"""The models this worker scores with: the deployment the control log names, loaded.

When the folded deployment changes, the models it names are fetched from the registry,
verified and loaded in a thread while the worker goes on with the models it has; the
input reader waits (``is_current``) for them before its next batch, so every batch is
scored by one deployment, and the switch falls between two batches. A model that cannot
be loaded stops the worker's input (it never scores with a deployment the log has
left behind) and is retried until it loads or the log moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models_store.control.fold import FoldResult
from models_store.control.state import Deployment
from models_store.experiments.assignment import assign_arm
from models_store.registry import open_registry
from models_store.scoring.scorer import Scorer
from streams.control.log import ControlLog
from streams.metrics import MODEL_LOAD_FAILURES
from streams.settings import Settings

log = logging.getLogger(__name__)

RETRY_S = 10.0
KEEP_LOADED = 4  # the current models and the last champions: a rollback needs no fetch

Arm = Literal["champion", "challenger"]


def registry_loader(settings: Settings) -> Callable[[str], Scorer]:
    """Loads a model reference from the configured registry: checksums verified, features
    checked (blocking: call it in a thread once the worker runs)."""

    def load(ref: str) -> Scorer:
        cache = settings.data_dir / "models"
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            return Scorer.from_registry(
                open_registry(settings.registry_uri), ref, Path(scratch),
                drivers=settings.prediction_drivers,
            )  # fmt: skip

    return load


@dataclass(frozen=True)
class ActiveDeployment:
    """A deployment and its loaded models."""

    deployment: Deployment
    champion: Scorer | None
    challenger: Scorer | None

    @property
    def revision(self) -> int:
        """The deployment's revision in the control log."""
        return self.deployment.revision

    def arm_of(self, client_id: str) -> Arm | None:
        """The client's arm in the running A/B experiment (None: no A/B experiment)."""
        experiment = self.deployment.experiment
        if experiment is None or experiment.mode != "ab":
            return None
        return assign_arm(client_id, experiment.salt, experiment.share)

    @property
    def shadow(self) -> Scorer | None:
        """The challenger of a shadow experiment: scores every client, emits to the shadow
        topic only."""
        experiment = self.deployment.experiment
        return self.challenger if experiment is not None and experiment.mode == "shadow" else None


@dataclass(frozen=True)
class Erasure:
    """An accepted ``erase_client`` command: where it is in the control log, and when."""

    offset: int
    record_time: float  # the record's broker timestamp, epoch seconds


def erased_client(outcome: FoldResult) -> str | None:
    """The client an accepted ``erase_client`` command erased (None for anything else)."""
    command = outcome.command or {}
    args = command.get("args")
    if not outcome.accepted or command.get("type") != "erase_client" or not isinstance(args, dict):
        return None
    client_id = args.get("client_id")
    return client_id if isinstance(client_id, str) else None


class ActiveModels:
    """Keeps ``current`` equal to the folded deployment, loading models as needed."""

    def __init__(
        self,
        control: ControlLog,
        load: Callable[[str], Scorer],
        seed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._control = control
        self._load = load
        # Run once the log is folded: ``PROFITSTREAM_MODEL`` seeds a log without a champion.
        self._seed = seed
        self._seeded = seed is None
        self._loaded: dict[str, Scorer] = {}
        self.current: ActiveDeployment | None = None
        self.error: str | None = None
        # Each erased client's command, read off the fold's outcomes up to this offset.
        self._erasures: dict[str, Erasure] = {}
        self._erasures_through = 0

    @property
    def erased(self) -> frozenset[str]:
        """Clients erased by the control log so far (never scored again)."""
        return self._control.state.erased

    async def erasures(self) -> dict[str, Erasure]:
        """Every client erased so far with its command's offset and time: the outcomes the
        fold has made since the last call (it keeps every one), read in order. On return
        it covers the same records as ``erased`` (no await in between)."""
        while self._erasures_through < self._control.fold.next_offset:
            offset = self._erasures_through
            self._erasures_through += 1
            try:
                outcome = await self._control.outcome(offset)  # folded already: no wait
            except KeyError:  # no record at this offset (a gap in the log)
                continue
            client_id = erased_client(outcome)
            if client_id is not None:
                self._erasures[client_id] = Erasure(outcome.offset, outcome.record_time)
        return self._erasures

    @property
    def control_topic(self) -> str:
        """The control topic the deployments come from."""
        return self._control.topic

    @property
    def folded_offset(self) -> int:
        """The control-log offset the fold reads next."""
        return self._control.fold.next_offset

    def keep(self, scorer: Scorer) -> None:
        """Add an already loaded model (the one loaded at start-up)."""
        self._loaded[scorer.ref] = scorer

    def is_current(self) -> bool:
        """Whether the loaded deployment is the one the folded control log names."""
        return (
            self._control.caught_up.is_set()
            and self._seeded
            and self.current is not None
            and self.current.deployment == self._control.state.deployment
        )

    def waiting_for(self) -> str | None:
        """What readiness waits for, if anything."""
        if not self._control.caught_up.is_set():
            return self._control.problem or "the control log"
        if not self._seeded:
            return "the control log's seed (PROFITSTREAM_MODEL)"
        if self.is_current():
            return None
        target = self._control.state.deployment
        if self.error is not None:
            return f"deployment revision {target.revision}: {self.error}"
        return f"the models of deployment revision {target.revision}"

    async def run(self) -> None:
        """Follow the control log for as long as the worker runs."""
        await self._control.caught_up.wait()
        if self._seed is not None:
            await self._seed()
            self._seeded = True
        while True:
            target = self._control.state.deployment
            if self.current is None or self.current.deployment != target:
                try:
                    self.current = await self._activate(target)
                    self.error = None
                except Exception as exc:
                    MODEL_LOAD_FAILURES.inc()
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.error("cannot load deployment revision %d (%s); input waits: %s",
                              target.revision, target, self.error)  # fmt: skip
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._control.deployment_after(target), RETRY_S)
                continue
            await self._control.deployment_after(target)

    async def _activate(self, deployment: Deployment) -> ActiveDeployment:
        champion = None
        if deployment.champion is not None:
            champion = await self._scorer(deployment.champion)
        challenger = None
        if deployment.experiment is not None:
            challenger = await self._scorer(deployment.experiment.challenger)
        wanted = {model.ref for model in (champion, challenger) if model is not None}
        for ref in list(self._loaded)[: max(0, len(self._loaded) - KEEP_LOADED)]:
            if ref not in wanted:
                del self._loaded[ref]
        log.info("deployment revision %d loaded: champion %s, experiment %s",
                 deployment.revision, deployment.champion, deployment.experiment)  # fmt: skip
        return ActiveDeployment(deployment, champion, challenger)

    async def _scorer(self, ref: str) -> Scorer:
        scorer = self._loaded.pop(ref, None)
        if scorer is None:
            loop = asyncio.get_running_loop()
            scorer = await loop.run_in_executor(None, self._load, ref)
        self._loaded[ref] = scorer  # most recently used last
        return scorer
