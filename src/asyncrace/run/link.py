"""Link and check: every module's facts into one index and one analysis, then the enabled rules
over each module, in path order.

A full run calls :func:`link_and_check`; an incremental run links the headers itself and calls
:func:`check_modules` for the modules it checks again."""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from asyncrace.analysis.concurrency import Contribution
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import ModuleFacts
from asyncrace.analysis.index import AnalysisLimit, Index
from asyncrace.diagnostic import Diagnostic, Location, Span
from asyncrace.registry import info
from asyncrace.rules import Rule, all_rules
from asyncrace.run.jobs import Stale
from asyncrace.settings import Settings


def run_rules(facts: list[ModuleFacts], settings: Settings) -> list[Diagnostic]:
    """Link every file's facts into one index and run the enabled rules over each module. A
    rule that fails on one module yields an ARC902 diagnostic for that rule and file; every
    other rule and file is still checked."""
    return link_and_check(facts, settings)[0]


def link_and_check(
    facts: list[ModuleFacts],
    settings: Settings,
    *,
    track: bool = False,
    only: Collection[str] | None = None,
    jobs: int = 1,
) -> tuple[list[Diagnostic], Analysis, dict[str, set[str]]]:
    """:func:`run_rules`, and the analysis it built; with ``track``, also what the check of each
    module read (module name -> the modules and table keys, ``index.Tracker``). ``only``: the
    paths of the modules to check (the others are linked, as context): a module's findings do
    not depend on which other modules are checked (``bench/alone.py``). ``jobs`` of 2 or more:
    a large project's modules are checked in two processes (:func:`_check_split`)."""
    index = Index(facts)
    analysis = Analysis(index, settings)
    analysis.track = track
    rules = [r for r in all_rules() if r.code in settings.enabled]
    modules = sorted(facts, key=lambda m: m.path)
    if only is not None:
        modules = [m for m in modules if m.path in only]
    if jobs >= 2 and len(modules) >= SPLIT_AT and _can_fork():
        out, reads = _check_split(analysis, rules, modules, track)
    else:
        out, reads = check_modules(analysis, rules, modules, track)
    return out, analysis, reads


# a full run of at least this many modules checks half of them in a forked second process
SPLIT_AT = 400
# seconds one rule may spend on one module (the summaries it asks for included) before the
# check stops with an ARC903; the slowest check of the pinned corpus and of 114 held-out sets
# takes under 2 s (``docs/benchmarks.md``)
TIME_LIMIT = 30.0


def _can_fork() -> bool:
    """``os.fork`` exists, and this process runs one thread (a fork copies no other thread,
    and a lock one of them held would stay held in the child)."""
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


# the split hands out modules in at most this many batches (4-byte tokens in a pipe, written
# before the fork: 4 KiB, within any pipe's capacity, so writing them never blocks)
SPLIT_BATCHES = 1024
# ... and the project-wide tables' parts (the modules' mentions, their spawn sites) in at most
# this many
SHARE_BATCHES = 256


def _token_pipe(n: int) -> int:
    """The read end of a pipe holding the tokens ``0 .. n-1`` (4 bytes each) and then its end:
    whoever reads a token takes that batch."""
    import struct

    tokens_r, tokens_w = os.pipe()
    try:
        tokens = memoryview(b"".join(struct.pack("<I", i) for i in range(n)))
        while tokens:
            tokens = tokens[os.write(tokens_w, tokens) :]
    finally:
        os.close(tokens_w)  # (once every token is taken, a read finds the end of the pipe)
    return tokens_r


def _take(tokens_r: int) -> int | None:
    import struct

    token = os.read(tokens_r, 4)
    return int(struct.unpack("<I", token)[0]) if len(token) == 4 else None


