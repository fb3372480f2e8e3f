"""ARC003 guard-before-registration (hermes gateway PR 2086).

A check of shared state (``if key in self._running: return``, ``if self._client is None:``) is
followed, on the path where the check found nothing, by an await before the key or value is
registered. A second task arriving during that await passes the same check, and both go on:
duplicate agents, double connections, a cache filled twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from asyncrace.analysis.concurrency import (
    ANY,
    AWAIT_WRAPPERS,
    LIKELY,
    OBJECT,
    REQUEST_TYPES,
    Verdict,
)
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import (
    Bind,
    Event,
    FunctionFacts,
    K,
    ModuleFacts,
    Value,
    inside,
    reachable,
)
from asyncrace.analysis.index import Ctx, Fn, first_seg, is_kw, is_property
from asyncrace.analysis.summaries import (
    Registration,
    Step,
    at,
    before_await,
    const_flags,
    decided_by_flags,
    def_step,
    fn_step,
    registration_of,
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
    "Register a placeholder (a sentinel) right after the check, before the first await, and "
    "remove it in `finally` if the work fails; or hold an asyncio.Lock from the check to the "
    "registration (and re-check inside the lock)."
)


# a registration this many calls away (a callee, or a task it spawns) is still the one the check
# guards (hermes: _handle_message -> _run_agent -> track_agent); deeper chains register other
# keys for other purposes
MAX_CALLEE_STEPS = 2


def _through_getter(analysis: Analysis, fn: Fn, atom: str) -> str:
    """The state a guard checks: ``self._client`` for ``self.get_client()`` or the property
    ``self.client`` when that getter only returns ``self._client`` (a one-line getter); the
    atom itself for plain state; ``""`` for a call that is no such getter."""
    is_call = atom.endswith("()")
    ref = atom[:-2] if is_call else atom
    if not ref.startswith("self.") or ref.count(".") != 1:
        return "" if is_call else atom
    cls_fq = analysis.index.method_fn(fn)
    getter = analysis.index.find_method(cls_fq, ref[5:]) if cls_fq else None
    if getter is None or (not is_call and not is_property(getter.facts)):
        return "" if is_call else atom
    g = getter.facts
    returns = [e for e in g.events if e.kind == K.RETURN]
    if (
        g.is_async
        or len(returns) != 1
        or len(g.returns_refs) != 1
        or not g.returns_refs[0].startswith("self.")
        or g.returns_refs[0].count(".") != 1
        or any(e.kind == K.CALL for e in g.events)
    ):
        return "" if is_call else atom
    return g.returns_refs[0]


def _property_reads(analysis: Analysis, fn: Fn, atom: str, ref: str) -> bool:
    """Is ``atom`` a property of ``fn``'s class (``self.connection_open``) whose getter reads
    ``ref`` (``return self._transport is not None and self._protocol is not None``)? A test
    of it checks that state again."""
    if atom.endswith("()") or not atom.startswith("self.") or atom.count(".") != 1:
        return False
    if not ref.startswith("self.") or ref.count(".") != 1:
        return False
    cls_fq = analysis.index.method_fn(fn)
    getter = analysis.index.find_method(cls_fq, atom[5:]) if cls_fq else None
    if getter is None or not is_property(getter.facts) or getter.facts.is_async:
        return False
    return any(e.kind == K.READ and e.ref == ref for e in getter.facts.events)


def _guard_literal(ev: Event, ref: str, kind: str) -> str:
    """The value a value guard compares ``ref`` with (``self._state == "connected"``)."""
    for g in ev.guards:
        atom, _branch, k, key = g.split("|")
        if atom == ref and k == kind:
            return key
    return ""


def _guard_atoms(ev: Event) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    for g in ev.guards:
        ref, branch, kind, _key = g.split("|")
        out.append((ref, int(branch), kind))
    return out


def _set_before_spawn(analysis: Analysis, fn: Fn, verdict: Verdict, ref: str) -> Verdict:
    """The evidence is a spawn of the object's own method (``create_task(self._poll_loop(t))
    for t in tiers``) whose tasks reach the check; does the spawner set ``ref`` on every path
    before it spawns (``if self.config is None: await self.load_config()``, then the spawn),
    while no method of the class sets it back to nothing? Then the tasks find it set and none
    of them passes the check: the evidence says nothing of this guard (``likely`` at most)."""
    root = verdict.steps[0] if verdict.steps else None
    spawner = analysis.spawner(root) if root is not None else None
    if root is None or spawner is None:
        return verdict
    idx = analysis.index
    cls, own = idx.method_fn(spawner), idx.method_fn(fn)
    if cls is None or own is None or not idx.inherits(cls, own):
        return verdict  # the tasks run on another object than the one the check is on
    analysis.tracker.note(spawner.module.module)  # (its events are read below)
    sf = spawner.facts
    spawn = next(
        (
            k
            for k, e in enumerate(sf.events)
            if e.kind == K.CALL and at(e) == root.pos and first_seg(e.ref) == "self"
        ),
        -1,
    )
    if spawn < 0:
        return verdict
    ctx = analysis.ctx(spawner)

    def sets(e: Event) -> bool:
        if e.kind == K.WRITE and e.ref == ref and e.value is not None:
            return not _clears(e)
        if e.kind != K.CALL or e.bind == Bind.ARG or not analysis.same_object_call(ctx, e):
            return False
        return any(
            reg.attr == ref and reg.is_write
            for t, tctx in analysis.targets(ctx, e)
            for reg in analysis.registrations(Ctx(t, tctx.recv))
        )

    seen: set[int] = set()
    todo = [0]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        if i == spawn:
            return verdict  # a path reaches the spawn with ``ref`` maybe unset
        e = sf.events[i]
        if sets(e):
            continue
        nxt = list(e.succ)
        if e.kind == K.BRANCH and len(e.succ) == 2:
            for atom, absent, kind in _guard_atoms(e):
                if atom == ref and kind in ("none", "truthy"):
                    nxt = [e.succ[absent]]  # the other branch found it set
        todo.extend(nxt)
    for m in idx.methods_of(idx.mro(cls)):
        if m.facts.name in ("__init__", "__post_init__"):
            continue
        for e in m.facts.events:
            if e.ref == ref and (e.kind == K.DELITEM or _clears(e)):
                return verdict  # set back to nothing: a later task may find it unset
    return Verdict(
        None,
        verdict.steps,
        f"{LIKELY}`{short(spawner)}` sets `{ref}` before it starts the tasks, and nothing "
        "unsets it",
    )


def _flag_skips_check(analysis: Analysis, fn: Fn, b: int, evidence: Verdict) -> Verdict:
    """The evidence reaches ``fn`` through a call that passes a flag as a constant, and the
    flag decides the check at event ``b`` or keeps the function from it
    (``fetch_marketplace(force=True)`` into ``if not force and fresh: return cache``;
    ``_resume(..., recovery=False)`` into ``if recovery and key in self.tasks: return``): on
    that path nothing is checked, so the path is no evidence of a check passed twice (what
    else runs the function is not searched again: likely)."""
    if evidence.answer is not True or len(evidence.steps) < 2:
        return evidence
    last = evidence.steps[-1]
    for g in functions_at(analysis, last):
        ctx = analysis.ctx(g)
        for e in g.facts.events:
            if e.kind != K.CALL or at(e) != last.pos or not (flags := const_flags(e)):
                continue
            if not any(t.fq == fn.fq for t, _c in analysis.targets(ctx, e)):
                continue
            if decided_by_flags(fn.facts, b, flags):
                passed = ", ".join(f"{k}={v}" for k, v in sorted(flags.items()))
                return Verdict(
                    None,
                    evidence.steps,
                    f"{LIKELY}the evidence's call passes `{passed}`, which decides the check",
                )
    return evidence


def _per_request_key(fn: Fn, guard: Event, ref: str, evidence: Verdict) -> Verdict:
    """The evidence is that the framework runs ``fn`` once per request (its parameter is the
    server's ``Request``/``WebSocket``), and the checked key is that very parameter (``if
    websocket not in self.pages: ... self.pages[websocket] = page``): the activations the
    evidence names each have their own request, so none of them checks the key another has
    not registered yet. What runs one request's activations at once is another question."""
    if evidence.answer is not True or evidence.why != "entry point" or not evidence.steps:
        return evidence
    root = evidence.steps[0]
    if root.path != fn.module.path or root.pos[0] != fn.facts.pos[0]:
        return evidence  # the entry is a caller, not ``fn`` itself
    keys = _key_names(fn.facts, guard, ref)
    own = {p.name for p in fn.facts.params if p.annotation.rpartition(".")[2] in REQUEST_TYPES}
    if len(keys) != 1 or not keys <= own:
        return evidence
    (name,) = keys
    return Verdict(
        None,
        evidence.steps,
        f"{LIKELY}the key is `{name}`, the request the framework gives each run its own",
    )


