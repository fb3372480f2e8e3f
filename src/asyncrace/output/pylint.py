"""``pylint``: ``path:row: [CODE] message``, one line each (ruff's ``pylint`` format, which
editors and CI parsers written for pylint's ``parseable`` output understand)."""

from __future__ import annotations

from collections.abc import Sequence

from asyncrace.diagnostic import Diagnostic
from asyncrace.output._common import ordered, printable


def render_pylint(diagnostics: Sequence[Diagnostic]) -> str:
    return "".join(
        f"{printable(d.path)}:{d.span.start.row}: [{d.code}] {printable(d.message)}\n"
        for d in ordered(diagnostics)
    )
