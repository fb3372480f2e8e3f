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
* Meta codes (ARC900-ARC903: the file was not checked) are never suppressed.

Comments are found as :mod:`tokenize` finds them, so ``"# noqa"`` inside a string literal does
not count; when the file cannot be tokenized a line-by-line regex is used instead. Tokenizing a
whole file costs about as much as parsing it, so for a file the parser accepted only the string
literals and comments are scanned for (one regular expression), and only when some line holds
``#`` and ``noqa`` (:func:`parse_noqa`'s ``parsed``); the result is the tokenizer's.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from asyncrace import registry
from asyncrace.diagnostic import Diagnostic, Location, Span
from asyncrace.settings import Settings

if TYPE_CHECKING:  # pathspec is imported when a per-file-ignores pattern is first needed
    from pathspec import GitIgnoreSpec

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

# ``#`` then optional spaces then ``noqa`` (the codes after it are read by :func:`_lex_codes`)
_NOQA_RE = re.compile(r"#\s*noqa(?![A-Za-z0-9_])", re.IGNORECASE)
_FILE_RE = re.compile(r"#\s*asyncrace\s*:\s*noqa(?![A-Za-z0-9_])", re.IGNORECASE)
_COLON_RE = re.compile(r"\s*:\s*")
_CODE_RE = re.compile(r"[A-Za-z]+[0-9]+")


@dataclass(frozen=True, slots=True)
class NoqaProblem:
    """A malformed ``noqa`` comment, worded as ruff words its warnings: ``{kind} at
    path:row: {detail}``."""

    row: int
    kind: str
    detail: str

    def message(self, path: str) -> str:
        return f"{self.kind} at {path}:{self.row}: {self.detail}"


_JOINED = "Missing or joined rule code(s)"
_INVALID = "Invalid `# noqa` directive"


def _lex_codes(rest: str) -> tuple[tuple[str, ...] | None, int, list[tuple[str, str, str]]]:
    """The codes of a directive from the text after ``noqa``: (codes or None, the offset in
    ``rest`` just past the last code, problems as (kind, detail, the text at fault)).

    ruff's lexer: after a ``:``, codes (letters then digits) separated by commas and/or
    spaces, up to the first word that is not a code (a reason: ``# noqa: ARC001 racy on
    purpose``). Codes written together (``ARC001ARC003``) are read as two codes, and a code
    followed by letters (``ARC00l``) ends there; both are problems, as is an empty code
    between commas and a ``:`` followed by no code at all. Without a ``:`` there are no codes
    (a bare ``noqa``); codes written without it are a problem too."""
    problems: list[tuple[str, str, str]] = []
    colon = _COLON_RE.match(rest)
    if colon is None:
        nocolon = _CODE_RE.match(rest, len(rest) - len(rest.lstrip()))
        if nocolon is not None and rest[:1].isspace():
            code = nocolon.group()
            problems.append((_INVALID, f"expected `:` before the codes (`{code}`)", code))
        return None, 0, problems
    pos = colon.end()
    codes: list[str] = []
    end = 0
    commas = 0
    while pos < len(rest):
        ch = rest[pos]
        if ch.isspace():
            pos += 1
            continue
        if ch == ",":
            commas += 1
            if commas > 1 or not codes:
                around = re.match(r"[\s,]*[^\s,]*", rest[pos:])
                near = (codes[-1] if codes else "") + (around.group() if around else "")
                problems.append((_JOINED, "expected rule code between commas", near))
            pos += 1
            continue
        m = _CODE_RE.match(rest, pos)
        if m is None:
            break
        commas = 0
        codes.append(m.group().upper())
        pos = end = m.end()
        if pos < len(rest) and (rest[pos].isalnum() or rest[pos] == "_"):
            run_ = re.match(r"[^\s,]*", rest[m.start() :])
            bad = run_.group() if run_ else m.group()
            problems.append(
                (_JOINED, f"expected comma or space delimiter between codes (`{bad}`)", bad)
            )
    if not codes:
        word = re.match(r"[^\s,]*", rest[colon.end() :])
        shown = f" (`{word.group()}`)" if word and word.group() else ""
        problems.append(
            (
                _INVALID,
                "expected a comma-separated list of codes (e.g., `# noqa: ARC001, ARC003`)" + shown,
                word.group() if word else "",
            )
        )
        return None, 0, problems
    return tuple(dict.fromkeys(codes)), end, problems


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


# A comment or a string literal, whichever starts first: scanning a text with ``finditer``
# finds every comment the tokenizer finds, for a text the parser accepts (every string
# literal is closed; a prefix does not change where a literal ends, a backslash escapes the
# next character in raw literals too). Newlines are ``\n`` only (see :func:`_noqa_comments`).
_LITERAL_OR_COMMENT = re.compile(
    r"#[^\n]*"
    r'|"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*"""'
    r"|'''[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*'''"
    r'|"[^"\\\n]*(?:\\[\s\S][^"\\\n]*)*"'
    r"|'[^'\\\n]*(?:\\[\s\S][^'\\\n]*)*'"
)
# ``noqa`` after a ``#`` on the same line: a line that may hold a directive
_CANDIDATE = re.compile(r"#[^\n]*noqa", re.IGNORECASE)
# an f-string (or t-string): from Python 3.12 on their replacement fields are tokens that may
# hold quotes and comments of their own, which the scan above does not model
_INTERPOLATED = re.compile(r"(?<![A-Za-z0-9_])(?:[rR]?[fFtT]|[fFtT][rR])['\"]")
_NESTED_FSTRINGS = sys.version_info >= (3, 12)


