"""The extraction cache (asyncrace.run.cache): a safe JSON format that round-trips every
fixture's facts, warm runs identical to cold ones and free of parsing, entries that are
corrupt, truncated, foreign or stale ignored and rebuilt, atomic writes under concurrent runs,
and ``--no-cache`` writing nothing."""

from __future__ import annotations

import json
import marshal
import os
import shutil
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from asyncrace.analysis.extract import extract
from asyncrace.analysis.facts import Event, K, ModuleFacts, Pos
from asyncrace.cli import main
from asyncrace.diagnostic import Diagnostic
from asyncrace.run import cache as cache_mod
from asyncrace.run import pipeline
from asyncrace.run.cache import Cache, CacheEntry, Invalid, content_digest, decode, encode
from asyncrace.run.engine import check
from asyncrace.settings import Settings
from asyncrace.suppress import parse_noqa

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_FILES = sorted(FIXTURES.rglob("*.py"))

SNIPPET = """import asyncio


class Worker:
    async def step(self, x):
        self._current = x  # noqa: ARC005
        await asyncio.sleep(0)
        return self._current


async def main(obj: Worker):
    await asyncio.gather(*(obj.step(i) for i in range(3)))
"""


# ------------------------------------------------------------------------------ the codec


def _roundtrip(value: Any, tp: object) -> Any:
    return decode(json.loads(json.dumps(encode(value, tp))), tp)


