"""ARC002 context-token-crosses-handler (openarmature PR 22).

``opentelemetry.context.attach()`` and ``ContextVar.set()`` return a token that must be released
(``detach``/``reset``) in the same context, in LIFO order. Two shapes break that:

* the token is stored where another call can reach it (an attribute, a dict, a record kept in a
  map) and released in a different function: interleaved handlers release each other's tokens
  out of order, or in a context the token was not created in;
* a plain generator or async generator sets the token before a ``yield`` and resets it after: the
  generator may be resumed or finalized from another task (the async-generator finalizer runs
  ``aclose()`` in a new task), where the reset raises "was created in a different Context".

``@contextmanager``/``@asynccontextmanager`` generators are the idiom, not the hazard: a ``with``
block enters and exits in one task and one context. So are class-based context managers that
keep the token from ``__enter__`` to ``__exit__``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import Bind, Event, K, ModuleFacts
from asyncrace.analysis.index import ClassObj, Ctx, Fn, Inst, split_ref
from asyncrace.analysis.summaries import RELEASES_KEY, Step, at, fn_step, search, short
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import line_of, make, module_functions

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

_CM_DECORATORS = {"contextmanager", "asynccontextmanager"}
_ENTER = {"__enter__", "__aenter__"}
_PUSH = {"append", "add", "appendleft", "insert", "put", "put_nowait", "setdefault"}
_EXIT = {"__exit__", "__aexit__"}


@dataclass(frozen=True)
class _Release:
    fn: Fn
    ev: Event
    arg: str  # the released expression, locals replaced by what they were assigned


def _is_kw(a: str) -> bool:
    k, eq, _ = a.partition("=")
    return bool(eq) and k.isidentifier() and not a.startswith(("lambda:", "partial:"))


def _contextvar(analysis: Analysis, ctx: Ctx, receiver: str) -> bool:
    val = analysis.index.eval(ctx, receiver)
    return isinstance(val, Inst) and val.fq.rsplit(".", 1)[-1] == "ContextVar"


def token_kind(analysis: Analysis, ctx: Ctx, ev: Event) -> str | None:
    if ev.kind != K.CALL or not ev.ref.endswith(("attach", "set")):
        return None
    segs = split_ref(ev.ref)
    if segs[-1] == "attach":
        fq = analysis.index.resolve(ctx.fn.module, ev.ref) if "(" not in ev.ref else ""
        if fq.endswith("opentelemetry.context.attach") or fq == "opentelemetry.context.attach":
            return "attach"
    if (
        segs[-1] == "set"
        and len(segs) >= 2
        and ev.args
        and _contextvar(analysis, ctx, ".".join(segs[:-1]))
    ):
        return "set"
    return None


def release_arg(analysis: Analysis, ctx: Ctx, ev: Event) -> str | None:
    if ev.kind != K.CALL or not ev.ref.endswith(("detach", "reset")):
        return None
    positional = [a for a in ev.args if not _is_kw(a)]
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


class ContextTokenCrossesHandler:
    code = "ARC002"

    def __init__(self) -> None:
        self._releases: list[_Release] | None = None
        self._release_reads: set[str] | None = None

    def _all_releases(self, analysis: Analysis) -> list[_Release]:
        """Every release of a token in the project (in the modules whose bodies mention
        ``reset``/``detach``), computed once; each use notes the modules it read."""
        tracker = analysis.tracker
        if self._releases is None:
            out: list[_Release] = []
            tracker.begin()
            tracker.note(RELEASES_KEY)
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
                        if arg is not None:
                            if "." not in arg and "(" not in arg:
                                arg = _local_value(fn, arg)
                            if "." not in arg and "(" not in arg:
                                continue  # ``def _reset(token): var.reset(token)``: a helper
                            out.append(_Release(fn, ev, arg))
            out.sort(key=lambda r: r.fn.fq)  # stable: a function's own order is kept
            self._releases = out
            self._release_reads = tracker.end()
        else:
            tracker.replay(self._release_reads)
        return self._releases

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        for fn in module_functions(analysis, module):
            ctx: Ctx | None = None
            for i, ev in enumerate(fn.facts.events):
                if ev.kind != K.CALL or not ev.ref.endswith(("attach", "set")):
                    continue  # (token_kind's own first test, without a call per event)
                if ctx is None:
                    ctx = analysis.ctx(fn)
                kind = token_kind(analysis, ctx, ev)
                if kind is None:
                    continue
                d = self._generator(analysis, ctx, fn, i, ev, kind) or self._stored(
                    analysis, ctx, fn, i, ev, kind
                )
                if d is not None:
                    yield d

    # -- shape 1: stored, released elsewhere -------------------------------------------------
    def _stored(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, i: int, ev: Event, kind: str
    ) -> Diagnostic | None:
        slot = self._slot(analysis, ctx, fn, i, ev)
        if slot is None:
            return None
        slot_name, store = slot
        candidates = [
            rel
            for rel in self._all_releases(analysis)
            if rel.fn.fq != fn.fq and self._matches(rel.arg, slot_name)
        ]
        # the same class first, then the same module, then modules related by an import or a
        # package; a release in unrelated code that happens to use the same slot name is not
        # this token's
        ranked = sorted(
            (r for r in candidates if _relation(fn, r.fn) < 3),
            key=lambda r: (_relation(fn, r.fn), r.fn.fq, r.ev.pos),
        )
        for rel in ranked:
            if (
                fn.facts.name in _ENTER
                and rel.fn.facts.name in _EXIT
                and rel.fn.facts.cls
                and rel.fn.facts.cls == fn.facts.cls
            ):
                continue  # a class-based context manager: the idiom
            if fn.facts.name in _EXIT:
                continue
            verb = "detached" if kind == "attach" else "reset"
            release = fn_step(
                rel.fn, rel.ev.pos, f"{verb} here, in `{short(rel.fn)}`: another handler"
            )
            steps = [store, release]
            what = "`context.attach()`" if kind == "attach" else "`ContextVar.set()`"
            msg = (
                f"the token from {what} is stored beyond `{short(fn)}` and {verb} in "
                f"`{short(rel.fn)}` ({line_of(release, fn.module.path)}); interleaved handlers "
                "release tokens out of order or in another context"
            )
            return make(self.code, fn.module.path, at(ev), msg, steps, FIX_STORED)
        return None

    @staticmethod
    def _matches(arg: str, slot: str) -> bool:
        last = split_ref(arg)[-1].rstrip("()") if arg else ""
        if slot.startswith(("self.", "global:")) or "." in slot:
            container = slot
            return (
                arg == container
                or arg.startswith(container + ".")
                or (split_ref(container)[-1] == last)
            )
        return last == slot

    def _slot(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, i: int, ev: Event
    ) -> tuple[str, Step] | None:
        """Where the token goes beyond the function: an attribute name, a container ref, or a
        record field; with the step that stores it."""
        events = fn.facts.events
        params = {p.name for p in fn.facts.params} - {"self", "cls"}

        def on_param(ref: str) -> bool:
            # ``trace_config_ctx.token = attach(...)``: kept on the per-call object the caller
            # handed in (aiohttp's trace context, OpenTelemetry's own instrumentation idiom)
            return bool(ref) and split_ref(ref)[0] in params

        if ev.bind in (Bind.ATTR, Bind.ITEM) and on_param(ev.name):
            return None
        if ev.bind == Bind.ATTR and ev.name:
            return split_ref(ev.name)[-1], fn_step(fn, at(ev), "the token is stored here")
        if ev.bind == Bind.ITEM and ev.name:
            return ev.name, fn_step(fn, at(ev), "the token is stored here")
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
                        return ".".join(segs[:-1]), fn_step(fn, at(e), "the token is stored here")
                    slot = self._arg_slot(analysis, ctx, e, token_arg)
                    if slot:
                        return slot, fn_step(fn, at(e), "the token is stored here")
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
            if (
                e.kind in (K.WRITE, K.SETITEM)
                and on_param(e.ref)
                and e.value is not None
                and e.value.ref == name
            ):
                return None
            if (
                e.kind == K.WRITE
                and e.value is not None
                and e.value.kind == "name"
                and e.value.ref == name
            ):
                return split_ref(e.ref)[-1] or None, fn_step(fn, at(e), "the token is stored here")  # type: ignore[return-value]
            if e.kind == K.SETITEM and e.value is not None and e.value.ref == name:
                return e.ref, fn_step(fn, at(e), "the token is stored here")
            if e.kind == K.CALL and any(a == name or a.endswith("=" + name) for a in e.args):
                if release_arg(analysis, ctx, e) is not None:
                    return None  # released right here: paired in one scope
                segs = split_ref(e.ref)
                if len(segs) >= 2 and segs[-1] in _PUSH:
                    return ".".join(segs[:-1]), fn_step(fn, at(e), "the token is stored here")
                slot = self._arg_slot(analysis, ctx, e, name)
                if slot:
                    return slot, fn_step(fn, at(e), "the token is stored here")
        return None

    @staticmethod
    def _arg_slot(analysis: Analysis, ctx: Ctx, call: Event, token: str) -> str | None:
        positional = [a for a in call.args if not _is_kw(a)]
        for a in call.args:
            if _is_kw(a) and a.partition("=")[2] == token:
                return a.partition("=")[0]
        if token in positional:
            val = analysis.index.eval(ctx, call.ref)
            if isinstance(val, ClassObj) and val.fq in analysis.index.classes:
                fields = analysis.index.classes[val.fq].facts.fields
                idx = positional.index(token)
                if idx < len(fields):
                    return fields[idx]
        return None

    # -- shape 2: across a yield in a generator ---------------------------------------------
    def _generator(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, i: int, ev: Event, kind: str
    ) -> Diagnostic | None:
        f = fn.facts
        if not f.is_generator or ev.bind != Bind.LOCAL or not ev.name:
            return None
        decos = {d.rstrip("()").rsplit(".", 1)[-1] for d in f.decorators}
        # a decorated generator is driven by its decorator (@contextmanager, @gen.coroutine):
        # its enter and exit run in one context. pytest-asyncio's async fixtures are the
        # exception: set-up and tear-down run in separate tasks.
        if decos and not (f.is_async and "fixture" in decos):
            return None
        if analysis.passed_on(fn):
            return None  # handed to someone (``Depends(dep)``) who drives it as a context manager
        name = ev.name

        def hit(_j: int, e: Event, seen_yield: int) -> bool:
            return seen_yield >= 0 and release_arg(analysis, ctx, e) == name

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
            steps = [
                fn_step(
                    fn,
                    f.events[y].pos,
                    "the generator suspends here; it may be resumed or "
                    "closed from another task or context",
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
