"""The registry on MLflow: a sqlite tracking/registry database and artifacts beside it.

Each registered version is one MLflow run of the experiment "profitstream" whose artifacts
are the bundle, plus one model version created last — that row is the commit. The model
version's tags hold our semantic version and the sha256 of the bundle's card.json: the card
is read from the run's artifacts and must hash to that tag, so the database row is the
record the card, and through it every artifact, is verified against. (The card itself is
not a tag: tag values are capped at 100,000 characters and a card's explanations are not.)

Our aliases are MLflow's registered-model aliases; MLflow numbers versions 1, 2, 3, ...
and the semantic-version tag translates between the two.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import ValidationError

from models_store.errors import (
    ArtifactIntegrityError,
    InvalidBundleError,
    ModelStoreError,
    VersionExistsError,
)
from models_store.registry.base import ModelRegistry
from models_store.registry.bundle import sha256_file, verify_bundle
from models_store.registry.card import CARD_FILE, SEMVER, ModelCard, version_key

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

EXPERIMENT = "profitstream"
ARTIFACTS_DIR = "mlflow-artifacts"
TAG_MODEL = "profitstream.model"
TAG_VERSION = "profitstream.version"
TAG_CARD_SHA256 = "profitstream.card_sha256"


class MlflowRegistry(ModelRegistry):
    """Model versions in MLflow's model registry, on a sqlite database."""

    def __init__(self, database: Path) -> None:
        _quiet_mlflow()
        # Imported here: mlflow takes about two seconds to import.
        from mlflow import MlflowClient

        self.database = database
        self.location = f"mlflow+sqlite:///{database}"
        self.artifact_root = database.parent / ARTIFACTS_DIR
        database.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{database}"
        with self._mlflow_errors():
            self._client: MlflowClient = MlflowClient(tracking_uri=uri, registry_uri=uri)

    # ---- reading -----------------------------------------------------------------------

    def _names(self) -> list[str]:
        with self._mlflow_errors():
            return sorted({version.name for version in self._search(None) if _ours(version)})

    def _versions(self, name: str) -> list[str]:
        return list(self._entries(name))

    def _entries(self, name: str) -> dict[str, ModelVersion]:
        """Our semantic version -> the MLflow model version holding it."""
        entries: dict[str, ModelVersion] = {}
        with self._mlflow_errors():
            found = self._search(f"name = '{name}'")
        for version in sorted(found, key=lambda each: int(each.version)):
            semantic = version.tags.get(TAG_VERSION, "")
            # Two racing registrations of one version can both create a model version;
            # the first (lowest number) is the entry, the loser deletes its own.
            if _ours(version) and semantic not in entries:
                entries[semantic] = version
        return entries

    def _search(self, filter_string: str | None) -> list[ModelVersion]:
        found: list[ModelVersion] = []
        token: str | None = None
        while True:
            page = self._client.search_model_versions(filter_string, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def _cards_of(self, name: str) -> list[ModelCard]:
        entries = self._entries(name)  # one query for all versions, not one per version
        versions = sorted(entries, key=version_key)
        return [self._card_of(name, version, entries[version])[0] for version in versions]

    def _read_card(self, name: str, version: str) -> tuple[ModelCard, str]:
        return self._card_of(name, version, self._entries(name)[version])

    def _card_of(self, name: str, version: str, entry: ModelVersion) -> tuple[ModelCard, str]:
        """The card stored with ``entry``, checked against the sha256 its tag records."""
        from mlflow.exceptions import MlflowException

        expected = entry.tags.get(TAG_CARD_SHA256)
        if expected is None or not entry.source:
            raise InvalidBundleError(
                f"{self.location}: model version {name} {entry.version} has no "
                f"{TAG_CARD_SHA256} tag or source; it was not registered by profitstream"
            )
        with tempfile.TemporaryDirectory(prefix="profitstream-card-") as scratch:
            try:
                path = _artifacts(entry.source).download_artifacts(CARD_FILE, scratch)
            except (MlflowException, OSError) as exc:
                raise ArtifactIntegrityError(
                    f"{name}@{version}: its {CARD_FILE} cannot be read from the artifact store "
                    f"({_first_line(exc)}); not loading it"
                ) from exc
            raw = Path(path).read_bytes()
        if hashlib.sha256(raw).hexdigest() != expected:
            raise ArtifactIntegrityError(
                f"{name}@{version}: the stored {CARD_FILE} differs from the registry's record "
                "— it was changed or corrupted; not loading it"
            )
        try:
            card = ModelCard.from_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]["msg"]
            raise InvalidBundleError(f"{name}@{version}: not a valid model card: {first}") from exc
        return self._check_record(card, name, version), expected

    def _copy_bundle(self, name: str, version: str, target: Path) -> None:
        source = self._entries(name)[version].source
        assert source  # _read_card refused entries without one
        with self._mlflow_errors():
            _artifacts(source).download_artifacts("", str(target))

    # ---- writing -----------------------------------------------------------------------

    def _store(self, bundle: Path, card: ModelCard) -> None:
        from mlflow.exceptions import MlflowException

        with tempfile.TemporaryDirectory(prefix="profitstream-register-") as scratch:
            # Upload a private, verified copy: the source may change under us.
            staged = Path(scratch) / "bundle"
            shutil.copytree(bundle, staged)
            if verify_bundle(staged) != card:
                raise InvalidBundleError(f"{bundle} changed while it was being registered")
            card_sha256 = sha256_file(staged / CARD_FILE)
            with self._mlflow_errors():
                run = self._client.create_run(
                    self._experiment_id(),
                    run_name=card.ref,
                    tags={TAG_MODEL: card.name, TAG_VERSION: card.version},
                )
                try:
                    self._client.log_artifacts(run.info.run_id, str(staged))
                    self._client.set_terminated(run.info.run_id)
                    try:
                        self._client.create_registered_model(card.name)
                    except MlflowException as exc:
                        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                            raise
                    self._refuse_existing(card)
                    created = self._client.create_model_version(
                        card.name,
                        source=run.info.artifact_uri,
                        run_id=run.info.run_id,
                        tags={TAG_VERSION: card.version, TAG_CARD_SHA256: card_sha256},
                        description=card.description or None,
                    )
                except BaseException:
                    self._discard(run)
                    raise
                if self._entries(card.name)[card.version].version != created.version:
                    self._client.delete_model_version(card.name, str(created.version))
                    self._discard(run)
                    raise VersionExistsError(
                        f"{card.ref} was registered in {self.location} by someone else "
                        "meanwhile; versions are immutable: give the bundle a new version"
                    )

    def _experiment_id(self) -> str:
        """The "profitstream" experiment, created with its artifacts beside the database."""
        from mlflow.exceptions import MlflowException

        experiment = self._client.get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            try:
                return self._client.create_experiment(
                    EXPERIMENT, artifact_location=self.artifact_root.as_uri()
                )
            except MlflowException:
                experiment = self._client.get_experiment_by_name(EXPERIMENT)
                if experiment is None:  # not a lost creation race: a real failure
                    raise
        if experiment.lifecycle_stage != "active":
            raise ModelStoreError(
                f"the MLflow experiment {EXPERIMENT!r} in {self.location} is deleted; "
                "restore it to register models"
            )
        return str(experiment.experiment_id)

    def _discard(self, run: Run) -> None:
        """Remove a run whose model version was never created (or lost a race)."""
        from mlflow.exceptions import MlflowException

        # Best effort: the failure that brought us here is the one to report, and a run
        # without a model version is invisible to the registry anyway.
        with suppress(MlflowException, OSError):
            _artifacts(run.info.artifact_uri).delete_artifacts()
        with suppress(MlflowException, OSError):
            self._client.delete_run(run.info.run_id)

    # ---- aliases -----------------------------------------------------------------------

    def _alias_map(self, name: str) -> dict[str, str]:
        semantic = {int(entry.version): key for key, entry in self._entries(name).items()}
        with self._mlflow_errors():
            aliases = self._client.get_registered_model(name).aliases
        return {
            alias: semantic[int(number)]
            for alias, number in aliases.items()
            if int(number) in semantic
        }

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        number = self._entries(name)[version].version
        with self._mlflow_errors():
            self._client.set_registered_model_alias(name, alias, str(number))

    def _remove_alias(self, name: str, alias: str) -> None:
        with self._mlflow_errors():
            self._client.delete_registered_model_alias(name, alias)

    @contextmanager
    def _mlflow_errors(self) -> Iterator[None]:
        """MLflow's failures (a locked or unreadable database, ...) as one-line errors."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            raise ModelStoreError(f"MLflow registry {self.location}: {_first_line(exc)}") from exc


class _ArtifactStore(Protocol):
    """What we use of MLflow's (untyped) ArtifactRepository."""

    def download_artifacts(self, artifact_path: str, dst_path: str | None = None) -> str: ...

    def delete_artifacts(self, artifact_path: str | None = None) -> None: ...


def _artifacts(uri: str) -> _ArtifactStore:
    """The artifact store at ``uri`` (a model version's source, a run's artifact URI).

    Read by URI rather than through the run: a runs:/ lookup costs two run queries and a
    logged-model check per file.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(uri)


def _ours(version: ModelVersion) -> bool:
    """A model version profitstream registered (other models may share the database)."""
    return bool(SEMVER.fullmatch(version.tags.get(TAG_VERSION, "")))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _quiet_mlflow() -> None:
    """Keep MLflow's set-up chatter out of command output.

    Creating a database logs "Creating initial MLflow database tables..." at INFO (and
    alembic its migrations); downloads draw a tqdm progress bar on stderr unless
    MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR is false. Warnings still get through.
    """
    for logger in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
