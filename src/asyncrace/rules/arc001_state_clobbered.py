"""ARC001 state-clobbered-across-await (marsys issue 40).

A coroutine stores a per-call value on shared state (``self.x``, ``cls.x``, a module variable),
awaits, then reads the state back, directly or in a method it calls after the await. Every task
running the coroutine on the same object writes the same attribute, so after the await the value
may belong to another call.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from asyncrace.analysis.concurrency import (
    ANY,
    CALLERS_SERIALIZE,
    CELL,
    LIKELY,
    OBJECT,
    ONCE_GUARD,
    UNKNOWN,
    Verdict,
    param_for,
    setup_name,
    teardown_name,
)
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import (
    Bind,
    Event,
    FunctionFacts,
    K,
    ModuleFacts,
    reachable,
    walk,
)
from asyncrace.analysis.index import Ctx, Fn, FuncVal, Inst, is_kw
from asyncrace.analysis.summaries import (
    AUGMENTED_OPS,
    Step,
    at,
    feeds_own_update,
    fn_step,
    only_logged,
    search,
    short,
)
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import (
    evidence_clause,
    functions_at,
    line_of,
    make,
    module_functions,
    on_state,
)

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
                and ev.value.kind != "comp"  # (a comprehension's own: its value is its own)
                and ev.ref not in tainted
                and tainted.intersection(ev.value.names)
            ):
                tainted.add(ev.ref)
                changed = True
    return tainted


def _left_at_default(analysis: Analysis, fn: Fn, receiver: set[str]) -> set[str]:
    """The parameters with a default that every call of ``fn`` the project makes leaves at it
    (no argument binds them, by position or by name): every call stores the same value there,
    so it is no per-call value. Only where the project calls ``fn`` (a target known) and
    hands it on nowhere (a callable passed on may be called with anything); a call whose
    target is not known but may be ``fn`` counts as one, and a call with ``*args`` or
    ``**kwargs`` may pass anything."""
    f = fn.facts
    out = {p.name for p in f.params if p.default and p.kind in ("pos", "kwonly")} - receiver
    if not out:
        return out
    calls = analysis.calls_of(fn)
    if not any(known for _c, _i, known in calls):
        return set()
    for caller, i, _known in calls:
        args = caller.facts.events[i].args
        for j, a in enumerate(args):
            if a.startswith("*"):
                return set()
            out.discard(param_for(fn, j, a.partition("=")[0] if is_kw(a) else "", args))
        if not out:
            return out
    return set() if analysis.passed_on(fn) else out


def state_ref(ref: str, f: FunctionFacts) -> bool:
    if ref.startswith("global:"):
        return True
    if ref.startswith("nonlocal:"):
        return f.parent is not None  # a closure's variable: shared by its every call
    if f.cls is None:
        return False
    return ref.startswith(("self.", "cls.")) and ref.count(".") == 1 and "(" not in ref


def describe(ref: str) -> str:
    if ref.startswith("global:"):
        return f"module variable `{ref[7:]}`"
    if ref.startswith("nonlocal:"):
        return f"closure variable `{ref[9:]}`"
    return f"`{ref}`"


FIX_CLEAR = (
    "Take the object out of the attribute before the first await (`client = self._client; "
    "self._client = None`, under the lock that installs a new one if there is such a lock), "
    "then await its teardown through the local; or clear the attribute only if it still holds "
    "the object you tore down (`if self._client is client: self._client = None`)."
)
FIX_ITERATOR = (
    "Make the iterator per call (a factory that returns a new one, e.g. `AsyncRetrying(...)` "
    "inside the coroutine, or `retrying.copy()`); an iterator kept in module or object state "
    "is shared by every task that iterates it."
)
FIX_LOST = (
    "Serialize the read-update-write with an asyncio.Lock (and re-check the state inside it), "
    "or mark the update in flight before the await so that concurrent callers wait for its "
    "result instead of starting their own."
)
# library types whose iteration keeps its state on the iterable itself (``__aiter__``/``__iter__``
# return ``self``): one instance iterated by two tasks at once mixes their states
STATEFUL_ITERABLES: dict[str, str] = {
    "tenacity.AsyncRetrying": "tenacity's `AsyncRetrying` keeps the retry state of the loop on itself",
    "tenacity.asyncio.AsyncRetrying": "tenacity's `AsyncRetrying` keeps the retry state of the loop on itself",
    "tenacity.Retrying": "tenacity's `Retrying` keeps the retry state of the loop on itself",
}
_FALSY = "falsy"


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
            # what a set-up or tear-down method stores (the opened session, the connection and
            # its settings) is the object's state, not a value stashed for this call
            stash = f.name not in analysis.lifecycle and not setup_name(f.name)
            stashed: set[str] = set()  # reported as stashed per-call values
            fixed: set[str] | None = None  # ``tainted`` less what every call leaves at default
            for i, ev in enumerate(f.events):
                if not stash:
                    break
                if ev.kind != K.WRITE or ev.value is None or not state_ref(ev.ref, f):
                    continue
                if ev.value.kind == "const" or not tainted.intersection(ev.value.names):
                    continue
                if _updates_itself(f.events, i):
                    continue  # ``self._raw = patch.apply(self._raw)``: every call folds its
                    # change into the one shared value, and a reader wants the newest
                if _installs_only_when_empty(f, i, ev.ref):
                    continue  # a lazy set-up (``if self.logger is None: self.logger = ...``):
                    # once set, no later call stores anything (a first race is ARC003's)
                found = self._first_read(analysis, ctx, fn, i, ev.ref)
                if found is None:
                    continue
                if fixed is None:
                    fixed = per_call_names(f, receiver | _left_at_default(analysis, fn, receiver))
                if not fixed.intersection(ev.value.names):
                    continue  # a parameter no call passes: every call stores its one default
                evidence = self._evidence(analysis, fn, ev.ref)
                evidence = _same_for_every_task(
                    analysis, fn, evidence, fixed.intersection(ev.value.names)
                )
                if evidence.answer is True and evidence.why == "lock-protected class":
                    # a lock around the class's other operations says they may overlap,
                    # not that two calls of this one do: a per-call value stashed by a
                    # method needs the method itself run twice at once (1 of 20 right at
                    # the held-out sets' first runs with this evidence alone)
                    evidence = UNKNOWN
                if evidence.answer is not True and (
                    not likely
                    or evidence.answer is False
                    or (f.name in analysis.lifecycle and not evidence.steps)
                ):
                    continue  # likely: no evidence either way, and not a set-up method
                await_step, read_steps = found
                here = module.path
                where = line_of(read_steps[-1], here)
                msg = (
                    f"{describe(ev.ref)} holds a per-call value across an await and is read "
                    f"back at {where}; a concurrent call of `{short(fn)}()` can overwrite it "
                    f"in between{evidence_clause(evidence)}"
                )
                steps = (await_step, *read_steps, *evidence.steps)
                stashed.add(ev.ref)
                yield make(self.code, here, at(ev), msg, steps, FIX)
            yield from self._stale_clears(analysis, ctx, fn, likely)
            yield from self._shared_iterators(analysis, ctx, fn, likely)
            yield from self._lost_updates(analysis, ctx, fn, likely, stashed)

    # -- read, await, write back: a lost update -----------------------------------------------
    def _lost_updates(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, likely: bool, stashed: set[str]
    ) -> Iterator[Diagnostic]:
        """``tok = await refresh(self.refresh_token)`` then ``self.refresh_token = tok``: the
        state is read, handed to an awaited call, and the call's result written back (here, or
        by the awaited method after its own await). A concurrent call reads the same old value
        meanwhile; both write, and one update is lost (a single-use token spent twice)."""
        f = fn.facts
        if f.cls is None or f.parent is not None or not f.is_async:
            return
        events = f.events
        carried: dict[str, set[str]] = {}  # local -> the state its value was computed from
        for j, e in enumerate(events):
            if e.kind == K.LOCAL and e.value is not None:
                refs = _reads_into(events, j)
                for n in e.value.names:
                    refs |= carried.get(n, set())
                if refs:
                    carried.setdefault(e.ref, set()).update(refs)
        reported: set[str] = set()
        for c, e in enumerate(events):
            if e.kind != K.CALL or e.bind != Bind.AWAITED:
                continue
            if c + 1 < len(events) and not analysis.suspending(ctx, c + 1):
                continue  # an awaited coroutine that never suspends: nobody runs meanwhile
            into = {r for r in _reads_into(events, c) if not e.ref.startswith(r + ".")}
            for a in e.args:
                r = a.partition("=")[2] if "=" in a and a.partition("=")[0].isidentifier() else a
                if r.startswith("self.") and "(" not in r:
                    into.add(".".join(r.split(".")[:2]))
                into |= carried.get(r, set())
            state: dict[str, str] = {}  # underlying attribute -> what was read
            for r in into:
                state.setdefault(r, r)
                prop = analysis.property_getter(ctx, r)
                if prop is not None:
                    for under in analysis.reads(Ctx(prop, ctx.recv)):
                        if under.startswith("self."):
                            state.setdefault(under, r)
            if not state or self._in_flight(f, c) or self._hands_back(analysis, ctx, e, carried):
                continue
            found = self._written_back(analysis, ctx, fn, c, state)
            if found is None:
                continue
            attr, read_ref, write_steps = found
            if attr in reported or attr in stashed:
                continue  # (the same hazard, reported once)
            evidence = on_state(analysis, fn, analysis.concurrent(fn, OBJECT), attr)
            if evidence.answer is not True and (not likely or evidence.answer is False):
                continue
            reported.add(attr)
            here = fn.module.path
            read_at = next(
                (
                    k
                    for k in range(c, -1, -1)
                    if events[k].kind == K.READ and events[k].ref == read_ref
                ),
                c,
            )
            steps = (
                fn_step(fn, at(e), "handed to an await: other tasks run here and read it too"),
                *write_steps,
                *evidence.steps,
            )
            msg = (
                f"`{read_ref}` is read here, handed to an await, and the result written back to "
                f"`{attr}` ({line_of(write_steps[-1], here)}); a concurrent call of "
                f"`{short(fn)}()` reads the same old value meanwhile, and one update is lost"
                f"{evidence_clause(evidence)}"
            )
            yield make(self.code, here, at(events[read_at]), msg, steps, FIX_LOST)

    @staticmethod
    def _hands_back(analysis: Analysis, ctx: Ctx, e: Event, carried: dict[str, set[str]]) -> bool:
        """Does the awaited call give back the very object it was handed, or ``None``
        (``refresh_or_none(creds)``: refreshed in place, ``return creds``)? Then the value
        written back is the one read: two calls write the same object, nothing is lost. Calls
        run on a thread (``to_thread(f, *args)``, ``run_in_executor(pool, f, *args)``) are
        followed to ``f``."""
        last = e.ref.rpartition(".")[2]
        hand = {"to_thread": 0, "run_in_executor": 1}.get(last)
        if hand is not None:
            if len(e.args) <= hand or is_kw(e.args[hand]):
                return False
            val = analysis.index.eval(ctx, e.args[hand])
            fn = analysis.index.functions.get(val.fq) if isinstance(val, FuncVal) else None
            targets = [(fn, False)] if fn is not None else []
            args = e.args[hand + 1 :]
        else:
            targets = [(t, tctx.recv is not None) for t, tctx in analysis.targets(ctx, e)]
            args = e.args
        if not targets:
            return False
        for t, bound in targets:
            params = [p.name for p in t.facts.params if p.kind in ("pos", "kwonly")]
            if bound and params:
                params = params[1:]
            returned = set(t.facts.returns_refs) - {"None"}
            if t.facts.is_generator or not returned or not returned <= set(params):
                return False
            for r in returned:
                given = next(
                    (a.partition("=")[2] for a in args if is_kw(a) and a.partition("=")[0] == r),
                    None,
                )
                positional = [a for a in args if not is_kw(a)]
                k = params.index(r)
                if given is None and k < len(positional):
                    given = positional[k]
                if not given or not (given.startswith("self.") or given in carried):
                    return False  # gives back something other than the state it was handed
        return True

    @staticmethod
    def _in_flight(f: FunctionFacts, c: int) -> bool:
        """An in-flight flag claimed before the await: a flag the function checks, then sets
        to a true constant, before the call (``if self._refreshing: return`` ...
        ``self._refreshing = True``)."""
        checked: set[str] = set()
        for e in f.events[:c]:
            if e.kind == K.BRANCH:
                checked.update(g.split("|", 1)[0] for g in e.guards)
            if (
                e.kind == K.WRITE
                and e.ref in checked
                and e.value is not None
                and e.value.kind == "const"
                and e.value.ref == "truthy"
            ):
                return True
        return False

    @staticmethod
    def _written_back(
        analysis: Analysis, ctx: Ctx, fn: Fn, c: int, state: dict[str, str]
    ) -> tuple[str, str, tuple[Step, ...]] | None:
        """Where the awaited call's result is written to the state it was computed from: in
        the awaited method after its own await, or here after the await from a local holding
        the result (with no re-check of the state in between, no shared lock)."""
        f = fn.facts
        call = f.events[c]
        held = any(analysis.region_lock(ctx, r) is not None for r in call.regions)
        if analysis.same_object_call(ctx, call) and not held:
            for tfn, tctx in analysis.targets(ctx, call):
                if _turns_away_while_locked(tfn):
                    continue
                late = analysis.late_writes(Ctx(tfn, tctx.recv))
                for attr, read_ref in sorted(state.items()):
                    if attr in late:
                        return attr, read_ref, late[attr]
        result: set[str] = set()
        for e in f.events[c + 1 : c + 4]:
            if e.kind == K.LOCAL and e.value is not None and e.value.ref == call.ref:
                result.add(e.ref)
                break
        if not result:
            return None
        receiver = {f.params[0].name} if f.params else set()
        own_keys = per_call_names(f, receiver)
        for e in f.events[c + 1 :]:
            if e.kind == K.LOCAL and e.value is not None and result & set(e.value.names):
                result.add(e.ref)
            if (e.kind == K.READ and e.ref in state and e.name == "compare") or (
                e.kind == K.BRANCH and any(g.split("|", 1)[0] in state for g in e.guards)
            ):
                return None  # the state is checked again after the await
            if (
                e.kind in (K.WRITE, K.SETITEM)
                and e.ref in state
                and e.value is not None
                and result & ({e.value.ref} | set(e.value.names))
            ):
                shared = set(call.regions) & set(e.regions)
                if any(analysis.region_lock(ctx, r) is not None for r in shared):
                    return None
                if e.kind == K.SETITEM and e.args and e.args[0] in own_keys:
                    return None  # the slot of this call's key (``self._bufs[account_id]``):
                    # a concurrent call for another key reads and writes another slot
                w = fn_step(fn, at(e), f"`{e.ref}` is written back here, after the await")
                return e.ref, state[e.ref], (w,)
        return None

    # -- a clear after an await that used the old value -------------------------------------
    def _stale_clears(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, likely: bool
    ) -> Iterator[Diagnostic]:
        """``await self._client.disconnect()`` then ``self._client = None``: another method
        that installs a new object in the attribute (``self._client = await connect()``) can
        run during the await, and the clear then discards the new object, not the old one."""
        f = fn.facts
        if f.parent is not None or f.cls is None:
            return
        cls_fq = analysis.index.method_fn(fn)
        if cls_fq is None:
            return
        for w, ev in enumerate(f.events):
            if (
                ev.kind != K.WRITE
                or not ev.ref.startswith("self.")
                or ev.ref.count(".") != 1
                or ev.value is None
                or ev.value.kind != "const"
                or ev.value.ref != _FALSY
            ):
                continue
            ref = ev.ref
            found = self._used_then_awaited(analysis, ctx, f, w, ref)
            if found is None:
                continue
            use, aw = found
            installs = [
                (inst_fn, inst_ev)
                for inst_fn, inst_ev in self._installers(analysis, cls_fq, fn, ref)
                # (local checks first: the evidence is a search of the project)
                if not self._locked_with(analysis, ctx, f, (use, aw, w), inst_fn, inst_ev)
                # the installer turns away while the flag the clear leaves raised until after
                # its await says the object is still in place
                and not _refused_meanwhile(f, aw, inst_fn.facts, inst_ev, ref)
            ]
            if not installs or _only_at_teardown(analysis, fn):
                continue  # (at tear-down the object's life is ending: a new one installed
                # meanwhile is a use racing with shutdown, not a clobber of live state)
            clear = on_state(analysis, fn, analysis.concurrent(fn, OBJECT), ref)
            if _guard_serialized(clear):
                # its callers let one clear through at a time: that says nothing of an
                # installer in another task (the pair is what counts)
                clear = Verdict(None, (), "")
            if clear.answer is False:
                continue
            chosen: tuple[Fn, Event, Verdict] | None = None
            for inst_fn, inst_ev in installs:
                v = _installs_meanwhile(
                    clear,
                    _runs_beside(
                        analysis,
                        inst_fn,
                        on_state(analysis, inst_fn, analysis.concurrent(inst_fn, OBJECT), ref),
                    ),
                )
                if chosen is None or v.answer is True:
                    chosen = (inst_fn, inst_ev, v)
                if v.answer is True:
                    break
            if chosen is None:
                continue
            inst_fn, inst_ev, evidence = chosen
            if evidence.answer is not True and (not likely or evidence.answer is False):
                continue
            here = fn.module.path
            install_step = fn_step(
                inst_fn,
                at(inst_ev),
                f"`{short(inst_fn)}` installs a new one here; it can run during the await",
            )
            steps = (
                fn_step(fn, at(f.events[use]), f"the old `{ref}` is used here"),
                fn_step(
                    fn,
                    at(f.events[aw]),
                    f"{f.events[aw].name}: other tasks run here and may install a new one",
                ),
                install_step,
                *evidence.steps,
            )
            msg = (
                f"`{ref}` is cleared here after an await that used its old value; "
                f"`{short(inst_fn)}()` can store a new one meanwhile "
                f"({line_of(install_step, here)}), and this clears that one instead"
                f"{evidence_clause(evidence)}"
            )
            yield make(self.code, here, at(ev), msg, steps, FIX_CLEAR)

    @staticmethod
    def _used_then_awaited(
        analysis: Analysis, ctx: Ctx, f: FunctionFacts, w: int, ref: str
    ) -> tuple[int, int] | None:
        """A use of the attribute's value (a read, a call of one of its methods) from which
        the clear ``w`` is reached through an await, with no re-check of the attribute (a
        test, an identity comparison) and no other write of it after the use: one walk of the
        control-flow graph with three phases (nothing yet, used, used then awaited)."""
        events = f.events
        dot = ref + "."
        # a test of state cleared with it, right before the clear (no await between: ``if
        # self._cache is not None and self._cache.name == name: self._cache = None;
        # self._cache_created_at = None``) re-checks it too: all of it is still this call's
        together = _written_together(f, w) - {ref}
        rechecks = {
            b
            for b, e in enumerate(events[:w])
            if e.kind == K.BRANCH
            and any(g.split("|", 1)[0] in together for g in e.guards)
            and not any(events[k].kind == K.AWAIT for k in range(b, w))
        }
        start: tuple[int, int, int] = (0, -1, -1)  # (event, use, await)
        queue = deque([start])
        seen: set[tuple[int, int]] = set()
        while queue:
            i, use, aw = queue.popleft()
            phase = 0 if use < 0 else (1 if aw < 0 else 2)
            if (i, phase) in seen:
                continue
            seen.add((i, phase))
            e = events[i]
            if i == w:
                if phase == 2:
                    return use, aw
                if i != 0:
                    continue
            if i != 0 and e.kind == K.WRITE and e.ref == ref:
                use, aw = -1, -1  # written again: a new value
            elif (
                (e.kind == K.READ and e.ref == ref and e.name == "compare")
                or (e.kind == K.BRANCH and any(g.split("|", 1)[0] == ref for g in e.guards))
                or (e.kind == K.READ and e.ref == ref and _tested(events, i))
                or i in rechecks
            ):
                use, aw = -1, -1  # checked again after the await: ``if self._c is c:``,
                # ``if self._sent_at > 0:`` (the value it then clears is the one it tested)
            elif (e.kind == K.READ and e.ref == ref) or (
                e.kind == K.CALL and e.ref.startswith(dot)
            ):
                if use < 0:
                    use = i
            elif e.kind == K.AWAIT and use >= 0 and aw < 0 and analysis.suspending(ctx, i):
                aw = i
            for nxt in e.succ:
                queue.append((nxt, use, aw))
        return None

    @staticmethod
    def _installers(
        analysis: Analysis, cls_fq: str, fn: Fn, ref: str
    ) -> Iterator[tuple[Fn, Event]]:
        """The other coroutines of the class that store a new object in the attribute (the
        first such store of each)."""
        for ci in analysis.index.mro(cls_fq):
            for name in sorted(ci.facts.methods):
                m = analysis.index.functions.get(f"{ci.module.module}.{ci.facts.methods[name]}")
                if m is None or m.fq == fn.fq or not m.facts.is_async:
                    continue
                for i, e in enumerate(m.facts.events):
                    if (
                        e.kind == K.WRITE
                        and e.ref == ref
                        and e.value is not None
                        and e.value.kind == "call"
                        and not _installs_only_when_empty(m.facts, i, ref)
                        and not _called_only_when_empty(analysis, cls_fq, m, ref)
                    ):
                        yield m, e
                        break

    @staticmethod
    def _locked_with(
        analysis: Analysis,
        ctx: Ctx,
        f: FunctionFacts,
        window: tuple[int, int, int],
        inst_fn: Fn,
        inst_ev: Event,
    ) -> bool:
        """The await and the clear run under a lock the installer also holds (an ``async
        with`` region, or an explicit ``await lock.acquire()`` ... ``lock.release()``); for
        either side, a lock every call of it holds around it counts too (``async with
        self.request_lock: await self.refresh_status()``). Or every await that can suspend
        between the use and the clear holds such a lock, and the clear comes after the lock
        is let go with no suspension in between (releasing an asyncio lock does not
        suspend): the installer can only run where this task suspends."""
        use, aw, w = window
        theirs = _held_at(analysis, inst_fn, inst_fn.facts.events.index(inst_ev))
        theirs |= _callers_hold(analysis, inst_fn)
        if not theirs:
            return False
        mine = {
            lock.ident
            for r in set(f.events[aw].regions) & set(f.events[w].regions)
            if (lock := analysis.region_lock(ctx, r)) is not None
        }
        mine |= _acquired(analysis, ctx, aw) & _acquired(analysis, ctx, w)
        mine |= _callers_hold(analysis, ctx.fn)
        if mine & theirs:
            return True
        between = [
            a
            for a in sorted(reachable(f, [use], avoid={w}))
            if f.events[a].kind == K.AWAIT
            and analysis.suspending(ctx, a)
            and w in reachable(f, [a])
        ]
        return bool(between) and all(_held_at(analysis, ctx.fn, a) & theirs for a in between)

    # -- an iterator that keeps its state on itself, shared -----------------------------------
    def _shared_iterators(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, likely: bool
    ) -> Iterator[Diagnostic]:
        """``async for attempt in _retrying:`` over a module-level (or shared) tenacity
        ``AsyncRetrying``: its ``__aiter__`` returns itself and stores the retry state there,
        so two calls iterating it at once clobber each other's attempt counter and outcome."""
        f = fn.facts
        for ev in f.events:
            if ev.kind == K.AWAIT and ev.name == "async for":
                ref = ev.ref
            elif ev.kind == K.LOCAL and ev.value is not None and ev.value.kind == "iter":
                ref = ev.value.ref
            else:
                continue
            if not ref.startswith(("global:", "self.", "cls.")) or "(" in ref:
                continue
            val = analysis.index.eval(ctx, ref)
            what = STATEFUL_ITERABLES.get(val.fq) if isinstance(val, Inst) else None
            if what is None:
                continue
            if ev.kind == K.LOCAL and not any(e.kind == K.AWAIT and e.repeated for e in f.events):
                continue  # a plain ``for`` over it with nothing awaited in the loop
            module_state = not ref.startswith("self.")
            evidence = analysis.concurrent(fn, ANY if module_state else OBJECT)
            if evidence.answer is None and module_state:
                evidence = analysis.api_entry(fn) or evidence
            if evidence.answer is not True and (not likely or evidence.answer is False):
                continue
            here = fn.module.path
            shown = ref.removeprefix("global:")
            where = "module-level" if ref.startswith("global:") else "shared"
            msg = (
                f"the {where} `{shown}` is iterated by every call of `{short(fn)}()`: {what}, "
                f"so concurrent calls overwrite each other's state across their awaits"
                f"{evidence_clause(evidence)}"
            )
            steps = (fn_step(fn, at(ev), "the shared iterator is started here"), *evidence.steps)
            yield make(self.code, here, at(ev), msg, steps, FIX_ITERATOR)
            return

    @staticmethod
    def _evidence(analysis: Analysis, fn: Fn, ref: str) -> Verdict:
        """May another call of ``fn`` overwrite the state meanwhile? For an attribute of
        ``self``: two calls on one object at once; for module or class state: two calls at
        all (a public coroutine is enough: its callers are not all in view)."""
        if ref.startswith("self."):
            return on_state(analysis, fn, analysis.concurrent(fn, OBJECT), ref)
        if ref.startswith("nonlocal:"):
            owner = _owner_of(analysis, fn, ref[len("nonlocal:") :])
            if owner is not None:
                return analysis.concurrent(fn, CELL + owner.fq)
        verdict = analysis.concurrent(fn, ANY)
        if verdict.answer is None and (api := analysis.api_entry(fn)) is not None:
            verdict = api
            if analysis.called_in_project(fn):
                # a public coroutine the project calls itself, with no evidence that those
                # calls overlap: being public says callers outside the project may overlap
                # two calls, not that any does (a per-call value kept in module or class state
                # on this evidence alone was right 1 time of 14 at the held-out sets' first runs;
                # the right ones were hooks and entry points nothing in the project calls).
                # Unless those calls come from such an entry point, whose callers are outside
                above = analysis.entry_above(fn)
                verdict = (
                    above
                    if above is not None
                    else Verdict(
                        None,
                        api.steps,
                        f"{LIKELY}a public coroutine, and the project's own calls of it do not overlap",
                    )
                )
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

        def is_await(i: int, ev: Event) -> bool:
            # releasing a lock does not suspend, nor does a coroutine that never suspends
            return ev.kind == K.AWAIT and analysis.suspending(ctx, i)

        def hit(i: int, ev: Event, aw: int) -> bool:
            if aw < 0:
                # an awaited callee that suspends, then reads it (``await self._process()``)
                if (
                    ev.kind == K.CALL
                    and ev.bind == Bind.AWAITED
                    and ref.startswith(("self.", "cls.", "global:"))
                    and analysis.reads_through(ctx, ev)
                ):
                    for tfn, tctx in analysis.targets(ctx, ev):
                        steps = analysis.late_reads(Ctx(tfn, tctx.recv)).get(ref)
                        if steps and not locked_together(ev):
                            callee_reads[i] = (
                                fn_step(fn, at(ev), f"awaits `{short(tfn)}`"),
                                *steps,
                            )
                            return True
                return False
            if ev.kind == K.READ and ev.ref == ref and ev.name != "compare":
                return (
                    not locked_together(ev)
                    and not only_logged(f, i)
                    and not feeds_own_update(f, i)  # a counter's next value
                )
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

        together = _written_together(f, write)

        def stop(_i: int, ev: Event) -> bool:
            # written again, or compared by identity with this call's own value
            # (``if self._writer is writer and ...:``), or a value written with it in one step
            # (its generation token): the code checks whether another task took over before
            # it acts, as the stale-clear and lost-update shapes accept
            if ev.kind == K.WRITE:
                return ev.ref == ref
            return ev.kind == K.READ and ev.name == "compare" and ev.ref in together

        for i, aw in search(f, list(write_ev.succ), stop=stop, hit=hit, is_await=is_await):
            if aw < 0:  # the suspension is inside the awaited callee
                call_step, *rest = callee_reads[i]
                await_step = Step(
                    call_step.path,
                    call_step.pos,
                    f"{call_step.label}: other tasks run while it is suspended and may "
                    "overwrite it",
                )
                return await_step, tuple(rest)
            aw_ev = f.events[aw]
            await_step = fn_step(
                fn, aw_ev.pos, f"{aw_ev.name}: other tasks run here and may overwrite it"
            )
            if i in callee_reads:
                return await_step, callee_reads[i]
            read = fn_step(fn, f.events[i].pos, "read back here, after the await")
            return await_step, (read,)
        return None


