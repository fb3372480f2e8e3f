"""What every rule shares: the protocol, and turning steps into a :class:`Diagnostic`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Protocol

from asyncrace.analysis.concurrency import LIKELY, Verdict
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import ModuleFacts, Pos
from asyncrace.analysis.index import Fn
from asyncrace.analysis.summaries import Step
from asyncrace.diagnostic import Diagnostic, Location, Related, Span
from asyncrace.registry import info


class Rule(Protocol):
    code: str

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        """Findings whose primary location is in ``module``."""
        ...


def span(path: str, pos: Pos) -> Span:
    return Span(path, Location(pos[0], pos[1]), Location(pos[2], pos[3]))


def with_step(d: Diagnostic, step: Step) -> Diagnostic:
    """``d`` with one more step at the end (evidence found after its steps were made)."""
    related = Related(span(step.path, step.pos), step.label)
    if related in d.related:
        return d
    return dataclasses.replace(d, related=(*d.related, related))


def with_first_step(d: Diagnostic, step: Step) -> Diagnostic:
    """``d`` with one more step before its others (where what it is about comes from)."""
    related = Related(span(step.path, step.pos), step.label)
    if related in d.related:
        return d
    return dataclasses.replace(d, related=(related, *d.related))


def folded(
    d: Diagnostic, others: Sequence[tuple[str, Step]], one: str, many: str, how: str
) -> Diagnostic:
    """``d`` with other findings of the same cause folded in: each named in its message (the
    first three, ``(2 more tokens of it are held the same way: `a`, `b`)``, where ``one``/
    ``many`` say what is counted, ``how`` how it stands) and each listed as a step."""
    if not others:
        return d
    n = len(others)
    names = ", ".join(name for name, _s in others[:3])
    more = f" and {n - 3} more" if n > 3 else ""
    d = dataclasses.replace(
        d, message=f"{d.message} ({n} more {many if n > 1 else one} {how}: {names}{more})"
    )
    for _name, step in others:
        d = with_step(d, step)
    return d


def make(
    code: str,
    path: str,
    pos: Pos,
    message: str,
    steps: Sequence[Step] = (),
    fix: str | None = None,
) -> Diagnostic:
    ri = info(code)
    related: list[Related] = []
    seen: set[tuple[str, Pos, str]] = set()
    for s in steps:
        key = (s.path, s.pos, s.label)
        if key in seen:
            continue
        seen.add(key)
        related.append(Related(span(s.path, s.pos), s.label))
    return Diagnostic(
        code=code,
        name=ri.name,
        message=message,
        span=span(path, pos),
        related=tuple(related),
        fix=fix,
        url=ri.url,
    )


def module_functions(analysis: Analysis, module: ModuleFacts) -> Iterator[Fn]:
    for q in sorted(module.functions):
        fn = analysis.index.functions.get(f"{module.module}.{q}")
        if fn is not None and fn.module is module:
            yield fn


def functions_at(analysis: Analysis, step: Step) -> list[Fn]:
    """The project's functions whose lines hold the step (a function and those nested in it),
    outermost first: the code an evidence step points into."""
    module = next((m for m in analysis.index.modules.values() if m.path == step.path), None)
    if module is None:
        return []
    line = step.pos[0]
    found = [
        g for g in module_functions(analysis, module) if g.facts.pos[0] <= line <= g.facts.pos[2]
    ]
    return sorted(found, key=lambda g: g.facts.pos)


def shown(ref: str) -> str:
    """A ref as the user wrote it (``global:LOCK`` -> ``LOCK``)."""
    return ref.replace("global:", "")


_EVIDENCE = {
    "spawned": "it runs in several tasks at once",
    "entry point": "a framework runs it for concurrent requests or events",
    "lock-protected class": "its class locks its state for concurrent callers",
    "public API": "a public coroutine, and module state is shared by every task",
    "waits": "it waits for other tasks using the same state",
}


def on_state(analysis: Analysis, fn: Fn, v: Verdict, ref: str, binding: bool = False) -> Verdict:
    """The concurrency model's answer for ``fn``, for a hazard on the state ``ref``: the
    evidence "its class locks its state" holds only where the class locks this state
    somewhere (``Concurrency.lock_covers``; ``binding``: an assignment of the attribute
    itself, for a hazard on whether it is set); elsewhere it is weak evidence, kept with its
    steps for a ``likely`` finding (the class's callers may still be serial). State each task
    keeps for itself (a property over a ``ContextVar``) is no task's to clobber."""
    if (
        ref.startswith("self.")
        and ref.count(".") == 1
        and analysis.per_task_attr(analysis.ctx(fn), ref)
    ):
        return Verdict(False, (), "per-task state: a property over a ContextVar")
    if (
        v.answer is True
        and v.why == "lock-protected class"
        and not analysis.concurrency.lock_covers(fn, ref, binding)
    ):
        return Verdict(None, v.steps, LIKELY + "its class locks other state, not this")
    return v


def evidence_clause(v: Verdict) -> str:
    """Why the finding says the code runs concurrently, for the end of a message."""
    if v.answer is None:
        if v.why.startswith(LIKELY):  # weak evidence (``concurrency.weakness``)
            return f" (likely: {v.why.removeprefix(LIKELY)}; see the evidence)"
        return " (likely: nothing shows that it runs concurrently, or that it cannot)"
    why = _EVIDENCE.get(v.why, "it runs concurrently")
    return f" ({why}: see the evidence)"


def line_of(step: Step, here: str) -> str:
    """``line 12`` in the same file, ``other.py:12`` elsewhere."""
    return f"line {step.pos[0]}" if step.path == here else f"{step.path}:{step.pos[0]}"
