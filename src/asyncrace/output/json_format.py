"""ruff's JSON output shape, plus ``name``, ``help`` (the fix hint in words, or null) and
``related`` (the steps of the hazard). ``fix`` is always null: asyncrace never edits code, and
ruff's ``fix`` stands for edits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from asyncrace.diagnostic import Diagnostic, Location
from asyncrace.output._common import ordered, rule_name, rule_url


def _location(loc: Location) -> dict[str, int]:
    return {"row": loc.row, "column": loc.column}


def _filename(path: str) -> str:
    return str(Path(path).resolve())


def diagnostic_to_json(d: Diagnostic) -> dict[str, object]:
    return {
        "cell": None,
        "code": d.code,
        "end_location": _location(d.span.end),
        "filename": _filename(d.path),
        "fix": None,
        "help": d.fix,
        "location": _location(d.span.start),
        "message": d.message,
        "name": rule_name(d),
        "noqa_row": d.span.start.row,
        "url": rule_url(d),
        "related": [
            {
                "message": r.message,
                "filename": _filename(r.span.path),
                "location": _location(r.span.start),
                "end_location": _location(r.span.end),
            }
            for r in d.related
        ],
    }


def render_json(diagnostics: Sequence[Diagnostic]) -> str:
    items = [diagnostic_to_json(d) for d in ordered(diagnostics)]
    return json.dumps(items, indent=2, sort_keys=True) + "\n"