def _guard_serialized(v: Verdict) -> bool:
    """Is ``v`` a no because a caller lets one call through at a time past a check-then-set
    guard (``if self._state == State.IDLE: self._state = State.STREAMING``), not because a
    lock is held around the call (which the other side of a pair may hold too, or re-check
    under: ``_locked_with``)?"""
    return (
        v.answer is False
        and v.why == CALLERS_SERIALIZE
        and bool(v.steps)
        and ONCE_GUARD in v.steps[0].label
    )


def _runs_beside(analysis: Analysis, fn: Fn, install: Verdict, depth: int = 0) -> Verdict:
    """An installer whose callers serialize it with a check-then-set guard before the call
    (``if self._state == State.IDLE: self._state = State.STREAMING; await
    self._start_stream()``) never overlaps itself, but each call still runs in its caller's
    task. When the function that serializes it runs in several tasks at once (a framework's
    per-event callback), the one call let through runs beside the others, and beside a clear:
    that function's evidence is the installer's. Looked for up to two calls above the
    installer (``_start_stream`` calls ``_prepare_track``, which installs)."""
    if install.answer is True:
        return install
    if _guard_serialized(install):
        step = install.steps[0]
        holders = functions_at(analysis, step)  # (the last: the innermost that holds it)
        up = analysis.concurrent(holders[-1], OBJECT) if holders else install
        if up.answer is not True or up.why == "lock-protected class":
            # (a class that locks its state says its methods may be called at once, not that
            # the one holding the lock runs beside a clear elsewhere: the lock is what it shows)
            return install
        return Verdict(True, (*up.steps, step), up.why)
    if depth >= 2 or install.answer is False:
        return install
    for caller, i, known in analysis.calls_of(fn):
        if not known or caller.fq == fn.fq:
            continue
        v = analysis.concurrent(caller, OBJECT)
        if not _guard_serialized(v):
            continue
        found = _runs_beside(analysis, caller, v, depth + 1)
        if found.answer is True:
            ev = caller.facts.events[i]
            call = fn_step(caller, at(ev), f"`{short(caller)}` calls `{short(fn)}` here")
            return Verdict(True, (*found.steps, call), found.why)
    return install