def _claimed_with(reg: Registration, regs: list[Registration]) -> bool:
    """Does the callee register ``reg``'s attribute behind a check of another attribute that
    it registers in the same place, behind the same check (``if self._conn is None: self._conn
    = await connect(); self._pool = Pool(self._conn)``, reached by ``if self._pool is None:
    await self._get_conn()``)? The callee re-checks the work's claim itself: a second task
    that passed the caller's check finds the partner set and registers nothing. A race on the
    partner is the callee's own guard, reported there."""
    where = reg.steps[:-1]
    return any(
        other.attr in reg.guarded
        and other.attr != reg.attr
        and other.attr in other.guarded
        and other.steps[:-1] == where
        for other in regs
    )


def _claims_first(f: FunctionFacts) -> bool:
    """Does the function open with a claim of its own, made before it first suspends: a test
    of some state of its object (``if region in self._pending: return await
    self._pending[region]``) whose absent branch registers into that same state before any
    await (``self._pending[region] = future``)? Then a second caller that passed an outer
    check finds the claim and waits for the first (an in-flight table): the outer check is a
    fast path, and no work runs twice."""
    events = f.events
    for ev in events:
        if ev.kind == K.AWAIT:
            return False  # it suspends before any claim
        if ev.kind != K.BRANCH:
            continue
        for atom, absent, _kind in _guard_atoms(ev):
            if not atom.startswith("self.") or len(ev.succ) < 2:
                continue
            seen: set[int] = set()
            todo = [ev.succ[absent]]
            while todo:
                i = todo.pop()
                if i in seen:
                    continue
                seen.add(i)
                e = events[i]
                if e.kind == K.AWAIT:
                    continue  # past a suspension: too late to be a claim
                if registration_of(e) == atom:
                    return True
                todo.extend(e.succ)
    return False


def _renewed_when_found(
    f: FunctionFacts,
    b: int,
    start: int,
    ref: str,
    is_await: Callable[[int, Event], bool],
    registers: Callable[[int, Event], bool],
    clearing: frozenset[int],
) -> bool:
    """Does the side of the check at ``b`` that finds ``ref`` set (from ``start``) also reach
    a registration of ``ref`` of its own past an await, without clearing it first (itself or
    through a method of the object that does, ``clearing``: ``if
    self._last_save_time: if now - self._last_save_time >= interval: await self._save();
    self._last_save_time = now``)? Then both sides do the work and store the value: the check
    decides when the work runs, not whether it runs once (pulpcore's save throttle, set
    136)."""
    seen: set[tuple[int, bool]] = set()
    todo = [(start, False)]
    while todo:
        j, waited = todo.pop()
        if j == b or (j, waited) in seen:
            continue
        seen.add((j, waited))
        e = f.events[j]
        if (e.ref == ref and _clears(e)) or j in clearing:
            continue  # torn down first: a value replaced, not renewed
        if waited and registers(j, e) and registration_of(e) == ref:
            return True
        nxt = waited or is_await(j, e)
        todo.extend((k, nxt) for k in e.succ)
    return False


def _claimed_inside(
    f: FunctionFacts, start: int, reg: int, ref: str, is_await: Callable[[int, Event], bool]
) -> bool:
    """Does every way from ``start`` (the check's absent side) to the registration at ``reg``
    pass a claim of another flag of the object, made before anything suspends: a check of
    ``self.X`` whose side that finds it clear sets it (``if not self.deploying:
    self.deploying = True; await self.deploy()``), with no suspension from ``start`` to the
    set? A second task that passes the outer check finds the flag set and keeps off the work
    (streamflow's ``FutureConnector``, set 134); the inner check is a guard of its own,
    checked as one."""
    quiet = dict(before_await(f, start, is_await))
    for ev in quiet.values():
        if ev.kind != K.BRANCH or len(ev.succ) != 2:
            continue
        for flag, absent, kind in _guard_atoms(ev):
            if flag == ref or kind not in ("truthy", "none"):
                continue
            if not flag.startswith("self.") or flag.count(".") != 1:
                continue
            for w, e in before_await(f, ev.succ[absent], is_await):
                v = e.value
                if (
                    e.kind == K.WRITE
                    and e.ref == flag
                    and w in quiet
                    and v is not None
                    and v.kind == "const"
                    and v.ref == "truthy"  # (set: what the check turns away)
                    and not _reaches_avoiding(f, start, reg, {w})
                ):
                    return True
    return False


def _key_names(
    f: FunctionFacts,
    ev: Event,
    ref: str,
    sources: dict[str, set[str]] | None = None,
    at_index: int = -1,
) -> frozenset[str]:
    """The plain names the checked key is made of (``id(model) in self.x`` -> id, model), and
    what the locals among them were computed from (``k = build_key(source)`` -> build_key,
    source): a callee given ``source`` can compute the same key again. With ``at_index`` (the
    check), a local among them holds what its assignments that reach the check hold (a
    parameter ``message`` reassigned only further on, ``message = await ctx.send(...)``, is
    still the caller's message at the check)."""
    names: set[str] = set()
    for g in ev.guards:
        atom, _branch, _kind, key = g.split("|")
        if atom == ref and key:
            names.update(key.split(","))
    if at_index < 0 or sources is None or not sources:
        return _derivation(f, names, sources)
    first: set[str] = set(names)
    sources = dict(sources)
    for name in names:
        if name in sources:
            first |= _reaching_names(f, name, at_index)
            sources.pop(name)
    return _derivation(f, first, sources)


def _reaching_names(f: FunctionFacts, name: str, at: int) -> set[str]:
    """The names the assignments of the local ``name`` that reach event ``at`` are made of."""
    out: set[str] = set()
    for j, e in enumerate(f.events):
        if e.kind == K.LOCAL and e.ref == name and e.value is not None and at in reachable(f, [j]):
            out.update(e.value.names)
    return out


def _local_sources(f: FunctionFacts) -> dict[str, set[str]]:
    """Local name -> the names its assignments in ``f`` are computed from."""
    out: dict[str, set[str]] = {}
    for e in f.events:
        if e.kind == K.LOCAL and e.value is not None:
            out.setdefault(e.ref, set()).update(e.value.names)
    return out


def _derivation(
    f: FunctionFacts, names: set[str], sources: dict[str, set[str]] | None = None
) -> frozenset[str]:
    """``names`` and every name the locals among them were computed from, transitively."""
    if sources is None:
        sources = _local_sources(f)
    out = set(names)
    todo = list(out)
    while todo:
        new = sources.get(todo.pop(), set()) - out
        out.update(new)
        todo.extend(new)
    return frozenset(out)


def _registers_another_key(
    f: FunctionFacts,
    ev: Event,
    key: frozenset[str],
    sources: dict[str, set[str]] | None = None,
    at_index: int = -1,
) -> bool:
    """``self._sessions[t.id] = t`` with ``t = Transport(uuid4().hex)``, after checking
    ``sid in self._sessions``: the key stored is made of nothing the checked key is made of,
    so it is another key (a fresh one), not the one checked. Only for a key written as a
    plain name or attribute chain (a call's arguments are not in its ref) whose derivation,
    like the checked key's, does not involve ``self`` or ``cls``."""
    if not key or key & {"self", "cls"}:
        return False
    keyed = ev.kind == K.SETITEM or (
        ev.kind == K.CALL and ev.ref.rpartition(".")[2] in ("add", "setdefault")
    )
    if not keyed or not ev.args:
        return False  # append, extend, update...: what the key is, is not said
    kref = ev.args[0].removeprefix("global:")
    if not kref or any(c in kref for c in "()[]*:=") or kref == "const":
        return False
    head = kref.split(".", 1)[0]
    if not head.isidentifier():
        return False
    first: set[str] = {head}
    if at_index >= 0:
        # what the head holds here: its assignments that reach the registration (``view =
        # _active[message.id]`` on the branch that returned does not; ``view = Menu(pages)``
        # on this one does)
        defs = [j for j, e in enumerate(f.events) if e.kind == K.LOCAL and e.ref == head]
        reaching = _reaching_names(f, head, at_index)
        if defs and reaching:
            first = reaching
            if first & {"self", "cls"} or first & key:
                return False
            sources = dict(sources or _local_sources(f))
            sources.pop(head, None)
    made_of = _derivation(f, first, sources)
    return not made_of & {"self", "cls"} and not made_of & key


