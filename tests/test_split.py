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
