"""ARC004 executor-under-lock (OpenHands PR 3358).

A coroutine holds a lock while it awaits work handed to another thread (``run_in_executor``,
``asyncio.to_thread``, ``anyio.to_thread.run_sync``, an executor's ``submit``), directly or inside
a method it awaits (an inherited one, in another module), and the function run on that thread
takes the same lock, itself, through what it calls, or through a callback it was given. The
thread waits for the lock, the lock's owner waits for the thread: deadlock. A lock that is
reentrant for its owner does not help: the thread is not the owner.
"""

from __future__ import annotations

from collections.abc import Iterator

from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import Bind, Event, FunctionFacts, K, ModuleFacts
from asyncrace.analysis.index import Fn
from asyncrace.analysis.locks import LockInfo
from asyncrace.analysis.summaries import HandOff, Step, at, fn_step
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import make, module_functions, shown

FIX = (
    "Release the lock before handing work to a thread, or keep the work that needs the lock "
    "on the caller's thread (run only the blocking part in the executor, then finish on the "
    "event loop); a native async implementation avoids the thread hop entirely."
)


def same_lock(a: LockInfo, b: LockInfo) -> bool:
    return a.ident == b.ident


class ExecutorUnderLock:
    code = "ARC004"

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        for fn in module_functions(analysis, module):
            if not fn.facts.is_async or not fn.facts.regions:
                continue
            yield from self._function(analysis, fn)

    @staticmethod
    def _awaited_in_region(f: FunctionFacts, ev: Event, rid: int, first: int, last: int) -> bool:
        """Is the hand-off's result waited for while the lock is still held?"""
        if ev.bind != Bind.LOCAL:
            return True  # awaited in place, returned, or passed into an awaited call
        name = ev.name
        for e in f.events[first:last]:
            if rid not in e.regions:
                continue
            if e.kind == K.AWAIT and e.ref == name:
                return True
            if (
                e.kind == K.CALL
                and e.bind in (Bind.AWAITED, Bind.RETURNED, Bind.ARG)
                and any(a == name or a.endswith("=" + name) for a in e.args)
            ):
                return True
        return False

    def _function(self, analysis: Analysis, fn: Fn) -> Iterator[Diagnostic]:
        f = fn.facts
        ctx = analysis.ctx(fn)
        reported: set[int] = set()
        for rid, region in enumerate(f.regions):
            lock = analysis.region_lock(ctx, rid)
            if lock is None:
                continue
            for i in range(region.first, region.last):
                ev = f.events[i]
                if ev.kind != K.CALL or i in reported or rid not in ev.regions:
                    continue
                handoffs: list[HandOff] = []
                direct = analysis.direct_handoff(ctx, ev)
                if direct is not None:
                    if self._awaited_in_region(f, ev, rid, region.first, region.last):
                        handoffs.append(direct)
                elif ev.bind in (Bind.AWAITED, Bind.RETURNED, Bind.ARG):
                    for tfn, tctx in analysis.targets(ctx, ev):
                        if tfn.facts.is_async:
                            for h in analysis.handoffs(tctx):
                                call = fn_step(fn, at(ev), f"awaits `{tfn.facts.name}`")
                                handoffs.append(
                                    HandOff(h.event_step, h.target, h.target_ctx, (call, *h.via))
                                )
                for h in handoffs:
                    for acq in analysis.acquires(h.target_ctx):
                        if not same_lock(lock, acq.lock):
                            continue
                        reported.add(i)
                        steps: list[Step] = [
                            fn_step(fn, region.pos, f"{lock.describe} is taken here"),
                            *[s for s in h.via[1:]],
                            h.event_step,
                            *acq.steps[:-1],
                            Step(
                                acq.steps[-1].path,
                                acq.steps[-1].pos,
                                "the worker thread takes the same lock here: it waits for "
                                "the loop thread, which waits for it",
                            ),
                        ]
                        msg = (
                            f"`{shown(region.ref)}` is held while awaiting work on another thread "
                            f"(`{h.target.facts.name}`) that takes the same lock; the thread "
                            "blocks on the lock and the holder waits for the thread: deadlock"
                        )
                        yield make(self.code, fn.module.path, at(ev), msg, steps, FIX)
                        break
                    if i in reported:
                        break
