"""A full run of a large project checks half of its modules in a forked second process
(``run/link.py``, ``_check_split``): the findings, the snapshot it leaves and the incremental
runs that follow are those of one process; a child that fails has its modules checked by the
parent."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from asyncrace.run import engine, link
from asyncrace.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Every single-file fixture and every fixture project, as one project."""
    root = tmp_path / "proj"
    root.mkdir()
    for i, f in enumerate(sorted(FIXTURES.glob("arc*/*.py"))):
        shutil.copy(f, root / f"m{i:03d}_{f.name}")
    for d in sorted((FIXTURES / "projects").iterdir()):
        if d.is_dir():
            shutil.copytree(d, root / d.name)
    return root


def _run(root: Path, jobs: int, cache: Path | None) -> list[dict[str, Any]]:
    paths = sorted(root.rglob("*.py"))
    settings = Settings(project_root=root)
    result = engine.check(paths, settings, jobs=jobs, cache_dir=cache)
    return [
        {"path": d.path, "code": d.code, "line": d.span.start.row, "message": d.message}
        for d in result.diagnostics
    ]


def test_two_processes_report_what_one_does(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link, "SPLIT_AT", 2)
    splits: list[int] = []
    real = link._check_split

    def counting(*a: Any, **k: Any) -> Any:
        splits.append(len(a[2]))
        return real(*a, **k)

    monkeypatch.setattr(link, "_check_split", counting)
    one = _run(project, 1, None)
    two = _run(project, 2, None)
    assert splits and splits[0] > 100  # the split ran, over the whole project
    assert len(one) > 100  # the fixtures' findings
    assert json.dumps(two) == json.dumps(one)


def test_the_snapshot_of_a_split_run_serves_incremental_runs(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link, "SPLIT_AT", 2)
    cache = tmp_path / "cache"
    _run(project, 2, cache)  # the split run writes the snapshot
    edited = sorted(project.glob("m*_arc003_bad*.py"))[0]
    edited.write_text(edited.read_text() + "\n# an edit\n")
    after = _run(project, 2, cache)  # incremental, from the split run's snapshot
    assert json.dumps(after) == json.dumps(_run(project, 1, None))


def test_a_child_that_fails_has_its_modules_checked_here(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link, "SPLIT_AT", 2)
    parent = os.getpid()
    real = link.check_modules

    def failing_in_child(*a: Any, **k: Any) -> Any:
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return real(*a, **k)

    monkeypatch.setattr(link, "check_modules", failing_in_child)
    two = _run(project, 2, None)
    monkeypatch.setattr(link, "check_modules", real)
    assert json.dumps(two) == json.dumps(_run(project, 1, None))


