"""``--statistics``: how many findings of each code, most frequent first (ruff's shape)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from asyncrace.diagnostic import Diagnostic
from asyncrace.output._common import ordered, rule_name


def render_statistics(diagnostics: Sequence[Diagnostic]) -> str:
    counts = Counter(d.code for d in diagnostics)
    if not counts:
        return ""
    names: dict[str, str] = {}
    for d in ordered(diagnostics):
        names.setdefault(d.code, rule_name(d))
    w = len(str(max(counts.values())))
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return "".join(f"{count:>{w}}\t{code}\t{names[code]}\n" for code, count in rows)
