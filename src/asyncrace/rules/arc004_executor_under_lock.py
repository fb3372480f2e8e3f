"""ARC004 executor-under-lock (OpenHands PR 3358, hivemind PR 503).

A coroutine holds a lock while it awaits work handed to another thread (``run_in_executor``,
``asyncio.to_thread``, ``anyio.to_thread.run_sync``, an executor's ``submit``), directly or inside
a method it awaits (an inherited one, in another module), and the function run on that thread
takes the same lock, itself, through what it calls, or through a callback it was given. The
thread waits for the lock, the lock's owner waits for the thread: deadlock. A lock that is
reentrant for its owner does not help: the thread is not the owner.

The same family, all on the loop: a coroutine holds an asyncio lock while it waits for state
that only holders of the same lock change (``while not self.available_pages: await
asyncio.sleep(0.1)`` inside ``async with self._lock``, where the only method that gives a page
back takes ``self._lock`` first; or ``await self._opened.wait()`` for an ``asyncio.Event``
set only under the lock). The task that could end the wait waits for the lock: deadlock.

The same family, pool starvation: a blocking ``lock.acquire`` or ``__enter__`` handed to the
thread pool the whole process shares (``run_in_executor(None, ...)``, ``asyncio.to_thread``,
AnyIO's default limiter). While the pool's threads wait for a lock that coroutines hold, those
coroutines wait for a pool thread (their own hand-offs, DNS lookups) to get on and release it.
"""

from __future__ import annotations

from collections.abc import Iterator

from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import Bind, Event, FunctionFacts, K, ModuleFacts, reachable
from asyncrace.analysis.index import Fn, first_seg, is_kw
from asyncrace.analysis.locks import LockInfo
from asyncrace.analysis.summaries import HandOff, Step, at, fn_step, short
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

WAIT_FIX = (
    "Do not wait while holding the lock: release it, wait, then take it again and check "
    "once more; or wait on an asyncio.Condition made with this lock, whose wait() releases "
    "the lock while it waits."
)

# the calls that change a container or an event they are made on
_CHANGES = frozenset(
    {"append", "appendleft", "extend", "extendleft", "insert", "pop", "popleft", "popitem"}
    | {"remove", "discard", "add", "clear", "update", "setdefault", "put", "put_nowait", "set"}
)
# of those, the calls that take out of a container (a wait for an item does not end by them)
_TAKES = frozenset({"pop", "popleft", "popitem", "remove", "discard", "clear"})
# builtins that only read what they are handed
_READERS = frozenset({"len", "bool", "list", "tuple", "sorted", "any", "all", "min", "max", "iter"})

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
            yield from self._wait_for_holders(analysis, fn)

    def _wait_for_holders(self, analysis: Analysis, fn: Fn) -> Iterator[Diagnostic]:
        """A wait, under an asyncio lock, for state of the object that every other method of
        its class changes only under the same lock: a poll (``while not self.X: await
        sleep(...)``, whose loop changes nothing, calls no method of the object and has no
        other way out) or ``await self.E.wait()`` of an ``asyncio.Event``."""
        f = fn.facts
        if f.cls is None or f.parent is not None:
            return
        ctx = analysis.ctx(fn)
        idx = analysis.index
        cls = idx.method_fn(fn)
        if cls is None:
            return
        family: list[Fn] | None = None
        for rid, region in enumerate(f.regions):
            if not region.is_async:
                continue
            lock = analysis.region_lock(ctx, rid)
            if lock is None or lock.kind != "async":
                continue
            for i in range(region.first, region.last):
                ev = f.events[i]
                if rid not in ev.regions:
                    continue
                wait = _pure_wait(analysis, fn, i, ev, rid)
                if wait is None:
                    continue
                state, at_wait, is_event = wait
                if family is None:
                    family = [
                        m for m in idx.methods_of(idx.hierarchy(cls)) if m.facts.parent is None
                    ]
                if is_event and not _made_as_event(family, state):
                    continue
                waker = _changed_only_under(analysis, family, fn, state, lock)
                if waker is None:
                    continue
                m, pos = waker
                what = "to be set" if is_event else "to change"
                steps = [
                    fn_step(fn, region.pos, f"`{shown(region.ref)}` is taken here"),
                    fn_step(fn, f.events[at_wait].pos, f"waits here for `{state}` {what}"),
                    fn_step(
                        m,
                        pos,
                        f"`{state}` changes only under `{shown(region.ref)}`, here in "
                        f"`{short(m)}`: it waits for the lock the waiter holds",
                    ),
                ]
                msg = (
                    f"`{shown(region.ref)}` is held while this waits for `{state}` {what}, and "
                    f"every change of `{state}` in its class takes the same lock "
                    f"(`{short(m)}`, line {pos[0]}): the only task that could end the wait "
                    "waits for this one to release the lock (deadlock)"
                )
                yield make(self.code, fn.module.path, ev.pos, msg, steps, WAIT_FIX)
                return

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