def _noqa_comments(text: str) -> list[tuple[int, int, str, bool]] | None:
    """What :func:`_comments` returns for a text the parser accepted, restricted to the
    comments that contain ``noqa`` (the only ones :func:`parse_noqa` looks at), found without
    the tokenizer; None when the text has what the scan does not model (then tokenize)."""
    if "\r" in text:  # universal newlines, as the tokenizer reads the text
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    stop = max((m.end() for m in _CANDIDATE.finditer(text)), default=0)
    if not stop:
        return []
    if _NESTED_FSTRINGS and _INTERPOLATED.search(text):
        return None
    out: list[tuple[int, int, str, bool]] = []
    row, counted = 1, 0
    for m in _LITERAL_OR_COMMENT.finditer(text):
        start = m.start()
        if start >= stop:
            break
        comment = m.group()
        if comment[0] != "#" or "noqa" not in comment.lower():
            continue
        row += text.count("\n", counted, start)
        counted = start
        line_start = text.rfind("\n", 0, start) + 1
        out.append((row, start - line_start, comment, not text[line_start:start].strip()))
    return out


def _ours(row: int, found: list[tuple[str, str, str]]) -> list[NoqaProblem]:
    """The problems about asyncrace's codes (the text at fault mentions ``ARC``): other
    tools' codes are theirs to complain about."""
    return [
        NoqaProblem(row, kind, detail)
        for kind, detail, text in found
        if OUR_PREFIX.lower() in text.lower()
    ]


def _scan(text: str, parsed: bool = False) -> tuple[NoqaMap, list[NoqaProblem]]:
    """The ``noqa`` directives of a source text and the problems of those that name
    asyncrace's codes (or mean to). Never raises. ``parsed``: ``ast.parse`` accepted this very
    text, so the comments can be found without tokenizing it (:func:`_noqa_comments`)."""
    if "noqa" not in text.lower():
        return {}, []
    result: NoqaMap = {}
    problems: list[NoqaProblem] = []
    file_codes: list[str] = []
    file_all = False
    file_first: tuple[int, int, int] | None = None
    try:
        found_fast = _noqa_comments(text) if parsed else None
        comments = _comments(text) if found_fast is None else found_fast
    except Exception:  # defensive: parse_noqa must never fail a run
        comments = _comments_by_regex(text)
    for row, col, comment, alone in comments:
        if "noqa" not in comment.lower():
            continue
        fm = _FILE_RE.match(comment)
        if fm is not None:
            codes, end, found = _lex_codes(comment[fm.end() :])
            problems.extend(_ours(row, found))
            if alone:
                if file_first is None:
                    file_first = (row, col + 1, col + 1 + fm.end() + end)
                if codes is None:
                    file_all = True
                else:
                    file_codes.extend(codes)
            continue  # a trailing ``# asyncrace: noqa`` is neither file- nor line-level
        # every directive of the comment (a bare one for other linters, then one with codes
        # for asyncrace, as --add-noqa writes them), merged
        for m in _NOQA_RE.finditer(comment):
            codes, end, found = _lex_codes(comment[m.end() :])
            problems.extend(_ours(row, found))
            directive = NoqaDirective(row, col + m.start() + 1, col + m.end() + end + 1, codes)
            prev = result.get(row)
            if prev is None:
                result[row] = directive
            elif prev.codes is not None and codes is not None:
                result[row] = replace(prev, codes=tuple(dict.fromkeys((*prev.codes, *codes))))
            elif codes is not None:  # the one that names codes is the one to point at
                result[row] = directive
    if file_first is not None:
        row, col, end_col = file_first
        codes_t = None if file_all else tuple(dict.fromkeys(file_codes))
        result[FILE_ROW] = NoqaDirective(row, col, end_col, codes_t)
    return result, problems


def parse_noqa(text: str, *, parsed: bool = False) -> NoqaMap:
    """The ``noqa`` directives of a source text. Never raises. ``parsed``: ``ast.parse``
    accepted this very text, so the comments can be found without tokenizing it."""
    return _scan(text, parsed)[0]


def noqa_problems(text: str) -> list[NoqaProblem]:
    """The malformed ``noqa`` comments of a source text that concern asyncrace (their text
    mentions ``ARC``): codes written together or followed by letters (``ARC001ARC003``,
    ``ARC00l``), an empty code between commas, a ``:`` followed by no code, codes without
    the ``:``. Never raises."""
    return _scan(text)[1]


