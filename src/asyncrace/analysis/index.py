"""The link stage: one index over every file's facts.

It answers the questions rules ask across functions, classes and modules: what does this name
refer to (imports, re-exports, relative imports), what is the method resolution order of a class,
which classes override a method (class-hierarchy analysis for calls on a declared base type),
what type does ``self.x`` or a parameter have (annotations, constructor assignments), and what
does a ref evaluate to inside a function, given bindings for its parameters (so a callback
passed as ``on_event=self._on_event`` is followed into the thread that calls it).
"""

from __future__ import annotations

import keyword
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from asyncrace.analysis.facts import (
    ClassFacts,
    FunctionFacts,
    K,
    ModuleFacts,
    Value,
    dynamic_prefix,
)

_V = TypeVar("_V")
_KT = TypeVar("_KT")

# -- which modules a computation reads (incremental runs) --------------------------------------


class Tracker:
    """Records which modules' facts a computation reads, for incremental runs
    (``docs/architecture.md``, "Incremental runs").

    A read is noted where a function of a module is handed out: a hit in the function table
    (``Index.functions``) notes the module of what it returns. Everything a rule knows about a
    module's bodies, signatures and positions comes through such a hit, or through a memoized
    summary, which keeps the reads of its computation (:class:`Memo`) and notes them again on
    every hit. Project-wide tables are read by key (``concurrency.SPAWN_KEY`` and the others),
    and a lookup that finds no function of a name in a project module notes ``NAME_KEY`` + the
    name.
    What can be known without any of these (the header tables built when linking) is the
    module's *interface* (``snapshot.Interface``): an incremental run falls back to a full one
    when a changed file's interface changed other than by functions added.

    Tracking is off while :attr:`frames` is empty (the cost is then one test per read).

    The tracker also keeps the time limit of the check under way (:attr:`deadline`, set by
    the caller of a rule, ``run.link.check_modules``): every summary computation starts through
    it (:meth:`Memo.start`), so a computation that would run away (summaries that multiply
    along call paths, as one did on a real project) ends with :class:`AnalysisLimit` at the
    next summary it starts after the deadline, instead of never."""

    __slots__ = ("deadline", "frames", "ticks")

    def __init__(self) -> None:
        self.frames: list[set[str]] = []
        self.deadline = 0.0  # ``time.monotonic()`` past which a check stops; 0: none
        self.ticks = 0  # summary computations started (the clock is read every 16th)

    def tick(self) -> None:
        """Count a summary computation started; past the deadline, raise
        :class:`AnalysisLimit`."""
        self.ticks += 1
        if self.deadline and not self.ticks & 15 and time.monotonic() > self.deadline:
            raise AnalysisLimit

    def note(self, module: str) -> None:
        if self.frames:
            self.frames[-1].add(module)

    def replay(self, deps: set[str] | frozenset[str] | None) -> None:
        if deps and self.frames:
            self.frames[-1].update(deps)

    def begin(self) -> None:
        if self.frames:
            self.frames.append(set())

    def end(self) -> set[str] | None:
        """The reads since the matching :meth:`begin`, also added to the enclosing frame."""
        fr = self.frames
        if len(fr) < 2:
            return None
        top = fr.pop()
        fr[-1].update(top)
        return top

    def end_as(self, old: str, new: str) -> set[str] | None:
        """As :meth:`end`, with the read ``old`` (a module) noted as ``new`` (a finer key)."""
        fr = self.frames
        if len(fr) < 2:
            return None
        top = fr.pop()
        if old in top:
            top.discard(old)
            top.add(new)
        fr[-1].update(top)
        return top

    def start(self) -> None:
        """Start recording one unit (a module's check, a module's contribution to a table)."""
        self.frames = [set()]

    def stop(self) -> set[str]:
        out = self.frames[0] if self.frames else set()
        self.frames = []
        return out


class AnalysisLimit(Exception):
    """A check ran past its time limit (:attr:`Tracker.deadline`). The summaries it left
    unfinished keep the answer they give inside a recursion (their guard value): what they
    knew so far, so that no later check computes them again."""


_MISS: Any = object()
# the key of a read that found no function or method of that (fully qualified) name in a
# module of the project: a function added there later changes what the reader found
NAME_KEY = "\x00name:"
# the key of a read of a class's subclasses (a class added under it changes the answer), and
# of a read of every class's attribute types
SUB_KEY = "\x00sub:"
ATTR_TYPES_KEY = "\x00attr-types"
GLOBALS_KEY = "\x00globals"  # a scan of every module's variables
# the key of a read of one module variable's type (``<module>.<name>``)
GLOBAL_VAR_KEY = "\x00global:"
# the key of a read of one class's type (or absence) of one attribute: ``<class>.<attr>``
ATTR_KEY = "\x00attr:"
# the key of a read of the classes that define a method of a name (structural dispatch on a
# ``typing.Protocol``): a method of that name added anywhere changes the answer
METHOD_KEY = "\x00method:"
_PROTOCOL_BASES = frozenset({"typing.Protocol", "typing_extensions.Protocol", "Protocol"})


