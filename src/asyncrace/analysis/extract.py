"""Extract :mod:`asyncrace.analysis.facts` from one file: one parse, one pass.

The parser is CPython's own (``ast``): it is the definition of what Python accepts, it is an
order of magnitude faster than a concrete syntax tree, and it gives every node its position for
free (see docs/architecture.md for the measurements). Code written for a newer Python than the
one running asyncrace is first lowered with libcst (:mod:`asyncrace.analysis.lower`).

Each function becomes a list of events in evaluation order (the value of an assignment before
its target, arguments before the call, the call before its ``await``) linked into a small
control-flow graph: branches, loops with back edges, ``try``/``except``/``finally``, early
returns, ``break``/``continue``. Nested functions and lambdas get facts of their own: their
bodies are not part of the enclosing coroutine's sequence.
"""

from __future__ import annotations

import ast
import bisect
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from asyncrace.analysis.facts import (
    Bind,
    ClassFacts,
    Event,
    FunctionFacts,
    Handler,
    K,
    ModuleFacts,
    Param,
    Pos,
    Region,
    Try,
    Value,
)
from asyncrace.sources import split_lines

_FuncNode = ast.FunctionDef | ast.AsyncFunctionDef
_ANY_FUNC = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_MUTATING_CONST = (ast.List, ast.Tuple, ast.Set)
# identity wrappers: ``cast(T, x)`` and ``assert_type(x, T)`` return ``x``
_CAST = frozenset({"typing.cast", "typing_extensions.cast"})
_ASSERT_TYPE = frozenset({"typing.assert_type", "typing_extensions.assert_type"})
_DISPLAYS = (ast.Tuple, ast.List, ast.Set, ast.Dict)

# fields that never hold an expression, a statement or anything under them: the expression
# context, operators, comments
_LEAF_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "type_ignores"})
# list fields that may hold what is not a node: ``None`` (a dict display's ``**`` key), names
_MIXED_FIELDS = frozenset({"keys", "kwd_attrs", "names"})
_CHILD_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {}
# the child expressions of the commonest expressions, in ``ast.iter_child_nodes`` order
_EXPR_CHILDREN: dict[type, Callable[[Any], Sequence[ast.AST]]] = {
    ast.Subscript: lambda n: (n.value, n.slice),
    ast.Tuple: lambda n: n.elts,
    ast.List: lambda n: n.elts,
    ast.Set: lambda n: n.elts,
    ast.BinOp: lambda n: (n.left, n.right),
    ast.BoolOp: lambda n: n.values,
    ast.UnaryOp: lambda n: (n.operand,),
    ast.Compare: lambda n: (n.left, *n.comparators),
    ast.JoinedStr: lambda n: n.values,
    ast.Starred: lambda n: (n.value,),
    ast.Dict: lambda n: [*(k for k in n.keys if k is not None), *n.values],
}


def _default_factory(value: ast.expr | None) -> str:
    """``field(default_factory=asyncio.Queue)`` (dataclasses', attrs', pydantic's ``Field``):
    the ref of the callable that makes the field's value with no arguments, or ""."""
    if not isinstance(value, ast.Call) or ref_of(value.func).rpartition(".")[2] not in (
        "field",
        "Field",
        "attrib",
        "ib",
    ):
        return ""
    for kw in value.keywords:
        if kw.arg in ("default_factory", "factory") and isinstance(
            kw.value, (ast.Name, ast.Attribute)
        ):
            return ref_of(kw.value)
    return ""


def _child_fields(tp: type) -> tuple[tuple[str, bool], ...]:
    fields = _CHILD_FIELDS.get(tp)
    if fields is None:
        names = getattr(tp, "_fields", ())
        fields = _CHILD_FIELDS[tp] = tuple(
            (n, n in _MIXED_FIELDS) for n in names if n not in _LEAF_FIELDS
        )
    return fields


def _children(node: ast.AST) -> list[ast.AST]:
    """The child nodes of ``node`` in :func:`ast.iter_child_nodes` order, but for the
    expression contexts and operators, which hold nothing (fewer calls than that function)."""
    out: list[ast.AST] = []
    for name, mixed in _CHILD_FIELDS.get(type(node)) or _child_fields(type(node)):
        v = getattr(node, name, None)
        if type(v) is list:
            if mixed:
                out.extend([x for x in v if isinstance(x, ast.AST)])
            else:
                out.extend(v)
        elif isinstance(v, ast.AST):
            out.append(v)
    return out


_CONTAINERS = frozenset(
    {
        "list",
        "dict",
        "set",
        "frozenset",
        "tuple",
        "type",
        "List",
        "Dict",
        "Set",
        "FrozenSet",
        "Tuple",
        "Type",
        "Sequence",
        "Mapping",
        "MutableMapping",
        "MutableSequence",
        "Iterable",
        "Iterator",
        "AsyncIterator",
        "AsyncIterable",
        "Callable",
        "Awaitable",
        "Coroutine",
        "Generator",
        "AsyncGenerator",
        "defaultdict",
        "OrderedDict",
        "deque",
        "Literal",
    }
)


_AUG_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+=",
    ast.Sub: "-=",
    ast.Mult: "*=",
    ast.Div: "/=",
    ast.FloorDiv: "//=",
    ast.Mod: "%=",
    ast.Pow: "**=",
    ast.BitOr: "|=",
    ast.BitAnd: "&=",
    ast.BitXor: "^=",
    ast.LShift: "<<=",
    ast.RShift: ">>=",
    ast.MatMult: "@=",
}

# refs longer than this are not built: every call of a chain asks for its callee's ref, and a
# walk over the whole chain each time would make long chains quadratic
MAX_REF_PARTS = 64


def ref_of(node: ast.AST, recv: dict[str, str] | None = None) -> str:
    """Dotted text of a name/attribute chain; ``""`` when the expression is anything else."""
    parts: list[str] = []
    cur: ast.AST = node
    while True:
        if len(parts) > MAX_REF_PARTS:
            return ""  # a 2,000-link method chain names nothing a rule can use
        tp = type(cur)
        if tp is ast.Attribute:
            parts.append("." + cur.attr)  # type: ignore[attr-defined]
            cur = cur.value  # type: ignore[attr-defined]
        elif tp is ast.Call:
            parts.append("()")
            cur = cur.func  # type: ignore[attr-defined]
        elif tp is ast.Subscript:
            parts.append("[]")
            cur = cur.value  # type: ignore[attr-defined]
        elif tp is ast.Name:
            name = cur.id  # type: ignore[attr-defined]
            if recv is not None:
                name = recv.get(name, name)
            parts.append(name)
            break
        else:
            return ""
    # interned: a file says ``self._lock`` many times, and one string object for them all is
    # pickled once (pickle's memo) when a worker sends the facts back, and kept once
    return sys.intern("".join(reversed(parts)))


def _strip_optional(node: ast.expr) -> ast.expr | None:
    """``Optional[T]``, ``T | None``, ``Union[T, None]``, ``ClassVar[T]``, ``Final[T]`` -> T."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = node.left, node.right
        if isinstance(right, ast.Constant) and right.value is None:
            return _strip_optional(left)
        if isinstance(left, ast.Constant) and left.value is None:
            return _strip_optional(right)
        return None
    if isinstance(node, ast.Subscript):
        head = ref_of(node.value).rsplit(".", 1)[-1]
        if head in ("Optional", "ClassVar", "Final", "Annotated"):
            inner = node.slice
            if isinstance(inner, ast.Tuple) and inner.elts:
                inner = inner.elts[0]
            return _strip_optional(inner)
        if head in _CONTAINERS:
            return None
        if head and head != "Union":
            return node.value  # a generic class: ContextVar[int], Queue[str] -> the class
        if head == "Union" and not isinstance(node.slice, ast.Tuple):
            return _strip_optional(node.slice)  # ``Union['Crawler']``: one member
        if head == "Union" and isinstance(node.slice, ast.Tuple):
            rest = [
                e for e in node.slice.elts if not (isinstance(e, ast.Constant) and e.value is None)
            ]
            return _strip_optional(rest[0]) if len(rest) == 1 else None
        return None
    return node


def _type_alias(value: ast.expr) -> bool:
    """Is a module-level value a type alias: a forward reference (``'Crawler'``) or a union of
    one class (``Union['Crawler']``, ``Optional[Crawler]``)?"""
    if isinstance(value, ast.Constant):
        return isinstance(value.value, str) and value.value.replace(".", "").isidentifier()
    return isinstance(value, ast.Subscript) and ref_of(value.value).rsplit(".", 1)[-1] in (
        "Union",
        "Optional",
    )


def type_ref(ann: ast.expr | None) -> str:
    """The class an annotation names, as a ref; ``""`` for containers, unions, unknowns."""
    if ann is None:
        return ""
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            parsed = ast.parse(ann.value.strip(), mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return ""
        return type_ref(parsed)
    inner = _strip_optional(ann)
    if inner is None:
        return ""
    if isinstance(inner, ast.Constant) and isinstance(inner.value, str):
        return type_ref(inner)
    if isinstance(inner, (ast.Name, ast.Attribute)):
        r = ref_of(inner)
        # Any/object say nothing about the type: let the value speak instead
        return "" if r.rsplit(".", 1)[-1] in ("Any", "object") else r
    return ""


_MAPPINGS = frozenset(
    {
        "dict",
        "Dict",
        "Mapping",
        "MutableMapping",
        "defaultdict",
        "DefaultDict",
        "OrderedDict",
        "WeakValueDictionary",
    }
)
_SEQUENCES = frozenset(
    {
        "list",
        "List",
        "set",
        "Set",
        "frozenset",
        "FrozenSet",
        "deque",
        "Deque",
        "Sequence",
        "MutableSequence",
        "Iterable",
        "Collection",
        "AbstractSet",
        "MutableSet",
        "WeakSet",
    }
)


def element_type_ref(ann: ast.expr | None) -> str:
    """The class a container annotation holds: ``list[T]``, ``set[T]``, ``Sequence[T]``,
    ``tuple[T, ...]`` -> T; ``dict[K, V]`` and other mappings -> V (what ``.values()``,
    ``[k]`` and ``.get(k)`` give); ``""`` when it is no container of one class."""
    if ann is None:
        return ""
    if isinstance(ann, ast.Constant) and isinstance(ann.value, str):
        try:
            ann = ast.parse(ann.value.strip(), mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return ""
    inner: ast.expr | None = ann
    if isinstance(ann, ast.Subscript) and ref_of(ann.value).rsplit(".", 1)[-1] in (
        "Optional",
        "ClassVar",
        "Final",
        "Annotated",
    ):
        inner = (
            ann.slice.elts[0] if isinstance(ann.slice, ast.Tuple) and ann.slice.elts else ann.slice
        )
    elif isinstance(ann, ast.BinOp):
        inner = _strip_optional(ann)
    if not isinstance(inner, ast.Subscript):
        return ""
    head = ref_of(inner.value).rsplit(".", 1)[-1]
    args = inner.slice.elts if isinstance(inner.slice, ast.Tuple) else [inner.slice]
    if head in _MAPPINGS and len(args) == 2:
        return type_ref(args[1])
    if head in _SEQUENCES and len(args) == 1:
        return type_ref(args[0])
    if (
        head in ("tuple", "Tuple")
        and len(args) == 2
        and isinstance(args[1], ast.Constant)
        and args[1].value is Ellipsis
    ):
        return type_ref(args[0])
    return ""


def value_type(value: ast.expr | None) -> str:
    """The type a class-level default creates: ``T(...)``, or a dataclass
    ``field(default_factory=T)``."""
    if not isinstance(value, ast.Call):
        return ""
    callee = ref_of(value.func)
    if callee.rsplit(".", 1)[-1] in ("field", "Field"):
        for kw in value.keywords:
            if kw.arg == "default_factory":
                return ref_of(kw.value)
        return ""
    return callee


def _str_prefix(node: ast.expr) -> str:
    """The constant start of a string made at run time: ``f"_tool_{name}"`` or ``"do_" +
    cmd``: ``"_tool_"``; "" for anything else."""
    if isinstance(node, ast.JoinedStr) and len(node.values) >= 2:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = node.left
        if isinstance(left, ast.Constant) and isinstance(left.value, str):
            return left.value
    return ""


def _is_const(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, _MUTATING_CONST):
        return all(_is_const(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return not node.keys and not node.values
    if isinstance(node, ast.UnaryOp):
        return _is_const(node.operand)
    # dict(), list(), set(), asyncio.Event(), object(): a fresh empty value, not per-call
    return isinstance(node, ast.Call) and not node.args and not node.keywords


def _default(node: ast.expr | None) -> str:
    """A parameter's default as :attr:`Param.default` records it."""
    if node is None:
        return ""
    if isinstance(node, ast.Constant):
        return "truthy" if node.value else "falsy"
    return "other"


