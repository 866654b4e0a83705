"""One contract for every registry backend: the filesystem and MLflow (sqlite) registries.

Each test runs against both, with real storage in a temporary directory. The MLflow
database is shared by the module (creating one takes seconds); tests use unique names.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from models_store.errors import (
    ArtifactIntegrityError,
    InvalidBundleError,
    ModelNotFoundError,
    ModelStoreError,
    VersionExistsError,
)
from models_store.registry import open_registry, sqlite_path
from models_store.registry.base import ModelRef, ModelRegistry, parse_ref
from models_store.registry.bundle import read_card, sha256_file
from models_store.registry.card import CARD_FILE, ModelCard, version_key
from models_store.registry.filesystem import FilesystemRegistry
from models_store.registry.mlflow import TAG_MODEL, MlflowRegistry
from tests.models_store.bundles import MODEL_FILE, NOTES_FILE, make_bundle


@dataclass
class Backend:
    """A registry under test and the directory its files live in."""

    registry: ModelRegistry
    storage: Path
    leave_crash_leftovers: Callable[[Path], None]

    def stored_copy(self, sha256: str) -> Path:
        return stored_copy(self.storage, sha256)


def stored_copy(storage: Path, sha256: str) -> Path:
    """The one file under a backend's storage with this content."""
    found = [p for p in storage.rglob("*") if p.is_file() and sha256_file(p) == sha256]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def mlflow_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MLflow database (tables created) for the module."""
    database = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    open_registry(f"mlflow+sqlite:///{database}")
    return database


@pytest.fixture(params=["filesystem", "mlflow"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "filesystem":
        root = tmp_path / "registry"
        return Backend(FilesystemRegistry(root), root, lambda b: filesystem_crash(root, b))
    database: Path = request.getfixturevalue("mlflow_database")
    registry = open_registry(f"mlflow+sqlite:///{database}")
    assert isinstance(registry, MlflowRegistry)
    return Backend(
        registry, database.parent / "mlflow-artifacts", lambda b: mlflow_crash(registry, b)
    )


def filesystem_crash(root: Path, bundle: Path) -> None:
    """What a registration killed before its rename leaves: a staging directory, whole or half."""
    card = read_card(bundle)
    shutil.copytree(bundle, root / card.name / f".{card.version}.whole")
    half = root / card.name / f".{card.version}.half"
    half.mkdir()
    shutil.copy(bundle / CARD_FILE, half / CARD_FILE)


def mlflow_crash(registry: MlflowRegistry, bundle: Path) -> None:
    """What a registration killed before its model version leaves: a run with the bundle
    as artifacts and an empty registered model."""
    card = read_card(bundle)
    client = registry._client
    run = client.create_run(registry._experiment_id(), tags={TAG_MODEL: card.name})
    client.log_artifacts(run.info.run_id, str(bundle))
    client.create_registered_model(card.name)


def test_register_and_read_back_the_card(backend: Backend, tmp_path: Path, unique: str) -> None:
    bundle = make_bundle(tmp_path / "b", unique, "1.0.0")
    card = backend.registry.register(bundle)
    assert card == ModelCard.from_json((bundle / CARD_FILE).read_text())
    assert backend.registry.card(f"{unique}@1.0.0") == card
    assert backend.registry.cards(unique) == [card]
    assert card in backend.registry.cards()


def test_versions_sort_semantically_and_bare_name_is_the_highest(
    backend: Backend, tmp_path: Path, unique: str
) -> None:
    for version in ("1.10.0", "1.2.0", "0.9.12", "1.9.3"):
        backend.registry.register(make_bundle(tmp_path / version, unique, version))
    other = f"{unique}-b"
    backend.registry.register(make_bundle(tmp_path / "other", other, "0.1.0"))

    versions = [card.version for card in backend.registry.cards(unique)]
    assert versions == ["0.9.12", "1.2.0", "1.9.3", "1.10.0"]
    everything = [(card.name, version_key(card.version)) for card in backend.registry.cards()]
    assert everything == sorted(everything)
    ours = [card.ref for card in backend.registry.cards() if card.name.startswith(unique)]
    assert ours == [f"{unique}@{v}" for v in versions] + [f"{other}@0.1.0"]
    assert backend.registry.card(unique).version == "1.10.0"


def test_fetch_returns_verified_identical_bytes(
    backend: Backend, tmp_path: Path, unique: str
) -> None:
    bundle = make_bundle(tmp_path / "b", unique, "2.0.1")
    registered = backend.registry.register(bundle)
    destination = tmp_path / "fetched"

    card, first = backend.registry.fetch(unique, destination)
    _, second = backend.registry.fetch(f"{unique}@2.0.1", destination)

    assert card == registered
    assert first != second  # a fresh directory each time
    assert first.parent == second.parent == destination
    for fetched in (first, second):
        files = sorted(p.relative_to(fetched) for p in fetched.rglob("*") if p.is_file())
        assert files == [Path(CARD_FILE), Path(NOTES_FILE), Path(MODEL_FILE)]
        for relative in files:
            assert (fetched / relative).read_bytes() == (bundle / relative).read_bytes()


def test_duplicate_version_is_refused_and_the_original_kept(
    backend: Backend, tmp_path: Path, unique: str
) -> None:
    original = backend.registry.register(make_bundle(tmp_path / "a", unique, "1.0.0"))
    impostor = make_bundle(tmp_path / "b", unique, "1.0.0", seed=1)

    with pytest.raises(VersionExistsError, match=rf"{unique}@1\.0\.0 is already registered"):
        backend.registry.register(impostor)

    assert backend.registry.cards(unique) == [original]
    _, fetched = backend.registry.fetch(f"{unique}@1.0.0", tmp_path / "out")
    assert (fetched / MODEL_FILE).read_bytes() == (tmp_path / "a" / MODEL_FILE).read_bytes()


def test_concurrent_registrations_of_one_version_leave_one_whole_entry(
    backend: Backend, tmp_path: Path, unique: str
) -> None:
    bundles = [make_bundle(tmp_path / str(i), unique, "3.0.0", seed=i) for i in range(4)]
    start = threading.Barrier(len(bundles))
    outcomes: list[ModelCard | Exception] = []

    def register(bundle: Path) -> None:
        start.wait()
        try:
            outcomes.append(backend.registry.register(bundle))
        except ModelStoreError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=register, args=(bundle,)) for bundle in bundles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [outcome for outcome in outcomes if isinstance(outcome, ModelCard)]
    losers = [outcome for outcome in outcomes if not isinstance(outcome, ModelCard)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(loser, VersionExistsError) for loser in losers), losers
    assert backend.registry.cards(unique) == winners
    fetched_card, _ = backend.registry.fetch(unique, tmp_path / "out")
    assert fetched_card == winners[0]


def test_missing_name_version_and_alias_say_what_exists(
    backend: Backend, tmp_path: Path, unique: str
) -> None:
    for version in ("1.0.0", "1.1.0"):
        backend.registry.register(make_bundle(tmp_path / version, unique, version))
    backend.registry.set_alias(unique, "champion", "1.0.0")

    with pytest.raises(ModelNotFoundError) as no_name:
        backend.registry.card(f"{unique}-x")
    assert f"no model named '{unique}-x'" in str(no_name.value)
    assert unique in str(no_name.value)
    assert "profitstream models list" in str(no_name.value)

    with pytest.raises(ModelNotFoundError) as no_version:
        backend.registry.fetch(f"{unique}@2.0.0", tmp_path / "out")
    assert "no version 2.0.0" in str(no_version.value)
    assert "versions: 1.0.0, 1.1.0" in str(no_version.value)
    assert "profitstream models list" in str(no_version.value)

    with pytest.raises(ModelNotFoundError) as no_alias:
        backend.registry.card(f"{unique}@challenger")
    assert "no alias 'challenger'" in str(no_alias.value)
    assert "champion -> 1.0.0" in str(no_alias.value)
    assert "profitstream models list" in str(no_alias.value)


def test_aliases_set_move_resolve_and_remove(backend: Backend, tmp_path: Path, unique: str) -> None:
    for version in ("1.0.0", "1.1.0"):
        backend.registry.register(make_bundle(tmp_path / version, unique, version))
    registry = backend.registry
    assert registry.aliases(unique) == {}

    registry.set_alias(unique, "champion", "1.0.0")
    registry.set_alias(unique, "challenger", "1.1.0")
    assert registry.aliases(unique) == {"challenger": "1.1.0", "champion": "1.0.0"}
    assert registry.card(f"{unique}@champion").version == "1.0.0"
    card, fetched = registry.fetch(f"{unique}@challenger", tmp_path / "out")
    assert card.version == "1.1.0"
    assert read_card(fetched) == card

    registry.set_alias(unique, "champion", "1.1.0")  # promotion moves the alias
    registry.remove_alias(unique, "challenger")
    assert registry.aliases(unique) == {"champion": "1.1.0"}
    with pytest.raises(ModelNotFoundError, match="no alias 'challenger'"):
        registry.remove_alias(unique, "challenger")


def test_alias_refusals(backend: Backend, tmp_path: Path, unique: str) -> None:
    backend.registry.register(make_bundle(tmp_path / "b", unique, "1.0.0"))
    registry = backend.registry

    with pytest.raises(ModelNotFoundError, match=r"no version 9\.9\.9.*versions: 1\.0\.0"):
        registry.set_alias(unique, "champion", "9.9.9")
    with pytest.raises(ModelNotFoundError, match="no model named"):
        registry.set_alias(f"{unique}-x", "champion", "1.0.0")
    for alias in ("Champion", "1st", "latest", "v2", "a.b", ""):
        with pytest.raises(ModelStoreError, match=f"alias {alias!r}"):
            registry.set_alias(unique, alias, "1.0.0")
    with pytest.raises(ModelStoreError, match=r"not MAJOR\.MINOR\.PATCH"):
        registry.set_alias(unique, "champion", "1.0")
    assert registry.aliases(unique) == {}


def test_tampered_stored_artifact_is_refused_on_fetch(
    backend: Backend, tmp_path: Path, unique: str
) -> None:
    card = backend.registry.register(make_bundle(tmp_path / "b", unique, "1.0.0"))
    stored = backend.stored_copy(card.artifacts["xgboost"].sha256)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))
    destination = tmp_path / "out"

    with pytest.raises(ArtifactIntegrityError, match=f"{MODEL_FILE} has sha256"):
        backend.registry.fetch(unique, destination)
    assert list(destination.iterdir()) == []  # nothing unverified is left behind


def test_deleted_stored_artifact_is_refused_on_fetch(
    backend: Backend, tmp_path: Path, unique: str
) -> None:
    card = backend.registry.register(make_bundle(tmp_path / "b", unique, "1.0.0"))
    backend.stored_copy(card.artifacts["notes"].sha256).unlink()

    with pytest.raises(ArtifactIntegrityError, match=f"{NOTES_FILE} is missing"):
        backend.registry.fetch(unique, tmp_path / "out")


def corrupt_artifact(bundle: Path) -> None:
    (bundle / MODEL_FILE).write_bytes((bundle / MODEL_FILE).read_bytes() + b"\0")


def delete_artifact(bundle: Path) -> None:
    (bundle / NOTES_FILE).unlink()


def add_unlisted_file(bundle: Path) -> None:
    (bundle / "notes" / "extra.pkl").write_bytes(b"not in the card")


def break_card(bundle: Path) -> None:
    (bundle / CARD_FILE).write_text('{"name": "x"}')


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (corrupt_artifact, ArtifactIntegrityError, "has sha256"),
        (delete_artifact, ArtifactIntegrityError, "is missing"),
        (add_unlisted_file, InvalidBundleError, "unlisted files"),
        (break_card, InvalidBundleError, "not a valid model card"),
    ],
)
def test_a_bad_source_bundle_is_refused_and_nothing_appears(
    backend: Backend,
    tmp_path: Path,
    unique: str,
    damage: Callable[[Path], None],
    error: type[ModelStoreError],
    message: str,
) -> None:
    bundle = make_bundle(tmp_path / "b", unique, "1.0.0")
    damage(bundle)
    before = backend.registry.cards()

    with pytest.raises(error, match=message):
        backend.registry.register(bundle)

    assert backend.registry.cards() == before
    with pytest.raises(ModelNotFoundError):
        backend.registry.card(unique)


def test_a_directory_without_a_card_is_not_a_bundle(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(InvalidBundleError, match=r"has no card\.json"):
        backend.registry.register(tmp_path / "nothing-here")


def test_a_registration_killed_midway_leaves_nothing_visible(
    backend: Backend, tmp_path: Path, unique: str
) -> None:
    bundle = make_bundle(tmp_path / "b", unique, "1.0.0")
    before = backend.registry.cards()

    backend.leave_crash_leftovers(bundle)

    assert backend.registry.cards() == before
    with pytest.raises(ModelNotFoundError):
        backend.registry.card(unique)
    card = backend.registry.register(bundle)  # the version is still free
    assert backend.registry.cards(unique) == [card]
    assert backend.registry.fetch(unique, tmp_path / "out")[0] == card


def test_mlflow_tampered_card_is_refused(
    mlflow_database: Path, tmp_path: Path, unique: str
) -> None:
    """The MLflow backend keeps the card among the run's artifacts, checked by a DB tag."""
    registry = open_registry(f"mlflow+sqlite:///{mlflow_database}")
    bundle = make_bundle(tmp_path / "b", unique, "1.0.0")
    registry.register(bundle)
    stored = stored_copy(
        mlflow_database.parent / "mlflow-artifacts", sha256_file(bundle / CARD_FILE)
    )
    stored.write_text(stored.read_text().replace("test bundle", "trusted bundle"))

    with pytest.raises(ArtifactIntegrityError, match="differs from the registry's record"):
        registry.card(unique)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("churn", ModelRef("churn")),
        ("churn@1.2.3", ModelRef("churn", version="1.2.3")),
        ("churn-v2@champion", ModelRef("churn-v2", alias="champion")),
    ],
)
def test_references_parse(ref: str, expected: ModelRef) -> None:
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["", "Churn", "churn@", "churn@1.2", "churn@Champion", "a@b@c"])
def test_bad_references_are_refused(ref: str) -> None:
    with pytest.raises(ModelStoreError, match=r"model reference|neither a version"):
        parse_ref(ref)