@pytest.mark.parametrize(
    "path", FIXTURE_FILES, ids=[p.relative_to(FIXTURES).as_posix() for p in FIXTURE_FILES]
)
def test_every_fixture_round_trips(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    facts = extract(text, path.as_posix(), path.stem)
    entry = CacheEntry(facts, [], parse_noqa(text))
    back = _roundtrip(entry, CacheEntry)
    assert back == entry
    assert type(back.facts.functions) is dict
    for fn in back.facts.functions.values():  # the exact types, not just equal values
        assert all(type(e) is Event and type(e.kind) is K for e in fn.events)
        assert all(type(e.pos) is tuple and type(e.args) is tuple for e in fn.events)
        assert all(type(e.succ) is list for e in fn.events)
    cache_mod._check_facts(back.facts)


@pytest.mark.parametrize(
    "path", FIXTURE_FILES, ids=[p.relative_to(FIXTURES).as_posix() for p in FIXTURE_FILES]
)
def test_the_entry_writer_gives_the_bytes_of_the_reference_encoding(path: Path) -> None:
    """``encode_json`` (orjson walking the dataclasses) writes exactly what ``encode`` then
    ``json.dumps`` would, and what it writes reads back as the entry."""
    text = path.read_text(encoding="utf-8")
    entry = CacheEntry(extract(text, path.as_posix(), path.stem), [], parse_noqa(text))
    doc = {"format": "f", "schema": 1, "payload": entry}
    reference = json.dumps(
        {**doc, "payload": encode(entry, CacheEntry)}, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")
    data = cache_mod.encode_json(doc)
    assert data == reference
    assert decode(cache_mod.loads_json(data)["payload"], CacheEntry) == entry


def test_the_entry_writer_refuses_what_it_cannot_write() -> None:
    assert cache_mod.encode_json({"s": "\ud800"}) is None  # a lone surrogate
    assert cache_mod.encode_json({"n": 1 << 70}) is None
    with pytest.raises(ValueError):
        cache_mod.loads_json(b'{"s": "\\ud800"}')


def test_meta_diagnostics_and_noqa_round_trip(tmp_path: Path) -> None:
    outs = pipeline.extract_all(
        [_job(tmp_path, "bad.py", b"x = '\xff'\n"), _job(tmp_path, "syn.py", b"def f(:  # noqa\n")],
        Settings(),
    )
    for out in outs:
        entry = CacheEntry(out.facts, out.meta, out.noqa)
        assert out.meta
        assert _roundtrip(entry, CacheEntry) == entry
        data = cache_mod.encode_json(entry)
        assert data is not None
        assert decode(cache_mod.loads_json(data), CacheEntry) == entry
    assert outs[1].noqa


@pytest.mark.parametrize(
    "data,tp",
    [
        (True, int),  # a bool is not an int
        (1, str),
        ("1", int),
        (1.5, int),
        (None, int),
        ([1, 2, 3], tuple[int, int, int, int]),
        ([1, 2, 3, "4"], tuple[int, int, int, int]),
        ({"a": 1}, dict[str, int]),
        (["a"], dict[str, int]),
        (99, K),
        ("READ", K),
        ([0, [1, 1, 1, 1]], Event),
        ({"kind": 0}, Event),
        ([[0, [1, 1, 1, 1], "", [], 0, "", None, [], [], -1, False, False, [0]]], Event),
        ("not a list", list[int]),
    ],
)
def test_decoder_rejects_the_wrong_shape(data: Any, tp: object) -> None:
    with pytest.raises(Invalid):
        decode(data, tp)


def test_decoder_never_builds_anything_but_the_declared_types() -> None:
    """JSON objects where lists are expected (a would-be ``__reduce__`` or ``__class__``)
    are refused, not interpreted."""
    for payload in (
        {"__class__": "os.system", "args": ["touch /tmp/pwned"]},
        ["os.system", ["echo"]],
        [{"py/object": "subprocess.Popen"}],
    ):
        with pytest.raises(Invalid):
            decode(payload, CacheEntry)


def test_check_facts_refuses_dangling_references() -> None:
    facts = extract(SNIPPET, "a.py", "a")
    fn = next(iter(facts.functions.values()))
    fn.events[0].succ.append(len(fn.events) + 5)
    with pytest.raises(Invalid):
        cache_mod._check_facts(facts)


@pytest.mark.parametrize(
    "path", FIXTURE_FILES, ids=[p.relative_to(FIXTURES).as_posix() for p in FIXTURE_FILES]
)
def test_every_fixture_round_trips_in_columns(path: Path) -> None:
    """The entry format (schema 9): columns, through JSON (checked) and through marshal (as a
    worker sends them to its parent, unchecked), give back the same entry, of the same types."""
    text = path.read_text(encoding="utf-8")
    entry = CacheEntry(extract(text, path.as_posix(), path.stem), [], parse_noqa(text))
    columns = cache_mod.encode_columns(entry, CacheEntry)
    data = cache_mod.join_entry(["head"], columns)
    assert data is not None
    head, body = cache_mod.split_entry(data)
    assert head == ["head"]
    back = cache_mod.decode_columns(cache_mod.loads_json(body), CacheEntry)
    (trusted,) = cache_mod.decode_trusted(marshal.loads(marshal.dumps(columns)), CacheEntry)
    for got in (back, trusted):
        assert got == entry
        for fn in got.facts.functions.values():
            assert all(type(e) is Event and type(e.kind) is K for e in fn.events)
            assert all(type(e.pos) is tuple and type(e.args) is tuple for e in fn.events)
            assert all(type(e.succ) is list for e in fn.events)
            assert all(e.show is None or type(e.show) is tuple for e in fn.events)
        # no two events share a successor list (they are changed in place by no one, but
        # must not be aliases of each other)
        succs = [id(e.succ) for fn in got.facts.functions.values() for e in fn.events]
        assert len(set(succs)) == len(succs)


def test_meta_diagnostics_and_noqa_round_trip_in_columns(tmp_path: Path) -> None:
    outs = pipeline.extract_all(
        [_job(tmp_path, "bad.py", b"x = '\xff'\n"), _job(tmp_path, "syn.py", b"def f(:  # noqa\n")],
        Settings(),
    )
    for out in outs:
        entry = CacheEntry(out.facts, out.meta, out.noqa)
        columns = json.loads(json.dumps(cache_mod.encode_columns(entry, CacheEntry)))
        assert cache_mod.decode_columns(columns, CacheEntry) == entry
        assert cache_mod.decode_trusted(
            marshal.loads(marshal.dumps(cache_mod.encode_columns(entry, CacheEntry))), CacheEntry
        ) == [entry]


def test_the_columns_of_several_entries_join(tmp_path: Path) -> None:
    """A worker joins its chunk's entries into one set of columns (``join_columns``): decoded
    at once, they are the entries, in order (empty ones, meta diagnostics, noqa maps too)."""
    texts = [SNIPPET, "x = 1\n", "", SNIPPET.replace("asyncio", "trio"), "y = 2  # noqa\n"]
    entries = [
        CacheEntry(extract(text, f"{i}.py", f"m{i}"), [], parse_noqa(text))
        for i, text in enumerate(texts)
    ]
    entries.insert(2, CacheEntry(None, [], {}))
    jobs = [
        _job(tmp_path, "bad.py", b"x = '\xff'\n"),
        _job(tmp_path, "syn.py", b"def f(:  # noqa\n"),
    ]
    entries += [CacheEntry(o.facts, o.meta, o.noqa) for o in pipeline.extract_all(jobs, Settings())]
    joined = cache_mod.join_columns(
        [cache_mod.encode_columns(e, CacheEntry) for e in entries], CacheEntry
    )
    data = marshal.loads(marshal.dumps(joined))
    assert cache_mod.decode_trusted(data, CacheEntry, len(entries)) == entries
    checked = cache_mod._COLUMNS.decoder(CacheEntry)(json.loads(json.dumps(joined)), len(entries))
    assert checked == entries


@pytest.mark.parametrize(
    "data,tp",
    [
        ([[0, "1"]], list[int]),  # a string among ints
        ([[1], [1, 2]], list[Event]),  # items that are not the columns of events
        ([[2], [[[1], [2]], [[1, 2]]]], list[tuple[int, str]]),  # lengths and items disagree
        ([[-1], []], list[Event]),  # a negative length
        ([[True], ["a"]], str | None),  # flags that are not a string of 0 and 1
        (["2", ["a"]], str | None),
        (["10", ["a"]], str | None),  # more flags than values
        (["1", ["a", "b"]], str | None),  # more values than flags
        (["1", [1]], str | None),  # a value of the wrong type
        ([1, 2, 3], tuple[int, int, int, int]),  # a position cut short
        ([[1], ["a"], []], dict[str, str]),  # a key without its value
        (["x"], bool),
        ([True], bool),
        ("01", bool),
        ([{"__class__": "os.system"}], CacheEntry),
    ],
)
def test_column_decoder_rejects_the_wrong_shape(data: Any, tp: object) -> None:
    with pytest.raises(Invalid):
        cache_mod._COLUMNS.decoder(tp)(data, 1)


def test_inflate_refuses_more_than_the_limit() -> None:
    body = zlib.compress(b" " * 10_000)
    assert cache_mod.inflate(body, 10_000) == b" " * 10_000
    with pytest.raises(ValueError):
        cache_mod.inflate(body, 9_999)
    with pytest.raises(ValueError):
        cache_mod.inflate(body[:-3], 10_000)  # truncated


def test_entries_of_schema_8_are_not_read(tmp_path: Path) -> None:
    """An entry as the previous format wrote it, at the path of the current one, is a miss
    (older formats live in other directories, ``extract-v8-...``, pruned in time)."""
    cache = Cache.open(tmp_path / "cache")
    assert cache is not None
    key, digest = Cache.key("a.py", "a", False), content_digest(b"x")
    entry = CacheEntry(extract(SNIPPET, "a.py", "a"), [], {})
    assert cache.put(key, digest, entry)
    assert cache.get(key, digest, 1) == entry
    old = cache_mod.encode_json(
        {
            "format": cache_mod.FORMAT,
            "schema": 8,
            "asyncrace": cache_mod.code_version(),
            "python": cache_mod.PYTHON,
            "key": key,
            "content": digest,
            "payload": entry,
        }
    )
    assert old is not None
    cache.path(key).write_bytes(old)
    assert cache.get(key, digest, 1) is None
    assert cache.dir.name.startswith(f"extract-v{cache_mod.SCHEMA}-")
    assert cache_mod.SCHEMA > 8


def test_codec_refuses_unsupported_types() -> None:
    with pytest.raises(TypeError):
        encode(1, int | str)
    with pytest.raises(TypeError):
        encode({1}, set[int])


# --------------------------------------------------------------------------- helpers


def _job(tmp: Path, name: str, data: bytes) -> Any:
    from asyncrace.run.jobs import FileJob

    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return FileJob(str(p), name, Path(name).stem, False)


def _project(tmp: Path) -> Path:
    proj = tmp / "proj"
    for src in FIXTURE_FILES:
        dst = proj / src.relative_to(FIXTURES)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src.read_bytes())
    (proj / "snippet.py").write_text(SNIPPET)
    (proj / "broken.py").write_bytes(b"def f(:\n")
    (proj / "undecodable.py").write_bytes(b"x = '\xff'\n")
    return proj


def _cli(proj: Path, *args: str, fmt: str = "json") -> str:
    # these tests are about the per-file extraction cache: keep the run cache (which answers
    # an unchanged tree as a whole, see test_runcache.py) and the project snapshot (which
    # answers a tree with few changes, see test_incremental.py) out of their way
    shutil.rmtree(proj / ".asyncrace_cache" / "runs", ignore_errors=True)
    shutil.rmtree(proj / ".asyncrace_cache" / "projects", ignore_errors=True)
    r = CliRunner().invoke(
        main, ["check", ".", "--output-format", fmt, "--exit-zero", *args], catch_exceptions=False
    )
    assert r.exit_code == 0, r.output
    return r.stdout


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_mod.Cache(cache_dir).dir.glob(f"*{cache_mod.SUFFIX}"))


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = _project(tmp_path)
    monkeypatch.chdir(p)
    return p