# a comment with ``noqa`` and ``ARC`` after it on one line: the only lines a warning can be
# about (:func:`noqa_problems` warns about asyncrace's codes only)
_NOQA_ARC_BYTES = re.compile(rb"#[^\n\r]*?noqa[^\n\r]*?arc", re.IGNORECASE)


def noqa_problems_in_files(
    files: Iterable[tuple[str, Path]], texts: Mapping[str, str] | None = None
) -> Iterator[tuple[str, int, str]]:
    """(display path, row, message) of every malformed ``noqa`` comment (:func:`noqa_problems`)
    in ``files`` (display path, real path) and ``texts`` (display path -> a text given
    directly). Only comments spelled ``noqa`` in lowercase (as ruff and flake8 write it) are
    looked for: a file is decoded only when its bytes contain ``noqa`` and a line has ``#``,
    ``noqa`` and ``ARC`` in that order; files that cannot be read or decoded are skipped (the
    run reports them)."""
    from asyncrace.sources import DecodeFailure, decode_source, read_source_bytes

    todo: list[tuple[str, str | Path]] = [*(texts or {}).items(), *files]
    for display, source in todo:
        if isinstance(source, str):
            text = source
            data = text.encode("utf-8", "surrogatepass")
            if b"noqa" not in data or _NOQA_ARC_BYTES.search(data) is None:
                continue
        else:
            try:
                data = read_source_bytes(source)
                if b"noqa" not in data or _NOQA_ARC_BYTES.search(data) is None:
                    continue
                text = decode_source(data)
            except (OSError, DecodeFailure, MemoryError):
                continue
        for problem in noqa_problems(text):
            yield display, problem.row, problem.message(display)


# ---------------------------------------------------------------------------------- add-noqa

_LINE_END_RE = re.compile(r"(\r\n|\r|\n)")


def _safe_rows(text: str) -> set[int] | None:
    """Rows that end a physical line of code (the tokenizer's NEWLINE or NL is on them): a
    comment can be appended there. Rows that end inside a string (a triple-quoted string, an
    f-string spanning lines) or are continued by a backslash are not among them. None when
    the text does not tokenize."""
    try:
        return {
            tok.start[0]
            for tok in tokenize.generate_tokens(io.StringIO(text, newline=None).readline)
            if tok.type in (tokenize.NEWLINE, tokenize.NL)
        }
    except (tokenize.TokenError, SyntaxError, ValueError, IndexError):
        return None


def add_noqa_to_text(
    text: str, rows: Mapping[int, Iterable[str]], reason: str = ""
) -> tuple[str, int, list[int]]:
    """``text`` with ``# noqa: CODES`` on each of ``rows`` (1-based row -> codes): the codes are
    added to the row's ``noqa`` comment when it names codes (``# noqa: E501, ARC001``), else a
    comment is appended to the line (after a bare ``# noqa``, which other linters read as
    theirs, a second one). ``reason`` follows the codes. Returns the new text, the number of
    rows changed and the rows that could not be (their end is inside a string or continued by
    a backslash). Rows already naming every code are left alone."""
    noqa = parse_noqa(text)
    safe = _safe_rows(text)
    pieces = _LINE_END_RE.split(text)  # line, ending, line, ending, ..., last line
    changed = 0
    skipped: list[int] = []
    for row in sorted(rows):
        index = 2 * (row - 1)
        if row < 1 or index >= len(pieces):
            continue
        directive = noqa.get(row)
        have = set(directive.codes or ()) if directive is not None else set()
        new = sorted(set(rows[row]) - have)
        if not new:
            continue
        if safe is None or row not in safe:
            skipped.append(row)
            continue
        line = pieces[index]
        tail = f" {reason}" if reason else ""
        if directive is not None and directive.codes is not None:
            at = directive.end_column - 1
            line = line[:at] + "".join(f", {c}" for c in new) + tail + line[at:]
        else:
            line = line.rstrip(" \t") + f"  # noqa: {', '.join(new)}{tail}"
        pieces[index] = line
        changed += 1
    return "".join(pieces), changed, skipped


def add_noqa_to_file(
    path: Path, rows: Mapping[int, Iterable[str]], reason: str = ""
) -> tuple[int, list[int]]:
    """:func:`add_noqa_to_text` on the file ``path``, written back in its own encoding (a BOM
    and the coding cookie kept) and line endings, atomically. Returns the number of rows
    changed and the rows skipped. A file whose syntax tree the comments would change is not
    written (all its rows are skipped)."""
    import ast
    import tempfile

    from asyncrace.sources import decode_source, read_source_bytes

    data = read_source_bytes(path)
    encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    text = decode_source(data)
    new, changed, skipped = add_noqa_to_text(text, rows, reason)
    if not changed:
        return 0, skipped
    try:  # the comments must leave the code as it was (parsing never runs it)
        same = ast.dump(ast.parse(text)) == ast.dump(ast.parse(new))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        same = True  # newer syntax than this Python's: the token check above stands
    if not same:
        return 0, sorted(rows)
    out = new.encode("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else encoding)
    fd, tmp = tempfile.mkstemp(prefix=".asyncrace-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(out)
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return changed, skipped


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
            from pathspec import GitIgnoreSpec

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
