"""The model registry: immutable, verified model versions by ``name@version`` and aliases.

A registry stores bundles (see ``models_store.registry.bundle``) and keeps each version's card as
its record. Everything handed out is checked against that record: ``fetch`` hashes every
file it materialises before returning. Aliases (``champion``, ``challenger``) name the
version a role currently uses; they are how deployment state maps onto the registry.

Two backends share these semantics: a directory tree (``filesystem_registry``) and MLflow's
model registry on sqlite (``mlflow_registry``). ``open_registry`` picks one by URI.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from models_store.errors import (
    ArtifactIntegrityError,
    InvalidBundleError,
    ModelNotFoundError,
    ModelStoreError,
    VersionExistsError,
)
from models_store.registry.bundle import sha256_file, verify_bundle
from models_store.registry.card import CARD_FILE, NAME_PATTERN, SEMVER, ModelCard, version_key

ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# MLflow reserves these alias names; refusing them everywhere keeps the backends alike.
RESERVED_ALIAS = re.compile(r"^(latest|v\d+)$")
NAME = re.compile(NAME_PATTERN)
URI_FORMS = "a directory path, file:///abs/dir, or mlflow+sqlite:///path/to/mlflow.db"
LIST_HINT = "`profitstream models list` shows what is registered"


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: ``name``, ``name@1.2.3`` or ``name@alias``."""

    name: str
    version: str | None = None
    alias: str | None = None


def parse_ref(ref: str) -> ModelRef:
    """Split ``name[@version|@alias]``, refusing anything else with a one-line reason."""
    name, at, selector = ref.partition("@")
    if not NAME.fullmatch(name):
        raise ModelStoreError(
            f"{ref!r} is not a model reference: expected NAME, NAME@MAJOR.MINOR.PATCH or "
            f"NAME@ALIAS, with NAME matching {NAME_PATTERN}"
        )
    if not at:
        return ModelRef(name)
    if SEMVER.fullmatch(selector):
        return ModelRef(name, version=selector)
    if ALIAS_PATTERN.fullmatch(selector):
        return ModelRef(name, alias=selector)
    raise ModelStoreError(
        f"{ref!r}: {selector!r} is neither a version (MAJOR.MINOR.PATCH) nor an alias "
        "(lowercase letters, digits, '_' and '-', starting with a letter)"
    )


def check_alias(alias: str) -> None:
    """Refuse alias names the registry cannot hold."""
    if not ALIAS_PATTERN.fullmatch(alias):
        raise ModelStoreError(
            f"alias {alias!r} is not allowed: use lowercase letters, digits, '_' and '-', "
            "starting with a letter (e.g. champion, challenger)"
        )
    if RESERVED_ALIAS.fullmatch(alias):
        raise ModelStoreError(
            f"alias {alias!r} is reserved: a bare model name already means its highest "
            "version, and v<N> names MLflow's own version numbers"
        )


def _plain_name(name: str) -> str:
    parsed = parse_ref(name)
    if parsed != ModelRef(name):
        raise ModelStoreError(f"{name!r}: expected a model name without @")
    return name


def _listing(items: list[str]) -> str:
    return ", ".join(items) if items else "none"


