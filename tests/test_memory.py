"""The in-memory facts layer of long-lived processes (``FactsMemory``, used by the language
server): unchanged files are served from memory, never stale, never modified by a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncrace.run import cache as cache_mod
from asyncrace.run import engine
from asyncrace.run.engine import check
from asyncrace.run.pipeline import FactsMemory, FileOutcome
from asyncrace.settings import Settings

RACY = """\
import asyncio


class Cache:
    async def load_all(self, keys):
        await asyncio.gather(*(self.load(k) for k in keys))

    async def load(self, key):
        if key in self._running:
            return
        await asyncio.sleep(0)
        self._running.add(key)
"""


def _project(root: Path) -> list[Path]:
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "a.py").write_text(RACY)
    (root / "pkg" / "b.py").write_text("X = 1\n")
    # two top-level modules named alike: the engine renames one of them (``util#2``)
    (root / "one").mkdir()
    (root / "two").mkdir()
    (root / "one" / "util.py").write_text(RACY.replace("Cache", "One"))
    (root / "two" / "util.py").write_text(RACY.replace("Cache", "Two"))
    return sorted(root.rglob("*.py"))


def _summary(result: engine.CheckResult) -> list[tuple[str, int, str]]:
    return [(d.path, d.span.start.row, d.code) for d in result.diagnostics]


def test_unchanged_files_come_from_memory_not_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _project(tmp_path)
    cache_dir, memory = tmp_path / "cache", FactsMemory()
    first = check(files, Settings(), cache_dir=cache_dir, memory=memory)
    assert len(memory) == len(files)
    assert len(_summary(first)) == 3

    real_get = cache_mod.Cache.get

    def only_the_changed_file(
        self: cache_mod.Cache, key: str, digest: str, size: int, display: str | None = None
    ) -> object:
        assert display is not None and display.endswith("pkg/b.py"), (
            f"read the cache directory for {display} although its facts were in memory"
        )
        return real_get(self, key, digest, size, display)

    monkeypatch.setattr(cache_mod.Cache, "get", only_the_changed_file)
    (tmp_path / "pkg" / "b.py").write_text("X = 2\n")  # a change: the run cache misses
    second = check(files, Settings(), cache_dir=cache_dir, memory=memory)
    assert _summary(second) == _summary(first)


def test_a_changed_file_is_not_served_stale(tmp_path: Path) -> None:
    files = _project(tmp_path)
    memory = FactsMemory()
    check(files, Settings(), cache_dir=tmp_path / "cache", memory=memory)
    (tmp_path / "pkg" / "a.py").write_text(RACY.replace("self._running.add(key)\n", ""))
    after = check(files, Settings(), cache_dir=tmp_path / "cache", memory=memory)
    assert not [d for d in after.diagnostics if d.path.endswith("pkg/a.py")]


def test_runs_do_not_modify_the_facts_they_share(tmp_path: Path) -> None:
    """The engine renames one of two same-named modules; with shared outcomes that must be a
    copy, or the second run would see ``util#2`` become ``util#2#2`` (or lose its name)."""
    files = _project(tmp_path)
    memory = FactsMemory()
    runs = []
    for i in range(3):
        (tmp_path / "pkg" / "b.py").write_text(f"X = {i}\n")  # defeat the run cache
        runs.append(_summary(check(files, Settings(), cache_dir=tmp_path / "c", memory=memory)))
    assert runs[0] == runs[1] == runs[2]
    plain = check(files, Settings(), cache_dir=None)
    assert _summary(plain) == runs[0]
    modules = sorted(o.facts.module for o, _w in memory._items.values() if o.facts is not None)
    assert modules.count("util") == 2 and not any("#" in m for m in modules)


