"""The progress bar: the engine reports every file exactly once (cache hits, pool or not), and
the CLI draws a bar only for long runs with stderr on a terminal, never with --quiet."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from asyncrace import cli
from asyncrace.run.engine import check
from asyncrace.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_file_is_reported_once(jobs: int, tmp_path: Path) -> None:
    files = sorted(FIXTURES.rglob("*.py"))
    assert len(files) > 24  # enough for the process pool with jobs=2
    for cache in (None, tmp_path / "cache", tmp_path / "cache"):  # cold, then all hits
        done: list[int] = []
        check(files, Settings(), jobs=jobs, cache_dir=cache, progress=done.append)
        assert sum(done) == len(files)


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.sys, "stderr", io.StringIO())
    with cli._progress_bar(10_000, quiet=False) as progress:
        assert progress is None


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_on_a_terminal_for_long_runs_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.sys, "stderr", _Tty())
    with cli._progress_bar(cli.PROGRESS_MIN_FILES - 1, quiet=False) as progress:
        assert progress is None  # a short run is over before a bar is worth drawing
    with cli._progress_bar(10_000, quiet=True) as progress:
        assert progress is None
    with cli._progress_bar(10_000, quiet=False) as progress:
        assert progress is not None
        progress(10_000)