class ModelRegistry(ABC):
    """Registered model versions, their cards and aliases.

    Subclasses store and read; this class decides what a reference means, what is
    refused, and checks every file it hands out against the registry's card.
    """

    location: str  # for messages: where this registry lives

    # ---- what a backend provides -------------------------------------------------------

    @abstractmethod
    def _names(self) -> list[str]:
        """Names with at least one registered version."""

    @abstractmethod
    def _versions(self, name: str) -> list[str]:
        """Registered versions of ``name`` (empty if none), in any order."""

    @abstractmethod
    def _read_card(self, name: str, version: str) -> tuple[ModelCard, str]:
        """The registry's card of a version and the sha256 of its stored JSON."""

    @abstractmethod
    def _store(self, bundle: Path, card: ModelCard) -> None:
        """Store a verified bundle all or nothing; VersionExistsError if it lost a race."""

    @abstractmethod
    def _copy_bundle(self, name: str, version: str, target: Path) -> None:
        """Copy the stored files of a version into the empty directory ``target``."""

    @abstractmethod
    def _alias_map(self, name: str) -> dict[str, str]:
        """Alias -> version of ``name``, as stored."""

    @abstractmethod
    def _set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` at an existing ``version``."""

    @abstractmethod
    def _remove_alias(self, name: str, alias: str) -> None:
        """Drop an alias that is set."""

    # ---- the interface -----------------------------------------------------------------

    def register(self, bundle: Path) -> ModelCard:
        """Verify ``bundle`` against its own card and store it as a new, immutable version."""
        try:
            card = verify_bundle(bundle)
        except OSError as exc:
            raise InvalidBundleError(f"cannot read the bundle {bundle}: {exc}") from exc
        self._refuse_existing(card)
        try:
            self._store(bundle, card)
        except OSError as exc:  # a full disk, a read-only registry: say so in one line
            raise ModelStoreError(f"cannot store {card.ref} in {self.location}: {exc}") from exc
        return card

    def cards(self, name: str | None = None) -> list[ModelCard]:
        """Every registered version (of ``name``, or of all names), by name then version."""
        names = sorted(self._names()) if name is None else [_plain_name(name)]
        return [card for each in names for card in self._cards_of(each)]

    def card(self, ref: str) -> ModelCard:
        """The card of ``name@version``, ``name@alias`` or ``name`` (its highest version)."""
        name, version = self.resolve(ref)
        return self._read_card(name, version)[0]

    def resolve(self, ref: str) -> tuple[str, str]:
        """``(name, version)`` a reference points at, or ModelNotFoundError saying what exists."""
        parsed = parse_ref(ref)
        versions = self._existing_versions(parsed.name)
        if parsed.alias is not None:
            version = self._alias_target(parsed.name, parsed.alias)
            if version not in versions:
                raise ModelNotFoundError(
                    f"alias {parsed.name}@{parsed.alias} points at {version}, which is not "
                    f"registered (versions: {_listing(versions)}); {LIST_HINT}"
                )
            return parsed.name, version
        if parsed.version is None:
            return parsed.name, versions[-1]
        if parsed.version not in versions:
            raise ModelNotFoundError(
                f"{parsed.name} has no version {parsed.version} in {self.location} "
                f"(versions: {_listing(versions)}); {LIST_HINT}"
            )
        return parsed.name, parsed.version

    def fetch(self, ref: str, destination: Path) -> tuple[ModelCard, Path]:
        """Materialise a version in a fresh directory under ``destination``, verified.

        Every file is checked against the registry's card (not a card that travelled with
        the files) before this returns; nothing is parsed. A failed check leaves nothing.
        """
        name, version = self.resolve(ref)
        card, card_sha256 = self._read_card(name, version)
        try:
            destination.mkdir(parents=True, exist_ok=True)
            target = Path(tempfile.mkdtemp(prefix=f"{name}-{version}-", dir=destination))
        except OSError as exc:
            raise ModelStoreError(f"cannot fetch {card.ref} into {destination}: {exc}") from exc
        try:
            self._copy_bundle(name, version, target)
            stored_card = target / CARD_FILE
            if not stored_card.is_file() or sha256_file(stored_card) != card_sha256:
                raise ArtifactIntegrityError(
                    f"{card.ref}: the stored {CARD_FILE} differs from the registry's record "
                    "— it was changed or corrupted; not loading it"
                )
            verify_bundle(target, card)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return card, target

    def aliases(self, name: str) -> dict[str, str]:
        """Alias -> version of a registered model."""
        self._existing_versions(_plain_name(name))
        return dict(sorted(self._alias_map(name).items()))

    def set_alias(self, name: str, alias: str, version: str) -> None:
        """Point ``alias`` (e.g. champion) at a registered version, moving it if set."""
        check_alias(alias)
        if not SEMVER.fullmatch(version):
            raise ModelStoreError(f"alias {name}@{alias}: {version!r} is not MAJOR.MINOR.PATCH")
        self.resolve(f"{_plain_name(name)}@{version}")
        self._set_alias(name, alias, version)

    def remove_alias(self, name: str, alias: str) -> None:
        """Drop an alias; ModelNotFoundError if it is not set."""
        check_alias(alias)
        self._existing_versions(_plain_name(name))
        self._alias_target(name, alias)  # an alias at a vanished version may still go
        self._remove_alias(name, alias)

    # ---- shared checks -----------------------------------------------------------------

    def _cards_of(self, name: str) -> list[ModelCard]:
        """Cards of every version of ``name``, by version (a backend may batch the reads)."""
        versions = sorted(self._versions(name), key=version_key)
        return [self._read_card(name, version)[0] for version in versions]

    def _existing_versions(self, name: str) -> list[str]:
        versions = sorted(self._versions(name), key=version_key)
        if not versions:
            names = sorted(self._names())
            raise ModelNotFoundError(
                f"no model named {name!r} in {self.location} "
                f"(models: {_listing(names[:20])}); {LIST_HINT}"
            )
        return versions

    def _alias_target(self, name: str, alias: str) -> str:
        aliases = self._alias_map(name)
        if alias not in aliases:
            set_ = [f"{each} -> {version}" for each, version in sorted(aliases.items())]
            raise ModelNotFoundError(
                f"{name} has no alias {alias!r} in {self.location} "
                f"(aliases: {_listing(set_)}); {LIST_HINT}"
            )
        return aliases[alias]

    def _refuse_existing(self, card: ModelCard) -> None:
        versions = sorted(self._versions(card.name), key=version_key)
        if card.version in versions:
            raise VersionExistsError(
                f"{card.ref} is already registered in {self.location} and versions are "
                f"immutable; give the bundle a new version (registered: {_listing(versions)})"
            )

    def _check_record(self, card: ModelCard, name: str, version: str) -> ModelCard:
        """Refuse a stored card that is not the entry it is filed under."""
        if (card.name, card.version) != (name, version):
            raise InvalidBundleError(
                f"{self.location}: the entry {name}@{version} holds the card of {card.ref}"
            )
        return card