class Memo(Generic[_KT, _V]):
    """A memo table whose entries keep the modules their computation read (:class:`Tracker`)
    and note them again on every hit, so that a cached answer is charged to every computation
    that uses it. ``start`` puts a guard value (answered while the entry is being computed, in
    a recursion), ``finish`` the answer."""

    __slots__ = ("deps", "tracker", "values")

    def __init__(self, tracker: Tracker) -> None:
        self.values: dict[_KT, _V] = {}
        self.deps: dict[_KT, set[str]] = {}
        self.tracker = tracker

    def get(self, key: _KT) -> Any:
        """The memoized value (its reads noted), or ``MISS``."""
        v = self.values.get(key, _MISS)
        if v is not _MISS and self.tracker.frames:
            d = self.deps.get(key)
            if d:
                self.tracker.frames[-1].update(d)
        return v

    def start(self, key: _KT, guard: _V) -> None:
        self.tracker.tick()
        self.values[key] = guard
        self.tracker.begin()

    def finish(self, key: _KT, value: _V) -> _V:
        self.values[key] = value
        d = self.tracker.end()
        if d:
            self.deps[key] = d
        return value

    def finish_as(self, key: _KT, value: _V, old: str, new: str) -> _V:
        """As :meth:`finish`, with the read ``old`` noted as ``new`` (:meth:`Tracker.end_as`)."""
        self.values[key] = value
        d = self.tracker.end_as(old, new)
        if d:
            self.deps[key] = d
        return value


MISS: Any = _MISS


class _Functions(dict[str, "Fn"]):
    """The index's function table: a hit notes the function's module (and, in an incremental
    run, loads that module's bodies). Every body and position a rule reads comes from an
    :class:`Fn` handed out here. Membership tests are not reads: which names exist is part of
    every module's interface, and so are the class and module tables, which hold headers
    only."""

    __slots__ = ("_hit", "_index")

    def __init__(self, index: Index) -> None:
        super().__init__()
        self._index = index
        self._hit = index._hit

    def get(self, key: str, default: Fn | None = None) -> Fn | None:  # type: ignore[override]
        v: Fn | None = dict.get(self, key)
        if v is None:
            return default
        # (``Index._hit``, written out: this is the lookup of every function read)
        index = self._index
        frames = index.tracker.frames
        if frames:
            frames[-1].add(v.module.module)
        if index.unloaded:
            index._load_hit(v.module)
        return v

    def __getitem__(self, key: str) -> Fn:
        v = dict.__getitem__(self, key)
        self._hit(v.module)
        return v


# -- abstract values ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Inst:
    """An instance of a class (project or external, by fully qualified name)."""

    fq: str


@dataclass(frozen=True, slots=True)
class ClassObj:
    fq: str


@dataclass(frozen=True, slots=True)
class ExtName:
    """A dotted name outside the project (``threading``, ``asyncio.to_thread``)."""

    fq: str


@dataclass(frozen=True, slots=True)
class FuncVal:
    """A callable: a project function, bound to a receiver class for methods, with the
    arguments a ``functools.partial`` already supplied."""

    fq: str
    recv: str | None = None
    pre_args: tuple[Val, ...] = ()
    pre_kwargs: tuple[tuple[str, Val], ...] = ()


Val = Inst | ClassObj | ExtName | FuncVal | None


@dataclass(frozen=True, slots=True)
class Fn:
    module: ModuleFacts
    facts: FunctionFacts
    # the fully qualified name, made once (it is asked for at every lookup)
    fq: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fq", f"{self.module.module}.{self.facts.qualname}")


@dataclass
class ClassInfo:
    fq: str
    module: ModuleFacts
    facts: ClassFacts
    bases: list[str] = field(default_factory=list)  # resolved fully qualified names
    attr_types: dict[str, str] = field(default_factory=dict)  # attr -> resolved fq


@dataclass(frozen=True)
class Ctx:
    """Where a ref is evaluated: a function, the class of its receiver, parameter bindings."""

    fn: Fn
    recv: str | None = None
    bindings: tuple[tuple[str, Val], ...] = ()

    def bound(self, name: str) -> tuple[bool, Val]:
        for k, v in self.bindings:
            if k == name:
                return True, v
        return False, None


def split_ref(ref: str) -> list[str]:
    """``a.b().c[]`` -> ``["a", "b()", "c[]"]``."""
    return ref.split(".") if ref else []


def last_seg(ref: str) -> str:
    """The last segment of a ref (``split_ref(ref)[-1]``); "" for a ref of no name (the
    callee of ``(factory or Event)()``), where ``split_ref`` gives no segment at all."""
    return ref.rpartition(".")[2]


def first_seg(ref: str) -> str:
    """The first segment of a ref (``split_ref(ref)[0]``); "" for a ref of no name."""
    return ref.partition(".")[0]


