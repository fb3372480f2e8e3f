"""``path:row:col: CODE message``, one line per diagnostic (ruff's concise format)."""

from __future__ import annotations

from collections.abc import Sequence

from asyncrace.diagnostic import Diagnostic
from asyncrace.output._common import ordered, printable


def render_concise(diagnostics: Sequence[Diagnostic]) -> str:
    lines = [
        f"{printable(d.path)}:{d.span.start.row}:{d.span.start.column}: "
        f"{d.code} {printable(d.message)}"
        for d in ordered(diagnostics)
    ]
    return "".join(line + "\n" for line in lines)
