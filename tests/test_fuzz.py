"""Fuzzing: the checker never crashes (no exception, no ARC902), terminates within a bound and
is deterministic (two runs, and jobs 1 against jobs 2, give byte-identical output) on

* programs generated from Python's grammar (hypothesmith ``from_grammar``) and from libcst's
  node types (``from_node``), and
* mutations of the fixture files: lines deleted, duplicated or swapped, ``await``/``async``
  or indentation inserted, the file truncated; and expressions wrapped in ``(x or _nameless)``,
  the same value as a ref of no name (a callee, an argument, a caught type, a context
  manager, an awaited or stored value), in single files and in projects of two or three.

The normal suite runs a bounded number of examples (about 695, ~22 s). A longer campaign selects another
settings profile with an environment variable, and records its seed::

    ASYNCRACE_FUZZ_PROFILE=campaign python -m pytest tests/test_fuzz.py \\
        --hypothesis-seed=20261124 --hypothesis-show-statistics -p no:cacheprovider

(``ASYNCRACE_FUZZ_EXAMPLES`` overrides the number of examples of the campaign profile;
with ``ASYNCRACE_FUZZ_COUNT_DIR`` set, every example run appends one byte to
``<dir>/<test name>``, so a campaign cut short by a time limit still says how much it ran.)
"""

from __future__ import annotations

import ast
import os
import random
import time
import warnings
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
hypothesmith = pytest.importorskip("hypothesmith")

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from asyncrace.output import render  # noqa: E402
from asyncrace.run import pipeline  # noqa: E402
from asyncrace.run.engine import StdinInput, check  # noqa: E402
from asyncrace.settings import Settings  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_FILES = sorted(FIXTURES.glob("arc*/*.py"))
# a generous bound: an example that takes longer than this is a hang worth a look
TIME_BOUND = 30.0

settings.register_profile(
    "asyncrace-fuzz",
    max_examples=150,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=False,
)
settings.register_profile(
    "campaign",
    max_examples=int(os.environ.get("ASYNCRACE_FUZZ_EXAMPLES", "100000")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
PROFILE = settings.get_profile(os.environ.get("ASYNCRACE_FUZZ_PROFILE", "asyncrace-fuzz"))
CAMPAIGN = os.environ.get("ASYNCRACE_FUZZ_PROFILE") == "campaign"

# hypothesmith warns about grammar features it cannot express, and compiles what it generates
# (SyntaxWarning: "'str' object is not callable"): not our concern
warnings.filterwarnings("ignore", module="hypothesmith")
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")


def _tick(test: str) -> None:
    where = os.environ.get("ASYNCRACE_FUZZ_COUNT_DIR")
    if where:
        with open(os.path.join(where, test), "ab") as f:
            f.write(b".")


def _run(text: str, name: str = "fuzzed.py", *, jobs: int = 1) -> str:
    started = time.perf_counter()
    result = check([], Settings(), stdin=StdinInput(name, text), jobs=jobs)
    elapsed = time.perf_counter() - started
    assert elapsed < TIME_BOUND, f"took {elapsed:.1f}s"
    internal = [d for d in result.diagnostics if d.code == "ARC902"]
    assert not internal, internal
    return render("json", result.diagnostics, result.sources)


def _check_program(text: str) -> None:
    first = _run(text)
    assert _run(text) == first


def _project(tmp: Path, texts: list[str]) -> list[Path]:
    paths = []
    for i, text in enumerate(texts):
        p = tmp / f"m{i}.py"
        p.write_text(text, encoding="utf-8", newline="")
        paths.append(p)
    return paths


def _check_jobs(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """jobs=1 in the parent against jobs=2 through the pool (the threshold lowered so the
    pool is used for a handful of files)."""
    one = check(paths, Settings(), jobs=1)
    with monkeypatch.context() as m:
        m.setattr(pipeline, "PARALLEL_THRESHOLD", 1)
        two = check(paths, Settings(), jobs=2)
    assert not [d for d in one.diagnostics if d.code == "ARC902"]
    assert render("json", one.diagnostics, one.sources) == render(
        "json", two.diagnostics, two.sources
    )


# ------------------------------------------------------------------------ generated programs


@PROFILE
@given(hypothesmith.from_grammar())
def test_generated_programs_from_grammar(source: str) -> None:
    _tick("from_grammar")
    _check_program(source)


@settings(PROFILE, max_examples=PROFILE.max_examples if CAMPAIGN else 20)
@given(hypothesmith.from_node())
def test_generated_programs_from_nodes(source: str) -> None:
    _tick("from_nodes")
    _check_program(source)


# ---------------------------------------------------------------------------- mutations


def _mutate(lines: list[str], data: st.DataObject) -> list[str]:
    ops = data.draw(
        st.lists(
            st.sampled_from(
                ["delete", "duplicate", "swap", "await", "async", "indent", "dedent", "truncate"]
            ),
            min_size=1,
            max_size=4,
        ),
        label="mutations",
    )
    for op in ops:
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1), label=f"{op} at")
        line = lines[i]
        body = line.lstrip(" \t")
        pad = line[: len(line) - len(body)]
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, line)
        elif op == "swap":
            j = data.draw(st.integers(0, len(lines) - 1), label="with")
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "await":
            lines[i] = pad + "await " + body
        elif op == "async":
            lines[i] = pad + "async " + body
        elif op == "indent":
            lines[i] = "    " + line
        elif op == "dedent":
            lines[i] = line[4:] if line.startswith("    ") else body
        elif op == "truncate":
            text = "".join(lines)
            cut = data.draw(st.integers(0, len(text)), label="truncate at")
            lines = text[:cut].splitlines(keepends=True)
    return lines


