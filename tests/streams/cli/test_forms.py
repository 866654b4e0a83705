"""Every command form the README and the docs show, run as an operator would.

The forms are read from the command tables (the README's and docs/cli.md's), the inline
`profitstream ...` code and the shell blocks of the README and of every page under docs/;
each must name a real command, and the test below must run it with real arguments (on a
live broker, with a worker seeded with a model) and see exit code 0,
or, for the cases meant to fail, one `error:` line and no traceback. Along the way it
checks what operators tripped over (issue 13, finding 8): `@champion` / `@challenger`
follow the control log, `score` defaults to the deployed champion and reads CSV event
logs, approving an approved version succeeds, times with `Z` or `+00:00` are accepted and
naive ones refused, `--json` prints one document, and tables do not wrap in a pipe.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from models_store.registry.card import CARD_FILE
from streams.cli.app import cli
from streams.stack.processes import wait_until
from tests.services.cli import assert_one_line_error, run_cli
from tests.services.control_plane import V1, V2, audit, control_env
from tests.services.worker_process import running_worker

ROOT = Path(__file__).resolve().parents[3]
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
V3 = "profitability@3.0.0"
AS_OF_Z = "2024-04-20T12:00:00Z"
AS_OF_OFFSET = "2024-04-20T14:00:00+02:00"  # the same instant


def documented_forms() -> list[str]:
    """Every `profitstream ...` form in the docs, without the leading ``profitstream``."""
    forms = []
    for path in DOCS:
        text = path.read_text()
        forms += re.findall(r"`profitstream ([^`]+)`", text)
        for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
            forms += re.findall(r"(?:^|\s)\S*profitstream ([^#\n]+)", block, flags=re.MULTILINE)
        # Command table rows list further forms of a command group without the prefix.
        for row in re.findall(r"^\| `profitstream [^|]*(?:\\\|[^|]*)*\|", text, re.M):
            forms += re.findall(r"/ `([a-z][^`]+)`", row)
    return forms


def command_paths(form: str) -> list[tuple[str, ...]]:
    """The command(s) a form names, e.g. ``models show REF`` -> [("models", "show")];
    ``models list|show`` names two. Fails for a form naming no command."""
    root = typer.main.get_command(cli)
    paths: list[tuple[str, ...]] = [()]
    commands: list[Any] = [root]
    for token in form.split():
        if not all(hasattr(command, "commands") for command in commands):
            break
        step = [((*path, name), command.commands.get(name))
                for path, command in zip(paths, commands, strict=True)
                for name in token.split("|")]  # fmt: skip
        missing = [path for path, command in step if command is None]
        assert not missing, f"the docs show `profitstream {form}`: no command {missing}"
        paths, commands = [path for path, _ in step], [command for _, command in step]
    assert all(not hasattr(command, "commands") for command in commands), form
    return paths


def test_the_docs_name_real_commands() -> None:
    paths = {path for form in documented_forms() for path in command_paths(form)}
    assert ("models", "approve") in paths
    assert ("score",) in paths
    assert len(paths) >= 20


class Session:
    """Runs the CLI with one environment and records which commands it ran."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.ran: set[tuple[str, ...]] = set()

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``profitstream ARGS`` (a leading global option takes its value along)."""
        command = args[2:] if args[0].startswith("--") else args
        self.ran.update(command_paths(" ".join(command)))
        return run_cli(*args, env={**self.env, **(env or {})}, timeout_s=180)

    def ok(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run; exit code 0 and no traceback; stdout + stderr."""
        result = self.run(*args, env=env)
        output = result.stdout + result.stderr
        assert result.returncode == 0, (args, output)
        assert "Traceback" not in output, (args, output)
        return output

    def json(self, *args: str) -> Any:
        """Run with ``--json``: stdout is one JSON document."""
        result = self.run(*args, "--json")
        assert result.returncode == 0, (args, result.stderr)
        return json.loads(result.stdout)

    def fails(self, *args: str, fragments: tuple[str, ...] = ()) -> None:
        """Run; one ``error:`` line, no traceback."""
        assert_one_line_error(self.run(*args), *fragments)


def _bundle(registry: Path, version: str, into: Path) -> Path:
    """A copy of the registry's 2.0.0 bundle relabelled ``version`` (trained elsewhere)."""
    shutil.copytree(registry / "profitability" / "2.0.0", into)
    card = json.loads((into / CARD_FILE).read_text())
    card["version"] = version
    (into / CARD_FILE).write_text(json.dumps(card))
    return into


