"""ARC004 executor-under-lock (OpenHands PR 3358, hivemind PR 503).

A coroutine holds a lock while it awaits work handed to another thread (``run_in_executor``,
``asyncio.to_thread``, ``anyio.to_thread.run_sync``, an executor's ``submit``), directly or inside
a method it awaits (an inherited one, in another module), and the function run on that thread
takes the same lock, itself, through what it calls, or through a callback it was given. The
thread waits for the lock, the lock's owner waits for the thread: deadlock. A lock that is
reentrant for its owner does not help: the thread is not the owner.

The same family, pool starvation: a blocking ``lock.acquire`` or ``__enter__`` handed to the
thread pool the whole process shares (``run_in_executor(None, ...)``, ``asyncio.to_thread``,
AnyIO's default limiter). While the pool's threads wait for a lock that coroutines hold, those
coroutines wait for a pool thread (their own hand-offs, DNS lookups) to get on and release it.
"""

from __future__ import annotations

from collections.abc import Iterator

from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import Bind, Event, FunctionFacts, K, ModuleFacts
from asyncrace.analysis.index import Fn, is_kw
from asyncrace.analysis.locks import LockInfo
from asyncrace.analysis.summaries import HandOff, Step, at, fn_step
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import make, module_functions, shown

FIX = (
    "Release the lock before handing work to a thread, or keep the work that needs the lock "
    "on the caller's thread (run only the blocking part in the executor, then finish on the "
    "event loop); a native async implementation avoids the thread hop entirely."
)


STARVE_FIX = (
    "Wait for blocking locks on threads of their own: pass a dedicated executor to "
    "run_in_executor (or a CapacityLimiter of its own to AnyIO), so that a thread waiting for "
    "a lock never holds a thread of the shared pool; or use an asyncio lock."
)

# keywords of the hand-off functions themselves, not arguments of the function they run
_HANDOFF_KEYWORDS = frozenset({"limiter", "abandon_on_cancel", "cancellable", "thread_sensitive"})


def same_lock(a: LockInfo, b: LockInfo) -> bool:
    return a.ident == b.ident


class ExecutorUnderLock:
    code = "ARC004"

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        for fn in module_functions(analysis, module):
            yield from self._starvation(analysis, fn)
            if not fn.facts.is_async or not fn.facts.regions:
                continue
            yield from self._function(analysis, fn)

    def _starvation(self, analysis: Analysis, fn: Fn) -> Iterator[Diagnostic]:
        """A blocking acquisition handed to the shared pool."""
        ctx = None
        for ev in fn.facts.events:
            if ev.kind != K.CALL or not ev.args:
                continue
            if not any(a.endswith((".acquire", ".__enter__")) for a in ev.args):
                continue
            ctx = ctx or analysis.ctx(fn)
            pool = analysis.locks.shared_pool(ctx, ev)
            if not pool:
                continue
            n = analysis.locks.handoff_arg(ctx, ev.ref)
            positional = [a for a in ev.args if not is_kw(a)]
            if n is None or n >= len(positional):
                continue
            target = positional[n]
            extra = (
                len(positional)
                - n
                - 1
                + sum(
                    1 for a in ev.args if is_kw(a) and a.partition("=")[0] not in _HANDOFF_KEYWORDS
                )
            )
            blocker, lock, evidence = analysis.locks.blocking_acquire(ctx, target, extra)
            if not blocker:
                continue
            what = ev.ref.rpartition(".")[2]
            steps = [
                fn_step(fn, at(ev), f"`{what}` runs `{shown(target)}` on {pool}"),
                *(Step(p, pos, label) for p, pos, label in evidence),
            ]
            if lock is not None:
                steps += [Step(p, pos, label) for p, pos, label in lock.via]
            msg = (
                f"`{shown(target)}` runs on {pool.partition(' (')[0]}, a bounded pool the whole "
                f"process shares, and blocks one of its threads until {blocker}; when every "
                "pool thread waits for a lock that coroutines hold, and those coroutines need a "
                "pool thread to release it, nothing moves: the pool starves (deadlock)"
            )
            yield make(self.code, fn.module.path, at(ev), msg, steps, STARVE_FIX)

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
