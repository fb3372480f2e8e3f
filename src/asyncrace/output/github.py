"""GitHub Actions workflow commands: one ``::error`` annotation per diagnostic, its message
followed by the fix hint on a second line (``  help: ...``, as ruff writes it).

Escaping follows the runner's rules (``toCommandValue`` / ``escapeProperty`` in
``@actions/core``): in the message ``%``, ``\\r`` and ``\\n`` are percent-encoded; property
values additionally encode ``:`` and ``,``, which separate properties."""

from __future__ import annotations

from collections.abc import Sequence

from asyncrace.diagnostic import Diagnostic
from asyncrace.output._common import ordered


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    out = []
    for d in ordered(diagnostics):
        s = d.span
        props = ",".join(
            f"{key}={escape_property(value)}"
            for key, value in (
                ("title", f"asyncrace ({d.code})"),
                ("file", s.path),
                ("line", str(s.start.row)),
                ("col", str(s.start.column)),
                ("endLine", str(s.end.row)),
                ("endColumn", str(s.end.column)),
            )
        )
        data = f"{s.path}:{s.start.row}:{s.start.column}: {d.code} {d.message}"
        if d.fix:
            data += f"\n  help: {d.fix}"
        out.append(f"::error {props}::{escape_data(data)}\n")
    return "".join(out)
