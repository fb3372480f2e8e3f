"""ARC001 state-clobbered-across-await (marsys issue 40).

A coroutine stores a per-call value on shared state (``self.x``, ``cls.x``, a module variable),
awaits, then reads the state back, directly or in a method it calls after the await. Every task
running the coroutine on the same object writes the same attribute, so after the await the value
may belong to another call.
"""

from __future__ import annotations

from collections.abc import Iterator

from asyncrace.analysis.concurrency import ANY, OBJECT, Verdict
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import Event, FunctionFacts, K, ModuleFacts
from asyncrace.analysis.index import Ctx, Fn
from asyncrace.analysis.summaries import Step, at, fn_step, search, short
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import evidence_clause, line_of, make, module_functions

FIX = (
    "Keep the per-call value in a local variable and pass it on as an argument; an attribute "
    "is shared by every task that uses this object. If it must live on the object, hold an "
    "asyncio.Lock from the write to the last read."
)


def per_call_names(f: FunctionFacts, receiver: set[str]) -> set[str]:
    """Parameters, and locals computed from them: values that differ between calls."""
    tainted = {p.name for p in f.params} - receiver
    changed = True
    while changed:
        changed = False
        for ev in f.events:
            if (
                ev.kind == K.LOCAL
                and ev.value is not None
                and ev.ref not in tainted
                and tainted.intersection(ev.value.names)
            ):
                tainted.add(ev.ref)
                changed = True
    return tainted


def state_ref(ref: str, f: FunctionFacts) -> bool:
    if ref.startswith("global:"):
        return True
    if f.cls is None:
        return False
    return ref.startswith(("self.", "cls.")) and ref.count(".") == 1 and "(" not in ref


def describe(ref: str) -> str:
    return f"module variable `{ref[7:]}`" if ref.startswith("global:") else f"`{ref}`"


class StateClobberedAcrossAwait:
    code = "ARC001"

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        likely = analysis.settings.strictness == "likely"
        for fn in module_functions(analysis, module):
            f = fn.facts
            if not f.is_async or f.name in analysis.setup_dunders:
                continue
            if f.parent is not None and not f.is_async:
                continue
            ctx = analysis.ctx(fn)
            receiver = {f.params[0].name} if f.cls and f.parent is None and f.params else set()
            tainted = per_call_names(f, receiver)
            for i, ev in enumerate(f.events):
                if ev.kind != K.WRITE or ev.value is None or not state_ref(ev.ref, f):
                    continue
                if ev.value.kind == "const" or not tainted.intersection(ev.value.names):
                    continue
                evidence = self._evidence(analysis, fn, ev.ref)
                if evidence.answer is not True and (
                    not likely or evidence.answer is False or f.name in analysis.lifecycle
                ):
                    continue  # likely: no evidence either way, and not a set-up method
                found = self._first_read(analysis, ctx, fn, i, ev.ref)
                if found is None:
                    continue
                await_step, read_steps = found
                here = module.path
                where = line_of(read_steps[-1], here)
                msg = (
                    f"{describe(ev.ref)} holds a per-call value across an await and is read "
                    f"back at {where}; a concurrent call of `{short(fn)}()` can overwrite it "
                    f"in between{evidence_clause(evidence)}"
                )
                steps = (await_step, *read_steps, *evidence.steps)
                yield make(self.code, here, at(ev), msg, steps, FIX)

    @staticmethod
    def _evidence(analysis: Analysis, fn: Fn, ref: str) -> Verdict:
        """May another call of ``fn`` overwrite the state meanwhile? For an attribute of
        ``self``: two calls on one object at once; for module or class state: two calls at
        all (a public coroutine is enough: its callers are not all in view)."""
        if ref.startswith("self."):
            return analysis.concurrent(fn, OBJECT)
        verdict = analysis.concurrent(fn, ANY)
        if verdict.answer is None:
            verdict = analysis.api_entry(fn) or verdict
        return verdict

    def _first_read(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, write: int, ref: str
    ) -> tuple[Step, tuple[Step, ...]] | None:
        f = fn.facts
        write_ev = f.events[write]
        callee_reads: dict[int, tuple[Step, ...]] = {}

        def locked_together(ev: Event) -> bool:
            shared = set(write_ev.regions) & set(ev.regions)
            return any(analysis.region_lock(ctx, r) is not None for r in shared)

        def is_await(_i: int, ev: Event) -> bool:
            if ev.kind != K.AWAIT:
                return False
            if ev.name == "async with exit":
                # releasing a lock does not suspend; leaving other contexts may
                return analysis.locks.lock_of(ctx, ev.ref) is None
            return True

        def hit(i: int, ev: Event, aw: int) -> bool:
            if aw < 0:
                return False
            if ev.kind == K.READ and ev.ref == ref and ev.name != "compare":
                return not locked_together(ev)
            if ev.kind == K.READ and ref.startswith("self."):
                prop = analysis.property_getter(ctx, ev.ref)
                if prop is not None:
                    steps = analysis.reads(Ctx(prop, ctx.recv)).get(ref)
                    if steps and not locked_together(ev):
                        callee_reads[i] = (
                            fn_step(fn, at(ev), f"property `{prop.facts.name}` reads it"),
                            *steps,
                        )
                        return True
            if ev.kind == K.CALL and analysis.reads_through(ctx, ev):
                for tfn, tctx in analysis.targets(ctx, ev):
                    steps = analysis.reads(Ctx(tfn, tctx.recv)).get(ref)
                    if steps and not locked_together(ev):
                        callee_reads[i] = (
                            fn_step(fn, at(ev), f"calls `{short(tfn)}` after the await"),
                            *steps,
                        )
                        return True
            return False

        def stop(_i: int, ev: Event) -> bool:
            return ev.kind == K.WRITE and ev.ref == ref

        for i, aw in search(f, list(write_ev.succ), stop=stop, hit=hit, is_await=is_await):
            aw_ev = f.events[aw]
            await_step = fn_step(
                fn, aw_ev.pos, f"{aw_ev.name}: other tasks run here and may overwrite it"
            )
            if i in callee_reads:
                return await_step, callee_reads[i]
            read = fn_step(fn, f.events[i].pos, "read back here, after the await")
            return await_step, (read,)
        return None
