"""ARC002 context-token-crosses-handler (openarmature PR 22).

``opentelemetry.context.attach()`` and ``ContextVar.set()`` return a token that must be released
(``detach``/``reset``) in the same context, in LIFO order. These shapes break that:

* the token is stored where another call can reach it (an attribute, a dict, a tuple or record
  kept in a container) and released in a different function: interleaved handlers release each
  other's tokens out of order, or in a context the token was not created in;
* the token is captured by a closure or a nested generator that escapes the function (a
  callback handed out, a generator returned) and released there;
* a plain generator or async generator sets the token before a ``yield`` and resets it after,
  or holds a context-attaching ``with`` (``tracer.start_as_current_span``, a project context
  manager that sets a token) across a ``yield``: the generator may be resumed or finalized from
  another task (the async-generator finalizer runs ``aclose()`` in a new task), where the reset
  raises "was created in a different Context";
* a ``@contextmanager``/``@asynccontextmanager`` generator sets, yields and resets, and its exit
  can run in another task: it (or a manager that enters it around its own yield) is entered
  into an ``ExitStack``/``AsyncExitStack`` whose ``close``/``aclose`` is handed out. With the
  ``context-managers-closed-elsewhere`` setting every public such manager is reported.

``@contextmanager``/``@asynccontextmanager`` generators used in a ``with`` block are the idiom,
not the hazard: a ``with`` block enters and exits in one task and one context. So are
class-based context managers that keep the token from ``__enter__`` to ``__exit__``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from asyncrace.analysis.concurrency import teardown_name
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import (
    Bind,
    Event,
    FunctionFacts,
    K,
    ModuleFacts,
    Pos,
    Region,
    inside,
    reachable,
)
from asyncrace.analysis.index import (
    MISS,
    ClassObj,
    Ctx,
    Fn,
    Memo,
    first_seg,
    is_kw,
    last_seg,
    split_ref,
)
from asyncrace.analysis.summaries import (
    RELEASES_KEY,
    Step,
    at,
    fits_call,
    fn_step,
    search,
    short,
)
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import folded, line_of, make, module_functions

FIX_STORED = (
    "Attach and detach (set and reset) within one handler, in `try`/`finally`; to carry a parent "
    "across handlers, keep the span or value itself in your own map and pass it explicitly "
    "(e.g. `start_span(..., context=set_span_in_context(parent))`), never the token."
)
FIX_GENERATOR = (
    "Decorate the generator with @contextmanager/@asynccontextmanager so the token is set and "
    "reset within one `with` block, or set and reset the variable around each piece of work "
    "instead of across the `yield`."
)
FIX_HELD = (
    "Do not hold the context across the `yield`: start the span with `tracer.start_span(...)` "
    "and attach its context only around each step of the inner work (`attach` before "
    "`await anext(...)`, `detach` right after), or end the `with` block before yielding."
)
FIX_CLOSURE = (
    "Release the token in the function that created it (`try`/`finally`); let the callback or "
    "generator set and reset its own value when it runs, instead of releasing a token it "
    "captured."
)
FIX_CM = (
    "Restore the previous value with `var.set(previous)` instead of `var.reset(token)` (a set "
    "works in any context), or keep the manager's enter and exit in one `async with` block of "
    "one task instead of handing its exit to whoever closes the stack or the stream."
)

_CM_DECORATORS = {"contextmanager", "asynccontextmanager"}
_ENTER = {"__enter__", "__aenter__"}
_PUSH = {"append", "add", "appendleft", "insert", "put", "put_nowait", "setdefault"}
_EXIT = {"__exit__", "__aexit__"}
# OpenTelemetry calls whose ``with`` block attaches a context (the detach runs at its exit)
_OTEL_ATTACHING = {"start_as_current_span", "use_span"}
_STACK_ENTER = {"enter_context", "enter_async_context"}
_STACK_CLOSE = ("aclose", "close", "pop_all()")
# managers entering managers around their yield, followed this deep at most
_MAX_CM_DEPTH = 24


@dataclass(frozen=True)
class _Release:
    fn: Fn
    ev: Event
    arg: str  # the released expression, locals replaced by what they were assigned
    via: tuple[Step, ...] = ()  # a helper that releases its parameter: the release inside it
    # the released expression with its local head replaced too (``open_span.token`` ->
    # ``self._open_spans.pop.token``): where the record holding the token came from
    origin: str = ""


@dataclass(frozen=True)
class _Slot:
    """Where a token goes beyond its function."""

    name: str  # an attribute name, a container ref, or a record field
    step: Step  # the store
    on_self: bool  # kept on ``self``
    dest: str  # the container or attribute the record holding it goes to, if known


@dataclass(frozen=True)
class _Helper:
    """A function that releases one of its parameters (``def _safe_detach(token)``)."""

    fn: Fn
    param: str
    index: int  # its position among the positional parameters a caller passes
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class _TokenCM:
    """A ``@contextmanager``/``@asynccontextmanager`` generator that holds a context token across
    its ``yield``: the token's creation (in it or, through a ``with`` around its yield, in a
    manager it enters) and the steps that show it."""

    root: Fn  # the function whose event creates the token
    create: Event  # the ``set``/``attach`` call, or the attaching ``with`` item's position
    steps: tuple[Step, ...]  # set/attach, yield, release (innermost manager first)
    what: str  # "`var.set()`", "`context.attach()`", "`tracer.start_as_current_span()`"
    # a parameter of the manager the token is made only when true (``if defer: var.set()``):
    # a caller that leaves it at a false default enters a manager that holds no token
    gate: str = ""


@dataclass
class _Exits:
    """Project-wide: which token-holding managers are exited where another task may run it."""

    by_root: dict[tuple[str, int], tuple[_TokenCM, tuple[Step, ...]]] = field(default_factory=dict)


def _kw_value(a: str) -> str:
    return a.partition("=")[2] if is_kw(a) else a


def _contextvar(analysis: Analysis, ctx: Ctx, receiver: str) -> bool:
    return analysis.is_contextvar(ctx, receiver)


def _token_type(fq: str) -> bool:
    return fq == "contextvars.Token" or (
        fq.rsplit(".", 1)[-1] == "Token" and "context" in fq.rsplit(".", 1)[0].lower()
    )


def _token_slot(analysis: Analysis, fn: Fn, ref: str) -> bool:
    """``self._token`` declared as a token (``self._token: Optional[Token] = None``)."""
    cls = analysis.index.method_fn(fn)
    if cls is None or not ref.startswith("self.") or ref.count(".") != 1:
        return False
    return _token_type(analysis.index.attr_type(cls, ref[5:]))


def token_kind(analysis: Analysis, ctx: Ctx, ev: Event) -> str | None:
    if ev.kind != K.CALL or not ev.ref.endswith(("attach", "set")):
        return None
    segs = split_ref(ev.ref)
    if segs[-1] == "attach":
        fq = analysis.index.resolve(ctx.fn.module, ev.ref) if "(" not in ev.ref else ""
        if fq.endswith("opentelemetry.context.attach") or fq == "opentelemetry.context.attach":
            return "attach"
    if segs[-1] == "set" and len(segs) >= 2 and len(ev.args) == 1 and not is_kw(ev.args[0]):
        if _contextvar(analysis, ctx, ".".join(segs[:-1])):
            return "set"
        # a receiver asyncrace cannot type, whose result goes to a slot declared as a Token
        if ev.bind == Bind.ATTR and _token_slot(analysis, ctx.fn, ev.name):
            return "set"
        if ev.bind == Bind.LOCAL and ev.name:
            for e in ctx.fn.facts.events:
                if (
                    e.kind == K.WRITE
                    and e.value is not None
                    and e.value.kind == "name"
                    and e.value.ref == ev.name
                    and _token_slot(analysis, ctx.fn, e.ref)
                ):
                    return "set"
    return None


def _token_maker(analysis: Analysis, ctx: Ctx, call: Event) -> tuple[str, Step] | None:
    """The kind of token a call's only project target returns, and the step that shows it: a
    plain function that returns its own ``var.set(...)``/``context.attach(...)``
    (``def bind_session(p): return _current.set(p)``), directly or through a local."""
    targets = analysis.targets(ctx, call)
    if len(targets) != 1:
        return None
    t, tctx = targets[0]
    f = t.facts
    if f.is_generator or f.is_async or not f.returns_refs:
        return None
    for e in f.events:
        if e.kind != K.CALL or not e.ref.endswith(("attach", "set")):
            continue
        if not (e.bind == Bind.RETURNED or (e.bind == Bind.LOCAL and e.name in f.returns_refs)):
            continue
        kind = token_kind(analysis, tctx, e)
        if kind is not None:
            what = _describe(kind)
            return kind, fn_step(t, at(e), f"`{short(t)}` returns the token of {what}")
    return None


def release_arg(analysis: Analysis, ctx: Ctx, ev: Event) -> str | None:
    if ev.kind != K.CALL or not ev.ref.endswith(("detach", "reset")):
        return None
    positional = [a for a in ev.args if not is_kw(a)]
    if len(positional) != 1:
        return None
    segs = split_ref(ev.ref)
    if segs[-1] == "detach":
        fq = analysis.index.resolve(ctx.fn.module, ev.ref) if "(" not in ev.ref else ""
        if fq.endswith("opentelemetry.context.detach"):
            return positional[0]
    if segs[-1] == "reset" and len(segs) >= 2:
        arg = positional[0]
        if _contextvar(analysis, ctx, ".".join(segs[:-1])) or "tok" in arg.lower():
            return arg
    return None


def _local_value(fn: Fn, name: str) -> str:
    for e in fn.facts.events:
        if (
            e.kind == K.LOCAL
            and e.ref == name
            and e.value is not None
            and e.value.ref
            and e.value.kind != "iter"
        ):
            return e.value.ref
    return name


def _resolve_arg(fn: Fn, arg: str) -> str:
    """The released expression with a local head replaced by what it was assigned:
    ``token`` -> ``open_span.token``, ``entry[]`` -> ``self._spans.pop[]``."""
    if "." not in arg and "(" not in arg:
        head = arg.split("[", 1)[0]
        value = _local_value(fn, head)
        if value != head:
            return value + arg[len(head) :]
    return arg


def _locals_of(fn: Fn) -> set[str]:
    return {e.ref for e in fn.facts.events if e.kind == K.LOCAL}


def _positional_params(fn: Fn) -> list[str]:
    params = [p for p in fn.facts.params if p.kind == "pos"]
    decos = {d.rstrip("()").rsplit(".", 1)[-1] for d in fn.facts.decorators}
    if fn.facts.cls and fn.facts.parent is None and "staticmethod" not in decos and params:
        params = params[1:]
    return [p.name for p in params]


# the generator methods of an ``httpx.Auth``: httpx makes the flow, steps it and closes it
# (``aclose()`` in its ``finally``) within the one ``send`` that uses it
_AUTH_FLOWS = frozenset({"auth_flow", "sync_auth_flow", "async_auth_flow"})


def _auth_flow(analysis: Analysis, fn: Fn) -> bool:
    """Is ``fn`` an authentication flow of an HTTP client's ``Auth`` class: a generator method
    named as httpx's hooks (``async_auth_flow``), of a class derived from another (``Auth``,
    or a library's provider built on it)? httpx drives it in the task that sends the request,
    from its first step to its close, whatever ends the exchange: what it sets before a
    ``yield`` it resets in that same task and context."""
    f = fn.facts
    if f.name not in _AUTH_FLOWS or f.parent is not None:
        return False
    cls_fq = analysis.index.method_fn(fn)
    cls = analysis.index.classes.get(cls_fq) if cls_fq else None
    return cls is not None and bool(cls.facts.bases)


def _is_cm(fn: Fn) -> bool:
    return any(d.rstrip("()").rsplit(".", 1)[-1] in _CM_DECORATORS for d in fn.facts.decorators)


def _private_module(name: str) -> bool:
    return any(part.startswith("_") for part in name.split("."))


def _public(analysis: Analysis, fn: Fn) -> bool:
    """Part of the project's API: neither the function nor its class is named with a leading
    underscore, and it lives in a public module or is imported into one (a package
    ``__init__`` re-exporting it from a private module)."""
    f = fn.facts
    if f.parent is not None or f.name.startswith("_"):
        return False
    if f.cls and (f.cls.startswith("_") or "._" in f.cls or "<locals>" in f.cls):
        return False
    if not _private_module(fn.module.module):
        return True
    symbol = f"{fn.module.module}.{f.cls.split('.', 1)[0] if f.cls else f.name}"
    return any(
        not _private_module(m.module) and symbol in m.imports.values()
        for m in analysis.index.modules.values()
    )


def _describe(kind: str) -> str:
    return "`context.attach()`" if kind == "attach" else "`ContextVar.set()`"


class ContextTokenCrossesHandler:
    code = "ARC002"

    def __init__(self) -> None:
        self._releases: list[_Release] | None = None
        self._release_reads: set[str] | None = None
        self._helpers: dict[str, _Helper] = {}
        self._cms: Memo[str, _TokenCM | None] | None = None
        self._cm_depth = 0
        self._cm_cut = False
        self._exits: _Exits | None = None
        self._exit_reads: set[str] | None = None

    # -- the releases of the project ---------------------------------------------------------
    def _all_releases(self, analysis: Analysis) -> list[_Release]:
        """Every release of a token in the project (in the modules whose bodies mention
        ``reset``/``detach``), and every call of a helper that releases its parameter, computed
        once; each use notes the modules it read."""
        tracker = analysis.tracker
        if self._releases is None:
            out: list[_Release] = []
            tracker.begin()
            tracker.note(RELEASES_KEY)
            helpers: dict[str, _Helper] = {}
            for mod in analysis.mentions().releases:
                m = analysis.index.modules.get(mod)
                if m is None:
                    continue
                for q in sorted(m.functions):
                    fn = analysis.index.functions.get(f"{m.module}.{q}")
                    if fn is None or fn.module is not m:
                        continue
                    if "reset" not in _refs_text(fn) and "detach" not in _refs_text(fn):
                        continue
                    ctx = analysis.ctx(fn)
                    for ev in fn.facts.events:
                        arg = release_arg(analysis, ctx, ev)
                        if arg is None:
                            continue
                        self._note_release(fn, ev, arg, (), out, helpers)
            # calls of the helpers (two levels: a helper may call another)
            todo = list(helpers.values())
            for _level in range(2):
                found: dict[str, _Helper] = {}
                for h in todo:
                    for caller, i in analysis.calls_by_name(h.fn.facts.name):
                        ev = caller.facts.events[i]
                        arg = self._helper_arg(analysis, caller, ev, h)
                        if arg is None:
                            continue
                        via = (fn_step(caller, at(ev), f"`{short(h.fn)}` releases it"), *h.steps)
                        self._note_release(caller, ev, arg, via, out, found)
                for fq, h in found.items():
                    if fq not in helpers:
                        helpers[fq] = h
                todo = [h for h in found.values() if h.fn.fq not in {t.fn.fq for t in todo}]
            self._helpers = helpers
            out.sort(key=lambda r: r.fn.fq)  # stable: a function's own order is kept
            self._releases = out
            self._release_reads = tracker.end()
        else:
            tracker.replay(self._release_reads)
        return self._releases

    @staticmethod
    def _note_release(
        fn: Fn,
        ev: Event,
        arg: str,
        via: tuple[Step, ...],
        out: list[_Release],
        helpers: dict[str, _Helper],
    ) -> None:
        resolved = _resolve_arg(fn, arg)
        head, dot, rest = resolved.partition(".")
        origin = resolved
        if dot and "(" not in head and "[" not in head:
            value = _local_value(fn, head)
            if value != head:
                origin = f"{value}.{rest}"
        if "." not in resolved and "(" not in resolved and "[" not in resolved:
            params = _positional_params(fn)
            if resolved in params:  # ``def _reset(token): var.reset(token)``: a helper
                step = fn_step(fn, at(ev), f"released here, in `{short(fn)}`")
                helpers.setdefault(
                    fn.fq,
                    _Helper(fn, resolved, params.index(resolved), (*via, step) if via else (step,)),
                )
                return
            if fn.facts.parent is not None and resolved not in _locals_of(fn):
                out.append(_Release(fn, ev, resolved, via, resolved))  # a closure variable
            return
        out.append(_Release(fn, ev, resolved, via, origin))

    @staticmethod
    def _helper_arg(analysis: Analysis, caller: Fn, ev: Event, h: _Helper) -> str | None:
        if ev.kind != K.CALL or ev.ref.rpartition(".")[2] != h.fn.facts.name:
            return None
        ctx = analysis.ctx(caller)
        if not any(t.fq == h.fn.fq for t, _c in analysis.targets(ctx, ev)):
            return None
        positional = [a for a in ev.args if not is_kw(a)]
        for a in ev.args:
            if is_kw(a) and a.partition("=")[0] == h.param:
                return a.partition("=")[2]
        if h.index < len(positional) and not positional[h.index].startswith("*"):
            return positional[h.index]
        return None

    def _releases_here(self, analysis: Analysis, ctx: Ctx, e: Event, name: str) -> bool:
        """Does call ``e`` release the local ``name``, itself or through a helper?"""
        if e.kind != K.CALL:
            return False
        if release_arg(analysis, ctx, e) == name:
            return True
        self._all_releases(analysis)  # the helpers (and the reads that found them)
        last = e.ref.rpartition(".")[2]
        for h in self._helpers.values():
            if h.fn.facts.name == last and self._helper_arg(analysis, ctx.fn, e, h) == name:
                return True
        return False

    # -- the rule --------------------------------------------------------------------------
    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        if self._cms is None:
            self._cms = Memo(analysis.tracker)
        across: list[tuple[Event, Diagnostic]] = []  # tokens a plain generator holds
        for fn in module_functions(analysis, module):
            ctx: Ctx | None = None
            cm_done = False
            for i, ev in enumerate(fn.facts.events):
                if ev.kind != K.CALL:
                    continue
                if not ev.ref.endswith(("attach", "set")):
                    # (token_kind's own first test, without a call per event); in a generator,
                    # a helper that returns the token (``token = bind_session(...)``)
                    if fn.facts.is_generator and ev.bind == Bind.LOCAL and ev.name:
                        if ctx is None:
                            ctx = analysis.ctx(fn)
                        made = _token_maker(analysis, ctx, ev)
                        g = made and self._generator(analysis, ctx, fn, i, ev, *made)
                        if g:
                            across.append((ev, g))
                    continue
                if ctx is None:
                    ctx = analysis.ctx(fn)
                kind = token_kind(analysis, ctx, ev)
                if kind is None:
                    continue
                if fn.facts.is_generator and _is_cm(fn):
                    cm = self._token_cm(analysis, fn)
                    if cm is not None and cm.root.fq == fn.fq and cm.create is ev:
                        cm_done = True
                        d = self._context_manager(analysis, fn)
                        if d is not None:
                            yield d
                        continue
                g = self._generator(analysis, ctx, fn, i, ev, kind)
                if g is not None:
                    across.append((ev, g))
                    continue
                d = self._stored(analysis, ctx, fn, i, ev, kind) or self._closure(
                    analysis, ctx, fn, i, ev, kind
                )
                if d is not None:
                    yield d
            if across:
                yield _one_per_generator(fn, across)
                across = []
            if fn.facts.is_generator and fn.facts.regions:
                if _is_cm(fn):
                    if not cm_done:
                        d = self._context_manager(analysis, fn)
                        if d is not None:
                            yield d
                else:
                    yield from self._held_across_yield(analysis, fn)

    # -- shape 1: stored, released elsewhere -------------------------------------------------
    def _stored(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, i: int, ev: Event, kind: str
    ) -> Diagnostic | None:
        slot = self._slot(analysis, ctx, fn, i, ev)
        if slot is None:
            return None
        slot_name, store = slot.name, slot.step
        candidates = [
            rel
            for rel in self._all_releases(analysis)
            if any(c in rel.arg for c in ".([")  # (a bare name: a closure's variable)
            and self._matches(rel.arg, slot_name)
            # in this function, only on a path the creation never reaches: another call of it
            # (``if phase == "started": ... elif phase == "completed": ...``)
            and (rel.fn.fq != fn.fq or not _reaches(fn, i, rel.ev))
            and not _another_objects(analysis, fn, rel.fn, rel.arg)
        ]
        # the same class first, then the same module, then modules related by an import or a
        # package; a release in unrelated code that happens to use the same slot name is not
        # this token's
        # and among those, a release of a record taken from where this one was put
        relation = {id(r): _relation(fn, r.fn) for r in candidates}
        ranked = sorted(
            (r for r in candidates if relation[id(r)] < 3),
            key=lambda r: (
                relation[id(r)] if r.fn.fq != fn.fq else -1,
                not (slot.dest and r.origin.startswith(slot.dest + ".")),
                r.fn.fq,
                r.ev.pos,
            ),
        )
        for rel in ranked:
            if (
                fn.facts.name in _ENTER
                and rel.fn.facts.name in _EXIT
                and rel.fn.facts.parent is None
                and _same_or_base(analysis, fn, rel.fn)
            ):
                continue  # a class-based context manager (its exit maybe a base's): the idiom
            if fn.facts.name in _EXIT:
                continue
            if rel.fn.facts.parent is not None and _encloses(fn, rel.fn):
                continue  # a closure of this very function: the closure shape decides
            if analysis.overridden(rel.fn, fn) or analysis.overridden(fn, rel.fn):
                continue  # one of the two is a base method the other's class overrides: the
                # two never run on one object
            if _paired_in_one_call(analysis, fn, rel.fn) or _record_released_by_callers(
                analysis, fn, rel.fn
            ):
                continue  # made and released by one activation of one caller: one task
            if _life_pair(fn, rel.fn, analysis) and self._concurrent(analysis, fn) is None:
                continue  # set when the object starts, reset when it stops: once per life
            verb = "detached" if kind == "attach" else "reset"
            same = rel.fn.fq == fn.fq
            where = f"another call of `{short(fn)}`" if same else f"`{short(rel.fn)}`"
            release = fn_step(
                rel.fn,
                rel.ev.pos,
                f"{verb} here, in {where}: another handler"
                if not same
                else f"{verb} here, in {where}",
            )
            steps = [store, release, *rel.via]
            why = (
                "interleaved handlers release tokens out of order (LIFO breaks even in one "
                "task), and a handler running in another task fails to release it "
                '("created in a different Context")'
            )
            conc = self._concurrent(analysis, fn) if slot.on_self else None
            likely = ""
            if conc is not None:
                steps.extend(conc)
                why = (
                    f"`{short(fn)}` may run for overlapping calls on one shared object, so one "
                    "call overwrites another's token, which is then released twice or in the "
                    "wrong context"
                )
            elif not same:
                # set in one method and released in another: a hazard where the two run for
                # separate events (a dispatcher hands each event to one of them), not where
                # every caller pairs them (``bind()`` ... ``unbind()``, ``start``/``end``)
                gates = (_gate(fn.facts, i), _gate(fn.facts, i, truth=False))
                apart = _handled_apart(analysis, fn, rel.fn, gates)
                if apart is not None:
                    steps.append(apart)
                elif analysis.settings.strictness == "likely":
                    likely = (
                        " (likely: nothing shows the two handlers run for separate events or "
                        "overlapping calls rather than in pairs)"
                    )
                else:
                    continue
            msg = (
                f"the token from {_describe(kind)} is stored beyond `{short(fn)}` and {verb} in "
                f"{where} ({line_of(release, fn.module.path)}); {why}{likely}"
            )
            return make(self.code, fn.module.path, at(ev), msg, steps, FIX_STORED)
        return None

    def _concurrent(self, analysis: Analysis, fn: Fn) -> tuple[Step, ...] | None:
        """Why calls of ``fn`` on one object may overlap: the concurrency model's evidence (a
        spawn, a framework callback, an entry point such as an ASGI ``__call__``, reaching
        ``fn`` on ``self``), or one instance of its class decorating such a function."""
        verdict = analysis.concurrent(fn)
        if verdict.answer:
            return verdict.steps
        cls = analysis.index.method_fn(fn)
        if cls is None or fn.facts.parent is not None:
            return None
        return self._decorator_instance(analysis, cls)

    @staticmethod
    def _decorator_instance(analysis: Analysis, cls: str) -> tuple[Step, ...] | None:
        """An instance of ``cls`` used as a decorator (``@Scope()``) whose ``__call__`` wraps
        every call in ``with self``/``async with self``: one instance is entered by every call
        of the decorated function, so the model's evidence that the decorated function runs
        concurrently (an ASGI ``__call__``, a spawn, a framework callback) is evidence for it."""
        index = analysis.index
        call = index.find_method(cls, "__call__")
        if call is None or index.method_fn(call) != cls:
            return None
        wrappers = [index.functions.get(f"{call.module.module}.{q}") for q in call.facts.nested]
        if not any(
            w is not None and any(r.ref == "self" for r in w.facts.regions) for w in wrappers
        ):
            return None
        home = index.classes[cls].module
        short_cls = cls.rsplit(".", 1)[-1]
        modules = [home] + [
            m
            for m in sorted(index.modules.values(), key=lambda m: m.module)
            if m is not home and any(v == cls or v == home.module for v in m.imports.values())
        ]
        for m in modules:
            for q in sorted(m.functions):
                if not any(
                    d.endswith("()") and d[:-2].rsplit(".", 1)[-1] == short_cls
                    for d in m.functions[q].decorators
                ):
                    continue
                target = index.functions.get(f"{m.module}.{q}")
                if target is None or target.module is not m:
                    continue
                if not any(index.resolve(m, d[:-2]) == cls for d in target.facts.decorators):
                    continue
                verdict = analysis.concurrent(target)
                if not verdict.answer:
                    continue
                row, col = target.facts.pos[0], target.facts.pos[1]
                head = len(target.facts.name) + (10 if target.facts.is_async else 4)
                deco = fn_step(
                    target,
                    (row, col, row, col + head),
                    f"one `{short_cls}` instance decorates `{short(target)}`: every call of it "
                    "enters that same instance",
                )
                return (*verdict.steps, deco)
        return None

    @staticmethod
    def _matches(arg: str, slot: str) -> bool:
        last = last_seg(arg).rstrip("()[]") if arg else ""
        if slot.startswith(("self.", "global:")) or "." in slot:
            # a module's container is named bare where a function reads it (``_TOKENS.pop``)
            return any(
                arg == container
                or arg.startswith((container + ".", container + "["))
                or (last_seg(container) == last)
                for container in {slot, slot.removeprefix("global:")}
            )
        return last == slot

    def _slot(self, analysis: Analysis, ctx: Ctx, fn: Fn, i: int, ev: Event) -> _Slot | None:
        """Where the token goes beyond the function: an attribute name, a container ref, or a
        record field; with the step that stores it, and whether that is on ``self``."""
        events = fn.facts.events
        params = {p.name for p in fn.facts.params} - {"self", "cls"}

        def on_param(ref: str) -> bool:
            # ``trace_config_ctx.token = attach(...)``: kept on the per-call object the caller
            # handed in (aiohttp's trace context, OpenTelemetry's own instrumentation idiom)
            return bool(ref) and first_seg(ref) in params

        def stored(e: Event, where: str) -> _Slot:
            into = e.kind == K.CALL and e.bind in (Bind.ATTR, Bind.ITEM)
            holder = e.name if into else e.ref
            on_self = first_seg(holder) == "self"
            label = "the token is stored here" + (" on `self`" if on_self else "")
            return _Slot(where, fn_step(fn, at(e), label), on_self, e.name if into else "")

        if ev.bind in (Bind.ATTR, Bind.ITEM) and on_param(ev.name):
            return None
        if ev.bind == Bind.ATTR and ev.name:
            return stored(ev, last_seg(ev.name))
        if ev.bind == Bind.ITEM and ev.name:
            return stored(ev, ev.name)
        if ev.bind == Bind.ARG:
            token_arg = ev.ref + "()"
            for e in events[i + 1 :]:
                if e.kind == K.CALL and any(
                    a.endswith("=" + token_arg) or a == token_arg for a in e.args
                ):
                    if release_arg(analysis, ctx, e) is not None:
                        return None
                    segs = split_ref(e.ref)
                    if len(segs) >= 2 and segs[-1] in _PUSH:
                        return stored(e, ".".join(segs[:-1]))
                    slot = self._arg_slot(analysis, ctx, e, token_arg)
                    if slot:
                        return stored(e, slot)
            return None
        if ev.bind != Bind.LOCAL or not ev.name:
            return None
        name = ev.name
        start = next(
            (
                j + 1
                for j in range(i + 1, len(events))
                if events[j].kind == K.LOCAL and events[j].ref == name
            ),
            len(events),
        )
        for e in events[start:]:
            if e.kind == K.LOCAL and e.ref == name:
                break  # rebound
            v = e.value
            if (
                e.kind in (K.WRITE, K.SETITEM)
                and on_param(e.ref)
                and v is not None
                and (v.ref == name or (v.kind == "other" and name in v.names))
            ):
                return None
            if (
                e.kind == K.WRITE
                and v is not None
                and (
                    (v.kind == "name" and v.ref == name) or (v.kind == "other" and name in v.names)
                )
            ):
                # ``self._token = token``, ``self._pending = (span, token)``
                return stored(e, last_seg(e.ref)) if e.ref else None
            if (
                e.kind == K.SETITEM
                and v is not None
                and (v.ref == name or (v.kind == "other" and name in v.names))
            ):
                # ``self._open[key] = token``, ``self._open[key] = (span, token)``
                return stored(e, e.ref)
            if e.kind != K.CALL:
                continue
            direct = any(a == name or a.endswith("=" + name) for a in e.args)
            packed = e.value is not None and name in e.value.names
            if not (direct or packed):
                continue
            if direct and self._releases_here(analysis, ctx, e, name):
                return None  # released right here: paired in one scope
            segs = split_ref(e.ref)
            if len(segs) >= 2 and segs[-1] in _PUSH:
                if on_param(".".join(segs[:-1])):
                    return None
                return stored(e, ".".join(segs[:-1]))
            if direct:
                slot = self._arg_slot(analysis, ctx, e, name)
                if slot:
                    return stored(e, slot)
        return None

    @staticmethod
    def _arg_slot(analysis: Analysis, ctx: Ctx, call: Event, token: str) -> str | None:
        """The field of a record the token is given to: a keyword's name, or the field a
        positional argument fills (a dataclass's or NamedTuple's fields in order, or the
        attribute a plain class's ``__init__`` assigns from that parameter)."""
        positional = [a for a in call.args if not is_kw(a)]
        val = analysis.index.eval(ctx, call.ref)
        cls = val.fq if isinstance(val, ClassObj) and val.fq in analysis.index.classes else None
        init = analysis.index.find_method(cls, "__init__") if cls else None
        param = ""
        for a in call.args:
            if is_kw(a) and a.partition("=")[2] == token:
                param = a.partition("=")[0]
        if not param and token in positional and cls is not None:
            idx = positional.index(token)
            if init is not None:
                names = _positional_params(init)
                param = names[idx] if idx < len(names) else ""
            else:
                fields = analysis.index.classes[cls].facts.fields
                param = fields[idx] if idx < len(fields) else ""
        if not param:
            return None
        if init is not None:
            # ``self.ctx_token = token`` in ``__init__``: the attribute is the slot
            for e in init.facts.events:
                if (
                    e.kind == K.WRITE
                    and e.ref.startswith("self.")
                    and e.ref.count(".") == 1
                    and e.value is not None
                    and e.value.kind == "name"
                    and e.value.ref == param
                ):
                    return e.ref[5:]
        return param

    # -- shape 2: across a yield in a generator ---------------------------------------------
    @staticmethod
    def _plain_generator(analysis: Analysis, fn: Fn) -> bool:
        """A generator whose consumer drives it: no decorator (``@contextmanager``,
        ``@gen.coroutine`` drive theirs within one context) except an async pytest fixture
        (set-up and tear-down may run as separate tasks), and not handed to someone
        (``Depends(dep)``) who drives it as a context manager."""
        f = fn.facts
        if not f.is_generator:
            return False
        decos = {d.rstrip("()").rsplit(".", 1)[-1] for d in f.decorators}
        if decos and not (f.is_async and "fixture" in decos):
            return False
        if _auth_flow(analysis, fn):
            return False
        if not f.is_async and _consumed_where_made(analysis, fn):
            return False
        return not analysis.passed_on(fn)

    def _generator(
        self,
        analysis: Analysis,
        ctx: Ctx,
        fn: Fn,
        i: int,
        ev: Event,
        kind: str,
        maker: Step | None = None,
    ) -> Diagnostic | None:
        f = fn.facts
        if not f.is_generator or ev.bind != Bind.LOCAL or not ev.name:
            return None
        if not self._plain_generator(analysis, fn):
            return None
        found = self._across_yield(analysis, ctx, fn, i, ev)
        if found is None:
            return None
        if f.is_async and _closed_where_iterated(analysis, fn):
            return None  # every consumer closes it in the task that steps it (as for a
            # ``with`` held across the yield, :meth:`_held_across_yield`)
        y, j = found
        steps = [
            *([maker] if maker is not None else []),
            fn_step(
                fn,
                f.events[y].pos,
                "the generator suspends here; it may be resumed or closed from another task or "
                "context",
            ),
            fn_step(fn, f.events[j].pos, "the token is released here, after the yield"),
        ]
        gen = "async generator" if f.is_async else "generator"
        msg = (
            f"the token is set before a `yield` and released after it in {gen} "
            f"`{short(fn)}`; if the {gen} is finished from another task or context the "
            "release fails or restores the wrong value"
        )
        return make(self.code, fn.module.path, at(ev), msg, steps, FIX_GENERATOR)

    def _across_yield(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, i: int, ev: Event
    ) -> tuple[int, int] | None:
        """(yield, release) when the token ``ev`` binds to a local is released after a yield."""
        f = fn.facts
        if ev.bind != Bind.LOCAL or not ev.name:
            return None
        name = ev.name
        self._all_releases(analysis)  # the helpers

        def hit(_j: int, e: Event, seen_yield: int) -> bool:
            return seen_yield >= 0 and self._releases_here(analysis, ctx, e, name)

        def stop(_j: int, e: Event) -> bool:
            return e.kind == K.LOCAL and e.ref == name

        def is_yield(_j: int, e: Event) -> bool:
            return e.kind == K.YIELD

        binding = next(
            (
                j
                for j in range(i + 1, len(f.events))
                if f.events[j].kind == K.LOCAL and f.events[j].ref == name
            ),
            None,
        )
        if binding is None:
            return None
        for j, y in search(f, list(f.events[binding].succ), stop=stop, hit=hit, is_await=is_yield):
            return y, j
        return None

    def _attaching_with(
        self, analysis: Analysis, fn: Fn, rid: int
    ) -> tuple[str, tuple[Step, ...], _TokenCM | None] | None:
        """Does the ``with`` item ``rid`` attach a context for its block: OpenTelemetry's
        ``start_as_current_span``/``use_span``, or a project manager that holds a token across
        its yield? (what it is, the steps inside a project manager, that manager)"""
        region = fn.facts.regions[rid]
        ref = region.ref
        if not ref.endswith("()"):
            return None
        callee = ref[:-2]
        last = callee.rpartition(".")[2]
        if "(" in last or "[" in last:
            return None
        if last in _OTEL_ATTACHING:
            if last == "use_span":
                fq = analysis.index.resolve(fn.module, callee)
                if not fq.startswith("opentelemetry.") and "trace" not in callee:
                    return None
            return f"`{last}()`", (), None
        ctx = analysis.ctx(fn)
        for target, _c, _fv in analysis.index.callable_targets(ctx, callee):
            cm = self._token_cm(analysis, target)
            if cm is not None and not (cm.gate and _left_false(fn, region, target, cm.gate)):
                return f"`{short(target)}()`", cm.steps, cm
        return None

    def _held_across_yield(self, analysis: Analysis, fn: Fn) -> Iterator[Diagnostic]:
        """A plain generator holding a context-attaching ``with`` across a ``yield``."""
        f = fn.facts
        if not self._plain_generator(analysis, fn):
            return
        closed_here: bool | None = None
        for rid, region in enumerate(f.regions):
            y = _yield_in(fn, rid)
            if y is None:
                continue
            if closed_here is None:
                closed_here = f.is_async and _closed_where_iterated(analysis, fn)
            if closed_here:
                return
            held = self._attaching_with(analysis, fn, rid)
            if held is None:
                continue
            what, inner, _cm = held
            gen = "async generator" if f.is_async else "generator"
            steps = [
                *inner,
                fn_step(
                    fn,
                    f.events[y].pos,
                    "the generator suspends here with the context attached; whoever resumes or "
                    "closes it runs the exit",
                ),
            ]
            msg = (
                f"{what} attaches a context for its `with` block, which holds a `yield` of "
                f"{gen} `{short(fn)}`: the detach runs wherever the consumer closes the "
                f"{gen} (another task, the async-generator finalizer), where it fails or "
                "restores the wrong context"
            )
            yield make(self.code, fn.module.path, _first_line(region), msg, steps, FIX_HELD)

    # -- shape 3: captured by a closure or nested generator ---------------------------------
    def _closure(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, i: int, ev: Event, kind: str
    ) -> Diagnostic | None:
        if ev.bind != Bind.LOCAL or not ev.name or not fn.facts.nested:
            return None
        name = ev.name
        for rel in self._all_releases(analysis):
            if rel.arg != name or rel.fn.facts.parent is None or not _encloses(fn, rel.fn):
                continue
            nested = _child_of(analysis, fn, rel.fn)
            if nested is None:
                continue
            escape = _escapes(fn, nested)
            if escape is None:
                continue  # only called right here: released within this call
            if (
                not nested.facts.is_generator
                and _escapes(fn, nested, returns=False) is None
                and _called_where_returned(analysis, fn)
            ):
                continue  # returned to callers that each call it before they end
            if _kept_for_exit(analysis, fn, nested):
                continue  # a class-based context manager's cleanup: the idiom
            verb = "detached" if kind == "attach" else "reset"
            what = "generator" if nested.facts.is_generator else "callback"
            named = "a lambda" if nested.facts.is_lambda else f"the {what} `{short(nested)}`"
            steps = [
                fn_step(fn, escape[0], escape[1]),
                fn_step(
                    rel.fn,
                    rel.ev.pos,
                    f"{verb} here, inside "
                    + ("the lambda" if rel.fn.facts.is_lambda else f"`{short(rel.fn)}`"),
                ),
                *rel.via,
            ]
            msg = (
                f"the token from {_describe(kind)} is captured by {named} and {verb} there, but "
                f"the {what} runs later, outside `{short(fn)}` (maybe in another task or "
                "context): the release fails or restores the wrong value"
            )
            return make(self.code, fn.module.path, at(ev), msg, steps, FIX_CLOSURE)
        return None

    # -- shape 4: context managers exited where another task may run them ------------------
    def _token_cm(self, analysis: Analysis, fn: Fn) -> _TokenCM | None:
        """``fn`` is a ``@contextmanager``/``@asynccontextmanager`` generator that holds a
        token across its ``yield``: it sets one before and releases it after, or its ``yield``
        sits in a ``with`` block of a manager that does (transitively) or of OpenTelemetry's
        ``start_as_current_span``."""
        if not fn.facts.is_generator or not _is_cm(fn):
            return None
        assert self._cms is not None
        found = self._cms.get(fn.fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        if self._cm_depth >= _MAX_CM_DEPTH:
            self._cm_cut = True
            return None  # managers entering managers this deep: a pathological chain
        self._cms.start(fn.fq, None)  # recursion guard
        self._cm_depth += 1
        cut, self._cm_cut = self._cm_cut, False
        try:
            found = self._cms.finish(fn.fq, self._compute_token_cm(analysis, fn))
        finally:
            self._cm_depth -= 1
        if self._cm_cut:  # an answer cut short depends on where the walk started: not kept
            self._cms.values.pop(fn.fq, None)
            self._cms.deps.pop(fn.fq, None)
        self._cm_cut = self._cm_cut or cut
        return found

    def _compute_token_cm(self, analysis: Analysis, fn: Fn) -> _TokenCM | None:
        f = fn.facts
        ctx = analysis.ctx(fn)
        for i, ev in enumerate(f.events):
            if ev.kind != K.CALL or not ev.ref.endswith(("attach", "set")):
                continue
            kind = token_kind(analysis, ctx, ev)
            if kind is None:
                continue
            found = self._across_yield(analysis, ctx, fn, i, ev)
            if found is None:
                continue
            y, j = found
            verb = "detached" if kind == "attach" else "reset"
            steps = (
                fn_step(fn, at(ev), f"the token is created here, in `{short(fn)}`"),
                fn_step(fn, f.events[y].pos, "the manager suspends here, holding the token"),
                fn_step(fn, f.events[j].pos, f"{verb} here, when the manager exits"),
            )
            return _TokenCM(fn, ev, steps, _describe(kind), _gate(f, i))
        for rid, region in enumerate(f.regions):
            yr = _yield_in(fn, rid)
            if yr is None:
                continue
            held = self._attaching_with(analysis, fn, rid)
            if held is None:
                continue
            what, _inner, cm = held
            here = fn_step(
                fn, f.events[yr].pos, f"`{short(fn)}` suspends here inside the {what} block"
            )
            if cm is not None:
                enter = fn_step(
                    fn, _first_line(region), f"`{short(fn)}` enters {what} around its yield"
                )
                return _TokenCM(cm.root, cm.create, (*cm.steps, enter, here), cm.what)
            pseudo = Event(K.CALL, _first_line(region))
            attached = fn_step(fn, pseudo.pos, f"{what} attaches a context here")
            return _TokenCM(fn, pseudo, (attached, here), what)
        return None

    def _all_exits(self, analysis: Analysis) -> _Exits:
        """Every token-holding manager entered into an ``ExitStack``/``AsyncExitStack`` whose
        ``close``/``aclose`` is handed out (passed, stored, returned): the stack, and the
        manager's exit with it, is closed wherever that runs."""
        tracker = analysis.tracker
        if self._exits is not None:
            tracker.replay(self._exit_reads)
            return self._exits
        tracker.begin()
        exits = _Exits()
        for name in sorted(_STACK_ENTER):
            for caller, i in analysis.calls_by_name(name):
                ev = caller.facts.events[i]
                segs = split_ref(ev.ref)
                if len(segs) < 2 or segs[-1] != name or len(ev.args) != 1:
                    continue
                stack = ".".join(segs[:-1])
                handout = _stack_handed_out(caller, stack)
                if handout is None:
                    continue
                arg = ev.args[0]
                if "." not in arg and "(" not in arg:
                    arg = _local_value(caller, arg) + "()"
                if not arg.endswith("()") or "(" in arg[:-2]:
                    continue
                ctx = analysis.ctx(caller)
                for target, _c, _fv in analysis.index.callable_targets(ctx, arg[:-2]):
                    cm = self._token_cm(analysis, target)
                    if cm is None:
                        continue
                    steps = (
                        *cm.steps,
                        fn_step(
                            caller,
                            at(ev),
                            f"`{short(target)}()` is entered into the exit stack `{stack}` here",
                        ),
                        fn_step(caller, handout[0], handout[1]),
                    )
                    exits.by_root.setdefault((cm.root.fq, cm.create.pos[0]), (cm, steps))
        self._exits = exits
        self._exit_reads = tracker.end()
        return exits

    def _context_manager(self, analysis: Analysis, fn: Fn) -> Diagnostic | None:
        cm = self._token_cm(analysis, fn)
        if cm is None or cm.root.fq != fn.fq:
            return None  # reported where the token is created
        hit = self._all_exits(analysis).by_root.get((fn.fq, cm.create.pos[0]))
        if hit is not None:
            _cm, steps = hit
            msg = (
                f"the token from {cm.what} is held across the yield of context manager "
                f"`{short(fn)}`, whose exit is handed to an exit stack closed elsewhere: the "
                'release runs in whichever task closes it, where it fails ("created in a '
                'different Context") or restores the wrong value'
            )
            return make(
                self.code, fn.module.path, cm.create.show or cm.create.pos, msg, steps, FIX_CM
            )
        if analysis.settings.context_managers_closed_elsewhere and _public(analysis, fn):
            msg = (
                f"the token from {cm.what} is held across the yield of public context manager "
                f"`{short(fn)}`; closed from another task (an async generator's finalizer, an "
                "exit stack closed elsewhere) the release fails or restores the wrong value "
                "(context-managers-closed-elsewhere)"
            )
            return make(
                self.code,
                fn.module.path,
                cm.create.show or cm.create.pos,
                msg,
                cm.steps[1:],
                FIX_CM,
            )
        return None


# methods that start an object's life (their token is reset where the life ends)
_SETUP = frozenset(
    {"__enter__", "__aenter__", "start", "startup", "open", "connect", "setup", "asetup"}
    | {"setUp", "asyncSetUp", "initialize", "init", "login"}
)


def _one_per_generator(fn: Fn, across: list[tuple[Event, Diagnostic]]) -> Diagnostic:
    """One finding per generator: the tokens it sets before a ``yield`` and releases after it
    share one cause and one fix (set and reset around each piece of work), so the first token
    is reported and every other one is a step of it (a run that sets sixteen variables
    is one finding, not sixteen)."""
    label = "another token is set here, released after the yield"
    others = [(_token_name(ev), fn_step(fn, at(ev), label)) for ev, _d in across[1:]]
    return folded(across[0][1], others, "token of it is", "tokens of it are", "held the same way")


def _token_name(ev: Event) -> str:
    """What a token-making call names: the variable of ``var.set(...)`` (``current_user``), or
    the call itself (``attach()``)."""
    head, _, last = ev.ref.rpartition(".")
    return f"`{head}`" if last == "set" and head else f"`{last}()`"


def _teardown(name: str) -> bool:
    """A tear-down method (``teardown_name``; a test case's ``tearDown`` too), not ``__del__``:
    a finaliser runs wherever the collector does, in no handler of the object's."""
    return name in ("tearDown", "asyncTearDown") or (name != "__del__" and teardown_name(name))


def _in_phase(analysis: Analysis, fn: Fn, test: Callable[[str], bool], depth: int = 0) -> bool:
    """Is ``fn`` a method named for the phase (``test``), or a helper that the project calls
    only from such methods of its own class (``start()`` -> ``self._initialize_app()``,
    ``__exit__`` -> ``self.reset()``)? For the tear-down phase, a set-up method that calls it
    in an ``except`` (``__aenter__``: ``try: await self._start()`` / ``except: await
    self._shutdown(); raise``) calls it as a tear-down: the undoing of a failed start, in
    the starting task."""
    name = fn.facts.name
    if test(name):
        return True
    if depth >= 2 or name.startswith("__"):
        return False
    callers = [
        (c, i, known)
        for c, i, known in analysis.calls_of(fn)
        if known or fits_call(fn.facts, c.facts.events[i].args)
    ]
    return bool(callers) and all(
        known
        and c.facts.cls == fn.facts.cls
        and c.facts.parent is None
        and (
            _in_phase(analysis, c, test, depth + 1)
            or (
                test is _teardown
                and c.facts.events[i].in_except
                and _in_phase(analysis, c, _SETUP.__contains__, depth + 1)
            )
        )
        for c, i, known in callers
    )


def _same_or_base(analysis: Analysis, made: Fn, released: Fn) -> bool:
    """Is ``released`` a method of ``made``'s class or of one of its bases (so it runs on the
    objects ``made`` runs on)?"""
    idx = analysis.index
    a, b = idx.method_fn(made), idx.method_fn(released)
    if a is None or b is None:
        return False
    return a == b or idx.inherits(a, b)


def _life_pair(made: Fn, released: Fn, analysis: Analysis) -> bool:
    """The token is set where the object starts (``start``, ``open``, ``__enter__``, or a
    private helper only they call) and released where it stops (``stop``, ``close``,
    ``__exit__``), in one class: once per object's life, like ``__enter__``/``__exit__``. It
    crosses handlers only if the start can run again before the stop, which is the
    concurrency model's to show."""
    if made.facts.cls is None or made.facts.cls != released.facts.cls:
        return False
    if made.facts.parent is not None or released.facts.parent is not None:
        return False
    return _in_phase(analysis, made, _SETUP.__contains__) and _in_phase(
        analysis, released, _teardown
    )


def _another_objects(analysis: Analysis, made: Fn, released: Fn, arg: str) -> bool:
    """A release of ``self.<x>`` in a method of a class unrelated to the maker's (neither
    inherits from the other): the attribute of another kind of object, not this token's slot.
    (Two mixins that one class combines are taken as unrelated too.)"""
    if not arg.startswith("self.") or released.facts.parent is not None:
        return False
    idx = analysis.index
    if idx.method_fn(made) is None or idx.method_fn(released) is None:
        return False
    return not (_same_or_base(analysis, made, released) or _same_or_base(analysis, released, made))


def _callers_of(analysis: Analysis, fn: Fn) -> list[tuple[Fn, int]]:
    """The calls of ``fn`` in the project; a call of that name whose target is not known
    counts too."""
    return [(c, i) for c, i, _known in analysis.calls_of(fn)]


_DISPATCH_DEPTH = 4  # calls up from a handler to the dispatcher that runs it


def _skips_the_make(call: Event, gates: tuple[str, str]) -> bool:
    """Does ``call`` (of the function that makes the token) pass by keyword the constant that
    keeps the make from running? ``gates``: the parameters whose truth, and whose falsity,
    alone let it run (:func:`_gate`): ``self._open(frame, detached=True)`` where ``_open``
    sets only ``if not detached``."""
    given = {a.partition("=")[0]: a.partition("=")[2] for a in call.args if is_kw(a)}
    on, off = gates
    return bool((on and given.get(on) == "const:False") or (off and given.get(off) == "const:True"))


def _handled_apart(
    analysis: Analysis, made: Fn, released: Fn, gates: tuple[str, str] = ("", "")
) -> Step | None:
    """Do the function that stores the token and the one that releases it run for separate
    calls of one dispatcher (``__call__(event)``: ``if event.phase == "started":
    self._handle_started(event) elif ...: self._handle_completed(event)``)? A function that
    reaches both, through calls on its own object (or of module functions), by different calls,
    where a run of it that makes the token can end without the release: the token outlives the
    run (one per event), and a later run releases it, in the order of the events, which
    overlapping invocations interleave. A caller that releases after it makes on every path
    (``bind()``, ``try: ... finally: unbind()``) pairs them in one run; one that releases only
    in an ``except`` handler, after it made the token in that run (``begin`` that opens, and
    closes on its own failure before it re-raises), undoes its own make, and the token it
    keeps otherwise is for another function to release; and one call that leads to both (a
    context manager that binds, yields and unbinds) shows nothing, nor does a call of the maker
    that passes the flag that keeps it from making one (``gates``: :func:`_skips_the_make`).
    The step names the dispatcher and its two calls."""
    up_made, up_released = _dispatchers(analysis, made), _dispatchers(analysis, released)
    off = {(c.fq, i) for c, i, known in analysis.calls_of(made) if known} if any(gates) else set()
    for fq in up_made:  # the nearest to ``made`` first
        if fq not in up_released:
            continue
        g, make_at = up_made[fq]
        _g, release_at = up_released[fq]
        f = g.facts
        makes = {
            i
            for i in make_at - release_at
            if (g.fq, i) not in off or not _skips_the_make(f.events[i], gates)
        }
        if not makes:
            continue
        if all(f.events[j].in_except for j in release_at):
            free = reachable(f, [0], avoid=makes)
            if not any(j in free for j in release_at):
                continue  # released only on its own failure, after it made it: its own token
        for i in sorted(makes):
            if f.events[i].succ and all(
                f.events[k].succ for k in reachable(f, [i], avoid=release_at)
            ):
                continue  # every run that makes it releases it after, in that run
            j = min(release_at, key=lambda k: f.events[k].pos)
            return fn_step(
                g,
                at(f.events[i]),
                f"`{short(g)}` makes the token through this call (`{f.events[i].ref}`) and "
                f"releases it through `{f.events[j].ref}` (line {f.events[j].pos[0]}), not "
                "both in each run: a token one run (one event) makes, a later run releases, "
                "after other events' handlers ran",
            )
    return None


def _dispatchers(analysis: Analysis, fn: Fn) -> dict[str, tuple[Fn, set[int]]]:
    """The functions that reach ``fn`` through calls of known target (on their own object,
    when ``fn`` is a method), up to :data:`_DISPATCH_DEPTH` calls up: fq -> (function, the
    indices of its calls that lead to ``fn``)."""
    out: dict[str, tuple[Fn, set[int]]] = {}
    frontier = [fn]
    for _depth in range(_DISPATCH_DEPTH):
        nxt: list[Fn] = []
        for callee in frontier:
            for c, i, known in analysis.calls_of(callee):
                if not known or c.fq == fn.fq:
                    continue
                if callee.facts.cls is not None and not c.facts.events[i].ref.startswith("self."):
                    continue  # another object's: not this object's runs
                entry = out.get(c.fq)
                if entry is None:
                    out[c.fq] = (c, {i})
                    nxt.append(c)
                else:
                    entry[1].add(i)
        if not nxt:
            break
        frontier = nxt
    return out


def _paired_in_one_call(analysis: Analysis, made: Fn, released: Fn) -> bool:
    """``_start_tracing`` stores the token on ``self`` and ``_end_tracing`` releases it, and
    both are called only by one caller, on ``self``, the release after the making on every
    path (``self._start_tracing(); try: yield; finally: self._end_tracing()``), in a coroutine
    or a context manager (``async with`` runs its exit in the task that entered it) that does
    not run twice at once on one object: the token is made and released by one activation,
    in one task, in order."""
    if made.facts.cls is None or made.facts.cls != released.facts.cls:
        return False
    makers, releasers = _callers_of(analysis, made), _callers_of(analysis, released)
    callers = {c.fq for c, _i in makers} | {c.fq for c, _i in releasers}
    if len(callers) != 1 or not makers or not releasers:
        return False
    g = makers[0][0]
    f = g.facts
    if f.is_generator and not _is_cm(g):
        return False  # a plain generator's rest may run in another task
    if any(not f.events[i].ref.startswith("self.") for _c, i in makers + releasers):
        return False
    for _c, m in makers:
        after = reachable(f, [m])
        if any(r not in after for _c2, r in releasers):
            return False
    return analysis.concurrent(g).answer is not True


def _record_released_by_callers(analysis: Analysis, made: Fn, released: Fn, depth: int = 0) -> bool:
    """``bound = await bind_request(...)``, then ``bound.reset()``: the token goes into a
    record of ``released``'s class that ``made`` returns, and every caller of ``made`` in the
    project keeps the record in a local it hands nowhere and calls ``released`` on it after
    the call (in its ``finally``): each activation of a caller makes and releases its own
    token, in one task, in order (hindsight's bound LLM request, set 28). ``released`` may
    also be a module function the record is handed to (``binding = bind(ctx)``, ``finally:
    unbind(binding)``), and a plain function that returns the record as it is (``def
    set_context(ctx): return _bind(ctx)``) passes the question on to its own callers."""
    if released.facts.parent is not None:
        return False
    method = released.facts.cls is not None
    if method:
        short_cls = (released.facts.cls or "").rpartition(".")[2]
        if not any(
            r.partition("(")[0].rpartition(".")[2] == short_cls for r in made.facts.returns_refs
        ):
            return False
    makers = _callers_of(analysis, made)
    if not makers:
        return False
    for caller, i in makers:
        f = caller.facts
        ev = f.events[i]
        if ev.bind == Bind.RETURNED and not f.is_async and not f.is_generator:
            # a wrapper that hands the record back as it is: its callers keep it
            if depth >= 2 or not _record_released_by_callers(analysis, caller, released, depth + 1):
                return False
            continue
        if f.is_generator and not _is_cm(caller):
            return False  # a plain generator's rest may run in another task
        local = ev.name if ev.bind == Bind.LOCAL else ""
        if not local and ev.bind == Bind.AWAITED:
            local = next(
                (
                    e.ref
                    for e in f.events[i + 1 : i + 3]
                    if e.kind == K.LOCAL and e.value is not None and e.value.ref == ev.ref
                ),
                "",
            )
        if not local or local in f.returns_refs:
            return False
        if method:
            call_of = f"{local}.{released.facts.name}"
            releases = [j for j, e in enumerate(f.events) if e.kind == K.CALL and e.ref == call_of]
        else:
            ctx = analysis.ctx(caller)
            releases = [
                j
                for j, e in enumerate(f.events)
                if e.kind == K.CALL
                and e.ref.rpartition(".")[2] == released.facts.name
                and [_kw_value(a) for a in e.args] == [local]
                and any(t.fq == released.fq for t, _c in analysis.targets(ctx, e))
            ]
        after = reachable(f, [i])
        if not releases or any(j not in after for j in releases):
            return False
        for j, e in enumerate(f.events):
            if (
                e.kind == K.CALL
                and j not in releases
                and any(_kw_value(a) == local for a in e.args)
            ) or (
                e.kind in (K.WRITE, K.SETITEM, K.LOCAL)
                and e.ref != local
                and e.value is not None
                and e.value.ref == local
            ):
                return False  # handed on, or kept under another name (``bound.llm``, a
                # field of it, is not the record)
    return True


# builtins and container methods that run an iterable to its end before they return
_CONSUMERS = frozenset(
    {"list", "tuple", "set", "frozenset", "dict", "sorted", "sum", "min", "max", "any", "all"}
    | {"join", "extend", "update"}
)
# builtins whose result iterates the iterable it is given, one step per step
_WRAPPERS = frozenset({"zip", "map", "filter", "enumerate", "reversed", "iter", "chain"})


def _consumed_where_made(analysis: Analysis, fn: Fn) -> bool:
    """Is every call of the plain (not async) generator ``fn`` in the project consumed in the
    task that makes it: iterated by a ``for`` there, or handed to ``list()``/``tuple()``/``zip()``
    and the like, directly or through a project function that does that with it
    (``list(merge(headers, tracer.trace_publish(names)))``)? Such a generator is resumed only by
    that task and, if left unfinished, closed when the task drops it: its ``with`` block exits in
    the context it was entered in. A call whose target is not known counts as a call of it, so
    it must be consumed too."""
    found = False
    for caller, i in _callers_of(analysis, fn):
        if not _consumed_at(analysis, caller, i, 0):
            return False
        found = True
    return found


def _consumed_at(analysis: Analysis, caller: Fn, i: int, depth: int) -> bool:
    """Is the iterable made by call event ``i`` of ``caller`` consumed right there? (A value
    that is neither bound, returned nor handed on is iterated in place: the facts do not tell a
    generator expression that is handed on from a list comprehension, a rare way to keep one.)"""
    f = caller.facts
    ev = f.events[i]
    made = ev.ref + "()"
    if ev.bind == Bind.NONE:  # ``for x in gen():``, ``[x for x in gen()]``
        return True
    if ev.bind != Bind.ARG or depth > 2:
        return False
    outer = [
        (j, e)
        for j, e in enumerate(f.events)
        if e.kind == K.CALL and e is not ev and inside(ev.pos, e.pos) and made in _arg_refs(e)
    ]
    if len(outer) != 1:
        return False
    j, call = outer[0]
    name = call.ref.rpartition(".")[2]
    if name in _CONSUMERS:
        return True
    if name in _WRAPPERS:
        return _consumed_at(analysis, caller, j, depth + 1)
    targets = analysis.targets(analysis.ctx(caller), call)
    if not targets:
        return False
    for t, _c in targets:
        if t.facts.is_async or t.facts.is_generator:
            return False
        param = _param_of(t, call, made)
        if not param or not _param_consumed(analysis, t, param, depth + 1):
            return False
    return True


def _arg_refs(call: Event) -> list[str]:
    return [_kw_value(a) for a in call.args]


def _param_of(t: Fn, call: Event, made: str) -> str:
    """The parameter of ``t`` that the argument ``made`` of ``call`` binds."""
    params = [p.name for p in t.facts.params]
    if t.facts.cls is not None and params and params[0] in ("self", "cls"):
        params = params[1:]
    pos = 0
    for a in call.args:
        if is_kw(a):
            kw, _, val = a.partition("=")
            if val == made:
                return kw if kw in params else ""
            continue
        if a == made:
            return params[pos] if pos < len(params) else ""
        pos += 1
    return ""


def _param_consumed(analysis: Analysis, t: Fn, param: str, depth: int) -> bool:
    """Does the plain function ``t`` only consume its parameter ``param`` (iterate it, hand it
    to a consumer or a wrapper that is consumed), never keep or return it?"""
    f = t.facts
    if param in f.returns_refs:
        return False
    used = False
    for j, e in enumerate(f.events):
        if e.value is not None and param in e.value.names:
            if e.kind == K.LOCAL and e.value.kind == "iter" and e.value.ref == param:
                used = True
                continue
            return False
        if e.kind == K.CALL and param in _arg_refs(e):
            name = e.ref.rpartition(".")[2]
            if name in _CONSUMERS:
                used = True
                continue
            if name in _WRAPPERS and _wrapper_consumed(f, j, e):
                used = True
                continue
            return False
    return used


def _wrapper_consumed(f: FunctionFacts, j: int, wrapper: Event) -> bool:
    """Is the wrapper call ``j`` (``zip(a, gen)``) iterated where it is made (by a ``for`` or
    a comprehension: its value is not bound, returned or handed on), or handed straight to a
    consumer?"""
    if wrapper.bind == Bind.NONE:
        return True
    made = wrapper.ref + "()"
    return wrapper.bind == Bind.ARG and any(
        e.kind == K.CALL
        and e is not wrapper
        and inside(wrapper.pos, e.pos)
        and made in _arg_refs(e)
        and e.ref.rpartition(".")[2] in _CONSUMERS
        for e in f.events
    )


def _closed_where_iterated(analysis: Analysis, fn: Fn, asked: frozenset[str] = frozenset()) -> bool:
    """Is every call of the async generator ``fn`` in the project closed, or stepped to its
    end, by the task that iterates it (:func:`_site_closes`)? Then whatever ends the loop, the
    generator's ``with`` blocks exit in the context that entered them. A generator the project
    never calls is not: whoever calls it may drop it half-way. ``asked``: the generators
    whose calls are being checked further down (a wrapper that calls itself through a
    protocol adds no consumer of its own: its other calls decide)."""
    asked = asked | {fn.fq}
    found = False
    for caller, i in analysis.summaries.calls_by_name(fn.facts.name):
        ev = caller.facts.events[i]
        if ev.ref.rpartition(".")[2] != fn.facts.name:
            continue
        ctx = analysis.ctx(caller)
        if not any(t.fq == fn.fq for t, _c in analysis.targets(ctx, ev)):
            continue
        if not _site_closes(analysis, caller, i, asked):
            return False
        found = True
    return found


def _site_closes(analysis: Analysis, caller: Fn, i: int, asked: frozenset[str]) -> bool:
    """Does the call ``i`` of an async generator close it, or step it to its end, in the task
    that iterates it?

    * ``async with aclosing(gen(...)) as it:``: closed at the block's end, whatever ends it;
    * ``it = gen(...)``, iterated by ``async for`` and closed by ``await it.aclose()`` in a
      ``finally`` around the loop, the local going nowhere else: closed where it is iterated;
    * ``async for x in gen(...):`` whose body cannot suspend (no await that lets other tasks
      run) and leaves the loop only at its head (no ``break``, ``return`` or ``raise``): a
      cancellation reaches the task only inside the generator, which unwinds there, and the
      loop ends only when the generator is exhausted. (An exception the body raises without a
      ``raise`` of its own would leave it to the finalizer: an error path, not reported.)

    A caller that is itself an async generator and yields inside the loop (or inside the
    ``aclosing`` block) hands the pace to its own consumers: it closes the inner one in the
    task that iterates it only if its own calls do the same (followed three callers up)."""
    f = caller.facts
    events = f.events
    ev = events[i]
    held = [
        rid
        for e in events
        if e.kind == K.CALL and e.ref.rpartition(".")[2] == "aclosing" and inside(ev.pos, e.pos)
        for rid, r in enumerate(f.regions)
        if r.is_async and inside(e.pos, r.pos)
    ]
    # ``pace``: an event where the caller yields while the inner generator is open (its
    # consumers set the pace), -2 if it never does, -1 if the call does not close it
    if held:
        pace = next(
            (j for j, y in enumerate(events) if y.kind == K.YIELD and held[0] in y.regions), -2
        )
    elif ev.bind == Bind.LOCAL and ev.name.isidentifier():
        pace = _iterated_and_closed(f, i, ev.name)
    elif ev.bind == Bind.NONE:
        step = next(
            (
                j
                for j in range(i + 1, min(i + 3, len(events)))
                if events[j].kind == K.AWAIT
                and events[j].name == "async for"
                and events[j].pos == ev.pos
            ),
            -1,
        )
        if step < 0:
            return False
        body = _loop_body(f, step)
        if body is None:
            return False
        ctx = analysis.ctx(caller)
        if any(
            events[j].kind in (K.RETURN, K.RAISE)
            or (events[j].kind == K.AWAIT and analysis.summaries.suspending(ctx, j))
            for j in body
        ):
            return False
        pace = step if any(events[j].kind == K.YIELD for j in body) else -2
    elif ev.bind == Bind.ARG:
        # ``stream_runtime_events(gen(...), task)``: handed to a function of the project that
        # iterates and closes it (:func:`_handed_to_closer`)
        return _handed_to_closer(analysis, caller, i, asked)
    elif ev.bind == Bind.RETURNED and not f.is_generator and not f.is_async:
        # ``def embed(self, docs): return self.embedder.embed(docs)``: a plain function that
        # hands the generator back; its own calls decide (followed three callers up)
        if caller.fq in asked:
            return True
        return len(asked) <= 3 and _closed_where_iterated(analysis, caller, asked)
    else:
        return False
    if pace == -1:
        return False
    if pace >= 0 and f.is_async and f.is_generator:
        # (it yields while the inner one is open: its consumers set the pace)
        if caller.fq in asked:
            return True
        return len(asked) <= 3 and _closed_where_iterated(analysis, caller, asked)
    return True


def _handed_to_closer(analysis: Analysis, caller: Fn, i: int, asked: frozenset[str]) -> bool:
    """Is the async generator made by call ``i`` handed straight to functions of the project
    (every target of the call it is an argument of) that each take it as a parameter and
    iterate and close it in one function of their own: themselves, or one closure they define
    (a producer task, ``async def produce(): try: async for e in source: ... finally: await
    source.aclose()``), the parameter used nowhere else? Then every step of the generator and
    its close run in that function's task, whichever it is. If that function is itself an
    async generator that yields inside the loop, its own calls decide (three callers up)."""
    f = caller.facts
    ev = f.events[i]
    made = ev.ref + "()"
    outer = [
        e
        for e in f.events
        if e.kind == K.CALL and e is not ev and inside(ev.pos, e.pos) and made in _arg_refs(e)
    ]
    if len(outer) != 1:
        return False
    call = outer[0]
    targets = analysis.targets(analysis.ctx(caller), call)
    if not targets:
        return False
    for t, _c in targets:
        param = _param_of(t, call, made)
        if not param or not _param_iterated_and_closed(analysis, t, param, asked):
            return False
    return True


def _param_iterated_and_closed(
    analysis: Analysis, t: Fn, param: str, asked: frozenset[str]
) -> bool:
    """:func:`_handed_to_closer` for the parameter ``param`` of ``t``."""
    family = [t, *_closures_of(analysis, t)]
    users = [
        g
        for g in family
        if _mentions(g.facts, param)
        and (g is t or param not in {p.name for p in g.facts.params})  # (its own, not ours)
    ]
    if len(users) != 1:
        return False
    g = users[0]
    gf = g.facts
    if any(e.kind == K.LOCAL and e.ref == param for e in gf.events):
        return False  # bound anew: another object
    pace = _iterated_and_closed(gf, -1, param)
    if pace == -1:
        return False
    if pace >= 0 and gf.is_async and gf.is_generator:
        if g is not t:
            return False  # (a closure that yields it on: not followed)
        if t.fq in asked:
            return True
        return len(asked) <= 3 and _closed_where_iterated(analysis, t, asked)
    return True


def _closures_of(analysis: Analysis, fn: Fn) -> list[Fn]:
    """The functions defined inside ``fn``, at any depth (``Index.nested_qualnames``)."""
    functions = analysis.index.functions
    found = (functions.get(f"{fn.module.module}.{q}") for q in analysis.index.nested_qualnames(fn))
    return [g for g in found if g is not None]


def _mentions(f: FunctionFacts, name: str) -> bool:
    """Does any event of ``f`` use the plain name ``name`` (as a ref, an argument, in a value),
    or return it?"""
    dotted = name + "."
    for e in f.events:
        if e.ref == name or e.ref.startswith(dotted):
            return True
        if any(_kw_value(a) in (name, "*" + name) or a.startswith(dotted) for a in e.args):
            return True
        if e.value is not None and name in e.value.names:
            return True
    return name in f.returns_refs


def _iterated_and_closed(f: FunctionFacts, i: int, local: str) -> int:
    """``it = gen(...)`` at event ``i``: is ``it`` only iterated by ``async for`` and closed by
    ``await it.aclose()`` in the ``finally`` of a ``try`` whose body holds the loop (or by
    ``close = getattr(it, "aclose", None)`` ... ``await close()``)? The loop's event (``-2``
    when nothing in it yields), or -1."""
    events = f.events
    loops: list[int] = []
    closed: list[int] = []
    binding = next(
        (
            j
            for j in range(i + 1, len(events))
            if events[j].kind == K.LOCAL and events[j].ref == local
        ),
        -1,
    )
    for j, e in enumerate(events):
        if j in (i, binding):
            continue
        if e.kind == K.AWAIT and e.name == "async for" and e.ref == local:
            loops.append(j)
        elif e.kind == K.CALL and e.ref == f"{local}.aclose" and e.bind == Bind.AWAITED:
            closed.append(j)
        elif (
            e.kind == K.CALL
            and e.ref == "getattr"
            and e.bind == Bind.LOCAL
            and e.args[:2] == (local, "const")
        ):
            getter = e.name  # (``close = getattr(it, "aclose", None)``)
            closed.extend(
                k
                for k, c in enumerate(events)
                if c.kind == K.CALL and c.ref == getter and c.bind == Bind.AWAITED
            )
        elif e.kind == K.LOCAL and e.ref == local:
            return -1  # bound again: another object
        elif e.kind == K.CALL and any(
            a == local or a.partition("=")[2] == local or a.startswith(local + ".") for a in e.args
        ):
            return -1  # handed on
        elif (e.kind in (K.RETURN, K.YIELD) and e.ref == local) or (
            e.value is not None
            and e.value.kind != "iter"  # (an element of it: ``for chunk in it``)
            and e.value.ref != "getattr"  # (the getter of its ``aclose``)
            and local in e.value.names
        ):
            return -1  # returned, yielded or stored as it is
    if local in f.returns_refs or not loops or not closed:
        return -1
    for t in f.tries:
        if t.final_first < 0:
            continue
        if all(t.first <= j < t.body_end for j in loops) and any(
            t.final_first <= j < t.final_last for j in closed
        ):
            body = _loop_body(f, loops[0])
            return loops[0] if body is None or any(events[j].kind == K.YIELD for j in body) else -2
    return -1


def _loop_body(f: FunctionFacts, step: int) -> set[int] | None:
    """The events of the body of the ``async for`` whose step is event ``step``, when every
    way out of the body goes back to the loop's head; None if some path leaves it otherwise
    (a ``break``, an edge past the loop). An exception raised in the body is not followed
    into the handlers (what :func:`_site_closes` asks of the body is that nothing in it
    suspends or leaves on purpose)."""
    events = f.events
    b = step + 1
    if b >= len(events) or events[b].kind != K.BRANCH or len(events[b].succ) < 2:
        return None
    head = step - 1 if step > 0 and events[step - 1].kind == K.NOP else step
    start, past = events[b].succ[0], events[b].succ[1]
    handlers = {e.handler for e in events if e.handler >= 0}
    body: set[int] = set()
    todo = [start]
    while todo:
        j = todo.pop()
        if j in body or j in (head, step) or j in handlers:
            continue
        if j == past or events[j].kind == K.EXIT:
            return None
        body.add(j)
        todo.extend(events[j].succ)
    return body


def _gate(f: FunctionFacts, i: int, truth: bool = True) -> str:
    """The parameter whose truth alone lets event ``i`` run (``if defer: var.set()``): ``i``
    is reached from the entry only through that test's true side; "" if none. ``truth``
    False: the parameter whose falsity alone lets it run (``if not detached: var.set()``)."""
    for b, ev in enumerate(f.events):
        if ev.kind != K.BRANCH or not ev.name.startswith("if:") or len(ev.succ) < 2:
            continue
        param = ev.name[3:]
        negated = param.startswith("not ") == truth
        true_side = ev.succ[1] if negated else ev.succ[0]
        seen = {0}
        todo = [0]
        while todo:
            j = todo.pop()
            if j == i:
                break
            for k in f.events[j].succ:
                if (j, k) == (b, true_side) or k in seen:
                    continue
                seen.add(k)
                todo.append(k)
        else:
            return param.removeprefix("not ")
    return ""


def _left_false(fn: Fn, region: Region, target: Fn, gate: str) -> bool:
    """Does the ``with`` item at ``region`` call ``target`` leaving its parameter ``gate`` at
    a false constant default (not passed by keyword nor by position)?"""
    params = target.facts.params
    p = next((p for p in params if p.name == gate), None)
    if p is None or p.default != "falsy":
        return False
    call = next(
        (
            e
            for e in fn.facts.events
            if e.kind == K.CALL and e.ref == region.ref[:-2] and inside(e.pos, region.pos)
        ),
        None,
    )
    if call is None or any(a.startswith(("*", "**")) for a in call.args):
        return False
    if any(is_kw(a) and a.partition("=")[0] == gate for a in call.args):
        return False
    if p.kind == "pos":
        names = [q.name for q in params if q.kind == "pos"]
        bound = 1 if target.facts.cls is not None and names and names[0] in ("self", "cls") else 0
        given = sum(1 for a in call.args if not is_kw(a))
        if names.index(gate) - bound < given:
            return False
    return True


def _reaches(fn: Fn, start: int, target: Event) -> bool:
    """Is ``target`` reachable from event ``start`` of ``fn`` (in one call)?"""
    events = fn.facts.events
    seen: set[int] = set()
    todo = [start]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        if events[i] is target:
            return True
        todo.extend(events[i].succ)
    return False


def _first_line(region: Region) -> Pos:
    """A ``with`` item over several lines is shown as ``callee(`` only."""
    pos = region.pos
    if pos[2] == pos[0]:
        return pos
    return (pos[0], pos[1], pos[0], pos[1] + len(region.ref) - 1)


def _yield_in(fn: Fn, rid: int) -> int | None:
    """The first ``yield`` inside the block of ``with`` item ``rid``."""
    f = fn.facts
    region = f.regions[rid]
    for j in range(region.first, min(region.last, len(f.events))):
        if f.events[j].kind == K.YIELD and rid in f.events[j].regions:
            return j
    return None


def _encloses(outer: Fn, inner: Fn) -> bool:
    if outer.module is not inner.module:
        return False
    return inner.facts.qualname.startswith(outer.facts.qualname + ".<locals>.")


def _child_of(analysis: Analysis, fn: Fn, inner: Fn) -> Fn | None:
    """The function defined directly in ``fn`` that is (or encloses) ``inner``."""
    q = inner.facts.qualname
    for n in fn.facts.nested:
        if q == n or q.startswith(n + ".<locals>."):
            return analysis.index.functions.get(f"{fn.module.module}.{n}")
    return None


def _kept_for_exit(analysis: Analysis, fn: Fn, nested: Fn) -> bool:
    """``__enter__`` pushes the releasing callback onto ``self._cleanup``
    (``self._cleanup.append(lambda: var.reset(token))``), and the class's own
    ``__exit__``/``__aexit__`` reads that list: the release runs at the ``with`` block's exit,
    where the token was made, as a class-based context manager's keeps it on ``self``."""
    if fn.facts.name not in _ENTER:
        return False
    lam = "lambda:" + nested.facts.qualname
    name = nested.facts.name
    slots = {
        e.ref.rpartition(".")[0]
        for e in fn.facts.events
        if e.kind == K.CALL
        and e.ref.rpartition(".")[2] in _PUSH
        and any(_kw_value(a) in (lam, name) for a in e.args)
    } | {
        e.ref
        for e in fn.facts.events
        if e.kind in (K.WRITE, K.SETITEM)
        and e.value is not None
        and (e.value.ref == name or name in e.value.names)
    }
    slots = {r for r in slots if r.startswith("self.") and r.count(".") == 1}
    cls = analysis.index.method_fn(fn)
    if not slots or cls is None:
        return False
    for exit_name in _EXIT:
        ex = analysis.index.find_method(cls, exit_name)
        if ex is not None and any(
            e.ref in slots or e.ref.rpartition(".")[0] in slots for e in ex.facts.events
        ):
            return True
    return False


def _escapes(
    fn: Fn, nested: Fn, returns: bool = True
) -> tuple[tuple[int, int, int, int], str] | None:
    """Where the nested function (or the generator it makes) leaves ``fn``: passed to a call,
    stored, returned (``returns``: a return counts). ``None`` when ``fn`` only calls it (and
    drives what it returns) itself."""
    name = nested.facts.name
    lam = "lambda:" + nested.facts.qualname
    gen = nested.facts.is_generator
    for e in fn.facts.events:
        if e.kind == K.CALL:
            for a in e.args:
                v = _kw_value(a)
                if v in (name, lam) or (gen and v == name + "()"):
                    what = "the lambda" if nested.facts.is_lambda else f"`{short(nested)}`"
                    return at(e), f"{what} is handed to `{e.ref or 'a call'}` here"
            if gen and e.ref == name and e.bind in (Bind.RETURNED, Bind.ATTR, Bind.ITEM):
                return at(e), f"the generator `{name}()` leaves `{short(fn)}` here"
        elif (
            e.kind in (K.WRITE, K.SETITEM)
            and e.value is not None
            and (e.value.ref == name or (e.value.kind == "other" and name in e.value.names))
        ):
            return at(e), f"`{short(nested)}` is stored here"
        elif returns and e.kind == K.RETURN and name in fn.facts.returns_refs:
            return at(e), f"`{short(nested)}` is returned here"
    if gen:
        locals_of_gen = {
            e.ref
            for e in fn.facts.events
            if e.kind == K.LOCAL and e.value is not None and e.value.ref == name
        }
        for e in fn.facts.events:
            if e.kind == K.RETURN and locals_of_gen.intersection(fn.facts.returns_refs):
                return at(e), f"the generator `{name}()` is returned here"
    return None


def _called_where_returned(analysis: Analysis, fn: Fn) -> bool:
    """Does every call of ``fn`` in the project keep what it returns (the reset callback) in a
    local that the caller itself calls, and never hands on, stores or returns (``reset =
    set_ids(...); try: ... finally: reset()``)? Then the callback runs in the call that set
    the values: one task, one context (modal's ``_set_current_context_ids``)."""
    callers = analysis.calls_of(fn)
    if not callers:
        return False
    for caller, i, known in callers:
        cf = caller.facts
        e = cf.events[i]
        if not known or cf.is_generator or e.bind != Bind.LOCAL or not e.name:
            return False
        local = e.name
        called = False
        for ev in cf.events:
            if ev.kind == K.CALL:
                if ev.ref == local:
                    called = True
                if any(_kw_value(a) == local for a in ev.args):
                    return False  # handed on
            elif (
                ev.kind in (K.WRITE, K.SETITEM, K.LOCAL)
                and ev.value is not None
                and ev.ref != local
                and (ev.value.ref == local or local in ev.value.names)
            ):
                return False  # stored, or kept under another name
        if not called or local in cf.returns_refs:
            return False
    return True


def _stack_handed_out(fn: Fn, stack: str) -> tuple[tuple[int, int, int, int], str] | None:
    """Where ``stack.aclose``/``stack.close`` (or the stack itself, ``stack.pop_all()``) leaves
    the function: passed to a call, stored, returned."""
    closers = {f"{stack}.{c}" for c in _STACK_CLOSE}
    for e in fn.facts.events:
        if e.kind == K.CALL:
            for a in e.args:
                if _kw_value(a) in closers:
                    return (
                        at(e),
                        f"`{_kw_value(a)}` is handed to `{e.ref}` here: the stack is closed "
                        "wherever that runs",
                    )
        elif e.kind in (K.WRITE, K.SETITEM) and e.value is not None and e.value.ref in closers:
            return at(
                e
            ), f"`{e.value.ref}` is stored here: the stack is closed wherever it is called"
        elif e.kind == K.RETURN and closers.intersection(fn.facts.returns_refs):
            return at(e), "the stack's close is returned here: the caller closes it wherever"
    return None


def _relation(a: Fn, b: Fn) -> int:
    """0 same class, 1 same module, 2 related modules (one imports the other, or one package),
    3 unrelated."""
    if a.module is b.module:
        return 0 if a.facts.cls is not None and a.facts.cls == b.facts.cls else 1
    ma, mb = a.module, b.module
    if any(v.startswith(mb.module) for v in ma.imports.values()) or any(
        v.startswith(ma.module) for v in mb.imports.values()
    ):
        return 2
    pa, pb = ma.module.split(".", 1)[0], mb.module.split(".", 1)[0]
    return 2 if "." in ma.module and "." in mb.module and pa == pb else 3


def _refs_text(fn: Fn) -> str:
    return " ".join(e.ref for e in fn.facts.events if e.kind == K.CALL)
