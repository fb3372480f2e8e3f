"""ARC005 thread-lock-held-across-await.

``with self._lock:`` on a non-reentrant thread lock (``threading.Lock``, a semaphore) around an
``await``: while the holder is suspended, the next coroutine that reaches the same ``with``
blocks the event-loop thread on ``acquire()``; the holder can then never resume to release it.
The whole loop hangs. Like Clippy's ``await_holding_lock``, the finding lists every await point
the lock is held through, and then where else the same lock is taken on the event loop: where
the loop would block.

A generator-based coroutine (``__await__``, ``@types.coroutine``) suspends at its ``yield`` and
``yield from``: those are its await points.
"""

from __future__ import annotations

from collections.abc import Iterator

from asyncrace.analysis.concurrency import ANY, per_update
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import Event, K, ModuleFacts, Pos
from asyncrace.analysis.index import ClassObj, Ctx, Fn, FuncVal
from asyncrace.analysis.locks import LockInfo
from asyncrace.analysis.summaries import ASYNCIO_LOCKS, Step, at, fn_step, short
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import make, module_functions, shown

FIX = (
    "Use an asyncio.Lock (`async with lock:`) to serialize coroutines, or release the thread "
    "lock before the await (copy what you need under the lock, then await outside it)."
)

# decorators that make a generator a coroutine whose ``yield from`` is an await
GENERATOR_COROUTINE_DECORATORS = frozenset({"types.coroutine", "asyncio.coroutine"})
# at most this many other places where the lock is taken on the event loop are named
MAX_SITES = 3


def generator_coroutine(analysis: Analysis, fn: Fn) -> bool:
    """A plain generator that is a coroutine: ``__await__`` (what ``await obj`` runs) or one
    decorated ``@types.coroutine``. Each ``yield``/``yield from`` in it suspends the task."""
    f = fn.facts
    if f.is_async or not f.is_generator:
        return False
    if f.name == "__await__" and f.cls is not None:
        return True
    return any(
        analysis.index.resolve(fn.module, d) in GENERATOR_COROUTINE_DECORATORS for d in f.decorators
    )


def _cannot_suspend(analysis: Analysis, ctx: Ctx, fn: Fn, e: Event) -> bool:
    """An await that never gives the loop away: leaving ``async with`` an asyncio lock (its
    release is synchronous), or entering one that no task ever holds across a suspension, so
    that the acquire always finds it free and takes it at once
    (``Summaries.free_lock_entry``). (Awaits of coroutines of the project that never suspend,
    ``await self.to_csv()`` with no await inside, are the summaries' ``suspending``.)"""
    if e.kind != K.AWAIT or e.name not in ("async with", "async with exit"):
        return False
    if e.name == "async with exit":
        lock = analysis.locks.lock_of(ctx, e.ref)
        return lock is not None and lock.type_fq in ASYNCIO_LOCKS
    return analysis.free_lock_entry(ctx, e.ref)


def _made_for_this_with(analysis: Analysis, ctx: Ctx, ref: str, lock: LockInfo) -> bool:
    """``with Lockfile.create(path):``, ``with FileLock(path):``: the ``with`` item makes a new
    lock object (a lock class called, or a function every ``return`` of which makes an
    object: ``return cls(...)``), not one kept elsewhere (``with self.get_lock():``, whose
    ``return self._lock`` hands out a shared one). Only this ``with`` holds that object."""
    if not ref.endswith("()") or lock.via:
        return False
    val = analysis.index.eval(ctx, ref[:-2])
    if isinstance(val, ClassObj):
        return True
    if isinstance(val, FuncVal):
        made = analysis.index.functions.get(val.fq)
        returns = made.facts.returns_refs if made is not None else ()
        return bool(returns) and all(r.endswith("()") and "[]" not in r for r in returns)
    return False


def on_loop(analysis: Analysis, fn: Fn) -> bool:
    return fn.facts.is_async or generator_coroutine(analysis, fn)