@pytest.fixture
def count_extractions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Displays of the files parsed in this process (jobs=1 runs in-process)."""
    seen: list[str] = []
    real = pipeline._parse_and_extract

    def counting(text: str, job: Any) -> ModuleFacts:
        seen.append(job.display)
        return real(text, job)

    monkeypatch.setattr(pipeline, "_parse_and_extract", counting)
    return seen


# ------------------------------------------------------------------------------- warm/cold


@pytest.mark.parametrize("fmt", ["json", "concise", "sarif"])
def test_warm_run_is_identical_to_cold_and_parses_nothing(
    proj: Path, count_extractions: list[str], fmt: str
) -> None:
    uncached = _cli(proj, "--no-cache", "-j", "1", fmt=fmt)
    count_extractions.clear()
    cold = _cli(proj, "-j", "1", fmt=fmt)
    assert len(count_extractions) == len(list(proj.rglob("*.py"))) - 1  # undecodable: no parse
    count_extractions.clear()
    warm = _cli(proj, "-j", "1", fmt=fmt)
    assert count_extractions == []
    assert cold == warm == uncached
    cache_dir = proj / ".asyncrace_cache"
    assert (
        (cache_dir / "CACHEDIR.TAG")
        .read_text()
        .startswith("Signature: 8a477f597d28d172789f06886806bc55")
    )
    assert (cache_dir / ".gitignore").read_text() == "*\n"
    assert len(_entries(cache_dir)) == len(list(proj.rglob("*.py")))


def test_warm_run_with_the_pool_is_identical(proj: Path) -> None:
    cold = _cli(proj, "-j", "2")
    warm = _cli(proj, "-j", "2")
    assert cold == warm == _cli(proj, "-j", "1", "--no-cache")


def test_a_changed_file_is_extracted_again(proj: Path, count_extractions: list[str]) -> None:
    _cli(proj, "-j", "1")
    entries = {p.name: p.read_bytes() for p in _entries(proj / ".asyncrace_cache")}
    count_extractions.clear()
    (proj / "snippet.py").write_text(SNIPPET.replace("return self._current", "return x"))
    out = json.loads(_cli(proj, "-j", "1"))
    assert count_extractions == ["snippet.py"]
    assert not [d for d in out if d["filename"].endswith("snippet.py")]
    after = {p.name: p.read_bytes() for p in _entries(proj / ".asyncrace_cache")}
    changed = [name for name in entries if entries[name] != after[name]]
    assert len(changed) == 1 and set(after) == set(entries)  # overwritten in place
    count_extractions.clear()
    (proj / "snippet.py").write_text(SNIPPET)  # back: extracted again, finding back
    out = json.loads(_cli(proj, "-j", "1"))
    assert count_extractions == ["snippet.py"]
    assert [d["location"]["row"] for d in out if d["filename"].endswith("snippet.py")] == [6]


def _snippet_entry(proj: Path) -> Path:
    key = Cache.key("snippet.py", "snippet", False)
    return cache_mod.Cache(proj / ".asyncrace_cache").dir / f"{key}{cache_mod.SUFFIX}"


HEAD = ("format", "schema", "asyncrace", "python", "key", "content")


def _parse(data: bytes) -> dict[str, Any]:
    """An entry file as a document: its head's fields by name, and its payload."""
    head, body = cache_mod.split_entry(data)
    payload = cache_mod.loads_json(body)
    return {**dict(zip(HEAD, head, strict=True)), "payload": payload}