def _truthiness(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return "truthy" if node.value else "falsy"
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return "truthy" if node.elts else "falsy"
    if isinstance(node, ast.Dict):
        return "truthy" if node.keys else "falsy"
    if isinstance(node, ast.Call):  # dict(), list(), object(), asyncio.Event()
        last = ref_of(node.func).rsplit(".", 1)[-1]
        return "falsy" if last in ("dict", "list", "set", "tuple", "str", "int") else "truthy"
    return ""


def _literal(node: ast.expr) -> str:
    """``repr`` of a short str, int or bool constant (what a value guard compares), else ``""``."""
    if isinstance(node, ast.Constant) and type(node.value) in (str, int, bool):
        text = repr(node.value)
        if len(text) <= 64 and "|" not in text and "," not in text:
            return text
    return ""


_MEMBER = re.compile(r"[A-Z][A-Z0-9_]*")


def _member(node: ast.expr) -> str:
    """The dotted name of what reads as an enum member or a class constant
    (``StreamState.IDLE``, ``enums.State.CONNECTED``: an upper-case attribute of a capitalised
    class name), which a value guard compares as it compares a literal; else ``""``."""
    if not (isinstance(node, ast.Attribute) and _MEMBER.fullmatch(node.attr)):
        return ""
    parts = [node.attr]
    cur = node.value
    while isinstance(cur, ast.Attribute):
        parts.append(cur.attr)
        cur = cur.value
    if not isinstance(cur, ast.Name):
        return ""
    parts.append(cur.id)
    owner = parts[1]
    if not owner[:1].isupper() or len(parts) > 4:
        return ""
    return ".".join(reversed(parts))


def _names_in(node: ast.AST) -> tuple[str, ...]:
    out: list[str] = []
    stack: list[ast.AST] = [node]
    while stack:
        cur = stack.pop()
        tp = type(cur)
        if tp is ast.Name:
            if type(cur.ctx) is ast.Load:  # type: ignore[attr-defined]
                out.append(cur.id)  # type: ignore[attr-defined]
            continue
        if tp is ast.Constant or tp in _ANY_FUNC:
            continue
        stack.extend(_children(cur))
    return tuple(dict.fromkeys(out))


def _presence_test(test: ast.expr) -> tuple[str, int]:
    """The plain name a test asks the presence of (``x is None``, ``x is not None``, ``x``,
    ``not x``, negated any number of times), with the branch (0 true, 1 false) taken where it
    holds nothing; ``("", 0)`` for any other test."""
    negated = False
    while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        test, negated = test.operand, not negated
    present_when_true = True
    if (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], (ast.Is, ast.IsNot))
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value is None
    ):
        present_when_true = isinstance(test.ops[0], ast.IsNot)
        test = test.left
    if not isinstance(test, ast.Name):
        return "", 0
    empty_branch = 1 if present_when_true else 0
    return test.id, (1 - empty_branch) if negated else empty_branch


def _shared_guard_ref(r: str) -> bool:
    """``self.x``, ``cls.x`` or a module variable, one attribute deep: state a guard checks."""
    return (
        bool(r)
        and r.startswith(("self.", "cls.", "global:"))
        and r.count(".") <= 1
        and "(" not in r
        and "[" not in r
    )


def _packed_names(node: ast.expr, out: list[str]) -> None:
    """The plain names packed in a tuple/list/set/dict display (``(span, token)``), nested
    displays included; not the names inside calls or other expressions."""
    elts = [v for v in node.values if v is not None] if isinstance(node, ast.Dict) else []
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        elts = list(node.elts)
    for e in elts:
        if isinstance(e, ast.Starred):
            e = e.value
        if isinstance(e, ast.Name):
            out.append(e.id)
        elif isinstance(e, _DISPLAYS):
            _packed_names(e, out)