def _installs_meanwhile(clear: Verdict, install: Verdict) -> Verdict:
    """The evidence of a stale clear: a new object is installed by a task other than the
    clearer's, during its await, when the installer runs in several tasks at once (a class
    that locks the attribute is such evidence for its installer too: the issue's own example,
    a client installed under a lock while ``disconnect`` clears it). That only the clearer does
    (a ``close`` reached from the object's concurrent senders, while ``connect`` runs once,
    right after the object is made) does not say that anything installs meanwhile: ``likely``
    at most, with its steps. An installer that runs one call at a time (under a lock, in one
    task) may still run during the clear: no evidence either way. The clearer's no is a no
    (``concurrent``)."""
    if install.answer is True:
        return install
    if clear.answer is True:
        return Verdict(
            None, clear.steps, f"{LIKELY}only the clear is shown to run in several tasks"
        )
    return (
        clear
        if clear.why
        else Verdict(None, install.steps, install.why if install.answer is None else "")
    )


def _same_for_every_task(analysis: Analysis, fn: Fn, evidence: Verdict, names: set[str]) -> Verdict:
    """The evidence is a start of ``fn`` itself in several tasks at once (``tasks =
    [self.urls(domain, config) for domain in domains]; await asyncio.gather(*tasks)``), and
    each of the starting function's calls of ``fn`` passes, for each parameter the stored
    value is made of (``names``: ``self.force = config.force``), the same object: a parameter
    of the starting function that it never binds anew (or none, leaving the default). Every
    task so started stores the same value, so none of them overwrites another's with a
    different one: the evidence says nothing of a clobber (likely at most). Not when the
    starting function itself runs in several tasks at once (two runs, two configs), nor when
    a call of ``fn`` elsewhere does (it may pass another object meanwhile); a call elsewhere
    with no such evidence is no more evidence than a public coroutine is."""
    if evidence.answer is not True or len(evidence.steps) != 1 or not names:
        return evidence
    params = {p.name for p in fn.facts.params}
    if not names <= params:
        return evidence  # (a local made from a parameter: not followed)
    spawner = analysis.spawner(evidence.steps[0])
    if spawner is None:
        return evidence
    found = analysis.calls_of(fn)
    own = [i for c, i, known in found if c.fq == spawner.fq and known]
    if not own or analysis.concurrent(spawner, ANY).answer is True:
        return evidence  # (two runs of the starter at once: two gathers, two configs)
    for c, _i, known in found:
        if c.fq == spawner.fq and not known:
            return evidence  # (a call beside the starts that may be another one)
        if c.fq != spawner.fq and analysis.concurrent(c, ANY).answer is True:
            return evidence  # (a call elsewhere that runs in several tasks may pass
            # another object meanwhile: ``relay`` passing a ``reply_to`` of its own
            # while the gathered calls pass none)
    sf = spawner.facts
    fixed = {p.name for p in sf.params} - {e.ref for e in sf.events if e.kind == K.LOCAL}
    calls = [sf.events[i] for i in own]
    given: dict[str, set[str]] = {name: set() for name in names}
    for e in calls:
        passed: dict[str, str] = {}
        for k, a in enumerate(e.args):
            kw = a.partition("=")[0] if is_kw(a) else ""
            param = param_for(fn, k, kw, e.args)
            if param:
                passed[param] = a.partition("=")[2] if kw else a
        for name in names:
            arg = passed.get(name, "")  # ("": the parameter's default)
            if arg and arg not in fixed:
                return evidence
            given[name].add(arg)
    if any(len(args) != 1 for args in given.values()):
        return evidence  # (two calls passing two objects: ``gather(job.fetch(a),
        # job.fetch(b))``)
    shared = sorted(a for args in given.values() for a in args if a)
    what = (
        "is passed the same " + ", ".join(f"`{a}`" for a in shared)
        if shared
        else "leaves it at the same default"
    )
    return Verdict(
        None,
        evidence.steps,
        f"{LIKELY}every task the evidence starts {what}, and stores the same value",
    )