def _cannot_get_key(
    f: FunctionFacts,
    call: Event,
    callee: Fn,
    key: frozenset[str],
    direct: frozenset[str],
    sources: dict[str, set[str]],
    handed: bool,
) -> bool:
    """A callee given nothing the checked key is made of (``self._admit(user)`` after
    checking ``sid in self._sessions``) registers a key of its own making, a fresh session
    id, not the one checked (unless it fills many keys at once: ``bulk``). An argument gives
    the key when the key is computed from it (``key`` is what the key's names come from,
    ``k = build(source)`` then ``self._run(source)``) or it is computed from the key's own
    names (``direct``: ``k = name.lower()`` then ``self._register(k)``); two values that
    merely share an ancestor (a request both are read from) do not. Unknown, so never blind: a key
    involving ``self`` or ``cls``, a caller that stores something made from the key in
    ``self`` state (the callee may read it there), an argument that is a call, a starred or
    double-starred argument or one asyncrace does not summarise, and a nested callee (it
    sees the caller's locals)."""
    if not key or key & {"self", "cls"} or callee.facts.parent is not None:
        return False
    if handed:  # (``_handed_over``, asked once per guard by the caller)
        return False
    for a in call.args:
        k, eq, v = a.partition("=")
        ref = v if eq and k.isidentifier() else a
        if (
            not ref
            or ref.startswith(("lambda:", "partial:", "*"))
            or any(c in ref for c in "()[]=")
        ):
            return False
        head = ref.removeprefix("global:").split(".", 1)[0]
        if not head.isidentifier() or head in ("self", "cls"):
            return False
        if head in key or _derivation(f, {head}, sources) & direct:
            return False
    return True


def _handed_over(f: FunctionFacts, direct: frozenset[str], sources: dict[str, set[str]]) -> bool:
    """Does the function store something made from the key's own names (``direct``) in
    ``self``, ``cls`` or module state, where a callee may read it? Asked once per guard
    (:func:`_cannot_get_key` asks it for every call; a function of thousands of events with
    hundreds of calls made it quadratic: 12 s for one file of timbal, set 108)."""
    return any(
        e.kind in (K.WRITE, K.SETITEM)
        and e.ref.startswith(("self.", "cls.", "global:"))
        and e.value is not None
        and bool(_derivation(f, set(e.value.names), sources) & direct)
        for e in f.events
    )


def _waits_for(f: FunctionFacts, ref: str, writers: frozenset[int] = frozenset()) -> bool:
    """``while self._busy is not None: await self._busy``: a hand-rolled mutex. Waiting in a
    loop for the attribute to clear says several tasks use this object at once. Not the
    function's own loop: one that writes the attribute itself on the way round (a retry loop
    that clears and asks again, ``self.code = None``; or a call in ``writers``, of a method of
    the same object that writes it: a supervision loop whose ``await self.spawn()`` records
    the outcome it then checks), or a ``for`` that checks it once per item (the step to the
    next item is no wait for another task), or one reached past the function's own
    registration of the attribute (it waits for its own work to be undone)."""
    writes = {
        i
        for i, e in enumerate(f.events)
        if (e.kind == K.WRITE and e.ref == ref) or registration_of(e) == ref
    } | writers
    steps = {
        i
        for i, e in enumerate(f.events)
        if e.kind == K.LOCAL and e.value is not None and e.value.kind == "iter"
    }
    sets = {i for i in writes if not _clears(f.events[i])}
    # a loop reached only past the function's own registration waits for its own work to be
    # undone (``await self.connect()``, then ``while self._connected: await sleep(1)``: a
    # listener's lifetime), not for another task's
    for b, ev in enumerate(f.events):
        if ev.kind != K.BRANCH or len(ev.succ) < 2:
            continue
        for atom_ref, absent, _kind in _guard_atoms(ev):
            if atom_ref != ref:
                continue
            if any(b in reachable(f, [w]) for w in sets):
                break  # reached past its own registration: it waits for its own work to be
                # undone (``await self.connect()``, then ``while self._connected: await
                # sleep(1)``: a listener's lifetime), not for another task's
            after = reachable(f, [b])
            if any(w in after and b in reachable(f, [w]) for w in writes):
                break  # the function sets the attribute itself in the loop
            # from the branch where the value is present: an await, then back to the check
            seen: set[tuple[int, bool]] = set()
            todo = [(ev.succ[1 - absent], False)]
            while todo:
                i, waited = todo.pop()
                if i == b:
                    if waited:
                        return True
                    continue
                if (i, waited) in seen or i in steps:
                    continue
                seen.add((i, waited))
                now = waited or f.events[i].kind == K.AWAIT
                todo.extend((s, now) for s in f.events[i].succ)
    return False


def _clears(e: Event) -> bool:
    """``self.x = None`` (or another falsy constant)."""
    v = e.value
    return e.kind == K.WRITE and v is not None and v.kind == "const" and v.ref == "falsy"


def _writing_calls(
    analysis: Analysis, fn: Fn, ref: str, clear_only: bool = False
) -> frozenset[int]:
    """The calls of ``fn`` on its own object whose callee writes ``ref`` (``self.X``), itself
    or in a method of the same object it calls (two calls deep); ``clear_only``: whose callee
    sets it to nothing (``self._sb = None``)."""
    if not ref.startswith("self."):
        return frozenset()
    ctx = analysis.ctx(fn)

    def writes(c: Ctx, depth: int) -> bool:
        for ev in c.fn.facts.events:
            if clear_only:
                if ev.ref == ref and _clears(ev):
                    return True
            elif (ev.kind == K.WRITE and ev.ref == ref) or registration_of(ev) == ref:
                return True
            if (
                ev.kind == K.CALL
                and depth < 2
                and analysis.same_object_call(c, ev)
                and any(writes(t, depth + 1) for _f, t in analysis.targets(c, ev))
            ):
                return True
        return False

    return frozenset(
        i
        for i, ev in enumerate(fn.facts.events)
        if ev.kind == K.CALL
        and analysis.same_object_call(ctx, ev)
        and any(writes(t, 1) for _f, t in analysis.targets(ctx, ev))
    )


def _records_outcome(f: FunctionFacts, ref: str) -> bool:
    """``message = await receive()``, then ``self.state = "connect"`` on one branch and
    ``self.state = "disconnect"`` on another: the value the function writes after its await is
    chosen by what happened there, a state machine recording an outcome, not a claim on work
    that could be made before the await. (Writes on failure paths, in ``except``, do not
    count: a claim is often undone there.)"""
    awaited = False
    writes: list[tuple[int, str]] = []
    for i, e in enumerate(f.events):
        if e.kind == K.AWAIT:
            awaited = True
        elif (
            awaited
            and e.kind == K.WRITE
            and e.ref == ref
            and not e.in_except
            and e.value is not None
            and e.value.kind in ("const", "attr")
            and e.value.literal
        ):
            writes.append((i, e.value.literal))
    for n, (i, a) in enumerate(writes):
        for j, b in writes[n + 1 :]:
            if a != b and j not in reachable(f, [i]) and i not in reachable(f, [j]):
                return True
    return False


def _consumes(f: FunctionFacts, start: int, ref: str) -> bool:
    """Does the branch where the key was found take it out (pop/del/remove) before any await?
    Then the check routes a reply to its waiter; it does not guard against duplicates."""
    takers = (f"{ref}.pop", f"{ref}.remove", f"{ref}.discard")
    return any(
        (ev.kind == K.DELITEM and ev.ref == ref) or (ev.kind == K.CALL and ev.ref in takers)
        for _i, ev in before_await(f, start)
    )


def _owned_by_caller(analysis: Analysis, fn: Fn) -> bool:
    """A method of an object made per call (a private class instantiated into a local, never
    kept in long-lived state): it belongs to the task that made it."""
    if fn.facts.parent is not None:
        return False
    cls_fq = analysis.index.method_fn(fn)
    return cls_fq is not None and analysis.per_call_class(cls_fq)


