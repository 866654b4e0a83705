"""The docs say what the code has: every setting with its default, every topic the worker
creates, every HTTP route and every command are documented, and every relative link in the
README and docs/ leads to a file and heading that exist (no broker, no network)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import faust
import pytest
import typer
from pydantic import BaseModel

from streams.app import create_app
from streams.cli.app import cli
from streams.cli.worker import app_topics
from streams.kafka.topic_admin import product_topics
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = (README, *sorted(DOCS.glob("*.md")))
APP_ID = "docsapp"  # shown as {app_id} in the docs
UNSET = "—"

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
LINK = re.compile(r"\[[^\]]*\]\(([^()\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *#*$", re.M)


def _text(page: Path) -> str:
    """The page without its fenced blocks (code is not markup)."""
    return FENCE.sub("", page.read_text())


def _section(page: Path, heading: str) -> str:
    """The text under ``## heading`` up to the next heading of that level."""
    text = page.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


# Settings -------------------------------------------------------------------------------


def setting_defaults(model: type[BaseModel], prefix: str) -> dict[str, Any]:
    """Every environment variable of ``model`` (nested models as ``PREFIX_FIELD__SUB``),
    mapped to its default."""
    delimiter = Settings.model_config["env_nested_delimiter"]
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name}".upper()
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= setting_defaults(annotation, f"{variable}{delimiter}")
        else:
            found[variable] = field.get_default(call_default_factory=True)
    return found


def shown_default(value: Any) -> str:
    """A default as the configuration page writes it: ``—`` when unset, else the literal a
    user would type (``true``, ``5`` for 5.0, ``.profitstream``)."""
    if value is None:
        return UNSET
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def documented_settings(page: Path) -> dict[str, str]:
    """Variable -> its default cell, from the page's tables (one variable a row)."""
    rows = re.findall(r"^\| `(PROFITSTREAM_[A-Z0-9_]+)` \| ([^|]*) \|", page.read_text(), re.M)
    repeated = [name for name, count in Counter(name for name, _ in rows).items() if count > 1]
    assert not repeated, f"documented twice in {page.name}: {repeated}"
    return {name: cell.strip() for name, cell in rows}


def default_cell_matches(cell: str, default: Any) -> bool:
    """``—`` (with an optional note) for an unset default, else the first code span."""
    expected = shown_default(default)
    if expected == UNSET:
        return cell.startswith(UNSET)
    literal = re.match(r"`([^`]*)`", cell)
    return literal is not None and literal.group(1) == expected


def test_every_setting_is_documented_under_its_variable() -> None:
    expected = setting_defaults(Settings, Settings.model_config["env_prefix"])
    documented = documented_settings(DOCS / "configuration.md")
    assert len(expected) >= 50  # the nested topic names and security options are counted
    assert sorted(set(expected) - set(documented)) == [], "missing in docs/configuration.md"
    assert sorted(set(documented) - set(expected)) == [], "no such setting in Settings"


def test_every_documented_default_is_the_default() -> None:
    expected = setting_defaults(Settings, Settings.model_config["env_prefix"])
    documented = documented_settings(DOCS / "configuration.md")
    wrong = {
        name: (documented[name], shown_default(default))
        for name, default in expected.items()
        if name in documented and not default_cell_matches(documented[name], default)
    }
    assert wrong == {}, "docs/configuration.md shows another default (shown, actual)"


def test_defaults_are_shown_as_a_user_types_them() -> None:
    assert [shown_default(v) for v in (None, True, 5.0, 0.02, 604_800_000, Path(".p"))] == [
        UNSET, "true", "5", "0.02", "604800000", ".p",
    ]  # fmt: skip
    assert default_cell_matches("`8`", 8)
    assert default_cell_matches("— (broker default)", None)
    assert not default_cell_matches("`7`", 8)
    assert not default_cell_matches("`8`", None)
    assert not default_cell_matches("— (unset)", 8)


# Topics and HTTP routes ----------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> tuple[faust.App, Settings]:
    """The worker's app, built as the worker builds it (nothing is contacted)."""
    settings = Settings(app_id=APP_ID, data_dir=tmp_path_factory.mktemp("docs"))
    return create_app(settings, ["127.0.0.1:1"], "redis://127.0.0.1:1/0"), settings