def _tested(events: list[Event], i: int) -> bool:
    """Is the read ``i`` the start of an ``if``/``while`` test (``if self._sent_at > 0:``, an
    ordered comparison, which makes no guard atom): the branch follows it at once, on its
    line? What the branch then does, it does to the value it has just tested."""
    nxt = events[i + 1] if i + 1 < len(events) else None
    return nxt is not None and nxt.kind == K.BRANCH and nxt.pos[0] == events[i].pos[0]


def _written_together(f: FunctionFacts, w: int) -> set[str]:
    """The state written with the write at ``w`` in one step: between the await before it and
    the await after it (``self._token += 1; token = self._token; self._writer = writer;
    self._task = task``), in the order of the events. No other task runs in between, so a
    check that one of them is still this call's (``self._token == token``) says all of them
    are."""
    events = f.events
    out = {events[w].ref}
    for rng in (range(w - 1, -1, -1), range(w + 1, len(events))):
        for j in rng:
            e = events[j]
            if e.kind in (K.AWAIT, K.ENTRY, K.EXIT):
                break
            if e.kind == K.WRITE and e.ref.startswith(("self.", "cls.", "global:")):
                out.add(e.ref)
    return out


def _updates_itself(events: list[Event], w: int) -> bool:
    """Is the value written at ``w`` computed from the attribute's own value in the same
    statement (``self._raw = cast(dict, patch.apply(self._raw))``, ``self.x = self.x + [v]``,
    ``self.n += k``)? The reads of the right-hand side come just before the write, on its line
    or after it (a multi-line statement), with no await among them."""
    ev = events[w]
    if ev.name in AUGMENTED_OPS:
        return True
    line = ev.pos[0]
    j = w - 1
    while j >= 0:
        e = events[j]
        if e.kind not in (K.READ, K.CALL) or e.name == "await" or e.pos[0] < line:
            return False
        if e.kind == K.READ and e.ref == ev.ref:
            return True
        j -= 1
    return False