def _loop_body(f: FunctionFacts, b: int) -> tuple[set[int], int] | None:
    """The events of the loop whose test is the branch at ``b``, and the side it takes to
    run them: the side from which the branch is reached again (one side only)."""
    found: list[tuple[set[int], int]] = []
    for side, start in enumerate(f.events[b].succ):
        body = reachable(f, [start], avoid={b}) | {start}
        if any(b in f.events[j].succ for j in body):
            found.append((body, side))
    return found[0] if len(found) == 1 else None


def _pure_wait(
    analysis: Analysis, fn: Fn, i: int, ev: Event, rid: int
) -> tuple[str, int, bool] | None:
    """Is the event at ``i`` a wait for state of ``self`` that the waiting code does not
    change itself: (the state, the suspending await, whether it waits on an event)?"""
    f = fn.facts
    ctx = analysis.ctx(fn)
    if ev.kind == K.AWAIT and ev.ref.endswith(".wait") and ev.ref.count(".") == 2:
        state = ev.ref.rpartition(".")[0]
        if first_seg(state) == "self" and analysis.suspending(ctx, i):
            return state, i, True
        return None
    if ev.kind != K.BRANCH or len(ev.succ) != 2 or len(ev.guards) != 1:
        return None
    atom, _branch, kind, _key = ev.guards[0].split("|", 3)
    if kind not in ("truthy", "none") or first_seg(atom) != "self" or atom.count(".") != 1:
        return None
    loop = _loop_body(f, i)
    if loop is None:
        return None
    body, _side = loop
    suspends = -1
    for j in sorted(body):
        e = f.events[j]
        if rid not in e.regions:
            return None  # it lets go of the lock on the way
        if e.kind in (K.BRANCH, K.RAISE, K.RETURN):
            return None  # another way out (a deadline), or a test of something else
        if e.kind in (K.WRITE, K.SETITEM, K.DELITEM) and e.ref.startswith(atom):
            return None
        if e.kind == K.CALL and (
            first_seg(e.ref) == "self" or (atom in e.args and e.ref not in _READERS)
        ):
            return None  # a method of the object, or the state handed on, may change it
        if e.kind == K.AWAIT and suspends < 0 and analysis.suspending(ctx, j):
            suspends = j
    return (atom, suspends, False) if suspends >= 0 else None


def _made_as_event(family: list[Fn], state: str) -> bool:
    """Is ``state`` made as an ``asyncio.Event`` somewhere in the class (not a
    ``Condition``, whose ``wait()`` lets go of its lock)?"""
    for m in family:
        for e in m.facts.events:
            v = e.value
            if (
                e.kind == K.WRITE
                and e.ref == state
                and v is not None
                and v.kind == "call"
                and v.ref.rpartition(".")[2] == "Event"
            ):
                return True
    return False


def _changed_only_under(
    analysis: Analysis, family: list[Fn], fn: Fn, state: str, lock: LockInfo
) -> tuple[Fn, tuple[int, int, int, int]] | None:
    """Where another method of the class changes ``state`` (the first such place), if every
    change of it in the class (past its set-up) is made under ``lock``; None if any is not,
    or none is made anywhere but in the waiting method."""
    waker: tuple[Fn, tuple[int, int, int, int]] | None = None
    taker = False  # (the waker found takes out, which ends no wait for something put in)
    setup = analysis.setup_dunders
    for m in family:
        if m.facts.name in setup:
            continue
        mctx = None
        for e in m.facts.events:
            changes = (e.kind in (K.WRITE, K.SETITEM, K.DELITEM) and e.ref == state) or (
                e.kind == K.CALL
                and e.ref.rpartition(".")[0] == state
                and e.ref.rpartition(".")[2] in _CHANGES
            )
            if not changes:
                if e.kind == K.CALL and state in e.args and e.ref not in _READERS:
                    return None  # handed on: changed who knows where
                continue
            mctx = mctx or analysis.ctx(m)
            if not any(
                (held := analysis.region_lock(mctx, r)) is not None and same_lock(held, lock)
                for r in e.regions
            ):
                return None
            if m.fq != fn.fq and (
                waker is None
                or (taker and e.ref.rpartition(".")[2] not in _TAKES and e.kind != K.DELITEM)
            ):
                # (the first change that may end the wait: an ``append``, not a ``clear``)
                taker = e.ref.rpartition(".")[2] in _TAKES or e.kind == K.DELITEM
                waker = (m, e.pos)
    return waker