def _claimed_by_a_flag_refused_on_entry(
    analysis: Analysis, fn: Fn, b: int, absent: int, ref: str
) -> bool:
    """Past the check, before anything suspends, the function sets a flag of its object
    (``self._accepting = False``), and every call of it in the project comes right after a
    call that refuses on that flag (``await self._validate_common(frame)``, which raises when
    ``not self._accepting``), with nothing suspending between that refusal and the check:
    the flag is the sentinel, set and tested in one step for every task on the way in
    (agently's binding bridge, set 109: a second completion is refused as "already
    settled")."""
    f = fn.facts
    ctx = analysis.ctx(fn)

    def suspends(c: Ctx, j: int, ev: Event) -> bool:
        return ev.kind == K.AWAIT and analysis.suspending(c, j)

    if not _quiet_path(f, 0, b, lambda j, ev: suspends(ctx, j, ev)):
        return False
    flags: dict[str, bool] = {}  # flag -> the value written is falsy
    start = f.events[b].succ[absent]
    for _j, ev in before_await(f, start, lambda j, e: suspends(ctx, j, e)):
        v = ev.value
        if (
            ev.kind == K.WRITE
            and ev.ref != ref
            and ev.ref.startswith("self.")
            and ev.ref.count(".") == 1
            and v is not None
            and v.kind == "const"
        ):
            flags[ev.ref] = v.ref == "falsy"
    if not flags:
        return False
    callers = analysis.calls_of(fn)
    if not callers:
        return False
    for caller, i, known in callers:
        if not known or caller.facts.cls is None:
            return False
        cctx = analysis.ctx(caller)
        if not any(
            _refused_before(analysis, cctx, i, flag, falsy, suspends)
            for flag, falsy in flags.items()
        ):
            return False
    return True


def _refused_before(
    analysis: Analysis,
    ctx: Ctx,
    call: int,
    flag: str,
    falsy: bool,
    suspends: Callable[[Ctx, int, Event], bool],
) -> bool:
    """Does the caller, on every path to its call at event ``call``, first call a method of
    its own object that refuses (raises or returns) when ``flag`` has the value written
    (falsy or not), with nothing suspending from that refusal to the call?"""
    f = ctx.fn.facts
    for j, ev in enumerate(f.events[:call]):
        if ev.kind != K.CALL or not analysis.same_object_call(ctx, ev):
            continue
        if _reaches_avoiding(f, 0, call, {j}):
            continue  # a path to the call that does not pass the refusing call
        own = j + 1 if j + 1 < len(f.events) and f.events[j + 1].kind == K.AWAIT else j

        def between(k: int, e: Event, own: int = own) -> bool:
            return k != own and suspends(ctx, k, e)

        if not _quiet_path(f, own, call, between):
            continue
        for _t, tctx in analysis.targets(ctx, ev):
            if _refuses(tctx, flag, falsy, suspends):
                return True
    return False


def _refuses(ctx: Ctx, flag: str, falsy: bool, suspends: Callable[[Ctx, int, Event], bool]) -> bool:
    """Does the method test ``flag`` and, when it has that value, raise or return before it
    suspends, and otherwise finish without suspending (its test and its return are one step
    for the loop)?"""
    f = ctx.fn.facts
    for ev in f.events:
        if ev.kind != K.BRANCH or len(ev.succ) != 2:
            continue
        for atom, absent, kind in _guard_atoms(ev):
            if atom != flag or kind not in ("truthy", "none"):
                continue
            refused = ev.succ[absent if falsy else 1 - absent]
            passed = ev.succ[1 - absent if falsy else absent]
            turns = any(
                e.kind in (K.RAISE, K.RETURN)
                for _j, e in before_await(f, refused, lambda j, e: suspends(ctx, j, e))
            )
            if turns and _quiet_path(f, passed, 1, lambda j, e: suspends(ctx, j, e)):
                return True
    return False


def _quiet_path(
    f: FunctionFacts, start: int, target: int, suspends: Callable[[int, Event], bool]
) -> bool:
    """Does nothing suspend on any path from ``start`` to ``target`` (``target`` itself not
    counted): no suspending event reached from ``start`` leads on to ``target``?"""
    waits = [j for j in reachable(f, [start]) | {start} if j != target and suspends(j, f.events[j])]
    return target not in reachable(f, waits)


def _heals(
    analysis: Analysis,
    fn: Fn,
    ref: str,
    b: int,
    reg: int,
    is_await: Callable[[int, Event], bool],
) -> bool:
    """Does the side of the check at ``b`` that found ``ref`` set either turn back (a
    ``return``/``raise`` of that side alone, before it suspends) or tear the found value down
    (``self._sb = None``, itself or in a method of the object it calls) before it goes on to
    the registration at ``reg``? A found entry checked for health, returned when alive and
    replaced when dead (superbrowser's ``get_browser``, set 108): the check still turns a
    second task back only once the first has stored its value. Not a found value that is
    kept and used again on the way (a TTL cache refilled, a value found falsy)."""
    f = fn.facts
    if not ref.startswith("self.") or ref.count(".") != 1:
        return False
    guard = f.events[b]
    atoms = [a for a in _guard_atoms(guard) if a[0] == ref]
    if not atoms or atoms[0][2] not in ("none", "truthy"):
        return False
    absent = atoms[0][1]
    present, other = guard.succ[1 - absent], guard.succ[absent]
    both = reachable(f, [other], avoid={b}) | {other}
    if not any(
        ev.kind in (K.RETURN, K.RAISE) and not ev.in_except and j not in both
        for j, ev in before_await(f, present, lambda j, e: j in (b, reg) or is_await(j, e))
    ):
        return False
    clearing = {j for j, e in enumerate(f.events) if e.ref == ref and _clears(e)}
    clearing |= _writing_calls(analysis, fn, ref, clear_only=True)
    return not _reaches_avoiding(f, present, reg, {b, *clearing})


def _reaches_avoiding(f: FunctionFacts, start: int, target: int, avoid: set[int]) -> bool:
    if start in avoid:
        return False
    return start == target or target in reachable(f, [start], avoid=avoid)


def _leading_to(f: FunctionFacts, target: int) -> set[int]:
    """The events from which ``target`` can be reached (``target`` itself included)."""
    preds: dict[int, list[int]] = {}
    for j, e in enumerate(f.events):
        for n in e.succ:
            preds.setdefault(n, []).append(j)
    out = {target}
    todo = [target]
    while todo:
        for p in preds.get(todo.pop(), ()):
            if p not in out:
                out.add(p)
                todo.append(p)
    return out


def _reaches(f: FunctionFacts, start: int, target: int, avoid: int) -> bool:
    seen = {avoid}
    todo = [start]
    while todo:
        i = todo.pop()
        if i == target:
            return True
        if i in seen:
            continue
        seen.add(i)
        todo.extend(f.events[i].succ)
    return False