class ThreadLockHeldAcrossAwait:
    code = "ARC005"

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        for fn in module_functions(analysis, module):
            f = fn.facts
            if not f.regions:
                continue
            if f.is_async:
                suspend = K.AWAIT
            elif generator_coroutine(analysis, fn):
                suspend = K.YIELD
            else:
                continue
            ctx = analysis.ctx(fn)
            for rid, region in enumerate(f.regions):
                lock = analysis.region_lock(ctx, rid)
                if lock is None or lock.kind != "thread" or lock.reentrant is not False:
                    continue
                if region.is_async and (not lock.via or lock.entered_async):
                    continue  # only an ``@asynccontextmanager`` function holds one so (and
                    # one whose own hold is an ``async with``, whose ``__aenter__`` takes it,
                    # is judged as that ``async with`` is)
                awaits = [
                    e
                    for j, e in enumerate(f.events[region.first : region.last], region.first)
                    if e.kind == suspend
                    and rid in e.regions
                    and not _cannot_suspend(analysis, ctx, fn, e)
                    and (e.kind != K.AWAIT or analysis.suspending(ctx, j))
                ]
                if not awaits:
                    continue
                held = with_text(f.events, region.ref, region.pos)
                sites, takers = other_sites(analysis, fn, rid, lock)
                if sites and takers is not None and _one_update_at_a_time(analysis, [fn, *takers]):
                    continue  # every coroutine that takes it is a handler of an application
                    # that runs one update's handlers at a time: none runs while it is held
                if not sites and (
                    (
                        _made_for_this_with(analysis, ctx, region.ref, lock)
                        and analysis.concurrent(fn, ANY).answer is not True
                    )
                    or analysis.concurrent(fn, ANY).answer is False
                ):
                    continue  # taken nowhere else on the loop, and by one run of this code
                    # at a time (a lock object of its own, or code the model shows
                    # serialised: every caller holds an asyncio lock around it): no second
                    # coroutine can wait for it while the holder is suspended
                steps = [fn_step(fn, at(e), self._label(e, held)) for e in awaits]
                steps += [Step(path, pos, what) for path, pos, what in lock.via]
                steps += [s for _, s in sites]
                n = len(awaits)
                where = ""
                if sites:
                    names = ["here", *(w for w, _ in sites)]
                    where = f" ({', '.join(names[:-1])}, or {names[-1]})"
                msg = (
                    f"`{held}` (a non-reentrant {lock.describe.removeprefix('the ')}) is held across "
                    f"{n} await point{'s' if n != 1 else ''}; the next coroutine to take "
                    f"it{where} blocks the event loop while the holder is suspended: the loop "
                    "hangs"
                )
                yield make(self.code, fn.module.path, region.pos, msg, steps, FIX)

    @staticmethod
    def _label(e: Event, held: str) -> str:
        if e.kind == K.YIELD:
            return f"`yield` suspends the coroutine (an await point) while `{held}` is held"
        return f"{e.name} while `{held}` is held"


def with_text(events: list[Event], ref: str, pos: Pos) -> str:
    """A ``with`` item as written, near enough: ``self._lock``, ``holding(self._slots)``."""
    if not ref.endswith("()"):
        return shown(ref)
    call = next((e for e in events if e.kind == K.CALL and e.pos == pos), None)
    if call is None or not call.args:
        return shown(ref)
    args = [a.replace("=const:", "=") for a in call.args]  # (a flag by name: ``blocking=True``)
    args = [a if a and a != "const" and ":" not in a else "..." for a in args]
    return f"{shown(ref[:-2])}({', '.join(shown(a) for a in args)})"


def _one_update_at_a_time(analysis: Analysis, coroutines: list[Fn]) -> bool:
    """Are these coroutines all handlers of an application that runs the handlers of one
    update at a time (``Concurrency._serial_handler``), or code such a handler alone waits
    for? Then no two of them run at once."""
    return all(per_update(analysis.concurrent(c, ANY)) for c in coroutines)


