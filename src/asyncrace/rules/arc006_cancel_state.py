"""ARC006 state-broken-by-cancellation (redis-py PR 3900, redis-py PR 2641).

Every ``await`` is a point where the task can be cancelled (a timeout, a failing sibling in a
``TaskGroup``, a client that disconnects, shutdown): ``CancelledError`` is raised there and
the rest of the function does not run. State that was changed before the await and is put
back only after it stays changed. Five shapes:

1. **Take-and-clear of an ownership token** before the awaited release that receives it
   (``token = self.local.token; self.local.token = None; await self.do_release(token)``):
   cancelled while the release runs, the token is gone and the lock is never released; its
   key stays in Redis, owned by nobody (redis-py PR 3900).
2. **Acquire-like state committed, then awaited** before the ``try`` whose ``finally`` undoes
   it (``self._readers += 1; await asyncio.sleep(0); try: ... finally: self._readers -= 1``),
   or undone only on the normal path after the await; also a lock or semaphore taken by hand
   (``await self._slots.acquire()``) and released so, or released on failure only by handlers
   of ordinary errors (``except Exception: self._lock.release(); raise``).
3. **A pooled connection returned in ``finally``** after a request was sent on it and while
   its reply is being read: cancelled in between, the reply stays unread and the next user of
   the connection reads it instead of its own (redis-py PR 2641, CVE-2023-28858/9). Clean when
   the read invalidates the connection on cancellation (later redis-py:
   ``except BaseException: await self.disconnect(); raise``), or a handler here does.
4. **A blocking acquire handed to a thread** (``await loop.run_in_executor(None,
   lock.acquire)``): cancelled while the thread waits, the thread still takes the lock and
   nobody releases it.
5. **A future other calls wait on**, stored where they find it (``self._inflight[key] =
   fut``) and resolved only on the paths where the await after it completes or fails with an
   ordinary error: cancelled there, it stays pending and every waiter waits for good.

A ``try`` whose ``except (CancelledError | BaseException)`` or ``finally`` restores the state,
or ``asyncio.shield`` around the critical section, makes each of them clean.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from asyncrace.analysis.concurrency import EXIT_STACK_CALLBACKS, teardown_name
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import (
    Bind,
    Event,
    FunctionFacts,
    K,
    ModuleFacts,
    Pos,
    Try,
    inside,
    reachable,
)
from asyncrace.analysis.index import (
    MISS,
    ClassObj,
    Ctx,
    ExtName,
    Fn,
    Inst,
    Memo,
    is_kw,
    is_property,
    last_seg,
    returned_self_attr,
    split_ref,
)
from asyncrace.analysis.summaries import (
    ASYNCIO_LOCKS,
    Step,
    at,
    catches_cancel,
    fn_step,
    invalidation_in,
    name_words,
    returned_to_pool,
    search,
    short,
)
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import (
    folded,
    make,
    module_functions,
    shown,
    with_first_step,
    with_step,
)

CODE = "ARC006"
# the end of a finding's message when nothing in the project shows what can cancel the await
# (reported with ``strictness = "likely"`` only, as the other rules' findings without evidence)
LIKELY_CLAUSE = " (likely: nothing in the project shows what can cancel it)"
# the same for a change of plain state whose canceller is only assumed: the function is public
# and its callers are not in the project. A lock or semaphore left held, an ``Event`` left
# cleared, a token or a pooled connection lost hold every later user back; whether a plain
# change (a flag, a counter, an entry, a value) harms anyone depends on who reads it next.
# With the canceller assumed too, fewer than half of those were right on the tuning sets, so they
# are ``likely`` only
ASSUMED_CLAUSE = " (likely: only its being public says something can cancel it)"

FIX_TOKEN = (
    "Clear the token only after the awaited release has succeeded, or put it back in "
    "`except (asyncio.CancelledError, BaseException)` / `finally` around the await; "
    "`asyncio.shield` the release if it must complete."
)
FIX_TRY = (
    "Move the await inside the `try` (make the change right before the `try`), or undo the "
    "change in `except (asyncio.CancelledError, BaseException)` around the await."
)
FIX_UNDO = (
    "Undo the change in `finally` (or in `except (asyncio.CancelledError, BaseException)`) "
    "around the await, so that a cancellation undoes it too."
)
FIX_FAILURE = (
    "Catch `BaseException` instead of `Exception` for the release (`except BaseException: "
    "lock.release(); raise`), so that a cancellation gives the lock back too."
)
FIX_POOL = (
    "Invalidate the connection before it goes back to the pool when the exchange is "
    "interrupted (`except (asyncio.CancelledError, BaseException): await conn.disconnect(); "
    "raise`), or `asyncio.shield` the whole send, read and return."
)
FIX_THREAD = (
    "`asyncio.shield` the hand-off and, if the wait is cancelled, release the lock once the "
    "thread has taken it (`fut.add_done_callback(...)` in `except asyncio.CancelledError`), "
    "or take an `asyncio.Lock` instead."
)

FIX_FUTURE = (
    "Resolve the future on every exit: in `finally` (or `except BaseException`), "
    "`if not fut.done(): fut.cancel()`, so that the tasks waiting on it wake up."
)
# the calls that make a future, and those that resolve one (its waiters wake up)
_FUTURE_MAKERS = frozenset({"create_future", "Future"})
_RESOLVES = frozenset({"set_result", "set_exception", "cancel"})
# calls that wait on the awaitables they are given
_WAITING_CALLS = frozenset({"shield", "wait_for", "gather", "wait"})
# library methods that run their work under an ``asyncio.shield`` of their own, so a
# cancellation of the caller does not stop it: asyncpg's ``Pool.release`` (``return await
# asyncio.shield(ch.release(timeout))``: the connection goes back to the pool, and is reset
# there, whatever happens to the task that released it)
SELF_SHIELDING = frozenset({"asyncpg.Pool.release", "asyncpg.pool.Pool.release"})

# verbs of giving ownership back: the awaited call (or the function making it) that is given
# the token releases what the token owns
_RELEASE_WORDS = frozenset(
    {"release", "unlock", "relinquish", "revoke", "free", "unlease", "checkin", "putconn"}
)
_PUT_METHODS = frozenset(
    {"add", "append", "appendleft", "insert", "setdefault", "update", "extend"}
)
_TAKE_METHODS = frozenset({"remove", "discard", "pop", "popleft", "popitem"})
_CONSTRUCTORS = frozenset({"__init__", "__post_init__", "__new__"})
# exceptions that end an iteration or a generator: caught, they say nothing of a failure
_FLOW_EXCEPTIONS = frozenset({"StopIteration", "StopAsyncIteration", "GeneratorExit"})
# the words of a flag that is held while something is under way (``_draining``,
# ``_refresh_in_progress``, ``_busy``), unlike a record of what was done (``_performed``)
_HELD_WORDS = frozenset(
    {"busy", "pending", "progress", "active", "locked", "held", "inflight", "waiting", "blocked"}
)
# hand-offs that defer the caller's cancellation until the thread has finished
_DEFERRING_HANDOFFS = frozenset({"anyio.to_thread.run_sync", "trio.to_thread.run_sync"})
_AWAITABLE_ANNOTATIONS = ("Awaitable", "Coroutine", "Future", "Task")


def _takes_stored_lock(analysis: Analysis, ctx: Ctx, ci: int, ev: Event) -> bool:
    """Is ``ev`` the entry of ``async with`` on the asyncio lock the change at ``ci`` stored,
    or on a lock of the object it stored? ``lock = self._key_locks.setdefault(key,
    asyncio.Lock()); async with lock:``, or ``child = Child(...); self._children[k] = child;
    async with child.lock:`` with a lock every ``Child`` makes for itself. A lock just made is
    held by nobody: taking it does not suspend, so no cancellation lands there; and where
    ``setdefault`` finds the key taken, the change changed nothing (mashpy's child registry,
    set 54; telepost's per-key publish locks, set 58, both false positives)."""
    if ev.kind != K.AWAIT or ev.name != "async with" or "(" in ev.ref or "[" in ev.ref:
        return False
    f = ctx.fn.facts
    change = f.events[ci]
    module = ctx.fn.module
    idx = analysis.index
    if change.kind == K.CALL and change.bind == Bind.LOCAL:
        # ``lock = self._key_locks.setdefault(key, asyncio.Lock())``
        if change.ref.rpartition(".")[2] != "setdefault" or change.name != ev.ref:
            return False
        made = change.args[1] if len(change.args) == 2 else ""
        return made.endswith("()") and idx.resolve(module, made[:-2]) in ASYNCIO_LOCKS
    value = change.value
    if change.kind not in (K.WRITE, K.SETITEM) or value is None or value.kind != "name":
        return False
    head, dot, attr = ev.ref.partition(".")
    if head != value.ref or not dot or "." in attr:
        return False
    # the local's binding that reaches the change: a constructor call of a project class
    b = next(
        (
            j
            for j in range(ci - 1, -1, -1)
            if f.events[j].kind == K.LOCAL and f.events[j].ref == head
        ),
        -1,
    )
    binding = f.events[b].value if b >= 0 else None
    if binding is None or binding.kind != "call":
        return False
    cls = idx.classes.get(idx.resolve(module, binding.ref))
    if cls is None or attr not in cls.facts.fields:
        return False
    made = cls.facts.attr_types.get(attr + "()", "")  # ``field(default_factory=asyncio.Lock)``
    if not made or idx.resolve(cls.module, made) not in ASYNCIO_LOCKS:
        return False
    # the constructor's call (the binding's value) is not handed a lock of the caller's for it
    call = next((e for e in reversed(f.events[:b]) if e.kind == K.CALL and e.name == head), None)
    return (
        call is not None
        and not any(a.partition("=")[0] == attr for a in call.args)
        and sum(not is_kw(a) for a in call.args) <= cls.facts.fields.index(attr)
    )


@dataclass(frozen=True, slots=True)
class _Op:
    """A change of shared state. ``put``: set, add, increment; else clear, remove, decrement.
    ``kind``: ``flag`` (an attribute assigned a constant), ``object`` (assigned anything
    else: a generation token, a handle), ``count`` (``+=``/``-=``, ``key`` the names of the
    amount), ``item`` (a
    container's key or element, ``key`` its ref when known), ``clear`` and ``set`` (an
    ``asyncio.Event``'s, or a container's ``clear()``)."""

    state: str
    put: bool
    kind: str = "flag"
    key: str = ""


def _shared(ref: str) -> bool:
    if not ref or "(" in ref or "[" in ref:
        return False
    if ref.startswith("global:"):
        return True
    return ref.startswith(("self.", "cls.")) and ref.count(".") >= 1


def state_op(ev: Event) -> _Op | None:
    """The change of shared state an event makes, if it makes one."""
    if ev.kind == K.WRITE and _shared(ev.ref):
        if ev.name:
            if ev.name in ("+=", "-="):
                # the names of the operand: ``+= 1`` and ``-= 1`` match, ``+= data_size`` and
                # ``-= size`` do not (a read consumes what another amount added)
                names = ev.value.names if ev.value is not None else ()
                return _Op(ev.ref, ev.name == "+=", "count", "names:" + ",".join(sorted(names)))
            return None
        v = ev.value
        if v is not None and v.kind == "const":
            return _Op(ev.ref, v.ref == "truthy")
        # (the local stored, ``monitor`` of ``self._monitor = monitor``: the object's own name)
        return _Op(ev.ref, True, "object", v.ref if v is not None and v.kind == "name" else "")
    if ev.kind in (K.SETITEM, K.DELITEM) and _shared(ev.ref):
        return _Op(ev.ref, ev.kind == K.SETITEM, "item", ev.args[0] if ev.args else "")
    if ev.kind == K.CALL and ev.ref:
        container, _, method = ev.ref.rpartition(".")
        if not ev.args and (
            (method == "acquire" and ev.bind in (Bind.AWAITED, Bind.ARG))
            or (method == "release" and ev.bind == Bind.NONE)
        ):
            # an asyncio lock or semaphore taken (awaited, also through ``wait_for``) and given
            # back: a slot held; ``key``, where it is taken (its own await is not one that
            # interrupts it). Also one read by a plain name (``SEM.acquire()``): shared when
            # the function does not bind the name (``_free_in``), asked where it is taken
            if _shared(container) or (
                container.isidentifier() and container not in ("self", "cls")
            ):
                return _Op(container, method == "acquire", "slot", ",".join(map(str, ev.pos)))
            return None
        if not _shared(container):
            return None
        key = ev.args[0] if ev.args and not is_kw(ev.args[0]) else ""
        if key == "const":
            key = ""
        if method in _PUT_METHODS:
            return _Op(container, True, "item", key)
        if method in _TAKE_METHODS:
            return _Op(container, False, "item", key)
        if method in ("clear", "set") and not ev.args:
            return _Op(container, method == "set", method)
    return None


def _free_in(f: FunctionFacts, name: str) -> bool:
    """Does ``f`` read ``name`` from outside (a module variable, an import, a variable of
    the enclosing function), binding it nowhere: no parameter, assignment, ``for`` or ``with
    ... as`` of its own?"""
    if any(p.name == name for p in f.params):
        return False
    return not any(e.kind == K.LOCAL and e.ref == name for e in f.events)


def _shared_local(analysis: Analysis, ctx: Ctx, name: str) -> tuple[int, str] | None:
    """Is the plain name ``name`` a lock or semaphore shared beyond this call: one the
    function binds nowhere (:func:`_free_in`), or a local it only ever takes from the
    object's or the module's state, as an alias (``sem = self._sem``), an entry of a
    registry (``lock = self._locks[key]``, ``self._locks.setdefault(key, Lock())``) or
    what a getter of the object returns (``sem = self._get_semaphore()``, whose every
    ``return`` is ``self._semaphore``)? A parameter, or a local bound anywhere to anything
    else (a new lock, a call of unknown result), is not. The answer: the binding's event
    and where the lock comes from (``-1``, ``""`` for a name bound nowhere), or ``None``."""
    f = ctx.fn.facts
    if any(p.name == name for p in f.params):
        return None
    events = f.events
    found = (-1, "")  # (bound nowhere: ``_free_in``, the parameters ruled out above)
    for i, e in enumerate(events):
        if e.kind != K.LOCAL or e.ref != name:
            continue
        v = e.value
        source = ""
        if v is None:
            return None
        if v.kind == "attr" and _shared(v.ref):
            source = v.ref
        elif v.kind == "call":
            container, _, method = v.ref.rpartition(".")
            if _shared(container) and method in ("get", "setdefault"):
                source = f"{container}.{method}()"
            else:
                targets = analysis.index.callable_targets(ctx, v.ref)
                if targets and all(returned_self_attr(t[0]) for t in targets):
                    source = f"{v.ref}()"
        elif v.kind == "other" and i:
            # a subscript of shared state (``self._locks[key]``): the value's reads, on the
            # binding's line, with no call among them; the first shared one is the container
            j = i - 1
            while j >= 0 and events[j].pos[0] == e.pos[0] and events[j].kind == K.READ:
                j -= 1
            calls = j >= 0 and events[j].pos[0] == e.pos[0] and events[j].kind == K.CALL
            read = next((r.ref for r in events[j + 1 : i] if _shared(r.ref)), "")
            if read and not calls:
                source = f"{read}[...]"
        if not source:
            return None
        if found[0] < 0:
            found = (i, source)
    return found


def _verbs(op: _Op) -> tuple[str, str, str]:
    """How a finding words ``op``: (made, put back, left): a lock or semaphore is acquired,
    released, and stays held; other state is changed, undone, and stays changed."""
    if op.kind == "slot":
        return "acquired", "released", "stays held"
    return "changed", "undone", "stays changed"


def _undo_step(op: _Op) -> str:
    """The subject of the step that undoes ``op``."""
    return "the lock is released" if op.kind == "slot" else "the change is undone"


def _pos_of(key: str) -> Pos:
    a, b, c, d = (int(x) for x in key.split(","))
    return (a, b, c, d)


def _undoes(op: _Op, other: _Op, strict: bool = False) -> bool:
    """Does ``other`` undo ``op``? ``strict``: a container's element only by the same key
    (no ``clear()``, no element whose key is not known)."""
    if op.state != other.state or op.put == other.put:
        return False
    if op.kind == "item" and other.kind == "clear":
        return not strict
    if op.kind in ("clear", "set") or other.kind in ("clear", "set"):
        return {op.kind, other.kind} == {"clear", "set"}
    kinds = {op.kind, other.kind}
    if kinds <= {"flag", "object"}:
        return True
    if op.kind != other.kind:
        return False
    if op.kind == "item":
        if strict:
            return bool(op.key) and op.key == other.key
        return not op.key or not other.key or op.key == other.key
    if op.kind == "count":
        return op.key == other.key
    return True


def _acquire_like(op: _Op) -> bool:
    """A change that takes something (a slot, an entry, a flag held while work is under way;
    an ``Event`` cleared so that others wait) and is meant to be given back."""
    if op.kind == "flag":
        return op.put and _held_flag(op.state)
    return op.kind == "clear" or (op.put and op.kind in ("count", "item", "slot"))


def _held_flag(ref: str) -> bool:
    """``_draining``, ``_refresh_in_progress``, ``_busy``: a flag held while something is
    under way, not a record of something done (``_performed_join``, ``_started``)."""
    words = name_words(last_seg(ref.removeprefix("global:")))
    return bool(words) and (words[-1].endswith("ing") or any(w in _HELD_WORDS for w in words))


def _kept_on_cancel(f: FunctionFacts, ci: int, op: _Op) -> bool:
    """Does the function handle cancellation on purpose and leave ``op`` as it is: an
    ``except CancelledError`` (named) of a ``try`` that runs after the change, which swallows
    the cancellation and does not undo it (``except asyncio.CancelledError: log.debug(...)``)?
    Then the state that stays after a cancellation is the one its author chose."""
    after: set[int] | None = None
    for t in f.tries:
        if t.body_end <= ci:
            continue
        if not _in_body(t, ci):
            if after is None:
                after = reachable(f, [ci])
            if t.first not in after:
                continue  # (another branch's ``try``)
        for h in t.handlers:
            if not any(last_seg(x) == "CancelledError" for x in h.types if x):
                continue
            body = f.events[h.first : h.last]
            if any(e.kind == K.RAISE for e in body):
                continue
            if any((u := state_op(e)) is not None and _undoes(op, u) for e in body):
                continue
            return True
    return False


def _failure_keeps(f: FunctionFacts, aw: int, ui: int, op: _Op) -> bool:
    """Does a failed await leave ``op`` in place by design? The await at ``aw`` lies in a
    ``try`` with an ``except`` for ordinary errors (not ``CancelledError``, ``BaseException``
    or a bare ``except:``) that does not undo the change and does not come to the undo at
    ``ui``: the undo is inside that ``try``'s body (``self._connected.clear()``, connect,
    ``self._connected.set()``), or the handler leaves (``raise``, ``return``). A failed
    connect then leaves "not connected" as its author chose, and a cancelled one leaves the
    same state: nothing is left broken that an error would not leave broken too. Not when
    the await only waits (``asyncio.sleep``, ``event.wait()``): it fails by cancellation
    alone, and the handler is for the other calls of the ``try``."""
    if split_ref(f.events[aw].ref.removesuffix("()"))[-1:] in (["sleep"], ["wait"]):
        return False
    for t in f.tries:
        if not _in_body(t, aw):
            continue
        for h in t.handlers:
            if catches_cancel(h) or all(last_seg(x) in _FLOW_EXCEPTIONS for x in h.types):
                continue  # (the end of an iteration is no failure)
            body = f.events[h.first : h.last]
            if any((u := state_op(e)) is not None and _undoes(op, u) for e in body):
                continue
            if (ui >= 0 and _in_body(t, ui)) or any(e.kind in (K.RAISE, K.RETURN) for e in body):
                return True
    return False


def _undone_by_callers_choice(f: FunctionFacts, ci: int, aw: int, ui: int, op: _Op) -> bool:
    """Is the undo at ``ui`` made only when a parameter says so (``if completed:
    self._states.pop(msg_id)``), the other branch of that test leaving the function with the
    change in place? Then the state is kept across calls by design, until the call that ends
    it: a streaming message's buffer kept until its last fragment (vision-agents'
    conversation). A cancelled call leaves what a call with the other answer leaves."""
    events = f.events
    undos = {
        j
        for j, e in enumerate(events)
        if (u := state_op(e)) is not None and u.state == op.state and _undoes(op, u, strict=True)
    }
    after = reachable(f, [aw])
    for b, e in enumerate(events):
        if e.kind != K.BRANCH or not e.name.startswith("if:") or len(e.succ) != 2:
            continue
        if b not in after or ui in reachable(f, [aw], avoid={b}):
            continue  # (the test must stand between the await and the undo on every path)
        param = e.name.removeprefix("if:").removeprefix("not ")
        if any(
            x.kind == K.BRANCH
            and x.name.removeprefix("if:").removeprefix("not ") == param
            and x.name.startswith("if:")
            and ci not in reachable(f, [0], avoid={j})
            for j, x in enumerate(events)
            if j != b
        ):
            continue  # the change was made under the same test (``if wait: ...``): one answer
        for kept, undone in (e.succ, e.succ[::-1]):
            if ui != undone and ui not in reachable(f, [undone]):
                continue
            if kept in undos:
                continue
            ways = reachable(f, [kept], avoid=undos) | {kept}
            if any(events[j].kind == K.EXIT for j in ways):
                return True
    return False


def _own_loop_flag(analysis: Analysis, fn: Fn, ci: int, op: _Op) -> bool:
    """A flag the function raises and then only it reads, after raising it (``self.is_running
    = True; while self.is_running: ... await ...``): the control variable of its own loop. No
    other method of the class reads it, so once the task is cancelled nothing looks at it, and
    the next run raises it again before its loop reads it."""
    if op.kind != "flag" or not op.put or not op.state.startswith("self."):
        return False
    if op.state.count(".") != 1:
        return False
    idx = analysis.index
    cls = idx.method_fn(fn)
    if cls is None:
        return False
    f = fn.facts
    writes = [i for i, e in enumerate(f.events) if e.kind == K.WRITE and e.ref == op.state]
    free = reachable(f, [0], avoid=writes)  # what the entry reaches before any write
    own_reads = 0
    for other in idx.methods_of(idx.mro(cls)):
        for i, e in enumerate(other.facts.events):
            if e.kind != K.READ or e.ref != op.state:
                continue
            if other is not fn or i in free:
                return False
            own_reads += 1
    return own_reads > 0 and ci in writes


def _family_methods(analysis: Analysis, cls: str) -> list[Fn]:
    """The methods (not nested functions) of ``cls``, of its bases and of its subclasses."""
    idx = analysis.index
    return [m for m in idx.methods_of(idx.hierarchy(cls)) if m.facts.parent is None]


class _Family:
    """A class's family of methods (:func:`_family_methods`), with what
    :func:`_read_by_later_tasks` asks of it, each computed once: the methods that read an
    attribute, and where each method is referred to on ``self``."""

    __slots__ = ("_readers", "_refs", "methods", "uses")

    def __init__(self, methods: list[Fn], uses: dict[str, _Uses]) -> None:
        self.methods = methods
        self.uses = uses  # (``_uses_of``'s table, shared with ``_never_read``)
        self._readers: dict[str, list[Fn]] = {}
        self._refs: dict[str, list[tuple[Fn, int]]] | None = None

    def readers(self, state: str) -> list[Fn]:
        found = self._readers.get(state)
        if found is None:
            uses = self.uses
            found = self._readers[state] = [
                m for m in self.methods if state in _uses_of(m, uses)[2]
            ]
        return found

    def refs(self) -> dict[str, list[tuple[Fn, int]]]:
        """Method name -> where it is referred to on ``self``: (method, event index), a call
        or a call's argument, or a value stored (``self._handlers = [self._loop]``, ``h =
        self._loop``)."""
        if self._refs is not None:
            return self._refs
        refs: dict[str, list[tuple[Fn, int]]] = {}
        for m in self.methods:
            for i, e in enumerate(m.facts.events):
                if e.kind == K.CALL:
                    named: tuple[str, ...] = (
                        e.ref,
                        *(a.partition("=")[2] if is_kw(a) else a for a in e.args),
                    )
                elif e.value is not None and e.value.kind == "attr":
                    named = (e.value.ref,)
                else:
                    continue
                for r in named:
                    segs = split_ref(r.removesuffix("()"))
                    if len(segs) == 2 and segs[0] == "self":
                        refs.setdefault(segs[1], []).append((m, i))
        self._refs = refs
        return refs


def _read_by_later_tasks(
    analysis: Analysis,
    fn: Fn,
    ci: int,
    op: _Op,
    family_of: Callable[[str], _Family],
) -> bool:
    """A private flag the function raises before its start-up awaits that only the methods it
    starts after the change read (``self._running = True``, awaits, then
    ``create_task(self._loop())``, and ``while self._running:`` in ``_loop`` and in the private
    helpers only such methods call). A cancellation at those awaits leaves the flag with no
    reader: the readers have not started, and the next run raises it again before it starts
    them. A reader anything else may call (a public method, a property, a private method
    referred to elsewhere) is no such reader, nor is a read of the function's own before its
    write. ``family_of(cls)``: the class's :class:`_Family`, kept per class."""
    if op.kind != "flag" or not op.state.startswith("self.") or op.state.count(".") != 1:
        return False
    attr = split_ref(op.state)[1]
    if not attr.startswith("_") or attr.startswith("__"):
        return False
    idx = analysis.index
    cls = idx.method_fn(fn)
    if cls is None:
        return False
    f = fn.facts
    family = family_of(cls)
    # the readers first: one anything may call ends the question
    readers: list[Fn] = []
    for m in family.readers(op.state):
        if m is fn:
            writes = [i for i, e in enumerate(f.events) if e.kind == K.WRITE and e.ref == op.state]
            free = reachable(f, [0], avoid=writes)
            if any(
                e.kind == K.READ and e.ref == op.state and i in free for i, e in enumerate(f.events)
            ):
                return False  # read before it is raised
            continue
        name = m.facts.name
        if not name.startswith("_") or name.startswith("__") or is_property(m.facts):
            return False  # a public method, a dunder, a property: called from anywhere
        readers.append(m)
    if not readers:
        return False
    before = reachable(f, [0], avoid=[ci])  # what runs before the change, or without it
    refs = family.refs()
    started: set[str] = set()  # started (or called) only after the change, or by those
    grew = True
    while grew:
        grew = False
        for name, where in refs.items():
            if name in started or not name.startswith("_") or name.startswith("__"):
                continue
            if all(
                (m is fn and i not in before) or (m is not fn and m.facts.name in started)
                for m, i in where
            ):
                started.add(name)
                grew = True
    return all(m.facts.name in started for m in readers)


def _set_up_torn_down(analysis: Analysis, fn: Fn, op: _Op) -> bool:
    """Is ``op`` made by a set-up method of the object (``start``, ``connect``, ``open``: the
    ``lifecycle`` names that are no tear-down) and undone by its tear-down too (``stop``,
    ``close``: ``self.running = True`` in ``start``, ``self.running = False`` in ``stop``)?
    A start cancelled before its ``try`` leaves the object started half-way, which is the state
    its tear-down is written to take down, as it takes down one whose start completed. Not
    ``__aenter__``: when it raises, ``async with`` never runs ``__aexit__``."""
    name = fn.facts.name
    if fn.facts.parent is not None or name not in analysis.lifecycle or teardown_name(name):
        return False
    if name.startswith("__") or name == "main":
        return False  # (an ``__aenter__`` that raises is never followed by its ``__aexit__``)
    if not op.state.startswith("self.") or op.state.count(".") != 1:
        return False
    idx = analysis.index
    cls = idx.method_fn(fn)
    if cls is None:
        return False
    for other in idx.methods_of(idx.mro(cls)):
        if other is fn or other.facts.parent is not None or not teardown_name(other.facts.name):
            continue
        if any((u := state_op(e)) is not None and _undoes(op, u) for e in other.facts.events):
            return True
    return False


def _unread(
    analysis: Analysis, fn: Fn, op: _Op, never_read: Callable[[Analysis, Fn, str], bool]
) -> bool:
    """A container only added to and taken from, or a private counter, flag or value only ever
    changed (``self._waiters += 1`` ... ``self._waiters -= 1``, ``self._streaming = True`` ...
    ``False``), or a private ``Event`` only set and cleared (nobody waits for it or tests it),
    that nothing in its class reads: what a cancellation leaves changed there breaks
    nothing. A public counter, flag or value may be read by any user of the object: it is
    unread only where no module of the project reads an attribute of that name off another
    object (``self.client.streaming``, ``getattr(c, "streaming")``)."""
    if op.kind not in ("item", "count", "flag", "object", "clear", "set"):
        return False
    attr = last_seg(op.state)
    if op.kind != "item" and attr.startswith("__"):
        return False
    if op.kind != "item" and not attr.startswith("_") and analysis.attr_read_off_others(attr):
        return False
    return never_read(analysis, fn, op.state)


# a method's uses of attributes (``_never_read``): its events, the refs its calls pass on, and
# ref -> the indexes of the events that read it
_Uses = tuple[list[Event], frozenset[str], dict[str, list[int]]]


def _uses_of(fn: Fn, uses: dict[str, _Uses]) -> _Uses:
    events = fn.facts.events
    found = uses.get(fn.fq)
    if found is not None and found[0] is events:
        return found
    handed: set[str] = set()
    reads: dict[str, list[int]] = {}
    call, read = K.CALL, K.READ
    for i, e in enumerate(events):
        if e.kind == call:
            handed.update(e.args)
        elif e.kind == read:
            reads.setdefault(e.ref, []).append(i)
    found = uses[fn.fq] = (events, frozenset(handed), reads)
    return found


def _never_read(
    analysis: Analysis, fn: Fn, state: str, uses: dict[str, _Uses] | None = None
) -> bool:
    """Is ``state`` (``self.<attr>`` of a container or a counter) only ever added to and taken
    from, never read (iterated, looked up, tested, passed on) by the class, its bases or its
    subclasses (a subclass's methods run on the same object)? Then an entry a
    cancellation leaves behind breaks nothing: nobody looks at it (``self.clients.append(c)``
    ... ``self.clients.remove(c)`` with no reader; ``self._n += 1`` ... ``self._n -= 1``).
    A tear-down method (``close``, ``__aexit__``) that goes through the entries to release them
    is no reader: what a cancellation leaves there is what it is written to find. ``uses``
    keeps each method's reads by attribute (:func:`_uses_of`) between the questions about one
    class's attributes: the methods are walked in the same order, so the same method ends the
    search (and the same modules are noted as read)."""
    if not state.startswith("self.") or state.count(".") != 1:
        return False
    idx = analysis.index
    cls = idx.method_fn(fn)
    if cls is None:
        return False
    mutators = _PUT_METHODS | _TAKE_METHODS | {"clear"}
    if uses is None:
        uses = {}
    for other in idx.methods_of(idx.hierarchy(cls)):  # (a subclass's methods run on it too)
        if other.facts.parent is None and teardown_name(other.facts.name):
            continue  # the owner's tear-down looks through what is left, to release it
        events, handed, reads = _uses_of(other, uses)
        if state in handed:
            return False  # handed on
        for i in reads.get(state, ()):
            nxt = events[i + 1] if i + 1 < len(events) else None
            if nxt is not None and (
                (
                    nxt.kind == K.CALL
                    and nxt.ref.rpartition(".")[0] == state
                    and nxt.ref.rpartition(".")[2] in mutators
                    and nxt.bind == Bind.NONE  # (``fut = self._pending.pop(k)`` reads)
                )
                or (  # an ``Event`` only set and cleared: nobody waits for it or tests it
                    nxt.kind == K.CALL
                    and nxt.ref == state + ".set"
                    and not nxt.args
                    and nxt.bind == Bind.NONE
                )
                or (nxt.kind in (K.SETITEM, K.DELITEM) and nxt.ref == state)
                or (nxt.kind == K.WRITE and nxt.ref == state and nxt.name in ("+=", "-="))
                or _tested_to_take(events, i + 1, state)
                or _tested_to_change(events, i + 1, state)
            ):
                continue  # read only to change it
            return False
    return True


def _hands_out_own(analysis: Analysis, cls: str) -> bool:
    """Does a method of the class pass one of the object's own methods on (``self._watch``,
    ``self._watch()``: to a spawner, a gather, a registration), where it may run in another
    task than the caller's?"""
    idx = analysis.index
    classes = idx.mro(cls)
    methods = list(idx.methods_of(classes))
    names = {m.facts.name for m in methods if not is_property(m.facts)}  # (a property: a value)
    for m in methods:
        for e in m.facts.events:
            if e.kind != K.CALL:
                continue
            for a in e.args:
                ref = a.partition("=")[2] if is_kw(a) else a
                segs = split_ref(ref)
                if len(segs) == 2 and segs[0] == "self" and segs[1].rstrip("()") in names:
                    return True
    return False


def _fresh_key_entry(analysis: Analysis, fn: Fn, ci: int, op: _Op) -> bool:
    """An entry put under a key this call has just drawn at random (``ping =
    struct.pack("!I", random.getrandbits(32)); self._pings[ping] = Event()``, ``uuid4()``,
    ``secrets.token_hex()``) or from a counter it has just advanced (``self._seq += 1; rid =
    f"perm_{self._seq}"``) in a container its class only looks up by key (never iterates,
    sizes or hands on whole): no other call will ever ask for that key, so an entry a
    cancellation leaves behind is one nobody sees (a leak of one entry, not a broken state)."""
    if op.kind != "item" or not op.put or not op.key.isidentifier():
        return False
    if not op.state.startswith("self.") or op.state.count(".") != 1:
        return False
    events = fn.facts.events
    at_key = next(
        (j for j in range(ci - 1, -1, -1) if events[j].kind == K.LOCAL and events[j].ref == op.key),
        -1,
    )
    value = events[at_key].value if at_key >= 0 else None
    if value is None:
        return False
    segs = [seg.rstrip("()") for seg in split_ref(value.ref)]
    if not (
        (
            value.kind in ("call", "attr")
            and (
                _RANDOM_CALLS.intersection(segs)
                or (segs and segs[0] in _RANDOM_MODULES)
                or _RANDOM_MODULES.intersection(value.names)
            )
        )
        or _from_advanced_counter(events, at_key)
    ):
        return False  # (``uuid.uuid4().hex``, ``struct.pack("!I", random.getrandbits(32))``)
    idx = analysis.index
    cls = idx.method_fn(fn)
    if cls is None:
        return False
    whole = {op.state, *(f"{op.state}.{m}()" for m in ("values", "items", "keys"))}
    for m in idx.methods_of(idx.mro(cls)):
        events = m.facts.events
        # a method that goes through the entries and then empties the container releases
        # them (``for w in self._waiting.values(): w.set_exception(...)``, then
        # ``self._waiting.clear()``, when the connection ends): a leftover entry is released
        # with the others, as the tear-down is written to do
        empties = any(e.kind == K.CALL and e.ref == op.state + ".clear" for e in events)
        for e in events:
            if e.kind == K.LOCAL and e.value is not None and e.value.kind in ("iter", "other"):
                # (a loop variable; each name of an unpacked one, ``for k, (m, w) in
                # self._waiting.items()``, holds a part of the element: kind "other")
                if e.value.ref in whole and not empties:
                    return False  # iterated
            elif e.kind == K.CALL and op.state in e.args:
                return False  # handed on whole: ``len(self._pings)``, ``list(...)``
    return True


def _waitable_only_this_call_waits_on(
    analysis: Analysis, fn: Fn, ci: int, op: _Op, family: Callable[[str], _Family]
) -> bool:
    """A slot given a waitable made for this call (``self._loaded = asyncio.Event()``,
    ``self._fut = loop.create_future()``, directly or through a local) that no other method of
    the class's family waits on (no ``await`` of it, of its ``wait()``, or of a local holding
    it, ``wait_for`` and ``shield`` included) and that none reads in a method that raises
    (where its presence may turn a caller away): left behind by a cancellation, it is set or
    resolved by whoever signals it, and nobody waits on it; the next call puts a new one
    there before it waits (agent-runtimes' page loads, set 117)."""
    if op.kind != "object" or not op.put:
        return False
    state = op.state
    if not state.startswith("self.") or state.count(".") != 1:
        return False
    events = fn.facts.events
    v = events[ci].value
    if v is not None and v.kind == "name":
        made = next(
            (
                e.value
                for e in reversed(events[:ci])
                if e.kind == K.LOCAL and e.ref == v.ref and e.value is not None
            ),
            None,
        )
        v = made
    if v is None or v.kind != "call" or v.ref.rpartition(".")[2].rstrip("()") not in _WAITABLES:
        return False  # (a callee with no name, ``(make or Event)()``, has the ref "")
    cls = analysis.index.method_fn(fn)
    if cls is None:
        return False
    waited = {state, state + ".wait", state + ".wait()"}
    for m in family(cls).methods:
        if m.fq == fn.fq:
            continue
        mev = m.facts.events
        if not any(
            state in (e.ref, e.ref.rpartition(".")[0])
            or (e.value is not None and e.value.ref == state)
            for e in mev
        ):
            continue
        if any(e.kind == K.RAISE for e in mev):
            return False  # (a presence that may turn a caller away)
        held = waited | {
            e.ref for e in mev if e.kind == K.LOCAL and e.value is not None and e.value.ref == state
        }
        held |= {h + ".wait" for h in held} | {h + ".wait()" for h in held}
        for e in mev:
            if e.kind == K.AWAIT and e.ref in held:
                return False
            if e.kind == K.CALL and e.bind == Bind.AWAITED and (held & set(e.args)):
                return False  # (``await asyncio.wait_for(self._fut, 5)``, ``shield(...)``)
    return True


# the calls that make something to wait on (an ``asyncio.Event``, a future)
_WAITABLES = frozenset({"Event", "Future", "create_future"})


def _from_advanced_counter(events: list[Event], at: int) -> bool:
    """Is the local assigned at event ``at`` made of a counter on ``self`` that the function
    advanced before (``self._seq += 1``, then ``rid = self._seq`` or ``f"perm_{self._seq}"``):
    a number no earlier call had?"""
    reads: set[str] = set()
    j = at - 1
    while j >= 0 and events[j].kind == K.READ:  # (the reads of the assigned expression)
        reads.add(events[j].ref)
        j -= 1
    value = events[at].value
    if value is not None and value.kind == "attr":
        reads.add(value.ref)
    counters = {r for r in reads if r.startswith("self.") and r.count(".") == 1}
    return any(e.kind == K.WRITE and e.ref in counters and e.name == "+=" for e in events[:at])


def _lock_left_unlocked(analysis: Analysis, fn: Fn, op: _Op) -> bool:
    """An asyncio lock (or semaphore) put under a key into a registry of locks
    (``lock = self._locks.get(k)``; ``if lock is None: lock = asyncio.Lock();
    self._locks[k] = lock``; ``async with lock: ...``; ``del self._locks[k]``): a cancellation
    that skips the removal leaves an unlocked lock (``async with`` released it), which the next
    caller for that key takes and uses as a new one would be used. One entry is left, no state
    is broken. Not a condition or an event, whose waiters wait for a wake-up that nobody left
    behind will give."""
    if op.kind != "item" or not op.put:
        return False
    segs = split_ref(op.state)
    if len(segs) != 2 or segs[0] != "self":
        return False
    cls = analysis.index.method_fn(fn)
    if cls is None:
        return False
    info = analysis.locks.registry(cls, segs[1])
    if info is None or info.kind != "async":
        return False
    return info.type_fq.rpartition(".")[2] in ("Lock", "Semaphore", "BoundedSemaphore")


# the task groups, whose ``async with`` entry does not suspend (their exit waits for the tasks)
_TASK_GROUPS = frozenset({"asyncio.TaskGroup", "anyio.create_task_group", "trio.open_nursery"})
# calls and modules that draw a fresh random key
_RANDOM_CALLS = frozenset(
    {"uuid1", "uuid4", "urandom", "token_hex", "token_bytes", "token_urlsafe", "getrandbits"}
    | {"randbytes"}
)
_RANDOM_MODULES = frozenset({"random", "secrets", "uuid"})


def _after_test(
    events: list[Event], b: int, state: str, kinds: tuple[str, ...]
) -> tuple[Event, str] | None:
    """The event that comes first where branch ``b``'s test of ``state`` (of a kind in
    ``kinds``; a membership test only with its key known) holds, past no-ops and reads of
    ``state``, with the test's key; None if there is no such test or the way forks."""
    ev = events[b]
    if ev.kind != K.BRANCH or len(ev.succ) < 2:
        return None
    for g in ev.guards:
        ref, absent, kind, key = g.split("|")
        if ref != state or kind not in kinds or (kind == "in" and not key):
            continue
        i = ev.succ[1 - int(absent)]
        while events[i].kind == K.NOP or (events[i].kind == K.READ and events[i].ref == state):
            if len(events[i].succ) != 1:
                return None
            i = events[i].succ[0]
        return events[i], key
    return None


def _tested_to_change(events: list[Event], b: int, state: str) -> bool:
    """``if self._idle: self._idle.clear()`` (or ``is not None``): a test that the attribute
    holds an object, whose only use is to change that object (an ``Event`` set or cleared, a
    container added to or taken from, the result dropped): the test reads nothing a
    cancellation could have left wrong."""
    found = _after_test(events, b, state, ("truthy", "none"))
    if found is None:
        return False
    e = found[0]
    container, _, method = e.ref.rpartition(".")
    return (
        e.kind == K.CALL
        and e.bind == Bind.NONE
        and container == state
        and (method in _PUT_METHODS | _TAKE_METHODS | {"clear"} or (method == "set" and not e.args))
    )


def _tested_to_take(events: list[Event], b: int, state: str) -> bool:
    """``if key in self._d: del self._d[key]`` (or ``.pop(key)``/``.remove(key)``, the result
    dropped): a membership test whose only use is to take the key out, the same as
    ``self._d.pop(key, None)``."""
    found = _after_test(events, b, state, ("in",))
    if found is None:
        return False
    e, key = found
    if e.kind == K.DELITEM and e.ref == state and e.args[:1] == (key,):
        return True
    return (
        e.kind == K.CALL
        and e.bind == Bind.NONE
        and e.ref.rpartition(".")[0] == state
        and e.ref.rpartition(".")[2] in _TAKE_METHODS
        and e.args[:1] == (key,)
    )


def _stack_undoes(analysis: Analysis, ctx: Ctx, i: int, op: _Op) -> bool:
    """Is the await at ``i`` inside ``async with stack:`` (or ``with``) of an exit stack that
    was given, before the block, a callback that undoes ``op`` (``stack.callback(clear)``
    where ``def clear(): self._ws = None``)? Closing the stack runs it on every exit of the
    block, a cancellation's too: the ``finally`` of an ``ExitStack``."""
    f = ctx.fn.facts
    for rid in f.events[i].regions:
        region = f.regions[rid]
        for e in f.events[: region.first]:
            if e.kind != K.CALL or not e.args:
                continue
            recv, _, last = e.ref.rpartition(".")
            if recv != region.ref or last not in EXIT_STACK_CALLBACKS:
                continue
            for t, _c, _fv in analysis.index.callable_targets(ctx, e.args[0]):
                if any(
                    (other := state_op(ev)) is not None and _undoes(op, other)
                    for ev in t.facts.events
                ):
                    return True
    return False


def _in_body(t: Try, i: int) -> bool:
    return t.first <= i < t.body_end


def _restoring_events(f: FunctionFacts, t: Try) -> Iterator[int]:
    """The events that run when a cancellation reaches ``t``: its ``finally`` and the
    handlers that catch ``CancelledError``."""
    if t.final_first >= 0:
        yield from range(t.final_first, t.final_last)
    for h in t.handlers:
        if catches_cancel(h):
            yield from range(h.first, h.last)


def _restores(f: FunctionFacts, t: Try, op: _Op) -> int:
    """The event of ``t``'s ``finally``/cancellation handlers that undoes ``op``, or -1."""
    for j in _restoring_events(f, t):
        other = state_op(f.events[j])
        if other is not None and _undoes(op, other):
            return j
    return -1


def _writes(f: FunctionFacts, t: Try, state: str) -> bool:
    return any(
        f.events[j].kind == K.WRITE and f.events[j].ref == state for j in _restoring_events(f, t)
    )


def _inside_call(f: FunctionFacts, i: int, last: tuple[str, ...]) -> int:
    """The call (its last name in ``last``) that event ``i``, an argument call, is passed to:
    its event index, or -1."""
    ev = f.events[i]
    if ev.bind != Bind.ARG:
        return -1
    pos = ev.pos
    for j in range(i + 1, len(f.events)):
        e = f.events[j]
        if e.kind != K.CALL or not inside(pos, e.pos):
            continue
        if split_ref(e.ref)[-1:] and last_seg(e.ref) in last:
            return j
        if e.bind != Bind.ARG:
            return -1
        pos = e.pos
    return -1


def _shields_itself(analysis: Analysis, ctx: Ctx, ref: str) -> bool:
    """Is ``ref`` (``self.pool.release``) a library method that runs its work under an
    ``asyncio.shield`` of its own (:data:`SELF_SHIELDING`), judged by its receiver's type?"""
    recv, _, name = ref.rpartition(".")
    if not recv or "(" in recv:
        return False
    val = analysis.index.eval(ctx, recv)
    return isinstance(val, Inst) and f"{val.fq}.{name}" in SELF_SHIELDING


def shielded(f: FunctionFacts, i: int) -> bool:
    """Is the call at ``i`` run inside ``asyncio.shield(...)``?"""
    return _inside_call(f, i, ("shield",)) >= 0


_CANCEL_TYPES = frozenset({"CancelledError", "BaseException"})


def _cancel_suppressed(analysis: Analysis, ctx: Ctx, i: int) -> bool:
    """Is event ``i`` inside ``with contextlib.suppress(...)`` of ``CancelledError`` (or
    ``BaseException``)? A cancellation delivered there is swallowed at the block's end, and
    the function goes on to what follows: it skips nothing after the block."""
    f = ctx.fn.facts
    for r in f.regions:
        if r.is_async or not r.first <= i < r.last or not r.ref.endswith("suppress()"):
            continue
        if analysis.index.resolve(ctx.fn.module, r.ref[:-2]) != "contextlib.suppress":
            continue
        call = next((e for e in f.events[: r.first] if e.kind == K.CALL and e.pos == r.pos), None)
        if call is not None and any(
            last_seg(a) in _CANCEL_TYPES for a in call.args if not is_kw(a)
        ):
            return True
    return False


def _in_loop(events: list[Event], head: int, i: int) -> bool:
    """Is event ``i`` inside the loop whose head (the target of its back edges) is ``head``?"""
    if head < 0 or i <= head:
        return False
    end = max((j for j, e in enumerate(events) if j > head and head in e.succ), default=head)
    return i <= end


def _told_incomplete(f: FunctionFacts, t: Try, i: int, told: tuple[str, ...]) -> bool:
    """Is the call that returns the resource in ``finally`` handed a local flag that says
    whether the exchange completed (``reusable = False`` before the ``try``, ``reusable =
    self._is_reusable(...)`` only after the await ``i``; ``self._release(conn, reusable)``)?
    A cancellation at ``i`` then hands it a falsy flag: a release told so closes the
    connection instead of pooling it (why else is it told)."""
    for arg in told:
        name = arg.partition("=")[2] if is_kw(arg) else arg
        if not name.isidentifier():
            continue
        binds = [(j, e) for j, e in enumerate(f.events) if e.kind == K.LOCAL and e.ref == name]
        before = [e for j, e in binds if j < t.first]
        later = [j for j, e in binds if j >= t.first]
        if (
            before
            and later
            and all(e.value is not None and e.value.ref == "falsy" for e in before)
            and all(i < j < t.body_end for j in later)
        ):
            return True
    return False


def _try_line(t: Try) -> Pos:
    return (t.pos[0], t.pos[1], t.pos[0], t.pos[1] + 3)


class StateBrokenByCancellation:
    code = CODE

    def __init__(self) -> None:
        # (class, ``self.<attr>``) -> ``_never_read``: asked for every function of the class
        self._unread: Memo[tuple[str, str], bool] | None = None
        # method -> its uses of attributes (``_uses_of``), for the questions of ``_never_read``
        self._uses: dict[str, _Uses] = {}
        # class -> its family of methods, and what ARC006 asks of it (``_Family``)
        self._families: Memo[str, _Family] | None = None

    def _family(self, analysis: Analysis, cls: str) -> _Family:
        """:class:`_Family` of ``cls``, kept per class (its reads are the class's)."""
        if self._families is None:
            self._families = Memo(analysis.tracker)
        found = self._families.get(cls)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        family = _Family([], self._uses)
        self._families.start(cls, family)
        family.methods = _family_methods(analysis, cls)
        return self._families.finish(cls, family)

    def _never_read(self, analysis: Analysis, fn: Fn, state: str) -> bool:
        """:func:`_never_read`, kept per class (its answer and its reads are the class's)."""
        cls = analysis.index.method_fn(fn)
        if cls is None or not state.startswith("self.") or state.count(".") != 1:
            return False
        if self._unread is None:
            self._unread = Memo(analysis.tracker)
        key = (cls, state)
        found = self._unread.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._unread.start(key, False)
        return self._unread.finish(key, _never_read(analysis, fn, state, self._uses))

    def _left_harmless(self, analysis: Analysis, fn: Fn, ci: int, op: _Op) -> bool:
        """Is what a cancellation leaves of ``op`` harmless or chosen: kept on purpose, read by
        nobody, a loop's own flag or one read only by the tasks started after it, an entry under a fresh random key, an unlocked lock of a
        registry (the shapes of committed state that are no finding, asked by both forms)."""
        return (
            _kept_on_cancel(fn.facts, ci, op)
            or _unread(analysis, fn, op, self._never_read)
            or _own_loop_flag(analysis, fn, ci, op)
            or _read_by_later_tasks(analysis, fn, ci, op, lambda c: self._family(analysis, c))
            or _fresh_key_entry(analysis, fn, ci, op)
            or _lock_left_unlocked(analysis, fn, op)
            or _waitable_only_this_call_waits_on(
                analysis, fn, ci, op, lambda c: self._family(analysis, c)
            )
        )

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        likely = analysis.settings.strictness == "likely"
        for fn in module_functions(analysis, module):
            f = fn.facts
            if not any(e.kind in (K.AWAIT, K.CALL) for e in f.events):
                continue
            seen: set[Pos] = set()
            # (each finding, and whether it is a change of plain state: see ASSUMED_CLAUSE)
            found = [
                *((d, False) for d in self._token(analysis, fn)),
                *(_one_per_await(list(self._commit(analysis, fn))) if f.is_async else ()),
                *((d, False) for d in (self._pool(analysis, fn) if f.is_async else ())),
                *((d, False) for d in (self._thread_acquire(analysis, fn) if f.is_async else ())),
                *((d, False) for d in (self._handed_future(analysis, fn) if f.is_async else ())),
            ]
            who = analysis.canceller(fn) if found else None
            if who is None and not likely:
                continue  # nothing in the project shows what can cancel it: ``likely`` only
            for d, plain in found:
                key = (d.span.start.row, d.span.start.column, d.span.end.row, d.span.end.column)
                if key in seen:
                    continue
                if who is None:
                    d = dataclasses.replace(d, message=d.message + LIKELY_CLAUSE)
                elif plain and who.assumed:
                    if not likely:
                        continue  # a plain change, and its canceller only assumed
                    d = with_step(
                        dataclasses.replace(d, message=d.message + ASSUMED_CLAUSE), who.step
                    )
                else:
                    d = with_step(d, who.step)
                seen.add(key)
                yield d

    # -- shared state of a per-call object dies with the call ------------------------------
    @staticmethod
    def _owned_by_call(analysis: Analysis, fn: Fn, state: str) -> bool:
        """Is the changed state on an object that the call which made it owns, so that a
        cancellation that reaches this method's task discards the object with the call? A
        class whose every instance the project makes into a local that stays there (a flow
        run's engine, ``engine = Engine(...)``, ``async with engine.start(): ...``), and
        that runs none of its own methods in other tasks (``create_task(self._watch())``,
        a bound method handed out as a callback): those would outlive a cancellation."""
        if not state.startswith(("self.", "cls.")):
            return False
        cls = analysis.index.method_fn(fn)
        if cls is None:
            return False
        if analysis.per_call_class(cls):
            return True
        return analysis.per_call_class(cls, public=True) and not _hands_out_own(analysis, cls)

    # -- 1. take-and-clear of an ownership token -------------------------------------------
    def _token(self, analysis: Analysis, fn: Fn) -> Iterator[Diagnostic]:
        f = fn.facts
        ctx = analysis.ctx(fn)
        events = f.events
        for li, take in enumerate(events):
            v = take.value
            if take.kind != K.LOCAL or v is None or v.kind not in ("attr", "name"):
                continue
            state, tok = v.ref, take.ref
            if not _shared(state):
                continue
            if not any(e.kind == K.WRITE and e.ref == state for e in events[li + 1 :]):
                continue  # never cleared after the take
            after_take = reachable(f, [li])
            for wi in sorted(after_take):
                w = events[wi]
                if not (
                    w.kind == K.WRITE
                    and w.ref == state
                    and not w.name
                    and not w.in_except
                    and w.value is not None
                    and w.value.kind == "const"
                    and w.value.ref != "truthy"
                    and wi > li
                ):
                    continue
                d = self._token_release(analysis, ctx, fn, li, wi, state, tok)
                if d is not None:
                    if not self._owned_by_call(analysis, fn, state):
                        yield d
                    break

    def _token_release(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, li: int, wi: int, state: str, tok: str
    ) -> Diagnostic | None:
        f = fn.facts
        events = f.events
        for ci in sorted(reachable(f, [wi])):
            c = events[ci]
            if ci <= wi or c.kind != K.CALL or c.ref.startswith(tok + "."):
                continue
            if not any(a == tok or (is_kw(a) and a.partition("=")[2] == tok) for a in c.args):
                continue
            await_at = self._awaited(analysis, ctx, fn, ci)
            if await_at is None:
                continue
            callee = last_seg(c.ref) if c.ref else ""
            if not (
                _RELEASE_WORDS.intersection(name_words(callee))
                or _RELEASE_WORDS.intersection(name_words(f.name))
            ):
                continue
            if shielded(f, ci) or any(_in_body(t, ci) and _writes(f, t, state) for t in f.tries):
                return None
            if _shields_itself(analysis, ctx, c.ref):
                return None  # (asyncpg's ``Pool.release``: the release completes regardless)
            targets = analysis.targets(ctx, c)
            inner: tuple[Step, ...] = ()
            if targets:
                cancellable = [
                    s
                    for t, tc in targets
                    if (s := analysis.suspends(Ctx(t, tc.recv))) is not None or not t.facts.is_async
                ]
                if not cancellable:
                    return None  # the release never suspends, or only under a shield
                inner = cancellable[0] or ()
            what = shown(state)
            steps = [
                fn_step(fn, at(events[li]), f"`{tok}` takes the token from `{what}`"),
                fn_step(
                    fn, at(events[wi]), f"`{what}` is cleared: from here on only `{tok}` owns it"
                ),
                fn_step(
                    fn,
                    await_at,
                    f"the release that needs `{tok}` is awaited here: a cancellation here "
                    "loses the token before the release is done",
                ),
                *inner[-1:],
                fn_step(
                    fn,
                    at(events[wi]),
                    f"no `except (CancelledError | BaseException)` or `finally` puts `{what}` "
                    "back, and no `asyncio.shield` protects the release",
                ),
            ]
            msg = (
                f"`{what}` is cleared before the awaited `{callee}` that needs it (as `{tok}`) "
                "to release what it owns; if the task is cancelled during that await, the "
                "release does not complete and no one holds the token any more: what it owns "
                "stays taken, with no owner left to release it"
            )
            return make(CODE, fn.module.path, at(events[wi]), msg, steps, FIX_TOKEN)
        return None

    @staticmethod
    def _awaited(analysis: Analysis, ctx: Ctx, fn: Fn, ci: int) -> Pos | None:
        """Where the coroutine a call makes is awaited (here or, for a plain function that
        returns it, by its caller), or None."""
        f = fn.facts
        c = f.events[ci]
        if c.bind == Bind.AWAITED:
            nxt = f.events[ci + 1] if ci + 1 < len(f.events) else None
            return nxt.pos if nxt is not None and nxt.kind == K.AWAIT else at(c)
        if c.bind == Bind.ARG:
            outer = _inside_call(f, ci, ("wait_for", "shield", "timeout", "gather"))
            if outer >= 0 and f.events[outer].bind == Bind.AWAITED:
                return at(f.events[outer])
            return None
        if c.bind == Bind.RETURNED:
            if f.is_async or f.returns_annotation.rsplit(".", 1)[-1] in _AWAITABLE_ANNOTATIONS:
                return at(c)
            targets = analysis.targets(ctx, c)
            if targets and all(t.facts.is_async for t, _c in targets):
                return at(c)
        return None

    # -- 2. acquire-like state committed before the protecting try ---------------------------
    def _commit(self, analysis: Analysis, fn: Fn) -> Iterator[tuple[Diagnostic, bool]]:
        """The findings of shape 2, each with whether its state is plain (not a lock or
        semaphore taken, not an ``Event`` cleared for others to wait on: see
        ``ASSUMED_CLAUSE``)."""
        f = fn.facts
        ctx = analysis.ctx(fn)
        events = f.events
        for ci, c in enumerate(events):
            op = state_op(c)
            if op is None or c.in_except or self._in_restoring(f, ci):
                continue
            binding = (-1, "")  # a lock taken through a local: where it comes from
            if op.kind == "slot" and "." not in op.state:
                shared = _shared_local(analysis, ctx, op.state)
                if shared is None:
                    continue  # a lock of this call's own (a local or a parameter): not shared
                binding = shared
            d = (
                self._before_try(analysis, ctx, fn, ci, op)
                or self._undone_after(analysis, ctx, fn, ci, op)
                or self._released_on_failure(analysis, ctx, fn, ci, op)
            )
            if (
                d is not None
                and not self._owned_by_call(analysis, fn, op.state)
                and not analysis.canceller_restores(fn, op.state)
            ):
                if binding[0] >= 0:
                    step = fn_step(
                        fn,
                        events[binding[0]].pos,
                        f"`{op.state}` comes from `{shown(binding[1])}` here: the calls share it",
                    )
                    d = with_first_step(d, step)
                yield d, op.kind not in ("slot", "clear")

    @staticmethod
    def _in_restoring(f: FunctionFacts, i: int) -> bool:
        return any(t.final_first <= i < t.final_last for t in f.tries)

    @staticmethod
    def _protected(f: FunctionFacts, i: int, op: _Op) -> bool:
        """Is the await at ``i`` inside a ``try`` whose ``finally``/cancellation handler
        undoes ``op``?"""
        return any(_in_body(t, i) and _restores(f, t, op) >= 0 for t in f.tries)

    @staticmethod
    def _interrupts(analysis: Analysis, ctx: Ctx, i: int, ev: Event, op: _Op) -> bool:
        """An await where a cancellation can interrupt ``op``'s section: not the changed
        object's own set-up (``self._group = create_task_group(); await
        self._group.__aenter__()``, or a set-up method, ``start``, ``connect``, of the local it
        was stored from: ``self._monitor = monitor; await monitor.start()``), not the entry of
        an ``async with`` on a task group (``asyncio.TaskGroup()``,
        ``anyio.create_task_group()``, ``trio.open_nursery()``: it does not suspend), not the
        exit of an ``async with`` on a lock (releasing an ``asyncio.Lock`` does not suspend),
        and not an await of a coroutine that never suspends (``await monitor.start()`` where
        ``start`` only calls ``create_task``): a cancellation is delivered only where the task
        suspends."""
        if ev.kind != K.AWAIT or ev.ref == op.state or ev.ref.startswith(op.state + "."):
            return False
        if op.kind == "slot" and op.key:
            prev = ctx.fn.facts.events[i - 1] if i else None  # (the call it awaits)
            span = prev.pos if prev is not None and prev.kind == K.CALL else ev.pos
            if inside(_pos_of(op.key), span):
                return False  # ``await asyncio.wait_for(self._slots.acquire(), 5)``: the taking
        if _cancel_suppressed(analysis, ctx, i):
            return False  # ``with suppress(CancelledError): await pending``: it goes on
        if op.kind == "object" and op.key and ev.ref.startswith(op.key + "."):
            method = ev.ref.removeprefix(op.key + ".")
            if method in analysis.lifecycle and not teardown_name(method):
                return False  # ``self._monitor = monitor; await monitor.start()``: its set-up
        if (
            ev.name == "async with"
            and ev.ref.endswith("()")
            and analysis.index.resolve(ctx.fn.module, ev.ref[:-2]) in _TASK_GROUPS
        ):
            return False  # entering a task group does not suspend (leaving it waits)
        return analysis.suspending(ctx, i)

    def _before_try(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, ci: int, op: _Op
    ) -> Diagnostic | None:
        f = fn.facts
        events = f.events
        if self._left_harmless(analysis, fn, ci, op) or _set_up_torn_down(analysis, fn, op):
            return None
        for t in f.tries:
            if t.first <= ci:
                continue
            ri = _restores(f, t, op)
            if ri < 0:
                continue
            aw = self._await_before(analysis, ctx, ci, op, t.first)
            if aw < 0 or _failure_keeps(f, aw, -1, op):
                continue
            what = shown(op.state)
            changed, _undone, stays = _verbs(op)
            aw_ev = events[aw]
            steps = [
                fn_step(fn, at(events[ci]), f"`{what}` is {changed} here"),
                fn_step(
                    fn,
                    aw_ev.pos,
                    f"{aw_ev.name}: a cancellation here raises before the `try` is entered",
                ),
                fn_step(fn, _try_line(t), "the `try` that protects the change starts only here"),
                fn_step(
                    fn,
                    at(events[ri]),
                    f"{_undo_step(op)} here, but only once the `try` has been entered",
                ),
            ]
            msg = (
                f"`{what}` is {changed} before an await that comes ahead of the `try` whose "
                "cleanup undoes it; if the task is cancelled at that await, the cleanup "
                f"never runs and `{what}` {stays} for good"
            )
            return make(CODE, fn.module.path, at(events[ci]), msg, steps, FIX_TRY)
        return None

    def _await_before(self, analysis: Analysis, ctx: Ctx, ci: int, op: _Op, start: int) -> int:
        """The first await that can interrupt ``op`` on a path from ``ci`` to event
        ``start`` (the ``try``), or -1."""
        f = ctx.fn.facts

        def stop(i: int, ev: Event) -> bool:
            return i == start or (state_op(ev) or _NO).state == op.state

        def hit(i: int, ev: Event, aw: int) -> bool:
            return i == start and aw >= 0

        def counts(i: int, ev: Event) -> bool:
            return (
                self._interrupts(analysis, ctx, i, ev, op)
                and not self._protected(f, i, op)
                and not _stack_undoes(analysis, ctx, i, op)
                and not _takes_stored_lock(analysis, ctx, ci, ev)
            )

        # normal paths only: one that leaves through an ``except`` (and comes round a loop to
        # the ``try`` without the change) is not the change left pending across an await
        handlers = {e.handler for e in f.events if e.handler >= 0}  # where exceptions go
        starts = [s for s in f.events[ci].succ if s not in handlers]
        for _i, aw in search(f, starts, stop=stop, hit=hit, is_await=counts, avoid=handlers):
            return aw
        return -1

    @staticmethod
    def _undone_elsewhere(analysis: Analysis, fn: Fn, op: _Op) -> bool:
        """Does another function of the class (of the module, for a module variable) undo
        ``op``: a ``reset``/``close`` that the owner's cleanup calls after any failure, or a
        cleanup function nested in a method (``def cleanup(): ...
        self._drafts.pop(session_id, None)``, run from that method's ``finally``)? Not for a
        local of the function (``lock = self._locks[key]``): another function's local of the
        same name is another variable."""
        if "." not in op.state and not _free_in(fn.facts, op.state):
            return False
        idx = analysis.index
        if op.state.startswith("global:"):
            quals = [f"{fn.module.module}.{q}" for q in sorted(fn.module.functions)]
        else:
            cls = idx.method_fn(fn)
            if cls is None:
                return False
            quals = []
            for c in idx.mro(cls):
                analysis.tracker.note(c.module.module)  # its methods, however many
                mod = c.module
                todo = [f"{mod.module}.{q}" for q in sorted(c.facts.methods.values())]
                while todo and len(quals) < 4096:
                    q = todo.pop(0)
                    quals.append(q)
                    g = idx.functions.get(q)  # (read through the index: its body loaded)
                    if g is not None:  # (and the functions nested in it)
                        todo.extend(f"{mod.module}.{n}" for n in g.facts.nested)
        for q in quals:
            other = idx.functions.get(q)
            if other is None or other is fn or other.facts.name in _CONSTRUCTORS:
                continue  # where the state is born, not a cleanup after a failure
            made = False
            for ev in other.facts.events:
                if ev.kind == K.WRITE and ev.ref == op.state:
                    made = True  # ``self._gate = Event(); self._gate.set()``: made anew
                undo = state_op(ev)
                if undo is not None and _undoes(op, undo) and not (made and undo.kind != "flag"):
                    return True
        return False

    def _undone_after(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, ci: int, op: _Op
    ) -> Diagnostic | None:
        if not _acquire_like(op) or analysis.lifecycle.intersection(fn.facts.qualname.split(".")):
            return None  # a cancelled start or stop (or what it runs) abandons the object
        if self._left_harmless(analysis, fn, ci, op):
            return None
        undos = (state_op(e) for e in fn.facts.events[ci + 1 :])  # a bracket's undo comes later
        if not any(u is not None and _undoes(op, u, strict=True) for u in undos):
            return None
        found = self._bracket(analysis, ctx, ci, op)
        if found is None or self._undone_elsewhere(analysis, fn, op):
            return None  # a reset or close of the object undoes it too
        aw, ui = found
        if _failure_keeps(fn.facts, aw, ui, op):
            return None  # a failed await leaves the same state, by design
        if _undone_by_callers_choice(fn.facts, ci, aw, ui, op):
            return None  # kept across calls until the one that ends it
        events = fn.facts.events
        what = shown(op.state)
        changed, undone, stays = _verbs(op)
        aw_ev = events[aw]
        steps = [
            fn_step(fn, at(events[ci]), f"`{what}` is {changed} here"),
            fn_step(fn, aw_ev.pos, f"{aw_ev.name}: a cancellation here raises and skips the rest"),
            fn_step(
                fn,
                at(events[ui]),
                f"{_undo_step(op)} only here, on the path where the await completed; "
                "no `finally` or `except (CancelledError | BaseException)` undoes it",
            ),
        ]
        msg = (
            f"`{what}` is {changed} before an await and {undone} only after it; if the task "
            "is cancelled at that await (a timeout, a failing task group, a disconnect), "
            f"`{what}` {stays} for good"
        )
        return make(CODE, fn.module.path, at(events[ci]), msg, steps, FIX_UNDO)

    def _released_on_failure(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, ci: int, op: _Op
    ) -> Diagnostic | None:
        """A lock or semaphore taken by hand, then a ``try`` around an await whose handlers for
        ordinary errors release it (``except Exception:``, ``except OSError:``), and nothing
        that runs on a cancellation does: the author gives the lock back when the await
        fails, but ``CancelledError`` is a ``BaseException`` and skips those handlers, so a
        cancellation there leaves it held (aiomqtt's ``__aenter__``). On the completed path
        the lock is kept on purpose (released by another method), so only the failure path
        is asked."""
        if op.kind != "slot" or not op.put or self._left_harmless(analysis, fn, ci, op):
            return None
        f = fn.facts
        events = f.events
        after = reachable(f, [ci])
        for t in f.tries:
            if t.first <= ci or t.first not in after or _restores(f, t, op) >= 0:
                continue
            ui = next(
                (
                    j
                    for h in t.handlers
                    if not catches_cancel(h)
                    for j in range(h.first, h.last)
                    if (u := state_op(events[j])) is not None and _undoes(op, u)
                ),
                -1,
            )
            if ui < 0:
                continue
            aw = next(
                (
                    i
                    for i in range(t.first, t.body_end)
                    if i in after
                    and self._interrupts(analysis, ctx, i, events[i], op)
                    and not self._protected(f, i, op)
                ),
                -1,
            )
            if aw < 0:
                continue
            what = shown(op.state)
            types = next(h.types for h in t.handlers if h.first <= ui < h.last)
            caught = types[0] if len(types) == 1 else f"({', '.join(types)})"
            steps = [
                fn_step(fn, at(events[ci]), f"`{what}` is acquired here"),
                fn_step(
                    fn,
                    events[aw].pos,
                    f"{events[aw].name}: a cancellation here raises `CancelledError`, which "
                    f"`except {caught}` does not catch",
                ),
                fn_step(
                    fn,
                    at(events[ui]),
                    f"the lock is released only here, when the `try` fails with `{caught}`",
                ),
            ]
            msg = (
                f"`{what}` is acquired and released only by a handler of ordinary errors "
                f"(`except {caught}`) around an await; if the task is cancelled at that await "
                f"(a timeout, a failing task group, a disconnect), `{what}` stays held for good"
            )
            return make(CODE, fn.module.path, at(events[ci]), msg, steps, FIX_FAILURE)
        return None

    def _bracket(self, analysis: Analysis, ctx: Ctx, ci: int, op: _Op) -> tuple[int, int] | None:
        """(await, undo): an await that can interrupt ``op`` and, after it on the normal
        path, the change undone (not in an ``except`` or ``finally``). A path follows at most
        one loop back edge (the next step of an ``async for`` around the change), and the
        undo must then lie outside that loop: a change made for one event of a loop and
        undone for a later one is state kept across iterations, not a bracket."""
        f = ctx.fn.facts
        events = f.events
        todo: list[tuple[int, int, int]] = []  # event, first await, loop head taken back to
        self._follow(events, ci, -1, -1, todo)
        seen: set[tuple[int, bool, int]] = set()
        while todo and len(seen) < 20_000:
            i, aw, head = todo.pop()
            key = (i, aw >= 0, head)
            if key in seen:
                continue
            seen.add(key)
            ev = events[i]
            other = state_op(ev)
            if other is not None and other.state == op.state:
                if (
                    aw >= 0
                    and _undoes(op, other, strict=True)
                    and not ev.in_except
                    and not self._in_restoring(f, i)
                    and not _in_loop(events, head, i)
                ):
                    return aw, i
                continue
            if (
                aw < 0
                and self._interrupts(analysis, ctx, i, ev, op)
                and not self._protected(f, i, op)
            ):
                aw = i
            self._follow(events, i, aw, head, todo)
        return None

    @staticmethod
    def _follow(
        events: list[Event], i: int, aw: int, head: int, todo: list[tuple[int, int, int]]
    ) -> None:
        for s in events[i].succ:
            if s > i:
                todo.append((s, aw, head))
            elif head < 0 and events[s].kind == K.NOP:
                todo.append((s, aw, s))  # a loop's back edge (or a handler's), taken once

    # -- 3. a pooled connection returned in finally mid-exchange -----------------------------
    def _pool(self, analysis: Analysis, fn: Fn) -> Iterator[Diagnostic]:
        f = fn.facts
        ctx = analysis.ctx(fn)
        events = f.events
        reported: set[int] = set()
        for t in f.tries:
            if t.final_first < 0:
                continue
            returned: dict[str, tuple[Step, ...]] = {}
            flags: dict[str, tuple[str, ...]] = {}  # what the returning call is told
            for i in range(t.final_first, t.final_last):
                ev = events[i]
                if ev.kind != K.CALL:
                    continue
                for r in returned_to_pool(ev):
                    if r not in returned:
                        returned[r] = (
                            fn_step(fn, at(ev), f"`{shown(r)}` goes back to the pool here"),
                        )
                        flags[r] = ev.args
                if analysis.same_object_call(ctx, ev):
                    for tfn, tctx in analysis.targets(ctx, ev):
                        for r, rs in analysis.pool_returns(Ctx(tfn, tctx.recv)).items():
                            if r.startswith("self."):
                                call = fn_step(fn, at(ev), f"calls `{short(tfn)}`")
                                if r not in returned:
                                    returned[r] = (call, *rs)
                                    flags[r] = ev.args
            for r, back in returned.items():
                if r in ("self", "cls"):
                    continue
                names = _aliases(f, r)
                if any(invalidation_in(fn, t, n) for n in names):
                    continue
                for res in sorted(names):
                    d = self._mid_exchange(analysis, ctx, fn, t, res, back, flags.get(r, ()))
                    if d is not None:
                        row = d.span.start.row
                        if row not in reported:
                            reported.add(row)
                            yield d
                        break

    def _mid_exchange(
        self,
        analysis: Analysis,
        ctx: Ctx,
        fn: Fn,
        t: Try,
        res: str,
        back: tuple[Step, ...],
        told: tuple[str, ...] = (),
    ) -> Diagnostic | None:
        f = fn.facts
        events = f.events
        sent: tuple[Step, ...] = ()
        for i in range(t.body_end):
            sub = analysis.exchange_at(ctx, i, res)
            if sub is None:
                continue
            pair: tuple[tuple[Step, ...], tuple[Step, ...]] | None = None
            if sub.paired:
                pair = (sub.send, sub.read)
            elif sub.read and sent:
                pair = (sent, sub.read)
            if (
                pair is not None
                and _in_body(t, i)
                and events[i].bind != Bind.NONE
                and not _told_incomplete(f, t, i, told)
            ):
                ev = events[i]
                what = shown(res)
                steps = [
                    *pair[0],
                    *pair[1][:-1],
                    Step(
                        pair[1][-1].path,
                        pair[1][-1].pos,
                        f"the reply is read from `{what}` here: a cancellation while it waits "
                        "leaves the reply unread, and nothing invalidates the connection",
                    ),
                    fn_step(fn, at(ev), "a cancellation of this await interrupts the exchange"),
                    *back[:-1],
                    Step(
                        back[-1].path,
                        back[-1].pos,
                        f"`finally` returns `{what}` to the pool with the reply still pending: "
                        "the next user reads it instead of its own",
                    ),
                ]
                msg = (
                    f"`{what}` goes back to the shared pool in `finally` while a request sent "
                    "on it may still await its reply; if the task is cancelled during this "
                    "await, the next user of the connection reads the previous reply"
                )
                return make(CODE, fn.module.path, at(ev), msg, steps, FIX_POOL)
            if sub.send and not sent:
                sent = sub.send
        return None

    # -- 4. a blocking acquire on a worker thread -----------------------------------------
    def _thread_acquire(self, analysis: Analysis, fn: Fn) -> Iterator[Diagnostic]:
        f = fn.facts
        ctx = analysis.ctx(fn)
        for i, ev in enumerate(f.events):
            if ev.kind != K.CALL or ev.bind == Bind.NONE:
                continue
            idx = analysis.locks.handoff_arg(ctx, ev.ref)
            if idx is None or self._waits_for_thread(analysis, fn, ev):
                continue
            positional = [a for a in ev.args if not is_kw(a)]
            if idx >= len(positional):
                continue
            target = positional[idx]
            if target.startswith("partial:"):
                target = target[8:].split("|", 1)[0]
            if not target.endswith(".acquire"):
                continue
            lock_ref = target[: -len(".acquire")]
            lock = analysis.locks.lock_of(ctx, lock_ref)
            if lock is None or lock.kind == "async" or _made_for_this_call(analysis, ctx, lock_ref):
                continue
            wait = self._thread_wait(f, i)
            if wait < 0 or shielded(f, i) or (wait != i and shielded(f, wait)):
                continue
            if any(
                (_in_body(t, i) or _in_body(t, wait)) and any(catches_cancel(h) for h in t.handlers)
                for t in f.tries
            ):
                continue
            what = last_seg(ev.ref)
            steps = [
                fn_step(fn, at(ev), f"`{what}` runs `{shown(target)}` on a worker thread"),
                fn_step(
                    fn,
                    at(f.events[wait]),
                    "a cancellation of this await stops the waiting task, not the thread: "
                    "the thread still takes the lock later",
                ),
                fn_step(
                    fn,
                    at(ev),
                    "no `except CancelledError` releases a lock acquired after the "
                    "cancellation, and no `asyncio.shield` keeps the result",
                ),
            ]
            msg = (
                f"`{shown(lock_ref)}` is acquired on a worker thread and awaited without "
                "handling cancellation; if the task is cancelled while the thread waits for "
                "the lock, the thread takes it anyway and nobody ever releases it"
            )
            yield make(CODE, fn.module.path, at(ev), msg, steps, FIX_THREAD)

    # -- 5. a future other tasks wait on, resolved only on the paths that complete ---------
    def _handed_future(self, analysis: Analysis, fn: Fn) -> Iterator[Diagnostic]:
        """A future the function makes (``fut = loop.create_future()``) and stores in shared
        state where other calls wait on it (``self._inflight[key] = fut``, and ``await
        self._inflight[key]`` in a call that finds it there), then an await before every
        ``set_result``/``set_exception``, with no ``finally`` or cancellation handler around
        that await that resolves or cancels it: a cancellation there leaves the future pending
        for good, and every task waiting on it waits for good (matrix-content-scanner's
        shared scan, held-out set 145). A future only this call waits on (a request's reply,
        resolved by a reader task) is the pending-entry shape of form 2, not this one."""
        f = fn.facts
        events = f.events
        ctx = analysis.ctx(fn)
        for i, ev in enumerate(events):
            if ev.kind != K.LOCAL or ev.value is None or ev.value.kind != "call":
                continue
            if last_seg(ev.value.ref) not in _FUTURE_MAKERS:
                continue
            name = ev.ref
            resolved = [
                j
                for j, e in enumerate(events)
                if e.kind == K.CALL
                and e.ref.rpartition(".")[0] == name
                and last_seg(e.ref) in _RESOLVES
            ]
            if not resolved:
                continue  # resolved elsewhere (a reader task): not this shape
            after = reachable(f, [i])
            hand = next(
                (j for j in range(i + 1, len(events)) if j in after and _stores(events[j], name)),
                -1,
            )
            if hand < 0:
                continue
            store = events[hand].ref
            waiter = _waiter_of(analysis, fn, store)
            if waiter is None:
                continue
            from_hand = reachable(f, [hand])
            aw = next(
                (
                    j
                    for j in range(hand + 1, len(events))
                    if j in from_hand
                    and events[j].kind == K.AWAIT
                    and not (events[j].ref == name or events[j].ref.startswith(name + "."))
                    and not reachable(f, [j]).isdisjoint(resolved)
                    and not shielded(f, j)
                    and not _cancel_suppressed(analysis, ctx, j)
                    and analysis.suspending(ctx, j)
                ),
                -1,
            )
            if aw < 0 or _resolved_on_cancel(f, aw, resolved):
                continue
            first = min(reachable(f, [aw]).intersection(resolved))
            steps = [
                fn_step(fn, at(ev), f"`{name}` is made here"),
                fn_step(
                    fn,
                    at(events[hand]),
                    f"`{name}` is handed to other calls here, through `{shown(store)}`",
                ),
                fn_step(waiter[0], waiter[1], "another call waits on it here"),
                fn_step(
                    fn,
                    events[aw].pos,
                    f"{events[aw].name}: a cancellation here skips every resolution of `{name}`",
                ),
                fn_step(
                    fn,
                    at(events[first]),
                    f"`{name}` is resolved only here and on the other paths that do not start "
                    "with a cancellation; no `finally` or `except (CancelledError | "
                    "BaseException)` resolves or cancels it",
                ),
            ]
            left = (
                "every call already waiting on it waits for good"
                if _forgotten_on_cancel(f, aw, store)
                else f"stays in `{shown(store)}`: every call waiting on it, and every later "
                "call that finds it there, waits for good"
            )
            msg = (
                f"`{name}` is handed to other calls through `{shown(store)}` before an await, "
                "and resolved only on the paths where the await completes or fails with an "
                "ordinary error; if the task is cancelled at that await, "
                f"`{name}` stays pending, and {left}"
            )
            yield make(CODE, fn.module.path, at(events[hand]), msg, steps, FIX_FUTURE)

    @staticmethod
    def _waits_for_thread(analysis: Analysis, fn: Fn, ev: Event) -> bool:
        """AnyIO's and Trio's ``to_thread.run_sync`` hold a cancellation back until the thread
        is done (unless told to abandon it): the acquisition completes and its result is kept."""
        fq = analysis.index.resolve(fn.module, ev.ref) if "(" not in ev.ref else ""
        if fq not in _DEFERRING_HANDOFFS:
            return False
        return not any(a.partition("=")[0] in ("abandon_on_cancel", "cancellable") for a in ev.args)

    @staticmethod
    def _thread_wait(f: FunctionFacts, i: int) -> int:
        """The event where the hand-off at ``i`` is waited for: the call itself when it is
        awaited or passed to an awaited call, the await of the local it is kept in; -1 if
        nobody waits."""
        ev = f.events[i]
        if ev.bind in (Bind.AWAITED, Bind.RETURNED):
            return i
        if ev.bind == Bind.ARG:
            outer = _inside_call(f, i, ("wait_for", "shield", "wrap_future", "gather"))
            return outer if outer >= 0 and f.events[outer].bind != Bind.NONE else -1
        if ev.bind == Bind.LOCAL and ev.name:
            for j in range(i + 1, len(f.events)):
                e = f.events[j]
                if e.kind == K.AWAIT and e.ref == ev.name:
                    return j
                if e.kind == K.CALL and e.bind != Bind.NONE and ev.name in e.args:
                    return j
        return -1


_NO = _Op("", False)


def _made_for_this_call(analysis: Analysis, ctx: Ctx, ref: str) -> bool:
    """Is ``ref`` a local that this call sets only to new lock objects (``lock =
    FileLock(path)``) and keeps to itself (never stored, handed on or returned)? A lock the
    thread takes after a cancellation is then one nobody else holds or waits for, and it is
    dropped with the call (a file lock's object lets the file go when it is dropped)."""
    f = ctx.fn.facts
    if "." in ref or "(" in ref or ref in {p.name for p in f.params} or ref in f.returns_refs:
        return False
    made = False
    for e in f.events:
        v = e.value
        if e.kind == K.LOCAL and e.ref == ref:
            if v is None or v.kind != "call":
                return False
            val = analysis.index.eval(ctx, v.ref)
            if not isinstance(val, ClassObj) and not (
                isinstance(val, ExtName) and val.fq.rpartition(".")[2][:1].isupper()
            ):
                return False  # (a function may hand out a shared lock: ``get_lock()``)
            made = True
        elif e.kind in (K.LOCAL, K.WRITE, K.SETITEM) and v is not None and ref in v.names:
            return False  # stored, or aliased
        elif e.kind == K.CALL and ref in e.args:
            return False  # handed on
    return made


def _aliases(f: FunctionFacts, ref: str) -> set[str]:
    """``ref`` and the locals and attributes that hold the same object in this function
    (``conn = self.connection``, ``self.connection = conn``)."""
    names = {ref}
    changed = True
    while changed:
        changed = False
        for e in f.events:
            v = e.value
            if e.kind not in (K.LOCAL, K.WRITE) or v is None or v.kind not in ("name", "attr"):
                continue
            pair = (e.ref, v.ref)
            if (pair[0] in names) != (pair[1] in names):
                names.update(pair)
                changed = True
    return {n for n in names if n and "(" not in n and "[" not in n}


def _stores(ev: Event, name: str) -> bool:
    """Does ``ev`` store the local ``name`` in shared state (``self._map[k] = name``,
    ``self._fut = name``, ``self._waiters.append(name)``)?"""
    if ev.kind in (K.SETITEM, K.WRITE):
        return (
            _shared(ev.ref)
            and ev.value is not None
            and ev.value.kind == "name"
            and ev.value.ref == name
        )
    if ev.kind == K.CALL and name in ev.args:
        container, _, method = ev.ref.rpartition(".")
        return _shared(container) and method in _PUT_METHODS
    return False


def _waiter_of(analysis: Analysis, fn: Fn, store: str) -> tuple[Fn, Pos] | None:
    """Where a call waits on what ``store`` holds: ``await self._map[k]``, ``await
    self._fut``, or a local taken from it (``fut = self._map.get(k)``) that is awaited or
    handed to ``shield``/``wait_for``/``gather``/``wait``; in the methods of the class (and
    its family) for ``self.`` state, in the module's functions for module state."""
    idx = analysis.index
    if store.startswith("self."):
        cls = idx.method_fn(fn)
        if cls is None:
            return None
        if store.count(".") != 1:
            return None
        others: list[Fn] = _family_methods(analysis, cls)
    elif store.startswith("global:"):
        others = list(module_functions(analysis, fn.module))
    else:
        return None
    plain = shown(store)
    for g in others:
        taken: set[str] = set()
        for e in g.facts.events:
            if (
                e.kind == K.LOCAL
                and e.value is not None
                and (
                    e.value.ref == plain
                    or e.value.ref.startswith((plain + "[", plain + "."))
                    or e.value.ref in (store, store + "[]")
                )
            ):
                taken.add(e.ref)
            elif (
                e.kind == K.AWAIT
                and (e.ref in (store, store + "[]", plain, plain + "[]") or e.ref in taken)
            ) or (
                e.kind == K.CALL
                and last_seg(e.ref) in _WAITING_CALLS
                and any(a in taken for a in e.args)
            ):
                return g, e.pos  # awaited, or handed to a call that waits on it
    return None


def _run_on_cancel(f: FunctionFacts, aw: int) -> set[int]:
    """The events that run when a cancellation lands at the await ``aw``: the ``finally`` and
    the cancellation handlers of every ``try`` around it (:func:`_restoring_events`)."""
    return {i for t in f.tries if _in_body(t, aw) for i in _restoring_events(f, t)}


def _resolved_on_cancel(f: FunctionFacts, aw: int, resolved: list[int]) -> bool:
    """Does a ``finally`` or a cancellation handler of a ``try`` around the await at ``aw``
    resolve the future (one of the events ``resolved``)?"""
    return not _run_on_cancel(f, aw).isdisjoint(resolved)


def _forgotten_on_cancel(f: FunctionFacts, aw: int, store: str) -> bool:
    """Does a ``finally`` or a cancellation handler of a ``try`` around the await at ``aw``
    take the future out of ``store`` (``del self._map[k]``, ``self._map.pop(k)``, ``self._fut
    = None``)? Then only the calls already waiting on it are left waiting. (A module
    container's method calls are named without ``global:``: both spellings are asked.)"""
    refs = (store, shown(store))
    taking = _TAKE_METHODS | {"clear"}
    return any(
        (e.kind in (K.DELITEM, K.WRITE) and e.ref in refs)
        or (e.kind == K.CALL and e.ref.rpartition(".")[0] in refs and last_seg(e.ref) in taking)
        for e in (f.events[k] for k in _run_on_cancel(f, aw))
    )


def _one_per_await(found: list[tuple[Diagnostic, bool]]) -> list[tuple[Diagnostic, bool]]:
    """One finding per await and fix: the states a function changes before the same await,
    left changed by a cancellation there and mended by the same fix (one ``try`` begun before
    the await, or one ``finally``), are one cause. The first change is reported, and every
    other one is named in its message and is a step of it (a run registered in four tables
    before the await that precedes its ``try`` is one finding, not four). Each finding comes
    with whether its state is plain; a group is plain when all its changes are."""
    groups: dict[tuple[object, ...], list[tuple[Diagnostic, bool]]] = {}
    for d, plain in found:
        aw = next((r.span for r in d.related if "a cancellation here" in r.message), None)
        groups.setdefault((aw, d.fix) if aw is not None else (d.span,), []).append((d, plain))
    out: list[tuple[Diagnostic, bool]] = []
    for pairs in groups.values():
        ds = [d for d, _plain in pairs]
        others = []
        for m in ds[1:]:
            sp = m.span
            pos = (sp.start.row, sp.start.column, sp.end.row, sp.end.column)
            step = Step(sp.path, pos, "another change left by the same await")
            others.append((f"`{m.message.split('`', 2)[1]}`", step))
        out.append(
            (
                folded(ds[0], others, "change is", "changes are", "left the same way"),
                all(plain for _d, plain in pairs),
            )
        )
    return out