def _decorator_ref(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        r = ref_of(node.func)
        return r + "()" if r else ""
    return ref_of(node)


@dataclass
class _Finally:
    entry: int
    abrupt: bool = False
    # the ``break``/``continue`` that leave through it: (their loop, is it a break)
    jumps: list[tuple[_Loop, bool]] = field(default_factory=list)


@dataclass
class _Loop:
    head: int
    breaks: list[int] = field(default_factory=list)
    fin_depth: int = 0  # the finally blocks open around the loop (a jump out runs those inside)


class _Positions:
    """ast columns are UTF-8 byte offsets; diagnostics count characters."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: list[str] | None = None
        # the rows whose byte and character columns differ
        self.wide: frozenset[int] = (
            frozenset()
            if text.isascii()
            else frozenset(i for i, line in enumerate(self.lines, 1) if not line.isascii())
        )

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = split_lines(self.text)
        return self._lines

    def col(self, row: int, byte_col: int) -> int:
        if row in self.wide:
            line = self.lines[row - 1]
            return len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace")) + 1
        return byte_col + 1

    def of(self, node: ast.AST) -> Pos:
        row = getattr(node, "lineno", 1)
        end_row = getattr(node, "end_lineno", None) or row
        col = getattr(node, "col_offset", 0)
        end_col = getattr(node, "end_col_offset", None)
        if end_col is None:
            end_col = col
        if self.wide:
            return (row, self.col(row, col), end_row, self.col(end_row, end_col))
        return (row, col + 1, end_row, end_col + 1)


class _ModuleExtractor:
    def __init__(self, text: str, path: str, module: str, is_package: bool) -> None:
        self.path = path
        self.module = module
        self.is_package = is_package
        self.pos = _Positions(text)
        self.imports: dict[str, str] = {}
        self.classes: dict[str, ClassFacts] = {}
        self.functions: dict[str, FunctionFacts] = {}
        self.global_types: dict[str, str] = {}
        self.type_aliases: dict[str, str] = {}  # module-level alias -> the class ref it names
        self.global_vars: set[str] = set()
        self.passed: set[str] = set()
        self.attr_reads: set[str] = set()  # (``ModuleFacts.attr_reads``)
        self.walrus = ":=" in text
        # the rows that hold ``:=``: an expression spanning none of them binds no name by it
        self.walrus_rows = (
            [i for i, line in enumerate(self.pos.lines, 1) if ":=" in line] if self.walrus else []
        )
        # every name bound at module level (variables, imports, defs, classes)
        self.module_names: set[str] = set()

    def collect_passed(self, nodes: list[ast.expr]) -> None:
        """Names passed as call arguments in decorators, defaults and module statements."""
        stack: list[ast.AST] = list(nodes)
        while stack:
            cur = stack.pop()
            if isinstance(cur, ast.Call):
                for a in [*cur.args, *(k.value for k in cur.keywords)]:
                    r = ref_of(a)
                    if r and "(" not in r:
                        self.passed.add(r)
            if isinstance(cur, _ANY_FUNC):
                continue
            stack.extend(_children(cur))

    # -- imports ---------------------------------------------------------------------------
    def _package(self, level: int) -> str:
        base = self.module if self.is_package else self.module.rpartition(".")[0]
        for _ in range(level - 1):
            base = base.rpartition(".")[0]
        return base

    def add_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.imports[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    self.imports.setdefault(top, top)
            return
        if node.level:
            pkg = self._package(node.level)
            base = f"{pkg}.{node.module}" if node.module and pkg else (node.module or pkg)
        else:
            base = node.module or ""
        for alias in node.names:
            if alias.name == "*":
                continue
            self.imports[alias.asname or alias.name] = (
                f"{base}.{alias.name}" if base else alias.name
            )

    # -- module level ----------------------------------------------------------------------
    def run(self, tree: ast.Module) -> ModuleFacts:
        self._scan_globals(tree.body)
        self.module_names |= self.global_vars
        self._block(tree.body, prefix="", cls=None)
        # a type alias (``Crawler = Union['CrawlerType']``, ``Client: TypeAlias = AsyncClient``)
        # names the class it aliases, like an import of it (the aliased name is often imported
        # further down, under ``TYPE_CHECKING``)
        for name, target in sorted(self.type_aliases.items()):
            head, _, rest = target.partition(".")
            if not target or name in self.imports or name == head:
                continue
            if head in self.imports:
                self.imports[name] = self.imports[head] + (f".{rest}" if rest else "")
            elif head in self.classes and not rest:
                self.imports[name] = f"{self.module}.{head}"
        return ModuleFacts(
            path=self.path,
            module=self.module,
            imports=self.imports,
            classes=self.classes,
            functions=self.functions,
            global_types=self.global_types,
            global_vars=tuple(sorted(self.global_vars)),
            passed=tuple(sorted(self.passed)),
            attr_reads=tuple(sorted(self.attr_reads)),
        )

    def _scan_globals(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.module_names.add(stmt.name)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                for a in stmt.names:
                    self.module_names.add((a.asname or a.name).split(".", 1)[0])
            if isinstance(stmt, ast.Assign):
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        self.global_vars.add(t.id)
                        if isinstance(stmt.value, ast.Call):
                            r = ref_of(stmt.value.func)
                            if r:
                                self.global_types.setdefault(t.id, r)
                        elif _type_alias(stmt.value):
                            self.type_aliases.setdefault(t.id, type_ref(stmt.value))
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                if ref_of(stmt.annotation).rsplit(".", 1)[-1] == "TypeAlias" and stmt.value:
                    self.type_aliases.setdefault(stmt.target.id, type_ref(stmt.value))
                self.global_vars.add(stmt.target.id)
                t_ref = type_ref(stmt.annotation)
                if not t_ref and isinstance(stmt.value, ast.Call):
                    t_ref = ref_of(stmt.value.func)
                if t_ref:
                    self.global_types.setdefault(stmt.target.id, t_ref)
            elif isinstance(stmt, (ast.If, ast.Try)) or type(stmt).__name__ == "TryStar":
                for sub in ("body", "orelse", "finalbody"):
                    self._scan_globals(getattr(stmt, sub, []))
                for h in getattr(stmt, "handlers", []):
                    self._scan_globals(h.body)

    def _block(self, body: list[ast.stmt], prefix: str, cls: str | None) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.Expr, ast.Assign, ast.AnnAssign)) and stmt.value is not None:
                self.collect_passed([stmt.value])
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.add_import(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self._class(stmt, prefix)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._function(stmt, prefix, cls, parent=None, recv=None)
            elif isinstance(stmt, (ast.If, ast.Try, ast.With)) or type(stmt).__name__ == "TryStar":
                for sub in ("body", "orelse", "finalbody"):
                    self._block(getattr(stmt, sub, []), prefix, cls)
                for h in getattr(stmt, "handlers", []):
                    self._block(h.body, prefix, cls)

    def _class(self, node: ast.ClassDef, prefix: str) -> None:
        qual = f"{prefix}{node.name}"
        attr_types: dict[str, str] = {}
        fields: list[str] = []
        methods: dict[str, str] = {}
        abstract = False
        for stmt in node.body:
            if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                fields.append(stmt.target.id)
                t = type_ref(stmt.annotation) or value_type(stmt.value)
                if t:
                    attr_types.setdefault(stmt.target.id, t)
                e = element_type_ref(stmt.annotation)
                if e:  # what the container holds: ``x[]``
                    attr_types.setdefault(stmt.target.id + "[]", e)
                made = _default_factory(stmt.value)
                if made:  # ``field(default_factory=asyncio.Queue)``: what makes it, ``x()``
                    attr_types.setdefault(stmt.target.id + "()", made)
            elif isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
                for target in stmt.targets:
                    if isinstance(target, ast.Name):
                        r = ref_of(stmt.value.func)
                        if r:
                            attr_types.setdefault(target.id, r)
        cf = ClassFacts(
            qualname=qual,
            name=node.name,
            bases=tuple(ref_of(b) for b in node.bases if ref_of(b)),
            pos=self.pos.of(node),
            methods=methods,
            attr_types=attr_types,
            fields=tuple(fields),
            decorators=tuple(_decorator_ref(d) for d in node.decorator_list),
            abstract=False,
        )
        self.classes[qual] = cf
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                ff = self._function(stmt, qual + ".", qual, parent=None, recv=None)
                methods[stmt.name] = ff.qualname
                if any(d.rsplit(".", 1)[-1] == "abstractmethod" for d in ff.decorators):
                    abstract = True
            elif isinstance(stmt, ast.ClassDef):
                self._class(stmt, qual + ".")
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.add_import(stmt)
            elif isinstance(stmt, (ast.If, ast.Try)):
                self._block([stmt], qual + ".", qual)
        cf.abstract = abstract

    def _function(
        self,
        node: _FuncNode | ast.Lambda,
        prefix: str,
        cls: str | None,
        parent: FunctionFacts | None,
        recv: dict[str, str] | None,
    ) -> FunctionFacts:
        if not isinstance(node, ast.Lambda):
            args = node.args
            self.collect_passed(
                [*node.decorator_list, *args.defaults, *[d for d in args.kw_defaults if d]]
            )
        fb = _FunctionBuilder(self, node, prefix, cls, parent, recv)
        facts = fb.build()
        earlier = self.functions.get(facts.qualname)
        if earlier is not None and not facts.is_lambda:
            # defined again (one definition per branch of an ``if``): the last one is the
            # function, but what the earlier ones return is kept (a factory chosen at import)
            facts.earlier_returns = (*earlier.earlier_returns, _returned_calls(earlier))
        self.functions[facts.qualname] = facts
        return facts


def _returned_calls(f: FunctionFacts) -> tuple[str, ...]:
    """What ``f`` returns, a returned local replaced by the call first assigned to it."""
    first: dict[str, Value] = {}
    for e in f.events:
        if e.kind == K.LOCAL and e.value is not None:
            first.setdefault(e.ref, e.value)
    out: list[str] = []
    for r in f.returns_refs:
        v = first.get(r)
        if v is not None:
            r = v.ref + "()" if v.kind == "call" and v.ref else ""
        out.append(r)
    return tuple(out)


class _FunctionBuilder:
    def __init__(
        self,
        mx: _ModuleExtractor,
        node: _FuncNode | ast.Lambda,
        prefix: str,
        cls: str | None,
        parent: FunctionFacts | None,
        recv: dict[str, str] | None,
    ) -> None:
        self.mx = mx
        self.node = node
        self.cls = cls
        self.parent = parent
        pos = mx.pos.of(node)
        if isinstance(node, ast.Lambda):
            self.name = "<lambda>"
            self.qualname = f"{prefix}<lambda@{pos[0]}:{pos[1]}>"
            self.decorators: tuple[str, ...] = ()
        else:
            self.name = node.name
            self.qualname = prefix + node.name
            self.decorators = tuple(_decorator_ref(d) for d in node.decorator_list)
        self.params = self._params(node.args)
        self.param_names = frozenset(p.name for p in self.params)
        # the receiver: the first parameter of a method is spelled "self"/"cls" in refs;
        # nested functions see their enclosing method's receiver
        self.recv: dict[str, str] = dict(recv or {})
        if cls is not None and parent is None and self.params and not isinstance(node, ast.Lambda):
            short = {d.rsplit(".", 1)[-1] for d in self.decorators}
            if "staticmethod" not in short:
                first = self.params[0].name
                self.recv = {first: "cls" if "classmethod" in short else "self"}
        self.locals: set[str] = {p.name for p in self.params} - set(self.recv)
        self.globals_declared: set[str] = set()
        # ``nonlocal`` names: the enclosing function's variables, shared by every call of this
        # closure (refs ``nonlocal:NAME``)
        self.nonlocals: set[str] = set()
        self.events: list[Event] = [Event(K.ENTRY, pos), Event(K.EXIT, pos)]
        self.frontier: list[int] = [0]
        self.region_stack: list[int] = []
        self.regions: list[Region] = []
        self.loops: list[_Loop] = []
        self.handlers: list[int] = []
        self.finallies: list[_Finally] = []
        # the ``finally`` bodies of the ``try`` statements whose body is being built
        self.final_bodies: list[list[ast.stmt]] = []
        self.tries: list[Try] = []
        self.nested: list[str] = []
        self.returns: list[str] = []
        self.is_generator = False
        self.repeat_depth = 0  # loop bodies and comprehensions being compiled
        self.comp_depth = 0  # comprehensions being compiled
        self.looped: list[int] = []  # events marked repeated by a loop body alone
        self.by_name = False  # a ``getattr(self, f"_x_{k}")``: methods got by name (``dispatch``)
        self.except_depth = 0  # except bodies being compiled
        self.pos = pos
        self._refs: dict[int, str] = {}  # ref() by node (the tree outlives the builder)

    @staticmethod
    def _params(args: ast.arguments) -> tuple[Param, ...]:
        out: list[Param] = []
        positional = [*args.posonlyargs, *args.args]
        defaults: list[ast.expr | None] = [None] * (len(positional) - len(args.defaults))
        defaults.extend(args.defaults)
        for a, d in zip(positional, defaults, strict=True):
            out.append(
                Param(
                    a.arg,
                    type_ref(a.annotation),
                    "pos",
                    element_type_ref(a.annotation),
                    _default(d),
                )
            )
        if args.vararg:
            out.append(Param(args.vararg.arg, "", "vararg"))
        for a, kd in zip(args.kwonlyargs, args.kw_defaults, strict=True):
            out.append(
                Param(
                    a.arg,
                    type_ref(a.annotation),
                    "kwonly",
                    element_type_ref(a.annotation),
                    _default(kd),
                )
            )
        if args.kwarg:
            out.append(Param(args.kwarg.arg, "", "kwarg"))
        return tuple(out)

    # -- graph -----------------------------------------------------------------------------
    def emit(self, kind: K, node: ast.AST | Pos, **kw: object) -> int:
        pos = node if type(node) is tuple else self.mx.pos.of(node)  # type: ignore[arg-type]
        ev = Event(kind, pos, **kw)  # type: ignore[arg-type]
        if self.region_stack:  # (the defaults otherwise)
            ev.regions = tuple(self.region_stack)
        if self.handlers:
            ev.handler = self.handlers[-1]
        events = self.events
        idx = len(events)
        if self.repeat_depth > 0:
            ev.repeated = True
            if not self.comp_depth:
                self.looped.append(idx)
        if self.except_depth > 0:
            ev.in_except = True
        events.append(ev)
        for p in self.frontier:
            events[p].succ.append(idx)
        self.frontier = [idx]
        return idx

    def nop(self) -> int:
        return self.emit(K.NOP, self.pos)

    def link(self, src: list[int], dst: int) -> None:
        for s in src:
            if dst not in self.events[s].succ:
                self.events[s].succ.append(dst)

    def _jump(self, loop: _Loop, is_break: bool) -> None:
        """``break`` or ``continue`` out of ``loop``: through the innermost ``finally`` opened
        inside the loop first (it runs on the way out, then the jump goes on), else straight to
        the loop's exit or head."""
        if len(self.finallies) > loop.fin_depth:
            fin = self.finallies[-1]
            self.link(self.frontier, fin.entry)
            if not any(j is loop and b == is_break for j, b in fin.jumps):
                fin.jumps.append((loop, is_break))
        elif is_break:
            loop.breaks.extend(self.frontier)
        else:
            self.link(self.frontier, loop.head)

    def _abrupt_exit(self) -> None:
        """Control leaves the function (return/raise): through the innermost finally."""
        if self.finallies:
            fin = self.finallies[-1]
            fin.abrupt = True
            self.link(self.frontier, fin.entry)
        else:
            self.link(self.frontier, 1)
        self.frontier = []

    # -- build -----------------------------------------------------------------------------
    def build(self) -> FunctionFacts:
        self._collect_locals()
        node = self.node
        if isinstance(node, ast.Lambda):
            self.expr(node.body, Bind.RETURNED)
            self.returns.append(self._value_ref(node.body))
            self.emit(K.RETURN, node.body)
        else:
            self.stmts(node.body)
        self.link(self.frontier, 1)
        # exception edges: any event inside a try body may jump to its handler
        for i, ev in enumerate(self.events):
            if (
                ev.handler >= 0
                and ev.handler != i
                and ev.kind not in (K.NOP, K.BRANCH)
                and ev.handler not in ev.succ
            ):
                ev.succ.append(ev.handler)
        if self.looped:
            _once_per_call(self.events, self.looped)
        parent_q = self.parent.qualname if self.parent else None
        return FunctionFacts(
            qualname=self.qualname,
            name=self.name,
            cls=self.cls,
            parent=parent_q,
            is_async=isinstance(node, ast.AsyncFunctionDef),
            is_generator=self.is_generator,
            is_lambda=isinstance(node, ast.Lambda),
            decorators=self.decorators,
            params=self.params,
            pos=self.pos,
            events=self.events,
            regions=self.regions,
            globals_declared=tuple(sorted(self.globals_declared)),
            nested=tuple(self.nested),
            returns_refs=tuple(self.returns),
            returns_annotation=("" if isinstance(node, ast.Lambda) else type_ref(node.returns)),
            tries=self.tries,
            dispatch=_dispatch_locals(self.events) if self.by_name and self.cls else (),
        )

    def _collect_locals(self) -> None:
        """Names bound in this scope (not in nested scopes): they are locals, not globals.

        Bindings come from statements (assignment targets, loop and ``with`` targets, imports,
        ``def``/``class``, ``except ... as``, match captures) and from ``:=`` anywhere; walking
        statements only, and expressions only when the file has a ``:=``, keeps this a small
        fraction of the extraction instead of a second walk over every node."""
        node = self.node
        if isinstance(node, ast.Lambda):
            if self.mx.walrus:
                self._walrus_names(node.body)
            return
        stack: list[ast.stmt] = list(node.body)
        add = self.locals.add
        while stack:
            cur = stack.pop()
            if self.mx.walrus:
                self._walrus_names(cur)
            if isinstance(cur, ast.Global):
                self.globals_declared.update(cur.names)
            elif isinstance(cur, ast.Nonlocal):
                self.nonlocals.update(cur.names)
            elif isinstance(cur, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                add(cur.name)
            elif isinstance(cur, ast.Assign):
                for t in cur.targets:
                    self._bound(t)
            elif isinstance(cur, (ast.AugAssign, ast.AnnAssign)):
                self._bound(cur.target)
            elif isinstance(cur, (ast.For, ast.AsyncFor)):
                self._bound(cur.target)
                stack.extend(cur.body)
                stack.extend(cur.orelse)
            elif isinstance(cur, (ast.With, ast.AsyncWith)):
                for item in cur.items:
                    if item.optional_vars is not None:
                        self._bound(item.optional_vars)
                stack.extend(cur.body)
            elif isinstance(cur, (ast.If, ast.While)):
                stack.extend(cur.body)
                stack.extend(cur.orelse)
            elif isinstance(cur, ast.Try) or type(cur).__name__ == "TryStar":
                stack.extend(cur.body)  # type: ignore[attr-defined]
                stack.extend(cur.orelse)  # type: ignore[attr-defined]
                stack.extend(cur.finalbody)  # type: ignore[attr-defined]
                for h in cur.handlers:  # type: ignore[attr-defined]
                    if h.name:
                        add(h.name)
                    stack.extend(h.body)
            elif isinstance(cur, ast.Match):
                for case in cur.cases:
                    for sub in ast.walk(case.pattern):
                        name = getattr(sub, "name", None) or getattr(sub, "rest", None)
                        if isinstance(name, str):
                            add(name)
                    stack.extend(case.body)
            elif isinstance(cur, (ast.Import, ast.ImportFrom)):
                for a in cur.names:
                    add((a.asname or a.name).split(".", 1)[0])
            elif isinstance(cur, ast.Delete):
                for t in cur.targets:
                    self._bound(t)
        self.locals -= self.globals_declared
        self.locals -= self.nonlocals

    def _bound(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self.locals.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for e in target.elts:
                self._bound(e)
        elif isinstance(target, ast.Starred):
            self._bound(target.value)

    def _walrus_names(self, node: ast.AST) -> None:
        todo: list[ast.AST] = (
            [
                c
                for c in _children(node)
                if not isinstance(c, (ast.stmt, ast.excepthandler)) and self._may_walrus(c)
            ]
            if isinstance(node, ast.stmt)
            else [node]
            if self._may_walrus(node)
            else []
        )
        while todo:
            cur = todo.pop()
            if isinstance(cur, ast.NamedExpr) and isinstance(cur.target, ast.Name):
                self.locals.add(cur.target.id)
            if isinstance(cur, _ANY_FUNC):
                continue
            todo.extend(_children(cur))

    def _may_walrus(self, node: ast.AST) -> bool:
        """Can ``node`` hold a ``:=``: does a row it spans hold one (a node without a
        position, such as a comprehension clause, may)."""
        first = getattr(node, "lineno", None)
        last = getattr(node, "end_lineno", None)
        if first is None or last is None:
            return True
        rows = self.mx.walrus_rows
        i = bisect.bisect_left(rows, first)
        return i < len(rows) and rows[i] <= last

    def ref(self, node: ast.AST) -> str:
        # (asked again and again of the same node: a call's callee, then its receiver...; the
        # answer depends only on the scope, settled before the body is walked)
        r = self._refs.get(id(node))
        if r is None:
            r = self._refs[id(node)] = self._ref(node)
        return r

    def _ref(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name) and self._is_global(node.id):
            return sys.intern("global:" + node.id)
        r = ref_of(node, self.recv)
        if self.cls is not None and r:
            head, dot, rest = r.partition(".")
            if dot and head == "type()" and self._type_of_self(node):
                return "cls." + rest
            short = self.cls.rsplit(".", 1)[-1]
            if dot and head == short and short not in self.locals:
                return "cls." + rest
        return r

    def _type_of_self(self, node: ast.AST) -> bool:
        cur = node
        while isinstance(cur, (ast.Attribute, ast.Subscript)) or (
            isinstance(cur, ast.Call)
            and not (isinstance(cur.func, ast.Name) and cur.func.id == "type")
        ):
            cur = cur.func if isinstance(cur, ast.Call) else cur.value
        return (
            isinstance(cur, ast.Call)
            and len(cur.args) == 1
            and isinstance(cur.args[0], ast.Name)
            and self.recv.get(cur.args[0].id) == "self"
        )

    def _is_global(self, name: str) -> bool:
        if name in self.globals_declared:
            return True
        return (
            name not in self.locals
            and name in self.mx.global_vars
            and not self._enclosing_local(name)
        )

    def _enclosing_local(self, name: str) -> bool:
        # a name bound in an enclosing function is a closure variable, not a module variable
        return self.parent is not None and any(p.name == name for p in self.parent.params)

    def identity_inner(self, node: ast.AST) -> ast.expr | None:
        """The wrapped value of an identity wrapper, ``typing.cast(T, x)`` (any spelling:
        ``cast``, ``typing.cast``, ``t.cast``, typing_extensions too) or ``assert_type(x, T)``:
        ``x``; ``None`` for anything else. The value passes through unchanged, so the facts
        record ``x`` where it goes (a token released through ``detach(cast(Any, token))``)."""
        if not isinstance(node, ast.Call) or node.keywords or len(node.args) != 2:
            return None
        func = node.func
        if isinstance(func, ast.Name):
            fq = self.mx.imports.get(func.id, "")
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            fq = f"{self.mx.imports.get(func.value.id, '')}.{func.attr}"
        else:
            return None
        if fq in _CAST:
            inner = node.args[1]
        elif fq in _ASSERT_TYPE:
            inner = node.args[0]
        else:
            return None
        if isinstance(inner, ast.Starred):
            return None
        return self.identity_inner(inner) or inner

    def _value_ref(self, node: ast.expr) -> str:
        if isinstance(node, ast.Await):
            node = node.value
        node = self.identity_inner(node) or node
        if isinstance(node, ast.Lambda):
            return ""
        return self.ref(node)

    def summarize(self, node: ast.expr) -> Value:
        node = self.identity_inner(node) or node
        names = tuple(n for n in _names_in(node) if n not in self.recv)
        inner = node.value if isinstance(node, ast.Await) else node
        inner = self.identity_inner(inner) or inner
        # ``injected or Default()``, ``a if c else Default()``: the constructor gives the type
        if isinstance(inner, (ast.BoolOp, ast.IfExp)):
            options = inner.values if isinstance(inner, ast.BoolOp) else [inner.body, inner.orelse]
            for opt in options:
                if isinstance(opt, ast.Call):
                    return Value("call", self.ref(opt.func), names)
        if isinstance(inner, ast.Call):
            # even ``threading.Lock()``: the callee says what type the value has
            return Value("call", self.ref(inner.func), names)
        if _is_const(inner):
            return Value("const", _truthiness(inner), (), _literal(inner))
        if isinstance(inner, ast.Name):
            return Value("name", self.ref(inner), names)
        if isinstance(inner, ast.Attribute):
            return Value("attr", self.ref(inner), names, _member(inner))
        if isinstance(inner, ast.Call):
            return Value("call", self.ref(inner.func), names)
        return Value("other", "", names)

    # -- statements ------------------------------------------------------------------------
    def stmts(self, body: list[ast.stmt]) -> None:
        i, n = 0, len(body)
        while i < n:
            s = body[i]
            self.stmt(s)
            i += 1
            acquire = _awaited_acquire(s)
            if acquire is None:
                continue
            # ``await self._lock.acquire()`` (or under ``if use_lock:``), then a ``try`` whose
            # ``finally`` releases it: the statements up to that ``try`` hold the lock, a
            # region like ``async with``'s
            end = _released_by_finally(body, i, acquire)
            if end is None and any(
                _releases(fb, ast.dump(acquire.func.value))  # type: ignore[attr-defined]
                for fb in self.final_bodies
            ):
                # ``acquired = False; try: async with asyncio.timeout(t): await
                # lock.acquire(); acquired = True; ...`` with ``finally: if acquired:
                # lock.release()``: a ``try`` around this block releases it, so the rest of
                # the block holds the lock
                end = n - 1
            if end is None:
                continue
            rid = len(self.regions)
            lock = acquire.func.value  # type: ignore[attr-defined]
            self.regions.append(
                Region(
                    ref=self.ref(lock),
                    is_async=True,
                    pos=self.mx.pos.of(acquire),
                    first=len(self.events),
                    last=len(self.events),
                )
            )
            self.region_stack.append(rid)
            for inner in body[i : end + 1]:
                self.stmt(inner)
            self.region_stack.pop()
            self.regions[rid].last = len(self.events)
            i = end + 1

    def stmt(self, s: ast.stmt) -> None:
        if isinstance(s, ast.Expr):
            self.expr(s.value, Bind.NONE)
        elif isinstance(s, ast.Assign):
            self.expr(s.value, self._bind_for(s.targets), self._bind_name(s.targets))
            value = self.summarize(s.value)
            for t in s.targets:
                self.assign(t, value)
        elif isinstance(s, ast.AnnAssign):
            if self.cls is not None and isinstance(s.target, ast.Attribute):
                r = self.ref(s.target)
                t_ref = type_ref(s.annotation)
                if t_ref and r.startswith("self.") and r.count(".") == 1:
                    self.mx.classes[self.cls].attr_types.setdefault(r[5:], t_ref)
                e_ref = element_type_ref(s.annotation)
                if e_ref and r.startswith("self.") and r.count(".") == 1:
                    self.mx.classes[self.cls].attr_types.setdefault(r[5:] + "[]", e_ref)
            if s.value is not None:
                self.expr(s.value, self._bind_for([s.target]), self._bind_name([s.target]))
                self.assign(s.target, self.summarize(s.value))
        elif isinstance(s, ast.AugAssign):
            self.expr(s.target, Bind.NONE)  # the read half
            self.expr(s.value, Bind.NONE)
            op = _AUG_OPS.get(type(s.op), "op=")
            self.assign(s.target, Value("other", "", _names_in(s.value)), load=False, op=op)
        elif isinstance(s, ast.Return):
            if s.value is not None:
                self.expr(s.value, Bind.RETURNED)
                none = isinstance(s.value, ast.Constant) and s.value.value is None
                self.returns.append("None" if none else self._value_ref(s.value))
            self.emit(K.RETURN, s)
            self._abrupt_exit()
        elif isinstance(s, ast.Raise):
            if s.exc is not None:
                self.expr(s.exc, Bind.NONE)
            self.emit(K.RAISE, s)
            if self.handlers:
                self.link(self.frontier, self.handlers[-1])
                self.frontier = []
            else:
                self._abrupt_exit()
        elif isinstance(s, ast.If):
            self.branch(s.test, s.body, s.orelse)
        elif isinstance(s, ast.While):
            self.loop_while(s)
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            self.loop_for(s)
        elif isinstance(s, (ast.With, ast.AsyncWith)):
            self.with_(s)
        elif isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            self.try_(s)  # type: ignore[arg-type]
        elif isinstance(s, ast.Match):
            self.match(s)
        elif isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for d in s.decorator_list:
                self.expr(d, Bind.NONE)
            self._defaults(s.args)
            self.nested_function(s)
            self.emit(K.LOCAL, s, ref=s.name, value=Value("other", "", ()))
        elif isinstance(s, ast.ClassDef):
            for b in s.bases:
                self.expr(b, Bind.NONE)
            self.emit(K.LOCAL, s, ref=s.name, value=Value("other", "", ()))
        elif isinstance(s, (ast.Global, ast.Nonlocal)):
            pass
        elif isinstance(s, ast.Delete):
            for t in s.targets:
                self.delete(t)
        elif isinstance(s, ast.Assert):
            self.expr(s.test, Bind.NONE)
            if s.msg is not None:
                self.expr(s.msg, Bind.NONE)
        elif isinstance(s, (ast.Break, ast.Continue)):
            if self.loops:
                self._jump(self.loops[-1], isinstance(s, ast.Break))
            self.frontier = []
        elif isinstance(s, (ast.Import, ast.ImportFrom)):
            self.mx.add_import(s)
        # Pass, Nonlocal, TypeAlias: nothing happens at run time that matters here

    def _defaults(self, args: ast.arguments) -> None:
        for d in [*args.defaults, *[k for k in args.kw_defaults if k is not None]]:
            self.expr(d, Bind.NONE)

    def _bind_for(self, targets: list[ast.expr]) -> Bind:
        if len(targets) != 1:
            return Bind.NONE
        t = targets[0]
        if isinstance(t, ast.Name):
            return Bind.LOCAL
        if isinstance(t, ast.Attribute):
            return Bind.ATTR
        if isinstance(t, ast.Subscript):
            return Bind.ITEM
        return Bind.NONE

    def _bind_name(self, targets: list[ast.expr]) -> str:
        if len(targets) != 1:
            return ""
        t = targets[0]
        if isinstance(t, ast.Subscript):
            return self.ref(t.value)
        return self.ref(t) if not isinstance(t, ast.Name) else t.id

    def assign(self, t: ast.expr, value: Value, load: bool = True, op: str = "") -> None:
        if isinstance(t, ast.Name):
            # (``op``: an augmented assignment, ``used += n``, as for an attribute)
            if t.id in self.globals_declared:
                self.emit(K.WRITE, t, ref="global:" + t.id, value=value, name=op)
            elif t.id in self.nonlocals:
                self.emit(K.WRITE, t, ref="nonlocal:" + t.id, value=value, name=op)
            else:
                self.emit(K.LOCAL, t, ref=t.id, value=value)
        elif isinstance(t, ast.Attribute):
            if load:
                self.expr(t.value, Bind.NONE)
            self.emit(K.WRITE, t, ref=self.ref(t), value=value, name=op)
        elif isinstance(t, ast.Subscript):
            if load:
                self.expr(t.value, Bind.NONE)
                self.expr(t.slice, Bind.NONE)
            self.emit(K.SETITEM, t, ref=self.ref(t.value), args=(self.ref(t.slice),), value=value)
        elif isinstance(t, (ast.Tuple, ast.List)):
            # unpacking a call's result: each part still comes from that call
            part = Value(value.kind if value.kind == "call" else "other", value.ref, value.names)
            for e in t.elts:
                self.assign(e, part, load)
        elif isinstance(t, ast.Starred):
            self.assign(t.value, value, load)

    def delete(self, t: ast.expr) -> None:
        if isinstance(t, ast.Subscript):
            self.expr(t.value, Bind.NONE)
            self.expr(t.slice, Bind.NONE)
            self.emit(K.DELITEM, t, ref=self.ref(t.value), args=(self.ref(t.slice),))
        elif isinstance(t, ast.Attribute):
            self.expr(t.value, Bind.NONE)
            self.emit(K.WRITE, t, ref=self.ref(t), value=Value("const", "", ()))
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                self.delete(e)

    def _guards(self, test: ast.expr, negated: bool = False) -> list[str]:
        """Guard atoms of a test: ``ref|absent_branch|kind|key names`` (absent_branch: 0 true,
        1 false; key names: the plain names the key of a membership test is made of, comma
        separated, ``id(model)`` -> ``id,model``; empty for other tests)."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            return self._guards(test.operand, not negated)
        if isinstance(test, ast.BoolOp):
            out: list[str] = []
            for v in test.values:
                out.extend(self._guards(v, negated))
            return out
        present_when_true: bool
        kind: str
        target: ast.expr
        key: ast.expr | None = None
        if isinstance(test, ast.Compare) and len(test.ops) == 1:
            op, right = test.ops[0], test.comparators[0]
            if isinstance(op, (ast.In, ast.NotIn)):
                target, kind, key = right, "in", test.left
                present_when_true = isinstance(op, ast.In)
            elif isinstance(op, (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)) and (
                isinstance(right, ast.Constant) and right.value is None
            ):
                target, kind = test.left, "none"
                present_when_true = isinstance(op, (ast.IsNot, ast.NotEq))
            elif (
                isinstance(op, (ast.Eq, ast.NotEq))
                and (_literal(right) or _literal(test.left) or _member(right) or _member(test.left))
            ) or (isinstance(op, (ast.Is, ast.IsNot)) and (_member(right) or _member(test.left))):
                # a value guard: ``self._state == "connected"``, ``self._state is
                # State.CONNECTED`` (an enum member); the key field holds the value
                lit_side, target = (
                    (right, test.left) if _literal(right) or _member(right) else (test.left, right)
                )
                r = self.ref(target)
                if not _shared_guard_ref(r):
                    return []
                # two readings: the work goes on where the state differs from the value
                # (``eq``: storing the value answers the guard), or where it equals it
                # (``ne``: storing another value, leaving that state, answers it)
                differs = 1 if isinstance(op, (ast.Eq, ast.Is)) else 0
                if negated:
                    differs = 1 - differs
                lit = _literal(lit_side) or _member(lit_side)
                return [f"{r}|{differs}|eq|{lit}", f"{r}|{1 - differs}|ne|{lit}"]
            elif isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
                # an ordered comparison of shared state, a deadline or a timestamp:
                # ``now >= self._expires_at``, ``self._loaded_at < cutoff``; true means stale
                # when the state is on the smaller side
                left_r, right_r = self.ref(test.left), self.ref(right)
                if any(
                    isinstance(side, ast.Constant)
                    or (isinstance(side, ast.UnaryOp) and isinstance(side.operand, ast.Constant))
                    for side in (test.left, right)
                ):
                    return []  # a counter against a bound (``self.remaining <= 0``)
                if _shared_guard_ref(left_r):
                    r, smaller = left_r, isinstance(op, (ast.Lt, ast.LtE))
                elif _shared_guard_ref(right_r):
                    r, smaller = right_r, isinstance(op, (ast.Gt, ast.GtE))
                else:
                    return []
                absent_branch = 0 if smaller else 1
                if negated:
                    absent_branch = 1 - absent_branch
                return [f"{r}|{absent_branch}|cmp|"]
            else:
                return []
        else:
            target, kind, present_when_true = test, "truthy", True
        # self.x.get(key) / self.x[key] / getattr(self, "x", None) / hasattr(self, "x")
        if (
            isinstance(target, ast.Call)
            and isinstance(target.func, ast.Name)
            and target.func.id in ("getattr", "hasattr")
            and len(target.args) >= 2
            and isinstance(target.args[1], ast.Constant)
            and isinstance(target.args[1].value, str)
            and target.args[1].value.isidentifier()
            and self.ref(target.args[0]) in ("self", "cls")
        ):
            r = f"{self.ref(target.args[0])}.{target.args[1].value}"
            absent_branch = 1 if present_when_true else 0
            if negated:
                absent_branch = 1 - absent_branch
            return [f"{r}|{absent_branch}|{kind}|"]
        if isinstance(target, ast.Call) and isinstance(target.func, ast.Attribute):
            if target.func.attr == "get" and kind in ("none", "truthy"):
                key = target.args[0] if target.args else None
                target, kind = target.func.value, "in"
            elif not target.args and not target.keywords and kind in ("none", "truthy"):
                # ``if self._get_client() is None:``: a getter of the object's own state,
                # ``self._get_client()`` in the atom (the rule looks through one-line getters)
                g = self.ref(target.func)
                if g.startswith("self.") and g.count(".") == 1:
                    absent_branch = 1 if present_when_true else 0
                    if negated:
                        absent_branch = 1 - absent_branch
                    return [f"{g}()|{absent_branch}|{kind}|"]
        elif isinstance(target, ast.Subscript) and kind in ("none", "truthy"):
            key = target.slice
            target, kind = target.value, "in"
        if isinstance(target, ast.Name) and target.id in self.locals:
            # a local alias of shared state: ``client = self._client`` then ``if client is
            # None:`` checks the attribute as it was read
            alias = self._alias_of(target.id)
            if alias:
                r = alias
                absent_branch = 1 if present_when_true else 0
                if negated:
                    absent_branch = 1 - absent_branch
                names = ""
                if key is not None:
                    names = ",".join(
                        sorted({n.id for n in ast.walk(key) if isinstance(n, ast.Name)} - {"_"})
                    )
                return [f"{r}|{absent_branch}|{kind}|{names}"]
        r = self.ref(target)
        if not r or not (r.startswith(("self.", "cls.", "global:"))) or r.count(".") > 1:
            return []
        if "(" in r or "[" in r:
            return []
        absent_branch = 1 if present_when_true else 0
        if negated:
            absent_branch = 1 - absent_branch
        names = ""
        if key is not None:
            names = ",".join(
                sorted({n.id for n in ast.walk(key) if isinstance(n, ast.Name)} - {"_"})
            )
        return [f"{r}|{absent_branch}|{kind}|{names}"]

    def _alias_of(self, name: str) -> str:
        """The shared state a local was last assigned from, read as it is (``client =
        self._client``): ``self._client``; ``""`` otherwise."""
        for e in reversed(self.events):
            if e.kind == K.LOCAL and e.ref == name:
                v = e.value
                if v is not None and v.kind == "attr" and _shared_guard_ref(v.ref):
                    return v.ref
                return ""
        return ""

    def _lookup_guard(self, test: ast.expr) -> str:
        """``existing = self._instances.get(name)`` (no await since) then ``if existing is not
        None:`` (``is None``, ``if existing``, ``if not existing``): a membership test of the
        table keyed as looked up, as a guard atom; ``""`` for any other test. The branch is
        named ``lookup``: a re-check of the table (double-checked locking under a per-key
        lock), not a check of its own."""
        name, absent_branch = _presence_test(test)
        if not name or name not in self.locals:
            return ""
        looked = self._lookup_of(name)
        if looked is None:
            return ""
        return f"{looked[0]}|{absent_branch}|in|{looked[1]}"

    def _lookup_of(self, name: str) -> tuple[str, str] | None:
        """The table a local was last assigned a lookup of, with no await since (``existing =
        self._instances.get(tool_name)``): ``("self._instances", "tool_name")``, the key's
        plain names comma separated; None otherwise. Only a lookup close before the test
        counts (within 32 events: a re-check tests what it has just looked up)."""
        for e in self.events[:-33:-1]:
            if e.kind == K.AWAIT:
                return None
            if e.kind == K.LOCAL and e.ref == name:
                v = e.value
                if v is None or v.kind != "call" or not v.ref.endswith(".get"):
                    return None
                table = v.ref[: -len(".get")]
                if not _shared_guard_ref(table):
                    return None
                return table, ",".join(sorted(set(v.names) - {"_", "self", "cls"}))
        return None

    def _bool_conjuncts(self, test: ast.expr) -> tuple[str, ...]:
        """The parameters among the atoms of an ``and``/``or`` test, as ``p`` or ``not p``
        (``if not force and self._cache is not None:``): a caller that passes the flag as a
        constant decides the test (``Summaries.decided``). Only for a test that is the
        ``BoolOp`` itself (not a negated one)."""
        if not isinstance(test, ast.BoolOp):
            return ()
        out: list[str] = []
        for v in test.values:
            neg = isinstance(v, ast.UnaryOp) and isinstance(v.op, ast.Not)
            atom = v.operand if isinstance(v, ast.UnaryOp) and neg else v
            if isinstance(atom, ast.Name) and atom.id in self.param_names:
                out.append(f"not {atom.id}" if neg else atom.id)
        return tuple(out)

    def branch(self, test: ast.expr, body: list[ast.stmt], orelse: list[ast.stmt]) -> None:
        self.expr(test, Bind.NONE)
        inner = (
            test.operand if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not) else test
        )
        name = ""
        if isinstance(inner, ast.BoolOp):
            # what the test's outcome says of every atom: ``a and b`` true (or ``not (a or b)``
            # true) says each holds; ``a or b`` false (``not (a and b)`` false) says none does
            conj = isinstance(inner.op, ast.And) == (inner is test)
            name = "compound:and" if conj else "compound:or"
        if isinstance(inner, ast.Name) and inner.id in self.param_names:
            name = f"if:{'not ' if inner is not test else ''}{inner.id}"
        if inner is test and _lifespan_test(test):
            name = "if:lifespan"  # ``if scope["type"] == "lifespan":`` (ASGI)
        guards = self._guards(test)
        if not guards and not name and (looked := self._lookup_guard(test)):
            guards, name = [looked], "lookup"
        if not guards and not name:
            name = self._local_test(test) or self._free_member_test(test)
        flags = self._bool_conjuncts(test) if name.startswith("compound:") else ()
        b = self.emit(K.BRANCH, test, guards=tuple(guards), name=name, args=flags)
        t = self.nop()
        self.frontier = [b]
        f = self.nop()
        self.frontier = [t]
        self.stmts(body)
        after_body = self.frontier
        self.frontier = [f]
        self.stmts(orelse)
        self.frontier = after_body + self.frontier

    def _local_test(self, test: ast.expr) -> str:
        """``local:<name>|<branch>`` for a test of a plain local's presence (``task is None``,
        ``task is not None``, ``not task``, ``task``), with the branch (0 true, 1 false) taken
        where it holds nothing; "" for any other test."""
        name, empty_branch = _presence_test(test)
        if not name or name not in self.locals or name in self.param_names:
            return ""
        return f"local:{name}|{empty_branch}"

    def _free_member_test(self, test: ast.expr) -> str:
        """``member:<container>|<param>|<branch>`` for a test of whether a parameter is in a
        container the function does not bind (a closure's or the module's: ``if self in
        being_called:`` in a decorator's wrapper), with the branch (0 true, 1 false) taken
        where it is absent; "" for any other test."""
        negated = False
        while isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            test, negated = test.operand, not negated
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
            return ""
        op, key, box = test.ops[0], test.left, test.comparators[0]
        if not (
            isinstance(op, (ast.In, ast.NotIn))
            and isinstance(key, ast.Name)
            and key.id in self.param_names
            and isinstance(box, ast.Name)
            and box.id not in self.locals
        ):
            return ""
        absent = 1 if isinstance(op, ast.In) else 0
        return f"member:{box.id}|{key.id}|{1 - absent if negated else absent}"

    def loop_while(self, s: ast.While) -> None:
        head = self.nop()
        self.expr(s.test, Bind.NONE)
        b = self.emit(K.BRANCH, s.test, guards=tuple(self._guards(s.test)))
        t = self.nop()
        self.frontier = [b]
        f = self.nop()
        loop = _Loop(head, fin_depth=len(self.finallies))
        self.loops.append(loop)
        self.frontier = [t]
        self.repeat_depth += 1
        self.stmts(s.body)
        self.repeat_depth -= 1
        self.link(self.frontier, head)
        self.loops.pop()
        self.frontier = [f]
        infinite = isinstance(s.test, ast.Constant) and bool(s.test.value)
        if infinite:
            self.frontier = []
        self.stmts(s.orelse)
        self.frontier = self.frontier + loop.breaks

    def loop_for(self, s: ast.For | ast.AsyncFor) -> None:
        self.expr(s.iter, Bind.NONE)
        head = self.nop()
        if isinstance(s, ast.AsyncFor):
            self.emit(K.AWAIT, s.iter, ref=self.ref(s.iter), name="async for")
        b = self.emit(K.BRANCH, s.target)
        t = self.nop()
        self.frontier = [b]
        f = self.nop()
        loop = _Loop(head, fin_depth=len(self.finallies))
        self.loops.append(loop)
        self.frontier = [t]
        # a loop variable is an element of what is iterated: kind "iter", the iterable's ref
        self.assign(s.target, Value("iter", self.ref(s.iter), _names_in(s.iter)))
        self.repeat_depth += 1
        self.stmts(s.body)
        self.repeat_depth -= 1
        self.link(self.frontier, head)
        self.loops.pop()
        self.frontier = [f]
        self.stmts(s.orelse)
        self.frontier = self.frontier + loop.breaks

    def with_(self, s: ast.With | ast.AsyncWith) -> None:
        is_async = isinstance(s, ast.AsyncWith)
        opened: list[tuple[int, ast.withitem]] = []
        for item in s.items:
            self.expr(item.context_expr, Bind.NONE)
            if is_async:
                self.emit(
                    K.AWAIT, item.context_expr, ref=self.ref(item.context_expr), name="async with"
                )
            rid = len(self.regions)
            ctx_expr = item.context_expr
            if isinstance(ctx_expr, (ast.Await, ast.YieldFrom)):
                # ``with await lock:`` / ``with (yield from lock):``: the old-style asyncio
                # lock acquisition; the region is the lock's
                ctx_expr = ctx_expr.value
            self.regions.append(
                Region(
                    ref=self.ref(ctx_expr),
                    is_async=is_async,
                    pos=self.mx.pos.of(item.context_expr),
                    first=len(self.events),
                    last=len(self.events),
                )
            )
            self.region_stack.append(rid)
            opened.append((rid, item))
            if item.optional_vars is not None:
                self.assign(item.optional_vars, self.summarize(item.context_expr))
        self.stmts(s.body)
        for rid, item in reversed(opened):
            self.region_stack.pop()
            self.regions[rid].last = len(self.events)
            if is_async:
                self.emit(
                    K.AWAIT,
                    item.context_expr,
                    ref=self.ref(item.context_expr),
                    name="async with exit",
                )

    def try_(self, s: ast.Try) -> None:
        fin: _Finally | None = None
        if s.finalbody:
            # the finally entry is created first so abrupt exits inside can jump to it
            saved = self.frontier
            self.frontier = []
            fin = _Finally(self.nop())
            self.frontier = saved
            self.finallies.append(fin)
        handler_entry = -1
        if s.handlers:
            saved = self.frontier
            self.frontier = []
            handler_entry = self.nop()
            self.frontier = saved
            self.handlers.append(handler_entry)
        start = self.nop()
        if handler_entry >= 0:
            self.link([start], handler_entry)
        record = Try(self.mx.pos.of(s), start, start, start, ())
        self.tries.append(record)
        self.final_bodies.append(s.finalbody)
        self.stmts(s.body)
        self.final_bodies.pop()
        record.body_end = len(self.events)
        if handler_entry >= 0:
            self.handlers.pop()
        self.stmts(s.orelse)
        record.else_end = len(self.events)
        ends = list(self.frontier)
        caught: list[Handler] = []
        for h in s.handlers:
            self.frontier = [handler_entry]
            first = len(self.events)
            if h.type is not None:
                self.expr(h.type, Bind.NONE)
            if h.name:
                self.emit(K.LOCAL, h, ref=h.name, value=Value("other", "", ()))
            self.except_depth += 1
            self.stmts(h.body)
            self.except_depth -= 1
            caught.append(Handler(self._caught(h.type), first, len(self.events)))
            ends.extend(self.frontier)
        record.handlers = tuple(caught)
        if handler_entry >= 0 and not any(
            not h.types or any(t.rpartition(".")[2] == "BaseException" for t in h.types)
            for h in caught
        ):
            # an exception no handler matches leaves through the finally (or the function);
            # a bare ``except:`` or ``except BaseException`` matches every one
            self.frontier = [handler_entry]
            self._abrupt_exit()
        if fin is None:
            self.frontier = ends
            return
        self.finallies.pop()
        self.link(ends, fin.entry)
        self.frontier = [fin.entry]
        record.final_first = len(self.events)
        self.stmts(s.finalbody)
        record.final_last = len(self.events)
        end = list(self.frontier)
        for loop, is_break in fin.jumps:
            # after the finally, a ``break``/``continue`` that ran it goes on to its loop
            self.frontier = list(end)
            self._jump(loop, is_break)
        self.frontier = end
        if fin.abrupt:
            # after the finally, control may continue (normal) or leave (abrupt)
            keep = list(self.frontier)
            self._abrupt_exit()
            self.frontier = keep

    def _caught(self, node: ast.expr | None) -> tuple[str, ...]:
        """The refs of the exception types an ``except`` names (``()`` for a bare one)."""
        if node is None:
            return ()
        parts = node.elts if isinstance(node, ast.Tuple) else [node]
        return tuple(self.ref(p) for p in parts)

    def match(self, s: ast.Match) -> None:
        self.expr(s.subject, Bind.NONE)
        head = self.frontier
        ends: list[int] = []
        lifespan = _scope_type(s.subject)
        for case in s.cases:
            self.frontier = list(head)
            if lifespan and _lifespan_case(case.pattern):
                # ``match scope["type"]: case "lifespan":`` (ASGI), as ``if`` would say it
                b = self.emit(K.BRANCH, case.pattern, name="if:lifespan")
                t = self.nop()
                self.frontier = [b]
                ends.append(self.nop())  # not this case
                self.frontier = [t]
            else:
                self.nop()
            if case.guard is not None:
                self.expr(case.guard, Bind.NONE)
            self.stmts(case.body)
            ends.extend(self.frontier)
        self.frontier = ends + head  # no case may match

    # -- expressions -----------------------------------------------------------------------
    def nested_function(self, node: _FuncNode | ast.Lambda) -> str:
        prefix = f"{self.qualname}.<locals>."
        if isinstance(node, ast.Lambda):
            pos = self.mx.pos.of(node)
            known = f"{prefix}<lambda@{pos[0]}:{pos[1]}>"
            if known in self.mx.functions:  # already built (a lambda inside partial(...))
                return known
        facts = self.mx._function(node, prefix, self.cls, parent=self._as_parent(), recv=self.recv)
        self.nested.append(facts.qualname)
        return facts.qualname

    def _as_parent(self) -> FunctionFacts:
        # a light stand-in: nested builders only need the parent's name and parameters
        return FunctionFacts(
            qualname=self.qualname,
            name=self.name,
            cls=self.cls,
            parent=None,
            is_async=False,
            is_generator=False,
            is_lambda=False,
            decorators=(),
            params=tuple(Param(n) for n in sorted(self.locals)),
            pos=self.pos,
            events=[],
            regions=[],
        )

    def expr(self, node: ast.expr, bind: Bind, bind_name: str = "") -> None:
        tp = type(node)
        if tp is ast.Constant:
            return  # nothing under it
        if tp is ast.Name:
            if type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                name = node.id  # type: ignore[attr-defined]
                if name in self.nonlocals:
                    self.emit(K.READ, node, ref="nonlocal:" + name)
                elif self._is_global(name):
                    self.emit(K.READ, node, ref="global:" + name)
            return
        if tp is ast.Call:
            inner_value = self.identity_inner(node)
            if inner_value is not None:  # ``cast(T, f())``: the result of ``f()`` goes on
                self.expr(
                    inner_value, bind if isinstance(inner_value, ast.Call) else Bind.NONE, bind_name
                )
            else:
                self.call(node, bind, bind_name)  # type: ignore[arg-type]
            return
        if isinstance(node, ast.Await):
            inner = node.value
            self.expr(inner, Bind.AWAITED if isinstance(inner, ast.Call) else Bind.NONE)
            callee = self.ref(inner.func) if isinstance(inner, ast.Call) else self.ref(inner)
            pos = self.mx.pos.of(node)
            if isinstance(inner, ast.Call):  # ``await f(...)`` spanning lines: show ``await f``
                fpos = self.mx.pos.of(inner.func)
                pos = (pos[0], pos[1], fpos[2], fpos[3])
            self.emit(K.AWAIT, pos, ref=callee, name="await")
        elif isinstance(node, ast.IfExp) and bind != Bind.NONE:
            # ``t = attach(c) if c else None``: either branch's result goes where the whole goes
            self.expr(node.test, Bind.NONE)
            for opt in (node.body, node.orelse):
                self.expr(opt, bind if isinstance(opt, ast.Call) else Bind.NONE, bind_name)
        elif isinstance(node, ast.Attribute):
            r = self.ref(node)
            root = r.split(".", 1)[0]
            if root in ("self", "cls") and r.count(".") >= 1 and "(" not in r.split(".")[1]:
                # the first attribute off the receiver is the shared state being read
                first = node
                while isinstance(first.value, ast.Attribute):
                    self.mx.attr_reads.add(first.attr)  # (off an object the receiver holds)
                    first = first.value
                if isinstance(first.value, ast.Name) or self.ref(first).startswith("cls."):
                    self.emit(K.READ, first, ref=self.ref(first))
                else:
                    self.expr(node.value, Bind.NONE)
            else:
                self.mx.attr_reads.add(node.attr)
                self.expr(node.value, Bind.NONE)
        elif isinstance(node, ast.Lambda):
            self._defaults(node.args)
            self.nested_function(node)
        elif isinstance(node, (ast.Yield, ast.YieldFrom)):
            self.is_generator = True
            if node.value is not None:
                self.expr(node.value, Bind.YIELDED)
            self.emit(K.YIELD, node)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            self.repeat_depth += 1
            self.comp_depth += 1
            self._comprehension(node)
            self.comp_depth -= 1
            self.repeat_depth -= 1
        elif isinstance(node, ast.Compare) and self._identity_check(node):
            # ``self._gen is not my_gen``: comparing shared state with this call's own value
            # is how code detects that another task took over; it is not a stale read
            for side in (node.left, *node.comparators):
                if isinstance(side, ast.Attribute):
                    self.emit(K.READ, side, ref=self.ref(side), name="compare")
                elif isinstance(side, ast.Name) and self._is_global(side.id):
                    # ``if _active is session:``: a module variable compared with this
                    # call's own value
                    self.emit(K.READ, side, ref="global:" + side.id, name="compare")
                else:
                    self.expr(side, Bind.NONE)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, Bind.LOCAL, node.target.id)
            self.emit(K.LOCAL, node.target, ref=node.target.id, value=self.summarize(node.value))
        else:
            kids = _EXPR_CHILDREN.get(tp)
            for child in kids(node) if kids is not None else _children(node):
                if isinstance(child, ast.expr):
                    self.expr(child, Bind.NONE)
                elif isinstance(child, ast.keyword):
                    self.expr(child.value, Bind.NONE)

    def _comprehension(
        self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp
    ) -> None:
        for n, gen in enumerate(node.generators):
            if isinstance(gen.target, ast.Name):
                # the comprehension's own variable (kind "comp": its own scope, an element of
                # what it iterates), so that ``sub.stop()`` in ``[sub.stop() for sub in
                # subs]`` is known to run on each element, whatever ``sub`` is outside; put
                # ahead of the reads of the expression, which stay together before what
                # their value is assigned to (``self.x = [p for p in self.x if ...]``)
                value = Value("comp", self.ref(gen.iter), _names_in(gen.iter))
                self.emit(K.LOCAL, gen.target, ref=gen.target.id, value=value)
            if n == 0:
                # the first iterable is evaluated once, before the first element, in the
                # enclosing scope: ``for x in (self._committer(c), self._lag(c))`` makes each
                # coroutine once, not once per element
                self.repeat_depth -= 1
                self.comp_depth -= 1
                self.expr(gen.iter, Bind.NONE)
                self.repeat_depth += 1
                self.comp_depth += 1
            else:
                self.expr(gen.iter, Bind.NONE)
            if gen.is_async:
                self.emit(K.AWAIT, gen.iter, ref=self.ref(gen.iter), name="async for")
            for cond in gen.ifs:
                self.expr(cond, Bind.NONE)
        if isinstance(node, ast.DictComp):
            self.expr(node.key, Bind.NONE)
            self.expr(node.value, Bind.NONE)
        else:
            self.expr(node.elt, Bind.NONE)

    def _identity_check(self, node: ast.Compare) -> bool:
        if len(node.ops) != 1 or not isinstance(
            node.ops[0], (ast.Is, ast.IsNot, ast.Eq, ast.NotEq)
        ):
            return False
        sides = (node.left, node.comparators[0])
        attrs = [s for s in sides if isinstance(s, ast.Attribute)]
        names = [s for s in sides if isinstance(s, ast.Name)]
        if len(names) == 2 and not attrs:
            # a module variable against this call's own value (``_active is session``)
            shared = [s for s in names if self._is_global(s.id)]
            return len(shared) == 1 and self._own_value(
                next(s.id for s in names if s is not shared[0])
            )
        if len(attrs) != 1 or len(names) != 1:
            return False
        if not self._own_value(names[0].id):
            return False
        r = self.ref(attrs[0])
        return r.startswith(("self.", "cls.")) and r.count(".") == 1

    def _own_value(self, name: str) -> bool:
        """This call's own value: a local, a parameter, a comprehension variable (not a
        module-level name, which every task shares)."""
        return name in self.locals or name not in self.mx.module_names

    def _arg_ref(self, node: ast.expr) -> str:
        node = self.identity_inner(node) or node
        if isinstance(node, ast.Lambda):
            return "lambda:" + self.nested_function(node)
        if isinstance(node, ast.Starred):
            return "*" + self.ref(node.value)
        if isinstance(node, ast.Call):
            callee = self.ref(node.func)
            if callee.rsplit(".", 1)[-1] == "partial" and node.args:
                # functools.partial(fn, a, k=v): keep the wrapped function and its arguments
                parts = [self._arg_ref(a) for a in node.args]
                parts += [f"{k.arg or '**'}={self._arg_ref(k.value)}" for k in node.keywords]
                return "partial:" + "|".join(parts)
            return self.ref(node)
        if _is_const(node):
            return "const"
        prefix = _str_prefix(node)
        if prefix:
            return "fstr:" + prefix  # ``f"_tool_{name}"``: a name made at run time
        return self.ref(node)

    def _dynamic_attr(self, node: ast.Call) -> bool:
        """``getattr(self, "x", d)`` / ``hasattr(self, "x")`` read ``self.x``;
        ``setattr(self, "x", v)`` writes it."""
        func = node.func
        if not (isinstance(func, ast.Name) and func.id in ("getattr", "hasattr", "setattr")):
            return False
        if len(node.args) < 2 or node.keywords:
            return False
        obj, name = node.args[0], node.args[1]
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            return False
        if not name.value.isidentifier():
            return False
        base = self.ref(obj)
        if base not in ("self", "cls"):
            return False
        for extra in node.args[2:]:
            self.expr(extra, Bind.NONE)
        target = f"{base}.{name.value}"
        if func.id == "setattr":
            value = self.summarize(node.args[2]) if len(node.args) > 2 else Value("other")
            self.emit(K.WRITE, node, ref=target, value=value)
        else:
            self.emit(K.READ, node, ref=target)
        return True

    def call(self, node: ast.Call, bind: Bind, bind_name: str) -> None:
        if self._dynamic_attr(node):
            return
        func = node.func
        if isinstance(func, ast.Attribute):
            # evaluate the receiver, but calling a method is not a read of shared state
            r = self.ref(func.value)
            if r not in ("self", "cls"):
                self.expr(func.value, Bind.NONE)
        elif not isinstance(func, ast.Name):
            self.expr(func, Bind.NONE)
        elif func.id in ("getattr", "hasattr") and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                self.mx.attr_reads.add(name.value)  # ``getattr(c, "ready")``
        args: list[str] = []
        for a in node.args:
            if isinstance(a, ast.Lambda):
                self._defaults(a.args)
                args.append(self._arg_ref(a))
                continue
            inner = a.value if isinstance(a, ast.Starred) else a
            self.expr(inner, Bind.ARG if isinstance(inner, ast.Call) else Bind.NONE)
            args.append(self._arg_ref(a))
        for kw in node.keywords:
            if isinstance(kw.value, ast.Lambda):
                self._defaults(kw.value.args)
            else:
                self.expr(kw.value, Bind.ARG if isinstance(kw.value, ast.Call) else Bind.NONE)
            val = kw.value
            if isinstance(val, ast.Constant) and isinstance(val.value, bool):
                # a flag passed by name keeps its value (``force=True``): it can decide the
                # callee's branches (``_bool_conjuncts``)
                args.append(f"{kw.arg}=const:{val.value}")
                continue
            args.append(f"{kw.arg or '**'}={self._arg_ref(val)}")
        pos = self.mx.pos.of(node)
        show: Pos | None = None
        if pos[2] > pos[0]:  # a call over several lines is shown as ``callee(`` only
            fpos = self.mx.pos.of(func)
            show = (pos[0], pos[1], fpos[2], fpos[3] + 1)
        packed: list[str] = []
        for a in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(a, _DISPLAYS):
                _packed_names(a, packed)
        if len(args) >= 2 and args[1].startswith("fstr:") and args[0] == "self":
            self.by_name = True
        self.emit(
            K.CALL,
            pos,
            ref=self.ref(func),
            args=tuple(args),
            bind=bind,
            name=bind_name,
            show=show,
            value=Value("other", "", tuple(dict.fromkeys(packed))) if packed else None,
        )


def extract(text: str, path: str, module: str, is_package: bool = False) -> ModuleFacts:
    """Parse ``text`` and extract its facts. Raises ``SyntaxError`` (also for null bytes),
    ``RecursionError``/``MemoryError`` for pathological nesting: the engine turns those into
    per-file diagnostics."""
    tree = ast.parse(text, filename=path, type_comments=False)
    return _ModuleExtractor(text, path, module, is_package).run(tree)


def _awaited_acquire(s: ast.stmt) -> ast.Call | None:
    """The ``X.acquire()`` call of a statement ``await X.acquire()``, or of an ``if`` whose
    body ends with one (``if use_lock: await self._lock.acquire()``)."""
    if isinstance(s, ast.If) and not s.orelse and s.body:
        s = s.body[-1]
    if not isinstance(s, ast.Expr) or not isinstance(s.value, ast.Await):
        return None
    call = s.value.value
    if (
        isinstance(call, ast.Call)
        and not call.args
        and not call.keywords
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "acquire"
    ):
        return call
    return None


def _releases(stmts: list[ast.stmt], lock: str) -> bool:
    """Do the statements release the lock (``ast.dump`` of its expression): ``X.release()``,
    or under an ``if`` (``if acquired: lock.release()``)?"""
    for st in stmts:
        if isinstance(st, ast.If) and not st.orelse:
            if _releases(st.body, lock):
                return True
            continue
        v = st.value if isinstance(st, ast.Expr) else None
        if (
            isinstance(v, ast.Call)
            and isinstance(v.func, ast.Attribute)
            and v.func.attr == "release"
            and ast.dump(v.func.value) == lock
        ):
            return True
    return False


def _released_by_finally(body: list[ast.stmt], start: int, acquire: ast.Call) -> int | None:
    """The index of the first ``try`` from ``start`` on whose ``finally`` releases the lock the
    call ``acquire`` takes (``X.release()``, or under an ``if``); none if a nested definition
    comes first. A release on an early way out before it (``if done: lock.release(); return``)
    ends nothing on the path that goes on: the region runs to the end of that ``try``."""
    lock = ast.dump(acquire.func.value)  # type: ignore[attr-defined]
    for j in range(start, len(body)):
        st = body[j]
        if isinstance(st, ast.Try) and st.finalbody and _releases(st.finalbody, lock):
            return j
        if isinstance(st, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return None
    return None


def _dispatch_locals(events: list[Event]) -> tuple[tuple[str, str], ...]:
    """The locals every binding of which is ``getattr(self, f"<prefix>{...}")`` (or ``"<prefix>"
    + name``), with their prefixes: a call of one runs a method of ``self`` got by name."""
    found: dict[str, str] = {}
    other: set[str] = set()
    for e in events:
        if e.kind == K.CALL and e.ref == "getattr" and e.bind == Bind.LOCAL and e.name:
            ok = len(e.args) >= 2 and e.args[0] == "self" and e.args[1].startswith("fstr:")
            prefix = e.args[1][len("fstr:") :] if ok else ""
            if not prefix or found.get(e.name, prefix) != prefix:
                other.add(e.name)
            else:
                found[e.name] = prefix
        elif e.kind == K.LOCAL and (
            e.value is None or e.value.kind != "call" or e.value.ref != "getattr"
        ):
            other.add(e.ref)
    return tuple(sorted((k, v) for k, v in found.items() if k not in other))


def _once_per_call(events: list[Event], looped: list[int]) -> None:
    """An event of a loop body from which the loop never comes round again (``for attempt in
    range(3): ...; t = create_task(...); return t``) runs at most once per call: it is no
    ``repeated`` one. Found by the strongly connected components of the control-flow graph
    (iterative Tarjan): an event repeats only on a cycle."""
    n = len(events)
    index = [-1] * n
    low = [0] * n
    on = [False] * n
    stack: list[int] = []
    cyclic = [False] * n
    counter = 0
    for root in looped:
        if index[root] >= 0:
            continue
        work = [(root, 0)]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on[root] = True
        while work:
            v, k = work[-1]
            succ = events[v].succ
            if k < len(succ):
                work[-1] = (v, k + 1)
                w = succ[k]
                if index[w] < 0:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on[w] = True
                    work.append((w, 0))
                elif on[w]:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                u = work[-1][0]
                low[u] = min(low[u], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on[w] = False
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1 or v in events[v].succ:
                    for w in comp:
                        cyclic[w] = True
    for i in looped:
        if not cyclic[i]:
            events[i].repeated = False


def _scope_type(e: ast.expr) -> bool:
    """``scope["type"]`` or ``scope.get("type")``: an ASGI scope's type."""
    if isinstance(e, ast.Subscript):
        key = e.slice
    elif isinstance(e, ast.Call) and isinstance(e.func, ast.Attribute) and e.func.attr == "get":
        if not e.args:
            return False
        key = e.args[0]
    else:
        return False
    return isinstance(key, ast.Constant) and key.value == "type"


def _is_lifespan(e: ast.expr) -> bool:
    return isinstance(e, ast.Constant) and e.value == "lifespan"


def _lifespan_case(pattern: ast.pattern) -> bool:
    """``case "lifespan":`` (alone, not among alternatives)."""
    return isinstance(pattern, ast.MatchValue) and _is_lifespan(pattern.value)


def _lifespan_test(test: ast.expr) -> bool:
    """``scope["type"] == "lifespan"`` (or ``scope.get("type")``, either side): the ASGI
    test for the one lifespan call a server makes per application."""
    if not (
        isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
    ):
        return False
    left, right = test.left, test.comparators[0]
    return (_scope_type(left) and _is_lifespan(right)) or (
        _scope_type(right) and _is_lifespan(left)
    )