def _only_at_teardown(analysis: Analysis, fn: Fn) -> bool:
    """Is ``fn`` a tear-down method (``close``, ``stop``, ``aclose_events``) that the project
    calls only from other tear-down methods, or not at all? Then it runs when the object's life
    ends, not between two of its operations (a ``disconnect`` that a command's error path calls
    is not one)."""
    if not teardown_name(fn.facts.name):
        return False
    for caller, _i, known in analysis.calls_of(fn):
        if not known:
            continue  # ``x.close()``, ``x.cleanup()`` on an unknown object: a tear-down name
            # is every class's, so a call found by the name alone is likely another's
        outer = caller.facts.qualname.split(".")
        if not any(teardown_name(part) for part in outer):
            return False
    return True


def _owner_of(analysis: Analysis, fn: Fn, name: str) -> Fn | None:
    """The enclosing function whose local ``name`` the closure ``fn`` declares ``nonlocal``:
    the nearest one that assigns it without declaring it ``nonlocal`` itself."""
    cur = fn
    while cur.facts.parent is not None:
        up = analysis.index.functions.get(f"{cur.module.module}.{cur.facts.parent}")
        if up is None:
            return None
        events = up.facts.events
        if any(e.ref == f"nonlocal:{name}" for e in events):
            cur = up
            continue
        if any(e.kind in (K.LOCAL, K.WRITE) and e.ref == name for e in events) or name in {
            p.name for p in up.facts.params
        }:
            return up
        cur = up
    return None


