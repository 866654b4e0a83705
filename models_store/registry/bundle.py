"""A model bundle on disk: ``card.json`` plus the artifact files it lists with their sha256.

Training writes a bundle; registries store and hand back bundles. ``verify_bundle`` is
the one gate before any artifact is parsed: every listed file must exist and hash to
the card's sha256, and no unlisted file may sit beside them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import ValidationError

from models_store.errors import ArtifactIntegrityError, InvalidBundleError
from models_store.registry.card import CARD_FILE, ArtifactEntry, ModelCard


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_entry(bundle: Path, relative: str, fmt: str) -> ArtifactEntry:
    """The card entry of a file already written into ``bundle``."""
    path = bundle / relative
    return ArtifactEntry(path=relative, sha256=sha256_file(path), bytes=path.stat().st_size,
                         format=fmt)  # fmt: skip


def read_card(bundle: Path) -> ModelCard:
    """The card of a bundle directory (not yet verified against the files)."""
    path = bundle / CARD_FILE
    if not path.is_file():
        raise InvalidBundleError(f"{bundle} is not a model bundle: it has no {CARD_FILE}")
    try:
        return ModelCard.from_json(path.read_bytes())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        message = f"{path} is not a valid model card: {where}: {first['msg']}"
        raise InvalidBundleError(message) from exc


def verify_bundle(bundle: Path, card: ModelCard | None = None) -> ModelCard:
    """Check every artifact against ``card`` (default: the bundle's own card) and return it.

    Pass the registry's card to check a downloaded bundle against the registry entry
    rather than against a card that travelled with the files.
    """
    card = card if card is not None else read_card(bundle)
    for name, entry in card.artifacts.items():
        path = bundle / entry.path
        if Path(entry.path).is_absolute() or ".." in Path(entry.path).parts:
            raise InvalidBundleError(f"{card.ref}: artifact {name} points outside its bundle")
        if not path.is_file():
            raise ArtifactIntegrityError(f"{card.ref}: artifact {entry.path} is missing")
        actual = sha256_file(path)
        if actual != entry.sha256:
            raise ArtifactIntegrityError(
                f"{card.ref}: artifact {entry.path} has sha256 {actual[:12]}…, the registry "
                f"says {entry.sha256[:12]}… — it was changed or corrupted; not loading it"
            )
    listed = {CARD_FILE, *(entry.path for entry in card.artifacts.values())}
    stray = sorted(
        str(path.relative_to(bundle))
        for path in bundle.rglob("*")
        if path.is_file() and str(path.relative_to(bundle)) not in listed
    )
    if stray:
        raise InvalidBundleError(f"{card.ref}: bundle {bundle} holds unlisted files {stray[:5]}")
    return card