def _unparse(doc: dict[str, Any]) -> bytes:
    data = cache_mod.join_entry([doc[k] for k in HEAD], doc["payload"])
    assert data is not None
    return data


def _doc(path: Path) -> dict[str, Any]:
    return _parse(path.read_bytes())


def _edit(**fields: Any) -> Callable[[bytes], bytes]:
    return lambda b: _unparse({**_parse(b), **fields})


def _edit_payload(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(b: bytes) -> bytes:
        doc = _parse(b)
        text = json.dumps(doc["payload"], separators=(",", ":")).encode()
        assert old in text
        return _unparse({**doc, "payload": json.loads(text.replace(old, new, 1))})

    return edit


def _old_entry(b: bytes) -> bytes:
    """The entry as schema 8 wrote it: one JSON document, the payload in rows."""
    doc = _parse(b)
    entry = cache_mod.decode_columns(doc["payload"], CacheEntry)
    data = cache_mod.encode_json({**doc, "schema": 8, "payload": entry})
    assert data is not None
    return data


CORRUPTIONS = {
    "garbage": lambda b: b"\x00\xff garbage \x80" * 10,
    "truncated": lambda b: b[: len(b) // 2],
    "truncated_in_the_head": lambda b: b[:20],
    "empty": lambda b: b"",
    "not_an_object": lambda b: b"[1, 2, 3]",
    "deeply_nested": lambda b: b"[" * 100_000 + b"]" * 100_000,
    "payload_not_columns": lambda b: b.partition(b"\n")[0] + b"\n[1,2,3]",
    "payload_compressed": lambda b: (
        b.partition(b"\n")[0] + b"\n" + zlib.compress(b.partition(b"\n")[2])
    ),
    "payload_deeply_nested": lambda b: (
        b.partition(b"\n")[0] + b"\n" + b"[" * 100_000 + b"]" * 100_000
    ),
    "trailing_bytes": lambda b: b + b"x",
    "no_head": lambda b: b.partition(b"\n")[2],
    "old_schema_as_it_was_written": _old_entry,
    "foreign_version": _edit(asyncrace="0.0.0-other"),
    "foreign_schema": _edit(schema=-1),
    "schema_8": _edit(schema=8),
    "foreign_python": _edit(python="2.7"),
    "other_key": _edit(key="0" * 40),
    "other_content": _edit(content="0" * 40),
    "payload_wrong_types": _edit(payload=[["snippet.py", 1, [], [], [], [], []], [], []]),
    "payload_rows": lambda b: _unparse(
        {**_parse(b), "payload": cache_mod.encode(_old_payload(b), CacheEntry)}
    ),
    "payload_dangling_index": _edit_payload(b"[2]", b"[2000]"),
    "facts_about_another_file": _edit_payload(b'"snippet.py"', b'"other.py"'),
    "schema_true": _edit(schema=True),
    "forged_empty_facts": _edit(
        payload=cache_mod.encode_columns(CacheEntry(None, [], {}), CacheEntry), content="f" * 40
    ),
}


def _old_payload(b: bytes) -> CacheEntry:
    entry: CacheEntry = cache_mod.decode_columns(_parse(b)["payload"], CacheEntry)
    return entry


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_bad_entries_are_ignored_and_rebuilt(
    proj: Path, count_extractions: list[str], kind: str
) -> None:
    cold = _cli(proj, "-j", "1")
    entry = _snippet_entry(proj)
    good = entry.read_bytes()
    entry.write_bytes(CORRUPTIONS[kind](good))
    count_extractions.clear()
    assert _cli(proj, "-j", "1") == cold
    assert count_extractions == ["snippet.py"]
    assert _doc(entry) == _parse(good)  # rebuilt
    count_extractions.clear()
    assert _cli(proj, "-j", "1") == cold
    assert count_extractions == []


def test_an_entry_that_is_a_symlink_or_fifo_is_not_read(
    proj: Path, count_extractions: list[str]
) -> None:
    cold = _cli(proj, "-j", "1")
    entry = _snippet_entry(proj)
    for make in (
        lambda: os.symlink("/dev/zero", entry),
        lambda: os.mkfifo(entry),
        lambda: entry.mkdir(),
    ):
        if entry.is_dir() and not entry.is_symlink():
            entry.rmdir()
        else:
            entry.unlink()
        make()
        count_extractions.clear()
        assert _cli(proj, "-j", "1") == cold  # would hang or fail if it were read
        assert count_extractions == ["snippet.py"]


def test_an_oversized_entry_is_not_read(proj: Path, count_extractions: list[str]) -> None:
    cold = _cli(proj, "-j", "1")
    entry = _snippet_entry(proj)
    size = (proj / "snippet.py").stat().st_size
    entry.write_bytes(b" " * (cache_mod.MAX_ENTRY_BASE + cache_mod.MAX_ENTRY_RATIO * size + 1))
    count_extractions.clear()
    assert _cli(proj, "-j", "1") == cold
    assert count_extractions == ["snippet.py"]


def test_unusable_cache_dir_is_not_fatal(proj: Path, caplog: pytest.LogCaptureFixture) -> None:
    (proj / "cachefile").write_text("a file where the cache directory should be")
    expected = _cli(proj, "--no-cache")
    r = CliRunner().invoke(
        main,
        ["check", ".", "--output-format", "json", "--exit-zero", "--cache-dir", "cachefile/sub"],
    )
    assert r.exit_code == 0
    assert r.stdout == expected
    assert "cache disabled" in r.stderr


def test_no_cache_writes_nothing(proj: Path) -> None:
    _cli(proj, "--no-cache")
    _cli(proj, "--no-cache", "-j", "2")
    assert not (proj / ".asyncrace_cache").exists()
    assert not list(proj.rglob("*.json"))
    assert not list(proj.rglob(f"*{cache_mod.SUFFIX}"))


def test_same_content_at_two_paths_has_two_entries(tmp_path: Path) -> None:
    """The facts embed the display path and module name, so they are part of the key."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "m.py").write_text(SNIPPET)
    (tmp_path / "b" / "m.py").write_text(SNIPPET)
    cache_dir = tmp_path / "cache"
    paths = [tmp_path / "a" / "m.py", tmp_path / "b" / "m.py"]
    cold = check(paths, Settings(), cache_dir=cache_dir)
    assert len(_entries(cache_dir)) == 2
    warm = check(paths, Settings(), cache_dir=cache_dir)
    assert warm.diagnostics == cold.diagnostics
    assert {d.path for d in warm.diagnostics} == {
        (tmp_path / "a" / "m.py").as_posix(),
        (tmp_path / "b" / "m.py").as_posix(),
    }


# ------------------------------------------------------------------------------ concurrency


def test_concurrent_writers_and_readers_never_see_a_partial_entry(tmp_path: Path) -> None:
    cache = Cache.open(tmp_path / "cache")
    assert cache is not None
    facts = extract(SNIPPET, "a.py", "a")
    entries = [
        CacheEntry(facts, [], {}),
        CacheEntry(None, [], {}),
    ]
    key = Cache.key("a.py", "a", False)
    digest = content_digest(b"x")
    stop = threading.Event()
    bad: list[object] = []

    def writer(i: int) -> None:
        n = 0
        while not stop.is_set() and n < 200:
            cache.put(key, digest, entries[(i + n) % 2])
            n += 1

    def reader() -> None:
        while not stop.is_set():
            got = cache.get(key, digest, 1)
            if got is not None and got not in entries:
                bad.append(got)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads[:4]:
        t.join()
    stop.set()
    for t in threads[4:]:
        t.join()
    assert bad == []
    assert cache.get(key, digest, 1) in entries
    leftovers = [p.name for p in cache.dir.iterdir() if not p.name.endswith(cache_mod.SUFFIX)]
    assert leftovers == []  # temporary files renamed or removed


def test_two_concurrent_runs_do_not_corrupt_the_cache(proj: Path) -> None:
    expected = _cli(proj, "--no-cache")
    cmd = [sys.executable, "-m", "asyncrace", "check", ".", "--output-format", "json"]
    cmd += ["--exit-zero", "-j", "2"]
    env = {**os.environ, "NO_COLOR": "1"}
    procs = [
        subprocess.Popen(cmd, cwd=proj, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.decode() == expected
    cache_dir = proj / ".asyncrace_cache"
    entries = _entries(cache_dir)
    assert len(entries) == len(list(proj.rglob("*.py")))
    for e in entries:
        doc = _doc(e)
        assert doc["format"] == cache_mod.FORMAT
        cache_mod.decode_columns(doc["payload"], CacheEntry)
    assert _cli(proj) == expected  # warm, from what they wrote


# -------------------------------------------------------------------------------- misc


def test_diagnostic_type_is_supported() -> None:
    d = pipeline.meta("ARC900", "a.py", "syntax error: x", 3, 4)
    assert _roundtrip([d], list[Diagnostic]) == [d]
    pos: Pos = (1, 2, 3, 4)
    assert _roundtrip(pos, Pos) == pos


def test_directories_of_other_versions_are_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each asyncrace version (each code change of an editable install) gets a directory of
    its own; only the KEEP_VERSIONS used last survive, the current one always."""
    import os

    root = tmp_path / "cache"
    made = []
    for i in range(5):
        monkeypatch.setattr(cache_mod, "code_version", lambda i=i: f"9.9.{i}+abc")
        c = cache_mod.Cache.open(root)
        assert c is not None
        (c.dir / "entry.json").write_text("{}")
        os.utime(c.dir, (1000 + i, 1000 + i))  # used in order 0, 1, 2, 3, 4
        made.append(c.dir)
    monkeypatch.setattr(cache_mod, "code_version", lambda: "9.9.1+abc")  # an old one again
    again = cache_mod.Cache.open(root)
    assert again is not None
    left = sorted(d.name for d in root.iterdir() if d.name.startswith("extract-v"))
    assert len(left) == cache_mod.KEEP_VERSIONS
    assert again.dir.name in left  # the current one is kept whatever its age
    assert made[4].name in left and made[3].name in left  # then the most recently used
    assert made[0].name not in left and made[2].name not in left
    assert (made[4] / "entry.json").exists()  # what is kept is kept whole


def test_pruning_never_touches_directories_that_are_not_version_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared --cache-dir may hold the user's own ``extract-videos/``: only names of the
    exact version-directory form are pruned, and only under asyncrace's CACHEDIR.TAG."""
    import os

    root = tmp_path / "shared"
    root.mkdir()
    for name in ("extract-vendor", "extract-videos", "extract-values"):
        (root / name).mkdir()
        (root / name / "data.txt").write_text("mine")
        os.utime(root / name, (1, 1))
    for i in range(cache_mod.KEEP_VERSIONS + 2):
        monkeypatch.setattr(cache_mod, "code_version", lambda i=i: f"9.9.{i}")
        assert cache_mod.Cache.open(root) is not None
    for name in ("extract-vendor", "extract-videos", "extract-values"):
        assert (root / name / "data.txt").read_text() == "mine"
    versions = [d for d in root.iterdir() if d.name.startswith(f"extract-v{cache_mod.SCHEMA}-")]
    assert len(versions) == cache_mod.KEEP_VERSIONS
    # a directory with another tag (or none) is not ours to prune at all
    other = tmp_path / "other"
    other.mkdir()
    (other / "CACHEDIR.TAG").write_text(
        "Signature: 8a477f597d28d172789f06886806bc55\nsomeone else\n"
    )
    (other / "extract-v1").mkdir()
    for i in range(cache_mod.KEEP_VERSIONS + 2):
        monkeypatch.setattr(cache_mod, "code_version", lambda i=i: f"8.8.{i}")
        assert cache_mod.Cache.open(other) is not None
    assert (other / "extract-v1").is_dir()