class GuardBeforeRegistration:
    code = "ARC003"

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        likely = analysis.settings.strictness == "likely"
        for fn in module_functions(analysis, module):
            f = fn.facts
            if not f.is_async or f.name in analysis.setup_dunders:
                continue
            ctx = analysis.ctx(fn)
            # what each call of the function registers through its callees, asked by every
            # guard of the function (a function of hundreds of guards and calls asked it again
            # for each: timbal's runnable, set 108)
            callees: dict[int, list[tuple[Fn, list[Registration]]]] = {}
            for b, ev in enumerate(f.events):
                if ev.kind != K.BRANCH or not ev.guards or len(ev.succ) < 2:
                    continue
                if ev.name == "lookup":
                    continue  # a re-check through a local looked up from the table, not a
                    # check of its own (a memo's lookup is reported where it tests the table)
                for atom, absent, kind in _guard_atoms(ev):
                    ref = _through_getter(analysis, fn, atom)
                    if not ref or self._sentinel_elsewhere(f, ev, absent, ref):
                        continue
                    if _registered_under_turn_away_lock(f, ref):
                        continue
                    # the shape first (local to the function), then the evidence that two
                    # tasks run it at once (a search of the project), only for a shape
                    hazard = self._check_guard(analysis, ctx, fn, b, ref, absent, kind, callees)
                    if hazard is None:
                        continue
                    if _claimed_by_a_flag_refused_on_entry(analysis, fn, b, absent, ref):
                        continue
                    evidence = self._evidence(analysis, fn, f, ref, kind)
                    evidence = _flag_skips_check(analysis, fn, b, evidence)
                    if kind == "in":
                        evidence = _per_request_key(fn, ev, ref, evidence)
                    if evidence.answer is not True and (
                        not likely
                        or evidence.answer is False
                        or (
                            kind != "in"
                            and f.name in analysis.lifecycle
                            and not evidence.steps  # (weak evidence is still evidence)
                        )
                    ):
                        continue  # likely: no evidence either way, and no object set-up
                    msg, steps = hazard
                    yield make(
                        self.code,
                        fn.module.path,
                        ev.pos,
                        msg + evidence_clause(evidence),
                        [*steps, *evidence.steps],
                        FIX,
                    )
                    break

    @staticmethod
    def _evidence(analysis: Analysis, fn: Fn, f: FunctionFacts, ref: str, kind: str) -> Verdict:
        """May two tasks run this check at once on the same state? The concurrency model's
        answer for the function (state of one object: on one receiver; module state: at
        all), plus two shapes of the function itself: a hand-rolled wait for the attribute to
        clear, and an object made per call and owned by it."""
        module_state = ref.startswith(("global:", "cls."))
        verdict = analysis.concurrent(fn, ANY if module_state else OBJECT)
        verdict = on_state(analysis, fn, verdict, ref, binding=kind in ("none", "truthy"))
        if verdict.answer is True and not module_state and kind in ("none", "truthy"):
            verdict = _set_before_spawn(analysis, fn, verdict, ref)
        if verdict.answer is None and module_state:
            verdict = analysis.api_entry(fn) or verdict
        if (
            verdict.answer is None
            and not module_state
            and kind in ("none", "truthy")
            and _waits_for(f, ref, _writing_calls(analysis, fn, ref))
        ):
            step = def_step(
                fn,
                f"`{short(fn)}` waits in a loop for `{ref}` to clear: several tasks use it",
            )
            verdict = Verdict(True, (step,), "waits")
        if verdict.answer is not True and not module_state and _owned_by_caller(analysis, fn):
            return Verdict(False, (), "an object made per call and owned by it")
        return verdict

    def _check_guard(
        self,
        analysis: Analysis,
        ctx: Ctx,
        fn: Fn,
        b: int,
        ref: str,
        absent: int,
        kind: str,
        callees: dict[int, list[tuple[Fn, list[Registration]]]],
    ) -> tuple[str, list[Step]] | None:
        """The hazard's message (without the evidence) and steps, if the guard has one.
        ``callees``: the callees of each call of the function on the same object, that do not
        claim the work first, with their registrations near enough to count (kept across the
        function's guards)."""
        f = fn.facts
        guard = f.events[b]
        sources = _local_sources(f)
        direct = _key_names(f, guard, ref, {}) if kind == "in" else frozenset()
        key = _key_names(f, guard, ref, sources, b) if kind == "in" else frozenset()
        callee_regs: dict[int, tuple[tuple[Step, ...], bool]] = {}

        literal = _guard_literal(guard, ref, kind) if kind in ("eq", "ne") else ""
        if literal and _records_outcome(f, ref):
            return None  # a state machine recording what the await returned: no claim

        known: dict[int, bool] = {}
        handed: list[bool] = []  # ``_handed_over``, asked once (when a callee needs it)

        def registers(i: int, ev: Event) -> bool:
            found = known.get(i)
            if found is None:
                found = known[i] = registers_here(i, ev)
            return found

        def registers_here(i: int, ev: Event) -> bool:
            if kind in ("eq", "ne"):
                # a value guard is answered by storing that value (``eq``), or by leaving it
                # (``ne``: any other value)
                if ev.kind != K.WRITE or ev.ref != ref or ev.in_except or ev.value is None:
                    return False
                same = ev.value.kind in ("const", "attr") and ev.value.literal == literal
                return same if kind == "eq" else not same
            reg = registration_of(ev)
            if reg == ref and self._matches(ev, kind):
                return not _registers_another_key(f, ev, key, sources, i)
            if (
                ev.kind == K.CALL
                and not ev.in_except  # what a failure path does marks an outcome
                and i not in callee_regs
                and analysis.same_object_call(ctx, ev)
            ):
                found = callees.get(i)
                if found is None:
                    found = callees[i] = [
                        (
                            tfn,
                            [  # (a partner claimed with it is as near: ``_claimed_with``)
                                c
                                for c in analysis.registrations(Ctx(tfn, tctx.recv))
                                if len(c.steps) <= MAX_CALLEE_STEPS
                            ],
                        )
                        for tfn, tctx in analysis.targets(ctx, ev)
                        # (one that claims the work itself before it suspends: none)
                        if not _claims_first(tfn.facts)
                    ]
                for tfn, cregs in found:
                    blind: bool | None = None  # asked only of a registration of ``ref``
                    for creg in cregs:
                        if (
                            creg.attr != ref
                            or creg.is_write != (kind != "in")
                            or ref in creg.guarded
                        ):
                            continue
                        if not creg.bulk:
                            if blind is None:
                                if not handed:
                                    handed.append(bool(direct) and _handed_over(f, direct, sources))
                                blind = _cannot_get_key(f, ev, tfn, key, direct, sources, handed[0])
                            if blind:
                                continue
                        if not _claimed_with(creg, cregs):
                            spawned = ev.bind.name == "ARG" and tfn.facts.is_async
                            label = "spawns" if spawned else "calls"
                            call = fn_step(fn, at(ev), f"{label} `{short(tfn)}`")
                            callee_regs[i] = ((call, *creg.steps), creg.late)
                            return True
            return i in callee_regs

        def locked_together(ev: Event) -> bool:
            shared = set(guard.regions) & set(ev.regions)
            return any(analysis.region_lock(ctx, r) is not None for r in shared)

        def stop(i: int, ev: Event) -> bool:
            if ev.kind == K.BRANCH and any(
                a[0] == ref or _property_reads(analysis, fn, a[0], ref) for a in _guard_atoms(ev)
            ):
                return True  # re-checked (also through a property that reads it): the check
                # that matters is the later one
            return registers(i, ev)

        def hit(i: int, ev: Event, aw: int) -> bool:
            if not registers(i, ev):
                return False
            late = aw >= 0 or (i in callee_regs and callee_regs[i][1])
            return late and not locked_together(ev)

        absent_start = guard.succ[absent]
        present_start = guard.succ[1 - absent]
        if kind == "in" and _consumes(f, present_start, ref):
            return None  # ``if k in self._pending: self._pending.pop(k)``: routing, not a guard

        def is_await(j: int, ev: Event) -> bool:
            return ev.kind == K.AWAIT and analysis.suspending(ctx, j)

        def takes_lock(j: int) -> bool:
            ev = f.events[j]
            return (
                ev.name in ("async with", "async with exit")
                and analysis.locks.lock_of(ctx, ev.ref) is not None
            )

        def hands_off(ev: Event) -> bool:
            # a helper of the project that runs the callable it is given on a thread
            return any(_hands_to_thread(t.facts) for t, _c in analysis.targets(ctx, ev))

        def lends(ev: Event) -> bool:
            # a coroutine of the project that hands out what it keeps (``await pool()``), or
            # builds a plain value (``await build_sitemap_xml(url)``, annotated ``-> str``)
            targets = analysis.targets(ctx, ev)
            return bool(targets) and all(
                _returns_kept_state(t.facts) or _builds_a_value(t.facts) for t, _c in targets
            )

        for i, aw in search(f, [absent_start], stop=stop, hit=hit, is_await=is_await):
            if (
                _reaches(f, present_start, i, avoid=b)
                and (aw < 0 or _reaches(f, present_start, aw, avoid=b))
                and not _heals(analysis, fn, ref, b, i, is_await)
            ):
                # registration and await are reached whatever the check said: it guards neither
                continue
            if aw >= 0 and _renewed_when_found(
                f,
                b,
                present_start,
                ref,
                is_await,
                registers,
                _writing_calls(analysis, fn, ref, True),
            ):
                continue  # the side that finds it set stores it anew after an await of its
                # own: the check decides when the work runs, not whether (a throttle's stamp)
            if _joins_in_flight(f, aw, ref, direct):
                continue  # the second task awaits the first one's task: the work runs once
            if _claimed_inside(f, absent_start, i, ref, is_await):
                continue  # a second task finds the inner flag set and keeps off the work
            if (
                i not in callee_regs
                and _memo_of_a_read(f, b, i, fn.module.functions, takes_lock, hands_off, lends)
            ) or (i in callee_regs and _read_that_stores(f, b, i, hands_off)):
                continue  # two tasks fetch the same data and store equal values: a wasted
                # round trip, not a second run of work that must happen once
            here = fn.module.path
            steps: list[Step] = []
            if aw >= 0:
                aw_ev = f.events[aw]
                steps.append(
                    fn_step(fn, aw_ev.pos, f"{aw_ev.name}: another task can pass the check here")
                )
            if i in callee_regs:
                steps.extend(callee_regs[i][0])
            else:
                steps.append(fn_step(fn, f.events[i].pos, "registered only here"))
            reg_where = line_of(steps[-1], here)
            what = {"in": "the key", "eq": "that value", "ne": "another value"}.get(
                kind, "the value"
            )
            msg = (
                f"`{ref.removeprefix('global:')}` is checked here but {what} is registered only at "
                f"{reg_where}, after an await; a second task can pass the check in between and "
                "run the same work twice"
            )
            return msg, steps
        return None

    @staticmethod
    def _sentinel_elsewhere(f: FunctionFacts, guard: Event, absent: int, ref: str) -> bool:
        """``if self._initialized: return`` / ``if self._initializing: raise`` /
        ``self._initializing = True`` / ``await ...``: a second flag, checked and set before
        the first await, is the sentinel for the whole section. So is a flag the function
        waits on before it checks (``while self._loading: await asyncio.sleep(0.1)``, then
        ``if self._loaded: return``, then ``self._loading = True``): a hand-rolled mutex that
        a second task waits out before it looks."""
        checked: set[str] = {a[0] for a in _guard_atoms(guard) if a[0] != ref}
        for _i, ev in before_await(f, guard.succ[absent]):
            if ev.kind == K.BRANCH:
                checked.update(a[0] for a in _guard_atoms(ev) if a[0] != ref)
            reg = registration_of(ev)
            if reg is not None and reg != ref and (reg in checked or _waits_for(f, reg)):
                return True
        return False

    @staticmethod
    def _matches(ev: Event, kind: str) -> bool:
        """Membership checks are answered by putting a key in; ``is None``/truthiness checks by
        assigning the attribute."""
        if kind == "in":
            return ev.kind in (K.SETITEM, K.CALL)
        return ev.kind == K.WRITE


