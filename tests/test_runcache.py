"""The run cache answers an unchanged tree (same bytes, same settings, same asyncrace) without
parsing or running a rule, gives byte-identical output, and never trusts a bad entry."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from asyncrace.cli import main
from asyncrace.run import engine

SNIPPET = """\
import asyncio


class Cache:
    async def load(self, key):
        self._current = key
        await asyncio.sleep(0)
        return self._current


async def load_all(cache: Cache, keys):
    return await asyncio.gather(*(cache.load(k) for k in keys))
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    (tmp_path / "app.py").write_text(SNIPPET)
    (tmp_path / "other.py").write_text("X = 1\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def rule_runs(full_runs: list[int]) -> list[int]:
    """Number of modules of each run of the rules in full (``conftest.full_runs``)."""
    return full_runs


def _check(*args: str) -> str:
    # these tests are about the run cache: keep the project snapshot (which answers a tree
    # with few changes, see test_incremental.py) out of their way
    shutil.rmtree(Path(".asyncrace_cache") / "projects", ignore_errors=True)
    r = CliRunner().invoke(
        main, ["check", ".", "--output-format", "json", "--exit-zero", "-j", "1", *args]
    )
    assert r.exit_code == 0, r.output
    return r.stdout


def _runs_dir(proj: Path) -> Path:
    return proj / ".asyncrace_cache" / "runs"


def test_unchanged_tree_runs_no_rule_and_is_identical(proj: Path, rule_runs: list[int]) -> None:
    uncached = _check("--no-cache")
    rule_runs.clear()
    cold = _check()
    assert rule_runs == [2]
    warm = _check()
    assert rule_runs == [2]  # the second run did not link or run rules
    assert cold == warm == uncached
    assert [d["code"] for d in json.loads(warm)] == ["ARC001"]


def test_a_change_of_bytes_or_settings_is_a_miss(proj: Path, rule_runs: list[int]) -> None:
    _check()
    (proj / "other.py").write_text("X = 2\n")
    _check()
    _check("--select", "ARC003")
    assert rule_runs == [2, 2, 2]
    assert json.loads(_check("--select", "ARC003")) == []
    assert rule_runs == [2, 2, 2]


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"{",
        b"\xff\xfe",
        b"[]",
        b'{"schema": 1}',
        b'{"schema": 1, "version": "0.0.0", "key": "x", "files": 1, "reported": [], "suppressed": []}',
    ],
)
def test_a_bad_entry_is_ignored_and_rewritten(
    proj: Path, rule_runs: list[int], garbage: bytes
) -> None:
    good = _check()
    (entry,) = _runs_dir(proj).glob("*.json")
    entry.write_bytes(garbage)
    assert _check() == good
    assert len(rule_runs) == 2  # not trusted: analyzed again
    assert json.loads(entry.read_bytes())["key"] == entry.stem  # and rewritten


def test_forged_entry_with_wrong_types_is_ignored(proj: Path, rule_runs: list[int]) -> None:
    good = _check()
    (entry,) = _runs_dir(proj).glob("*.json")
    doc = json.loads(entry.read_bytes())
    doc["reported"][0]["span"] = ["app.py", "6", 9, 6, 22]
    entry.write_text(json.dumps(doc))
    assert _check() == good
    assert len(rule_runs) == 2


def test_old_entries_are_pruned(proj: Path) -> None:
    for i in range(12):
        (proj / "other.py").write_text(f"X = {i}\n")
        _check()
    assert len(list(_runs_dir(proj).glob("*.json"))) <= 8


def test_a_file_changed_during_the_run_is_not_cached_under_the_old_bytes(
    proj: Path, rule_runs: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run key hashes every file before extraction; a file edited in between is
    extracted from its new bytes, so that run must not answer for the old bytes later."""
    real_key = engine._run_key

    def key_then_edit(jobs: Any, settings: Any, *rest: Any) -> Any:
        out = real_key(jobs, settings, *rest)
        (proj / "app.py").write_text(SNIPPET.replace("self._current", "self._now"))
        return out

    monkeypatch.setattr(engine, "_run_key", key_then_edit)
    edited = _check()
    assert "self._now" in edited  # the new bytes were analyzed...
    monkeypatch.setattr(engine, "_run_key", real_key)
    (proj / "app.py").write_text(SNIPPET)  # ...and back to the bytes the key was made of
    again = _check()
    assert "self._current" in again  # not the stale answer of the edited run
    assert len(rule_runs) == 2


def test_the_key_names_the_python_that_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Facts depend on the parser: a cache shared by two Pythons (pre-commit and CI) must not
    answer one with the other's results (the project snapshot's key is made the same way)."""
    import types

    from asyncrace.run import runcache
    from asyncrace.settings import Settings

    files = [("a.py", "a", False, "0" * 40)]
    here = runcache.run_key(files, "", Settings())
    monkeypatch.setattr(runcache, "sys", types.SimpleNamespace(version_info=(3, 99, 0)))
    assert runcache.run_key(files, "", Settings()) != here
