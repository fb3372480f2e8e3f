"""Lowering: code written for a newer Python than the running one, turned into text that the
running interpreter's :mod:`ast` parser accepts, so that it can be analyzed at all.

It is only tried when ``ast.parse`` has already failed with a ``SyntaxError``. libcst's native
parser accepts the newer grammar; from its tree we compute the spans of the constructs the
running parser rejects and splice same-length replacements into the original text:

* PEP 695 type parameter lists (``def f[T](x)``, ``class C[T]:``) and PEP 696 defaults in them
  are blanked with spaces: ``def f   (x)``. A list spanning lines becomes the opening bracket
  of the parameter list (``def f(\\n ...\\n  x)``), so the line count stays the same.
* ``type X[T] = Y`` becomes the assignment ``X         = Y`` (same length; ``(X ...)`` when the
  head spans lines); the value keeps its place.
* A PEP 701 f-string (or a PEP 750 t-string) that the running parser cannot read on its own
  becomes a plain string literal of the same length and quote kind, newlines kept (a
  backslash before each one in a single-quoted literal). The expressions inside it are lost.
* ``except A, B:`` (PEP 758) is parenthesized: the blank after ``except`` becomes ``(``, and a
  ``)`` is inserted after the last type (the only edit that shifts columns, by one, on that line).
* On Python 3.10: ``except*`` becomes ``except``.

Every line keeps its number, and columns stay where they were except after a PEP 758 ``)``.
If the lowered text still does not parse, the caller reports the original ``SyntaxError``.

libcst's parser recurses natively and takes time quadratic in the nesting depth, so it is not
run on inputs that could crash or stall it: text over :data:`MAX_CHARS` characters, text with a
NUL, and text whose :func:`nesting_estimate` exceeds :data:`MAX_DEPTH`. Callers run it on a
thread with a large stack (see :mod:`asyncrace.run.pipeline`).
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

# libcst parses 0.2 to 1 MB/s; beyond this a file with a syntax error is reported without trying
MAX_CHARS = 2_000_000
# estimated parse-tree depth beyond which libcst is not run (it parses depth 1,000 in 0.1 s,
# 3,000 in 2 s, 10,000 in 35 s, and overflows an 8 MiB stack near 10,000)
MAX_DEPTH = 1_000

__all__ = ["MAX_CHARS", "MAX_DEPTH", "lower", "nesting_estimate"]


# ------------------------------------------------------------------------- the depth estimate

_TOKEN = re.compile(
    r"""
    (?P<str>(?:[rRbBfFuUtT]{1,2})?(?:'''(?:[^'\\]|\\.|'(?!''))*'''|\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"
        |'(?:[^'\\\n\r]|\\(?:\r\n|.))*'|"(?:[^"\\\n\r]|\\(?:\r\n|.))*"))
    |(?P<comment>\#[^\r\n]*)
    |(?P<cont>\\(?:\r\n|\r|\n))
    |(?P<nl>(?:\r\n|\r|\n)[ \t\f]*)
    |(?P<open>[(\[{])
    |(?P<close>[)\]}])
    |(?P<sep>[,;])
    |(?P<word>\w+)
    |(?P<space>[ \t\f]+)
    |(?P<op>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _fstring_inner(literal: str) -> int:
    """Characters inside the replacement fields of an f/t-string literal, and their nesting."""
    prefix = literal[: len(literal) - len(literal.lstrip("rRbBfFuUtT"))].lower()
    if "f" not in prefix and "t" not in prefix:
        return 0
    depth = count = 0
    i, n = 0, len(literal)
    while i < n:
        c = literal[i]
        if c == "{":
            if depth == 0 and literal.startswith("{{", i):
                i += 2
                continue
            depth += 1
            count += 1
        elif c == "}" and depth:
            depth -= 1
        elif depth and not c.isspace():
            count += 1
        i += 1
    return count


def nesting_estimate(text: str, limit: int = MAX_DEPTH) -> int:
    """A cheap over-estimate of the depth of the parse tree of ``text``, for deciding whether
    libcst may parse it: per logical line, the sum over the open brackets of the tokens since
    the last comma at that level, plus the indentation width and the length of an ``elif``
    chain; an f-string counts the characters of its replacement fields. Stops as soon as the
    estimate exceeds ``limit`` (and returns it)."""
    stack: list[int] = []  # outer levels' token counts
    base = 0  # sum of the outer counts + number of open levels
    cur = 0  # tokens at the current level since its last separator
    indent = 0
    chains: dict[int, int] = {}
    line_start = True
    best = 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind in ("space", "comment", "cont"):
            continue
        if kind == "nl":
            if not stack:
                cur = 0
                line_start = True
                indent = len(m.group().lstrip("\r\n").expandtabs(8))
            continue
        if line_start:
            line_start = False
            word = m.group()
            if word == "elif":
                chains[indent] = chains.get(indent, 0) + 1
            elif word != "else":
                chains[indent] = 0
            base_line = indent + chains.get(indent, 0)
            if base_line > best:
                best = base_line
                if best > limit:
                    return best
        if kind == "open":
            cur += 1
            stack.append(cur)
            base += cur + 1
            cur = 0
        elif kind == "close":
            if stack:
                outer = stack.pop()
                base -= outer + 1
                cur = outer
        elif kind == "sep":
            cur = 0
        else:
            cur += 1
            if kind == "str":
                cur += _fstring_inner(m.group())
        depth = base + cur + indent + chains.get(indent, 0)
        if depth > best:
            best = depth
            if best > limit:
                return best
    return best


# ------------------------------------------------------------------------------- the lowering


@dataclass(frozen=True, slots=True)
class _Edit:
    start: int  # offsets into the text
    end: int
    text: str


def _blank(s: str) -> str:
    """Spaces for every character but line breaks."""
    return "".join(c if c in "\r\n" else " " for c in s)


def _line_offsets(text: str) -> list[int]:
    """Offsets of the line starts, counting lines as the tokenizer (and libcst) does."""
    offsets = [0]
    for m in re.finditer(r"\r\n|\r|\n", text):
        offsets.append(m.end())
    return offsets


def _parses(code: str) -> bool:
    try:
        ast.parse("(\n" + code + "\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


class _Collector(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, text: str, version: tuple[int, int]) -> None:
        super().__init__()
        self.text = text
        self.version = version
        self.lines = _line_offsets(text)
        self.edits: list[_Edit] = []

    def span(self, node: cst.CSTNode) -> tuple[int, int]:
        r = self.get_metadata(PositionProvider, node)
        assert isinstance(r, CodeRange)
        return (
            self.lines[r.start.line - 1] + r.start.column,
            self.lines[r.end.line - 1] + r.end.column,
        )

    def add(self, start: int, end: int, text: str) -> None:
        self.edits.append(_Edit(start, end, text))

    # -- PEP 695 / 696 ---------------------------------------------------------------------
    def _type_params(self, params: cst.TypeParameters | None) -> None:
        if params is None:
            return
        start, end = self.span(params)
        region = self.text[start:end]
        if "\n" not in region and "\r" not in region:
            self.add(start, end, _blank(region))
            return
        # a list spanning lines: its "[" opens the parameter list (or the bases), so the
        # line breaks stay inside brackets
        rest = end
        while rest < len(self.text) and self.text[rest] in " \t\f":
            rest += 1
        if rest < len(self.text) and self.text[rest] == "(":
            self.add(start, rest + 1, "(" + _blank(self.text[start + 1 : rest + 1]))
        else:
            self.add(start, end, "(" + _blank(region[1:-1]) + ")")

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self._type_params(node.type_parameters)

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self._type_params(node.type_parameters)

    def visit_TypeAlias(self, node: cst.TypeAlias) -> bool:
        start, _ = self.span(node)
        name_start, name_end = self.span(node.name)
        head_end = self.span(node.type_parameters)[1] if node.type_parameters else name_end
        head = self.text[start:head_end]
        name = self.text[name_start:name_end]
        out = list(_blank(head))
        if "\n" not in head and "\r" not in head:
            out[: len(name)] = name
        else:
            first_line = re.split(r"\r\n|\r|\n", head, maxsplit=1)[0]
            target = name if len(name) + 1 <= len(first_line) else "_"
            out[0] = "("
            out[1 : 1 + len(target)] = target
            out[-1] = ")"
        self.add(start, head_end, "".join(out))
        return True  # f-strings in the value may need lowering too

    # -- PEP 701 / PEP 750 -----------------------------------------------------------------
    def _string(self, node: cst.FormattedString | cst.TemplatedString) -> bool:
        start, end = self.span(node)
        code = self.text[start:end]
        if isinstance(node, cst.FormattedString) and _parses(code):
            return False  # the running parser reads it: keep its expressions
        quote = node.end
        q = len(quote)
        out = list(_blank(code))
        if len(out) < 2 * q:
            return False
        out[:q] = quote
        out[len(out) - q :] = quote
        if q == 1:  # newlines in a single-quoted literal: escape them
            for i, c in enumerate(code):
                if c == "\n" and i > 0 and code[i - 1] == "\r":
                    continue
                if c in "\r\n":
                    if i - 1 < q or out[i - 1] in "\r\n":
                        return False  # cannot lower this literal; the file stays unparsed
                    out[i - 1] = "\\"
        self.add(start, end, "".join(out))
        return False

    def visit_FormattedString(self, node: cst.FormattedString) -> bool:
        return self._string(node)

    def visit_TemplatedString(self, node: cst.TemplatedString) -> bool:
        return self._string(node)

    # -- PEP 758 and except* ---------------------------------------------------------------
    def _handler_types(self, node: cst.ExceptHandler | cst.ExceptStarHandler) -> None:
        typ = node.type
        if isinstance(typ, cst.Tuple) and not typ.lpar:
            start, end = self.span(typ)
            if start > 0 and self.text[start - 1] in " \t\f":
                self.add(start - 1, start, "(")
            else:
                self.add(start, start, "(")
            self.add(end, end, ")")

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        self._handler_types(node)

    def visit_ExceptStarHandler(self, node: cst.ExceptStarHandler) -> None:
        self._handler_types(node)
        if self.version < (3, 11):
            start, _ = self.span(node)
            star = self.text.find("*", start)
            if star != -1:
                self.add(star, star + 1, " ")


def _apply(text: str, edits: list[_Edit]) -> str:
    """Splice the edits (an edit inside an earlier, larger one is dropped)."""
    out: list[str] = []
    pos = 0
    for e in sorted(edits, key=lambda e: (e.start, -e.end)):
        if e.start < pos or (e.start == pos and e.end < pos):
            continue  # inside a region already replaced
        out.append(text[pos : e.start])
        out.append(e.text)
        pos = max(pos, e.end)
    out.append(text[pos:])
    return "".join(out)


def lower(text: str, version: tuple[int, int] | None = None) -> str | None:
    """``text`` with the newer syntax lowered for the parser of Python ``version`` (default:
    the running one), or None when libcst does not parse it, when it is too big or too deep to
    try (see the module docstring), or when nothing in it needs lowering."""
    if len(text) > MAX_CHARS or "\0" in text or nesting_estimate(text) > MAX_DEPTH:
        return None
    try:
        module = cst.parse_module(text)
        if module.code != text:  # never lower a text that libcst does not reproduce exactly
            return None
        collector = _Collector(text, version or (sys.version_info[0], sys.version_info[1]))
        MetadataWrapper(module, unsafe_skip_copy=True).visit(collector)
    except Exception:  # ParserSyntaxError and anything else libcst raises: not lowerable
        return None
    if not collector.edits:
        return None
    return _apply(text, collector.edits)
