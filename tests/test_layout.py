"""The package layout holds: no import cycle between modules, and every import between
rooms (subpackages) goes down the order below (pure: reads the source, imports nothing)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("features", "models_store", "streams")
# Lowest first: a room may import only the rooms before it. ``streams`` is the root's
# shared modules (settings, errors, metrics...); ``streams.top`` the composition root and
# the HTTP views, which wire every room of the worker together.
ORDER = (
    "features", "features.simulation", "features.imports",
    "models_store", "models_store.registry", "models_store.model", "models_store.scoring",
    "models_store.monitoring", "models_store.training", "models_store.experiments",
    "models_store.control",
    "streams", "streams.kafka", "streams.control", "streams.pipeline", "streams.stack",
    "streams.top", "streams.cli",
)  # fmt: skip
TOP = {"streams.app", "streams.views"}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports, at the top or inside functions."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets = [known(f"{node.module}.{alias.name}") for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [known(alias.name) for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t and t != name)
    return graph


def _room(module: str) -> str:
    if module in TOP:
        return "streams.top"
    parts = module.split(".")
    if len(parts) > 1 and (ROOT / parts[0] / parts[1]).is_dir():
        return ".".join(parts[:2])  # a subpackage's module, or the subpackage itself
    if parts[0] in ORDER:
        return parts[0]
    raise AssertionError(f"{module} is in no room of ORDER")


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, if there is any (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_imports_itself_back() -> None:
    cycle = _cycle(_imports(_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_import_between_rooms_goes_down() -> None:
    rank = {room: index for index, room in enumerate(ORDER)}
    upward = sorted(
        f"{module} ({_room(module)}) imports {target} ({_room(target)})"
        for module, targets in _imports(_modules()).items()
        for target in targets
        if rank[_room(target)] > rank[_room(module)]
    )
    assert not upward, "\n".join(upward)


def test_every_module_is_in_a_room() -> None:
    for module in _modules():
        _room(module)