def _reads_into(events: list[Event], j: int) -> set[str]:
    """The ``self.X`` state read in the expression evaluated just before event ``j`` (events
    run in evaluation order: a value's reads come right before its assignment or call)."""
    out: set[str] = set()
    k = j - 1
    while k >= 0 and events[k].kind in (K.READ, K.CALL, K.AWAIT):
        e = events[k]
        if e.kind == K.READ and e.ref.startswith("self.") and e.ref.count(".") == 1:
            out.add(e.ref)
        k -= 1
    return out


def _turns_away_while_locked(fn: Fn) -> bool:
    """``if self._lock.locked(): async with self._lock: return`` then ``async with
    self._lock:`` around the update: a caller that arrives while an update is in flight waits
    for it and returns instead of updating again (the lock is the in-flight flag)."""
    regions = {r.ref for r in fn.facts.regions}
    return any(
        e.kind == K.CALL and e.ref.endswith(".locked") and e.ref[: -len(".locked")] in regions
        for e in fn.facts.events
    )


def _called_only_when_empty(analysis: Analysis, cls_fq: str, m: Fn, ref: str) -> bool:
    """Is the private installer ``m`` called, by the methods of its class, only where a check
    found the attribute empty (``if not self._name: await self._start()``)? Then, as for an
    installer that checks itself, it cannot run while the attribute still holds the object
    being torn down."""
    name = m.facts.name
    if not name.startswith("_") or name.startswith("__"):
        return False  # (a public installer may be called from anywhere)
    found = False
    for ci in analysis.index.mro(cls_fq):
        analysis.tracker.note(ci.module.module)  # its methods, however many
        for q in sorted(ci.facts.methods.values()):
            c = analysis.index.functions.get(f"{ci.module.module}.{q}")
            if c is None:
                continue
            for j, e in enumerate(c.facts.events):
                if e.kind == K.CALL and e.ref == f"self.{name}":
                    if not _installs_only_when_empty(c.facts, j, ref):
                        return False
                    found = True
    return found


