"""Who may issue control commands: principals, their roles and HMAC-SHA256 keys.

Keys live in a JSON file that workers and the CLI read (``PROFITSTREAM_CONTROL_KEYS``),
never on the topic::

    {"principals": {"alice": {"role": "admin", "key": "<64+ hex digits>"},
                    "ci-bot": {"role": "operator", "key_file": "/run/secrets/ci-bot"}}}

A worker needs every principal's key to check signatures; someone issuing commands needs
only their own entry. Every worker must read the same principals, or they would fold the
control log differently.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from models_store.control.commands import Role, signed_body
from models_store.errors import ModelStoreError

MIN_KEY_BYTES = 32


class KeyringError(ModelStoreError):
    """The keys file is missing, unreadable or malformed."""


@dataclass(frozen=True)
class Principal:
    """Someone who signs commands."""

    name: str
    role: Role
    key: bytes


@dataclass(frozen=True)
class Keyring:
    """Principals by name."""

    principals: dict[str, Principal]

    def get(self, name: str) -> Principal | None:
        """The principal called ``name``, if known."""
        return self.principals.get(name)


def _key_bytes(name: str, entry: dict[str, Any], base: Path) -> bytes:
    if "key" in entry:
        text = str(entry["key"]).strip()
    elif "key_file" in entry:
        path = Path(str(entry["key_file"]))
        path = path if path.is_absolute() else base / path
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise KeyringError(
                f"principal {name!r}: cannot read key_file {path}: {exc.strerror}"
            ) from exc
    else:
        raise KeyringError(f"principal {name!r} has neither 'key' nor 'key_file'")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyringError(f"principal {name!r}: the key must be hex digits") from None
    if len(key) < MIN_KEY_BYTES:
        raise KeyringError(
            f"principal {name!r}: the key has {len(key)} bytes, at least {MIN_KEY_BYTES} needed "
            "(`profitstream control keygen` makes one)"
        )
    return key


def parse_keyring(document: object, base: Path) -> Keyring:
    """The keyring described by a parsed keys file (``base``: where relative key files are)."""
    if not isinstance(document, dict) or not isinstance(document.get("principals"), dict):
        raise KeyringError('the keys file must be a JSON object {"principals": {NAME: {...}}}')
    principals = {}
    for name, entry in document["principals"].items():
        if not isinstance(entry, dict):
            raise KeyringError(f"principal {name!r} must be an object with 'role' and 'key'")
        try:
            role = Role(str(entry.get("role")))
        except ValueError:
            roles = ", ".join(role.value for role in Role)
            raise KeyringError(f"principal {name!r}: role must be one of {roles}") from None
        principals[str(name)] = Principal(str(name), role, _key_bytes(str(name), entry, base))
    return Keyring(principals)


def load_keyring(path: Path) -> Keyring:
    """Read the keys file at ``path``."""
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise KeyringError(
            f"cannot read the control keys file {path}: {exc.strerror}; "
            "set PROFITSTREAM_CONTROL_KEYS (`profitstream control keygen` creates one)"
        ) from exc
    except json.JSONDecodeError as exc:
        raise KeyringError(f"the control keys file {path} is not JSON: {exc}") from exc
    return parse_keyring(document, path.parent)


def new_key() -> str:
    """A fresh random key, hex."""
    return secrets.token_hex(MIN_KEY_BYTES)


def signature(document: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 (hex) of the document's canonical body."""
    return hmac.new(key, signed_body(document), hashlib.sha256).hexdigest()


def sign(document: dict[str, Any], key: bytes) -> dict[str, Any]:
    """``document`` with its ``signature``."""
    return {**document, "signature": signature(document, key)}


def signature_matches(document: dict[str, Any], key: bytes) -> bool:
    """Whether the document's ``signature`` is the HMAC of its body (constant time)."""
    given = document.get("signature")
    # compare_digest refuses non-ASCII text: such a signature simply does not match.
    return (
        isinstance(given, str)
        and given.isascii()
        and hmac.compare_digest(given, signature(document, key))
    )


def issue(
    kind: str,
    args: dict[str, Any],
    principal: Principal,
    *,
    issued_at: datetime,
    expected_revision: int | None = None,
    command_id: str | None = None,
) -> dict[str, Any]:
    """A new signed command document, ready to publish."""
    document = {
        "schema_version": 1,
        "command_id": command_id or str(uuid.uuid4()),
        "type": kind,
        "issued_by": principal.name,
        "issued_at": issued_at.isoformat(),
        "nonce": secrets.token_hex(16),
        "expected_revision": expected_revision,
        "args": args,
    }
    return sign(document, principal.key)
