"""Per-file extraction: read, decode, parse (lowering newer syntax), extract facts and ``noqa``
comments; with the cache in front and a process pool behind.

Guarantees (docs/robustness.md):

* Never an exception for a file's contents: every failure becomes a diagnostic for that file
  (ARC900 syntax, ARC901 unreadable or undecodable, ARC902 an asyncrace bug, with the
  exception) and the other files are still analyzed. A worker process that dies (a crash in
  native code, the kernel's OOM killer) loses no other file: the files it had not finished
  are run again, and the one that kills a worker on its own gets an ARC902.
* No stack overflow: the parser and the extractor recurse, so they run on a thread with a
  :data:`STACK_SIZE` stack under a recursion limit of :data:`RECURSION_LIMIT` (about 25 times
  less stack than that limit can use), in the parent (``jobs=1``) and in the workers. Deeper
  input gets an ARC900. The caller's recursion limit is restored afterwards.
* Deterministic: outcomes come back in the order of the jobs, whatever the number of
  processes and whether they came from the cache.
* A warm run parses nothing: the cache is consulted in the parent before any work is sent
  to the pool, by the hash of the bytes just read.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import marshal
import os
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from asyncrace import large, suppress
from asyncrace.analysis.extract import extract
from asyncrace.analysis.facts import ModuleFacts
from asyncrace.diagnostic import Diagnostic, Location, Span
from asyncrace.registry import info
from asyncrace.run import transfer
from asyncrace.run.cache import (
    Cache,
    CacheEntry,
    content_digest,
    decode_trusted,
    entry_name,
    join_columns,
    relabel,
)
from asyncrace.run.jobs import FileJob
from asyncrace.settings import Settings
from asyncrace.sources import DecodeFailure, decode_source, read_source_bytes

if TYPE_CHECKING:  # imported when a pool is first used: a short run needs none of it
    from concurrent.futures import Future, ProcessPoolExecutor

log = logging.getLogger("asyncrace.pipeline")

# below this many bytes of source to extract (about 7,000 lines, 0.1 s of work) a process
# pool costs more than it saves: the size of the work decides, not the number of files
PARALLEL_THRESHOLD = 256 * 1024
# deep expressions recurse in the parser's tree building and in the extractor; beyond this
# the file gets an ARC900. CPython builds ast trees 3 times as deep as the limit.
RECURSION_LIMIT = 12_000
# the stack the recursion runs on: measured, a Python frame that recurses through C code
# takes about 600 bytes of stack per unit of recursion limit, so 12,000 needs ~8 MiB (the
# usual main-thread stack, where 15,000 already crashes). 256 MiB is mostly never touched.
STACK_SIZE = 256 * 1024 * 1024
# the multiprocessing start method of the pool; None: the platform's default
MP_CONTEXT: str | None = None

R = TypeVar("R")
A = TypeVar("A")


@dataclass
class FileOutcome:
    display: str
    facts: ModuleFacts | None
    meta: list[Diagnostic] = field(default_factory=list)
    noqa: suppress.NoqaMap = field(default_factory=dict)
    # False for outcomes that depend on more than the bytes (an internal error, running out
    # of memory): they are not cached
    cacheable: bool = True


@dataclass(frozen=True)
class _Work:
    """One file to extract, with what the parent learnt about it."""

    job: FileJob
    # the file's bytes, when the parent read them (None: ``job.text`` is given, or the one
    # extracting it reads the file: in parallel, and no bytes cross to a worker)
    data: bytes | None
    cache_root: str | None = None  # where to store the outcome, when cacheable
    name: str = ""  # the cache entry's name (``cache.entry_name``)
    digest: str = ""
    # ``digest`` is what the caller hashed (the run key): bytes read now that no longer match
    # are extracted, but the outcome is not cacheable (it answers for other bytes)
    verify: bool = False


MemoryKey = tuple[str, str, bool, str]  # display path, module, is package, digest of the bytes


class FactsMemory:
    """File outcomes kept in memory between the runs of one long-lived process (the language
    server): a file whose bytes have not changed since the last analysis is neither read from
    the cache directory nor decoded again. Keyed by display path, module name, package flag
    and the digest of the file's bytes. Only outcomes that depend on nothing but those bytes
    are kept. The least recently used are dropped once the kept facts exceed ``limit``
    events (measured on hermes-agent and pydantic-ai: 570 bytes per event, 0.8 events per
    line; the default, 500,000 events, is about 600,000 lines of code and 280 MB).
    Thread-safe."""

    def __init__(self, limit: int = 500_000) -> None:
        self.limit = limit
        self.weight = 0
        self._items: OrderedDict[MemoryKey, tuple[FileOutcome, int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _weight(out: FileOutcome) -> int:
        if out.facts is None:
            return 1
        return 1 + sum(len(f.events) for f in out.facts.functions.values())

    def get(self, key: MemoryKey) -> FileOutcome | None:
        with self._lock:
            held = self._items.get(key)
            if held is None:
                return None
            self._items.move_to_end(key)
            return held[0]

    def put(self, key: MemoryKey, out: FileOutcome) -> None:
        if not out.cacheable:
            return
        w = self._weight(out)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self.weight -= old[1]
            self._items[key] = (out, w)
            self.weight += w
            while self.weight > self.limit and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self.weight -= dropped

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def meta(code: str, path: str, message: str, row: int = 1, col: int = 1) -> Diagnostic:
    ri = info(code)
    row = max(1, row)
    col = max(1, col)
    return Diagnostic(
        code=code,
        name=ri.name,
        message=message,
        span=Span(path, Location(row, col), Location(row, col)),
        url=ri.url,
    )


# -------------------------------------------------------------------------- one file's outcome


def _read(job: FileJob) -> bytes | FileOutcome:
    try:
        return read_source_bytes(job.path)  # never blocks (FIFO, device)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return FileOutcome(
            job.display,
            None,
            [meta("ARC901", job.display, f"cannot read file: {reason}")],
            cacheable=False,
        )
    except (MemoryError, OverflowError) as exc:
        return FileOutcome(
            job.display,
            None,
            [meta("ARC901", job.display, f"cannot read file: {type(exc).__name__}")],
            cacheable=False,
        )


def _syntax_error(display: str, exc: SyntaxError, noqa: suppress.NoqaMap) -> FileOutcome:
    msg = exc.msg or "invalid syntax"
    return FileOutcome(
        display,
        None,
        [meta("ARC900", display, f"syntax error: {msg}", exc.lineno or 1, exc.offset or 1)],
        noqa,
    )


def _null_byte(display: str, text: str, noqa: suppress.NoqaMap) -> FileOutcome:
    at = text.index("\0")
    row = text.count("\n", 0, at) + text.count("\r", 0, at) - text.count("\r\n", 0, at) + 1
    line_start = max(text.rfind("\n", 0, at), text.rfind("\r", 0, at)) + 1
    return FileOutcome(
        display,
        None,
        [
            meta(
                "ARC900",
                display,
                "cannot parse: the file contains a null byte",
                row,
                at - line_start + 1,
            )
        ],
        noqa,
    )


def _too_deep(display: str, noqa: suppress.NoqaMap, cacheable: bool = True) -> FileOutcome:
    return FileOutcome(
        display,
        None,
        [
            meta(
                "ARC900",
                display,
                "too deeply nested to analyze (the parser's or asyncrace's limit)",
            )
        ],
        noqa,
        cacheable=cacheable,
    )


def _parse_and_extract(text: str, job: FileJob) -> tuple[ModuleFacts, bool]:
    """Facts of ``text``, and whether ``ast.parse`` took the text as it is (nothing elided,
    nothing lowered); on a ``SyntaxError`` the text is lowered (newer syntax) and parsed
    again, and if that fails too the original error is raised. A very large text has its data
    literals elided first, or raises ``large.TooLarge`` (:mod:`asyncrace.large`)."""
    prepared = large.prepare(text)
    as_is = prepared is text
    text = prepared
    try:
        return extract(text, job.display, job.module, job.is_package), as_is
    except SyntaxError as original:
        from asyncrace.analysis.lower import lower

        lowered = lower(text)
        if lowered is None:
            raise
        try:
            return extract(lowered, job.display, job.module, job.is_package), False
        except SyntaxError:
            raise original from None


def _noqa(text: str, parsed: bool = False) -> suppress.NoqaMap:
    try:
        return suppress.parse_noqa(text, parsed=parsed)
    except Exception:
        return {}


def analyze_text(job: FileJob, text: str) -> FileOutcome:
    """The outcome of one decoded text. Never raises (but for KeyboardInterrupt/SystemExit)."""
    display = job.display
    if "\0" in text:  # CPython refuses it; say where it is
        return _null_byte(display, text, _noqa(text))
    try:
        facts, parsed = _parse_and_extract(text, job)
    except SyntaxError as exc:
        return _syntax_error(display, exc, _noqa(text))
    except ValueError as exc:  # "source code string cannot contain null bytes" and the like
        return FileOutcome(
            display, None, [meta("ARC900", display, f"cannot parse: {exc}")], _noqa(text)
        )
    except RecursionError:
        return _too_deep(display, _noqa(text))
    except large.TooLarge as exc:
        return FileOutcome(display, None, [meta("ARC900", display, str(exc))], _noqa(text))
    except MemoryError:  # CPython's parser says "too complex" this way; or really out of memory
        return _too_deep(display, _noqa(text), cacheable=False)
    except Exception as exc:  # an asyncrace bug: report it, keep going
        return FileOutcome(
            display,
            None,
            [
                meta(
                    "ARC902",
                    display,
                    f"internal error while extracting: {type(exc).__name__}: {exc}; please report it",
                )
            ],
            _noqa(text),
            cacheable=False,
        )
    # the parser took the text: its comments can be found without tokenizing all of it
    return FileOutcome(display, facts, [], _noqa(text, parsed))


def analyze_bytes(job: FileJob, data: bytes) -> FileOutcome:
    try:
        text = decode_source(data)
    except DecodeFailure as exc:
        return FileOutcome(
            job.display,
            None,
            [meta("ARC901", job.display, f"cannot decode file: {exc}", exc.row, exc.column)],
        )
    except Exception as exc:  # a codec named in a cookie that fails in its own way
        return FileOutcome(
            job.display,
            None,
            [meta("ARC901", job.display, f"cannot decode file: {type(exc).__name__}: {exc}")],
        )
    return analyze_text(job, text)


def extract_one(job: FileJob) -> FileOutcome:
    """Read (unless the text is given), decode, parse and extract one file, on the current
    thread and under the current recursion limit (see :func:`extract_all` for the safe way)."""
    if job.text is not None:
        return analyze_text(job, job.text)
    data = _read(job)
    if isinstance(data, FileOutcome):
        return data
    return analyze_bytes(job, data)


def _process(work: _Work) -> FileOutcome:
    return _process_encoded(work)[0]


def _process_encoded(work: _Work) -> tuple[FileOutcome, Any]:
    """The outcome, and when it was cached, the cache entry in columns
    (``Cache.put_as``; None otherwise)."""
    job = work.job
    data = work.data
    if data is None:
        if job.text is not None or not (work.verify or work.cache_root is not None):
            return extract_one(job), None
        read = _read(job)
        if isinstance(read, FileOutcome):
            return read, None
        data = read
    out = analyze_bytes(job, data)
    if work.verify and content_digest(data) != work.digest:
        out.cacheable = False  # changed since the caller hashed it
    columns = None
    if work.cache_root is not None and out.cacheable:
        try:
            columns = Cache(Path(work.cache_root)).put_as(
                work.name,
                job.module,
                job.is_package,
                work.digest,
                CacheEntry(out.facts, out.meta, out.noqa),
            )
        except Exception as exc:  # never fatal: the outcome is still good
            log.debug("asyncrace: not cached: %s: %s", job.display, exc)
    return out, columns


def _process_all(
    items: Sequence[_Work], progress: Callable[[int], None] | None = None
) -> list[FileOutcome]:
    # the parser warns about the analyzed code (SyntaxWarning for invalid escape sequences on
    # Python 3.12+): not for asyncrace to print
    out: list[FileOutcome] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for w in items:
            out.append(_process(w))
            if progress is not None:
                progress(1)
    return out


# -------------------------------------------------------------------- stack and recursion

_DEEP_LOCK = threading.Lock()


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    if old < limit:
        sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def run_deep(fn: Callable[[A], R], arg: A) -> R:
    """``fn(arg)`` on a thread with a :data:`STACK_SIZE` stack and the recursion limit raised
    to :data:`RECURSION_LIMIT`; when no such thread can be made, on this thread under the
    current limit (deep input then fails with RecursionError, not with a crash)."""
    result: list[R] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn(arg))
        except BaseException as exc:
            error.append(exc)

    with _DEEP_LOCK:
        try:
            old_size = threading.stack_size(STACK_SIZE)
        except (ValueError, RuntimeError):  # not supported here
            return fn(arg)
        thread = threading.Thread(target=target, name="asyncrace-extract", daemon=True)
        try:
            with _recursion_limit(RECURSION_LIMIT):
                thread.start()
                threading.stack_size(old_size)
                thread.join()
        except RuntimeError:  # "can't start new thread": no memory for the stack
            threading.stack_size(old_size)
            return fn(arg)
        finally:
            threading.stack_size(old_size)
    if error:
        raise error[0]
    return result[0]


def _encoded_all(items: Sequence[_Work]) -> list[tuple[FileOutcome, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_process_encoded(w) for w in items]


def _worker_chunk(items: Sequence[_Work]) -> bytes:
    """A worker's chunk: its outcomes in the flat encoding of :mod:`asyncrace.run.transfer`
    (a third of the cost of pickling them object by object); or, when every one was cached,
    the display paths and the cache entries in the columns that were cached
    (``cache.encode_columns``): the cache has paid for that encoding already."""
    done = run_deep(_encoded_all, items)
    if all(columns is not None for _, columns in done):
        columns = join_columns([c for _, c in done], CacheEntry)
        return b"C" + marshal.dumps(([out.display for out, _ in done], columns))
    return b"T" + transfer.dumps([out for out, _ in done], FileOutcome)


def _outcomes(data: bytes) -> list[FileOutcome]:
    if data[:1] == b"T":
        return transfer.loads(data[1:], FileOutcome)
    displays, columns = marshal.loads(data[1:])
    outs = []
    entries = decode_trusted(columns, CacheEntry, len(displays))
    for display, entry in zip(displays, entries, strict=True):
        entry = relabel(entry, display)
        outs.append(FileOutcome(display, entry.facts, entry.meta, entry.noqa))
    return outs


# --------------------------------------------------------------------------------- the pool


def _crashed(work: _Work) -> FileOutcome:
    return FileOutcome(
        work.job.display,
        None,
        [
            meta(
                "ARC902",
                work.job.display,
                "internal error: the worker process extracting this file died; please report it",
            )
        ],
        cacheable=False,
    )


@contextmanager
def _safe_child_path() -> Iterator[None]:
    """Worker processes started by ``spawn`` or ``forkserver`` (Windows, macOS, Linux from
    Python 3.14) run ``python -c``, which puts the working directory first on ``sys.path``:
    a checked project's ``multiprocessing.py`` or ``json.py`` would be imported, i.e. run.
    ``PYTHONSAFEPATH`` (Python 3.11+) keeps it off while the workers start."""
    old = os.environ.get("PYTHONSAFEPATH")
    os.environ["PYTHONSAFEPATH"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONSAFEPATH", None)
        else:
            os.environ["PYTHONSAFEPATH"] = old


def _executor(n: int) -> ProcessPoolExecutor:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context(MP_CONTEXT) if MP_CONTEXT else None
    return ProcessPoolExecutor(max_workers=n, mp_context=ctx)


def _run_pool(
    items: Sequence[_Work], n: int, progress: Callable[[int], None] | None = None
) -> list[FileOutcome]:
    with _safe_child_path():
        return _run_pool_unsafe(items, n, progress)


def _run_pool_unsafe(
    items: Sequence[_Work], n: int, progress: Callable[[int], None] | None = None
) -> list[FileOutcome]:
    from concurrent.futures.process import BrokenProcessPool

    results: list[FileOutcome | None] = [None] * len(items)
    # chunks keep inter-process traffic low; several per worker balance uneven files
    size = max(1, min(64, len(items) // (n * 4) or 1))
    chunks = [list(range(i, min(i + size, len(items)))) for i in range(0, len(items), size)]
    try:
        with _executor(n) as pool:
            futures: list[tuple[list[int], Future[bytes]]] = [
                (c, pool.submit(_worker_chunk, [items[i] for i in c])) for c in chunks
            ]
            for idxs, fut in futures:
                try:
                    for i, out in zip(idxs, _outcomes(fut.result()), strict=True):
                        results[i] = out
                    if progress is not None:
                        progress(len(idxs))
                except BrokenProcessPool:
                    pass
    except BrokenProcessPool:
        pass
    failed = [i for i in range(len(items)) if results[i] is None]
    if failed:
        # a worker died: run each file it may have held alone, so only the culprit is lost
        log.warning(
            "asyncrace: warning: a worker process died; extracting %d files one by one",
            len(failed),
        )
        for i in failed:
            try:
                with _executor(1) as pool:
                    results[i] = _outcomes(pool.submit(_worker_chunk, [items[i]]).result())[0]
            except BrokenProcessPool:
                results[i] = _crashed(items[i])
    return [r if r is not None else _crashed(items[i]) for i, r in enumerate(results)]


# ----------------------------------------------------------------------------- entry point


def extract_all(
    jobs: Sequence[FileJob],
    settings: Settings,
    *,
    jobs_n: int = 1,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    known: Mapping[str, tuple[str, int]] | None = None,
    memory: FactsMemory | None = None,
) -> list[FileOutcome]:
    """Outcomes in the order of ``jobs`` whatever the number of processes and the cache.
    ``cache_dir=None`` disables the cache (texts given directly are never cached).
    ``progress(n)`` is told each time ``n`` more files are done (for a progress bar).
    ``known`` maps display paths to the (digest, size) of the bytes the caller just hashed:
    those files are looked up in the cache without being read again; a file read again (a
    miss) whose bytes no longer match is extracted, but its outcome is marked not cacheable.
    ``memory`` (a long-lived process's :class:`FactsMemory`) is asked before the cache
    directory, and keeps what this run read or extracted. Outcomes may then be shared between
    runs: callers must not modify them."""
    # extraction does not depend on the settings; cache entries are named relative to the
    # project root, so that every working directory shares them
    root = os.path.abspath(settings.project_root)
    # Millions of small acyclic objects are created here (facts decoded from the cache or
    # unpickled from the workers) and all of them are kept: the cyclic garbage collector
    # would only traverse them again and again (it tripled the warm time on 10,000 files).
    with gc_paused():
        return _extract_all(jobs, jobs_n, cache_dir, progress, known or {}, memory, root)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building or querying a million small fact objects
    that live to the end of the run triggers collections that find nothing to free.

    On the way out the objects made meanwhile are frozen (:func:`gc.freeze`) before the
    collector is enabled again: otherwise they all sit in the youngest generation, and the
    first collection after this block traverses every one of them (half a second for a
    million facts). :func:`gc.freeze` freezes *every* tracked object, the caller's too:
    :func:`asyncrace.run.engine.check` calls :func:`gc.unfreeze` before it returns, unless the
    process is about to end (the command line)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


def _extract_all(
    jobs: Sequence[FileJob],
    jobs_n: int,
    cache_dir: Path | None,
    progress: Callable[[int], None] | None = None,
    known: Mapping[str, tuple[str, int]] | None = None,
    memory: FactsMemory | None = None,
    root: str = "",
) -> list[FileOutcome]:
    known = known or {}
    root = root or os.getcwd()
    cache = Cache.open(cache_dir) if cache_dir is not None else None
    results: list[FileOutcome | None] = [None] * len(jobs)
    todo: list[tuple[int, _Work]] = []
    changed: set[int] = set()  # read again, and no longer the bytes the caller hashed
    remember: dict[int, MemoryKey] = {}  # what to keep in ``memory`` once extracted
    hits = 0

    def found(i: int, job: FileJob, digest: str, out: FileOutcome) -> None:
        results[i] = out
        if memory is not None:
            memory.put((job.display, job.module, job.is_package, digest), out)

    total = 0  # bytes to extract: whether a pool pays
    for i, job in enumerate(jobs):
        if job.text is not None:
            todo.append((i, _Work(job, None)))
            total += len(job.text)
            continue
        if job.display in known:
            digest, size = known[job.display]
            mkey = (job.display, job.module, job.is_package, digest)
            held = memory.get(mkey) if memory else None
            if held is not None:
                hits += 1
                results[i] = held
                continue
            name = ""
            if cache is not None:
                name = entry_name(job.path, root)
                entry = cache.get_as(name, job.module, job.is_package, digest, size, job.display)
                if entry is not None:
                    hits += 1
                    found(
                        i,
                        job,
                        digest,
                        FileOutcome(job.display, entry.facts, entry.meta, entry.noqa),
                    )
                    continue
            # a miss: whoever extracts it reads it, and checks it is still what was hashed
            store = str(cache.root) if cache is not None else None
            todo.append((i, _Work(job, None, store, name, digest, verify=True)))
            total += size
            if memory is not None:
                remember[i] = mkey
            continue
        if cache is None and memory is None:  # nothing to look up: the extractor reads it
            todo.append((i, _Work(job, None)))
            with contextlib.suppress(OSError):
                total += os.path.getsize(job.path)
            continue
        data = _read(job)
        if isinstance(data, FileOutcome):
            results[i] = data
            continue
        digest = content_digest(data)
        if job.display in known and known[job.display][0] != digest:
            changed.add(i)
        elif memory is not None:  # (without a cache directory, the bytes are hashed here)
            mkey = (job.display, job.module, job.is_package, digest)
            held = memory.get(mkey)
            if held is not None:
                hits += 1
                results[i] = held
                continue
            remember[i] = mkey
        total += len(data)
        if cache is None:
            todo.append((i, _Work(job, data)))
            continue
        name = entry_name(job.path, root)
        if i not in changed:
            entry = cache.get_as(name, job.module, job.is_package, digest, len(data), job.display)
            if entry is not None:
                hits += 1
                found(i, job, digest, FileOutcome(job.display, entry.facts, entry.meta, entry.noqa))
                continue
        todo.append((i, _Work(job, data, str(cache.root), name, digest)))
    if cache is not None:
        log.info("asyncrace: cache: %d of %d files unchanged", hits, len(jobs))

    items = [w for _, w in todo]
    if progress is not None and len(jobs) > len(items):
        progress(len(jobs) - len(items))  # cache hits and unreadable files: done already
    n = max(1, jobs_n)
    if n == 1 or len(items) < 2 or total < PARALLEL_THRESHOLD:
        outs = run_deep(lambda its: _process_all(its, progress), items) if items else []
    else:
        outs = _run_pool(items, n, progress)
    for (i, _), out in zip(todo, outs, strict=True):
        if i in changed:
            out.cacheable = False
        results[i] = out
        if memory is not None and i in remember:
            memory.put(remember[i], out)
    return [r for r in results if r is not None]


__all__ = [
    "PARALLEL_THRESHOLD",
    "RECURSION_LIMIT",
    "STACK_SIZE",
    "FactsMemory",
    "FileOutcome",
    "analyze_bytes",
    "analyze_text",
    "extract_all",
    "extract_one",
    "meta",
    "run_deep",
]