def test_registry_uris(
    mlflow_database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for uri in (str(tmp_path / "r"), (tmp_path / "r").as_uri()):
        registry = open_registry(uri)
        assert isinstance(registry, FilesystemRegistry)
        assert registry.root == tmp_path / "r"
    for uri in (f"mlflow+sqlite:///{mlflow_database}", f"sqlite:///{mlflow_database}"):
        registry = open_registry(uri)
        assert isinstance(registry, MlflowRegistry)
        assert registry.database == mlflow_database

    # SQLAlchemy's forms: four slashes before an absolute path, three before a relative one.
    assert sqlite_path(f"mlflow+sqlite:///{tmp_path}/m.db") == tmp_path / "m.db"
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("mlflow+sqlite:///m/mlflow.db") == tmp_path / "m" / "mlflow.db"

    for uri in ("s3://bucket/models", "http://mlflow:5000", "sqlite://", "file://host/x", ""):
        with pytest.raises(ModelStoreError, match="registry"):
            open_registry(uri)


def test_an_alias_at_a_vanished_version_is_reported_and_removable(
    tmp_path: Path, unique: str
) -> None:
    """aliases.json is a file people can edit: an alias may name a version that is not there."""
    registry = FilesystemRegistry(tmp_path / "registry")
    registry.register(make_bundle(tmp_path / "b", unique, "1.0.0"))
    (tmp_path / "registry" / unique / "aliases.json").write_text('{"champion": "9.9.9"}')

    with pytest.raises(ModelNotFoundError, match=r"points at 9\.9\.9.*versions: 1\.0\.0"):
        registry.card(f"{unique}@champion")
    registry.remove_alias(unique, "champion")
    assert registry.aliases(unique) == {}