def _refused_meanwhile(
    f: FunctionFacts, aw: int, inst: FunctionFacts, inst_ev: Event, ref: str
) -> bool:
    """``if self._is_initialized: return`` ... ``self.pool = await create_pool()`` ...
    ``self._is_initialized = True`` in the installer, and a clear whose function lowers
    ``self._is_initialized`` only after its await (``await self.pool.close();
    self._is_initialized = False``; ``self.pool = None``): the installer raises the flag with
    each install and installs only while it is down, and the clear leaves it raised through
    the await, so no new object can be installed during it."""
    install = next((i for i, e in enumerate(inst.events) if e is inst_ev), -1)
    if install < 0:
        return False
    gates = sorted(
        {
            g.split("|", 1)[0]
            for e in inst.events
            if e.kind == K.BRANCH
            for g in e.guards
            if g.split("|")[2] in ("none", "truthy")
        }
    )
    for flag in gates:
        if flag == ref or not flag.startswith("self.") or flag.count(".") != 1:
            continue
        if not _installs_only_when_empty(inst, install, flag):
            continue
        raised = any(
            e.kind == K.WRITE
            and e.ref == flag
            and e.value is not None
            and not (e.value.kind == "const" and e.value.ref == _FALSY)
            for e in inst.events
        )
        lowered = [
            i
            for i, e in enumerate(f.events)
            if e.kind == K.WRITE
            and e.ref == flag
            and e.value is not None
            and e.value.kind == "const"
            and e.value.ref == _FALSY
        ]
        if raised and (not lowered or aw not in reachable(f, lowered)):
            return True
    return False


