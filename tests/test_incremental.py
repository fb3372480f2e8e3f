"""Incremental runs (``run/incremental.py``, ``run/snapshot.py``): after edits, a run that starts
from the project snapshot reports exactly what a full run reports, byte for byte; it checks
again only what the edits can affect, and falls back to a full run whenever it cannot tell."""

from __future__ import annotations

import json
import random
import shutil
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from asyncrace.cli import main
from asyncrace.run import cache as cache_mod
from asyncrace.run import incremental, snapshot

sys.path.insert(0, str(Path(__file__).parent))
import edits

FIXTURES = Path(__file__).parent / "fixtures"


def _check(*args: str, fmt: str = "json") -> str:
    # the run cache answers an unchanged tree as a whole: out of the way, as each test edits
    shutil.rmtree(Path(".asyncrace_cache") / "runs", ignore_errors=True)
    r = CliRunner().invoke(
        main,
        ["check", ".", "--output-format", fmt, "--exit-zero", "-j", "1", *args],
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    return r.stdout


@pytest.fixture
def rechecked(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The modules each incremental run checked again."""
    seen: list[list[str]] = []
    real = incremental.check_modules

    def counting(analysis: Any, rules: Any, modules: Any, track: bool) -> Any:
        seen.append([m.module for m in modules])
        return real(analysis, rules, modules, track)

    monkeypatch.setattr(incremental, "check_modules", counting)
    return seen


A = """\
import threading

from b import Base


class Conversation(Base):
    def __init__(self) -> None:
        self._lock = threading.RLock()

    def step(self) -> None:
        with self._lock:
            pass

    async def arun(self) -> None:
        with self._lock:
            await self.astep()
"""

B = """\
import asyncio


class Base:
    def step(self) -> None:
        pass

    async def astep(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.step)

    async def astep_copy(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.step)
"""

OTHER = """\
async def unrelated(x):
    return await x
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "asyncrace.toml").write_text("")
    (tmp_path / "a.py").write_text(A)
    (tmp_path / "b.py").write_text(B)
    (tmp_path / "other.py").write_text(OTHER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _codes(out: str) -> list[tuple[str, str, int]]:
    return [(Path(d["filename"]).name, d["code"], d["location"]["row"]) for d in json.loads(out)]


def test_a_body_edit_in_another_module_changes_the_finding(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    cold = _check()
    assert ("a.py", "ARC004", 16) in _codes(cold)
    assert full_runs == [3]
    # the hand-off leaves ``astep`` (``astep_copy`` keeps the names: the interface is kept)
    (proj / "b.py").write_text(
        B.replace(
            "        await loop.run_in_executor(None, self.step)\n\n    async def astep_copy",
            "        pass\n\n    async def astep_copy",
        )
    )
    after = _check()
    assert after == _check("--no-cache")
    assert ("a.py", "ARC004", 16) not in _codes(after)
    assert full_runs == [3, 3]  # the second is the --no-cache run
    assert rechecked == [["a", "b"]]  # other.py read nothing of b.py


def test_positions_moved_in_another_module_move_the_related_steps(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    cold = _check()
    (proj / "b.py").write_text("\n\n" + B)
    after = _check()
    assert after == _check("--no-cache")
    assert after != cold  # the steps in b.py moved two lines down
    assert rechecked == [["a", "b"]]
    assert full_runs == [3, 3]


@pytest.mark.parametrize("extra", [[], ["--extend-select", "ARC100"]])
def test_suppression_of_a_module_checked_again(
    proj: Path, rechecked: list[list[str]], extra: list[str]
) -> None:
    """a.py is checked again because b.py changed: its ``noqa`` (and, with ARC100, the unused
    one) still apply, from a.py's cache entry."""
    lines = A.split("\n")
    lines[15] += "  # noqa: ARC004"
    lines[10] += "  # noqa: ARC001"  # silences nothing
    (proj / "a.py").write_text("\n".join(lines))
    _check(*extra, "--show-suppressed")
    (proj / "b.py").write_text("\n" + B)
    after = _check(*extra, "--show-suppressed", fmt="concise")
    assert after == _check(*extra, "--show-suppressed", "--no-cache", fmt="concise")
    assert rechecked == [["a", "b"]]
    assert "ARC004" in after and ("ARC100" in after) == bool(extra)


def test_an_untouched_module_is_not_checked_again(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    _check()
    (proj / "other.py").write_text("\n" + OTHER)
    after = _check()
    assert after == _check("--no-cache")
    assert rechecked == [["other"]]


@pytest.mark.parametrize(
    "change",
    [
        lambda p: (p / "c.py").write_text("X = 1\n"),
        lambda p: (p / "b.py").write_text(B.replace("import asyncio", "import asyncio as aio")),
        lambda p: (p / "b.py").write_text(B.replace("def step(self)", "def step2(self)")),
        lambda p: (p / "b.py").write_text(B.replace("class Base:", "class Base(Exception):")),
        lambda p: (p / "other.py").unlink(),
        lambda p: (p / "b.py").write_text("def broken(:\n"),
    ],
    ids=[
        "file-added",
        "import-changed",
        "function-renamed",
        "base-changed",
        "file-removed",
        "syntax-error",
    ],
)
def test_what_it_cannot_tell_runs_in_full(
    proj: Path, full_runs: list[int], rechecked: list[list[str]], change: Any
) -> None:
    _check()
    change(proj)
    after = _check()
    assert after == _check("--no-cache")
    assert len(full_runs) == 3 and rechecked == []


MID = """\
from b import Base


class Mid(Base):
    pass
"""


def test_a_method_added_to_a_base_class_in_between_is_found(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    """``Conversation(Mid)``, ``Mid(Base)``: ``self.astep()`` in ``a.py`` ran ``Base.astep``;
    an ``astep`` added to ``Mid`` (in ``mid.py``) now runs instead. ``a.py`` looked for
    ``Mid.astep`` and found none: that read is what makes it checked again."""
    (proj / "mid.py").write_text(MID)
    (proj / "a.py").write_text(
        A.replace("from b import Base", "from mid import Mid").replace("(Base)", "(Mid)")
    )
    cold = _check()
    assert ("a.py", "ARC004", 16) in _codes(cold)
    (proj / "mid.py").write_text(
        MID.replace("    pass\n", "    async def astep(self) -> None:\n        pass\n")
    )
    after = _check()
    assert after == _check("--no-cache")
    assert ("a.py", "ARC004", 16) not in _codes(after)
    assert len(full_runs) == 2 and rechecked == [["a", "mid"]]


def test_a_function_added_is_incremental(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    _check()
    (proj / "b.py").write_text(B + "\n\nasync def added(x):\n    return await x\n")
    assert _check() == _check("--no-cache")
    assert len(full_runs) == 2 and rechecked == [["a", "b"]]  # a.py reads b.py: other.py not


def test_an_import_added_to_a_package_that_re_exports_a_base_class(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_runs: list[int],
    rechecked: list[list[str]],
) -> None:
    """``class Conversation(Base)`` with ``from pkg import Base`` in a.py linked to nothing in
    ``pkg/__init__.py`` (linking noted ``pkg.Base`` missing); ``from pkg.impl import Base``
    added there re-exports it, and the hand-off in ``Base.astep`` now reaches a.py's finding.
    Classes are linked before any check: that is a full run, and it finds it."""
    (tmp_path / "asyncrace.toml").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("X = 1\n")
    (tmp_path / "pkg" / "impl.py").write_text(B)
    (tmp_path / "a.py").write_text(A.replace("from b import Base", "from pkg import Base"))
    (tmp_path / "other.py").write_text(OTHER)
    monkeypatch.chdir(tmp_path)
    assert "ARC004" not in _check()
    (tmp_path / "pkg" / "__init__.py").write_text("from pkg.impl import Base\n\nX = 1\n")
    after = _check()
    assert after == _check("--no-cache")
    assert ("a.py", "ARC004", 16) in _codes(after)
    assert len(full_runs) == 3 and rechecked == []


def test_an_import_that_changes_how_a_base_links_runs_in_full(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    (proj / "other.py").write_text(OTHER + "\n\nclass K(Base):\n    pass\n")
    _check()
    (proj / "other.py").write_text(
        "from b import Base\n" + OTHER + "\n\nclass K(Base):\n    pass\n"
    )
    assert _check() == _check("--no-cache")
    assert len(full_runs) == 3 and rechecked == []


HOLDER = """\
import threading

from b import Base


class Holder:
    def __init__(self, helper: Base) -> None:
        self._lock = threading.Lock()
        self.helper = helper

    async def go(self) -> None:
        with self._lock:
            await self.helper.astep()
"""


def test_a_class_added_under_a_base_dispatched_on_is_incremental(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    """``self.helper.astep()`` on a declared ``Base`` reaches every subclass's ``astep``
    (class-hierarchy analysis): holder.py read the subclasses of ``Base``, so a subclass added
    in other.py makes it checked again."""
    (proj / "holder.py").write_text(HOLDER)
    _check()
    (proj / "other.py").write_text(
        "from b import Base\n\n"
        + OTHER
        + "\n\nclass Sub(Base):\n    async def astep(self) -> None:\n        pass\n"
    )
    assert _check() == _check("--no-cache")
    assert len(full_runs) == 2 and len(rechecked) == 1
    assert {"holder", "other"} <= set(rechecked[0])


def test_an_attribute_type_changed_in_a_base_constructor_is_incremental(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    """The lock of a.py's class is made in its base's constructor, in b.py: a.py read the type
    of ``Base._lock`` (linking inferred it from ``__init__``), so a different lock type there
    makes it checked again, without a full run."""
    a = A.replace("    def __init__(self) -> None:\n        self._lock = threading.RLock()\n\n", "")
    b = B.replace(
        "class Base:\n",
        "class Base:\n    def __init__(self) -> None:\n        self._lock = threading.RLock()\n\n",
    ).replace("import asyncio\n", "import asyncio\nimport threading\n")
    (proj / "a.py").write_text(a)
    (proj / "b.py").write_text(b)
    cold = _check()
    assert "ARC004" in cold
    (proj / "b.py").write_text(b.replace("threading.RLock()", "threading.Lock()"))
    after = _check()
    assert after == _check("--no-cache")
    assert after != cold
    assert len(full_runs) == 2 and len(rechecked) == 1 and "a" in rechecked[0]


def test_a_module_variable_added_or_changed_is_incremental(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    _check()
    (proj / "b.py").write_text(B + "\n\nLOCK = asyncio.Lock()\nTIMEOUT = 5\n")
    assert _check() == _check("--no-cache")
    (proj / "b.py").write_text(B + "\n\nLOCK = asyncio.Semaphore()\nTIMEOUT = 5\n")
    assert _check() == _check("--no-cache")
    assert len(full_runs) == 3 and rechecked == [["a", "b"], ["a", "b"]]


def test_an_import_added_is_incremental(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    _check()
    (proj / "b.py").write_text("import os\n" + B)
    assert _check() == _check("--no-cache")
    assert len(full_runs) == 2 and rechecked == [["a", "b"]]


def test_a_name_newly_mentioned_in_a_body_is_incremental(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    """The lookups by that name are read again: the mention index is patched."""
    _check()
    (proj / "b.py").write_text(
        B.replace(
            "self.step)\n\n    async def astep_copy", "self.stop)\n\n    async def astep_copy"
        )
    )
    after = _check()
    assert after == _check("--no-cache")
    assert len(full_runs) == 2 and rechecked == [["a", "b"]]
    # and the patched index is what the next run starts from
    (proj / "b.py").write_text(B)
    assert _check() == _check("--no-cache")
    assert len(full_runs) == 3 and len(rechecked) == 2


STREAMER = """\
import asyncio


class Transport:
    async def send(self, data: bytes) -> None:
        await asyncio.sleep(0)


class Streamer:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self.sending = False

    async def stream(self, data: bytes) -> None:
        self.sending = True
        await self._transport.send(data)
        self.sending = False

    async def stream_within(self, data: bytes, timeout: float) -> None:
        await asyncio.wait_for(self.stream(data), timeout)
"""


def test_a_read_of_a_public_attribute_added_elsewhere_is_incremental(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    """ARC006 leaves a public flag that nothing in the project reads (its canceller, a
    caller's ``wait_for``, found); a module that starts reading it off the object
    (``s.sending``) brings the finding back, in an incremental run too: the mention index keeps
    the attribute names each module reads off other objects."""
    (proj / "s.py").write_text(STREAMER)
    cold = _check()
    assert ("s.py", "ARC006", 15) not in _codes(cold)
    (proj / "b.py").write_text(B + "\n\ndef sending(s: object) -> bool:\n    return s.sending\n")
    after = _check()
    assert after == _check("--no-cache")
    assert ("s.py", "ARC006", 15) in _codes(after)
    assert len(full_runs) == 2 and len(rechecked) == 1 and "s" in rechecked[0]
    (proj / "b.py").write_text(B)
    again = _check()
    assert again == _check("--no-cache") == cold


RENDER = """\
import asyncio

_locale = "en"


async def render(locale: str) -> str:
    global _locale
    _locale = locale
    await asyncio.sleep(0)
    return _locale
"""


def test_a_call_of_a_public_coroutine_added_elsewhere_is_incremental(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    """ARC001 takes a public coroutine that nothing in the project calls as evidence for a
    per-call value kept in module state; once another module calls it, one call after the
    other, from a private helper, the evidence is only likely and the finding goes, in an
    incremental run too."""
    (proj / "r.py").write_text(RENDER)
    cold = _check()
    assert ("r.py", "ARC001", 8) in _codes(cold)
    caller = "\n\nfrom r import render\n\n\nasync def _render_all() -> None:\n"
    caller += "    for loc in ('en', 'fr'):\n        await render(loc)\n"
    (proj / "b.py").write_text(B + caller)
    after = _check()
    assert after == _check("--no-cache")
    assert ("r.py", "ARC001", 8) not in _codes(after)
    assert len(full_runs) == 2 and len(rechecked) == 1 and "r" in rechecked[0]
    (proj / "b.py").write_text(B)
    assert _check() == _check("--no-cache") == cold


def _inflated(damage: Any) -> Any:
    """``damage`` done to the snapshot as its lines read once inflated (schema 5: the lines after
    the head are compressed together), the result compressed again."""

    def done(b: bytes) -> bytes:
        head, _, body = b.partition(b"\n")
        top, _, rest = damage(head + b"\n" + zlib.decompress(body)).partition(b"\n")
        return top + b"\n" + zlib.compress(rest)

    return done


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"",
        lambda b: b[: len(b) // 2],
        _inflated(lambda b: b.replace(b'"records":', b'"records":1000,"x":', 1)),
        _inflated(lambda b: b.replace(b'"deps":[', b'"deps":[1,', 1)),
        _inflated(lambda b: b.replace(b'"header":["', b'"header":[1,"', 1)),
        lambda b: b.partition(b"\n")[0] + b"\n" + zlib.decompress(b.partition(b"\n")[2]),
        lambda b: b.replace(b'"schema": 6', b'"schema": 5', 1),
    ],
    ids=["empty", "truncated", "count", "deps-type", "header-type", "not-compressed", "schema-5"],
)
def test_a_damaged_snapshot_means_a_full_run(proj: Path, full_runs: list[int], damage: Any) -> None:
    _check()
    (snap,) = (proj / ".asyncrace_cache" / snapshot.DIR).glob(f"*{snapshot.SUFFIX}")
    snap.write_bytes(damage(snap.read_bytes()))
    (proj / "b.py").write_text("\n" + B)
    after = _check()
    assert after == _check("--no-cache")
    assert len(full_runs) == 3


def test_a_damaged_mention_index_is_found_when_read(proj: Path) -> None:
    """The mention index is parsed only when a check needs it; damaged, it is an error that
    makes the run a full one (``incremental.Stale``)."""
    _check()
    (path,) = (proj / ".asyncrace_cache" / snapshot.DIR).glob(f"*{snapshot.SUFFIX}")
    key = path.stem
    good = snapshot.load(proj / ".asyncrace_cache", key)
    assert good is not None and "run_in_executor" in good.mentions().calls
    for bad in (b"{]", b"[]", b'{"calls":{"x":[99]},"args":{},"releases":[]}'):
        damaged = snapshot.Snapshot(good.records, bad)
        with pytest.raises(snapshot.Invalid):
            damaged.mentions()


def test_an_evicted_extraction_entry_is_extracted_again(proj: Path) -> None:
    _check()
    for entry in (proj / ".asyncrace_cache").glob(f"extract-v*/*{cache_mod.SUFFIX}"):
        entry.unlink()
    (proj / "b.py").write_text("\n" + B)
    assert _check() == _check("--no-cache")


def test_no_snapshot_without_a_cache(proj: Path) -> None:
    _check("--no-cache")
    assert not (proj / ".asyncrace_cache").exists()


def test_snapshots_are_few(proj: Path) -> None:
    for i in range(snapshot.KEEP + 3):
        (proj / f"extra{i}.py").write_text("X = 1\n")  # another set of files each time
        _check()
    assert len(list((proj / ".asyncrace_cache" / snapshot.DIR).glob("*"))) == snapshot.KEEP


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_edits_give_what_a_full_run_gives(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_runs: list[int],
    rechecked: list[list[str]],
    seed: int,
) -> None:
    """The differential test: the rule fixtures and the four seed projects as one project,
    random edits (``tests/edits.py``), and after each the incremental run compared with a
    full one."""
    proj = tmp_path / "p"
    shutil.copytree(FIXTURES, proj)
    (proj / "asyncrace.toml").write_text("")
    monkeypatch.chdir(proj)
    files = sorted(p for p in proj.rglob("*.py"))
    rng = random.Random(seed)
    _check()
    incremental_runs = 0
    for _ in range(12):
        edit = edits.apply_random(files, rng)
        before = len(full_runs)
        got = _check()
        if len(full_runs) == before:
            incremental_runs += 1
        assert got == _check("--no-cache"), str(edit)
    assert incremental_runs >= 4  # most body edits keep the interface


def test_every_fixture_module_checked_alone_gets_its_full_run_findings() -> None:
    """What an incremental run relies on: a module checked in a fresh ``Analysis`` (empty
    summaries, the spawn-site contributions kept) gets the findings the full run gave it, so no
    summary depends on the order in which modules were checked (``bench/alone.py`` does the
    same on the corpus)."""
    from asyncrace.analysis.facade import Analysis
    from asyncrace.rules import all_rules
    from asyncrace.run.engine import module_name
    from asyncrace.run.jobs import FileJob
    from asyncrace.run.link import check_modules, link_and_check
    from asyncrace.run.pipeline import extract_all
    from asyncrace.settings import Settings

    jobs = []
    for path in sorted(FIXTURES.rglob("*.py")):
        mod, pkg = module_name(path)
        jobs.append(FileJob(str(path), str(path.relative_to(FIXTURES)), mod, pkg))
    settings = Settings()
    facts = [o.facts for o in extract_all(jobs, settings) if o.facts is not None]
    found, analysis, _reads = link_and_check(facts, settings, track=True)
    assert len(found) > 40  # the bad fixtures' findings
    want: dict[str, list[str]] = {}
    for d in found:
        want.setdefault(d.path, []).append(repr(d))
    rules = [r for r in all_rules() if r.code in settings.enabled]
    for m in facts:
        fresh = Analysis(analysis.index, settings)
        fresh.track = True
        fresh.contributions = dict(analysis.contributions)
        got, _ = check_modules(fresh, [type(r)() for r in rules], [m], True)
        assert sorted(map(repr, got)) == sorted(want.get(m.path, [])), m.path


def test_a_snapshot_answering_an_unchanged_tree_is_not_written_again(proj: Path) -> None:
    _check()
    (path,) = (proj / ".asyncrace_cache" / snapshot.DIR).glob(f"*{snapshot.SUFFIX}")
    before = path.stat().st_mtime_ns
    path.touch()  # (a write would set a newer time than this)
    touched = path.stat().st_mtime_ns
    assert _check() == _check("--no-cache")  # the run cache is removed: the snapshot answers
    assert path.stat().st_mtime_ns == touched >= before


def test_concurrent_incremental_runs_agree(proj: Path) -> None:
    """Two runs at once after an edit: each writes the snapshot atomically; both outputs, and
    the next run's, are a full run's."""
    import os
    import subprocess

    _check()
    (proj / "b.py").write_text("\n" + B)
    cmd = [sys.executable, "-m", "asyncrace", "check", ".", "--output-format", "json"]
    cmd += ["--exit-zero", "-j", "1"]
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    want = _check("--no-cache")
    assert all(o == want for o in outs)
    (proj / "b.py").write_text("\n\n" + B)
    assert _check() == _check("--no-cache")


def test_two_modules_of_one_name_stay_apart(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    full_runs: list[int],
    rechecked: list[list[str]],
) -> None:
    """Two scripts named ``util.py`` in unrelated directories are linked as ``util`` and
    ``util#2``; an edit of the second is checked as ``util#2`` again."""
    (tmp_path / "asyncrace.toml").write_text("")
    for d in ("one", "two"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "util.py").write_text(
            A.replace("from b import Base", "from lib import Base")
        )
    (tmp_path / "lib.py").write_text(B)
    monkeypatch.chdir(tmp_path)
    cold = _check()
    assert [c for c in _codes(cold) if c[1] == "ARC004"] == [("util.py", "ARC004", 16)] * 2
    (tmp_path / "two" / "util.py").write_text("\n" + (tmp_path / "two" / "util.py").read_text())
    after = _check()
    assert after == _check("--no-cache")
    assert ("util.py", "ARC004", 17) in _codes(after)
    assert len(full_runs) == 2 and rechecked == [["util#2"]]


REGISTRY = """\
import asyncio


class Registry:
    def __init__(self) -> None:
        self._seen: set[str] = set()

    async def register(self, key: str) -> None:
        if key in self._seen:
            return
        await asyncio.sleep(0)
        self._seen.add(key)


REGISTRY = Registry()
"""

CALLER = """\
import asyncio

from svc import REGISTRY


class Other:
    async def register(self, key: str) -> None:
        pass


async def main() -> None:
    o = Other()
    await o.register("a")
    await asyncio.gather(o.register("b"), o.register("c"))
    print(REGISTRY)
"""


def test_a_module_where_a_search_found_no_caller_is_read_again_only_when_it_calls(
    proj: Path, full_runs: list[int], rechecked: list[list[str]]
) -> None:
    """The search for ``Registry.register``'s callers found none in caller.py (its
    ``register`` calls are ``Other``'s): an edit there that keeps it so checks only caller.py;
    one that makes caller.py gather two calls of it checks svc.py again, and the finding
    appears there as in a full run."""
    (proj / "svc.py").write_text(REGISTRY)
    (proj / "caller.py").write_text(CALLER)
    assert ("svc.py", "ARC003", 9) not in _codes(_check())
    (proj / "caller.py").write_text(CALLER.replace('"a")', '"a")\n    await o.register("d")'))
    after = _check()
    assert after == _check("--no-cache")
    assert rechecked == [["caller"]]
    gathered = 'asyncio.gather(REGISTRY.register("b"), REGISTRY.register("c"))'
    (proj / "caller.py").write_text(
        CALLER.replace('asyncio.gather(o.register("b"), o.register("c"))', gathered)
    )
    after = _check()
    assert after == _check("--no-cache")
    assert ("svc.py", "ARC003", 9) in _codes(after)
    assert rechecked[1] == ["caller", "svc"]
    assert len(full_runs) == 3  # the first, and the two --no-cache runs


@pytest.mark.parametrize("display", ["pkg/modul\u00e9.py", "pkg/\udcff\udcfe.py"])
def test_a_snapshot_line_round_trips_any_path(display: str) -> None:
    """Lines are UTF-8 by orjson; a path that is not UTF-8 (surrogates) is written with ASCII
    escapes and still reads back. No line holds a line break."""
    from asyncrace.analysis.extract import extract

    facts = extract("def f(x):\n    return x\n", display, "pkg.m")
    record = snapshot.make_record(display, "d" * 40, facts)
    raw = snapshot.encode_record(record)
    assert b"\n" not in raw
    back = snapshot.decode_record(raw)
    assert back.display == display
    assert back.header_facts().path == display
    assert back.interface == record.interface


SPAWNER = """\
import asyncio

from worker import Worker


async def run(worker: Worker, items: list[str]) -> None:
    for item in items:
        asyncio.create_task(worker.step(item))
"""

WORKER = """\
import asyncio


class Worker:
    def __init__(self) -> None:
        self.current = ""

    async def step(self, item: str) -> None:
        self.current = item
        await asyncio.sleep(0)
        print(self.current)
"""


def test_a_spawn_site_that_moves_moves_the_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines added above a spawn in another module: the finding about the unchanged module is
    checked again and its evidence names the spawn's new line (a verdict kept from the
    snapshot used to keep the old one)."""
    (tmp_path / "asyncrace.toml").write_text("")
    (tmp_path / "spawner.py").write_text(SPAWNER)
    (tmp_path / "worker.py").write_text(WORKER)
    monkeypatch.chdir(tmp_path)
    _check()
    (tmp_path / "spawner.py").write_text("import logging\n\n" + SPAWNER)
    got = _check()
    assert got == _check("--no-cache")
    rows = [r["location"]["row"] for d in json.loads(got) for r in d["related"]]
    assert 10 in rows  # the create_task, two lines lower