def test_a_child_that_dies_midway_loses_no_module(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child takes batches, then dies while holding one: the batches it took and never
    reported are checked here, and none is reported twice."""
    monkeypatch.setattr(link, "SPLIT_AT", 2)
    monkeypatch.setattr(link, "SPLIT_BATCHES", 64)
    parent = os.getpid()
    real = link.check_modules
    calls = [0]

    def dying_in_child(*a: Any, **k: Any) -> Any:
        if os.getpid() != parent:
            calls[0] += 1
            if calls[0] == 3:
                os._exit(7)
        return real(*a, **k)

    monkeypatch.setattr(link, "check_modules", dying_in_child)
    two = _run(project, 2, None)
    monkeypatch.setattr(link, "check_modules", real)
    assert json.dumps(two) == json.dumps(_run(project, 1, None))


def _facts(root: Path) -> list[Any]:
    from asyncrace.run import pipeline
    from asyncrace.run.jobs import FileJob

    out = []
    packages: dict[str, list[str]] = {}
    for f in sorted(root.rglob("*.py")):
        mod, pkg = engine.module_name(f, packages)
        o = pipeline.analyze_bytes(FileJob(str(f), str(f), mod, pkg), f.read_bytes())
        if o.facts is not None:
            out.append(o.facts)
    return out


def test_the_tables_built_together_are_those_of_one_process(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The two processes share out the mention index and the spawn-site table (each part
    computed by one of them, then exchanged): both end with what one process builds."""
    monkeypatch.setattr(link, "SPLIT_AT", 2)
    monkeypatch.setattr(link, "SHARE_BATCHES", 16)
    facts = _facts(project)
    seen: list[tuple[Any, Any, Any]] = []
    real = link.check_modules

    def recording(analysis: Any, *a: Any, **k: Any) -> Any:
        if not seen:  # the tables as this process has them when it starts checking
            before = len(analysis.contributions)
            sites = analysis.spawn_sites()
            seen.append((analysis.mentions(), dict(analysis.contributions), sites, before))
        return real(analysis, *a, **k)

    monkeypatch.setattr(link, "check_modules", recording)
    one = link.link_and_check(facts, Settings(project_root=project), track=True, jobs=1)
    tables_one = seen.pop()
    two = link.link_and_check(facts, Settings(project_root=project), track=True, jobs=2)
    tables_two = seen.pop()
    assert tables_two[0] == tables_one[0]
    assert tables_two[1] == tables_one[1]
    assert tables_two[2] == tables_one[2]
    assert tables_one[3] == 0  # one process builds the table when first asked
    assert tables_two[3] == len(two[1].index.modules)  # two: every part, before any check
    assert [repr(d) for d in two[0]] == [repr(d) for d in one[0]]


@pytest.mark.parametrize("phase", ["mentions", "contributions"])
def test_a_child_that_dies_while_building_the_tables_loses_nothing(
    project: Path, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    """The child dies in the middle of its share of a table: the parts it never sent are
    computed by the parent, and the findings are one process's."""
    from asyncrace.analysis import concurrency, summaries

    monkeypatch.setattr(link, "SPLIT_AT", 2)
    monkeypatch.setattr(link, "SHARE_BATCHES", 16)
    parent = os.getpid()
    calls = [0]
    if phase == "mentions":
        real_of = summaries.ModuleMentions.of

        def dying_of(m: Any) -> Any:
            if os.getpid() != parent:
                calls[0] += 1
                if calls[0] == 3:
                    os._exit(7)
            return real_of(m)

        monkeypatch.setattr(summaries.ModuleMentions, "of", staticmethod(dying_of))
    else:
        real_contribute = concurrency.Concurrency.contribute

        def dying_contribute(self: Any, modules: Any) -> Any:
            if os.getpid() != parent:
                calls[0] += 1
                if calls[0] == 2:
                    os._exit(7)
            return real_contribute(self, modules)

        monkeypatch.setattr(concurrency.Concurrency, "contribute", dying_contribute)
    two = _run(project, 2, None)
    monkeypatch.undo()
    assert json.dumps(two) == json.dumps(_run(project, 1, None))


def test_a_table_part_that_fails_is_met_again_by_the_checks(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module whose spawn sites cannot be computed does not fail the sharing of the tables:
    its part is left to the checks that ask for the table, where one process meets it too
    (an ARC902 of that rule and module)."""
    from asyncrace.analysis import concurrency
    from asyncrace.analysis.facade import Analysis
    from asyncrace.analysis.index import Index

    facts = _facts(project)
    victim = sorted(m.module for m in facts if "_arc003_bad" in m.module)[0]
    real = concurrency.Concurrency._contribution

    def failing(self: Any, m: Any) -> Any:
        if m.module == victim:
            raise RuntimeError("no spawn sites here")
        return real(self, m)

    monkeypatch.setattr(concurrency.Concurrency, "_contribution", failing)
    analysis = Analysis(Index(facts), Settings(project_root=project))
    table = sorted(analysis.index.modules.values(), key=lambda m: m.module)
    parts = [table[i : i + 8] for i in range(0, len(table), 8)]
    tokens = (link._token_pipe(len(parts)), link._token_pipe(len(parts)))
    try:
        link._share_tables(analysis, parts, tokens, lambda mine: None)  # (the other is gone)
    finally:
        for fd in tokens:
            os.close(fd)
    assert victim not in analysis.contributions
    with pytest.raises(RuntimeError):
        analysis.spawn_sites()
    one = _run(project, 1, None)
    assert any(d["code"] == "ARC902" for d in one)
    monkeypatch.setattr(link, "SPLIT_AT", 2)
    assert json.dumps(_run(project, 2, None)) == json.dumps(one)