def _csv_logs(history: Path) -> tuple[Path, Path]:
    """The Parquet event log as CSV twice: as pandas writes its bytes (``b'...'``), and with
    key and value as plain text."""
    log = pd.read_parquet(history)
    as_bytes = history.with_name("events.csv")
    log.to_csv(as_bytes, index=False)
    as_text = history.with_name("events-text.csv")
    log.assign(key=[k.decode() for k in log["key"]],
               value=[v.decode() for v in log["value"]]).to_csv(as_text, index=False)  # fmt: skip
    return as_bytes, as_text


def test_every_documented_form_runs(
    worker_env: dict[str, str], kafka_bootstrap: str, control_registry: Path,
    control_keys: Path, tmp_path: Path,
) -> None:  # fmt: skip
    registry = tmp_path / "registry"
    shutil.copytree(control_registry, registry)  # this test registers a version in it
    env = control_env(worker_env, registry, control_keys)
    cli_ = Session(env)
    history = tmp_path / "history.parquet"

    # Without a broker or a worker.
    shown = cli_.ok("config", env={"COLUMNS": ""})  # not a terminal: no wrapping at 80
    assert env["PROFITSTREAM_DATA_DIR"] in shown
    assert cli_.json("config")["resolved"]["model registry"]["value"] == str(registry)
    cli_.ok("schemas", "--out", str(tmp_path / "docs"))
    cli_.ok("simulate", "--clients", "30", "--months", "5", "--out", str(history),
            "--oracle-draws", "0")  # fmt: skip
    csv_bytes, csv_text = _csv_logs(history)
    examples = ROOT / "docs" / "examples" / "import"
    imported = cli_.ok("import", str(examples / "retail.toml"), "--out",
                       str(tmp_path / "retail.parquet"))  # fmt: skip
    assert "14 events of 3 clients" in imported
    cli_.fails("train", "--events", str(tmp_path / "none.parquet"), fragments=("no event",))
    cli_.ok("control", "keygen", "bob", "--role", "viewer", "--keys", str(tmp_path / "k.json"))
    stackless = ("--data-dir", str(tmp_path / "stackless"))
    status = cli_.run(*stackless, "stack", "status")
    assert status.returncode == 1, status.stderr  # documented: 1 unless both run
    assert "Traceback" not in status.stdout + status.stderr
    cli_.ok(*stackless, "stack", "down")
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        cli_.fails(*stackless, "stack", "up", "--kafka-port", port, fragments=("in use",))
    cli_.ok("models", "register", str(_bundle(registry, "3.0.0", tmp_path / "v3")))
    listed = cli_.json("models", "list")
    assert [m["ref"] for m in listed["models"]] == [V1, V2, V3]
    cli_.fails("models", "show", "profitability@champion",
               fragments=("profitability@champion", "what the control log deploys"))  # fmt: skip
    # Nothing deployed yet: `score` falls back to PROFITSTREAM_MODEL, and says so.
    fallback = cli_.ok("score", "--in", str(history), "--out", str(tmp_path / "early.csv"),
                       "--as-of", AS_OF_Z)  # fmt: skip
    assert f"scoring with {V1} (PROFITSTREAM_MODEL; nothing deployed)" in fallback

    with running_worker(env):
        cli_.ran.add(("worker",))

        def seeded() -> bool:
            return any(r.get("type") == "seed" for r in audit(env, kafka_bootstrap))

        wait_until(seeded, timeout_s=60, what="the worker's seed in the audit trail")
        assert "profitability@1.0.0" in cli_.ok("models", "show", "profitability@champion")
        assert cli_.json("models", "show", "profitability@champion")["version"] == "1.0.0"
        cli_.fails("models", "show", "profitability@challenger",
                   fragments=("no experiment is running",))  # fmt: skip
        cli_.fails("models", "show", "other@champion", fragments=(f"is {V1}",))

        # The seeded champion is approved already: a success that sends nothing.
        assert "already approved" in cli_.ok("models", "approve", "profitability@champion")
        assert "approved" in cli_.ok("models", "approve", V2)
        assert "already approved" in cli_.ok("models", "approve", V2)
        cli_.ok("models", "deploy", V2)
        assert cli_.json("models", "show", "profitability@champion")["version"] == "2.0.0"
        cli_.ok("models", "rollback")
        cli_.ok("experiment", "start", "e-ab", "--challenger", V2, "--schedule", "0.05,0.25,1")
        assert cli_.json("models", "show", "profitability@challenger")["version"] == "2.0.0"

        # score: the deployed champion by default, CSV logs, offset times.
        out = tmp_path / "scored"
        out.mkdir()
        by_default = cli_.ok("score", "--in", str(csv_bytes), "--out", str(out / "a.csv"),
                             "--as-of", AS_OF_Z)  # fmt: skip
        assert f"{V1} (the deployed champion" in by_default
        cli_.ok("score", "--in", str(csv_text), "--out", str(out / "b.csv"), "--as-of", AS_OF_Z)
        cli_.ok("score", "--in", str(history), "--out", str(out / "c.parquet"),
                "--as-of", AS_OF_OFFSET, "--model", "profitability@champion")  # fmt: skip
        challenger = cli_.ok("score", "--in", str(history), "--out", str(out / "d.csv"),
                             "--as-of", AS_OF_Z, "--model", "profitability@challenger")  # fmt: skip
        assert f"by {V2}" in challenger
        margins = [pd.read_csv(out / "a.csv"), pd.read_csv(out / "b.csv"),
                   pd.read_parquet(out / "c.parquet")]  # fmt: skip
        assert len(margins[0]) > 0
        for other in margins[1:]:
            assert list(other["client_id"]) == list(margins[0]["client_id"])
            np.testing.assert_allclose(other["predicted_margin"], margins[0]["predicted_margin"],
                                       rtol=1e-12)  # fmt: skip
        assert set(margins[0]["model_version"]) == {"1.0.0"}
        naive = "2024-04-20T12:00:00"
        cli_.fails("score", "--in", str(csv_bytes), "--out", str(out / "e.csv"),
                   "--as-of", naive, fragments=("--as-of", "needs a UTC offset"))  # fmt: skip

        # The workers publish accuracy records every few seconds once they score; before
        # the first one the command says so in one line.
        quality = cli_.run("monitor", "status", "--since-hours", "1")
        if quality.returncode != 0:
            assert_one_line_error(quality, "monitor")
        assert "Traceback" not in quality.stdout + quality.stderr

        assert "(running)" in cli_.ok("experiment", "status")
        status_doc = cli_.json("experiment", "status", "e-ab")
        assert status_doc["state"] == "running"
        assert status_doc["experiment"]["challenger"] == V2
        cli_.ok("experiment", "ramp", "e-ab")
        cli_.ok("experiment", "stop", "e-ab")
        cli_.ok("experiment", "shadow", "e-shadow", "--challenger", "profitability@2.0.0")
        cli_.ok("experiment", "promote", "e-shadow")
        cli_.ok("models", "rollback", "profitability@1.0.0")
        cli_.ok("models", "approve", V3)
        cli_.ok("models", "retire", V3)
        cli_.ok("clients", "erase", "client-00003")
        cli_.ok("simulate", "--clients", "5", "--months", "2", "--to-kafka")
        cli_.ok("predictions", "export", "--out", str(tmp_path / "latest.csv"))
        latest = pd.read_csv(tmp_path / "latest.csv", dtype={"client_id": str})
        assert "client-00003" not in set(latest["client_id"])  # erased above

        trail = cli_.ok("audit", env={"COLUMNS": ""})  # not a terminal: cells stay whole
        assert "approve (register)" in trail
        assert len(cli_.json("audit", "--limit", "3")) == 3
        for at in (AS_OF_Z, "2026-11-29T09:00:00+00:00", "2026-11-29T09:00:00.5-05:00"):
            cli_.ok("audit", "--client", "client-00001", "--at", at)
        answer = cli_.json("audit", "--client", "client-00003", "--at", "2099-01-01T00:00:00Z")
        assert answer["erased_at"] is not None
        cli_.fails("audit", "--client", "c", "--at", "2026-11-29T09:00:00",
                   fragments=("--at", "no UTC offset"))  # fmt: skip
        cli_.fails("audit", "--client", "c", "--at", "yesterday", fragments=("ISO-8601",))

    documented = {path for form in documented_forms() for path in command_paths(form)}
    assert documented <= cli_.ran, f"documented but not run: {sorted(documented - cli_.ran)}"