def _joins_in_flight(f: FunctionFacts, aw: int, ref: str, key: frozenset[str]) -> bool:
    """Single flight: the await after the check is of a task or future that the function
    looked up in another registry of the object under the guard's key and, when there was none,
    made and registered there before any await (``task = self._inflight.get(k)``; ``if task
    is None: task = create_task(...); self._inflight[k] = task``; ``await task``). A second task
    that passes the check while the first is suspended finds that task and awaits it: the work
    runs once, and both store its one result."""
    if aw < 0 or len(key) != 1:
        return False
    local = f.events[aw].ref
    if f.events[aw].name != "await" or not local.isidentifier():
        return False
    (name,) = key
    for s, e in enumerate(f.events[:aw]):
        if (
            e.kind != K.SETITEM
            or e.ref == ref
            or not e.ref.startswith("self.")
            or e.args != (name,)
            or e.value is None
            or e.value.kind != "name"
            or e.value.ref != local
        ):
            continue
        looked_up = [
            g
            for g, x in enumerate(f.events[:s])
            if x.kind == K.LOCAL
            and x.ref == local
            and x.value is not None
            and x.value.kind == "call"
            and x.value.ref == e.ref + ".get"
        ]
        if looked_up and not any(
            x.kind == K.AWAIT for x in f.events[looked_up[-1] : s]
        ):  # (looked up, made and registered with no await in between)
            return True
    return False


# the first word of a call that makes, takes or consumes something (run twice, it does it twice:
# two pools, two logins, two rotated tokens, two lines read off a stream). Any other call
# whose result a memo stores is taken for a read (``get_queue_url``, Red's
# ``config.ignored()``, Slack's ``auth_test()``): fetching twice gives the same answer twice.
# Calls that may do either (``cursor.execute(sql)``, ``client.request(method, url)``,
# ``rpc.call(name)``) store what they answered: a memo of them is taken for a read.
MAKING_VERBS = frozenset(
    {"create", "open", "connect", "reconnect", "start", "launch", "spawn", "new", "make"}
    | {"build", "acquire", "allocate", "reserve", "register", "subscribe", "login", "signin"}
    | {"authenticate", "authorize", "refresh", "rotate", "issue", "claim", "lease", "checkout"}
    | {"post", "put", "insert", "add", "append", "submit", "enqueue", "send", "write", "upload"}
    | {"install", "init", "initialize", "setup", "load", "generate", "run"}
    | {"consume", "pop", "take", "next", "anext", "recv"}
    | {"receive", "read", "readline", "readexactly", "readuntil", "wait", "accept", "bind"}
    | {"lock", "begin", "fork", "clone", "copy", "download", "pull", "fetchone", "fetchmany"}
    | {"ask", "prompt", "input", "confirm"}  # a question put to a user, answered once each
)
# what a call hands out to be held and given back, not data (``get_connection``,
# ``conn.channel()``, ``session()``): two calls take two
_HELD = frozenset(
    {"connection", "conn", "session", "client", "lock", "channel", "socket", "stream", "cursor"}
    | {"transaction", "lease", "browser", "page", "handle", "file", "pool", "semaphore"}
    | {"process", "subprocess", "task", "thread", "worker", "context", "tab", "window"}
)
# container methods that store into it or take out of it (a read of the container that only
# leads to one of these is no reader of what it holds)
_STORES = frozenset(
    {"append", "add", "update", "setdefault", "insert", "extend", "put", "put_nowait", "pop"}
    | {"remove", "discard", "clear", "popitem", "appendleft"}
)
# the await that hands a callable to a thread: the call that runs is its first argument
_THREAD_HANDOFFS = frozenset(
    {"to_thread", "run_in_executor", "run_sync", "run_in_thread", "run_in_threadpool"}
    | {"async_add_executor_job"}
)


def _hands_to_thread(f: FunctionFacts) -> bool:
    """Is ``f`` a coroutine that runs its first parameter, a callable, on a thread: hands it
    to ``run_in_executor``/``to_thread`` (:data:`_THREAD_HANDOFFS`), itself or wrapped in
    ``functools.partial`` (``async def run_async(func, *args, **kwargs): return await
    loop.run_in_executor(executor, partial(func, *args, **kwargs))``)?"""
    if not f.is_async:
        return False
    params = [p.name for p in f.params if p.kind == "pos" and p.name not in ("self", "cls")]
    if not params:
        return False
    func = params[0]
    events = f.events
    for e in events:
        if e.kind != K.CALL or e.ref.rpartition(".")[2] not in _THREAD_HANDOFFS:
            continue
        if func in e.args or any(
            x.kind == K.CALL
            and x.ref.rpartition(".")[2] == "partial"
            and x.args[:1] == (func,)
            and inside(x.pos, e.pos)
            for x in events
        ):
            return True
    return False


def _never(_ev: Event) -> bool:
    return False


# the first words of a function that builds a value out of what it is given or reads, and of
# the plain values such a function may be annotated to return: what it makes is data, the same
# each time, not a resource (a client, a session) that two calls would make two of
_VALUE_BUILDERS = frozenset({"build", "render", "compute", "format"})
_PLAIN_VALUES = frozenset({"str", "bytes", "int", "float", "bool"})


def _builds_a_value(f: FunctionFacts) -> bool:
    """Is ``f`` a builder of a plain value: its name starts with a word of
    :data:`_VALUE_BUILDERS` (``build_sitemap_xml``, ``render_page``) and it is annotated to
    return a string, bytes or a number (:data:`_PLAIN_VALUES`)? Called twice, it builds the
    same text twice: a memo of it is a memo of a read."""
    words = [w for w in f.name.lower().split("_") if w]
    while len(words) > 1 and words[0] in ("async", "aio", "do"):
        words = words[1:]
    return bool(words) and words[0] in _VALUE_BUILDERS and f.returns_annotation in _PLAIN_VALUES


def _returns_kept_state(f: FunctionFacts) -> bool:
    """Does ``f`` hand out only what its object or module keeps: every ``return`` gives back
    an attribute of ``self``/``cls`` or a module variable (``async def pool(): global _POOL;
    if _POOL is None: _POOL = await create_pool(...); return _POOL``)? Called twice, it hands
    out the same object twice; a first call that makes it is the getter's own business (its
    own check is judged where it is)."""
    refs = f.returns_refs
    return bool(refs) and all(
        r.startswith(("global:", "self.", "cls."))
        and r.count(".") <= 1
        and not any(c in r for c in "()[]")
        for r in refs
    )


# the verbs of :data:`MAKING_VERBS` that take something off what they are called on (a row, a
# line, an item) and make nothing: run on an object the call made for itself (a cursor it
# opened, a response it was sent), they use up only that call's own object
_TAKING_VERBS = frozenset(
    {"consume", "pop", "take", "next", "anext", "recv", "receive", "read", "readline"}
    | {"readexactly", "readuntil", "fetchone", "fetchmany", "wait"}
)
# the calls that start a process of the operating system (``create_subprocess_exec``)
_PROCESS_STARTERS = frozenset({"create_subprocess_exec", "create_subprocess_shell"})