def test_least_recently_used_are_dropped_and_uncacheable_outcomes_never_kept() -> None:
    memory = FactsMemory(limit=2)  # outcomes without facts weigh 1 each
    outs = [FileOutcome(f"f{i}.py", None) for i in range(3)]
    memory.put(("f0.py", "f0", False, "d0"), outs[0])
    memory.put(("f1.py", "f1", False, "d1"), outs[1])
    assert memory.get(("f0.py", "f0", False, "d0")) is outs[0]  # f0 used: f1 is now oldest
    memory.put(("f2.py", "f2", False, "d2"), outs[2])
    assert memory.get(("f1.py", "f1", False, "d1")) is None
    assert memory.get(("f0.py", "f0", False, "d0")) is outs[0]
    failed = FileOutcome("f3.py", None, cacheable=False)
    memory.put(("f3.py", "f3", False, "d3"), failed)
    assert memory.get(("f3.py", "f3", False, "d3")) is None


def test_the_limit_counts_events_not_files(tmp_path: Path) -> None:
    """A few big files can weigh more than many small ones: the memory stays under its limit
    in events, and keeps at least the newest file whatever its size."""
    files = _project(tmp_path)
    memory = FactsMemory(limit=10)
    check(files, Settings(), cache_dir=tmp_path / "cache", memory=memory)
    assert 1 <= len(memory) < len(files)
    assert memory.weight <= 10 or len(memory) == 1
    assert memory.weight == sum(w for _o, w in memory._items.values())


def test_memory_works_without_a_cache_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--watch --no-cache``: the bytes are hashed in extraction, and unchanged files are
    still not parsed again."""
    from asyncrace.run import pipeline

    files = _project(tmp_path)
    memory = FactsMemory()
    first = check(files, Settings(), cache_dir=None, memory=memory)
    parsed: list[str] = []
    real = pipeline.analyze_bytes

    def counting(job: engine.FileJob, data: bytes) -> FileOutcome:
        parsed.append(job.display)
        return real(job, data)

    monkeypatch.setattr(pipeline, "analyze_bytes", counting)
    (tmp_path / "pkg" / "b.py").write_text("X = 3\n")
    second = check(files, Settings(), cache_dir=None, memory=memory, jobs=1)
    assert [p.rsplit("/", 1)[-1] for p in parsed] == ["b.py"]
    assert _summary(second) == _summary(first)


def test_a_check_leaves_the_host_s_garbage_collectable(tmp_path: Path) -> None:
    """engine.check freezes what it builds (gc_paused); a host process's own cyclic garbage
    must not stay frozen after it returns (the flake8 plugin, the API)."""
    import gc
    import weakref

    files = _project(tmp_path)

    class Node:
        pass

    refs = []
    for _ in range(3):
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        refs.append(weakref.ref(a))
        del a, b
        check(files, Settings(), cache_dir=None)
    gc.collect()
    assert all(r() is None for r in refs)


# ------------------------------------------------------------------ one very large file


def test_a_6_mb_one_line_data_file_stays_under_300_mb(tmp_path: Path) -> None:
    """A generated module whose one line is a 6 MB list (1.2 million numbers), with a
    finding after it: analyzed (the list elided, ``asyncrace.large``) in a process whose peak
    resident memory stays under 300 MB (it was 870 MB). The peak is read by a parent process
    of its own with ``getrusage(RUSAGE_CHILDREN)``: only the check's process counts."""
    import subprocess
    import sys

    numbers = ", ".join(str(i * 7919 % 1_000_003) for i in range(1_000_000))
    (tmp_path / "table.py").write_text(
        f"TABLE = [{numbers}]\n" + RACY.replace("class Cache", "class Table")
    )
    probe = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run([sys.executable, '-m', 'asyncrace', 'check', '--no-cache',\n"
        "                    '--output-format', 'concise', 'table.py'], capture_output=True,\n"
        "                   text=True)\n"
        "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(p.stdout, end='')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    first, *report = proc.stdout.splitlines()
    code, peak_kb = map(int, first.split())
    assert code == 1
    racy = RACY.replace("class Cache", "class Table").splitlines()
    row = 1 + next(i for i, line in enumerate(racy, 1) if "if key in self._running" in line)
    assert report[0].startswith(f"table.py:{row}:12: ARC003 ")  # after the 6 MB line
    assert peak_kb * 1024 < 300 * 1024 * 1024, f"peak {peak_kb / 1024:.0f} MB"
