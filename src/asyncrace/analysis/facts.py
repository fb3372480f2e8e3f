"""Plain facts extracted once per file. They hold no syntax-tree nodes, so they pickle, cache and
cross process boundaries cheaply; every rule queries them (through the project index), and no
rule ever parses source again.

Expressions are summarised as *refs*: the dotted text of a name/attribute chain as written
(``self._running``, ``asyncio.to_thread``, ``asyncio.get_running_loop().run_in_executor``), with
``()`` after a call and ``[]`` after a subscript inside a chain; ``""`` for anything else.
Special refs: ``lambda:<qualname>`` (a lambda, whose body is a function of its own), ``const``
(a literal), ``global:<NAME>`` (a module-level variable).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, fields
from enum import IntEnum
from typing import Any, TypeVar

_T = TypeVar("_T")


def compact_pickle(cls: type[_T]) -> type[_T]:
    """Pickle as (class, field values): half the size and time of pickling slotted dataclasses
    field by field, which matters when worker processes send facts back."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        return (cls, tuple(getattr(self, n) for n in names))

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


# (row, column, end row, end column): rows 1-based, columns 1-based in characters
Pos = tuple[int, int, int, int]


def reachable(f: FunctionFacts, starts: Iterable[int], avoid: Collection[int] = ()) -> set[int]:
    """The events reached from ``starts`` along the control-flow graph (one edge or more: a
    start is in the set only if a path leads back to it), never entering ``avoid``."""
    seen: set[int] = set()
    todo = [n for s in starts for n in f.events[s].succ]
    while todo:
        i = todo.pop()
        if i in seen or i in avoid:
            continue
        seen.add(i)
        todo.extend(f.events[i].succ)
    return seen


_S = TypeVar("_S")


def walk(
    f: FunctionFacts, start: _S, step: Callable[[int, _S], Iterable[tuple[int, _S]]]
) -> set[tuple[int, _S]]:
    """Every (event, state) the control-flow graph reaches from the entry in state ``start``,
    carrying a small state along the edges: ``step(event, state)`` gives the successors with
    the state each gets (none: the walk stops there)."""
    seen: set[tuple[int, _S]] = set()
    todo = [(0, start)]
    while todo:
        node = todo.pop()
        if node in seen:
            continue
        seen.add(node)
        todo.extend(step(*node))
    return seen


def inside(inner: Pos, outer: Pos) -> bool:
    """Is the span ``inner`` within ``outer`` (both ends included)?"""
    return (inner[0], inner[1]) >= (outer[0], outer[1]) and (inner[2], inner[3]) <= (
        outer[2],
        outer[3],
    )


class K(IntEnum):
    """Event kinds. Every event is a node of its function's control-flow graph."""

    ENTRY = 0
    EXIT = 1
    NOP = 2  # a join or a branch target
    AWAIT = 3  # await expr, ``async for`` step, ``async with`` enter/exit
    READ = 4  # load of self.X / cls.X / a module variable
    WRITE = 5  # store to self.X / cls.X / a module variable (``global``)
    CALL = 6
    SETITEM = 7  # container[key] = value
    DELITEM = 8  # del container[key]
    # an ``if``/``while``/``match`` test; succ = [true target, false target]; ``name``:
    # "compound:and" for an ``and`` test (or a negated ``or``: its true branch says every
    # atom holds), "compound:or" for an ``or`` test (or a negated ``and``: its false branch
    # says none holds), "if:<param>" / "if:not <param>" for a test of a
    # parameter's truth (``if defer:``), "local:<name>|<branch>" for a test of whether a plain
    # local holds anything (``if task is not None:``; the branch taken where it holds nothing),
    # "member:<container>|<param>|<branch>" for a test of a parameter's membership of a
    # container the function does not bind (``if self in being_called:``; the branch taken
    # where it is absent)
    BRANCH = 9
    YIELD = 10
    RETURN = 11
    RAISE = 12
    LOCAL = 13  # assignment to a local name (ref = the name)


