"""What is a lock, which lock is it, and which calls hand work to another thread.

A lock's *identity* is what "the same lock" means across functions: the class that declares the
attribute plus the attribute (``pkg.state.ConversationState._lock``), a module variable, or, for
objects whose ``__enter__`` acquires a lock of their own (``with state:``), that inner lock. Two
instances of one class share an identity: the static approximation every lock checker makes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asyncrace.analysis.facts import K
from asyncrace.analysis.index import MISS, Ctx, Index, Inst, Memo, split_ref
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
    def lock_of(self, ctx: Ctx, ref: str) -> LockInfo | None:
        """The lock a ``with <ref>:`` (or ``<ref>.acquire()``) takes, if it is one."""
        if not ref or "[]" in ref:
            return None
        val = self.index.eval(ctx, ref)
        segs = split_ref(ref)
        last = segs[-1].rstrip("()") if segs else ""
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
        if segs and not segs[-1].endswith("()") and lockish_name(last):
            if len(segs) == 2 and segs[0] in ("self", "cls") and ctx.recv:
                # unknown type, but still the attribute of one class: not every ``_lock``
                owner = self.index.attr_owner(ctx.recv, last)
                return LockInfo(f"{owner}.{last}", "unknown", None, "")
            if ref.startswith("global:"):
                return LockInfo(f"{ctx.fn.module.module}.{ref[7:]}", "unknown", None, "")
            return LockInfo(f"?.{last}", "unknown", None, "")
        return None

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
        that is that function."""
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
