"""Fingerprints: a stable identity for a finding, used by SARIF (``partialFingerprints``) and
by baselines.

A fingerprint is the BLAKE2b-128 hex digest (32 hex digits) of:

- the code and the display path of the primary span,
- the text of every source line the primary span covers, stripped of surrounding whitespace,
- the display path and the stripped lines of each related span, in order,
- the message,
- the occurrence index (see below).

Line and column numbers are not part of it, so inserting or deleting lines elsewhere in the
file, or re-indenting the code, keeps the fingerprint; editing the flagged lines, moving them
to another file, or a change of wording in the message changes it. When the source of a file
is not available its lines count as empty.

Two findings can have identical keys (the same code and message on identical lines, e.g. a
pattern repeated in one file). They are told apart by their *occurrence index*: in report
order (``sort_diagnostics``, so top to bottom in the file), the first finding with a given
key has index 0, the next 1, and so on. :func:`fingerprints` computes it over a whole report;
:func:`fingerprint` takes it as an argument (0 for a finding whose key is unique). Removing
one of several identical findings renumbers the ones below it, like GitHub's
``primaryLocationLineHash``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable

from asyncrace.diagnostic import Diagnostic, Span
from asyncrace.output._common import ordered
from asyncrace.sources import SourceStore

VERSION = "v2"  # v2: line references in messages are masked

_LINE_REF = re.compile(r"\b(line )\d+\b|(\.pyi?:)\d+\b")


def mask_line_numbers(message: str) -> str:
    """``message`` with its references to other steps' lines (``line 61``, ``other.py:34``, as
    the rules write them) masked: they move with every line inserted above the finding, and a
    fingerprint must not."""
    return _LINE_REF.sub(lambda m: (m.group(1) or m.group(2)) + "#", message)


def _span_lines(span: Span, sources: SourceStore) -> list[str]:
    lines = sources.lines(span.path)
    first = max(span.start.row, 1)
    last = min(max(span.end.row, first), len(lines))
    return [lines[row - 1].strip() for row in range(first, last + 1)]


def _key(d: Diagnostic, sources: SourceStore) -> list[object]:
    return [
        d.code,
        d.path,
        _span_lines(d.span, sources),
        [[r.span.path, _span_lines(r.span, sources)] for r in d.related],
        mask_line_numbers(d.message),
    ]


def _digest(key: list[object], occurrence: int) -> str:
    payload = json.dumps(["asyncrace", VERSION, *key, occurrence], ensure_ascii=False)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()


def fingerprint(d: Diagnostic, sources: SourceStore, occurrence: int = 0) -> str:
    """The fingerprint of ``d``; ``occurrence`` is its index among identical findings."""
    return _digest(_key(d, sources), occurrence)


def fingerprints(
    diagnostics: Iterable[Diagnostic], sources: SourceStore
) -> list[tuple[Diagnostic, str]]:
    """Every diagnostic in report order with its fingerprint, occurrence indexes assigned."""
    seen: dict[str, int] = {}
    out = []
    for d in ordered(diagnostics):
        key = _key(d, sources)
        marker = json.dumps(key, ensure_ascii=False)
        occurrence = seen.get(marker, 0)
        seen[marker] = occurrence + 1
        out.append((d, _digest(key, occurrence)))
    return out