class Bind(IntEnum):
    """Where a call's result goes."""

    NONE = 0  # discarded (expression statement) or used in an unsummarised way
    AWAITED = 1  # directly awaited: ``await f()``
    LOCAL = 2  # assigned to a local: ``x = f()`` (``name`` holds the local)
    ATTR = 3  # assigned to an attribute: ``self.x = f()`` / ``obj.x = f()``
    ITEM = 4  # stored in a container slot: ``d[k] = f()``
    ARG = 5  # passed as an argument of another call (``create_task(f())``)
    RETURNED = 6
    YIELDED = 7


@compact_pickle
@dataclass(slots=True)
class Value:
    """Summary of an assigned expression."""

    kind: str  # "const", "name", "attr", "call", "iter" (a loop variable), "comp" (a
    # comprehension's variable: its own scope, an element of what it iterates), "other"
    ref: str = ""  # the name/attr ref; the callee ref of a call (awaited or not); for a
    # constant, "falsy" (None, False, 0, empty) or "truthy"
    names: tuple[str, ...] = ()  # every plain name loaded in the expression
    # a str, int or bool constant: its ``repr``; an enum member (``State.IDLE``, kind "attr"):
    # its dotted name (value guards compare it)
    literal: str = ""


@compact_pickle
@dataclass(slots=True)
class Event:
    kind: K
    pos: Pos
    ref: str = ""  # what the event is about (see the module docstring)
    # CALL: positional argument refs, then ``name=ref`` for keywords (``name=const:True`` or
    # ``name=const:False`` for a flag passed by name); SETITEM: (key ref,); BRANCH of an
    # ``and``/``or`` test: its atoms that are parameters, ``p`` or ``not p``
    args: tuple[str, ...] = ()
    bind: Bind = Bind.NONE  # CALL: where the result goes
    # CALL bound to LOCAL/ATTR/ITEM: the target ref; AWAIT: "await"/"async for"/..; WRITE of
    # an augmented assignment: its operator ("+=", "-=", ...)
    name: str = ""
    # WRITE / LOCAL / SETITEM: the stored value; CALL: the plain names packed in tuple, list,
    # set or dict displays among the arguments (``stack.append((span, token))``), or None
    value: Value | None = None
    # BRANCH: guard atoms as "ref|absent_branch|test kind|key names" (absent_branch 0 = true,
    # 1 = false; key names: the plain names a membership test's key is made of, comma-separated)
    guards: tuple[str, ...] = ()
    regions: tuple[int, ...] = ()  # enclosing ``with`` regions (innermost last)
    handler: int = -1  # index of the innermost enclosing try's handler entry, -1 if none
    repeated: bool = False  # inside a loop body or a comprehension: may run many times
    in_except: bool = False  # inside an ``except`` body: runs only when something failed
    # where to point a reader: a call over several lines is shown as ``callee(`` only, while
    # ``pos`` keeps the whole call (containment of its arguments depends on it)
    show: Pos | None = None
    succ: list[int] = field(default_factory=list)


@compact_pickle
@dataclass(slots=True)
class Region:
    """One ``with`` / ``async with`` item: a candidate lock region."""

    ref: str  # the context expression's ref
    is_async: bool
    pos: Pos  # the item's position
    first: int  # first event index inside the body
    last: int  # one past the last event index inside the body


@compact_pickle
@dataclass(slots=True)
class Handler:
    """One ``except`` clause of a ``try``."""

    types: tuple[str, ...]  # refs of the exception types caught; () for a bare ``except:``
    first: int  # first event index of the handler (its type, its name, its body)
    last: int  # one past its last event index


@compact_pickle
@dataclass(slots=True)
class Try:
    """One ``try`` statement: the events of each part, and what each handler catches."""

    pos: Pos  # the ``try`` keyword's statement
    first: int  # first event index of the body (the events its handlers catch)
    body_end: int  # one past the body's last event index; the ``else`` block follows
    else_end: int  # one past the ``else`` block's last event index
    handlers: tuple[Handler, ...]
    final_first: int = -1  # the ``finally`` body's first event index, -1 if none
    final_last: int = -1  # one past its last event index


@compact_pickle
@dataclass(slots=True)
class Param:
    name: str
    annotation: str = ""  # ref of the annotation (string annotations parsed), "" if none
    kind: str = "pos"  # "pos", "kwonly", "vararg", "kwarg"
    element: str = ""  # for a container annotation, the ref of the class it holds
    # its default: "" none, "truthy"/"falsy" for a constant (``flag: bool = False``), "other"
    default: str = ""


