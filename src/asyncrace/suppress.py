"""Suppression: ``# noqa: ARC001`` comments, file-level ``# asyncrace: noqa`` exemptions and
``per-file-ignores``; and the ARC100 report of ``noqa`` codes that silenced nothing.

Syntax (ruff's):

* ``# noqa: ARC001`` / ``# noqa:ARC001,ARC003`` / ``# NOQA: ARC001 ARC003`` at the end of the
  row the finding is reported on (its primary row). ``noqa`` is case-insensitive, codes are
  separated by commas and/or spaces, other linters' codes may be mixed in (``# noqa: E501,
  ARC001``); only codes starting with ``ARC`` concern asyncrace. The directive may follow other
  comment text (``# type: ignore  # noqa: ARC001``).
* A bare ``# noqa`` (no codes) does **not** silence asyncrace findings: such comments are
  usually written for other linters, and hiding a concurrency hazard behind one is worse than
  asking for the code.
* ``# asyncrace: noqa`` (every code) or ``# asyncrace: noqa: ARC001, ARC003`` on a line of its
  own exempts the whole file. It is recorded under row 0 of the :data:`NoqaMap`.
* Meta codes (ARC900-ARC902: the file was not checked) are never suppressed.

Comments are found with :mod:`tokenize`, so ``"# noqa"`` inside a string literal does not
count; when the file cannot be tokenized a line-by-line regex is used instead.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pathspec import GitIgnoreSpec

from asyncrace import registry
from asyncrace.diagnostic import Diagnostic, Location, Span
from asyncrace.settings import Settings

__all__ = [
    "FILE_ROW",
    "NoqaDirective",
    "NoqaMap",
    "Suppression",
    "apply",
    "parse_noqa",
    "per_file_ignored_codes",
]

FILE_ROW = 0
"""The :data:`NoqaMap` key of the file-level exemption."""

OUR_PREFIX = "ARC"
UNUSED_CODE = "ARC100"


@dataclass(frozen=True, slots=True)
class NoqaDirective:
    """One ``noqa`` comment (or, under row 0, the file-level exemptions merged)."""

    row: int  # 1-based row of the comment (the first one for a merged file-level entry)
    column: int  # 1-based column of the ``#`` that starts the directive
    end_column: int  # 1-based column just past the directive's text
    codes: tuple[str, ...] | None
    """Upper-cased codes in written order, duplicates removed; None when the directive
    names no codes (line level: honoured for nothing; file level: everything)."""

    @property
    def code_set(self) -> frozenset[str] | None:
        return None if self.codes is None else frozenset(self.codes)


NoqaMap = dict[int, NoqaDirective]
"""row -> directive on that row; row 0 (:data:`FILE_ROW`) holds the file-level exemption."""

# ``#`` then optional spaces then ``noqa``, then optionally ``:`` and codes
_CODE = r"[A-Za-z]+[0-9]+"
_NOQA_RE = re.compile(
    r"#\s*noqa(?![A-Za-z0-9_])(?:\s*:\s*(?P<codes>"
    + _CODE
    + r"(?:(?:\s*,\s*|\s+)"
    + _CODE
    + r")*))?",
    re.IGNORECASE,
)
_FILE_RE = re.compile(
    r"#\s*asyncrace\s*:\s*noqa(?![A-Za-z0-9_])(?:\s*:\s*(?P<codes>"
    + _CODE
    + r"(?:(?:\s*,\s*|\s+)"
    + _CODE
    + r")*))?",
    re.IGNORECASE,
)
_SPLIT_RE = re.compile(r"[\s,]+")


def _codes(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(dict.fromkeys(c.upper() for c in _SPLIT_RE.split(text.strip()) if c))


_NEWLINE_RE = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> list[str]:
    """Lines as the tokenizer counts them (only \\r\\n, \\r and \\n end a line)."""
    return _NEWLINE_RE.split(text)


def _comments(text: str) -> list[tuple[int, int, str, bool]]:
    """(row, 0-based column, comment text, alone on its line) for every comment."""
    try:
        found = []
        # newline=None: universal newlines, so that a lone \r ends a line as for the parser
        for tok in tokenize.generate_tokens(io.StringIO(text, newline=None).readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                found.append((row, col, tok.string, not tok.line[:col].strip()))
        return found
    except (tokenize.TokenError, SyntaxError, ValueError, IndexError):
        return _comments_by_regex(text)


def _comments_by_regex(text: str) -> list[tuple[int, int, str, bool]]:
    """Fallback for text that does not tokenize: every ``#`` that starts a noqa directive
    (a string literal containing one counts too)."""
    out = []
    for row, line in enumerate(_lines(text), 1):
        m = _FILE_RE.search(line) or _NOQA_RE.search(line)
        if m:
            col = m.start()
            out.append((row, col, line[col:], not line[:col].strip()))
    return out


def parse_noqa(text: str) -> NoqaMap:
    """The ``noqa`` directives of a source text. Never raises."""
    if "noqa" not in text.lower():
        return {}
    result: NoqaMap = {}
    file_codes: list[str] = []
    file_all = False
    file_first: tuple[int, int, int] | None = None
    try:
        comments = _comments(text)
    except Exception:  # defensive: parse_noqa must never fail a run
        comments = _comments_by_regex(text)
    for row, col, comment, alone in comments:
        if "noqa" not in comment.lower():
            continue
        fm = _FILE_RE.match(comment)
        if fm is not None:
            if alone:
                if file_first is None:
                    file_first = (row, col + 1, col + 1 + fm.end())
                codes = _codes(fm.group("codes"))
                if codes is None:
                    file_all = True
                else:
                    file_codes.extend(codes)
            continue  # a trailing ``# asyncrace: noqa`` is neither file- nor line-level
        m = _NOQA_RE.search(comment)
        if m is None:
            continue
        codes = _codes(m.group("codes"))
        prev = result.get(row)
        if prev is not None:  # two directives on one row: merge
            if prev.codes is not None and codes is not None:
                codes = tuple(dict.fromkeys((*prev.codes, *codes)))
            else:
                codes = prev.codes if codes is None else codes
            result[row] = replace(prev, codes=codes)
            continue
        result[row] = NoqaDirective(row, col + m.start() + 1, col + m.end() + 1, codes)
    if file_first is not None:
        row, col, end = file_first
        codes_t = None if file_all else tuple(dict.fromkeys(file_codes))
        result[FILE_ROW] = NoqaDirective(row, col, end, codes_t)
    return result


# --------------------------------------------------------------------------- per-file-ignores


def _abs(display: str) -> str:
    return os.path.abspath(display)


def _rel_to_root(display: str, root: Path) -> str | None:
    ap = _abs(display)
    rp = os.path.abspath(root)
    try:
        rel = os.path.relpath(ap, rp)
    except ValueError:  # another drive on Windows
        return None
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return rel.replace(os.sep, "/")


def _code_matches(code: str, selectors: Iterable[str]) -> bool:
    for sel in selectors:
        s = sel.upper()
        if s == "ALL" or code.startswith(s):
            return True
    return False


class _PerFileIgnores:
    def __init__(self, settings: Settings) -> None:
        self.root = settings.project_root
        self.entries: list[tuple[GitIgnoreSpec, frozenset[str]]] = []
        for pattern, codes in settings.per_file_ignores:
            try:
                spec = GitIgnoreSpec.from_lines([pattern])
            except ValueError:
                continue  # config.py rejects invalid patterns; be lenient here
            self.entries.append((spec, codes))
        self._cache: dict[str, frozenset[str]] = {}

    def codes_for(self, display: str) -> frozenset[str]:
        if display not in self._cache:
            # below the root: the relative path (a pattern without ``/`` matches the name at
            # any depth); outside it: the file's name
            rel = _rel_to_root(display, self.root)
            if rel is None:
                rel = os.path.basename(_abs(display))
            out: set[str] = set()
            for spec, codes in self.entries:
                if spec.match_file(rel):
                    out |= codes
            self._cache[display] = frozenset(out)
        return self._cache[display]


def per_file_ignored_codes(path: str | Path, settings: Settings) -> frozenset[str]:
    """The code selectors (codes or prefixes) ``per-file-ignores`` sets for ``path`` (a display
    path, relative to the working directory, or absolute). Patterns are gitignore-style, matched
    against the path relative to the project root (a pattern without ``/``, such as
    ``"__init__.py"`` or ``"*_test.py"``, matches the file's name at any depth; ``"tests/**"`` is
    anchored at the root); a file outside the project root is matched by its name."""
    return _PerFileIgnores(settings).codes_for(str(path))


# --------------------------------------------------------------------------------------- apply


@dataclass
class Suppression:
    """What :func:`apply` decided. ``kept`` and ``unused`` are reported, ``suppressed`` (each
    with ``suppressed=True``) only with ``--show-suppressed``. All three lists are sorted."""

    kept: list[Diagnostic] = field(default_factory=list)
    suppressed: list[Diagnostic] = field(default_factory=list)
    unused: list[Diagnostic] = field(default_factory=list)  # ARC100, not included in ``kept``

    @property
    def reported(self) -> list[Diagnostic]:
        """``kept`` + ``unused``, sorted: everything to report."""
        return sorted([*self.kept, *self.unused], key=lambda d: d.sort_key)


def _fmt(codes: Iterable[str]) -> str:
    return ", ".join(f"`{c}`" for c in codes)


def _unused_diagnostic(
    path: str, directive: NoqaDirective, unused: list[str], disabled: list[str], unknown: list[str]
) -> Diagnostic:
    parts = []
    if unused:
        parts.append(f"unused: {_fmt(unused)}")
    if disabled:
        parts.append(f"non-enabled: {_fmt(disabled)}")
    if unknown:
        parts.append(f"unknown: {_fmt(unknown)}")
    message = "Unused `noqa` directive"
    if parts:
        message += f" ({'; '.join(parts)})"
    info = registry.info(UNUSED_CODE)
    return Diagnostic(
        code=UNUSED_CODE,
        name=info.name,
        message=message,
        span=Span(
            path,
            Location(directive.row, directive.column),
            Location(directive.row, directive.end_column),
        ),
        fix="Remove the unused codes from the `noqa` comment (or the comment itself)",
        url=info.url,
    )


def apply(
    diagnostics: Sequence[Diagnostic],
    noqa: Mapping[str, NoqaMap],
    settings: Settings,
    *,
    report_unused: bool,
) -> Suppression:
    """Split ``diagnostics`` into kept and suppressed.

    ``noqa`` maps a display path (``Diagnostic.span.path``) to :func:`parse_noqa` of its text.
    A diagnostic is suppressed when its code is named by the ``noqa`` comment on its primary
    row (``span.start.row``), by the file-level exemption, or by ``per-file-ignores`` for its
    path (codes or prefixes, ``ALL``); checked in that order, the first one gets the credit.
    Meta codes (``registry.META_CODES``) are never suppressed.

    With ``report_unused`` (ARC100 selected), every line-level directive naming ``ARC`` codes
    that silenced nothing yields one ARC100 diagnostic at its ``#`` (ruff's RUF100 message:
    ``unused:`` codes, ``non-enabled:`` codes not in ``settings.enabled``, ``unknown:`` codes not
    in the registry). These go to ``unused`` (or ``suppressed``, when ``per-file-ignores``, the
    file-level exemption or ``ARC100`` on the same comment silence them); bare ``# noqa`` and
    file-level exemptions are not reported.
    """
    pfi = _PerFileIgnores(settings)
    kept: list[Diagnostic] = []
    suppressed: list[Diagnostic] = []
    used: set[tuple[str, int, str]] = set()  # (path, row, code) of directives that matched

    def is_suppressed(d: Diagnostic) -> bool:
        if d.code in registry.META_CODES:
            return False
        nm = noqa.get(d.path)
        if nm:
            directive = nm.get(d.span.start.row)
            if directive is not None and directive.codes is not None:
                for code in directive.codes:
                    if code == d.code:
                        used.add((d.path, d.span.start.row, code))
                        return True
            file_level = nm.get(FILE_ROW)
            if file_level is not None and (file_level.codes is None or d.code in file_level.codes):
                return True
        return _code_matches(d.code, pfi.codes_for(d.path))

    for d in diagnostics:
        if is_suppressed(d):
            suppressed.append(replace(d, suppressed=True))
        else:
            kept.append(d)

    unused_out: list[Diagnostic] = []
    if report_unused:
        for path, nm in noqa.items():
            for row, directive in nm.items():
                if row == FILE_ROW or directive.codes is None:
                    continue
                ours = [c for c in directive.codes if c.startswith(OUR_PREFIX)]
                if not ours:
                    continue
                unused: list[str] = []
                disabled: list[str] = []
                unknown: list[str] = []
                for code in ours:
                    if (path, row, code) in used or code == UNUSED_CODE:
                        continue
                    if code not in registry.BY_CODE:
                        unknown.append(code)
                    elif code not in settings.enabled:
                        disabled.append(code)
                    else:
                        unused.append(code)
                if not (unused or disabled or unknown):
                    continue
                diag = _unused_diagnostic(path, directive, unused, disabled, unknown)
                if UNUSED_CODE in directive.codes or is_suppressed(diag):
                    suppressed.append(replace(diag, suppressed=True))
                else:
                    unused_out.append(diag)

    def key(d: Diagnostic) -> tuple[str, int, int, str, str]:
        return d.sort_key

    return Suppression(
        sorted(kept, key=key), sorted(suppressed, key=key), sorted(unused_out, key=key)
    )