def _one_shot_commands(f: FunctionFacts, own: frozenset[str], upto: int) -> frozenset[str]:
    """The calls (by ref) that start a process the function runs to its end before ``upto``
    (``proc = await asyncio.create_subprocess_exec("claude", "--version", ...)``, then ``await
    proc.communicate()`` or ``await proc.wait()``), kept in no state, wherever the function
    makes them: a command run for what it answers (a version, ``which mmdc``). Run twice, it
    answers twice the same; nothing made is left behind (a process kept in an attribute, a
    server started, is made and kept)."""
    events = f.events
    verdict: dict[str, bool] = {}
    for j, e in enumerate(events):
        if e.kind != K.LOCAL or e.value is None:
            continue
        if e.value.ref.rpartition(".")[2] not in _PROCESS_STARTERS:
            continue
        name = e.ref
        ended = name in own and any(
            c.kind == K.CALL and c.ref in (f"{name}.communicate", f"{name}.wait")
            for c in events[j + 1 : max(upto, j + 1)]
        )
        kept = any(
            x.kind in (K.WRITE, K.SETITEM)
            and x.ref.startswith(("self.", "cls.", "global:"))
            and x.value is not None
            and name in x.value.names
            for x in events
        )
        verdict[e.value.ref] = verdict.get(e.value.ref, True) and ended and not kept
    return frozenset(k for k, ok in verdict.items() if ok)


def _own_locals(f: FunctionFacts) -> frozenset[str]:
    """The locals that only ever hold an object a call of the function made for itself: the
    response of an awaited request (``resp = await session.get(url)``, ``async with
    session.get(url) as resp``), or what a collaborator hands out to be held (``cursor =
    conn.cursor()``, :data:`_HELD`; not a method of the object's own, ``self._get_stream()``,
    which may hand out what the object keeps)."""
    events = f.events
    made: dict[str, bool] = {}
    for j, e in enumerate(events):
        if e.kind != K.LOCAL:
            continue
        v = e.value
        ok = v is not None and v.kind == "call" and bool(v.ref)
        if ok and v is not None:
            prev = events[j - 1] if j > 0 else None
            awaited = (
                prev is not None and prev.kind == K.AWAIT and prev.ref in (v.ref, v.ref + "()")
            )
            recv, _, last = v.ref.rpartition(".")
            held = (
                bool(recv)
                and recv != "self"
                and bool(_HELD.intersection(w for w in last.lower().split("_") if w))
            )
            ok = awaited or held
        made[e.ref] = made.get(e.ref, True) and ok
    return frozenset(k for k, v in made.items() if v)


# the calls that end the life of what they are called on
_TEARDOWNS = frozenset(
    {"close", "aclose", "disconnect", "shutdown", "terminate", "kill", "stop", "release"}
)


def _disposed_locals(f: FunctionFacts) -> frozenset[str]:
    """The locals that only ever hold an object a call of the function made (``t =
    create_transport(instance)``), that the function tears down itself (``await t.close()``,
    :data:`_TEARDOWNS`, in a ``finally`` or after its use) and keeps in no state: the object is
    the call's own from its making to its end. What is done on it (``await t.connect()``,
    ``await t.run("uname -m")``) is done on that object only: two tasks each make, use and
    close their own, and nothing made is left behind."""
    events = f.events
    made: dict[str, bool] = {}
    for e in events:
        if e.kind == K.LOCAL:
            v = e.value
            ok = v is not None and v.kind == "call" and bool(v.ref)
            made[e.ref] = made.get(e.ref, True) and ok
    closed = {
        e.ref.rpartition(".")[0]
        for e in events
        if e.kind == K.CALL and e.ref.rpartition(".")[2] in _TEARDOWNS
    }
    kept = {
        n
        for e in events
        if e.kind in (K.WRITE, K.SETITEM)
        and e.ref.startswith(("self.", "cls.", "global:"))
        and e.value is not None
        for n in e.value.names
    }
    return frozenset(n for n, ok in made.items() if ok and n in closed and n not in kept)


@dataclass(frozen=True)
class _Own:
    """What a function makes for itself and the project lends it, for :func:`_reads_only`:
    the locals holding objects it made (:func:`_own_locals`), the process starts run to their
    end (:func:`_one_shot_commands`), the locals it makes and tears down
    (:func:`_disposed_locals`), and the project's coroutines that hand out what they keep or
    build a plain value (``lends``)."""

    own: frozenset[str] = frozenset()
    oneshot: frozenset[str] = frozenset()
    disposed: frozenset[str] = frozenset()
    lends: Callable[[Event], bool] = _never


_NOTHING_OWN = _Own()


def _reads_only(
    ev: Event,
    held_ok: bool = False,
    hands_off: Callable[[Event], bool] = _never,
    mine: _Own = _NOTHING_OWN,
) -> bool:
    """Is the awaited call taken for a read: no word of its name makes, takes or consumes
    something (:data:`MAKING_VERBS`, also with an ``a`` prefix: ``acreate``), names something
    held (:data:`_HELD`), and it is no ``get`` off a queue (``self._queue.get()`` takes an
    item)? A thread hand-off is judged by the callable it runs, also through a helper of the
    project that hands its first argument to one (``hands_off``: ``run_async(BeautifulSoup,
    html)`` is judged by ``BeautifulSoup``). A call that takes a row or a line off an object
    the function made for itself (``mine.own``, :func:`_own_locals`: ``await cursor.fetchone()``
    on ``cursor = conn.cursor()``) uses up nothing shared: it is taken for a read."""
    ref = ev.ref
    recv, _, last = ref.rpartition(".")
    if ev.kind == K.CALL and recv in mine.own and last.lower() in _TAKING_VERBS:
        return True
    if ev.kind == K.CALL and last in _PROCESS_STARTERS and ref in mine.oneshot:
        return True  # a command run to its end for its answer (:func:`_one_shot_commands`)
    if ev.kind == K.CALL and mine.lends(ev):
        return True  # a getter of what the project keeps (:func:`_returns_kept_state`)
    if ev.kind == K.CALL and recv in mine.disposed:
        return True  # on an object the call made and tears down (:func:`_disposed_locals`)
    if ev.kind == K.CALL and (last in _THREAD_HANDOFFS or hands_off(ev)):
        args = [a for a in ev.args if "=" not in a and a not in ("None", "const")]
        recv, _, last = (args[0] if args else "").rpartition(".")
        if not last:
            return False
    words = [w for w in last.lower().split("_") if w]
    if not words:
        return False
    if (not held_ok and _HELD.intersection(words)) or "queue" in recv.rpartition(".")[2].lower():
        return False
    # (``_async_refresh_access_token``, ``do_login``: the verb comes after the prefix)
    while len(words) > 1 and words[0] in ("async", "aio", "do"):
        words = words[1:]
    verb = words[0]
    return verb not in MAKING_VERBS and not (verb[:1] == "a" and verb[1:] in MAKING_VERBS)


def _reads_by_name(e: Event, refs: set[str]) -> bool:
    """Is ``e`` a read of an attribute of ``self`` by a name only known when it runs
    (``getattr(self, sha_attr)``, in a method of the same class), which may be any of ``refs``
    (``self.<attr>``)?"""
    return (
        e.kind == K.CALL
        and e.ref == "getattr"
        and len(e.args) >= 2
        and e.args[0] == "self"
        and e.args[1] != "const"
        and any(r.startswith("self.") and r.count(".") == 1 for r in refs)
    )


