"""Link and check: every module's facts into one index and one analysis, then the enabled rules
over each module, in path order.

A full run calls :func:`link_and_check`; an incremental run links the headers itself and calls
:func:`check_modules` for the modules it checks again."""

from __future__ import annotations

import os
import traceback
from collections.abc import Collection, Sequence
from pathlib import Path

from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import ModuleFacts
from asyncrace.analysis.index import Index
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


def _can_fork() -> bool:
    """``os.fork`` exists, and this process runs one thread (a fork copies no other thread,
    and a lock one of them held would stay held in the child)."""
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


def _check_split(
    analysis: Analysis, rules: Sequence[Rule], modules: Sequence[ModuleFacts], track: bool
) -> tuple[list[Diagnostic], dict[str, set[str]]]:
    """:func:`check_modules` over every other module in a forked child (the index and the
    analysis are shared copy-on-write, nothing is sent there) and over the rest here. A
    module's findings do not depend on which others are checked (``bench/alone.py``), so the
    result is the same as one process's; the child sends back its findings, its reads, the
    verdicts and spawn-site contributions it computed (kept in the snapshot). If the child
    fails, its modules are checked here."""
    import pickle

    mine, theirs = list(modules[0::2]), list(modules[1::2])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: check, send, exit without running anything of the parent's
        status = 1
        try:
            os.close(r)
            found, reads = check_modules(analysis, rules, theirs, track)
            verdicts = [v for vs in analysis.kept_verdicts().values() for v in vs]
            payload = (found, reads, verdicts, dict(analysis.contributions))
            with os.fdopen(w, "wb") as f:
                pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            status = 0
        finally:
            os._exit(status)
    os.close(w)
    out, reads = check_modules(analysis, rules, mine, track)
    try:
        with os.fdopen(r, "rb") as f:
            data = f.read()
    finally:
        _pid, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        more, more_reads = check_modules(analysis, rules, theirs, track)
    else:
        more, more_reads, verdicts, contributions = pickle.loads(data)
        known = analysis.concurrency.kept_verdicts()
        have = {(fq, scope) for vs in known.values() for fq, scope, _v, _d in vs}
        analysis.concurrency.keep_verdicts(v for v in verdicts if (v[0], v[1]) not in have)
        for mod, c in contributions.items():
            analysis.contributions.setdefault(mod, c)
    out.extend(more)
    reads.update(more_reads)
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
            try:
                out.extend(rule.check(analysis, module))
            except Exception as exc:  # never lose the other findings
                if isinstance(exc, Stale):
                    raise
                out.append(internal_error(module.path, exc, rule.code))
                if track and tracker.frames:
                    del tracker.frames[1:]  # a summary left unfinished by the failure
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


__all__ = ["check_modules", "internal_error", "link_and_check", "module_attr_types", "run_rules"]
