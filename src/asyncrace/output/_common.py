"""Helpers shared by the output formats: ordering, rule metadata and the steps of a finding."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from asyncrace.diagnostic import Diagnostic, Span, sort_diagnostics
from asyncrace.registry import BY_CODE, META_CODES


def _total_key(d: Diagnostic) -> tuple[object, ...]:
    # ``Diagnostic.sort_key`` leaves ties (same position, code and message); break them on
    # every other field so shuffled input always renders the same bytes.
    return (
        d.sort_key,
        d.span.end,
        tuple((r.span, r.message) for r in d.related),
        d.fix is not None,
        d.fix or "",
        d.name,
        d.url or "",
        d.suppressed,
    )


def ordered(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics in report order: ``sort_diagnostics``, with a total tie-break."""
    return sort_diagnostics(sorted(diagnostics, key=_total_key))


def rule_name(d: Diagnostic) -> str:
    """The kebab-case name from the registry (the diagnostic's own name for unknown codes)."""
    rule = BY_CODE.get(d.code)
    return rule.name if rule is not None else d.name


def rule_url(d: Diagnostic) -> str | None:
    if d.url:
        return d.url
    rule = BY_CODE.get(d.code)
    return rule.url if rule is not None else None


def level(code: str) -> str:
    """SARIF level: meta codes (the file was not checked) are errors, findings warnings."""
    return "error" if code in META_CODES else "warning"


@dataclass(frozen=True, slots=True)
class Step:
    """One location of a finding as the full view and SARIF code flows show it."""

    span: Span
    label: str | None  # None for the primary step unless a related step names it
    primary: bool


def steps(d: Diagnostic) -> list[Step]:
    """The primary location first, then the related ones in their order.

    A rule may list the primary span among its related steps too (e.g. "read here after the
    await"); that step is folded into the primary one, which takes its message as label, so
    the same code is not shown twice."""
    folded: int | None = next((i for i, r in enumerate(d.related) if r.span == d.span), None)
    label = d.related[folded].message if folded is not None else None
    out = [Step(d.span, label, True)]
    out.extend(Step(r.span, r.message, False) for i, r in enumerate(d.related) if i != folded)
    return out


_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _printable_char(ch: str) -> str:
    o = ord(ch)
    if o < 0x20:
        return chr(0x2400 + o)  # the Unicode "control pictures": a visible, one-cell glyph
    if o == 0x7F:
        return "\u2421"
    if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
        return "\ufffd"
    return ch


def printable(text: str, *, keep_tabs: bool = False) -> str:
    """``text`` with control, line-separator and bidi-override characters replaced by a
    visible one-cell character, so a terminal shows exactly one line and columns stay put.
    Tabs are kept when ``keep_tabs`` (the caller expands them), else become one space."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch == "\t":
            out.append(ch if keep_tabs else " ")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(_printable_char(ch))
    return "".join(out)
