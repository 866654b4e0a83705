"""`profitstream control keygen`: add a principal with a fresh key to a control keys file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from streams.cli.context import make_console
from streams.errors import ProfitstreamError

out = make_console()

control_cli = typer.Typer(help="Control-plane keys: create a principal.", no_args_is_help=True)


@control_cli.command("keygen")
def keygen(
    name: Annotated[str, typer.Argument(help="the principal's name")],
    role: Annotated[str, typer.Option(help="viewer | operator | admin")],
    keys: Annotated[Path, typer.Option(help="the keys file to create or add to")],
) -> None:
    """Add a principal with a fresh random key to a keys file (created with mode 600)."""
    # When the command runs, not at the top: the signing code is slow to import, and the
    # root app imports this module for every command.
    from models_store.control.commands import Role
    from models_store.control.signing import new_key, parse_keyring

    if role not in {r.value for r in Role}:
        raise ProfitstreamError(f"--role {role!r}: use viewer, operator or admin")
    document: dict[str, Any] = {"principals": {}}
    if keys.exists():
        try:
            document = json.loads(keys.read_text())
        except ValueError as exc:
            raise ProfitstreamError(f"{keys} is not JSON: {exc}") from exc
        parse_keyring(document, keys.parent)  # refuse to extend a broken file
    if name in document["principals"]:
        raise ProfitstreamError(f"{name!r} is already in {keys}; pick another name")
    document["principals"][name] = {"role": role, "key": new_key()}
    descriptor = os.open(keys, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(document, file, indent=2)
    out.print(f"added {name} ({role}) to {keys}", highlight=False)
