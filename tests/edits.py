"""Random source edits for the differential test of incremental runs (test_incremental.py,
bench/differential.py): each keeps the file valid Python and most keep its interface, the
edits a developer makes inside function bodies between two runs."""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass
from pathlib import Path

# (name, what the edit does); ``body`` edits keep the module's interface most of the time,
# ``interface`` edits change it (the run falls back to a full one)
KINDS = (
    "insert_pass",  # a line inserted in a body: every later position moves
    "insert_await",  # an await point added before a statement
    "insert_comment",
    "drop_statement",  # a one-line statement replaced by ``pass``
    "negate_test",  # an ``if`` test replaced by ``True``
    "blank_line_at_top",  # every position of the file moves
    "add_function",  # interface: a new function at the end
    "rename_call",  # a call's name changed in a body (its mentions may change)
    "add_import",  # interface: an import at the top
    "add_class",  # interface: a class at the end
    "add_variable",  # a module variable at the end
)


@dataclass(frozen=True)
class Edit:
    path: Path
    kind: str
    line: int  # 1-based line edited, 0 for the whole file

    def __str__(self) -> str:
        return f"{self.kind} at {self.path}:{self.line}"


def _statements(tree: ast.AST) -> list[tuple[ast.stmt, bool]]:
    """One-line statements inside function bodies, with whether the function is async."""
    out: list[tuple[ast.stmt, bool]] = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        is_async = isinstance(fn, ast.AsyncFunctionDef)
        for node in ast.walk(fn):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(node, field, None)
                if not isinstance(block, list):
                    continue  # a lambda's body is an expression
                for st in block:
                    if isinstance(st, ast.stmt) and st.lineno == st.end_lineno:
                        out.append((st, is_async))
    return out


def apply_random(files: list[Path], rng: random.Random, kinds: tuple[str, ...] = KINDS) -> Edit:
    """Edit one of ``files`` at random (in place); the edit made."""
    for _ in range(200):
        path = rng.choice(files)
        text = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        lines = text.split("\n")
        kind = rng.choice(kinds)
        if kind == "add_variable":
            n = rng.randrange(10**6)
            path.write_text(text + f"\n\n_EDIT_{n} = Lock()\n", encoding="utf-8")
            return Edit(path, kind, len(lines) + 2)
        if kind == "add_class":
            n = rng.randrange(10**6)
            path.write_text(
                text + f"\n\nclass _Edit{n}:\n    async def run(self):\n        pass\n",
                encoding="utf-8",
            )
            return Edit(path, kind, len(lines) + 2)
        if kind == "add_import":
            n = rng.randrange(10**6)
            path.write_text(f"import json as _edit_json_{n}\n" + text, encoding="utf-8")
            return Edit(path, kind, 1)
        if kind == "blank_line_at_top":
            path.write_text("\n" + text, encoding="utf-8")
            return Edit(path, kind, 0)
        if kind == "add_function":
            n = rng.randrange(10**6)
            path.write_text(
                text + f"\n\nasync def _edit_{n}(x):\n    return await x\n", encoding="utf-8"
            )
            return Edit(path, kind, len(lines) + 2)
        stmts = _statements(tree)
        if kind == "insert_await":
            stmts = [(s, a) for s, a in stmts if a]
        if kind == "negate_test":
            multi = [
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.If) and n.test.lineno == n.test.end_lineno == n.lineno
            ]
            if multi:
                node = rng.choice(multi)
                row = node.lineno - 1
                line = lines[row]
                start = node.test.col_offset
                end = node.test.end_col_offset or start
                prefix = line.encode("utf-8")[:start].decode("utf-8", "replace")
                suffix = line.encode("utf-8")[end:].decode("utf-8", "replace")
                lines[row] = prefix + "True" + suffix
                new = "\n".join(lines)
                if _valid(new):
                    path.write_text(new, encoding="utf-8")
                    return Edit(path, kind, node.lineno)
            continue
        if kind == "rename_call":
            calls = [
                n
                for n in ast.walk(tree)
                if isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and n.func.end_lineno == n.func.lineno
            ]
            if not calls:
                continue
            node = rng.choice(calls)
            row = node.func.lineno - 1
            raw = lines[row].encode("utf-8")
            end = node.func.end_col_offset or 0
            attr = node.func.attr.encode("utf-8")
            if raw[end - len(attr) : end] != attr:
                continue
            lines[row] = (raw[:end] + b"_edited" + raw[end:]).decode("utf-8", "replace")
            new = "\n".join(lines)
            if _valid(new):
                path.write_text(new, encoding="utf-8")
                return Edit(path, kind, node.func.lineno)
            continue
        if not stmts:
            continue
        st, _is_async = rng.choice(stmts)
        row = st.lineno - 1
        indent = lines[row][: st.col_offset]
        if indent.strip() != "":
            continue  # ``if x: y`` on one line: the statement does not start the line
        if kind == "insert_pass":
            lines.insert(row, indent + "pass")
        elif kind == "insert_await":
            lines.insert(row, indent + "await asyncio.sleep(0)")
        elif kind == "insert_comment":
            lines.insert(row, indent + "# an edit")
        elif kind == "drop_statement":
            lines[row] = indent + "pass"
        new = "\n".join(lines)
        if _valid(new):
            path.write_text(new, encoding="utf-8")
            return Edit(path, kind, st.lineno)
    raise RuntimeError("no edit could be made")


def _valid(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True
