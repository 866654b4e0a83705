"""A registry in a directory: ``<root>/<name>/<version>/`` bundles and ``aliases.json``.

A version is staged in a hidden sibling directory, verified there, flushed, then renamed
into place: the rename is the commit, so a reader sees a whole bundle or nothing, and of
two concurrent registrations of one version the second rename fails. Entries starting
with "." (staging directories a crash left behind, temp files, the lock) are never listed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pydantic import ValidationError

from models_store.errors import InvalidBundleError, ModelStoreError, VersionExistsError
from models_store.registry.base import NAME, ModelRegistry
from models_store.registry.bundle import verify_bundle
from models_store.registry.card import CARD_FILE, SEMVER, ModelCard

ALIASES_FILE = "aliases.json"


class FilesystemRegistry(ModelRegistry):
    """Model versions as bundle directories under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        if root.exists() and not root.is_dir():
            raise ModelStoreError(f"model registry {root} is a file, not a directory")

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return [
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and NAME.fullmatch(entry.name) and self._versions(entry.name)
        ]

    def _versions(self, name: str) -> list[str]:
        directory = self.root / name
        if not directory.is_dir():
            return []
        return [
            entry.name
            for entry in directory.iterdir()
            if SEMVER.fullmatch(entry.name) and (entry / CARD_FILE).is_file()
        ]

    def _read_card(self, name: str, version: str) -> tuple[ModelCard, str]:
        path = self.root / name / version / CARD_FILE
        raw = path.read_bytes()
        try:
            card = ModelCard.from_json(raw)
        except ValidationError as exc:
            first = exc.errors()[0]["msg"]
            raise InvalidBundleError(f"{path} is not a valid model card: {first}") from exc
        return self._check_record(card, name, version), hashlib.sha256(raw).hexdigest()

    def _store(self, bundle: Path, card: ModelCard) -> None:
        parent = self.root / card.name
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{card.version}.", dir=parent))
        try:
            shutil.copytree(bundle, staging, dirs_exist_ok=True)
            # Verify the copy, not just the source: the copy is what gets committed.
            if verify_bundle(staging) != card:
                raise InvalidBundleError(f"{bundle} changed while it was being registered")
            _flush_tree(staging)
            try:
                os.rename(staging, parent / card.version)
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    raise VersionExistsError(
                        f"{card.ref} was registered in {self.location} by someone else "
                        "meanwhile; versions are immutable: give the bundle a new version"
                    ) from exc
                raise
            _flush_directory(parent)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def _copy_bundle(self, name: str, version: str, target: Path) -> None:
        shutil.copytree(self.root / name / version, target, dirs_exist_ok=True)

    def _alias_map(self, name: str) -> dict[str, str]:
        path = self.root / name / ALIASES_FILE
        if not path.is_file():
            return {}
        try:
            aliases = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelStoreError(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(aliases, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
        ):
            raise ModelStoreError(f"{path} must map alias names to versions")
        return aliases

    def _set_alias(self, name: str, alias: str, version: str) -> None:
        with self._aliases_locked(name) as aliases:
            aliases[alias] = version

    def _remove_alias(self, name: str, alias: str) -> None:
        with self._aliases_locked(name) as aliases:
            aliases.pop(alias, None)

    @contextmanager
    def _aliases_locked(self, name: str) -> Iterator[dict[str, str]]:
        """Read-modify-write ``aliases.json`` under a lock, replacing the file atomically.

        The lock keeps two writers (say, promoting a champion while a challenger is set)
        from each writing back a map that lacks the other's change.
        """
        parent = self.root / name
        with (parent / ".aliases.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            aliases = self._alias_map(name)
            yield aliases
            handle, temporary = tempfile.mkstemp(prefix=".aliases.", suffix=".json", dir=parent)
            try:
                with os.fdopen(handle, "w") as file:
                    json.dump(dict(sorted(aliases.items())), file, indent=2)
                    file.write("\n")
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, parent / ALIASES_FILE)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            _flush_directory(parent)


def _flush_tree(root: Path) -> None:
    """fsync every file and directory under ``root``: a committed version survives a crash."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            with path.open("rb") as file:
                os.fsync(file.fileno())
        else:
            _flush_directory(path)
    _flush_directory(root)


def _flush_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
