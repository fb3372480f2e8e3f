"""Link and check: every module's facts into one index and one analysis, then the enabled rules
over each module, in path order.

A full run calls :func:`link_and_check`; an incremental run links the headers itself and calls
:func:`check_modules` for the modules it checks again."""

from __future__ import annotations

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
) -> tuple[list[Diagnostic], Analysis, dict[str, set[str]]]:
    """:func:`run_rules`, and the analysis it built; with ``track``, also what the check of each
    module read (module name -> the modules and table keys, ``index.Tracker``). ``only``: the
    paths of the modules to check (the others are linked, as context): a module's findings do
    not depend on which other modules are checked (``bench/alone.py``)."""
    index = Index(facts)
    analysis = Analysis(index, settings)
    analysis.track = track
    rules = [r for r in all_rules() if r.code in settings.enabled]
    modules = sorted(facts, key=lambda m: m.path)
    if only is not None:
        modules = [m for m in modules if m.path in only]
    out, reads = check_modules(analysis, rules, modules, track)
    return out, analysis, reads


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
