"""``asyncrace check --watch`` on the real file system: the command runs as a process of its own,
files are written as an editor writes them, the operating system's file events (watchfiles)
start each check, and Ctrl-C (SIGINT) ends it. No part of it is replaced.

And the state a watch keeps between checks (``engine.ProjectState``): only the files that
changed are hashed again, and the project snapshot is not read from disk again."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from asyncrace.run import engine
from asyncrace.run.discover import discover
from asyncrace.settings import Settings

pytest.importorskip("watchfiles")

RACY = """\
class Cache:
    async def load(self, key):
        self.current = key{comment}
        await self.fetch()
        return self.current

    async def fetch(self):
        pass


async def load_all(cache: Cache, keys):
    import asyncio

    return await asyncio.gather(*(cache.load(k) for k in keys))
"""
FINDING = "app/cache.py:3:9: ARC001"
CLEAN = "All checks passed!"
TIMEOUT = 60.0


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Watch:
    """``asyncrace check ARGS --watch`` running in ``cwd``; its output read as it comes."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "asyncrace", "check", *args, "--watch"],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
            # as a terminal starts it: Ctrl-C delivered. A test run started in the background
            # by a non-interactive shell inherits SIGINT ignored, and Python then installs no
            # handler for it in the child, which would never stop
            preexec_fn=_default_sigint,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.lock = threading.Lock()
        for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, into), daemon=True).start()

    def _read(self, stream: object, into: list[str]) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            with self.lock:
                into.append(line)

    @property
    def stdout(self) -> str:
        with self.lock:
            return "".join(self.out)

    @property
    def stderr(self) -> str:
        with self.lock:
            return "".join(self.err)

    def wait_for(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what}: not seen\nstdout:\n{self.stdout}\n{self.stderr}")
            time.sleep(0.02)

    def reports(self) -> list[str]:
        """The reports so far, each ending with its summary line."""
        out, cur = [], []
        for line in self.stdout.splitlines():
            cur.append(line)
            if line.startswith(("Found ", CLEAN)):
                out.append("\n".join(cur))
                cur = []
        return out

    def next_report(self, after: int, what: str) -> str:
        self.wait_for(lambda: len(self.reports()) > after, what)
        return self.reports()[after]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            return self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "cache.py").write_text(RACY.format(comment=""))
    (tmp_path / "app" / "clean.py").write_text("async def f():\n    return 1\n")
    yield tmp_path


def started(w: Watch) -> str:
    first = w.next_report(0, "the first report")
    w.wait_for(lambda: "watching for changes" in w.stderr, "the watch")
    return first


def test_a_saved_file_is_checked_again_and_ctrl_c_ends_the_watch(project: Path) -> None:
    w = Watch(project, "app", "--output-format", "concise", "-j", "1")
    try:
        assert FINDING in started(w)
        # the finding is fixed, as an editor saves: the file replaced by a new one
        tmp = project / "app" / ".cache.py.swp"
        tmp.write_text(RACY.format(comment="  # noqa: ARC001"))
        os.replace(tmp, project / "app" / "cache.py")
        second = w.next_report(1, "the report after the fix")
        assert FINDING not in second and CLEAN in second
        # a new racy file
        (project / "app" / "more.py").write_text(RACY.format(comment="").replace("Cache", "More"))
        third = w.next_report(2, "the report after a file was added")
        assert "app/more.py:3:9: ARC001" in third
        time.sleep(0.5)  # nothing changed: no report
        assert len(w.reports()) == 3
    finally:
        code = w.stop()
    assert code == 0
    assert w.stderr.count("a file changed, checking again") == 2


def test_the_configuration_is_read_again_when_it_changes(project: Path) -> None:
    w = Watch(project, "app", "--output-format", "concise", "-j", "1")
    try:
        assert FINDING in started(w)
        (project / "pyproject.toml").write_text('[tool.asyncrace]\nignore = ["ARC001"]\n')
        second = w.next_report(1, "the report with ARC001 ignored")
        assert CLEAN in second and "configuration changed" in w.stderr
        (project / "pyproject.toml").write_text("[tool.asyncrace]\nselect = 3\n")
        w.wait_for(lambda: "error" in w.stderr, "the configuration error")
        assert len(w.reports()) == 2  # nothing checked with a broken configuration
        (project / "pyproject.toml").write_text("[tool.asyncrace]\n")
        third = w.next_report(2, "the report once the configuration is fixed")
        assert FINDING in third
    finally:
        assert w.stop() == 0


def test_new_directories_and_a_root_that_comes_back(project: Path) -> None:
    w = Watch(project, "app", "--output-format", "concise", "-j", "1")
    try:
        started(w)
        sub = project / "app" / "sub"
        sub.mkdir()
        (sub / "late.py").write_text(RACY.format(comment="").replace("Cache", "Late"))
        w.wait_for(
            lambda: any("app/sub/late.py:3:9: ARC001" in r for r in w.reports()),
            "the file of a new directory",
        )
        n = len(w.reports())
        shutil.move(str(project / "app"), str(project / "gone"))  # a git checkout
        w.wait_for(lambda: "disappeared" in w.stderr, "the lost root")
        shutil.move(str(project / "gone"), str(project / "app"))
        back = w.next_report(n, "the report once the root is back")
        assert FINDING in back and "app/sub/late.py:3:9: ARC001" in back
        (project / "app" / "clean.py").write_text("async def f():\n    return 2\n")
        w.next_report(n + 1, "a change after the root came back")  # watched again
    finally:
        assert w.stop() == 0


def _files(root: Path) -> list[Path]:
    return discover([root / "app"], Settings(project_root=root))


def _summary(r: engine.CheckResult) -> list[tuple[str, str, int]]:
    return [(d.code, d.path, d.span.start.row) for d in r.diagnostics]


def test_project_state_hashes_only_what_changed_and_keeps_the_snapshot(
    project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Between the checks of a watch: a file named by an event is hashed again, and a file
    whose stat changed (an event missed); no other; the snapshot comes from memory (it is
    gone from the disk here), and the findings are a fresh run's."""
    monkeypatch.chdir(project)
    for i in range(5):
        (project / "app" / f"m{i}.py").write_text(f"X = {i}\n")
    settings = Settings(project_root=project)
    cache = project / ".asyncrace_cache"
    state = engine.ProjectState()
    first = engine.check(_files(project), settings, cache_dir=cache, jobs=1, state=state)
    assert state.hashed == 7 and state.snapshot is not None
    shutil.rmtree(cache / "projects")  # only the state's copy is left

    (project / "app" / "cache.py").write_text(RACY.format(comment="  # noqa: ARC001"))
    state.touch([str(project / "app" / "cache.py")])
    with caplog.at_level(logging.INFO, logger="asyncrace"):
        second = engine.check(_files(project), settings, cache_dir=cache, jobs=1, state=state)
    assert state.hashed == 1
    assert "incremental: 1 changed" in caplog.text
    fresh = engine.check(_files(project), settings, cache_dir=None, jobs=1)
    assert _summary(second) == _summary(fresh) != _summary(first)

    # no event, but the file changed (size and modification time): hashed again all the same
    (project / "app" / "m1.py").write_text("X = 100\n")
    third = engine.check(_files(project), settings, cache_dir=cache, jobs=1, state=state)
    assert state.hashed == 1 and _summary(third) == _summary(second)
    engine.check(_files(project), settings, cache_dir=cache, jobs=1, state=state)
    assert state.hashed == 0