@compact_pickle
@dataclass(slots=True)
class FunctionFacts:
    qualname: str  # module-relative: "Class.method", "func", "Class.method.<locals>.inner"
    name: str
    cls: str | None  # module-relative qualname of the class it is a method of
    parent: str | None  # enclosing function's qualname for nested functions and lambdas
    is_async: bool
    is_generator: bool
    is_lambda: bool
    decorators: tuple[str, ...]
    params: tuple[Param, ...]
    pos: Pos  # the ``def`` line (name span)
    events: list[Event]
    regions: list[Region]
    globals_declared: tuple[str, ...] = ()
    nested: tuple[str, ...] = ()  # qualnames of functions/lambdas defined directly inside
    # refs of returned expressions (calls as "callee()", ``return None`` as "None", "" for
    # an expression of no ref)
    returns_refs: tuple[str, ...] = ()
    returns_annotation: str = ""  # ref of the return annotation
    # a function defined again under the same name in the same scope (``if hasattr(os, "x"):
    # def make_lock(): ... else: def make_lock(): ...``): what each earlier definition returns,
    # a returned local replaced by the call first assigned to it (``"threading.Lock()"``)
    earlier_returns: tuple[tuple[str, ...], ...] = ()
    tries: list[Try] = field(default_factory=list)  # in the order their ``try`` starts
    # in a method: the locals bound only to ``getattr(self, f"<prefix>{...}")``, with their
    # prefixes (a call of one runs a method of ``self`` got by name: ``dynamic_prefix``)
    dispatch: tuple[tuple[str, str], ...] = ()


@compact_pickle
@dataclass(slots=True)
class ClassFacts:
    qualname: str  # module-relative
    name: str
    bases: tuple[str, ...]  # refs as written
    pos: Pos
    methods: dict[str, str]  # method name -> function qualname
    # attribute -> type ref: ``x: T`` in the body, ``self.x: T``, ``self.x = T(...)``,
    # ``self.x = param`` with ``param: T``
    attr_types: dict[str, str]
    fields: tuple[str, ...]  # annotated class-level names, in order (dataclass fields)
    decorators: tuple[str, ...]
    abstract: bool  # defines an @abstractmethod


@compact_pickle
@dataclass(slots=True)
class ModuleFacts:
    path: str  # display path
    module: str  # dotted module name
    imports: dict[str, str]  # local name -> fully qualified dotted name
    classes: dict[str, ClassFacts]
    functions: dict[str, FunctionFacts]
    global_types: dict[str, str]  # module variable -> type ref (``X = T(...)`` / ``X: T``)
    global_vars: tuple[str, ...]  # names assigned at module level (not defs/classes/imports)
    # refs passed as call arguments outside function bodies: decorators, default values
    # (``Depends(get_db)``), module-level statements
    passed: tuple[str, ...] = ()
    # the attribute names the bodies read off another object than ``self``/``cls`` (``c.ready``,
    # ``self.client.ready``, ``getattr(c, "ready")``): who reads an object's public state
    attr_reads: tuple[str, ...] = ()


def dynamic_prefix(f: FunctionFacts, ref: str) -> str:
    """The name prefix of the methods a local callable may be: every binding of ``ref`` is
    ``getattr(self, f"_tool_{name}", ...)`` (or ``"do_" + cmd``), in a method: ``"_tool_"``;
    "" otherwise. A call of the local (``await handler(arguments)``) runs one of the methods of
    ``self``'s class whose name starts so: a dispatch by name."""
    for local, prefix in f.dispatch:
        if local == ref:
            return prefix if f.parent is None else ""
    return ""


def dynamic_names(m: ModuleFacts, f: FunctionFacts, e: Event) -> list[str]:
    """The methods of the module's class of ``f`` a call ``e`` of a local may run by name
    (:func:`dynamic_prefix`); [] for any other call."""
    if e.kind != K.CALL or "." in e.ref or not e.ref or f.cls is None:
        return []
    prefix = dynamic_prefix(f, e.ref)
    c = m.classes.get(f.cls) if prefix else None
    if c is None:
        return []
    return sorted(n for n in c.methods if n.startswith(prefix) and n != prefix)