@settings(PROFILE, max_examples=PROFILE.max_examples * (1 if CAMPAIGN else 3))
@given(st.sampled_from(FIXTURE_FILES), st.data())
def test_mutated_fixtures(path: Path, data: st.DataObject) -> None:
    _tick("mutated_fixtures")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    text = "".join(_mutate(lines, data))
    _check_program(text)


@settings(PROFILE, max_examples=PROFILE.max_examples if CAMPAIGN else 15)
@given(
    paths=st.lists(st.sampled_from(FIXTURE_FILES), min_size=2, max_size=4, unique=True),
    data=st.data(),
)
def test_mutated_projects_jobs_1_and_2(
    paths: list[Path], data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _tick("mutated_projects_jobs")
    texts = []
    for p in paths:
        lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
        texts.append("".join(_mutate(lines, data)))
    tmp = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        _check_jobs(_project(tmp, texts), mp)


# ------------------------------------------------------------------------ refs of no name


class _Nameless(ast.NodeTransformer):
    """Wrap expressions, each with probability ``p``, in ``(x or _nameless)``: the same value,
    but a ref of no name (as the callee of ``(factory or asyncio.Event)()`` is), which every
    fact and rule must take as it comes. Two index errors on such refs reached users' runs
    before a test did (``804b5bf``; ``a240c9c``), and a third was found by this mutation of
    a held-out package (ARC006's catch of a cancellation named by a call's argument)."""

    def __init__(self, rnd: random.Random, p: float) -> None:
        self.rnd, self.p = rnd, p

    def _maybe(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Starred) or self.rnd.random() >= self.p:
            return node
        return ast.BoolOp(op=ast.Or(), values=[node, ast.Name(id="_nameless", ctx=ast.Load())])

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        node.func = self._maybe(node.func)
        node.args = [self._maybe(a) for a in node.args]
        for k in node.keywords:
            k.value = self._maybe(k.value)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        self.generic_visit(node)
        if node.type is not None:
            node.type = self._maybe(node.type)
        return node

    def visit_withitem(self, node: ast.withitem) -> ast.AST:
        self.generic_visit(node)
        node.context_expr = self._maybe(node.context_expr)
        return node

    def visit_Await(self, node: ast.Await) -> ast.AST:
        self.generic_visit(node)
        node.value = self._maybe(node.value)
        return node

    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        self.generic_visit(node)
        node.value = self._maybe(node.value)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.ctx, ast.Load):
            node.value = self._maybe(node.value)
        return node


def _nameless(text: str, seed: int, p: float) -> str:
    tree = _Nameless(random.Random(seed), p).visit(ast.parse(text))
    return ast.unparse(ast.fix_missing_locations(tree))


@settings(PROFILE, max_examples=PROFILE.max_examples if CAMPAIGN else 60)
@given(
    paths=st.lists(st.sampled_from(FIXTURE_FILES), min_size=1, max_size=3, unique=True),
    seed=st.integers(0, 2**32 - 1),
    p=st.sampled_from([0.05, 0.2, 0.5, 1.0]),
)
@example(  # ARC002's stored-token search took a ref of no name (found by this test)
    paths=[
        FIXTURES / "arc001" / "arc001_bad_async_for.py",
        FIXTURES / "arc002" / "arc002_good_record_reset_by_callers.py",
    ],
    seed=0,
    p=0.05,
)
def test_fixtures_with_refs_of_no_name(
    paths: list[Path], seed: int, p: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _tick("nameless_refs")
    texts = [_nameless(q.read_text(encoding="utf-8"), seed + i, p) for i, q in enumerate(paths)]
    if len(texts) == 1:
        _check_program(texts[0])
        return
    tmp = tmp_path_factory.mktemp("project")
    started = time.perf_counter()
    result = check(_project(tmp, texts), Settings(), jobs=1)
    assert time.perf_counter() - started < TIME_BOUND
    assert not [d for d in result.diagnostics if d.code == "ARC902"]
