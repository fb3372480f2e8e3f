"""``--statistics``: how many findings of each code, most frequent first (ruff's shape): a
table, or with ``--output-format json`` a JSON array of ``{"code", "name", "count",
"fixable", "fixable_count"}`` (asyncrace never rewrites code: nothing is fixable)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from asyncrace.diagnostic import Diagnostic
from asyncrace.output._common import ordered, rule_name


def _rows(diagnostics: Sequence[Diagnostic]) -> list[tuple[str, str, int]]:
    counts = Counter(d.code for d in diagnostics)
    names: dict[str, str] = {}
    for d in ordered(diagnostics):
        names.setdefault(d.code, rule_name(d))
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(code, names[code], count) for code, count in rows]


def render_statistics(diagnostics: Sequence[Diagnostic]) -> str:
    rows = _rows(diagnostics)
    if not rows:
        return ""
    w = len(str(max(count for _, _, count in rows)))
    return "".join(f"{count:>{w}}\t{code}\t{name}\n" for code, name, count in rows)


def render_statistics_json(diagnostics: Sequence[Diagnostic]) -> str:
    items = [
        {"code": code, "name": name, "count": count, "fixable": False, "fixable_count": 0}
        for code, name, count in _rows(diagnostics)
    ]
    return json.dumps(items, indent=2) + "\n"
