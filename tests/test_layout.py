"""The package layout (``docs/architecture.md``, "Layout"): the import graph of asyncrace's
own modules has no circle, and data flows one way, front end -> run -> rules -> analysis, with
the shared layers (diagnostics, settings, suppression, output...) below all of them.

Every import counts: at module level, inside functions, under ``if TYPE_CHECKING:``. A package's
own ``__init__`` that Python runs before a submodule is not an edge (an ``__init__`` that
imports is an edge of its own, from the package). ``python tests/test_layout.py`` prints the
graph."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import asyncrace

ROOT = Path(asyncrace.__file__).resolve().parent
FRONT_ENDS = frozenset(
    {"asyncrace.cli", "asyncrace.lsp", "asyncrace.flake8_plugin", "asyncrace.__main__"}
)


def module_names() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package (``__init__`` as the package)."""
    out: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the asyncrace modules it imports (``from pkg import name`` is an edge to
    ``pkg.name`` when that is a module, else to ``pkg``)."""
    modules = module_names()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package of ``mod``
                    pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    pkg = pkg[: len(pkg) - node.level + 1]
                    base = ".".join([*pkg, base] if base else pkg)
                for a in node.names:
                    full = f"{base}.{a.name}"
                    targets.append(full if full in modules else base)
            for t in targets:
                # ``import asyncrace.run.engine`` names the module; its packages are not edges
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != mod and (t == "asyncrace" or t.startswith("asyncrace.")):
                    graph[mod].add(t)
    return graph


def layer(mod: str) -> str:
    if mod in FRONT_ENDS:
        return "front end"
    for name in ("run", "rules", "analysis"):
        if mod == f"asyncrace.{name}" or mod.startswith(f"asyncrace.{name}."):
            return name
    return "shared"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports (its modules, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        path.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*path[path.index(n) :], n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_graph_is_read() -> None:
    graph = import_graph()
    # a few edges that must be there, whichever way they are written
    assert "asyncrace.run.engine" in graph["asyncrace.cli"]
    assert "asyncrace.run.incremental" in graph["asyncrace.run.engine"]  # inside a function
    assert "asyncrace.analysis.facade" in graph["asyncrace.rules.base"]
    assert "asyncrace.analysis.facts" in graph["asyncrace.analysis.index"]
    assert "asyncrace" in graph["asyncrace.run.cache"]  # ``from asyncrace import code_version``


def test_no_import_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


# what each layer may import: only what is below it
ALLOWED = {
    "front end": {"front end", "run", "rules", "analysis", "shared"},
    "run": {"run", "rules", "analysis", "shared"},
    "rules": {"rules", "analysis", "shared"},
    "analysis": {"analysis", "shared"},
    "shared": {"shared"},
}


def test_data_flows_one_way() -> None:
    wrong = [
        f"{m} ({layer(m)}) imports {t} ({layer(t)})"
        for m, targets in sorted(import_graph().items())
        for t in sorted(targets)
        if layer(t) not in ALLOWED[layer(m)]
    ]
    assert not wrong, "\n".join(wrong)


def test_facts_are_the_bottom_of_the_analysis() -> None:
    """The facts import nothing of the analysis; the summaries know nothing of the concurrency
    model, which is built on them."""
    graph = import_graph()
    assert not {t for t in graph["asyncrace.analysis.facts"] if layer(t) != "shared"}
    assert "asyncrace.analysis.concurrency" not in graph["asyncrace.analysis.summaries"]


if __name__ == "__main__":
    for m, targets in sorted(import_graph().items()):
        print(f"{m} [{layer(m)}] -> {', '.join(sorted(targets)) or '-'}")
    cycle = find_cycle(import_graph())
    print("circle:", " -> ".join(cycle) if cycle else "none")
    sys.exit(1 if cycle else 0)