def _send(fd: int, obj: object) -> None:
    """One message (its length, then its pickle) down a pipe; a reader gone is no error."""
    import pickle
    import struct

    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(struct.pack("<Q", len(data)) + data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        pass


def _recv(fd: int) -> object:
    """One message from :func:`_send`, or None at the end of the pipe (the writer failed)."""
    import pickle
    import struct

    def exactly(n: int) -> bytes | None:
        parts: list[bytes] = []
        while n:
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                return None
            parts.append(chunk)
            n -= len(chunk)
        return b"".join(parts)

    head = exactly(8)
    if head is None:
        return None
    data = exactly(struct.unpack("<Q", head)[0])
    return pickle.loads(data) if data is not None else None


def _share_tables(
    analysis: Analysis,
    parts: Sequence[Sequence[ModuleFacts]],
    tokens: tuple[int, int],
    exchange: Callable[[object], object],
) -> set[str]:
    """Build the project-wide tables both processes of the split need, sharing their work out:
    the modules' mentions (``Summaries.mentions``), then their contributions to the spawn-site
    table (``Concurrency.contribute``), each part computed by whichever process takes its
    token, then the halves exchanged. A part not received (the other process failed) is
    computed here when it is first needed, as in one process. Returns the modules whose
    contributions the other process has too."""
    from asyncrace.analysis.summaries import ModuleMentions

    # a failure here is left for the checks to meet again, where a rule's failure is an
    # ARC902 of that rule and module, as in one process: this process takes no more parts
    mentioned: dict[str, ModuleMentions] = {}
    with contextlib.suppress(Exception):
        while (i := _take(tokens[0])) is not None:
            for m in parts[i]:
                mentioned[m.module] = ModuleMentions.of(m)
    theirs = exchange(mentioned)
    if isinstance(theirs, dict):
        mentioned.update(theirs)
    with contextlib.suppress(Exception):
        analysis.summaries.use_mentions(mentioned)
    made: dict[str, Contribution] = {}
    with contextlib.suppress(Exception):
        while (i := _take(tokens[1])) is not None:
            made.update(analysis.concurrency.contribute(parts[i]))
    theirs = exchange(made)
    if isinstance(theirs, dict):
        for mod, c in theirs.items():
            analysis.contributions.setdefault(mod, c)
        return set(analysis.contributions)  # both processes have these
    return set(made)  # (the other has at most these)


def _check_split(
    analysis: Analysis, rules: Sequence[Rule], modules: Sequence[ModuleFacts], track: bool
) -> tuple[list[Diagnostic], dict[str, set[str]]]:
    """:func:`check_modules` over the modules in two processes: this one and a forked child
    (the index and the analysis are shared copy-on-write, nothing is sent there). The modules
    go in batches, in path order, to whichever process asks next (a batch number is a token
    read from a pipe both hold), so that a process that gets less of the machine (another
    job on a core) checks fewer modules instead of being waited for. A module's findings do
    not depend on which others are checked (``bench/alone.py``), so the result is the same
    as one process's; the child sends back, per batch it took, its findings and reads, and
    the verdicts and spawn-site contributions it computed (kept in the snapshot). A batch
    that no process finished (a child that failed) is checked here; each batch's result is
    taken from exactly one process. Before the checks, the two build the project-wide
    tables together (:func:`_share_tables`)."""
    import pickle

    size = -(-len(modules) // SPLIT_BATCHES)
    batches = [list(modules[i : i + size]) for i in range(0, len(modules), size)]
    table = sorted(analysis.index.modules.values(), key=lambda m: m.module)
    step = -(-len(table) // SHARE_BATCHES)
    parts = [table[i : i + step] for i in range(0, len(table), step)]
    tokens_r = _token_pipe(len(batches))
    shared = (_token_pipe(len(parts)), _token_pipe(len(parts)))

    def work() -> dict[int, tuple[list[Diagnostic], dict[str, set[str]]]]:
        done: dict[int, tuple[list[Diagnostic], dict[str, set[str]]]] = {}
        while (i := _take(tokens_r)) is not None:
            if i < len(batches):
                done[i] = check_modules(analysis, rules, batches[i], track)
        return done

    up_r, up_w = os.pipe()  # the child's half of the tables, to the parent
    down_r, down_w = os.pipe()  # and the parent's, to the child
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: check, send, exit without running anything of the parent's
        status = 1
        try:
            for fd in (r, up_r, down_w):
                os.close(fd)

            def exchange_child(mine: object) -> object:
                _send(up_w, mine)
                return _recv(down_r)

            both = _share_tables(analysis, parts, shared, exchange_child)
            checked = work()
            verdicts = [v for vs in analysis.kept_verdicts().values() for v in vs]
            contributions = {k: c for k, c in analysis.contributions.items() if k not in both}
            payload = (checked, verdicts, contributions)
            with os.fdopen(w, "wb") as f:
                pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    for fd in (w, up_w, down_r):
        os.close(fd)

    def exchange_parent(mine: object) -> object:
        theirs = _recv(up_r)  # (the child sends first: neither waits on a full pipe)
        _send(down_w, mine)
        return theirs

    try:
        try:
            _share_tables(analysis, parts, shared, exchange_parent)
        finally:
            for fd in (up_r, down_w, *shared):
                os.close(fd)
        mine = work()
    finally:
        os.close(tokens_r)
    try:
        with os.fdopen(r, "rb") as fr:
            data = fr.read()
    finally:
        _pid, status = os.waitpid(pid, 0)
    theirs: dict[int, tuple[list[Diagnostic], dict[str, set[str]]]] = {}
    if status == 0 and data:
        theirs, verdicts, contributions = pickle.loads(data)
        known = analysis.concurrency.kept_verdicts()
        have = {(fq, scope) for vs in known.values() for fq, scope, _v, _d in vs}
        analysis.concurrency.keep_verdicts(v for v in verdicts if (v[0], v[1]) not in have)
        for mod, c in contributions.items():
            analysis.contributions.setdefault(mod, c)
    out: list[Diagnostic] = []
    reads: dict[str, set[str]] = {}
    for i, batch in enumerate(batches):
        held = mine[i] if i in mine else theirs.get(i)
        found, batch_reads = (
            held if held is not None else check_modules(analysis, rules, batch, track)
        )
        out.extend(found)
        reads.update(batch_reads)
    return out, reads


def check_modules(
    analysis: Analysis, rules: Sequence[Rule], modules: Sequence[ModuleFacts], track: bool
) -> tuple[list[Diagnostic], dict[str, set[str]]]:
    out: list[Diagnostic] = []
    reads: dict[str, set[str]] = {}
    tracker = analysis.tracker
    for module in modules:
        if track:
            tracker.start()
            tracker.note(module.module)
        for rule in rules:
            tracker.deadline = time.monotonic() + TIME_LIMIT if TIME_LIMIT else 0.0
            try:
                out.extend(rule.check(analysis, module))
            except Exception as exc:  # never lose the other findings
                if isinstance(exc, Stale):
                    raise
                if isinstance(exc, AnalysisLimit):
                    out.append(analysis_limit(module.path, rule.code, TIME_LIMIT))
                else:
                    out.append(internal_error(module.path, exc, rule.code))
                if track and tracker.frames:
                    del tracker.frames[1:]  # a summary left unfinished by the failure
            finally:
                tracker.deadline = 0.0
        if track:
            reads[module.module] = tracker.stop()
    return out, reads


def module_attr_types(index: Index, m: ModuleFacts) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for q in m.classes:
        ci = index.classes.get(f"{m.module}.{q}")
        if ci is not None and ci.attr_types:
            out[ci.fq] = dict(ci.attr_types)
    return out


def internal_error(path: str, exc: BaseException, rule: str | None = None) -> Diagnostic:
    where = f" in rule {rule} ({info(rule).name})" if rule else ""
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:  # where asyncrace failed: the first thing a bug report needs
        where += f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}"
    ri = info("ARC902")
    return Diagnostic(
        code="ARC902",
        name=ri.name,
        message=f"internal error{where}: {type(exc).__name__}: {exc}; please report it",
        span=Span(path, Location(1, 1), Location(1, 1)),
        url=ri.url,
    )


def analysis_limit(path: str, rule: str, limit: float) -> Diagnostic:
    """The ARC903 of a check that ran past its time limit: what it found before is lost, and
    the summaries it left unfinished keep what they knew (``index.AnalysisLimit``)."""
    ri = info("ARC903")
    return Diagnostic(
        code="ARC903",
        name=ri.name,
        message=(
            f"rule {rule} ({info(rule).name}) stopped on this file after {limit:g} s: its "
            "findings here may be incomplete, and so may those of files that ask what it "
            "left unfinished; please report it"
        ),
        span=Span(path, Location(1, 1), Location(1, 1)),
        url=ri.url,
    )


__all__ = [
    "analysis_limit",
    "check_modules",
    "internal_error",
    "link_and_check",
    "module_attr_types",
    "run_rules",
]