def _memo_of_a_read(
    f: FunctionFacts,
    b: int,
    i: int,
    module_functions: Mapping[str, FunctionFacts],
    takes_lock: Callable[[int], bool] = lambda _j: False,
    hands_off: Callable[[Event], bool] = _never,
    lends: Callable[[Event], bool] = _never,
) -> bool:
    """Is the registration at ``i`` a memo of what a read returned: the value stored is the
    result of the awaited call (``self._url = await self._client.get_queue_url(name)``, or
    through locals: ``resp = await client.get(u); data = resp.json(); _cache[k] = data``), every
    await from the check to it is a call taken for a read (:func:`_reads_only`), and nothing
    else of the object's or module's state is written in between? Two tasks that pass the
    check then fetch the same data and store equal values: a wasted round trip. (A guard on a
    timestamp or a flag, ``self._loaded_at = now()``, stores no fetched value and is still a
    claim; so is a memo of a call that makes, takes or consumes something: ``self._session =
    await self._open()``, ``self._hello = await reader.readline()``.)

    The registration may also be a flag set once the memo is stored (``if self._ready:
    return``; ``self._creds = await asyncio.to_thread(self._get_default)``; ``self._ready =
    True``): the memo is then read back anywhere in the module (by the methods the lazy set-up
    serves). Taking or letting go of a lock on the way (``async with self._cache_lock:``
    around the check or the store, ``takes_lock``) makes nothing: it is no await of a call."""
    w = f.events[i]
    if w.kind not in (K.WRITE, K.SETITEM) or w.value is None:
        return False
    flag = w.kind == K.WRITE and w.value.kind == "const"
    own = _own_locals(f)
    mine = _Own(own, _one_shot_commands(f, own, i), _disposed_locals(f), lends)
    memos: set[str] = set()  # (a flag's) the state that holds the fetched values
    fetched: set[str] = set()  # the awaited calls' refs, and the locals made from them
    calls: dict[str, Event] = {}
    on_way: set[int] | None = None  # (:func:`_leading_to`, asked when needed)
    for j in range(b + 1, i):
        ev = f.events[j]
        if ev.kind == K.CALL:
            calls[ev.ref] = ev
            if ev.bind == Bind.LOCAL and ev.name:
                calls[ev.name] = ev  # ``fut = run_in_thread(...)``: what the local holds
            if (
                ev.ref.startswith("self.")
                and ev.ref.count(".") == 1
                and ev.bind not in (Bind.AWAITED, Bind.RETURNED)
                and not _reads_only(ev)
                and not _receiver_only(f, j, i, ev)
                and j in (on_way := on_way if on_way is not None else _leading_to(f, i))
            ):
                return False  # the object hands out something it holds to what is awaited
                # (``MultiPartParser(self.headers, self.stream())``: the body, read once; not
                # on a way out that never stores: an ``except`` that has the object kill the
                # process and returns)
        elif ev.kind == K.AWAIT:
            if takes_lock(j):
                continue
            if not _awaits_a_read(calls, ev, hands_off, mine):
                return False
            fetched.add(ev.ref)
        elif ev.kind in (K.WRITE, K.SETITEM, K.DELITEM) and ev.ref.startswith(
            ("self.", "cls.", "global:")
        ):
            fetched_value = (
                ev.kind in (K.WRITE, K.SETITEM)
                and ev.value is not None
                and bool(fetched)
                and _from(ev.value, fetched)
            )
            if not flag and ev.kind == w.kind and ev.ref == w.ref:
                continue  # the same memo stored by another branch (``if isinstance(sha,
                # str): self._sha = sha.encode() else: self._sha = sha``; ``if override :=
                # os.environ.get(...): _max = int(override) else: _max = int(await ...)``)
            if not (flag and fetched_value):
                return False
            memos.add(ev.ref)
        elif ev.kind == K.LOCAL and ev.value is not None and _from(ev.value, fetched):
            fetched.add(ev.ref)
        elif (
            ev.kind == K.SETITEM
            and ev.ref.isidentifier()
            and ev.value is not None
            and _from(ev.value, fetched)
        ):
            # a local record filled with what was fetched (``data["persona"] = await
            # get_persona(...)``): it holds the fetched values
            fetched.add(ev.ref)
    if flag:
        return bool(memos) and any(
            (e.kind == K.READ and e.ref in memos) or (g.cls == f.cls and _reads_by_name(e, memos))
            for g in module_functions.values()
            for e in g.events
        )
    if not (fetched and (_from(w.value, fetched) or _stores_the_await(f, i))):
        return False
    # a memo is there to be read back (``return self._cache[k]``); a check that only turns a
    # second caller away (``if user in self._active: raise``) claims the key, whatever it stores.
    # A memo held in an attribute (``self.index_id = await self._latest_index()``) may be read
    # back by the methods it serves
    events = f.events
    if w.kind == K.WRITE and any(
        (e.kind == K.READ and e.ref == w.ref and g is not f)
        or (g.cls == f.cls and _reads_by_name(e, {w.ref}))
        for g in module_functions.values()
        for e in g.events
    ):
        return True
    return any(
        e.kind == K.READ
        and e.ref == w.ref
        and not (
            j + 1 < len(events)
            and (
                (events[j + 1].kind in (K.SETITEM, K.DELITEM) and events[j + 1].ref == w.ref)
                or (
                    events[j + 1].kind == K.CALL
                    and events[j + 1].ref.rpartition(".")[0] == w.ref
                    and events[j + 1].ref.rpartition(".")[2] in _STORES
                )
            )
        )  # (the container read to store into it)
        for j, e in enumerate(events[b + 1 :], b + 1)
    )


def _stores_the_await(f: FunctionFacts, i: int) -> bool:
    """Is the value written at ``i`` made of the await right before it, in the same statement
    (``self._info = (await self.client.request("INFO"))["info"]``: the await comes last before
    the write and starts on the target's line or after it, inside the assigned expression)?"""
    w = f.events[i]
    prev = f.events[i - 1] if i > 0 else None
    return (
        prev is not None
        and prev.kind == K.AWAIT
        and prev.pos[0] >= w.pos[0]
        and w.value is not None
        and w.value.kind == "other"
    )


def _receiver_only(f: FunctionFacts, j: int, i: int, ev: Event) -> bool:
    """Is what the object's call ``ev`` (event ``j``) hands out kept in a local that, up to the
    registration at ``i``, is only the receiver of calls, never handed to one (``client =
    self._get_client()``, then ``await client.show(model)``)? The object lends the read its
    client; what the read returns is still what is fetched, and nothing held is used up."""
    name = ev.name
    if ev.bind != Bind.LOCAL or not name:
        return False
    dotted = name + "."
    for e in f.events[j + 1 : i]:
        if e.kind == K.CALL and any(
            (a.partition("=")[2] if is_kw(a) else a) in (name, "*" + name)
            or (a.partition("=")[2] if is_kw(a) else a).startswith(dotted)
            for a in e.args
        ):
            return False
        if e.kind in (K.WRITE, K.SETITEM) and e.value is not None and name in e.value.names:
            return False  # kept beyond the call
    return True


def _awaits_a_read(
    calls: dict[str, Event],
    ev: Event,
    hands_off: Callable[[Event], bool] = _never,
    mine: _Own = _NOTHING_OWN,
) -> bool:
    """Is the await ``ev`` one of a call (among ``calls``, the calls made so far, by ref) taken
    for a read (:func:`_reads_only`)? ``async with httpx.AsyncClient() as client``: the await
    names the call made; what ``async with`` holds it gives back at the block's end, so only
    what its call does counts (``session.post(...)``), not what it hands out."""
    call = calls.get(ev.ref) or calls.get(ev.ref.removesuffix("()"))
    scoped = ev.name in ("async with", "async with exit")
    if call is not None and call.ref.rpartition(".")[2] in AWAIT_WRAPPERS:
        # ``await asyncio.wait_for(fut, 5)``: what it waits for is what counts (a call made
        # in the argument, or one a local holds)
        first = next((a for a in call.args if "=" not in a), "")
        call = calls.get(first.removesuffix("()"))
    return call is not None and _reads_only(call, held_ok=scoped, hands_off=hands_off, mine=mine)


def _read_that_stores(
    f: FunctionFacts, b: int, i: int, hands_off: Callable[[Event], bool] = _never
) -> bool:
    """Is the registration made inside an awaited call taken for a read (``if self._url is
    None: await self.get_state("GetNetPort")``, whose response handler stores the URL it
    reads), with every await from the check to it a read too? Two tasks that pass the check
    send the same read and store equal values, as with a memo the function stores itself."""
    call = f.events[i]
    if call.kind != K.CALL or call.bind != Bind.AWAITED or not _reads_only(call, False, hands_off):
        return False
    calls: dict[str, Event] = {}
    for j in range(b + 1, i):
        ev = f.events[j]
        if ev.kind == K.CALL:
            calls[ev.ref] = ev
        elif (ev.kind == K.AWAIT and not _awaits_a_read(calls, ev, hands_off)) or (
            ev.kind in (K.WRITE, K.SETITEM, K.DELITEM)
            and ev.ref.startswith(("self.", "cls.", "global:"))
        ):
            return False  # an await that may make something, or state written on the way
    return True


def _from(v: Value, fetched: set[str]) -> bool:
    """Is the value the fetched result, or made from it (``resp.json()``, ``data["url"]``)? A
    loop variable is an element of what it iterates (``for m in await list_models():``)."""
    if v.kind == "const":
        return False
    return (
        v.ref in fetched
        or v.ref.partition(".")[0] in fetched
        or bool(fetched.intersection(v.names))
    )


def _registered_under_turn_away_lock(f: FunctionFacts, ref: str) -> bool:
    """``if self._done or self._lock.locked(): return`` then ``async with self._lock:`` around
    the work and the registration: a second task that arrives while the first holds the lock
    turns away, and taking a free lock does not suspend, so nobody passes the check in
    between (the lock is the in-flight flag)."""
    turned = {
        e.ref[: -len(".locked")] for e in f.events if e.kind == K.CALL and e.ref.endswith(".locked")
    }
    if not turned:
        return False
    writes = [e for e in f.events if e.kind in (K.WRITE, K.SETITEM) and e.ref == ref]
    return bool(writes) and all(any(f.regions[r].ref in turned for r in e.regions) for e in writes)