def _installs_only_when_empty(f: FunctionFacts, install: int, ref: str) -> bool:
    """Is the install reached only where a check found the attribute empty (``if
    self.connection is None: self.connection = await pool.get()``), with no clear of it on
    the way? Then it cannot run while the attribute still holds the object being torn down."""

    def step(i: int, cleared: bool) -> list[tuple[int, bool]]:
        if i == install:
            return []
        e = f.events[i]
        if e.kind == K.WRITE and e.ref == ref and e.value is not None and e.value.kind == "const":
            cleared = True
        succ = list(e.succ)
        if e.kind == K.BRANCH and not cleared and len(succ) >= 2:
            # a test of the attribute alone, or one of the atoms of an ``and`` whose true
            # branch finds it absent (``if timeout > 0 and not self._task:``), or of an ``or``
            # whose false branch does (in ``a and b`` the false branch says nothing of ``b``)
            for g in e.guards:
                atom, absent, kind, _key = g.split("|")
                if atom != ref or kind not in ("none", "truthy"):
                    continue
                if (
                    not e.name.startswith("compound")
                    or (e.name == "compound:and" and absent == "0")
                    or (e.name == "compound:or" and absent == "1")
                    or (e.name == "compound:or" and _sets_up_together(f, e))
                ):
                    succ = [succ[1 - int(absent)]]  # only where it was found present
                    break
        return [(n, cleared) for n in succ]

    return not any(i == install for i, _c in walk(f, False, step))


def _sets_up_together(f: FunctionFacts, e: Event) -> bool:
    """``if not _manager or not _credits:`` then both stored: a set-up of several slots at
    once, entered while any of them is empty. Every atom of the ``or`` is such a test
    (``not x``, ``x is None``) of a slot the branch it guards stores, so once one call has
    run it every slot is set and no later call enters: as for one slot, what it stores is
    the shared object, not a per-call value (a first race is ARC003's)."""
    atoms = [g.split("|") for g in e.guards]
    if len(atoms) < 2 or any(a[1] != "0" or a[2] not in ("none", "truthy") for a in atoms):
        return False
    arm = reachable(f, [e.succ[0]]) - reachable(f, [e.succ[1]])  # (the body, not after it)
    stored = {f.events[i].ref for i in arm if f.events[i].kind == K.WRITE}
    return all(a[0] in stored for a in atoms)


def _callers_hold(analysis: Analysis, fn: Fn) -> set[str]:
    """The asyncio locks every call of ``fn`` in the project holds around it (none when a
    call's target is not known, or the project does not call it)."""
    common: set[str] | None = None
    for caller, i, known in analysis.calls_of(fn):
        if not known:
            return set()
        held = _held_at(analysis, caller, i)
        common = held if common is None else common & held
        if not common:
            return set()
    return common or set()


def _held_at(analysis: Analysis, fn: Fn, i: int) -> set[str]:
    """The asyncio locks held at event ``i`` of ``fn``: its ``async with`` regions' and the
    explicit acquisitions'."""
    ctx = analysis.ctx(fn)
    held = {
        lock.ident
        for r in fn.facts.events[i].regions
        if (lock := analysis.region_lock(ctx, r)) is not None
    }
    return held | _acquired(analysis, ctx, i)


def _acquired(analysis: Analysis, ctx: Ctx, j: int) -> set[str]:
    """The asyncio locks held at event ``j`` by an explicit ``await <lock>.acquire()``: every
    path from the function's entry to ``j`` passes an acquire of the lock, and none goes from
    a ``<lock>.release()`` to ``j`` without a new acquire."""
    f = ctx.fn.facts
    by_lock: dict[str, tuple[set[int], set[int]]] = {}
    for i, e in enumerate(f.events):
        if e.kind != K.CALL:
            continue
        if e.ref.endswith(".acquire") and e.bind == Bind.AWAITED:
            by_lock.setdefault(e.ref[: -len(".acquire")], (set(), set()))[0].add(i)
        elif e.ref.endswith(".release"):
            by_lock.setdefault(e.ref[: -len(".release")], (set(), set()))[1].add(i)
    out: set[str] = set()
    for ref, (acquires, releases) in by_lock.items():
        if not acquires or j in acquires:
            continue
        if j in reachable(f, [0], acquires):
            continue  # a path from the entry that never acquires it
        if releases and (j in releases or j in reachable(f, sorted(releases), acquires)):
            continue  # a path from a release that does not acquire it again
        lock = analysis.summaries.locks.lock_of(ctx, ref)
        if lock is not None and lock.kind == "async":
            out.add(lock.ident)
    return out
