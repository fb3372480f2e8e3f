"""What is a lock, which lock is it, and which calls hand work to another thread.

A lock's *identity* is what "the same lock" means across functions: the class that declares the
attribute plus the attribute (``pkg.state.ConversationState._lock``), a module variable, or, for
objects whose ``__enter__`` acquires a lock of their own (``with state:``), that inner lock. Two
instances of one class share an identity: the static approximation every lock checker makes.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from asyncrace.analysis.facts import Bind, Event, K, Pos
from asyncrace.analysis.index import (
    MISS,
    Ctx,
    Fn,
    FuncVal,
    Index,
    Inst,
    Memo,
    is_kw,
    split_ref,
)
from asyncrace.settings import Settings

# fully qualified type or factory -> (kind, reentrant)
KNOWN_LOCKS: dict[str, tuple[str, bool]] = {
    "threading.Lock": ("thread", False),
    "threading.RLock": ("thread", True),
    "threading.Semaphore": ("thread", False),
    "threading.BoundedSemaphore": ("thread", False),
    "threading.Condition": ("thread", True),
    "_thread.allocate_lock": ("thread", False),
    "_thread.LockType": ("thread", False),
    "_thread.RLock": ("thread", True),
    "multiprocessing.Lock": ("thread", False),
    "multiprocessing.RLock": ("thread", True),
    "multiprocessing.Semaphore": ("thread", False),
    "multiprocessing.BoundedSemaphore": ("thread", False),
    "asyncio.Lock": ("async", False),
    "asyncio.locks.Lock": ("async", False),
    "asyncio.Semaphore": ("async", False),
    "asyncio.BoundedSemaphore": ("async", False),
    "asyncio.Condition": ("async", False),
    "anyio.Lock": ("async", False),
    "anyio.Semaphore": ("async", False),
    "anyio.CapacityLimiter": ("async", False),
    "anyio.Condition": ("async", False),
    "trio.Lock": ("async", False),
    "trio.StrictFIFOLock": ("async", False),
    "trio.Semaphore": ("async", False),
    "trio.CapacityLimiter": ("async", False),
}

# functions that run their first argument on another thread
HANDOFF_FUNCTIONS: frozenset[str] = frozenset(
    {
        "asyncio.to_thread",
        "asyncio.threads.to_thread",
        "anyio.to_thread.run_sync",
        "trio.to_thread.run_sync",
        "starlette.concurrency.run_in_threadpool",
        "fastapi.concurrency.run_in_threadpool",
        "asgiref.sync.sync_to_async",
    }
)

# the decorators that make a generator function a context manager: ``with f():`` runs the
# generator up to its ``yield`` on entry and the rest on exit
CONTEXT_MANAGER_DECORATORS: frozenset[str] = frozenset(
    {"contextlib.contextmanager", "contextlib.asynccontextmanager"}
)

# the types of "some context manager": a parameter so typed may hold any, a lock included
GENERIC_CONTEXT_MANAGERS: frozenset[str] = frozenset(
    {
        "contextlib.AbstractContextManager",
        "typing.ContextManager",
        "typing_extensions.ContextManager",
    }
)

# calls that run their function on a thread of a pool shared by the whole process, bounded:
# fully qualified name -> (the pool, the keyword that gives a pool of the caller's own instead)
SHARED_POOL_FUNCTIONS: dict[str, tuple[str, str]] = {
    "asyncio.to_thread": (
        "the event loop's default executor (at most min(32, CPUs + 4) threads)",
        "",
    ),
    "asyncio.threads.to_thread": (
        "the event loop's default executor (at most min(32, CPUs + 4) threads)",
        "",
    ),
    "anyio.to_thread.run_sync": ("AnyIO's default thread limiter (40 threads)", "limiter"),
    "trio.to_thread.run_sync": ("Trio's default thread limiter (40 threads)", "limiter"),
    "starlette.concurrency.run_in_threadpool": ("AnyIO's default thread limiter (40 threads)", ""),
    "fastapi.concurrency.run_in_threadpool": ("AnyIO's default thread limiter (40 threads)", ""),
}
DEFAULT_EXECUTOR = "the event loop's default executor (at most min(32, CPUs + 4) threads)"

_LOCK_MODULES = {"threading", "asyncio", "locks", "multiprocessing", "anyio", "trio", "_thread"}
_LOCK_WORDS = {"lock", "rlock", "mutex", "semaphore", "sem", "alock", "wlock", "lck"}
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def lockish_name(name: str) -> bool:
    """``_lock``, ``state_lock``, ``stateLock``, ``mutex``: a name that says it is a lock."""
    words = [w.lower() for part in name.split("_") for w in _WORD.findall(part)]
    return bool(words) and words[-1] in _LOCK_WORDS


@dataclass(frozen=True, slots=True)
class LockInfo:
    ident: str  # identity for "same lock" comparisons
    kind: str  # "thread", "async" or "unknown"
    reentrant: bool | None
    type_fq: str  # the lock's type, "" when unknown

    wrapper: bool = False  # taken through an object whose ``__enter__`` acquires its lock
    # how it is known (path, position, what): the factory that made it, the context manager
    # function that takes it for its ``with`` block
    via: tuple[tuple[str, Pos, str], ...] = ()
    # taken by an ``async with`` of an object of its own (its ``__aenter__`` takes it), or by
    # an acquire that gives up rather than waits (``acquire(blocking=False)`` polled in an
    # async function), inside the context manager function that ``via`` names
    entered_async: bool = False

    @property
    def describe(self) -> str:
        """``threading.Lock``, ``the lock of ConversationState``, ``lock``."""
        if not self.type_fq:
            return "the lock"
        short = self.type_fq.rsplit(".", 1)[-1]
        if self.wrapper:
            return f"the lock of `{short}`"
        module = self.type_fq.rsplit(".", 2)[-2] if "." in self.type_fq else ""
        return f"`{module}.{short}`" if module in _LOCK_MODULES else f"`{short}`"


@dataclass(frozen=True, slots=True)
class _LockClass:
    kind: str
    reentrant: bool
    inner_attr: str = ""  # for wrappers: the attribute holding the real lock


class LockModel:
    def __init__(self, index: Index, settings: Settings) -> None:
        self.index = index
        self.known = dict(KNOWN_LOCKS)
        for t in settings.extra_lock_types:
            self.known[t] = ("thread", t in settings.extra_reentrant_lock_types)
        for t in settings.extra_reentrant_lock_types:
            self.known[t] = ("thread", True)
        self.extra_handoffs = frozenset(settings.extra_executor_functions)
        self._classes: Memo[str, _LockClass | None] = Memo(index.tracker)
        self._factories: Memo[str, _Made | None] = Memo(index.tracker)
        self._producers: Memo[tuple[str, str], str] = Memo(index.tracker)
        self._registries: Memo[str, dict[str, LockInfo]] = Memo(index.tracker)
        self._forwarders: Memo[str, int | None] = Memo(index.tracker)
        self._wrapping = 0  # depth of context-manager functions being looked through

    # -- types --------------------------------------------------------------------------------
    def classify(self, fq: str) -> _LockClass | None:
        if fq in self.known:
            kind, re_ = self.known[fq]
            return _LockClass(kind, re_)
        if fq not in self.index.classes:
            return None
        found = self._classes.get(fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._classes.start(fq, None)  # cycle guard
        return self._classes.finish(fq, self._classify_project(fq))

    def _classify_project(self, fq: str) -> _LockClass | None:
        idx = self.index
        for base in sorted(idx.ancestors_fq(fq)):
            if base in self.known:
                kind, re_ = self.known[base]
                return _LockClass(kind, re_)
        enter = idx.find_method(fq, "__enter__") or idx.find_method(fq, "__aenter__")
        if enter is None:
            return None
        for e in enter.facts.events:
            if e.kind != K.CALL:
                continue
            segs = split_ref(e.ref)
            if e.ref in ("self.acquire", "self._acquire"):
                # the class is a lock implementation in its own right
                kind = "async" if enter.facts.name == "__aenter__" else "thread"
                return _LockClass(kind, self._tracks_owner(fq))
            if len(segs) == 3 and segs[0] == "self" and segs[2] == "acquire":
                inner_t = idx.attr_type(fq, segs[1])
                inner = self.classify(inner_t) if inner_t else None
                if inner is not None:
                    return _LockClass(inner.kind, inner.reentrant, inner_attr=segs[1])
                if lockish_name(segs[1]):
                    return _LockClass("thread", False, inner_attr=segs[1])
        return None

    def _tracks_owner(self, fq: str) -> bool:
        """A home-made lock that records its owning thread is reentrant for that thread."""
        for c in self.index.mro(fq):
            self.index.tracker.note(c.module.module)  # its methods, however many
            for q in c.facts.methods.values():
                fn = self.index.functions.get(f"{c.module.module}.{q}")
                if fn is None:
                    continue
                for e in fn.facts.events:
                    last = e.ref.rsplit(".", 1)[-1]
                    if last in ("get_ident", "current_thread", "get_native_id", "_owner", "owner"):
                        return True
        return False

    # -- regions ------------------------------------------------------------------------------
    def lock_of(self, ctx: Ctx, ref: str, at: Pos | None = None) -> LockInfo | None:
        """The lock a ``with <ref>:`` (or ``<ref>.acquire()``) takes, if it is one; ``at``:
        where the ``with`` item is (a call's arguments are then known)."""
        if not ref:
            return None
        if "[]" in ref:
            return self._keyed_lock(ctx, ref)
        if ref.endswith(".setdefault()"):
            # ``async with self._locks.setdefault(key, asyncio.Lock()):``: the key's lock of a
            # registry of locks, as ``self._locks[key]``
            segs = split_ref(ref.removesuffix(".setdefault()"))
            if len(segs) == 2 and segs[0] == "self" and ctx.recv:
                keyed = self._registry(ctx.recv, segs[1])
                if keyed is not None:
                    return keyed
        if ref.endswith("()"):
            inner = self._wrapped_lock(ctx, ref, at)
            if inner is not None:
                return inner
        val = self.index.eval(ctx, ref)
        segs = split_ref(ref)
        last = segs[-1].rstrip("()") if segs else ""
        made = self._made_lock(ctx, ref, val)
        if made is not None:
            made_cls, type_fq, via = made
            ident = self._identity(ctx, ref, type_fq)
            return LockInfo(ident, made_cls.kind, made_cls.reentrant, type_fq, via=via)
        if isinstance(val, Inst):
            lc = self.classify(val.fq)
            if lc is not None:
                if lc.inner_attr:
                    owner = self.index.attr_owner(val.fq, lc.inner_attr)
                    return LockInfo(
                        f"{owner}.{lc.inner_attr}", lc.kind, lc.reentrant, val.fq, wrapper=True
                    )
                return LockInfo(self._identity(ctx, ref, val.fq), lc.kind, lc.reentrant, val.fq)
            if val.fq in self.index.classes:
                return None  # a known project class that is not a lock
        if len(segs) == 1 and val is None and not ref.startswith("global:"):
            taken = self._local_from_registry(ctx, ref)
            if taken is not None:
                return taken
        if segs and not segs[-1].endswith("()") and lockish_name(last):
            if len(segs) == 2 and segs[0] in ("self", "cls") and ctx.recv:
                # unknown type, but still the attribute of one class: not every ``_lock``
                owner = self.index.attr_owner(ctx.recv, last)
                return LockInfo(f"{owner}.{last}", "unknown", None, "")
            if ref.startswith("global:"):
                return LockInfo(f"{ctx.fn.module.module}.{ref[7:]}", "unknown", None, "")
            return LockInfo(f"?.{last}", "unknown", None, "")
        return None

    # -- a lock per key: ``self._locks[key]`` of a registry of locks --------------------------
    def _keyed_lock(self, ctx: Ctx, ref: str) -> LockInfo | None:
        """``async with self._locks[key]:`` where ``self._locks`` holds locks (a
        ``defaultdict(asyncio.Lock)``, or filled with ``self._locks[key] = asyncio.Lock()``):
        the lock of that key. Its identity is the registry's (``Cls._locks[]``): the same
        expression with the same key takes the same lock."""
        segs = split_ref(ref[:-2]) if ref.endswith("[]") and ref.count("[]") == 1 else []
        if len(segs) != 2 or segs[0] != "self" or not ctx.recv:
            return None
        return self._registry(ctx.recv, segs[1])

    def _local_from_registry(self, ctx: Ctx, ref: str) -> LockInfo | None:
        """``lock = self._cache.get(key)`` / ``lock = _Lock(key); self._cache[key] = lock``
        then ``async with lock:``: a local that some path makes as a lock and stores into an
        attribute's container, every other path taking from it (bbot's ``NamedLock``)."""
        f = ctx.fn.facts
        if not ctx.recv:
            return None
        stored = {
            e.ref
            for e in f.events
            if e.kind == K.SETITEM
            and e.value is not None
            and e.value.kind == "name"
            and e.value.ref == ref
            and len(split_ref(e.ref)) == 2
            and e.ref.startswith("self.")
        }
        if len(stored) != 1:
            return None
        if self._made_as_lock(ctx, ref) is None:
            return None
        return self._registry(ctx.recv, next(iter(stored))[len("self.") :])

    def _made_as_lock(self, ctx: Ctx, local: str) -> tuple[_LockClass, str] | None:
        """The lock class some assignment of the local makes (``lock = _Lock(key)``)."""
        for e in ctx.fn.facts.events:
            if (
                e.kind == K.LOCAL
                and e.ref == local
                and e.value is not None
                and e.value.kind == "call"
                and (made := self._lock_ctor(ctx, e.value.ref))
            ):
                return made
        return None

    def _lock_ctor(self, ctx: Ctx, callee: str) -> tuple[_LockClass, str] | None:
        """The lock class a call of ``callee`` makes (``asyncio.Lock``, a project subclass)."""
        if not callee or callee.endswith(("()", "]")):
            return None
        v = self.index.eval(ctx, callee)
        fq = getattr(v, "fq", "") or self.index.resolve(ctx.fn.module, callee)
        lc = self.classify(fq) if fq else None
        return (lc, fq) if lc is not None and not lc.inner_attr else None

    def registry(self, cls_fq: str, attr: str) -> LockInfo | None:
        """The lock kind ``self.<attr>`` of the class holds per key, when it is a registry of
        locks (:meth:`_find_registry`)."""
        return self._registry(cls_fq, attr)

    def _registry(self, cls_fq: str, attr: str) -> LockInfo | None:
        found = self._registries.get(cls_fq)
        if found is MISS:
            self._registries.start(cls_fq, {})
            found = self._registries.finish(cls_fq, self._find_registries(cls_fq))
        return found.get(attr)  # type: ignore[no-any-return]

    def _find_registries(self, cls_fq: str) -> dict[str, LockInfo]:
        """The attributes ``self.<attr>`` of the class that are containers of locks: made a
        ``defaultdict`` of a lock class, or given a lock (made there, or a local made as one)
        under a key, also by ``setdefault(key, asyncio.Lock())``; the first such place of
        each, in the order of the MRO, the methods and their events (one pass over the class
        for all its attributes)."""
        idx = self.index
        out: dict[str, LockInfo] = {}
        for c in idx.mro(cls_fq):
            idx.tracker.note(c.module.module)  # its methods, however many
            for q in c.facts.methods.values():
                fn = idx.functions.get(f"{c.module.module}.{q}")
                if fn is None:
                    continue
                ctx = Ctx(fn, cls_fq)
                for i, e in enumerate(fn.facts.events):
                    found: tuple[_LockClass, str] | None = None
                    if e.kind == K.CALL and e.bind == Bind.ATTR and e.args:
                        target = e.name
                        if (
                            target.startswith("self.")
                            and target.count(".") == 1
                            and target[5:] not in out
                            and idx.resolve(fn.module, e.ref) == "collections.defaultdict"
                        ):
                            found = self._lock_ctor(ctx, e.args[0])
                    elif (
                        e.kind == K.CALL
                        and len(e.args) == 2
                        and e.ref.endswith(".setdefault")
                        and e.args[1].endswith("()")
                    ):
                        # ``lock = self._locks.setdefault(key, asyncio.Lock())``
                        target = e.ref.removesuffix(".setdefault")
                        if (
                            target.startswith("self.")
                            and target.count(".") == 1
                            and target[5:] not in out
                        ):
                            found = self._lock_ctor(ctx, e.args[1][:-2])
                    elif e.kind == K.SETITEM and e.value is not None:
                        target = e.ref
                        if (
                            target.startswith("self.")
                            and target.count(".") == 1
                            and target[5:] not in out
                        ):
                            if e.value.kind == "call":
                                found = self._lock_ctor(ctx, e.value.ref)
                            elif e.value.kind == "name":
                                found = self._made_as_lock(ctx, e.value.ref)
                    elif (
                        e.kind == K.WRITE
                        and e.value is not None
                        and e.value.kind == "other"
                        and e.ref.startswith("self.")
                        and e.ref.count(".") == 1
                        and e.ref[5:] not in out
                    ):
                        target = e.ref
                        found = self._comprehension_of_locks(ctx, fn.facts.events, i)
                    if found is not None:
                        attr = target[5:]
                        lc, type_fq = found
                        owner = idx.attr_owner(cls_fq, attr)
                        out[attr] = LockInfo(f"{owner}.{attr}[]", lc.kind, lc.reentrant, type_fq)
        return out

    def _comprehension_of_locks(
        self, ctx: Ctx, events: list[Event], w: int
    ) -> tuple[_LockClass, str] | None:
        """``self._locks = [asyncio.Lock() for _ in members]`` (or a dict comprehension): the
        write ``w`` stores a comprehension whose element makes a new lock per item, one lock
        per index or key. The events of the right-hand side come just before the write: the
        comprehension's variables and the calls it makes. Not ``[asyncio.Lock()] * n``: one
        lock, n times (no comprehension variable)."""
        comp = False
        made: tuple[_LockClass, str] | None = None
        j = w - 1
        while j >= 0 and events[j].kind in (K.CALL, K.LOCAL):
            e = events[j]
            if e.kind == K.LOCAL:
                if e.value is None or e.value.kind != "comp":
                    break
                comp = True
            elif e.bind == Bind.NONE and made is None:
                made = self._lock_ctor(ctx, e.ref)
            j -= 1
        return made if comp else None

    def _identity(self, ctx: Ctx, ref: str, type_fq: str) -> str:
        if ref.startswith("global:"):
            return f"{ctx.fn.module.module}.{ref[7:]}"
        segs = split_ref(ref)
        if len(segs) >= 2:
            owner_val = self.index.eval(ctx, ".".join(segs[:-1]))
            if isinstance(owner_val, Inst):
                return f"{self.index.attr_owner(owner_val.fq, segs[-1])}.{segs[-1]}"
            return f"?.{segs[-1]}"
        # a local variable or parameter holding a lock: identity by type and name
        return f"{type_fq}@{ctx.fn.fq}.{ref}"

    # -- hand-offs ----------------------------------------------------------------------------
    def handoff_arg(self, ctx: Ctx, ref: str) -> int | None:
        """If calling ``ref`` runs a function on another thread, the index of the argument
        that is that function: a hand-off of asyncio, AnyIO, Trio, Starlette, asgiref or an
        executor, or a function of the project that forwards one of its parameters to one and
        waits for it (:meth:`_forwarded`)."""
        found = self._direct_handoff_arg(ctx, ref)
        if found is not None or not ref or "(" in ref:
            return found
        fq = self.index.resolve(ctx.fn.module, ref)
        return self._forwarded(fq) if fq in self.index.functions else None

    def _forwarded(self, fq: str) -> int | None:
        """A module function of the project that hands one of its positional parameters to a
        thread and awaits or returns the result (``async def _to_thread(func, /, *args):
        return await asyncio.to_thread(func, *args)``): the index of that parameter. Only a
        direct hand-off in its body counts (no chain of helpers)."""
        found = self._forwarders.get(fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._forwarders.start(fq, None)
        out: int | None = None
        fn = self.index.functions.get(fq)
        if fn is not None and fn.facts.cls is None and fn.facts.parent is None:
            params = [p.name for p in fn.facts.params if p.kind == "pos"]
            ctx = Ctx(fn)
            for ev in fn.facts.events:
                if ev.kind != K.CALL or ev.bind not in (Bind.AWAITED, Bind.RETURNED):
                    continue
                inner = self._direct_handoff_arg(ctx, ev.ref)
                positional = [a for a in ev.args if not is_kw(a)]
                if inner is not None and inner < len(positional) and positional[inner] in params:
                    out = params.index(positional[inner])
                    break
        return self._forwarders.finish(fq, out)

    def _direct_handoff_arg(self, ctx: Ctx, ref: str) -> int | None:
        if not ref:
            return None
        segs = split_ref(ref)
        last = segs[-1]
        if last == "run_in_executor":
            return 1
        fq = self.index.resolve(ctx.fn.module, ref) if "(" not in ref else ""
        if fq in HANDOFF_FUNCTIONS or fq in self.extra_handoffs or last in self.extra_handoffs:
            return 0
        recv = segs[-2].lower() if len(segs) >= 2 else ""
        if last == "submit" and ("executor" in recv or "pool" in recv):
            return 0
        if last in ("start_task_soon", "start_task") and "portal" in recv:
            return 0
        if last == "submit" and len(segs) >= 2:
            v = self.index.eval(ctx, ".".join(segs[:-1]))
            if isinstance(v, Inst) and v.fq.rsplit(".", 1)[-1].endswith("Executor"):
                return 0
        return None

    # -- locks made by the project's factory functions ----------------------------------------
    def _made_lock(
        self, ctx: Ctx, ref: str, val: object
    ) -> tuple[_LockClass, str, tuple[tuple[str, Pos, str], ...]] | None:
        """A lock that ``ref`` holds because a project function made it: ``self._lock =
        make_lock()``, ``_lock = make_lock()`` in a class body, ``LOCK = make_lock()``, a local."""
        fq = ""
        if isinstance(val, Inst) and val.fq in self.index.functions:
            fq = val.fq  # a class-level ``_lock = make_lock()``: its "type" is the function
        elif val is None and not ref.endswith(("()", "]")):
            fq = self._producer(ctx, ref)
        if not fq:
            return None
        made = self.factory(fq)
        if made is None:
            return None
        fn = self.index.functions.get(fq)
        via: tuple[tuple[str, Pos, str], ...] = ()
        if fn is not None:
            via = ((fn.module.path, fn.facts.pos, f"`{fn.facts.name}` returns a {made.describe}"),)
        return made.cls, made.type_fq, via

    def _producer(self, ctx: Ctx, ref: str) -> str:
        """The project function whose result ``ref`` holds, from its assignment: a local's
        first one, a module variable's, or an attribute's in the methods of its class."""
        idx = self.index
        if ref.startswith("global:"):
            name = ref[7:]
            if "." in name:
                return ""
            t = ctx.fn.module.global_types.get(name)
            fq = idx.resolve(ctx.fn.module, t) if t else ""
            return fq if fq in idx.functions else ""
        segs = split_ref(ref)
        if len(segs) == 1:
            for e in ctx.fn.facts.events:
                if e.kind == K.LOCAL and e.ref == ref and e.value is not None:
                    if e.value.kind != "call" or not e.value.ref:
                        return ""
                    v = idx.eval(ctx, e.value.ref)
                    return v.fq if isinstance(v, FuncVal) and v.fq in idx.functions else ""
            return ""
        if any(s.endswith(("()", "]")) for s in segs):
            return ""
        owner = idx.eval(ctx, ".".join(segs[:-1]))
        if not isinstance(owner, Inst) or owner.fq not in idx.classes:
            return ""
        return self._attr_producer(owner.fq, segs[-1])

    def _attr_producer(self, cls_fq: str, attr: str) -> str:
        key = (cls_fq, attr)
        found = self._producers.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._producers.start(key, "")
        out = ""
        idx = self.index
        target = f"self.{attr}"
        for c in idx.mro(cls_fq):
            idx.tracker.note(c.module.module)  # its methods, however many
            for name in sorted(c.facts.methods, key=lambda n: (n != "__init__", n)):
                fn = idx.functions.get(f"{c.module.module}.{c.facts.methods[name]}")
                if fn is None:
                    continue
                for e in fn.facts.events:
                    if e.kind != K.WRITE or e.ref != target or e.value is None:
                        continue
                    if e.value.kind != "call" or not e.value.ref:
                        continue
                    v = idx.eval(Ctx(fn, cls_fq), e.value.ref)
                    if isinstance(v, FuncVal) and v.fq in idx.functions:
                        out = v.fq
                        break
                if out:
                    break
            if out:
                break
        return self._producers.finish(key, out)

    def factory(self, fq: str) -> _Made | None:
        """If the project function ``fq`` makes locks, which kind: its return annotation names
        a lock type, or every ``return`` of it (and of each earlier definition of the same
        name, one per branch of a module-level ``if``) gives one, all of the same kind."""
        found = self._factories.get(fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._factories.start(fq, None)  # recursion guard
        return self._factories.finish(fq, self._factory(fq))

    def _factory(self, fq: str) -> _Made | None:
        idx = self.index
        fn = idx.functions.get(fq)
        if fn is None or fn.facts.is_async or fn.facts.is_generator or fn.facts.is_lambda:
            return None
        f = fn.facts
        if f.returns_annotation:
            t = idx.resolve(fn.module, f.returns_annotation)
            lc = self.classify(t)
            return _Made(lc, t) if lc is not None else None
        ctx = Ctx(fn, idx.method_fn(fn))
        groups = [f.returns_refs, *f.earlier_returns]
        out: _Made | None = None
        for group in groups:
            if not group:
                return None
            for r in group:
                made = self._returned(ctx, r)
                if made is None:
                    return None
                if out is None:
                    out = made
                elif (made.cls.kind, made.cls.reentrant) != (out.cls.kind, out.cls.reentrant):
                    return None
        return out

    def _returned(self, ctx: Ctx, ref: str) -> _Made | None:
        if not ref or "[]" in ref:
            return None
        val = self.index.eval(ctx, ref)
        if isinstance(val, Inst):
            lc = self.classify(val.fq)
            if lc is not None:
                return _Made(lc, val.fq)
            if val.fq in self.index.functions:
                return self.factory(val.fq)
            return None
        if val is None and ref.endswith("()"):
            v = self.index.eval(ctx, ref[:-2])
            if isinstance(v, FuncVal):
                return self.factory(v.fq)
        if val is None:
            fq = self._producer(ctx, ref)
            return self.factory(fq) if fq else None
        return None

    # -- context-manager functions that take a lock -------------------------------------------
    def _wrapped_lock(self, ctx: Ctx, ref: str, at: Pos | None) -> LockInfo | None:
        """``with self._protected():`` where ``_protected`` is a ``@contextmanager`` generator
        that yields inside ``with self._lock:`` (or between ``acquire()`` and ``release()``):
        the block holds that inner lock (same kind, reentrancy and identity)."""
        if self._wrapping >= 3:
            return None
        idx = self.index
        callee = ref[:-2]
        targets = idx.callable_targets(ctx, callee)
        if not targets:
            return None
        calls = [e for e in ctx.fn.facts.events if e.kind == K.CALL and e.ref == callee]
        exact = [e.args for e in calls if e.pos == at]
        same = {e.args for e in calls}
        args = exact[0] if exact else next(iter(same)) if len(same) == 1 else ()
        self._wrapping += 1
        try:
            for fn, _c, fv in targets:
                if not fn.facts.is_generator or not self.cm_function(fn):
                    continue
                tctx = idx.bind_args(fn, fv, args, ctx)
                inner = self._held_at_yield(tctx)
                if inner is not None:
                    lock, pos, inner_ref = inner
                    passed = _argument_for(fn, fv, args, inner_ref)
                    if passed:
                        # ``with holding(self._slots):``: the lock is the caller's argument
                        outer = self.lock_of(ctx, passed)
                        if outer is not None:
                            lock = outer
                    if lock.ident.startswith("?."):
                        continue  # a lock-like name of unknown owner: not one lock
                    step = (fn.module.path, pos, f"`{fn.facts.name}` takes {lock.describe} here")
                    return LockInfo(
                        lock.ident,
                        lock.kind,
                        lock.reentrant,
                        lock.type_fq,
                        lock.wrapper,
                        (*lock.via, step),
                        lock.entered_async,
                    )
        finally:
            self._wrapping -= 1
        return None

    def cm_function(self, fn: Fn) -> bool:
        """A ``@contextmanager``/``@asynccontextmanager`` function."""
        for d in fn.facts.decorators:
            if self.index.resolve(fn.module, d) in CONTEXT_MANAGER_DECORATORS:
                return True
        return False

    def _held_at_yield(self, ctx: Ctx) -> tuple[LockInfo, Pos, str] | None:
        """The lock a generator holds at its (first) ``yield``, where it takes it, and the
        ref it takes."""
        f = ctx.fn.facts
        first = next((i for i, e in enumerate(f.events) if e.kind == K.YIELD), -1)
        if first < 0:
            return None
        ev = f.events[first]
        for rid in reversed(ev.regions):
            region = f.regions[rid]
            lock = self.lock_of(ctx, region.ref)
            if lock is not None:
                if region.is_async and not lock.via:
                    lock = dataclasses.replace(lock, entered_async=True)
                return lock, region.pos, region.ref
        for e in f.events[:first]:
            if e.kind != K.CALL or not e.ref.endswith(".acquire"):
                continue
            owner = e.ref[: -len(".acquire")]
            if not _released_after(f.events, first, owner):
                continue
            lock = self.lock_of(ctx, owner)
            if lock is not None:
                if e.args and f.is_async:
                    # ``while not lock.acquire(blocking=False): await asyncio.sleep(...)``: a
                    # second holder gives up and tries again (``blocking_acquire``: with an
                    # argument, it does not wait for the lock), suspending between tries
                    lock = dataclasses.replace(lock, entered_async=True)
                return lock, e.show or e.pos, owner
        return None

    # -- a blocking acquisition handed to a shared pool (pool starvation) ---------------------
    def shared_pool(self, ctx: Ctx, ev: Event) -> str:
        """If the call ``ev`` runs its function on a thread of a bounded pool the whole
        process shares (no executor or limiter of the caller's own), that pool."""
        segs = split_ref(ev.ref)
        if not segs:
            return ""
        positional = [a for a in ev.args if not is_kw(a)]
        keywords = {a.partition("=")[0] for a in ev.args if is_kw(a)}
        if segs[-1] == "run_in_executor":
            return DEFAULT_EXECUTOR if positional and positional[0] == "const" else ""
        if "(" in ev.ref:
            return ""
        fq = self.index.resolve(ctx.fn.module, ev.ref)
        pool = SHARED_POOL_FUNCTIONS.get(fq)
        if pool is None:
            return ""
        what, own = pool
        if own and (own in keywords or "**" in keywords):
            return ""
        return what

    def blocking_acquire(
        self, ctx: Ctx, ref: str, extra: int
    ) -> tuple[str, LockInfo | None, tuple[tuple[str, Pos, str], ...]]:
        """If running ``ref`` (with ``extra`` more arguments) blocks until a lock is free:
        ``lock.acquire`` of a lock (no timeout, blocking), ``lock.__enter__``, or the
        ``__enter__`` of a context manager of unknown kind passed in (a parameter typed
        ``AbstractContextManager``/``ContextManager``, or not annotated, or an attribute
        assigned from one). What it blocks on, in words, the lock when it is one, and where
        the context manager comes from."""
        segs = split_ref(ref)
        if len(segs) < 2 or segs[-1] not in ("acquire", "__enter__"):
            return "", None, ()
        owner = ".".join(segs[:-1])
        shown = owner.removeprefix("global:")
        if segs[-1] == "acquire" and extra:
            return "", None, ()  # ``acquire, False`` or with a timeout: it gives up
        lock = self.lock_of(ctx, owner)
        if lock is not None:
            if lock.kind == "async":
                return "", None, ()
            return f"`{shown}` ({lock.describe}) is free", lock, ()
        if segs[-1] != "__enter__":
            return "", None, ()
        val = self.index.eval(ctx, owner)
        what = ""
        if isinstance(val, Inst) and val.fq in GENERIC_CONTEXT_MANAGERS:
            what = f"typed `{val.fq.rsplit('.', 1)[-1]}`"
        elif val is None and self._unannotated_param(ctx, owner):
            what = "not annotated"
        if not what:
            return "", None, ()
        where = self._passed_in_at(ctx, owner)
        evidence = (
            (
                (
                    where[0],
                    where[1],
                    f"`{shown}` is a context manager passed in ({what}): a lock, "
                    "a connection pool, anything that may block",
                ),
            )
            if where is not None
            else ()
        )
        return f"`{shown}` (a context manager of any kind, {what}) can be entered", None, evidence

    def _passed_in_at(self, ctx: Ctx, ref: str) -> tuple[str, Pos] | None:
        """Where ``cm`` (a parameter: its function) or ``self._cm`` (its assignment) comes in."""
        segs = split_ref(ref)
        if len(segs) == 1:
            return ctx.fn.module.path, ctx.fn.facts.pos
        if len(segs) != 2 or segs[0] != "self" or not ctx.recv:
            return None
        target = f"self.{segs[1]}"
        for c in self.index.mro(ctx.recv):
            self.index.tracker.note(c.module.module)
            for name in sorted(c.facts.methods, key=lambda n: (n != "__init__", n)):
                m = self.index.functions.get(f"{c.module.module}.{c.facts.methods[name]}")
                if m is None:
                    continue
                for e in m.facts.events:
                    if (
                        e.kind == K.WRITE
                        and e.ref == target
                        and e.value is not None
                        and e.value.kind == "name"
                    ):
                        return m.module.path, e.show or e.pos
        return None

    def _unannotated_param(self, ctx: Ctx, ref: str) -> bool:
        """``cm`` or ``self._cm``: a parameter without annotation (or an attribute assigned
        from one in a method of its class), nothing known of what it holds."""
        segs = split_ref(ref)
        fn = ctx.fn
        if len(segs) == 1:
            found, _v = ctx.bound(ref)
            if found:
                return False
            return any(p.name == ref and not p.annotation for p in fn.facts.params)
        if len(segs) != 2 or segs[0] != "self" or not ctx.recv:
            return False
        idx = self.index
        target = f"self.{segs[1]}"
        seen = False
        for c in idx.mro(ctx.recv):
            idx.tracker.note(c.module.module)
            for q in c.facts.methods.values():
                m = idx.functions.get(f"{c.module.module}.{q}")
                if m is None:
                    continue
                params = {p.name: p.annotation for p in m.facts.params}
                for e in m.facts.events:
                    if e.kind != K.WRITE or e.ref != target or e.value is None:
                        continue
                    v = e.value
                    if v.kind == "const" and v.ref == "falsy":
                        continue  # ``self._cm = None``
                    if v.kind != "name" or v.ref not in params or params[v.ref]:
                        return False
                    seen = True
        return seen


@dataclass(frozen=True, slots=True)
class _Made:
    """What a lock factory makes."""

    cls: _LockClass
    type_fq: str

    @property
    def describe(self) -> str:
        short = self.type_fq.rsplit(".", 1)[-1]
        module = self.type_fq.rsplit(".", 2)[-2] if "." in self.type_fq else ""
        return f"`{module}.{short}`" if module in _LOCK_MODULES else f"`{short}`"


def _argument_for(fn: Fn, fv: FuncVal, args: tuple[str, ...], ref: str) -> str:
    """The caller's argument ref that the parameter ``ref`` of ``fn`` receives, if any."""
    params = list(fn.facts.params)
    if not any(p.name == ref for p in params) or fv.pre_args or fv.pre_kwargs:
        return ""
    static = "staticmethod" in {d.rsplit(".", 1)[-1] for d in fn.facts.decorators}
    if fn.facts.cls and fn.facts.parent is None and fv.recv is not None and not static:
        params = params[1:]
    positional = [a for a in args if not is_kw(a)]
    for a in args:
        k, _, v = a.partition("=")
        if is_kw(a) and k == ref:
            return v
    pos_params = [p.name for p in params if p.kind == "pos"]
    if ref in pos_params:
        i = pos_params.index(ref)
        if i < len(positional) and not positional[i].startswith(("*", "lambda:", "partial:")):
            return positional[i] if positional[i] != "const" else ""
    return ""


def _released_after(events: list[Event], start: int, owner: str) -> bool:
    release = owner + ".release"
    return any(e.kind == K.CALL and e.ref == release for e in events[start:])
