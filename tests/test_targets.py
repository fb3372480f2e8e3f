"""The shortcuts of the caller searches give what the general path gives: the functions a call
runs by ``Summaries.target_fqs`` (no arguments bound, the receiver evaluated once) are those of
``Summaries.targets``, in its order, and a callee evaluated from its receiver's value
(``Index._eval_member``) is the callee evaluated from scratch, for every call of every
fixture, linked as one project."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import K, ModuleFacts
from asyncrace.analysis.index import Index
from asyncrace.run import engine, pipeline
from asyncrace.run.jobs import FileJob
from asyncrace.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def _facts() -> list[ModuleFacts]:
    out: list[ModuleFacts] = []
    packages: dict[str, list[str]] = {}
    seen: set[str] = set()
    for f in sorted(FIXTURES.rglob("*.py")):
        mod, pkg = engine.module_name(f, packages)
        job = FileJob(str(f), str(f), mod, pkg)
        o = pipeline.run_deep(lambda w: pipeline.analyze_bytes(*w), (job, f.read_bytes()))
        if o.facts is not None and o.facts.module not in seen:
            seen.add(o.facts.module)
            out.append(o.facts)
    return out


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    return Analysis(Index(_facts()), Settings())


def test_target_fqs_are_the_targets(analysis: Analysis) -> None:
    s = analysis.summaries
    calls = 0
    for fn in sorted(dict.values(analysis.index.functions), key=lambda f: f.fq):
        ctx = s.ctx(fn)
        for ev in fn.facts.events:
            if ev.kind != K.CALL:
                continue
            calls += 1
            assert s.target_fqs(ctx, ev) == tuple(t.fq for t, _c in s.targets(ctx, ev)), (
                fn.fq,
                ev.ref,
            )
    assert calls > 1000  # (the fixtures were read)


def test_a_member_is_what_its_whole_ref_evaluates_to() -> None:
    facts = _facts()
    shortcut, fresh = Index(facts), Index(facts)
    a, b = Analysis(shortcut, Settings()), Analysis(fresh, Settings())
    members = 0
    for fq in sorted(shortcut.functions):
        fn_a, fn_b = dict.get(shortcut.functions, fq), dict.get(fresh.functions, fq)
        assert fn_a is not None and fn_b is not None
        ctx_a, ctx_b = a.summaries.ctx(fn_a), b.summaries.ctx(fn_b)
        for ev in fn_a.facts.events:
            recv, dot, last = ev.ref.rpartition(".")
            if ev.kind != K.CALL or not dot or last.endswith(("()", "[]")):
                continue
            members += 1
            shortcut.eval(ctx_a, recv)
            assert shortcut.eval_member(ctx_a, ev.ref, recv, last) == fresh._eval(
                ctx_b, ev.ref, 0
            ), (fq, ev.ref)
    assert members > 1000
