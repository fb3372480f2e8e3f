"""What may run at the same time: the concurrency model the rules ask before they call an
interleaving a hazard.

- Where a method runs in several tasks at once (:meth:`Concurrency.spawn_sites`): started by
  ``gather``/``wait``/``as_completed``, by ``create_task``/``start_soon``/``ensure_future``
  inside a loop or a comprehension, or handed to a framework as a callback; the table is built
  from one contribution per module (:func:`merge_sites`). :meth:`Concurrency.shared_evidence`
  says why a given method may run so: its own spawn site, an override's or base's, or that of
  a method of its class that calls it on ``self``.
- What runs in one task only: an async iterator's iteration path (``single_consumer``), a
  private function every caller starts once (``single_task``), an object made per call and
  owned by that call (``per_call_class``, with the fresh-object test of spawn sites), and the
  methods that set an object up or tear it down (:data:`DUNDER_LIFECYCLE`,
  :data:`DEFAULT_LIFECYCLE`, plus ``lifecycle-methods``).

It is built on the call-graph summaries (:mod:`asyncrace.analysis.summaries`), which know
nothing of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from asyncrace.analysis.facts import Bind, Event, K, ModuleFacts, Pos
from asyncrace.analysis.index import (
    ATTR_TYPES_KEY,
    GLOBALS_KEY,
    MISS,
    ClassObj,
    Ctx,
    Fn,
    FuncVal,
    Index,
    Inst,
    Memo,
    split_ref,
)
from asyncrace.analysis.summaries import SPAWNERS, Step, Summaries, at, fn_step, is_kw, short
from asyncrace.settings import Settings

# special methods that set an object up or tear it down: never concurrent on one object
DUNDER_LIFECYCLE: frozenset[str] = frozenset(
    {"__init__", "__post_init__", "__aenter__", "__aexit__", "__enter__", "__exit__", "__del__"}
)
# methods where per-object state is born (ARC001 does not read their stores as per-call stashes)
DEFAULT_LIFECYCLE: frozenset[str] = DUNDER_LIFECYCLE | frozenset(
    {
        "setup",
        "asetup",
        "asyncSetUp",
        "asyncTearDown",
        "setUp",
        "tearDown",
        "connect",
        "reconnect",
        "disconnect",
        "start",
        "startup",
        "stop",
        "open",
        "close",
        "aclose",
        "initialize",
        "init",
        "login",
        "shutdown",
        "cleanup",
        "main",
    }
)

# base classes that say nothing about who calls the class's callbacks
_NEUTRAL_BASES = ("typing.", "typing_extensions.", "abc.", "dataclasses.", "builtins.", "enum.")
# spawners that start several awaitables at once by design
MANY_SPAWNERS: frozenset[str] = frozenset({"gather", "as_completed", "wait"})

# the keys a reader of a project-wide table notes (``index.Tracker``), besides modules: the
# spawn-site table for a method (``Concurrency.spawn_site``), and an async function's name
SPAWN_KEY = "\x00spawn:"
ASYNC_KEY = "\x00async:"  # the names of the project's async functions
# a module's spawn sites, (function, method, site) in its functions' order, and the modules
# read to find them
Contribution = tuple[list[tuple[str, str, Step]], set[str]]


def merge_sites(contributions: Iterable[list[tuple[str, str, Step]]]) -> dict[str, Step]:
    """The spawn-site table made of the modules' contributions: for each method, the first site
    in the order of the functions' names (a function's own sites keep their order)."""
    everything = [e for entries in contributions for e in entries]
    everything.sort(key=lambda e: e[0])  # stable
    sites: dict[str, Step] = {}
    for _fn, target, step in everything:
        sites.setdefault(target, step)
    return sites


class Concurrency:
    """Who may run at the same time: spawn sites, shared-task evidence, single consumers and
    single tasks, per-call objects. Memoized like the summaries it is built on."""

    def __init__(self, index: Index, settings: Settings, summaries: Summaries) -> None:
        self.index = index
        self.summaries = summaries
        self.lifecycle = DEFAULT_LIFECYCLE | frozenset(settings.lifecycle_methods)
        self.setup_dunders = DUNDER_LIFECYCLE | frozenset(settings.lifecycle_methods)
        t = self.tracker = index.tracker
        self._evidence: Memo[tuple[str, int], Step | None] = Memo(t)
        self._per_call: Memo[str, bool] = Memo(t)
        # each module's contribution to the spawn-site table, with the modules it read; an
        # incremental run fills in those of the modules it need not compute again
        self.contributions: dict[str, Contribution] = {}
        self._spawns: dict[str, Step] | None = None
        self._async: frozenset[str] | None = None
        # record the modules each contribution reads (a run that keeps a project snapshot)
        self.track = False

    # -- evidence that a method runs in several tasks at once ------------------------------
    def spawn_site(self, fq: str) -> Step | None:
        """One place that runs the method ``fq`` in several tasks at once (``spawn_sites``);
        the lookup of ``fq`` is a read of its own, a change of its answer dirties the reader."""
        self.tracker.note(SPAWN_KEY + fq)
        return self.spawn_sites().get(fq)

    def spawn_sites(self) -> dict[str, Step]:
        """Method (fully qualified) -> one place that runs it in several tasks at once:
        started by ``gather``/``wait``/``as_completed``, by ``create_task``/``start_soon``/
        ``ensure_future`` inside a loop or a comprehension, or handed to a framework as a
        callback (a route, a handler, a subscriber), which runs it per event.

        Built from each module's contribution (the sites its functions make), each computed
        apart with the modules it read (:attr:`contributions`); the first site in the order of
        the functions' names wins."""
        if self._spawns is None:
            tracker = self.tracker
            saved, tracker.frames = tracker.frames, []
            try:
                for m in sorted(self.index.modules.values(), key=lambda m: m.module):
                    if m.module in self.contributions:
                        continue
                    if self.track:
                        tracker.start()
                    entries = self._contribution(m)
                    self.contributions[m.module] = (entries, tracker.stop())
            finally:
                tracker.frames = saved
            self._spawns = merge_sites(entries for entries, _d in self.contributions.values())
        return self._spawns

    def _async_names(self) -> frozenset[str]:
        # a callback target is an async function that is no nested one (_callback_sites),
        # reached by its own name: an argument ending in another name cannot be one
        if self._async is None:
            self._async = frozenset(
                f.facts.name
                for f in dict.values(self.index.functions)
                if f.facts.is_async and f.facts.parent is None
            )
        return self._async

    def _async_name(self, name: str, async_names: frozenset[str]) -> bool:
        self.tracker.note(ASYNC_KEY + name)
        return name in async_names

    def _contribution(self, m: ModuleFacts) -> list[tuple[str, str, Step]]:
        """The spawn sites the functions of module ``m`` make: (function, method, site)."""
        out: list[tuple[str, str, Step]] = []
        call = K.CALL
        async_names = self._async_names()
        for q in sorted(m.functions):
            fn = self.index.functions.get(f"{m.module}.{q}")
            if fn is None or fn.module is not m:
                continue
            sites: dict[str, Step] = {}
            calls = [e for e in fn.facts.events if e.kind == call]
            if not any(e.args for e in calls):
                continue
            ctx = self.summaries.ctx(fn)
            for e in calls:
                # a registration stores the callback for later events; an awaited call
                # (``await app(scope, receive, send)``) drives it within its own extent
                if (
                    e.bind not in (Bind.AWAITED, Bind.RETURNED)
                    and any(
                        _bound_method_ref(a) and self._async_name(a.rpartition(".")[2], async_names)
                        for a in e.args
                    )
                    and not self.index.callable_targets(ctx, e.ref)
                    and not self._project_class(ctx, e.ref)
                ):
                    # handed to a framework (a route, a handler); the project's own
                    # helpers (a supervisor starting one task) are followed, not trusted
                    self._callback_sites(ctx, fn, e, sites)
            spawned_once: dict[str, list[Step]] = {}
            for s in calls:
                what = s.ref.rpartition(".")[2]
                if what not in SPAWNERS:
                    continue
                many = what in MANY_SPAWNERS or s.repeated
                inside = [e for e in calls if e is not s and _inside(e.pos, s.pos)]
                for e in inside:
                    # one object, one method, several tasks: in a loop or comprehension,
                    # or twice in one gather (``gather(c.a(1), c.a(2))``); a gather of two
                    # different methods (``gather(c.a(), c.b())``) runs each once
                    again = e.repeated or (many and sum(x.ref == e.ref for x in inside) > 1)
                    if self._fresh_receiver(ctx, fn, e, again):
                        continue
                    for tfn, tctx in self.summaries.targets(ctx, e):
                        if tctx.recv is None or not tfn.facts.is_async:
                            continue
                        label = f"`{short(tfn)}` runs in several tasks at once here (`{what}`)"
                        if many or e.repeated:
                            sites.setdefault(tfn.fq, fn_step(fn, at(e), label))
                        else:  # started once here; a second start elsewhere in fn counts
                            spawned_once.setdefault(tfn.fq, []).append(fn_step(fn, at(e), label))
            for fq, starts in spawned_once.items():
                if len(starts) >= 2:
                    sites.setdefault(fq, starts[1])
            out.extend((fn.fq, target, step) for target, step in sites.items())
        return out

    def _project_class(self, ctx: Ctx, ref: str) -> bool:
        """Does ``ref`` name a class of the project, all of whose bases are the project's too
        (a dataclass without ``__init__`` has no call target, but it is no framework either:
        it only keeps what it is given)? A subclass of a framework's class
        (``class AuthRoute(framework.Route)``) is still the framework's. Bases from
        ``typing``, ``abc``, ``dataclasses`` and the builtins do not count."""
        val = self.index.eval(ctx, ref)
        if not isinstance(val, ClassObj) or val.fq not in self.index.classes:
            return False
        todo, seen = [val.fq], set()
        while todo:
            fq = todo.pop()
            if fq in seen:
                continue
            seen.add(fq)
            ci = self.index.classes.get(fq)
            if ci is None:
                if not fq.startswith(_NEUTRAL_BASES) and fq not in ("object", "Exception"):
                    return False
                continue
            for b in ci.bases:  # ``Generic[T]`` is kept as written: resolve it without ``[]``
                base = b.split("[", 1)[0]
                todo.append(self.index.resolve(ci.module, base) if "[" in b else base)
        return True

    def _fresh_receiver(self, ctx: Ctx, fn: Fn, call: Event, again: bool) -> bool:
        """``create_task(Cycle(...).run())`` or ``self.cycle = Cycle(...)`` then
        ``create_task(self.cycle.run())``: each spawn gets an object of its own. Not when one
        object made once has the method run several times at once (``again``: ``c = Cycle()``
        then a loop of spawns of ``c.run()``, or ``gather(c.run(1), c.run(2))``)."""
        segs = split_ref(call.ref)
        if len(segs) < 2:
            return False
        recv = ".".join(segs[:-1])
        if recv.endswith("()"):
            return isinstance(self.index.eval(ctx, recv[:-2]), ClassObj)
        for e in fn.facts.events:
            if e.kind in (K.LOCAL, K.WRITE) and e.ref == recv and e.value is not None:
                v = e.value
                if v.kind == "call" and isinstance(self.index.eval(ctx, v.ref), ClassObj):
                    # made anew for each spawn (in the same loop), or its method run once
                    return e.repeated or not again
        return False

    def _callback_sites(self, ctx: Ctx, fn: Fn, e: Event, sites: dict[str, Step]) -> None:
        for a in e.args:
            ref = a.partition("=")[2] if is_kw(a) else a
            if not ref or "(" in ref or ref.startswith(("lambda:", "partial:", "*", "const")):
                continue
            segs = split_ref(ref)
            if len(segs) < 2 or not isinstance(self.index.eval(ctx, ".".join(segs[:-1])), Inst):
                continue  # a bound method of an object, not ``Class.method`` (introspection)
            val = self.index.eval(ctx, ref)
            if not (isinstance(val, FuncVal) and val.recv):
                continue
            target = self.index.functions.get(val.fq)
            if target is None or not target.facts.is_async or target.facts.parent:
                continue
            label = (
                f"`{short(target)}` is registered as a callback here; "
                "callers run it for concurrent events"
            )
            sites.setdefault(target.fq, fn_step(fn, at(e), label))

    def shared_evidence(self, fn: Fn, depth: int = 0) -> Step | None:
        """Why ``fn`` may run in several tasks at once: a spawn site of it (or of an override or
        a base implementation), or of a method of its class that calls it on ``self``."""
        key = (fn.fq, depth)
        found = self._evidence.get(key)
        if found is MISS:
            self._evidence.start(key, None)  # recursion guard
            found = self._evidence.finish(key, self._shared_evidence(fn, depth))
        return found  # type: ignore[no-any-return]

    def _shared_evidence(self, fn: Fn, depth: int) -> Step | None:
        site = self.spawn_site(fn.fq)
        if site is not None:
            return site
        cls = self.index.method_fn(fn)
        if cls is None or fn.facts.parent is not None:
            return None
        name = fn.facts.name
        related = [cls, *[c.fq for c in self.index.mro(cls)], *self.index.subclasses(cls)]
        for c in related:
            other = self.index.find_method(c, name)
            if other is not None:
                site = self.spawn_site(other.fq)
                if site is not None:
                    return site
        if depth >= 3:
            return None
        for caller in self.summaries.self_callers(cls).get(name, []):
            if caller.fq == fn.fq:
                continue
            found = self.shared_evidence(caller, depth + 1)
            if found is not None:
                return found
        return None

    # -- what runs in one task only ------------------------------------------------------
    def single_consumer(self, fn: Fn) -> bool:
        """Is ``fn`` on an async iterator's iteration path (``__anext__`` and what it calls on
        ``self``)? That path belongs to the one ``async for`` driving the iterator. (Other
        methods of an iterable class, a connection's ``send`` say, are called from anywhere.)"""
        cls_fq = self.index.method_fn(fn)
        if cls_fq is None:
            return False
        starts = [
            m
            for m in (
                self.index.find_method(cls_fq, "__anext__"),
                self.index.find_method(cls_fq, "__aiter__"),
            )
            if m is not None and m.facts.is_async
        ]
        seen = {m.fq for m in starts}
        todo = list(starts)
        while todo:
            cur = todo.pop()
            if cur.fq == fn.fq:
                return True
            for e in cur.facts.events:
                if e.kind == K.CALL and e.ref.startswith("self.") and e.ref.count(".") == 1:
                    nxt = self.index.find_method(cls_fq, e.ref[5:])
                    if nxt is not None and nxt.fq not in seen:
                        seen.add(nxt.fq)
                        todo.append(nxt)
        return False

    def single_task(self, fn: Fn, depth: int = 0) -> bool:
        """Does ``fn`` only ever run in one task at a time? True when every call of it in the
        project is a single start (``self._t = create_task(self._watch())``, not in a loop or a
        ``gather``) or a call from a method that itself runs in one task only (a dispatch loop
        started once). A function nobody in the project calls may be called by anyone: False."""
        name = fn.facts.name
        if not name.startswith("_") or name.startswith("__"):
            return False  # public: callers outside the project are not in view
        key = (fn.fq, -1 - depth)
        found = self._evidence.get(key)
        if found is not MISS:
            return found is not None
        self._evidence.start(key, None)  # recursion guard: a cycle proves nothing
        sites = self._call_sites(fn)
        ok = bool(sites) and depth < 3
        for caller, _ev, single_spawn in sites if ok else []:
            if single_spawn:
                continue
            if caller.fq == fn.fq or not self.single_task(caller, depth + 1):
                ok = False
                break
        self._evidence.finish(
            key, Step(fn.module.path, fn.facts.pos, "single task") if ok else None
        )
        return ok

    def _call_sites(self, fn: Fn) -> list[tuple[Fn, Event, bool]]:
        """(caller, call event, is a single start of a task) for every call that reaches ``fn``."""
        name = fn.facts.name
        out: list[tuple[Fn, Event, bool]] = []
        for caller, i in self.summaries.calls_by_name(name):
            events = caller.facts.events
            e = events[i]
            ctx = self.summaries.ctx(caller)
            if split_ref(e.ref)[-1] == name and any(
                t.fq == fn.fq for t, _c in self.summaries.targets(ctx, e)
            ):
                spawns = [
                    s
                    for s in events
                    if s.kind == K.CALL
                    and s is not e
                    and _is_spawner(s.ref)
                    and _inside(e.pos, s.pos)
                ]
                single = (
                    bool(spawns)
                    and all(
                        split_ref(s.ref)[-1] not in MANY_SPAWNERS and not s.repeated for s in spawns
                    )
                    and not e.repeated
                )
                if spawns and not single:
                    return [(caller, e, False), (caller, e, False)]  # started many times
                out.append((caller, e, single))
            elif _is_spawner(e.ref):  # started by reference: ``tg.start_soon(self._loop)``
                for a in e.args:
                    ref = a.partition("=")[2] if is_kw(a) else a
                    if not ref or "(" in ref or split_ref(ref)[-1] != name:
                        continue
                    val = self.index.eval(ctx, ref)
                    if isinstance(val, FuncVal) and val.fq == fn.fq:
                        once = split_ref(e.ref)[-1] not in MANY_SPAWNERS and not e.repeated
                        if not once:
                            return [(caller, e, False), (caller, e, False)]
                        out.append((caller, e, True))
        return out

    def per_call_class(self, cls_fq: str) -> bool:
        """Is every instance of the class made per call and owned by that call? True for a
        private class (``_RunResources``: nobody outside the project makes one) without
        subclasses, never instantiated at module level, and instantiated at least once, each
        time into a local that the function never stores into ``self``/``cls``/module state.
        Such an object belongs to the task that made it; only evidence of concurrent use
        (``gather(res.enter(a), res.enter(b))``) shares it."""
        found = self._per_call.get(cls_fq)
        if found is MISS:
            self._per_call.start(cls_fq, False)
            found = self._per_call.finish(cls_fq, self._per_call_class(cls_fq))
        return found  # type: ignore[no-any-return]

    def _per_call_class(self, cls_fq: str) -> bool:
        name = cls_fq.rsplit(".", 1)[-1]
        if not name.startswith("_") or name.startswith("__") or self.index.subclasses(cls_fq):
            return False
        self.tracker.note(GLOBALS_KEY)  # every module's variables
        for m in self.index.modules.values():
            if any(self.index.resolve(m, t) == cls_fq for t in m.global_types.values()):
                return False  # a module-level instance: shared by every importer
        self.tracker.note(ATTR_TYPES_KEY)  # a class added that holds one changes the answer
        for ci in self.index.classes.values():
            if any(
                t == cls_fq and attr not in ci.facts.fields for attr, t in ci.attr_types.items()
            ):
                # an attribute of another class holds one: a class attribute made once
                # (``streams = _Streams()``), or ``self.x = transport`` kept by a longer-lived
                # object (an annotated dataclass field is only a declaration: its instances
                # are made, and checked, where they are made)
                return False
        made = False
        for caller, i in self.summaries.calls_by_name(name):
            e = caller.facts.events[i]
            if e.ref.rpartition(".")[2] != name:
                continue  # passed to a spawner by that name, not called
            if self.index.eval(self.summaries.ctx(caller), e.ref) != ClassObj(cls_fq):
                continue
            local = e.name
            if e.bind != Bind.LOCAL or not local.isidentifier():
                return False  # stored in an attribute, passed or returned as it is made
            if local in caller.facts.returns_refs:
                return False
            for w in caller.facts.events:
                if (
                    w.kind in (K.WRITE, K.SETITEM)
                    and w.value is not None
                    and local in w.value.names
                    and w.ref.startswith(("self.", "cls.", "global:"))
                ):
                    return False  # kept in long-lived state
                if (
                    w.kind == K.CALL
                    and w.ref.startswith(("self.", "cls.", "global:"))
                    and any(a.partition("=")[2 if is_kw(a) else 0] == local for a in w.args)
                ):
                    return False  # handed to the long-lived object: ``self._live.append(res)``
            made = True
        return made


def _is_spawner(ref: str) -> bool:
    return bool(ref) and split_ref(ref)[-1] in SPAWNERS


def _inside(inner: Pos, outer: Pos) -> bool:
    return (inner[0], inner[1]) >= (outer[0], outer[1]) and (inner[2], inner[3]) <= (
        outer[2],
        outer[3],
    )


def _bound_method_ref(arg: str) -> bool:
    """``obj.method`` as an argument (possibly ``name=obj.method``): a callback candidate."""
    ref = arg.partition("=")[2] if is_kw(arg) else arg
    return (
        bool(ref)
        and "." in ref
        and "(" not in ref
        and not ref.startswith(("lambda:", "partial:", "*", "global:"))
    )