def _as_documented(topic: str) -> str:
    return topic.replace(f"{APP_ID}-", "{app_id}-", 1) if topic.startswith(APP_ID) else topic


def test_every_topic_the_worker_creates_has_a_row_in_docs_topics(
    app: tuple[faust.App, Settings],
) -> None:
    worker_app, settings = app
    topics = [_as_documented(spec.name) for spec in app_topics(worker_app, settings)]
    assert "{app_id}-client-state-changelog" in topics
    rows = set(re.findall(r"^\| `([^`]+)`", _section(DOCS / "topics.md", "The topics"), re.M))
    assert sorted(set(topics) - rows) == [], "missing in the table of docs/topics.md#the-topics"


def test_the_readme_lists_every_product_topic() -> None:
    topics = {spec.name for spec in product_topics(Settings())}
    rows = set(re.findall(r"^\| `([^`]+)`", _section(README, "Topics"), re.M))
    assert sorted(topics - rows) == [], "missing in the README's Topics table"


def test_every_http_route_is_documented(app: tuple[faust.App, Settings]) -> None:
    worker_app, _ = app
    router = worker_app.web.web_app.router  # type: ignore[attr-defined]
    routes = {route.resource.canonical for route in router.routes() if route.resource}
    assert "/predictions" in routes
    endpoints = _section(DOCS / "topics.md", "HTTP endpoints (worker web port)")
    documented = set(re.findall(r"^\| `(?:GET|POST) (/[^`?\[]*)", endpoints, re.M))
    assert sorted(routes - documented) == [], "missing in docs/topics.md's endpoint table"
    assert sorted(documented - routes) == [], "documented but not served"


# Commands ------------------------------------------------------------------------------


def commands() -> list[str]:
    """Every command a user can run, as typed after ``profitstream``."""
    found = []
    pending: list[tuple[tuple[str, ...], Any]] = [((), typer.main.get_command(cli))]
    while pending:
        path, command = pending.pop()
        if hasattr(command, "commands"):
            pending += [((*path, name), sub) for name, sub in command.commands.items()
                        if not sub.hidden]  # fmt: skip
        else:
            found.append(" ".join(path))
    return sorted(found)


@pytest.mark.parametrize(("page", "heading"), [(README, "CLI"), (DOCS / "cli.md", "Commands")])
def test_the_command_lists_name_every_command(page: Path, heading: str) -> None:
    listed = _section(page, heading)
    names = commands()
    assert {"worker", "models deploy", "predictions export"} <= set(names)
    missing = [name for name in names  # a form: the command, then its arguments or the end
               if not re.search(rf"(`profitstream |/ `){re.escape(name)}[ `]", listed)]  # fmt: skip
    assert missing == [], f"not in {page.name}'s {heading} list"


# Links ---------------------------------------------------------------------------------


def anchors(page: Path) -> set[str]:
    """The heading anchors a Markdown renderer gives the page (GitHub's rule: lower case,
    punctuation dropped, spaces to hyphens, ``-1``, ``-2`` on repeats)."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(_text(page)):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return found


def broken_links(page: Path, root: Path) -> list[str]:
    """The page's relative links whose file, or heading, does not exist. A link that leaves
    ``root`` (the design brief beside the repository) is not the repository's to check."""
    broken = []
    for target in LINK.findall(_text(page)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        if not resolved.is_relative_to(root):
            continue
        if not resolved.exists():
            broken.append(f"{page.name}: {target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{page.name}: {target} (no such heading)")
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page: Path) -> None:
    assert broken_links(page, ROOT) == []


def test_the_link_check_finds_missing_files_and_headings(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other\n\n## HTTP endpoints (worker web port)\n")
    page = tmp_path / "page.md"
    page.write_text(
        "## Intro: the `x`\n## Intro: the `x`\n"
        "[a](other.md#http-endpoints-worker-web-port) [b](#intro-the-x-1) [c](https://x.org)\n"
        "[d](missing.md) [e](other.md#nowhere) [f](#intro)\n"
        "```\n[g](inside-code.md)\n```\n"
    )  # fmt: skip
    assert broken_links(page, tmp_path) == [
        "page.md: missing.md (no such file)",
        "page.md: other.md#nowhere (no such heading)",
        "page.md: #intro (no such heading)",
    ]
