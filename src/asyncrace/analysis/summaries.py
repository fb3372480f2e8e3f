"""Summaries that compose over the call graph, shared by the rules: the locks a call may take
(:meth:`Summaries.acquires`), the work it hands to another thread (``handoffs``), the ``self``
state it may read (``reads``) or register into (``registrations``), where a name is called or
passed across the project (``calls_by_name``, ``passed_on``, over the mention index
:class:`Mentions`), and walks of one function's control-flow graph (:func:`search`,
:func:`before_await`), with the labelled steps (:class:`Step`) findings are made of.

Each summary is computed for a function *in a context* (its receiver class and what its
parameters are bound to), memoized, and bounded in depth so the cost stays proportional to the
code reached from candidate findings, never to the whole call graph.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from asyncrace.analysis.facts import (
    Bind,
    Event,
    FunctionFacts,
    Handler,
    K,
    ModuleFacts,
    Pos,
    Try,
    Value,
    dynamic_names,
    dynamic_prefix,
    inside,
    reachable,
    walk,
)
from asyncrace.analysis.index import (
    MISS,
    NAME_KEY,
    ClassObj,
    Ctx,
    ExtName,
    Fn,
    FuncVal,
    Index,
    Inst,
    Memo,
    Val,
    is_kw,
    is_property,
    last_seg,
    returned_self_attr,
    split_ref,
)
from asyncrace.analysis.locks import LockInfo, LockModel
from asyncrace.settings import Settings

MAX_DEPTH = 6
# a registration this many steps from the function or more is kept once per kind
# (:meth:`Summaries.registrations`): rules show the paths of nearer ones only
SHOWN_REG_STEPS = 2

# container methods that put a key/value in
REGISTER_METHODS: frozenset[str] = frozenset(
    {"add", "append", "appendleft", "setdefault", "update", "insert", "extend", "__setitem__"}
)

# calls that run what they are given in a task of its own: the mention index and
# ``calls_by_name`` count a name handed to one as a call of it (which of them start several
# tasks at once is the concurrency model's question, ``concurrency.MANY_SPAWNERS``)
SPAWNERS: frozenset[str] = frozenset(
    {
        "create_task",
        "ensure_future",
        "gather",
        "start_soon",
        "run_coroutine_threadsafe",
        "as_completed",
        "wait",
    }
)


@dataclass(frozen=True, slots=True)
class Step:
    """One labelled step of a hazard, possibly in another file."""

    path: str
    pos: Pos
    label: str


@dataclass(frozen=True, slots=True)
class Acquire:
    lock: LockInfo
    steps: tuple[Step, ...]  # call steps leading to the acquisition, the acquisition last


@dataclass(frozen=True, slots=True)
class Registration:
    attr: str  # the ``self.X`` / ``global:X`` registered into
    steps: tuple[Step, ...]  # calls leading to it, the registration last
    late: bool  # an await may come before it
    is_write: bool  # an attribute assignment (not a container insertion)
    # attributes checked by guards in the functions on the way (a callee that re-checks the
    # guard before registering protects itself, e.g. a handler re-entered recursively)
    guarded: frozenset[str] = frozenset()
    # many keys at once: in a loop (``for t in tools: self.x[t.name] = t``) or ``update``;
    # such a fill can register any key, also one the callee was never given
    bulk: bool = False


@dataclass(frozen=True, slots=True)
class HandOff:
    event_step: Step  # where work is handed to another thread
    target: Fn
    target_ctx: Ctx
    via: tuple[Step, ...]  # calls leading from the caller to the hand-off


@dataclass(frozen=True, slots=True)
class Exchange:
    """What a call does with a resource it is given (:meth:`Summaries.exchange`): the steps to
    its first send of a request on it, to its first read of a reply from it that a
    cancellation could interrupt without invalidating the resource, and whether such a read
    follows a send within the call (a request/reply pair)."""

    send: tuple[Step, ...] = ()
    read: tuple[Step, ...] = ()
    paired: bool = False

    def then(self, nxt: Exchange) -> Exchange:
        """This, followed by ``nxt``."""
        if self.paired:
            return self
        if nxt.paired:
            return nxt
        if self.send and nxt.read:
            return Exchange(self.send, nxt.read, True)
        return Exchange(self.send or nxt.send, self.read or nxt.read, False)

    def via(self, call: Step) -> Exchange:
        """The same, reached through ``call``."""
        return Exchange(
            (call, *self.send) if self.send else (),
            (call, *self.read) if self.read else (),
            self.paired,
        )


NO_EXCHANGE = Exchange()


def at(ev: Event) -> Pos:
    """Where a step points for ``ev`` (a multi-line call: its ``callee(``)."""
    return ev.show or ev.pos


def fn_step(fn: Fn, pos: Pos, label: str) -> Step:
    return Step(fn.module.path, pos, label)


def def_step(fn: Fn, label: str) -> Step:
    """A step at ``fn``'s ``def`` line only (its position spans the whole body, which would
    make every edit inside the body an edit of the step)."""
    row, col = fn.facts.pos[0], fn.facts.pos[1]
    f = fn.facts
    width = len(f.name) + (len("async def ") if f.is_async else len("def "))
    return Step(fn.module.path, (row, col, row, col + width), label)


def short(fn: Fn) -> str:
    f = fn.facts
    if f.cls and f.parent is None:
        return f"{f.cls.rsplit('.', 1)[-1]}.{f.name}"
    return f.name


# the keys a reader of the mention index notes (``index.Tracker``), besides modules: a called
# name, a name passed as an argument, and for the modules calling ``reset``/``detach``
CALL_KEY = "\x00call:"
# asyncio's queues: ``put`` suspends only when one made with a bound is full
_QUEUES = frozenset({"Queue", "LifoQueue", "PriorityQueue"})
ARG_KEY = "\x00arg:"
# an attribute name read off another object than ``self`` (``ModuleFacts.attr_reads``)
READ_ATTR_KEY = "\x00read-attr:"
RELEASES_KEY = "\x00releases"


def called_name(ref: str) -> str:
    """The last name of a callee ref; a generic class made with its type arguments
    (``Engine[P, R](...)``, ref ``Engine[]``) is a call of the class ``Engine``."""
    last = ref.rpartition(".")[2]
    if last.endswith("[]") and last[:1].isupper():
        return last[:-2]
    return last


@dataclass(frozen=True, slots=True)
class ModuleMentions:
    """What a module's bodies mention, by last name: the names the project-wide lookups of
    :class:`Summaries` search by. Part of the module's interface: while it is unchanged, the
    lookups of other modules find this module where they found it before."""

    calls: tuple[str, ...]  # called names, and names handed to a spawner
    args: tuple[str, ...]  # names passed as arguments (also in decorators and defaults)
    releases: bool  # a function calls something named ``reset``/``detach`` (ARC002)
    attrs: tuple[str, ...] = ()  # attribute names read off other objects (``attr_reads``)

    @staticmethod
    def of(m: ModuleFacts) -> ModuleMentions:
        calls: set[str] = set()
        args: set[str] = {r.rsplit(".", 1)[-1] for r in m.passed}
        releases = False
        call = K.CALL
        add_call, add_arg = calls.add, args.add
        for f in m.functions.values():
            for e in f.events:
                if e.kind != call:
                    continue
                ref = e.ref
                spawner = False
                if ref:
                    last = ref.rpartition(".")[2]
                    add_call(called_name(ref))
                    spawner = last in SPAWNERS
                    if not releases and ("reset" in ref or "detach" in ref):
                        releases = True
                    if "." not in ref and f.cls is not None:
                        calls.update(dynamic_names(m, f, e))  # a dispatch by name
                for a in e.args:
                    # (``is_kw`` written out, and ``last_seg(r)`` as ``rpartition``)
                    k, eq, v = a.partition("=")
                    if eq and (k.isidentifier() or k == "**") and not a.startswith(_NOT_KW):
                        a = v
                    if a and "(" not in a:
                        n = a.rpartition(".")[2]
                        add_arg(n)
                        if spawner:
                            add_call(n)
        return ModuleMentions(
            tuple(sorted(calls)), tuple(sorted(args)), releases, tuple(m.attr_reads)
        )


@dataclass
class Mentions:
    """Name -> the modules (sorted) whose bodies mention it (:class:`ModuleMentions`)."""

    calls: dict[str, list[str]]
    args: dict[str, list[str]]
    releases: list[str]
    per_module: dict[str, ModuleMentions]
    attrs: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def build(
        modules: Iterable[ModuleFacts], known: dict[str, ModuleMentions] | None = None
    ) -> Mentions:
        calls: dict[str, list[str]] = {}
        args: dict[str, list[str]] = {}
        releases: list[str] = []
        per_module: dict[str, ModuleMentions] = {}
        attrs: dict[str, list[str]] = {}
        for m in sorted(modules, key=lambda m: m.module):
            mm = known.get(m.module) if known is not None else None
            if mm is None:
                mm = ModuleMentions.of(m)
            per_module[m.module] = mm
            for n in mm.calls:
                calls.setdefault(n, []).append(m.module)
            for n in mm.args:
                args.setdefault(n, []).append(m.module)
            if mm.releases:
                releases.append(m.module)
            for n in mm.attrs:
                attrs.setdefault(n, []).append(m.module)
        return Mentions(calls, args, releases, per_module, attrs)

    def patch(self, module: str, old: ModuleMentions, new: ModuleMentions) -> None:
        """``module`` now mentions ``new`` (it mentioned ``old``); lists stay sorted."""
        for table, was, now in (
            (self.calls, old.calls, new.calls),
            (self.args, old.args, new.args),
            (self.attrs, old.attrs, new.attrs),
        ):
            for n in set(was) - set(now):
                mods = table.get(n, [])
                if module in mods:
                    mods.remove(module)
                if not mods:
                    table.pop(n, None)
            for n in set(now) - set(was):
                mods = table.setdefault(n, [])
                if module not in mods:
                    bisect.insort(mods, module)
        if old.releases and not new.releases and module in self.releases:
            self.releases.remove(module)
        if new.releases and not old.releases and module not in self.releases:
            bisect.insort(self.releases, module)


class Summaries:
    """The call-graph summaries, memoized: what a call may acquire, hand off, read and register,
    and the project-wide lookups by name they and the concurrency model share."""

    def __init__(
        self,
        index: Index,
        settings: Settings,
        mentions: Callable[[], Mentions] | None = None,
    ) -> None:
        """``mentions`` gives the project's mention index when first needed (an incremental
        run reads it from the snapshot); without it, the index is built from the bodies."""
        self.index = index
        self.settings = settings
        self.locks = LockModel(index, settings)
        t = self.tracker = index.tracker
        self._acq: Memo[tuple[object, ...], list[Acquire]] = Memo(t)
        self._hand: Memo[tuple[object, ...], list[HandOff]] = Memo(t)
        self._reads: Memo[tuple[object, ...], dict[str, tuple[Step, ...]]] = Memo(t)
        self._regs: Memo[tuple[object, ...], list[Registration]] = Memo(t)
        self._region_locks: Memo[tuple[str, int, str | None], LockInfo | None] = Memo(t)
        self._callers: Memo[str, dict[str, list[Fn]]] = Memo(t)
        self._named_calls: Memo[str, list[tuple[Fn, int]]] = Memo(t)
        # module -> (its facts, name -> its calls of that name): ``module_calls``
        self._module_calls: dict[str, tuple[ModuleFacts, dict[str, list[tuple[Fn, int]]]]] = {}
        self._stored: Memo[tuple[str, str], list[Val]] = Memo(t)
        self._aliases: Memo[str, dict[str, tuple[str, ...]]] = Memo(t)
        self._free_locks: Memo[tuple[str, str], bool] = Memo(t)
        self._writes: Memo[str, dict[str, list[tuple[str, Fn, Value, bool]]]] = Memo(t)
        # a function's facts -> (them, ``_registration_shape``)
        self._shapes: dict[
            int, tuple[FunctionFacts, list[bool], list[frozenset[str]], list[frozenset[str]]]
        ] = {}
        self._late: Memo[tuple[object, ...], dict[str, tuple[Step, ...]]] = Memo(t)
        self._late_w: Memo[tuple[object, ...], dict[str, tuple[Step, ...]]] = Memo(t)
        # name -> modules whose bodies call it (or hand it to a spawner), pass it as an
        # argument, or call ``reset``/``detach`` in a function (``Mentions``)
        self._mentions: Mentions | None = None
        self._mentions_source = mentions
        # cancellation (ARC006)
        self._suspends: Memo[tuple[object, ...], tuple[Step, ...] | None] = Memo(t)
        self._suspends_active: list[tuple[object, ...]] = []  # being computed, outermost first
        self._suspends_cyclic: set[tuple[object, ...]] = set()  # reached again while so
        self._invalidates: Memo[tuple[object, ...], Step | None] = Memo(t)
        self._exchanges: Memo[tuple[object, ...], Exchange] = Memo(t)
        self._returns: Memo[tuple[object, ...], dict[str, tuple[Step, ...]]] = Memo(t)

    def ctx(self, fn: Fn) -> Ctx:
        return Ctx(fn, self.index.method_fn(fn))

    def region_lock(self, ctx: Ctx, rid: int) -> LockInfo | None:
        key = (ctx.fn.fq, rid, ctx.recv)
        found = self._region_locks.get(key)
        if found is MISS:
            self._region_locks.start(key, None)
            region = ctx.fn.facts.regions[rid]
            found = self._region_locks.finish(key, self.locks.lock_of(ctx, region.ref, region.pos))
        return found  # type: ignore[no-any-return]

    def targets(self, ctx: Ctx, ev: Event) -> list[tuple[Fn, Ctx]]:
        """Project functions a CALL event runs, each in its bound context (``super().name``:
        the next implementation in the receiver's MRO); a call of an attribute that holds a
        callable stored for later (``self._on_stats()`` after
        ``set_stats_callback(cb)`` kept ``cb`` there) runs what was stored."""
        out: list[tuple[Fn, Ctx]] = []
        for fn, _c, fv in self.call_targets(ctx, ev):
            out.append((fn, self.index.bind_args(fn, fv, ev.args, ctx)))
        if out:
            return out
        segs = split_ref(ev.ref)
        if len(segs) < 2 or segs[-1].endswith(("()", "[]")):
            return out
        recv = self.index.eval(ctx, ".".join(segs[:-1]))
        if isinstance(recv, Inst) and recv.fq in self.index.classes:
            for fv in self.stored_callables(recv.fq, segs[-1]):
                stored = self.index.functions.get(fv.fq)
                if stored is not None:
                    out.append((stored, self.index.bind_args(stored, fv, ev.args, ctx)))
        elif recv is None and len(segs) >= 3 and not segs[-2].endswith(("()", "[]")):
            # ``self.runtime.step(...)`` with ``self.runtime = runtime`` unannotated: the
            # objects the project builds the owner with (``Orchestrator(runtime=Real(...))``)
            owner = self.index.eval(ctx, ".".join(segs[:-2]))
            if isinstance(owner, Inst) and owner.fq in self.index.classes:
                for inst in self.stored_instances(owner.fq, segs[-2]):
                    for fn, c in self.index.dispatch(inst, segs[-1]):
                        fv = FuncVal(fn.fq, c)
                        out.append((fn, self.index.bind_args(fn, fv, ev.args, ctx)))
        return out

    def target_fqs(self, ctx: Ctx, ev: Event) -> tuple[str, ...]:
        """The fully qualified names of :meth:`targets`, in its order, without binding the
        call's arguments to each target's parameters (a caller search asks only which
        functions a call runs). ``Index.callable_targets`` written out, so that the receiver
        is evaluated once for it and for the callables stored for later."""
        index = self.index
        ref = ev.ref
        recv, dot, last = ref.rpartition(".")  # (``split_ref``: the same segments)
        if recv == "super()":
            nxt = self.super_method(ctx, last)
            return (nxt.fq,) if nxt is not None else ()
        member = bool(dot) and not last.endswith(("()", "[]"))
        rv: Val = None
        if member:
            rv = index.eval(ctx, recv)
            if isinstance(rv, Inst) and rv.fq in index.classes:
                found = tuple(fn.fq for fn, _c in index.dispatch(rv.fq, last))
                if found:
                    return found
                out: list[str] = []
                for fv in self.stored_callables(rv.fq, last):
                    stored = index.functions.get(fv.fq)
                    if stored is not None:
                        out.append(stored.fq)
                return tuple(out)
            v = index.eval_member(ctx, ref, recv, last)
        elif ctx.recv is not None and dynamic_prefix(ctx.fn.facts, ref):
            # a method of ``self`` got by name (``Index.callable_targets``)
            return tuple(fn.fq for fn, _c, _v in index.callable_targets(ctx, ref))
        else:
            v = index.eval(ctx, ref)
        if isinstance(v, FuncVal):
            target = index.functions.get(v.fq)
            if target is not None:
                return (target.fq,)
        elif isinstance(v, ClassObj):
            init = index.find_method(v.fq, "__init__")
            if init is not None:
                return (init.fq,)
        if not member:
            return ()
        owner_ref, dot2, attr = recv.rpartition(".")
        if rv is None and dot2 and not attr.endswith(("()", "[]")):
            # ``self.runtime.step(...)``: the objects the project builds the owner with
            owner = index.eval(ctx, owner_ref)
            if isinstance(owner, Inst) and owner.fq in index.classes:
                return tuple(
                    fn.fq
                    for inst in self.stored_instances(owner.fq, attr)
                    for fn, _c in index.dispatch(inst, last)
                )
        return ()

    def stored_callables(self, cls_fq: str, attr: str) -> list[FuncVal]:
        """The functions stored into ``attr`` of the class's instances to be called later
        (:meth:`stored_values`)."""
        return [v for v in self.stored_values(cls_fq, attr) if isinstance(v, FuncVal)]

    def stored_instances(self, cls_fq: str, attr: str) -> list[str]:
        """The project classes of the objects stored into ``attr`` (:meth:`stored_values`):
        constructor-argument flow for an attribute whose type is not declared."""
        out = [
            v.fq
            for v in self.stored_values(cls_fq, attr)
            if isinstance(v, Inst) and v.fq in self.index.classes
        ]
        return list(dict.fromkeys(out))

    def stored_values(self, cls_fq: str, attr: str) -> list[Val]:
        """What is stored into ``attr`` of the class's instances: by a method that keeps its
        parameter there (a setter, a constructor: ``self._on_stats = callback``,
        ``self.runtime = runtime``), what the project's calls of that method pass (functions,
        objects it builds); or a function assigned there directly (``self._handler =
        self._default_handler``)."""
        key = (cls_fq, attr)
        found = self._stored.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._stored.start(key, [])
        out: list[Val] = []
        for ci_fq, m, v, is_param in self._self_writes(cls_fq).get(f"self.{attr}", ()):
            if is_param:
                out.extend(self._passed_for(m, ci_fq, v.ref))
            else:
                val = self._stored_function(m, cls_fq, f"self.{attr}", v)
                if val is not None:
                    out.append(val)
        unique = list(dict.fromkeys(out))
        return self._stored.finish(key, unique)

    def _stored_function(self, m: Fn, cls_fq: str, target: str, v: Value) -> FuncVal | None:
        """The function a write of ``v`` into ``target`` (``self.<attr>``) by method ``m``
        stores, if it stores one: a function named (``self._handler =
        self._default_handler``), or a function wrapped by a decorator factory's decorator
        (``self.request = backoff.on_exception(...)(self._request)``: a call of the attribute
        runs the wrapper, which calls the function, the decorator's contract)."""
        ctx = Ctx(m, cls_fq)
        if v.kind in ("name", "attr") and v.ref:
            val = self.index.eval(ctx, v.ref)
            return val if isinstance(val, FuncVal) else None
        if v.kind != "call" or not v.ref.endswith("()"):
            return None
        for e in m.facts.events:
            if e.kind != K.CALL or e.ref != v.ref or e.bind != Bind.ATTR or e.name != target:
                continue
            if len(e.args) != 1 or is_kw(e.args[0]) or "(" in e.args[0]:
                return None
            val = self.index.eval(ctx, e.args[0])
            return val if isinstance(val, FuncVal) else None
        return None

    def stored_names(self, fn: Fn) -> tuple[str, ...]:
        """The attributes of ``fn``'s class that hold ``fn`` itself, bound, to be called later
        under that name (``self.request = retry(...)(self._request)``;
        ``self.handler = self._default_handler``): a call ``obj.request(...)`` runs ``fn``."""
        cls_fq = self.index.method_fn(fn)
        if cls_fq is None or fn.facts.parent is not None:
            return ()
        found = self._aliases.get(cls_fq)
        if found is MISS:
            out: dict[str, list[str]] = {}
            self._aliases.start(cls_fq, {})
            for ref, writes in self._self_writes(cls_fq).items():
                attr = ref[len("self.") :]
                if "." in attr:
                    continue
                for ci_fq, m, v, is_param in writes:
                    val = None if is_param else self._stored_function(m, ci_fq, ref, v)
                    if val is not None and val.fq.rpartition(".")[2] != attr:
                        names = out.setdefault(val.fq, [])
                        if attr not in names:
                            names.append(attr)
            found = self._aliases.finish(
                cls_fq, {fq: tuple(sorted(names)) for fq, names in out.items()}
            )
        return found.get(fn.fq, ())  # type: ignore[no-any-return]

    def _self_writes(self, cls_fq: str) -> dict[str, list[tuple[str, Fn, Value, bool]]]:
        """``self.<attr>`` -> the writes of a value there by the methods of the class and its
        bases (in method resolution order, each class's methods by name, each method's events
        in order): the class whose method it is, the method, the value, and whether the value
        is one of the method's parameters. One pass over the class's methods, for every
        attribute :meth:`stored_values` is asked about."""
        found = self._writes.get(cls_fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        out: dict[str, list[tuple[str, Fn, Value, bool]]] = {}
        self._writes.start(cls_fq, out)
        write = K.WRITE
        for ci in self.index.mro(cls_fq):
            for name in sorted(ci.facts.methods):
                m = self.index.functions.get(f"{ci.module.module}.{ci.facts.methods[name]}")
                if m is None:
                    continue
                params = {p.name for p in m.facts.params[1:]}
                for e in m.facts.events:
                    v = e.value
                    if e.kind != write or v is None or not e.ref.startswith("self."):
                        continue
                    is_param = v.kind == "name" and v.ref in params
                    out.setdefault(e.ref, []).append((ci.fq, m, v, is_param))
        return self._writes.finish(cls_fq, out)

    def _passed_for(self, m: Fn, cls_fq: str, param: str) -> list[Val]:
        """What the project's calls of method ``m`` pass for ``param`` (a function, an
        object): calls whose receiver is typed as the class, or whose method name only that
        class defines (nothing is known of the receiver)."""
        out: list[Val] = []
        is_init = m.facts.name == "__init__"
        name = cls_fq.rsplit(".", 1)[-1] if is_init else m.facts.name
        for caller, i in self.calls_by_name(name)[:64]:
            e = caller.facts.events[i]
            if last_seg(e.ref) != name:
                continue
            cctx = self.ctx(caller)
            fv: FuncVal | None = None
            for tfn, _c, tfv in self.index.callable_targets(cctx, e.ref):
                if tfn.fq == m.fq:
                    fv = tfv
            if fv is None and not is_init:
                segs = split_ref(e.ref)
                if (
                    len(segs) >= 2
                    and self.index.eval(cctx, ".".join(segs[:-1])) is None
                    and self.index.method_owners(name) == [cls_fq]
                ):
                    fv = FuncVal(m.fq, cls_fq)  # by its unique name
            if fv is None:
                continue
            bound = self.index.bind_args(m, fv, e.args, cctx)
            found, val = bound.bound(param)
            if found and isinstance(val, (FuncVal, Inst)):
                out.append(val)
        return out

    # -- locks a (synchronous) call may take -------------------------------------------------
    def acquires(self, ctx: Ctx, depth: int = 0) -> list[Acquire]:
        key = (ctx.fn.fq, ctx.recv, ctx.bindings)
        found = self._acq.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._acq.start(key, [])  # recursion guard
        out: list[Acquire] = []
        # the locks already listed: a rule asks for the first way to each (``same_lock``
        # compares identities), and the ways through every callee multiply down a call tree
        seen: set[str] = set()

        def keep(lock: LockInfo, steps: tuple[Step, ...]) -> None:
            if lock.ident not in seen:
                seen.add(lock.ident)
                out.append(Acquire(lock, steps))

        fn = ctx.fn
        for rid, region in enumerate(fn.facts.regions):
            lock = (
                self.region_lock(ctx, rid)
                if not ctx.bindings
                else self.locks.lock_of(ctx, region.ref, region.pos)
            )
            if lock is not None:
                keep(lock, (fn_step(fn, region.pos, f"takes {lock.describe} here"),))
        if depth < MAX_DEPTH:
            for ev in fn.facts.events:
                if ev.kind != K.CALL:
                    continue
                if ev.ref.endswith(".acquire"):
                    if ev.args:
                        continue  # ``acquire(blocking=False)``, or with a timeout: it gives
                        # up rather than waits for a holder (``Locks.blocking_acquire``)
                    lock = self.locks.lock_of(ctx, ev.ref[: -len(".acquire")])
                    if lock is not None:
                        keep(lock, (fn_step(fn, at(ev), f"takes {lock.describe} here"),))
                        continue
                for tfn, tctx in self.targets(ctx, ev):
                    if tfn.facts.is_async or tfn.facts.is_generator:
                        continue  # calling it only creates a coroutine/generator
                    for acq in self.acquires(tctx, depth + 1):
                        if acq.lock.ident not in seen:
                            keep(
                                acq.lock, (fn_step(fn, at(ev), f"calls `{short(tfn)}`"), *acq.steps)
                            )
        return self._acq.finish(key, out)

    # -- hand-offs an awaited call may make -------------------------------------------------
    def handoffs(self, ctx: Ctx, depth: int = 0) -> list[HandOff]:
        key = (ctx.fn.fq, ctx.recv, ctx.bindings)
        found = self._hand.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._hand.start(key, [])
        out: list[HandOff] = []
        # one path per hand-off (the first): the paths multiply at every call, and what the
        # hand-off runs is the same along each (``Summaries.registrations``)
        seen: set[tuple[Step, str, str, str | None, tuple[tuple[str, Val], ...]]] = set()
        fn = ctx.fn
        for ev in fn.facts.events:
            if ev.kind != K.CALL:
                continue
            direct = self.direct_handoff(ctx, ev)
            if direct is not None:
                out.append(direct)
                continue
            if depth >= MAX_DEPTH or ev.bind not in (Bind.AWAITED, Bind.RETURNED, Bind.ARG):
                continue
            for tfn, tctx in self.targets(ctx, ev):
                if not tfn.facts.is_async:
                    continue
                for h in self.handoffs(tctx, depth + 1):
                    tc = h.target_ctx
                    one = (h.event_step, h.target.fq, tc.fn.fq, tc.recv, tc.bindings)
                    if one in seen:
                        continue
                    seen.add(one)
                    call = fn_step(fn, at(ev), f"awaits `{short(tfn)}`")
                    out.append(HandOff(h.event_step, h.target, h.target_ctx, (call, *h.via)))
        return self._hand.finish(key, out)

    def direct_handoff(self, ctx: Ctx, ev: Event) -> HandOff | None:
        if ev.bind == Bind.NONE:
            return None  # fire and forget: nobody waits for the thread
        idx = self.locks.handoff_arg(ctx, ev.ref)
        if idx is None:
            return None
        positional = [a for a in ev.args if not is_kw(a)]
        if idx >= len(positional):
            return None
        target_ref = positional[idx]
        val = self.index.eval(ctx, target_ref)
        if not isinstance(val, FuncVal):
            return None
        tfn = self.index.functions.get(val.fq)
        if tfn is None:
            return None
        extra = tuple(positional[idx + 1 :]) + tuple(a for a in ev.args if is_kw(a))
        tctx = self.index.bind_args(tfn, val, extra, ctx)
        what = last_seg(ev.ref)
        step = fn_step(ctx.fn, at(ev), f"`{what}` runs `{short(tfn)}` on a worker thread")
        return HandOff(step, tfn, tctx, ())

    # -- reads of self attributes a call may make -------------------------------------------
    def reads(self, ctx: Ctx, depth: int = 0) -> dict[str, tuple[Step, ...]]:
        """``self.X`` refs a function (and the methods it calls on ``self``) may read:
        ref -> steps to the first read."""
        key = (ctx.fn.fq, ctx.recv)
        found = self._reads.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._reads.start(key, {})
        out: dict[str, tuple[Step, ...]] = {}
        fn = ctx.fn
        f = fn.facts
        # state the function compares with a value of its own (``if cluster_id !=
        # self._cluster_id: return``): it checks whether another task changed it, and its
        # reads of it are made knowing (hazelcast's ``_initialize_on_cluster``)
        compared = {e.ref for e in f.events if e.kind == K.READ and e.name == "compare"}
        for i, ev in enumerate(f.events):
            if ev.ref in compared:
                continue
            if (
                ev.kind == K.READ
                and ev.ref.startswith(("self.", "cls.", "global:"))
                and ev.name != "compare"
                and not only_logged(f, i)
                and not feeds_own_update(f, i)
                and not _written_since_await(f, i, ev.ref, own=True)  # its own value
            ):
                out.setdefault(ev.ref, (fn_step(fn, at(ev), f"`{ev.ref}` is read here"),))
                prop = self.property_getter(ctx, ev.ref)
                if prop is not None and depth < MAX_DEPTH:
                    for r, steps in self.reads(self.ctx_with(prop, ctx.recv), depth + 1).items():
                        call = fn_step(fn, at(ev), f"property `{prop.facts.name}`")
                        out.setdefault(r, (call, *steps))
            elif ev.kind == K.CALL and depth < MAX_DEPTH and self.reads_through(ctx, ev):
                for tfn, tctx in self.targets(ctx, ev):
                    if _other_object(ctx, tctx):
                        continue
                    for r, steps in self.reads(Ctx(tfn, tctx.recv), depth + 1).items():
                        if r in compared:
                            continue
                        call = fn_step(fn, at(ev), f"calls `{short(tfn)}`")
                        out.setdefault(r, (call, *steps))
        return self._reads.finish(key, out)

    def late_writes(self, ctx: Ctx, depth: int = 0) -> dict[str, tuple[Step, ...]]:
        """The ``self.X`` state a coroutine writes (assigns, or stores a key into) *after its
        own first await*, itself or in the methods it calls on the same object then
        (ref -> steps, the await first): what it overwrites when it finishes, whatever other
        tasks stored meanwhile."""
        key = (ctx.fn.fq, ctx.recv)
        found = self._late_w.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._late_w.start(key, {})
        out: dict[str, tuple[Step, ...]] = {}
        fn = ctx.fn
        f = fn.facts
        if f.is_async and depth < MAX_DEPTH:
            after = _awaits_before(f)
            suspend = _first_suspension(fn)
            awaited = _awaited_results(f)
            for i, ev in enumerate(f.events):
                if (
                    ev.kind in (K.WRITE, K.SETITEM)
                    and after[i]
                    and suspend is not None
                    and not ev.in_except
                    and ev.ref.startswith("self.")
                    and ev.ref.count(".") == 1
                    and ev.value is not None
                    and awaited & ({ev.value.ref} | set(ev.value.names))
                    and not any(self.region_lock(ctx, r) is not None for r in ev.regions)
                ):
                    # a value computed from what was awaited, stored outside any lock
                    w = fn_step(fn, at(ev), f"`{ev.ref}` is written here, after that await")
                    out.setdefault(ev.ref, (suspend, w))
                elif (
                    ev.kind == K.CALL and ev.bind == Bind.AWAITED and self.same_object_call(ctx, ev)
                ):
                    for tfn, tctx in self.targets(ctx, ev):
                        if _other_object(ctx, tctx):
                            continue
                        call = fn_step(fn, at(ev), f"awaits `{short(tfn)}`")
                        for r, steps in self.late_writes(Ctx(tfn, tctx.recv), depth + 1).items():
                            out.setdefault(r, (call, *steps))
        return self._late_w.finish(key, out)

    def late_reads(self, ctx: Ctx, depth: int = 0) -> dict[str, tuple[Step, ...]]:
        """The ``self.X`` (and module) state a coroutine may read *after its own first await*,
        itself or in what it calls then (ref -> steps, the await first): what a caller that
        stored the state just before awaiting this coroutine may find overwritten."""
        key = (ctx.fn.fq, ctx.recv)
        found = self._late.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._late.start(key, {})
        out: dict[str, tuple[Step, ...]] = {}
        fn = ctx.fn
        f = fn.facts
        if f.is_async and depth < MAX_DEPTH:
            after = _awaits_before(f)
            suspend = _first_suspension(fn)
            for i, ev in enumerate(f.events):
                if (
                    ev.kind == K.READ
                    and after[i]
                    and suspend is not None
                    and ev.ref.startswith(("self.", "cls.", "global:"))
                    and ev.name != "compare"
                    and not only_logged(f, i)
                    and not feeds_own_update(f, i)
                    and not _written_since_await(f, i, ev.ref, own=True)  # its own value
                ):
                    read = fn_step(fn, at(ev), f"`{ev.ref}` is read here, after that await")
                    out.setdefault(ev.ref, (suspend, read))
                elif ev.kind == K.CALL and self.reads_through(ctx, ev):
                    for tfn, tctx in self.targets(ctx, ev):
                        if _other_object(ctx, tctx):
                            continue
                        call = fn_step(fn, at(ev), f"calls `{short(tfn)}`")
                        if after[i] and suspend is not None:
                            for r, steps in self.reads(Ctx(tfn, tctx.recv), depth + 1).items():
                                if r not in out and not _written_since_await(f, i, r):
                                    out[r] = (suspend, call, *steps)
                        elif ev.bind == Bind.AWAITED:
                            inner = self.late_reads(Ctx(tfn, tctx.recv), depth + 1)
                            for r, steps in inner.items():
                                out.setdefault(r, (call, *steps))
        return self._late.finish(key, out)

    def same_object_call(self, ctx: Ctx, ev: Event) -> bool:
        """A call that runs on the same object: ``self.m(...)``, or a nested function (which
        closes over ``self``). Only such calls can touch this object's ``self.X`` state."""
        segs = split_ref(ev.ref)
        if len(segs) == 2 and segs[0] in ("self", "cls"):
            return True
        return len(segs) == 1 and self.index.nested_named(ctx.fn, segs[0]) is not None

    def reads_through(self, ctx: Ctx, ev: Event) -> bool:
        """Calls whose reads of ``self``/module state are the caller's state too: methods on
        ``self`` and functions of the same module."""
        if ev.ref.startswith(("self.", "cls.")):
            return True
        if not ev.ref or "." in ev.ref or "(" in ev.ref:
            return False
        return any(t.module is ctx.fn.module for t, _c in self.targets(ctx, ev))

    def ctx_with(self, fn: Fn, recv: str | None) -> Ctx:
        return Ctx(fn, recv)

    def property_getter(self, ctx: Ctx, ref: str) -> Fn | None:
        segs = split_ref(ref)
        if len(segs) != 2 or ctx.recv is None:
            return None
        m = self.index.find_method(ctx.recv, segs[1])
        return m if m is not None and is_property(m.facts) else None

    def is_contextvar(self, ctx: Ctx, ref: str) -> bool:
        """Does ``ref`` name a ``contextvars.ContextVar`` (a module variable made or annotated
        as one, also one imported from another project module: ``from pkg import current``,
        where ``pkg/__init__.py`` says ``current = ContextVar(...)``)?"""
        val = self.index.eval(ctx, ref)
        if isinstance(val, Inst):
            return val.fq.rsplit(".", 1)[-1] == "ContextVar"
        if isinstance(val, ExtName):
            mod, _, name = val.fq.rpartition(".")
            m = self.index.modules.get(mod)
            if m is not None:
                t = m.global_types.get(name)
                if t:
                    return self.index.resolve(m, t).rsplit(".", 1)[-1] == "ContextVar"
        return False

    def per_task_attr(self, ctx: Ctx, ref: str) -> bool:
        """Is ``self.<attr>`` a property whose getter or setter goes through a ``ContextVar``
        (``return _ACTIVE.get().get(self)``, ``_ACTIVE.set(active)``)? Each task then sees and
        sets its own value: what another task stores is not in this one's view."""
        segs = split_ref(ref)
        if len(segs) != 2 or ctx.recv is None:
            return False
        prop = self.index.find_method(ctx.recv, segs[1])
        if prop is None or not (
            is_property(prop.facts) or any(d.endswith(".setter") for d in prop.facts.decorators)
        ):
            return False  # (a setter defined after its getter hides it in the facts)
        pctx = Ctx(prop, ctx.recv)
        return any(
            e.kind == K.CALL
            and e.ref.endswith((".get", ".set"))
            and self.is_contextvar(pctx, e.ref.rpartition(".")[0])
            for e in prop.facts.events
        )

    # -- registrations into shared state ----------------------------------------------------
    def registrations(self, ctx: Ctx, depth: int = 0) -> list[Registration]:
        """Every registration a function (and what it calls or spawns on ``self``) makes into
        ``self`` state, with the steps to it and whether an await may come first."""
        key = (ctx.fn.fq, ctx.recv)
        found = self._regs.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._regs.start(key, [])
        out: list[Registration] = []
        deep: set[tuple[str, bool, bool, frozenset[str], bool]] = set()
        fn = ctx.fn
        awaited, guards, found_in = self._registration_shape(fn.facts)
        for i, ev in enumerate(fn.facts.events):
            guarded = guards[i]
            reg = registration_of(ev)
            if reg is not None and ev.kind != K.WRITE and reg in found_in[i]:
                continue  # ``if key in self._x: self._x[key] = newer``: an update, no entry
            if reg is not None:
                step = fn_step(fn, at(ev), f"`{reg.removeprefix('global:')}` is registered here")
                bulk = ev.repeated or ev.ref.rpartition(".")[2] in ("update", "extend")
                out.append(
                    Registration(reg, (step,), awaited[i], ev.kind == K.WRITE, guarded, bulk)
                )
                continue
            if ev.kind != K.CALL or depth >= MAX_DEPTH or not self.same_object_call(ctx, ev):
                continue
            for tfn, tctx in self.targets(ctx, ev):
                spawned = ev.bind == Bind.ARG and tfn.facts.is_async  # create_task(f())
                regs = self.registrations(Ctx(tfn, tctx.recv), depth + 1)
                if not regs:
                    continue
                label = "spawns" if spawned else "calls"
                call = fn_step(fn, at(ev), f"{label} `{short(tfn)}`")  # (one step, shared)
                for r in regs:
                    if not r.is_write and r.attr in found_in[i]:
                        continue  # called only where the entry exists: it updates it
                    late = r.late or awaited[i]
                    joint = r.guarded | guarded if guarded else r.guarded
                    bulk = r.bulk or ev.repeated
                    if len(r.steps) >= SHOWN_REG_STEPS:
                        # a registration three calls away or more: kept once per kind (the
                        # paths to it multiply with every call on the way, exponentially in
                        # a class whose methods call each other; its askers want only
                        # whether one is there, pycascadeui's views, set 112)
                        kind = (r.attr, r.is_write, late, joint, bulk)
                        if kind in deep:
                            continue
                        deep.add(kind)
                    out.append(
                        Registration(r.attr, (call, *r.steps), late, r.is_write, joint, bulk)
                    )
        return self._regs.finish(key, out)

    def _registration_shape(
        self, f: FunctionFacts
    ) -> tuple[list[bool], list[frozenset[str]], list[frozenset[str]]]:
        """For each event of a function: may an await have happened before it, the
        attributes whose guard protects it, and the containers whose entry a check found
        there, on the only way to it (:meth:`registrations`). Of the function's facts alone:
        kept per function (the same function is asked on several receivers)."""
        found = self._shapes.get(id(f))
        if found is not None and found[0] is f:
            return found[1], found[2], found[3]
        awaited = _awaits_before(f)
        checks, present = _guard_reach(f)
        none: frozenset[str] = frozenset()
        guards = [
            frozenset(attr for attr, reach in checks if i in reach) if checks else none
            for i in range(len(f.events))
        ]
        found_in = [
            frozenset(attr for attr, reach in present if i in reach) if present else none
            for i in range(len(f.events))
        ]
        self._shapes[id(f)] = (f, awaited, guards, found_in)
        return awaited, guards, found_in

    # -- cancellation ----------------------------------------------------------------------
    def suspends(self, ctx: Ctx, depth: int = 0) -> tuple[Step, ...] | None:
        """Can awaiting this coroutine be cancelled before it completes? The steps to its
        first suspension point (an ``await``, ``async with``, ``async for``) that a
        cancellation can interrupt; None when it never suspends, or only in
        ``asyncio.shield(...)`` (the shielded work completes) or in callees that never do.
        ``()`` at the depth bound: assumed to suspend. A recursion adds no suspension point
        of its own (``push`` -> ``_process`` -> ``push``): the cycle suspends where one of its
        functions awaits something that does, which the search finds from the function it
        was entered at; what is computed on the cycle depends on that entry, so only the
        entry's answer is kept."""
        key = (ctx.fn.fq, ctx.recv)
        active = self._suspends_active
        if key in active:
            for k in active[active.index(key) :]:
                self._suspends_cyclic.add(k)
            return None
        found = self._suspends.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._suspends.start(key, ())
        active.append(key)
        try:
            out = self._suspends_of(ctx, depth)
        finally:
            active.pop()
        if key in self._suspends_cyclic and active:
            # inside a cycle entered elsewhere: not kept, so every answer kept is the one
            # computed from this function itself (incremental runs ask in another order)
            self._suspends_cyclic.discard(key)
            self._suspends.values.pop(key, None)
            self.tracker.end()
            return out
        self._suspends_cyclic.discard(key)
        return self._suspends.finish(key, out)

    def _suspends_of(self, ctx: Ctx, depth: int) -> tuple[Step, ...] | None:
        f = ctx.fn.facts
        out: tuple[Step, ...] | None = None
        if is_stub(f):  # an interface (``raise NotImplementedError``): the real one may
            return ()
        for i, ev in enumerate(f.events):
            if ev.kind != K.AWAIT:
                continue
            if ev.name == "async with exit" and self.locks.lock_of(ctx, ev.ref) is not None:
                continue  # releasing a lock does not suspend
            here = fn_step(
                ctx.fn, at(ev), f"{ev.name} in `{short(ctx.fn)}`: it may be cancelled here"
            )
            call = f.events[i - 1] if i > 0 else None
            if (
                ev.name != "await"
                or call is None
                or call.kind != K.CALL
                or call.bind != Bind.AWAITED
            ):
                out = (here,)
                break
            if split_ref(call.ref)[-1:] == ["shield"]:
                continue  # the shielded work runs to its end even if this task is cancelled
            targets = self.call_targets(ctx, call)
            if not targets and self._unbounded_put(ctx, call):
                continue  # a put on a queue with no bound returns at once
            if not targets or depth >= MAX_DEPTH:
                if targets:  # cut by the depth bound: what depends on it is not kept
                    self._suspends_cyclic.update(self._suspends_active)
                out = (here,)
                break
            inner: tuple[Step, ...] | None = None
            for tfn, tctx, _fv in targets:
                if not tfn.facts.is_async:
                    inner = ()  # awaits what a plain function returns: not known
                    break
                sub = self.suspends(Ctx(tfn, tctx.recv), depth + 1)
                if sub is not None:
                    inner = sub
                    break
            if inner is not None:
                out = (fn_step(ctx.fn, at(call), f"awaits `{call.ref}`"), *(inner or (here,)))
                break
        return out

    def suspending(self, ctx: Ctx, i: int) -> bool:
        """Can the await at event ``i`` of ``ctx``'s function let other tasks run? Not when it
        awaits coroutines of the project that never suspend themselves (:meth:`suspends`:
        ``async def record(...)`` with no await inside), nor a lock's release; anything not
        known suspends."""
        f = ctx.fn.facts
        ev = f.events[i]
        if ev.kind != K.AWAIT:
            return False
        if ev.name == "async with exit":
            return self.locks.lock_of(ctx, ev.ref) is None
        if ev.name == "async with":
            return not self.free_lock_entry(ctx, ev.ref)
        call = f.events[i - 1] if i > 0 else None
        if ev.name != "await" or call is None or call.kind != K.CALL or call.bind != Bind.AWAITED:
            return True
        targets = self.call_targets(ctx, call)
        if not targets:
            return not self._unbounded_put(ctx, call)
        return any(
            not tfn.facts.is_async or self.suspends(Ctx(tfn, tctx.recv)) is not None
            for tfn, tctx, _fv in targets
        )

    def free_lock_entry(self, ctx: Ctx, ref: str) -> bool:
        """Is ``async with <ref>:`` the entry of an asyncio lock that no task ever holds
        across a suspension (:meth:`never_held_across_suspension`)? Its acquire always finds
        it free and takes it at once, without giving the loop away."""
        lock = self.locks.lock_of(ctx, ref)
        return (
            lock is not None
            and lock.type_fq in ASYNCIO_LOCKS
            and self.never_held_across_suspension(ctx.fn, ref)
        )

    def never_held_across_suspension(self, fn: Fn, ref: str) -> bool:
        """Is the asyncio lock ``self.<attr>`` held only for code that does not suspend, in
        every method of ``fn``'s class, its bases and its subclasses? Every ``async with`` of
        it awaits nothing but the lock's own ``wait()``/``wait_for()`` (a condition's wait
        releases the lock while it waits), and it is never acquired by hand nor handed to
        other code. Then no holder is ever suspended, and an acquire never waits (``async
        with self.condition: self.condition.notify()``; ``async with self._lock:`` around
        dict updates only). Memoized per class and attribute."""
        segs = split_ref(ref)
        idx = self.index
        cls = idx.method_fn(fn)
        if len(segs) != 2 or segs[0] != "self" or cls is None:
            return False
        key = (cls, ref)
        found = self._free_locks.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._free_locks.start(key, False)
        own = {ref + ".wait", ref + ".wait_for"}
        out = True
        for m in idx.methods_of(idx.hierarchy(cls)):
            events = m.facts.events
            if any(ref in ev.args or ev.ref == ref + ".acquire" for ev in events):
                out = False  # handed on, or taken by hand: its holders are not in view
                break
            for rid, region in enumerate(m.facts.regions):
                if region.ref != ref:
                    continue
                if any(
                    ev.kind == K.AWAIT and rid in ev.regions and ev.ref not in own
                    for ev in events[region.first : region.last]
                ):
                    out = False
                    break
            if not out:
                break
        return self._free_locks.finish(key, out)

    def _unbounded_put(self, ctx: Ctx, call: Event) -> bool:
        """``await self._queue.put(item)`` on an ``asyncio.Queue`` every assignment of which
        makes it with no bound (``asyncio.Queue()``): ``put`` returns without suspending."""
        segs = split_ref(call.ref)
        if len(segs) == 2 and segs[-1] == "put" and ctx.recv is not None:
            # ``for q in list(self._subscribers): await q.put(event)``: a queue of the object's
            container = _iterated_attr(ctx.fn.facts, segs[0], call)
            return bool(container) and self._unbounded_elements(ctx.recv, container)
        if len(segs) < 3 or segs[-1] != "put":
            return False
        if len(segs) == 3 and segs[0] == "self":
            owner = ctx.recv
        else:
            # the queue of another object of the project (``session.output_queue.put(...)``,
            # ``session`` a ``ChatSession`` looked up in a typed dict)
            val = self.index.eval(ctx, ".".join(segs[:-2]))
            owner = val.fq if isinstance(val, Inst) and val.fq in self.index.classes else None
        if owner is None:
            return False
        return self._unbounded_queue(owner, segs[-2])

    def _unbounded_queue(self, owner: str, attr: str, depth: int = 0) -> bool:
        """Is ``<attr>`` of the class ``owner`` an ``asyncio.Queue`` every assignment of which
        makes it with no bound (``None`` aside: not made yet)? A property that returns one
        attribute (``return self._event_queue``, made lazily there) stands for it."""
        prop = self.index.find_method(owner, attr)
        if prop is not None and is_property(prop.facts):
            inner = returned_self_attr(prop)
            if depth > 2 or not inner or inner == attr:
                return False
            return self._unbounded_queue(owner, inner, depth + 1)
        if self.index.attr_type(owner, attr).rpartition(".")[2] not in _QUEUES:
            return False
        made = False
        for m in self.index.methods_of(self.index.mro(owner)):
            events = m.facts.events
            for j, e in enumerate(events):
                if e.kind != K.WRITE or e.ref != f"self.{attr}":
                    continue
                v = e.value
                if v is not None and v.kind == "const" and v.ref == "falsy" and not v.literal:
                    continue  # ``self._queue = None``: not made yet
                if not _unbounded_made(events, j, v):
                    return False  # something else, or ``Queue(10)``, ``Queue(maxsize=n)``
                made = True
        if not made:
            # a dataclass field made by ``field(default_factory=asyncio.Queue)`` and never
            # assigned by a method: the queue class called with no bound
            factory = self.index.attr_type(owner, f"{attr}()")
            return factory.rpartition(".")[2] in _QUEUES
        return made

    def _unbounded_elements(self, owner: str, attr: str) -> bool:
        """Is every element the class ``owner`` puts into its container ``self.<attr>`` an
        ``asyncio.Queue`` made with no bound (``queue = asyncio.Queue()``, then
        ``self._subscribers.add(queue)``), and the container only ever made empty? A broker's
        subscriber queues: a ``put`` on one returns at once."""
        state = f"self.{attr}"
        found = False
        for m in self.index.methods_of(self.index.mro(owner)):
            events = m.facts.events
            for j, e in enumerate(events):
                if e.kind == K.WRITE and e.ref == state:
                    v = e.value
                    if v is None or v.kind != "call" or v.ref not in _EMPTY_MAKERS:
                        return False  # filled some other way
                    made_by = next(
                        (c for c in reversed(events[:j]) if c.kind == K.CALL and c.ref == v.ref),
                        None,
                    )
                    if made_by is None or made_by.args:
                        return False
                    continue
                if e.kind == K.SETITEM and e.ref == state:
                    element = e.value.ref if e.value is not None and e.value.kind == "name" else ""
                elif e.kind == K.CALL and e.ref.rpartition(".")[0] == state:
                    method = e.ref.rpartition(".")[2]
                    if method in ("add", "append", "appendleft", "insert"):
                        args = [a for a in e.args if not is_kw(a)]
                        element = args[-1] if args else ""
                    elif method in ("update", "extend", "setdefault", "__setitem__"):
                        return False  # filled with what is not seen here
                    else:
                        continue
                else:
                    continue
                if not element or not _unbounded_local(events, j, element):
                    return False
                found = True
        return found

    def call_targets(self, ctx: Ctx, ev: Event) -> list[tuple[Fn, Ctx, FuncVal]]:
        """The project functions a call may run (``Index.callable_targets``), and for
        ``super().name(...)`` the next implementation in the receiver's MRO."""
        if not ev.ref.startswith("super()."):
            return self.index.callable_targets(ctx, ev.ref)
        segs = split_ref(ev.ref)
        if len(segs) == 2:
            found = self.super_method(ctx, segs[1])
            if found is None:
                return []
            fv = FuncVal(found.fq, ctx.recv)
            return [(found, Ctx(found, ctx.recv), fv)]
        return self.index.callable_targets(ctx, ev.ref)

    def super_method(self, ctx: Ctx, name: str) -> Fn | None:
        """What ``super().name`` is in a method running for ``ctx.recv``: the first class
        after the method's own in the receiver's MRO that defines ``name``."""
        own = self.index.method_fn(ctx.fn)
        if own is None or ctx.fn.facts.parent is not None:
            return None
        mro = self.index.mro(ctx.recv or own)
        if all(c.fq != own for c in mro):
            mro = self.index.mro(own)  # a receiver whose MRO could not be linked to ``own``
        after = False
        tracker = self.tracker
        for c in mro:
            if not after:
                after = c.fq == own
                continue
            q = c.facts.methods.get(name)
            if q is not None:
                return self.index.functions.get(f"{c.module.module}.{q}")
            if tracker.frames:
                tracker.frames[-1].add(f"{NAME_KEY}{c.fq}.{name}")
        return None

    def invalidates_on_cancel(self, ctx: Ctx, depth: int = 0) -> Step | None:
        """Does this method make its own object unusable when a cancellation interrupts it?
        A ``try`` around a suspension whose ``except (CancelledError | BaseException)`` (or
        bare ``except``) disconnects, closes or aborts ``self`` (redis-py's
        ``read_response``: ``except BaseException: await self.disconnect(); raise``), itself
        or in a method it awaits on ``self``. The step of that invalidation, or None."""
        key = (ctx.fn.fq, ctx.recv)
        found = self._invalidates.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._invalidates.start(key, None)
        f = ctx.fn.facts
        out: Step | None = None
        for t in f.tries:
            if not any(e.kind == K.AWAIT for e in f.events[t.first : t.body_end]):
                continue
            out = invalidation_in(ctx.fn, t, "self")
            if out is not None:
                break
        if out is None and depth < MAX_DEPTH:
            for ev in f.events:
                if ev.kind != K.CALL or ev.bind != Bind.AWAITED:
                    continue
                if not ev.ref.startswith(("self.", "super().")) or ev.ref.count(".") != 1:
                    continue
                for tfn, tctx, _fv in self.call_targets(ctx, ev):
                    if tfn.facts.is_async:
                        out = self.invalidates_on_cancel(Ctx(tfn, tctx.recv), depth + 1)
                        if out is not None:
                            break
                if out is not None:
                    break
        return self._invalidates.finish(key, out)

    def exchange(self, ctx: Ctx, res: str, depth: int = 0) -> Exchange:
        """What awaiting this function does with the resource (a connection) named ``res`` in
        it (a parameter, a closure variable, ``self``): sends a request on it, reads a reply
        from it, or both, in that order, itself, through the coroutines it awaits with the
        resource and through the callbacks (lambdas, nested functions) it hands to an awaited
        call. Reads that invalidate the resource when cancelled are left out: they cannot
        leave it in the middle of an exchange."""
        key = (ctx.fn.fq, ctx.recv, ctx.bindings, res)
        found = self._exchanges.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._exchanges.start(key, NO_EXCHANGE)
        out = NO_EXCHANGE
        for i in range(len(ctx.fn.facts.events)):
            sub = self.exchange_at(ctx, i, res, depth)
            if sub is not None:
                out = out.then(sub)
        return self._exchanges.finish(key, out)

    def exchange_at(self, ctx: Ctx, i: int, res: str, depth: int = 0) -> Exchange | None:
        """What event ``i`` of the function does with the resource ``res``: see
        :meth:`exchange`."""
        fn = ctx.fn
        f = fn.facts
        ev = f.events[i]
        if ev.kind != K.CALL or not ev.ref:
            return None
        awaited = ev.bind in (Bind.AWAITED, Bind.RETURNED, Bind.ARG)
        segs = split_ref(ev.ref)
        if ev.ref.startswith(res + ".") and len(segs) == len(split_ref(res)) + 1:
            method = segs[-1]
            if is_send(method):
                return Exchange(send=(fn_step(fn, at(ev), f"sends on `{res}` here"),))
            if awaited and is_read(method):
                if self._read_invalidates(ctx, ev, i, res):
                    return None
                return Exchange(read=(fn_step(fn, at(ev), f"reads the reply from `{res}` here"),))
            if awaited and depth < MAX_DEPTH:
                # a method of the resource that makes the request/reply pair itself
                for tfn, tctx in self.targets(ctx, ev):
                    sub = self.exchange(Ctx(tfn, tctx.recv), "self", depth + 1)
                    if sub.read and not self._protected(fn, i, res):
                        return sub.via(fn_step(fn, at(ev), f"awaits `{ev.ref}`"))
            return None
        out: Exchange | None = None
        passed = [j for j, a in enumerate(ev.args) if a == res or a.endswith("=" + res)]
        if passed and awaited and depth < MAX_DEPTH:  # past the bound: not known, not a read
            targets = self.call_targets(ctx, ev)
            for tfn, _c, fv in targets:
                param = param_for(tfn, fv, ev.args, passed[0])
                if param is None:
                    continue
                sub = self.exchange(self.index.bind_args(tfn, fv, ev.args, ctx), param, depth + 1)
                if sub.send or sub.read:
                    out = sub.via(fn_step(fn, at(ev), f"awaits `{short(tfn)}` with `{res}`"))
                    break
            if not targets:
                name = segs[-1] if segs else ""
                if is_send(name):
                    out = Exchange(send=(fn_step(fn, at(ev), f"sends on `{res}` here"),))
                elif is_read(name):
                    out = Exchange(
                        read=(fn_step(fn, at(ev), f"reads the reply from `{res}` here"),)
                    )
            if out is not None and out.read and self._protected(fn, i, res):
                out = Exchange(send=out.send)
        if out is None and awaited and depth < MAX_DEPTH:
            # callbacks handed to the awaited call, which run with the resource they close over
            for a in ev.args:
                ref = a.partition("=")[2] if is_kw(a) else a
                cb = self._callback(ctx, ref)
                if cb is None or any(p.name == res for p in cb.facts.params):
                    continue
                sub = self.exchange(Ctx(cb, ctx.recv), res, depth + 1)
                if sub.send or sub.read:
                    out = sub.via(fn_step(fn, at(ev), f"awaits `{ev.ref}`, which runs it"))
                    if out.read and self._protected(fn, i, res):
                        out = Exchange(send=out.send)
                    break
        return out

    def _callback(self, ctx: Ctx, ref: str) -> Fn | None:
        if ref.startswith("lambda:"):
            return self.index.functions.get(f"{ctx.fn.module.module}.{ref[7:]}")
        if ref and "." not in ref and "(" not in ref and "[" not in ref:
            return self.index.nested_named(ctx.fn, ref)
        return None

    def _read_invalidates(self, ctx: Ctx, ev: Event, i: int, res: str) -> bool:
        """A read that leaves no half-read resource behind when cancelled: the read method
        invalidates its object on cancellation, or a handler here does."""
        if self._protected(ctx.fn, i, res):
            return True
        targets = self.call_targets(ctx, ev)
        return bool(targets) and all(
            self.invalidates_on_cancel(Ctx(t, c.recv)) is not None for t, c, _fv in targets
        )

    @staticmethod
    def _protected(fn: Fn, i: int, res: str) -> bool:
        """Is event ``i`` inside a ``try`` whose cancellation handler invalidates ``res``?"""
        f = fn.facts
        return any(
            t.first <= i < t.body_end and invalidation_in(fn, t, res) is not None for t in f.tries
        )

    def pool_returns(self, ctx: Ctx, depth: int = 0) -> dict[str, tuple[Step, ...]]:
        """The resources this function hands back to a shared pool (``pool.release(conn)``,
        ``self._free.append(conn)``): ref -> the steps to the return. Through the methods it
        calls on ``self`` (``await self.reset()``), for the ``self.X`` resources."""
        key = (ctx.fn.fq, ctx.recv)
        found = self._returns.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._returns.start(key, {})
        out: dict[str, tuple[Step, ...]] = {}
        fn = ctx.fn
        for ev in fn.facts.events:
            if ev.kind != K.CALL:
                continue
            for r in returned_to_pool(ev):
                out.setdefault(r, (fn_step(fn, at(ev), f"`{r}` goes back to the pool here"),))
            if depth < MAX_DEPTH and self.same_object_call(ctx, ev):
                for tfn, tctx in self.targets(ctx, ev):
                    for r, steps in self.pool_returns(Ctx(tfn, tctx.recv), depth + 1).items():
                        if r.startswith("self."):
                            call = fn_step(fn, at(ev), f"calls `{short(tfn)}`")
                            out.setdefault(r, (call, *steps))
        return self._returns.finish(key, out)

    # -- lookups by name across the project -----------------------------------------------
    def use_mentions(self, known: dict[str, ModuleMentions]) -> None:
        """Build the project's mention index now, from the modules' mentions known already
        (computed elsewhere: ``run.link`` shares them out between two processes) and those of
        the others."""
        if self._mentions is None and self._mentions_source is None:
            self._mentions = Mentions.build(self.index.modules.values(), known)

    def mentions(self) -> Mentions:
        if self._mentions is None:
            if self._mentions_source is not None:
                self._mentions = self._mentions_source()
            else:
                self._mentions = Mentions.build(self.index.modules.values())
        return self._mentions

    def calls_of(self, fn: Fn) -> list[tuple[Fn, int, bool]]:
        """The calls of ``fn`` in the project: (caller, event index, whether the call's target
        is known), found by its name and kept when their targets include ``fn`` or are not
        known (what to make of those is the asker's to say)."""
        out: list[tuple[Fn, int, bool]] = []
        name = fn.facts.name
        for caller, i in self.calls_by_name(name):
            ev = caller.facts.events[i]
            if ev.kind != K.CALL or ev.ref.rpartition(".")[2] != name:
                continue
            targets = self.targets(self.ctx(caller), ev)
            if not targets or any(t.fq == fn.fq for t, _c in targets):
                out.append((caller, i, bool(targets)))
        return out

    def attr_read_off_others(self, name: str) -> bool:
        """Does any module of the project read an attribute ``name`` off another object than
        ``self`` or ``cls`` (``client.ready``, ``self.client.ready``, ``getattr(c, "ready")``)?
        Where nothing does, an object's public attribute of that name is read, if at all, by
        the object's own methods."""
        self.tracker.note(READ_ATTR_KEY + name)
        return name in self.mentions().attrs

    def calls_by_name(self, name: str) -> list[tuple[Fn, int]]:
        """(function, event index) of every call of ``name`` (by its last name), and of every
        spawner call that passes a ref of that name (``start_soon(self._loop)``), in the order
        of the functions' names. Only the modules whose bodies mention the name are read."""
        found = self._named_calls.get(name)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._named_calls.start(name, [])
        self.tracker.note(CALL_KEY + name)
        out: list[tuple[Fn, int]] = []
        for mod in self.mentions().calls.get(name, ()):
            m = self.index.modules.get(mod)
            if m is None:
                continue
            out.extend(self.module_calls(m).get(name, ()))
        out.sort(key=lambda fi: (fi[0].fq, fi[1]))
        return self._named_calls.finish(name, out)

    def module_calls(self, m: ModuleFacts) -> dict[str, list[tuple[Fn, int]]]:
        """Name -> (function, event index) of the module's calls of that name (by the last name
        of the callee), and of its spawner calls that pass a ref of that name: one pass over
        the module's bodies, kept; every use notes the module as read."""
        found = self._module_calls.get(m.module)
        if found is not None and found[0] is m:
            self.tracker.note(m.module)
            return found[1]
        table: dict[str, list[tuple[Fn, int]]] = {}
        call = K.CALL
        setdefault = table.setdefault
        for q in m.functions:
            fn = self.index.functions.get(f"{m.module}.{q}")
            if fn is None or fn.module is not m:
                continue
            i = -1
            for e in fn.facts.events:
                i += 1
                if e.kind != call or not e.ref:
                    continue
                last = called_name(e.ref)
                setdefault(last, []).append((fn, i))
                if "." not in e.ref and fn.facts.cls is not None:
                    for n in dynamic_names(m, fn.facts, e):  # ``getattr(self, f"_x_{k}")``
                        setdefault(n, []).append((fn, i))
                if last in SPAWNERS:
                    for a in e.args:
                        ref = a.partition("=")[2] if is_kw(a) else a
                        if ref and "(" not in ref:
                            setdefault(last_seg(ref), []).append((fn, i))
        self.tracker.note(m.module)
        self._module_calls[m.module] = (m, table)
        return table

    def self_callers(self, cls_fq: str) -> dict[str, list[Fn]]:
        """Method name -> methods of the class (and its bases) that call ``self.<name>``."""
        found = self._callers.get(cls_fq)
        if found is MISS:
            self._callers.start(cls_fq, {})
            out: dict[str, list[Fn]] = {}
            for ci in self.index.mro(cls_fq):
                self.tracker.note(ci.module.module)  # its methods, however many
                for q in ci.facts.methods.values():
                    caller = self.index.functions.get(f"{ci.module.module}.{q}")
                    if caller is None:
                        continue
                    for e in caller.facts.events:
                        if e.kind == K.CALL and e.ref.startswith("self.") and e.ref.count(".") == 1:
                            lst = out.setdefault(e.ref[5:], [])
                            if caller not in lst:
                                lst.append(caller)
            found = self._callers.finish(cls_fq, out)
        return found  # type: ignore[no-any-return]

    def passed_on(self, target: Fn) -> bool:
        """Is ``target`` itself (not just something of the same name) passed as an argument
        somewhere: a decorator's or a default's argument, or a call's argument?"""
        name = target.facts.name
        self.tracker.note(ARG_KEY + name)
        for mod in self.mentions().args.get(name, ()):
            m = self.index.modules.get(mod)
            if m is None:
                continue
            self.tracker.note(mod)  # its refs passed outside bodies (``m.passed``)
            if any(
                r.rsplit(".", 1)[-1] == name and self.index.resolve(m, r) == target.fq
                for r in m.passed
            ):
                return True
            for q in sorted(m.functions):
                fn = self.index.functions.get(f"{m.module}.{q}")
                if fn is None or fn.module is not m:
                    continue
                ctx = self.ctx(fn)
                for e in fn.facts.events:
                    if e.kind != K.CALL:
                        continue
                    for a in e.args:
                        ref = a.partition("=")[2] if is_kw(a) else a
                        if ref and "(" not in ref and last_seg(ref) == name:
                            val = self.index.eval(ctx, ref)
                            if isinstance(val, FuncVal) and val.fq == target.fq:
                                return True
        return False


# exception types whose handler runs when the task is cancelled (a bare ``except:`` too)
CANCEL_TYPES: frozenset[str] = frozenset(
    {"CancelledError", "BaseException", "Cancelled", "get_cancelled_exc_class()"}
)
_INVALIDATE_WORDS = frozenset(
    {"disconnect", "close", "aclose", "abort", "terminate", "invalidate", "kill", "destroy"}
)
_SEND_FIRST = frozenset({"send", "sendall", "sendto", "write", "writelines"})
_READ_FIRST = frozenset(
    {"read", "recv", "receive", "readline", "readlines", "readexactly", "readuntil", "readinto"}
)
_REPLY_WORDS = frozenset({"response", "responses", "reply", "replies"})
_POOL_PUTS = frozenset({"append", "appendleft", "put", "put_nowait", "add"})
_POOL_WORDS = frozenset({"pool", "free", "idle", "available", "conns", "connections"})


def name_words(name: str) -> list[str]:
    """``_send_packed_command`` -> ``["send", "packed", "command"]``."""
    return [w for w in name.lower().split("_") if w]


def is_send(method: str) -> bool:
    """``send``, ``send_command``, ``write``: a method that sends a request."""
    ws = name_words(method)
    return bool(ws) and ws[0] in _SEND_FIRST


def is_read(method: str) -> bool:
    """``read``, ``recv``, ``read_response``, ``parse_response``: one that reads a reply."""
    ws = name_words(method)
    if not ws:
        return False
    if ws[0] in _READ_FIRST:
        return True
    return ws[0] in ("parse", "get", "wait", "await", "fetch") and any(
        w in _REPLY_WORDS for w in ws[1:]
    )


def invalidating(method: str) -> bool:
    """``disconnect``, ``close``, ``abort``: a method that makes a resource unusable."""
    return any(w in _INVALIDATE_WORDS for w in name_words(method))


def is_stub(f: FunctionFacts) -> bool:
    """A body that only stands for implementations elsewhere: ``...``, ``pass``, a docstring,
    ``raise NotImplementedError``, or an ``@abstractmethod``."""
    if any(d.rsplit(".", 1)[-1] == "abstractmethod" for d in f.decorators):
        return True
    for e in f.events:
        if e.kind in (K.ENTRY, K.EXIT, K.NOP, K.RAISE):
            continue
        if e.kind == K.RETURN and not f.returns_refs:
            continue
        if e.kind == K.CALL and e.ref.endswith("NotImplementedError"):
            continue
        return False
    return True


def catches_cancel(h: Handler) -> bool:
    """Does this ``except`` run when the task is cancelled?"""
    return not h.types or any(last_seg(t) in CANCEL_TYPES for t in h.types if t)


def invalidation_in(fn: Fn, t: Try, res: str) -> Step | None:
    """The step where a cancellation handler of ``t`` invalidates ``res``
    (``except CancelledError: await conn.disconnect(); raise``), or None."""
    events = fn.facts.events
    for h in t.handlers:
        if not catches_cancel(h):
            continue
        for ev in events[h.first : h.last]:
            if ev.kind != K.CALL or not ev.ref:
                continue
            segs = split_ref(ev.ref)
            on_res = ev.ref.startswith(res + ".") and len(segs) == len(split_ref(res)) + 1
            given = any(a == res or a.endswith("=" + res) for a in ev.args)
            if (on_res or given) and invalidating(segs[-1]):
                return fn_step(fn, at(ev), f"`{res}` is invalidated here when cancelled")
    return None


def returned_to_pool(ev: Event) -> list[str]:
    """The refs a call hands back to a shared pool: ``pool.release(conn)``,
    ``self._free.append(conn)``, ``self._idle.put_nowait(conn)``."""
    segs = split_ref(ev.ref)
    if not segs:
        return []
    method = segs[-1]
    ws = name_words(method)
    if method in _POOL_PUTS:
        recv = segs[:-1]
        shared = (bool(recv) and recv[0] in ("self", "cls")) or ev.ref.startswith("global:")
        if not shared and not any(w in _POOL_WORDS for s in recv for w in name_words(s)):
            return []
    elif not (
        "release" in ws
        or "checkin" in ws
        or method in ("putconn", "put_back", "give_back", "recycle")
        or ("return" in ws and any(w in ("pool", "conn", "connection") for w in ws))
    ):
        return []
    return [
        a
        for a in ev.args
        if a
        and not is_kw(a)
        and "(" not in a
        and a != "const"
        and not a.startswith("*")
        and not a.startswith(("lambda:", "partial:"))
    ]


def param_for(target: Fn, fv: FuncVal, args: tuple[str, ...], j: int) -> str | None:
    """The parameter of ``target`` that argument ``j`` of a call binds."""
    params = list(target.facts.params)
    if target.facts.cls and target.facts.parent is None and fv.recv is not None:
        decos = {d.rsplit(".", 1)[-1] for d in target.facts.decorators}
        if "staticmethod" not in decos and params:
            params = params[1:]
    arg = args[j]
    if is_kw(arg):
        k = arg.partition("=")[0]
        return k if any(p.name == k and p.kind != "vararg" for p in params) else None
    before = args[:j]
    if any(a.startswith("*") for a in before):
        return None
    idx = len(fv.pre_args) + sum(1 for a in before if not is_kw(a))
    pos = [p for p in params if p.kind == "pos"]
    return pos[idx].name if idx < len(pos) else None


# an argument that starts so is a lambda's or a partial's ref, not a keyword argument
_NOT_KW = ("lambda:", "partial:")


def _other_object(ctx: Ctx, target: Ctx) -> bool:
    """Does a call made as ``self.x(...)`` run on another object: a callable stored in the
    attribute (``self._request = gateway.request`` in ``__init__``), whose ``self`` is the
    object it was bound to? Its ``self.X`` is that object's state, not the caller's."""
    return target.recv is not None and ctx.recv is not None and target.recv != ctx.recv


def fits_call(f: FunctionFacts, args: tuple[str, ...]) -> bool:
    """Can a call with these arguments (positional refs, then ``name=ref``) be a call of the
    function ``f`` on an object (a method: its first parameter is the receiver, unless it is a
    ``staticmethod``)? A call of that name on an unknown object that passes more positional
    arguments than the function takes, or a keyword it does not have, is another function
    (``var.reset(token)`` is not ``Transaction.reset(self)``)."""
    params = f.params
    if (
        f.cls
        and f.parent is None
        and not any(d.rpartition(".")[2] == "staticmethod" for d in f.decorators)
    ):
        params = params[1:]
    if any(p.kind in ("vararg", "kwarg") for p in params) or any(a.startswith("*") for a in args):
        return True
    names = {p.name for p in params}
    keywords = [a.partition("=")[0] for a in args if is_kw(a)]
    positional = len(args) - len(keywords)
    return positional <= sum(p.kind == "pos" for p in params) and set(keywords) <= names


def registration_of(ev: Event) -> str | None:
    """The ``self.X``/``global:X`` a registration event puts a key or value into. Not in an
    ``except`` body: what a failure path records (``self._broken.add(key)``) marks an outcome,
    it does not claim the work."""
    if ev.in_except:
        return None
    if ev.kind == K.SETITEM and _shared(ev.ref):
        return ev.ref
    if ev.kind == K.CALL:
        segs = split_ref(ev.ref)
        if len(segs) >= 2 and segs[-1] in REGISTER_METHODS:
            container = ".".join(segs[:-1])
            if _shared(container):
                return container
    # an attribute registers something when it is given a created object (a call's result,
    # a local holding one); a constant (``self._closed = True``) is a state flag, not a
    # registration: its check-then-set is usually an idempotence guard, not a race on a resource
    if ev.kind == K.WRITE and _shared(ev.ref) and ev.value is not None:
        v = ev.value
        if v.kind in ("call", "name", "other"):  # a value computed or fetched
            return ev.ref
        if v.kind == "const" and v.ref == "truthy" and setup_flag(ev.ref):
            return ev.ref
    return None


_SETUP_WORDS = frozenset(
    {
        "started",
        "starting",
        "initialized",
        "initialised",
        "initializing",
        "initialising",
        "inited",
        "init",
        "running",
        "connected",
        "connecting",
        "ready",
        "loaded",
        "loading",
        "opened",
        "opening",
        "registered",
        "registering",
        "subscribed",
        "subscribing",
        "listening",
        "bootstrapped",
        "bootstrapping",
        "prepared",
        "preparing",
        "warmed",
        "warming",
        "configured",
        "authenticated",
        "authenticating",
        "setup",
        "installed",
        "launched",
        "spawned",
        "scheduled",
        "joined",
        "joining",
        "logged",
    }
)


def setup_flag(ref: str) -> bool:
    """``self._started = True``, ``self._initialized = True``: a flag that marks set-up done or
    in progress. Checking it, awaiting, then setting it lets a second task run the set-up
    again. Other constant flags (``_closed``, ``_eof_sent``, ``_broken``) mostly guard
    idempotent endings or state machines, and are not read as registrations."""
    name = ref.rsplit(".", 1)[-1].removeprefix("global:").lower()
    words = [w for w in name.split("_") if w]
    return any(w in _SETUP_WORDS for w in words)


def _shared(ref: str) -> bool:
    if ref.startswith("global:"):
        return "." not in ref and "(" not in ref
    return (
        ref.startswith(("self.", "cls."))
        and ref.count(".") == 1
        and "(" not in ref
        and "[" not in ref
    )


def _guard_reach(f: FunctionFacts) -> tuple[list[tuple[str, set[int]]], list[tuple[str, set[int]]]]:
    """For each guard atom of the function: the attribute and every event reachable from the
    branch where the check found nothing (what the check protects); and for each membership
    or lookup check of a container (``if key in self._x``, ``entry = self._x.get(key); if
    entry is None: return``), the container and the events reached only from the branch where
    the entry was found (every way to them passes there)."""
    protects: list[tuple[str, set[int]]] = []
    found_only: list[tuple[str, set[int]]] = []
    for b, e in enumerate(f.events):
        if e.kind != K.BRANCH or not e.guards or len(e.succ) < 2:
            continue
        for g in e.guards:
            attr, absent, kind, _key = g.split("|")
            side = e.succ[int(absent)]
            protects.append((attr, {side} | reachable(f, [side], avoid=(b,))))
            if kind == "in":
                found = e.succ[1 - int(absent)]
                reach = {found} | reachable(f, [found], avoid=(b,))
                only = reach - reachable(f, [0], avoid=(found,))
                if only:
                    found_only.append((attr, only))
    return protects, found_only


# the calls that make an empty container
_EMPTY_MAKERS = frozenset({"set", "list", "dict", "collections.deque", "deque", "weakref.WeakSet"})
# builtins that copy the iterable they are given (``for q in list(self._queues):``)
_COPIES = frozenset({"list", "tuple", "set", "sorted", "frozenset"})


def _iterated_attr(f: FunctionFacts, local: str, call: Event) -> str:
    """The attribute of ``self`` whose elements the loop variable ``local`` takes, at the call
    ``call`` (``for q in self._queues``, ``list(self._queues)``, ``self._queues.values()``):
    its name, or "" when the local holds anything else."""
    events = f.events
    at_call = next((i for i, e in enumerate(events) if e is call), -1)
    binding = next(
        (
            (j, events[j])
            for j in range(at_call - 1, -1, -1)
            if events[j].kind == K.LOCAL and events[j].ref == local
        ),
        None,
    )
    if binding is None or binding[1].value is None or binding[1].value.kind != "iter":
        return ""
    j, bound = binding
    ref = bound.value.ref if bound.value is not None else ""
    if ref.endswith("()") and ref[:-2] in _COPIES:
        copy = next(
            (c for c in reversed(events[:j]) if c.kind == K.CALL and c.ref == ref[:-2]),
            None,
        )
        if copy is None or len(copy.args) != 1:
            return ""
        ref = copy.args[0]
    ref = ref.removesuffix(".values()")
    segs = split_ref(ref)
    return segs[1] if len(segs) == 2 and segs[0] == "self" else ""


def _unbounded_local(events: list[Event], at: int, name: str) -> bool:
    """Does the local ``name``, where event ``at`` uses it, hold an ``asyncio.Queue`` made with
    no bound (``queue = asyncio.Queue()``)? Its last assignment before ``at`` decides."""
    for j in range(at - 1, -1, -1):
        e = events[j]
        if e.kind != K.LOCAL or e.ref != name:
            continue
        return _unbounded_made(events, j, e.value)
    return False


def _unbounded_made(events: list[Event], at: int, value: Value | None) -> bool:
    """Is ``value``, assigned at event ``at``, an ``asyncio.Queue`` (or kin) called with no
    bound: no positional argument, no ``maxsize=``?"""
    if value is None or value.kind != "call" or value.ref.rpartition(".")[2] not in _QUEUES:
        return False
    made_by = next(
        (c for c in reversed(events[:at]) if c.kind == K.CALL and c.ref == value.ref), None
    )
    return made_by is not None and all(
        is_kw(a) and a.partition("=")[0] != "maxsize" for a in made_by.args
    )


def const_flags(call: Event) -> dict[str, bool]:
    """The flags a call passes by name as constants (``force=True``: ``{"force": True}``)."""
    out: dict[str, bool] = {}
    for a in call.args:
        k, eq, v = a.partition("=")
        if eq and v.startswith("const:"):
            out[k] = v == "const:True"
    return out


def _decided(ev: Event, flags: Mapping[str, bool]) -> bool | None:
    """The outcome of a test when its flag parameters are bound (``if force:``, ``if not
    force and ...``, ``if refresh or ...``); None when they do not decide it."""
    if ev.name.startswith("if:"):
        neg = ev.name.startswith("if:not ")
        p = ev.name[len("if:not ") if neg else len("if:") :]
        return (not flags[p] if neg else flags[p]) if p in flags else None
    if ev.name not in ("compound:and", "compound:or"):
        return None
    for atom in ev.args:
        neg = atom.startswith("not ")
        p = atom[4:] if neg else atom
        if p not in flags:
            continue
        value = flags[p] != neg
        if ev.name == "compound:and" and not value:
            return False  # one atom false: the whole ``and`` is
        if ev.name == "compound:or" and value:
            return True
    return None


def decided_by_flags(f: FunctionFacts, target: int, flags: Mapping[str, bool]) -> bool:
    """With the flags a call passes (:func:`const_flags`), is the test at event ``target``
    never left to the state it checks: not reached at all (``if not force:`` around it, with
    ``force=True``), or decided by the flags themselves (``if not force and self._cache:``)?
    The branches the flags decide are followed one way only."""
    if not flags:
        return False
    outcomes: dict[int, bool | None] = {}

    def step(i: int, _s: None) -> list[tuple[int, None]]:
        ev = f.events[i]
        outcome = _decided(ev, flags) if ev.kind == K.BRANCH and len(ev.succ) == 2 else None
        outcomes[i] = outcome
        if i == target:
            return []
        return [(n, None) for n in (ev.succ if outcome is None else [ev.succ[0 if outcome else 1]])]

    reached = walk(f, None, step)
    return (target, None) not in reached or outcomes[target] is not None


def before_await(
    f: FunctionFacts, start: int, ends: Callable[[int, Event], bool] | None = None
) -> Iterator[tuple[int, Event]]:
    """Events reachable from ``start`` without passing an await (an await itself ends the
    path and is not yielded): what runs before any other task can. ``ends``: which events end
    a path instead (an await that can suspend: one that cannot, a free lock's entry, is
    passed)."""
    seen: set[int] = set()
    todo = [start]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        ev = f.events[i]
        if ev.kind == K.AWAIT if ends is None else ends(i, ev):
            continue
        yield i, ev
        todo.extend(ev.succ)


def _awaited_results(f: FunctionFacts) -> set[str]:
    """The locals that hold what the function awaited (``body = await resp.json()``), and the
    locals computed from them."""
    out: set[str] = set()
    events = f.events
    for j, e in enumerate(events):
        if e.kind != K.LOCAL or e.value is None:
            continue
        if (j > 0 and events[j - 1].kind == K.AWAIT) or out & set(e.value.names):
            out.add(e.ref)
    return out


def _awaits_before(f: FunctionFacts) -> list[bool]:
    """For each event: may an await have happened on some path from the entry to it?"""
    events = f.events
    reached = walk(
        f, False, lambda i, aw: [(n, aw or events[i].kind == K.AWAIT) for n in events[i].succ]
    )
    return [(i, True) in reached for i in range(len(events))]


_LOG_METHODS = frozenset(
    {"debug", "info", "warning", "warn", "error", "exception", "critical", "log", "trace"}
)


def only_logged(f: FunctionFacts, i: int) -> bool:
    """Is the read ``i`` an argument of a logging call (``logger.debug(..., extra={"credit":
    self._credit})``)? Another task's value there changes a log line, not what the code
    does."""
    pos = f.events[i].pos
    calls = []
    for e in f.events[i + 1 :]:
        if e.pos[0] > pos[2]:
            break  # (the calls around the read follow it before the next line's events)
        if e.kind == K.CALL and inside(pos, e.pos):
            calls.append(e)
    if not calls:
        return False
    inner = min(calls, key=lambda e: (e.pos[2] - e.pos[0], e.pos[3] - e.pos[1]))
    recv, _, meth = inner.ref.rpartition(".")
    last = recv.rpartition(".")[2].lower()
    return meth in _LOG_METHODS and ("log" in last or recv == "logging")


# asyncio primitives whose release is synchronous and whose acquire suspends only while
# another task holds them (or waits for them)
ASYNCIO_LOCKS = frozenset(
    f"asyncio.{m}{t}"
    for m in ("", "locks.")
    for t in ("Lock", "Condition", "Semaphore", "BoundedSemaphore")
)
# the operators of augmented writes (``Event.name`` of a WRITE: ``self.n += 1``)
AUGMENTED_OPS = frozenset(
    {"+=", "-=", "|=", "&=", "*=", "/=", "//=", "%=", "@=", "^=", "<<=", ">>="}
)


def feeds_own_update(f: FunctionFacts, i: int) -> bool:
    """Is the read ``i`` the old value of an update of the same state in one statement
    (``self._seq = (self._seq + 1) % N``, ``self.n += 1``)? A counter wants whatever value is
    newest: another task's value found there is no clobbered one."""
    ev = f.events[i]
    for e in f.events[i + 1 : i + 24]:
        if e.kind == K.WRITE:
            return e.ref == ev.ref and (e.name in AUGMENTED_OPS or e.pos[0] <= ev.pos[0])
        if e.kind not in (K.READ, K.CALL) or e.bind == Bind.AWAITED:
            return False
    return False


def _written_since_await(f: FunctionFacts, i: int, ref: str, own: bool = False) -> bool:
    """Is ``ref`` written on every path to event ``i`` after the last await before it? Then
    what ``i`` reads of it is the value this very call stored just before, with no suspension
    in between (``self.salt = new; return await self.send(...)``, a retry that stores the
    server's new value and calls itself): nothing else could have stored it. ``own``: written
    by the function itself on every path from its entry too (a path with no write reads what
    it found)."""
    if not any(e.kind == K.WRITE and e.ref == ref for e in f.events):
        return False

    def step(j: int, stale: bool) -> list[tuple[int, bool]]:
        if j == i:
            return []
        e = f.events[j]
        nxt = (stale or e.kind == K.AWAIT) and not (e.kind == K.WRITE and e.ref == ref)
        return [(s, nxt) for s in e.succ]

    return (i, True) not in walk(f, own, step)


def search(
    f: FunctionFacts,
    starts: list[int],
    *,
    stop: Callable[[int, Event], bool],
    hit: Callable[[int, Event, int], bool],
    is_await: Callable[[int, Event], bool] | None = None,
    avoid: frozenset[int] | set[int] = frozenset(),
) -> Iterator[tuple[int, int]]:
    """Walk the control-flow graph from ``starts``, remembering the first await passed.
    Yields (hit event, first await event or -1) when ``hit(i, ev, first_await)`` is true;
    paths end at events where ``stop`` is true (after ``hit`` is asked); events in ``avoid``
    are never entered."""
    is_aw = is_await or (lambda _i, ev: ev.kind == K.AWAIT)
    queue: deque[tuple[int, int]] = deque((s, -1) for s in starts)
    visited: set[tuple[int, bool]] = set()
    while queue:
        i, aw = queue.popleft()
        key = (i, aw >= 0)
        if key in visited:
            continue
        visited.add(key)
        ev = f.events[i]
        if hit(i, ev, aw):
            yield i, aw
        if stop(i, ev):
            continue
        nxt = aw if aw >= 0 else (i if is_aw(i, ev) else -1)
        for s in ev.succ:
            if s not in avoid:
                queue.append((s, nxt))


def _first_suspension(fn: Fn) -> Step | None:
    """The step of a coroutine's first await, where what it does next runs after other
    tasks (``late_reads``, ``late_writes``)."""
    first = next((e for e in fn.facts.events if e.kind == K.AWAIT), None)
    return fn_step(fn, at(first), f"`{short(fn)}` suspends here") if first is not None else None