def other_sites(
    analysis: Analysis, fn: Fn, rid: int, lock: LockInfo
) -> tuple[list[tuple[str, Step]], list[Fn] | None]:
    """Where else ``lock`` is taken on the event-loop thread: ``with`` blocks (and
    ``acquire()`` calls) of the same lock in coroutines, or in synchronous functions that a
    coroutine calls. Nearest first (the same function, class, module, then others), at most
    :data:`MAX_SITES`. Each is (how the message names it, the step). Second: every coroutine
    that takes it so (itself, or calling such a synchronous function), or None when a
    synchronous one is also called by something that is no coroutine."""
    idx = analysis.index
    here = fn.module
    owner = lock.ident.rpartition(".")[0]
    scan: list[Fn] = []
    seen: set[str] = set()

    def add(f: Fn | None) -> None:
        if f is not None and f.fq not in seen:
            seen.add(f.fq)
            scan.append(f)

    for q in sorted(here.functions):
        add(idx.functions.get(f"{here.module}.{q}"))
    if "@" not in lock.ident and owner in idx.classes:
        classes = [c.fq for c in idx.mro(owner)] + idx.subclasses(owner)
        for cfq in classes:
            ci = idx.classes.get(cfq)
            if ci is None:
                continue
            for q in sorted(ci.facts.methods.values()):
                add(idx.functions.get(f"{ci.module.module}.{q}"))

    found: list[tuple[tuple[int, str, int], str, Step]] = []
    takers: list[Fn] | None = []
    for other in scan:
        ctx = analysis.ctx(other)
        f = other.facts
        hits: list[tuple[Pos, str]] = []  # where and how it is taken
        for r, region in enumerate(f.regions):
            if other is fn and r == rid:
                continue
            got = analysis.region_lock(ctx, r)
            if got is not None and got.ident == lock.ident:
                text = with_text(f.events, region.ref, region.pos)
                hits.append((region.pos, f"`with {text}:`"))
        for e in f.events:
            if e.kind == K.CALL and e.ref.endswith(".acquire"):
                got = analysis.locks.lock_of(ctx, e.ref[: -len(".acquire")])
                if got is not None and got.ident == lock.ident:
                    hits.append((at(e), f"`{shown(e.ref)}()`"))
        if not hits:
            continue
        if f.is_generator and analysis.locks.cm_function(other):
            continue  # a context-manager function: its users' ``with`` blocks are the sites
        loop = on_loop(analysis, other)
        if not loop and f.is_generator:
            continue  # calling a generator runs none of it
        callers, all_async = ([], True) if loop else _async_callers(analysis, other)
        caller = short(callers[0]) if callers else ""
        if not loop and not caller:
            continue  # only synchronous code no coroutine calls: maybe another thread
        if takers is not None:
            takers = [*takers, other] if loop else ([*takers, *callers] if all_async else None)
        if other is fn:
            rank = 0
        elif f.cls is not None and f.cls == fn.facts.cls and other.module is here:
            rank = 1
        elif other.module is here:
            rank = 2
        else:
            rank = 3
        # one site per function: the nearest to the held block in its own function, else the
        # first; the message names functions, not every line of one of them
        here_line = fn.facts.regions[rid].pos[0]
        pos, how = min(hits, key=lambda h: (abs(h[0][0] - here_line) if other is fn else 0, h))
        line = pos[0]
        where = f"line {line}" if other.module is here else f"{other.module.path}:{line}"
        name = f"in `{short(other)}` at {where}" if other is not fn else f"at {where}"
        if caller:
            label = (
                f"{how} in `{short(other)}`, which the coroutine `{caller}` calls: a second "
                "coroutine blocks the event loop here"
            )
        else:
            label = (
                f"{how} in the coroutine `{short(other)}`: a second coroutine blocks the event "
                "loop here"
            )
        found.append(((rank, other.module.path, line), name, fn_step(other, pos, label)))
    found.sort(key=lambda t: t[0])
    return [(name, step) for _, name, step in found[:MAX_SITES]], takers


def _async_callers(analysis: Analysis, fn: Fn) -> tuple[list[Fn], bool]:
    """The coroutines that call the synchronous ``fn`` directly (so ``fn`` runs on the event
    loop), and whether every caller found is one."""
    out: list[Fn] = []
    every = True
    for caller, i in analysis.calls_by_name(fn.facts.name):
        ev = caller.facts.events[i]
        if ev.ref.rpartition(".")[2] != fn.facts.name:
            continue  # handed to a spawner, not called here
        if not any(tfn.fq == fn.fq for tfn, _tctx in analysis.targets(analysis.ctx(caller), ev)):
            continue
        if on_loop(analysis, caller):
            if caller not in out:
                out.append(caller)
        else:
            every = False
    return out, every