class Index:
    def __init__(
        self,
        modules: list[ModuleFacts],
        *,
        attr_types: dict[str, dict[str, str]] | None = None,
        load: Callable[[ModuleFacts], None] | None = None,
    ) -> None:
        """``attr_types`` (class -> attribute -> type, as linked before) stands for the
        classes whose modules come without bodies (an incremental run's unchanged modules);
        ``load`` fills in a module's bodies the first time one of its objects is handed out."""
        self.tracker = Tracker()
        self._load = load
        self.unloaded: set[str] = set()
        self.modules: dict[str, ModuleFacts] = {}
        for m in sorted(modules, key=lambda m: m.path):
            self.modules.setdefault(m.module, m)
        self.functions = _Functions(self)
        self.classes: dict[str, ClassInfo] = {}
        self._aliases = _namespace_aliases(self.modules.values())
        for m in self.modules.values():
            for q, f in m.functions.items():
                dict.__setitem__(self.functions, f"{m.module}.{q}", Fn(m, f))
            for q, c in m.classes.items():
                self.classes[f"{m.module}.{q}"] = ClassInfo(f"{m.module}.{q}", m, c)
        # what linking a module's classes (bases now, attribute types below) found missing in
        # other modules (``NAME_KEY``): a name imported there later links them otherwise
        self.link_reads: dict[str, set[str]] = {}
        tracker = self.tracker
        for ci in self.classes.values():
            tracker.start()
            ci.bases = [self.resolve(ci.module, b) for b in ci.facts.bases]
            self._link_read(ci.module.module, tracker.stop())
        self._subclasses: dict[str, list[str]] = {}
        for ci in sorted(self.classes.values(), key=lambda c: c.fq):
            for b in ci.bases:
                self._subclasses.setdefault(b, []).append(ci.fq)
        self._mro: Memo[str, list[ClassInfo]] = Memo(self.tracker)
        self._impl: Memo[str, list[str]] = Memo(self.tracker)
        self._dispatch: Memo[tuple[str, str], list[tuple[Fn, str]]] = Memo(self.tracker)
        self._owners: dict[str, list[str]] | None = None
        self._locals: dict[str, dict[str, Value]] = {}
        self._evals: Memo[tuple[str, str | None, tuple[tuple[str, Val], ...], str], Val] = Memo(
            self.tracker
        )
        for ci in self.classes.values():
            preset = attr_types.get(ci.fq) if attr_types is not None else None
            if preset is not None:
                ci.attr_types = dict(preset)
            else:
                tracker.start()
                self._infer_attr_types(ci)
                self._link_read(ci.module.module, tracker.stop())

    def _link_read(self, module: str, reads: set[str]) -> None:
        names = {r for r in reads if r.startswith(NAME_KEY)}
        if names:
            self.link_reads.setdefault(module, set()).update(names)

    def _hit(self, m: ModuleFacts) -> None:
        frames = self.tracker.frames
        if frames:
            frames[-1].add(m.module)
        if self.unloaded:
            self._load_hit(m)

    def _load_hit(self, m: ModuleFacts) -> None:
        """Fill in the bodies of ``m`` if they are not loaded yet (an incremental run)."""
        if m.module in self.unloaded:
            self.unloaded.discard(m.module)
            if self._load is not None:
                self._load(m)

    # -- names ------------------------------------------------------------------------------
    def resolve(self, module: ModuleFacts, dotted: str) -> str:
        """Fully qualified name of a dotted ref written in ``module``."""
        if not dotted:
            return ""
        first, _, rest = dotted.partition(".")
        if first in module.imports:
            base = module.imports[first]
        elif first in module.classes or first in module.functions:
            base = f"{module.module}.{first}"
        else:
            base = first
        return self.canonical(f"{base}.{rest}" if rest else base)

    def canonical(self, fq: str) -> str:
        """Follow re-exports (``from .sub import X`` in a package ``__init__``), and the dotted
        names imports use for the portions of PEP 420 namespace packages
        (``openhands.sdk.agent`` for the package ``sdk`` in ``openhands-sdk/openhands/sdk``)."""
        for _ in range(8):
            if self._aliases:
                fq = self._unalias(fq)
            if fq in self.functions or fq in self.classes or fq in self.modules:
                return fq
            parts = fq.split(".")
            for i in range(len(parts) - 1, 0, -1):
                mod = self.modules.get(".".join(parts[:i]))
                if mod is None:
                    continue
                name = parts[i]
                if name in mod.imports:
                    fq = ".".join([mod.imports[name], *parts[i + 1 :]])
                    break
                # nothing of that name in a project module: a function defined there later, or
                # a name imported there later (``mod.name`` re-exported), changes the answer
                tracker = self.tracker
                if tracker.frames:
                    tracker.frames[-1].add(NAME_KEY + fq)
                    tracker.frames[-1].add(f"{NAME_KEY}{mod.module}.{name}")
                return fq
            else:
                return fq
        return fq

    def _unalias(self, fq: str) -> str:
        parts = fq.split(".")
        for i in range(len(parts) - 1, 0, -1):
            target = self._aliases.get(".".join(parts[:i]))
            if target is not None:
                return ".".join([target, *parts[i:]])
        return fq

    # -- classes ----------------------------------------------------------------------------
    def methods_of(self, classes: Iterable[ClassInfo]) -> Iterator[Fn]:
        """The methods of each class, in the order of their qualified names, each class's
        module noted as read (its methods, however many: one added changes the answer)."""
        for c in classes:
            self.tracker.note(c.module.module)
            for q in sorted(c.facts.methods.values()):
                fn = self.functions.get(f"{c.module.module}.{q}")
                if fn is not None:
                    yield fn

    def mro(self, fq: str) -> list[ClassInfo]:
        found = self._mro.get(fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._mro.start(fq, [])  # cycle guard
        ci = self.classes.get(fq)
        if ci is None:
            return self._mro.finish(fq, [])
        seqs = [list(self.mro(b)) for b in ci.bases if b in self.classes]
        seqs.append([self.classes[b] for b in ci.bases if b in self.classes])
        out = [ci]
        while True:
            seqs = [s for s in seqs if s]
            if not seqs:
                break
            for s in seqs:
                head = s[0]
                if not any(head in t[1:] for t in seqs):
                    break
            else:  # inconsistent hierarchy: fall back to depth-first order
                for s in seqs:
                    for c in s:
                        if c not in out:
                            out.append(c)
                break
            out.append(head)
            for t in seqs:
                if t and t[0] is head:
                    del t[0]
        return self._mro.finish(fq, out)

    def inherits(self, fq: str, base: str) -> bool:
        """Is ``base`` the class ``fq`` or one of its project bases? The classes walked are
        noted as read (their bases, however they change, change the answer)."""
        for c in self.mro(fq):
            self.tracker.note(c.module.module)
            if c.fq == base:
                return True
        return False

    def ancestors_fq(self, fq: str) -> set[str]:
        """Every base, project or external, fully qualified."""
        out: set[str] = set()
        for c in self.mro(fq):
            out.add(c.fq)
            out.update(c.bases)
        return out

    def hierarchy(self, fq: str) -> list[ClassInfo]:
        """The class, its bases (its MRO in the project) and its subclasses: every class
        whose methods may run on an object that has ``fq``'s methods."""
        return [*self.mro(fq), *(c for s in self.subclasses(fq) if (c := self.classes.get(s)))]

    def subclasses(self, fq: str) -> list[str]:
        tracker = self.tracker
        if tracker.frames:  # a class added under any of these changes the answer
            tracker.frames[-1].add(SUB_KEY + fq)
        out: list[str] = []
        seen = {fq}
        todo = list(self._subclasses.get(fq, []))
        while todo:
            c = todo.pop(0)
            if c not in seen:
                seen.add(c)
                out.append(c)
                todo.extend(self._subclasses.get(c, []))
                if tracker.frames:
                    tracker.frames[-1].add(SUB_KEY + c)
        return out

    def find_method(self, cls_fq: str, name: str) -> Fn | None:
        tracker = self.tracker
        for c in self.mro(cls_fq):
            q = c.facts.methods.get(name)
            if q is not None:
                return self.functions.get(f"{c.module.module}.{q}")
            if tracker.frames:
                tracker.frames[-1].add(f"{NAME_KEY}{c.fq}.{name}")
        return None

    def dispatch(self, cls_fq: str, name: str) -> list[tuple[Fn, str]]:
        """Implementations a call ``x.name()`` may reach when ``x`` is declared as ``cls_fq``:
        the class itself (unless abstract) and every project subclass (class-hierarchy
        analysis), each with the receiver class it runs for. Kept per (class, name), with
        its reads (a receiver's methods are called from many places)."""
        key = (cls_fq, name)
        found = self._dispatch.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._dispatch.start(key, [])
        out: list[tuple[Fn, str]] = []
        seen: set[tuple[str, str]] = set()
        cands = [cls_fq, *self.subclasses(cls_fq)]
        if self.is_protocol(cls_fq):
            impl = [c for c in self.implementers(cls_fq) if c not in cands]
            if impl:  # the protocol's own stubs run nothing
                cands = [*cands[1:], *impl]
        for c in cands:
            ci = self.classes.get(c)
            if ci is None:
                continue
            if ci.facts.abstract and c != cls_fq and self.subclasses(c):
                continue
            if ci.facts.abstract and len(cands) > 1 and c == cls_fq:
                continue
            fn = self.find_method(c, name)
            if fn is None:
                continue
            fc = (fn.fq, c)
            if fc not in seen:
                seen.add(fc)
                out.append((fn, c))
        return self._dispatch.finish(key, out)

    def is_protocol(self, cls_fq: str) -> bool:
        """A ``typing.Protocol`` class (directly, or through protocol bases)."""
        ci = self.classes.get(cls_fq)
        return ci is not None and any(
            b.split("[", 1)[0] in _PROTOCOL_BASES or self.is_protocol(b)
            for b in ci.bases
            if b != cls_fq
        )

    def implementers(self, proto_fq: str) -> list[str]:
        """Project classes that satisfy the protocol structurally: they (or their bases)
        define every method the protocol declares, without subclassing it (PEP 544). A class
        that is itself a protocol is not one. Sorted, so the answer does not depend on order."""
        found = self._impl.get(proto_fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._impl.start(proto_fq, [])
        wanted: dict[str, Fn] = {}
        for c in self.mro(proto_fq):
            if c.fq == proto_fq or self.is_protocol(c.fq):
                for n, q in c.facts.methods.items():
                    m = self.functions.get(f"{c.module.module}.{q}")
                    if m is not None and not n.startswith("__"):
                        wanted.setdefault(n, m)
        out: list[str] = []
        if wanted:
            first = min(wanted)
            tracker = self.tracker
            if tracker.frames:  # a method of that name added anywhere changes the answer
                tracker.frames[-1].add(METHOD_KEY + first)
            for fq in self._method_owners().get(first, ()):
                if fq == proto_fq or self.is_protocol(fq):
                    continue
                if all(
                    (have := self.find_method(fq, n)) is not None and _accepts(have, want)
                    for n, want in wanted.items()
                ):
                    out.append(fq)
                    out.extend(s for s in self.subclasses(fq) if s not in out)
        return self._impl.finish(proto_fq, sorted(set(out)))

    def method_owners(self, name: str) -> list[str]:
        """The project classes that define a method of that name (notes ``METHOD_KEY``)."""
        tracker = self.tracker
        if tracker.frames:
            tracker.frames[-1].add(METHOD_KEY + name)
        return self._method_owners().get(name, [])

    def _method_owners(self) -> dict[str, list[str]]:
        """Method name -> the project classes that define it (headers only)."""
        if self._owners is None:
            owners: dict[str, list[str]] = {}
            for fq in sorted(self.classes):
                for name in self.classes[fq].facts.methods:
                    owners.setdefault(name, []).append(fq)
            self._owners = owners
        return self._owners

    def attr_type(self, cls_fq: str, attr: str) -> str:
        frames = self.tracker.frames
        for c in self.mro(cls_fq):
            if frames:
                frames[-1].add(f"{ATTR_KEY}{c.fq}.{attr}")
            t = c.attr_types.get(attr)
            if t:
                return t
        return ""

    def attr_owner(self, cls_fq: str, attr: str) -> str:
        """The class (in the MRO) that declares or first assigns ``attr``."""
        frames = self.tracker.frames
        for c in self.mro(cls_fq):
            if frames:
                frames[-1].add(f"{ATTR_KEY}{c.fq}.{attr}")
            if attr in c.attr_types or attr in c.facts.fields:
                return c.fq
        for c in self.mro(cls_fq):
            self.tracker.note(c.module.module)  # its methods, however many
            for q in c.facts.methods.values():
                fn = self.functions.get(f"{c.module.module}.{q}")
                if fn and any(
                    e.kind == K.WRITE and e.ref == f"self.{attr}" for e in fn.facts.events
                ):
                    return c.fq
        return cls_fq

    def _infer_attr_types(self, ci: ClassInfo) -> None:
        m = ci.module
        for attr, t in ci.facts.attr_types.items():
            ci.attr_types[attr] = self.resolve(m, t)
        # self.x = T(...) / self.x = param (annotated) in the methods, __init__ first
        names = sorted(ci.facts.methods, key=lambda n: (n != "__init__", n))
        write = K.WRITE
        for name in names:
            fn = self.functions.get(f"{m.module}.{ci.facts.methods[name]}")
            if fn is None:
                continue
            params: dict[str, str] | None = None
            elements: dict[str, str] = {}
            for e in fn.facts.events:
                if e.kind != write or not e.ref.startswith("self.") or e.ref.count(".") != 1:
                    continue
                if params is None:  # (a method that writes no attribute needs neither)
                    params = {p.name: p.annotation for p in fn.facts.params}
                    elements = {p.name: p.element for p in fn.facts.params if p.element}
                attr = e.ref[5:]
                if attr in ci.attr_types or e.value is None:
                    continue
                v = e.value
                if v.kind == "call" and v.ref:
                    t = self.resolve(m, v.ref)
                    if t in self.classes or _looks_like_type(t):
                        ci.attr_types[attr] = t
                elif v.kind == "name" and params.get(v.ref):
                    ci.attr_types[attr] = self.resolve(m, params[v.ref])
                if v.kind == "name" and v.ref in elements and attr + "[]" not in ci.attr_types:
                    ci.attr_types[attr + "[]"] = self.resolve(m, elements[v.ref])

    # -- evaluation ---------------------------------------------------------------------------
    def nested_qualnames(self, fn: Fn, limit: int | None = None) -> list[str]:
        """Qualnames of the functions nested in ``fn``, at any depth, nearest first (a
        decorator factory's decorator's wrapper; a producer closure), at most ``limit``."""
        out: list[str] = []
        todo = list(fn.facts.nested)
        while todo and (limit is None or len(out) < limit):
            q = todo.pop(0)
            out.append(q)
            inner = self.functions.get(f"{fn.module.module}.{q}")
            if inner is not None:
                todo.extend(inner.facts.nested)
        return out

    def method_fn(self, fn: Fn) -> str | None:
        """The fully qualified class a function is a method of (nested functions: their
        enclosing method's class)."""
        c = fn.facts.cls
        return f"{fn.module.module}.{c}" if c else None

    def nested_named(self, fn: Fn, name: str) -> Fn | None:
        cur: Fn | None = fn
        while cur is not None:
            for q in cur.facts.nested:
                if q.rsplit(".", 1)[-1] == name:
                    return self.functions.get(f"{cur.module.module}.{q}")
            parent = cur.facts.parent
            cur = self.functions.get(f"{cur.module.module}.{parent}") if parent else None
        return None

    def eval(self, ctx: Ctx, ref: str, depth: int = 0) -> Val:
        """What ``ref`` evaluates to in ``ctx``. Top-level evaluations are memoized (half of
        them repeat: several rules ask about the same receiver in the same function); the
        index does not change once built, so neither does the answer."""
        if depth == 0:
            key = (ctx.fn.fq, ctx.recv, ctx.bindings, ref)
            memo = self._evals
            found = memo.values.get(key, _MISS)  # (``Memo.get`` written out)
            if found is _MISS:
                memo.start(key, None)
                found = memo.finish(key, self._eval(ctx, ref, 0))
            elif self.tracker.frames:
                deps = memo.deps.get(key)
                if deps:
                    self.tracker.frames[-1].update(deps)
            return found  # type: ignore[no-any-return]
        return self._eval(ctx, ref, depth)

    def eval_member(self, ctx: Ctx, ref: str, recv: str, name: str) -> Val:
        """``eval(ctx, ref)`` for ``ref`` = ``recv.name`` (a plain last name) whose receiver
        was just evaluated: the walk of ``ref`` is the walk of ``recv`` and then one attribute
        (the container case of :meth:`_walk` looks at the segment after a name, and
        ``name`` has none), so the receiver's value is taken from its memo instead of being
        evaluated again. Memoized as :meth:`eval` is, with the receiver's reads in the entry's."""
        if ref.startswith(("lambda:", "partial:")):
            return self.eval(ctx, ref)
        key = (ctx.fn.fq, ctx.recv, ctx.bindings, ref)
        found = self._evals.get(key)
        if found is MISS:
            self._evals.start(key, None)
            # (a hit: its reads are noted in this entry's)
            found = self._evals.finish(key, self._attr(self.eval(ctx, recv), name))
        return found  # type: ignore[no-any-return]

    def _eval(self, ctx: Ctx, ref: str, depth: int) -> Val:
        if not ref or depth > 12:
            return None
        mod = ctx.fn.module
        if ref.startswith("lambda:"):
            fn = self.functions.get(f"{mod.module}.{ref[7:]}")
            return FuncVal(fn.fq, ctx.recv) if fn else None
        if ref.startswith("partial:"):
            parts = ref[8:].split("|")
            inner = self.eval(ctx, parts[0], depth + 1)
            if not isinstance(inner, FuncVal):
                return None
            pre: list[Val] = list(inner.pre_args)
            kws: list[tuple[str, Val]] = list(inner.pre_kwargs)
            for p in parts[1:]:
                k, eq, v = p.partition("=")
                if eq and k.isidentifier():
                    kws.append((k, self.eval(ctx, v, depth + 1)))
                else:
                    pre.append(self.eval(ctx, p, depth + 1))
            return FuncVal(inner.fq, inner.recv, tuple(pre), tuple(kws))
        if ref.startswith("global:"):
            ref = ref[7:]
            t = mod.global_types.get(ref.split(".", 1)[0])
            segs = split_ref(ref)
            if t and not segs[0].endswith(("()", "[]")):
                val: Val = self._instantiate(self._global_value(mod, t))
                return self._walk(ctx, val, segs[1:], depth)
        segs = split_ref(ref)
        head = segs[0]
        name = head.rstrip("()[]")
        suffix = head[len(name) :]
        val = self._head(ctx, name, depth)
        val = self._suffix(val, suffix)
        return self._walk(ctx, val, segs[1:], depth)

    def _global_value(self, mod: ModuleFacts, t: str) -> Val:
        fq = self.resolve(mod, t)
        if fq in self.classes:
            return ClassObj(fq)
        if fq in self.functions:
            return FuncVal(fq)
        return ExtName(fq)

    def _instantiate(self, v: Val) -> Val:
        if isinstance(v, ClassObj):
            return Inst(v.fq)
        if isinstance(v, ExtName):
            return Inst(v.fq)
        return None

    def _head(self, ctx: Ctx, name: str, depth: int) -> Val:
        fn = ctx.fn
        if name == "self":
            return Inst(ctx.recv) if ctx.recv else None
        if name == "cls":
            return ClassObj(ctx.recv) if ctx.recv else None
        found, v = ctx.bound(name)
        if found:
            return v
        for p in fn.facts.params:
            if p.name == name:
                return Inst(self.resolve(fn.module, p.annotation)) if p.annotation else None
        nested = self.nested_named(fn, name)
        if nested is not None:
            return FuncVal(nested.fq, ctx.recv)
        v2 = self._first_locals(fn).get(name)
        if v2 is not None:
            if v2.kind == "call":
                if v2.ref.endswith((".get", ".pop", ".setdefault")):
                    # an element of a container attribute (``s = self.sessions.get(k)``)
                    return self.eval(ctx, v2.ref + "()", depth + 1)
                return self._call_result(self.eval(ctx, v2.ref, depth + 1))
            if v2.kind in ("name", "attr") and v2.ref != name:
                return self.eval(ctx, v2.ref, depth + 1)
            if v2.kind == "iter" and v2.ref:
                return self._element(ctx, v2.ref, depth + 1)
            return None
        # a closure variable of an enclosing function
        if fn.facts.parent:
            parent = self.functions.get(f"{fn.module.module}.{fn.facts.parent}")
            if parent is not None:
                return self._head(Ctx(parent, ctx.recv), name, depth + 1)
        t = fn.module.global_types.get(name)
        if t:  # a module variable: X = ContextVar(...), LOCK = threading.Lock()
            return self._instantiate(self._global_value(fn.module, t))
        fq = self.resolve(fn.module, name)
        if fq in self.classes:
            return ClassObj(fq)
        if fq in self.functions:
            return FuncVal(fq)
        return self._module_var(fq) or ExtName(fq)

    def _module_var(self, fq: str) -> Val:
        """A typed variable of another project module, imported (``from pkg import
        event_store`` where ``pkg/__init__.py`` has ``event_store = ContextVar(...)``)."""
        mod_name, _, var = fq.rpartition(".")
        mod = self.modules.get(mod_name)
        if mod is None:
            return None
        tracker = self.tracker
        if tracker.frames:  # that module variable added or retyped changes the answer
            tracker.frames[-1].add(GLOBAL_VAR_KEY + fq)
        t = mod.global_types.get(var)
        return self._instantiate(self._global_value(mod, t)) if t else None

    def _first_locals(self, fn: Fn) -> dict[str, Value]:
        """Local name -> the value of its first assignment in ``fn`` (built once per function)."""
        found = self._locals.get(fn.fq)
        if found is None:
            found = {}
            for e in fn.facts.events:
                if e.kind == K.LOCAL and e.value is not None and e.ref not in found:
                    found[e.ref] = e.value
            self._locals[fn.fq] = found
        return found

    def _suffix(self, val: Val, suffix: str) -> Val:
        for ch in suffix.replace("()", "c").replace("[]", "s"):
            if ch == "c":
                val = self._call_result(val)
            elif not isinstance(val, ClassObj):  # ``Deps[T]``: a generic class is still it
                val = None
        return val

    def _call_result(self, val: Val) -> Val:
        if isinstance(val, (ClassObj, ExtName)):
            return Inst(val.fq)
        if isinstance(val, FuncVal):
            fn = self.functions.get(val.fq)
            ret = fn.facts.returns_annotation if fn else ""
            if fn and ret:
                return Inst(self.resolve(fn.module, ret))
            if fn and val.recv and is_property(fn.facts):
                return self._returned_attr(fn, val.recv)
        return None

    def _returned_attr(self, fn: Fn, recv: str) -> Val:
        """An unannotated property that returns one attribute of its object (``return
        self._condition``, made lazily in the property): that attribute's type."""
        attr = returned_self_attr(fn)
        t = self.attr_type(recv, attr) if attr else ""
        return Inst(t) if t else None

    def _element(self, ctx: Ctx, ref: str, depth: int) -> Val:
        """What iterating ``ref`` gives, when ``ref`` is an attribute annotated as a container
        of one class (``for a in self.adapters.values()``, ``self.adapters: dict[str,
        Adapter]``)."""
        if ref.endswith(".values()"):
            ref = ref[: -len(".values()")]
        segs = split_ref(ref)
        if len(segs) < 2 or segs[-1].endswith(("()", "[]")):
            return None
        owner = self.eval(ctx, ".".join(segs[:-1]), depth)
        if isinstance(owner, (Inst, ClassObj)) and owner.fq in self.classes:
            t = self.attr_type(owner.fq, segs[-1] + "[]")
            return Inst(t) if t else None
        return None

    def _walk(self, ctx: Ctx, val: Val, segs: list[str], depth: int) -> Val:
        for i, seg in enumerate(segs):
            name = seg.rstrip("()[]")
            suffix = seg[len(name) :]
            nxt = segs[i + 1] if i + 1 < len(segs) else ""
            if (
                isinstance(val, Inst)
                and val.fq in self.classes
                and (suffix.startswith("[]") or nxt in ("get()", "pop()", "setdefault()"))
                and self.find_method(val.fq, name) is None
            ):
                # an element of a container attribute: ``self.x[k]``, ``self.x.get(k)``
                t = self.attr_type(val.fq, name + "[]")
                if t:
                    val = Inst(t)
                    if suffix.startswith("[]"):
                        val = self._suffix(val, suffix[2:])
                    else:
                        return self._walk(ctx, val, segs[i + 2 :], depth)
                    continue
            val = self._attr(val, name)
            val = self._suffix(val, suffix)
            if val is None:
                return None
        return val

    def _attr(self, val: Val, name: str) -> Val:
        if isinstance(val, Inst):
            if val.fq in self.classes:
                m = self.find_method(val.fq, name)
                if m is not None:
                    if is_property(m.facts):
                        return self._call_result(FuncVal(m.fq, val.fq))
                    return FuncVal(m.fq, val.fq)
                t = self.attr_type(val.fq, name)
                return Inst(t) if t else None
            return None
        if isinstance(val, ClassObj):
            m = self.find_method(val.fq, name)
            if m is not None:
                return FuncVal(m.fq, val.fq)
            t = self.attr_type(val.fq, name)
            return Inst(t) if t else None
        if isinstance(val, ExtName):
            fq = self.canonical(f"{val.fq}.{name}")
            if fq in self.classes:
                return ClassObj(fq)
            if fq in self.functions:
                return FuncVal(fq)
            return self._module_var(fq) or ExtName(fq)
        return None

    def callable_targets(self, ctx: Ctx, ref: str) -> list[tuple[Fn, Ctx, FuncVal]]:
        """Project functions a call of ``ref`` may run, each with the context it runs in
        (receiver class); virtual calls on a declared base type fan out to overrides."""
        out: list[tuple[Fn, Ctx, FuncVal]] = []
        segs = split_ref(ref)
        if len(segs) >= 2 and not segs[-1].endswith(("()", "[]")):
            recv_ref = ".".join(segs[:-1])
            recv_val = self.eval(ctx, recv_ref)
            if isinstance(recv_val, Inst) and recv_val.fq in self.classes:
                for fn, c in self.dispatch(recv_val.fq, segs[-1]):
                    fv = FuncVal(fn.fq, c)
                    out.append((fn, Ctx(fn, c), fv))
                return out
            v = self.eval_member(ctx, ref, recv_ref, segs[-1])
        else:
            prefix = dynamic_prefix(ctx.fn.facts, ref) if ctx.recv in self.classes else ""
            if prefix and ctx.recv is not None:
                # ``handler = getattr(self, f"_tool_{name}")``, then ``await handler(...)``:
                # any method of the receiver's class of that prefix
                names = {
                    n for ci in self.mro(ctx.recv) for n in ci.facts.methods if n.startswith(prefix)
                }
                for n in sorted(names - {prefix}):
                    for fn, c in self.dispatch(ctx.recv, n):
                        out.append((fn, Ctx(fn, c), FuncVal(fn.fq, c)))
                return out
            v = self.eval(ctx, ref)
        if isinstance(v, FuncVal):
            target = self.functions.get(v.fq)
            if target is not None:
                recv = v.recv if target.facts.cls else None
                out.append((target, Ctx(target, recv), v))
        elif isinstance(v, ClassObj):
            init = self.find_method(v.fq, "__init__")
            if init is not None:
                fv = FuncVal(init.fq, v.fq)
                out.append((init, Ctx(init, v.fq), fv))
        return out

    def bind_args(self, target: Fn, fv: FuncVal, args: tuple[str, ...], caller: Ctx) -> Ctx:
        """The context a call runs in: parameters bound to the evaluated arguments."""
        params = list(target.facts.params)
        if target.facts.cls and target.facts.parent is None and fv.recv is not None:
            decos = {d.rsplit(".", 1)[-1] for d in target.facts.decorators}
            if "staticmethod" not in decos and params:
                params = params[1:]
        positional: list[Val] = list(fv.pre_args)
        keywords: list[tuple[str, Val]] = list(fv.pre_kwargs)
        for a in args:
            k, eq, v = a.partition("=")
            if eq and (k.isidentifier() or k == "**") and not a.startswith(("lambda:", "partial:")):
                if k != "**":
                    keywords.append((k, self.eval(caller, v)))
            elif a.startswith("*"):
                positional.append(None)
            else:
                positional.append(self.eval(caller, a) if a != "const" else None)
        bindings: list[tuple[str, Val]] = []
        pos_params = [p for p in params if p.kind == "pos"]
        for param, val in zip(pos_params, positional, strict=False):
            if val is not None:
                bindings.append((param.name, val))
        names = {param.name for param in params}
        for k, kval in keywords:
            if k in names and kval is not None:
                bindings.append((k, kval))
        return Ctx(target, fv.recv if target.facts.cls else None, tuple(bindings))


def returned_self_attr(fn: Fn) -> str:
    """The one attribute of its object that ``fn`` returns, on every path (``return
    self._event_queue``: a getter, a property made lazily), or ``""``."""
    refs = set(fn.facts.returns_refs)
    if len(refs) != 1:
        return ""
    segs = split_ref(refs.pop())
    if len(segs) != 2 or segs[0] != "self" or segs[1].endswith(("()", "]")):
        return ""
    return segs[1]


def _namespace_aliases(modules: Iterable[ModuleFacts]) -> dict[str, str]:
    """Dotted names that reach a top-level module or package through the directories above
    it, when those have no ``__init__.py`` (PEP 420 namespace packages): ``openhands.sdk`` for
    the package ``sdk`` at ``openhands-sdk/openhands/sdk/__init__.py``. Only identifiers are
    names; the first directory that is not one ends the chain. A real module of the same name
    wins."""
    out: dict[str, str] = {}
    names = set()
    tops: list[ModuleFacts] = []
    for m in modules:
        names.add(m.module)
        if "." not in m.module and "#" not in m.module:
            tops.append(m)
    for m in sorted(tops, key=lambda m: m.path):
        segs = m.path.replace("\\", "/").split("/")
        is_pkg = segs[-1] == "__init__.py"
        above = segs[:-2] if is_pkg else segs[:-1]
        prefix = m.module
        for seg in reversed(above):
            if not seg.isidentifier() or keyword.iskeyword(seg):
                break
            prefix = f"{seg}.{prefix}"
            if prefix not in names:
                out.setdefault(prefix, m.module)
    return out


def _accepts(have: Fn, want: Fn) -> bool:
    """Can ``have`` be called the way the protocol method ``want`` is declared: every named
    parameter of ``want`` is one of ``have``'s (or ``have`` takes ``**kwargs``/``*args``)?
    Names only: a class whose ``run(self, ctx)`` shares a method name with a protocol's
    ``run(self, command, shell)`` does not implement it."""
    if any(p.kind in ("vararg", "kwarg") for p in have.facts.params):
        return True
    names = {p.name for p in have.facts.params[1:]}
    return all(p.name in names for p in want.facts.params[1:] if p.kind in ("pos", "kwonly"))


def is_property(f: FunctionFacts) -> bool:
    return any(
        d.rsplit(".", 1)[-1] in ("property", "cached_property", "getter") for d in f.decorators
    )


def _looks_like_type(fq: str) -> bool:
    last = fq.rsplit(".", 1)[-1]
    return bool(last) and (last[0].isupper() or last in _LOCK_FACTORIES)


_LOCK_FACTORIES = {"allocate_lock", "Lock", "RLock"}


def is_kw(arg: str) -> bool:
    """A keyword argument's ref (``name=ref``, ``**=ref``), not a lambda's or partial's."""
    k, eq, _ = arg.partition("=")
    return (
        bool(eq) and (k.isidentifier() or k == "**") and not arg.startswith(("lambda:", "partial:"))
    )
