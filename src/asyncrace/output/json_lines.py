"""``json-lines``: the objects of the ``json`` format, one compact JSON document per line
(ruff's ``json-lines``), for tools that stream findings."""

from __future__ import annotations

import json
from collections.abc import Sequence

from asyncrace.diagnostic import Diagnostic
from asyncrace.output._common import ordered
from asyncrace.output.json_format import diagnostic_to_json


def render_json_lines(diagnostics: Sequence[Diagnostic]) -> str:
    return "".join(
        json.dumps(diagnostic_to_json(d), sort_keys=True, separators=(",", ":")) + "\n"
        for d in ordered(diagnostics)
    )
