"""Baselines: record today's findings once, then report only new ones.

``asyncrace check --baseline FILE --update-baseline`` writes every finding of the run to FILE
(JSON, below) and exits 0; ``asyncrace check --baseline FILE`` then leaves out every finding
whose fingerprint FILE lists, and counts it in the summary line. A missing FILE without
``--update-baseline`` is an error: a CI job must not pass because the baseline went missing.

Identity is the fingerprint of :mod:`asyncrace.output.fingerprint` (code, path, the stripped
text of the flagged lines and of every related step, message, occurrence index): no line or
column numbers, so edits that move a finding up or down the file keep it baselined, while an
edit of the flagged lines makes it new. Messages name the lines of other steps ("read back at
line 61", "``other.py:34``"); those numbers are masked before fingerprinting
(:func:`mask_line_numbers`), or every line inserted above a finding would make it new. Paths are taken **relative to the baseline file's
directory** before fingerprinting, so the same baseline works whatever directory asyncrace is
run from. Meta codes (ARC900-ARC903: a file that could not be checked) are never recorded nor
hidden.

The file::

    {
      "asyncrace-baseline": 1,
      "fingerprint-version": "v2",
      "findings": [
        {"fingerprint": "3f0c...", "code": "ARC001", "path": "app/cache.py",
         "message": "`self.current` holds a per-call value ..."}
      ]
    }

``code``, ``path`` and ``message`` (its line references masked as in the fingerprint) are there
for people reading the file and reviewing its diff; only ``fingerprint`` is matched. The list is
sorted and holds no line numbers, so regenerating the baseline for the same findings rewrites
the same bytes, even after edits that moved them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from asyncrace.diagnostic import Diagnostic, Related, Span
from asyncrace.output.fingerprint import VERSION as FINGERPRINT_VERSION
from asyncrace.output.fingerprint import fingerprints, mask_line_numbers
from asyncrace.registry import META_CODES
from asyncrace.sources import SourceStore

__all__ = [
    "FORMAT_VERSION",
    "Baseline",
    "BaselineError",
    "Entry",
    "Split",
    "entries",
    "load",
    "mask_line_numbers",
    "rebase_path",
    "split",
    "write",
]

FORMAT_VERSION = 1
_KEY = "asyncrace-baseline"


class BaselineError(Exception):
    """A baseline file that cannot be read or is not one. ``str()`` names the file."""


@dataclass(frozen=True, slots=True, order=True)
class Entry:
    """One recorded finding (ordered as written to the file)."""

    path: str  # relative to the baseline file's directory, POSIX separators
    code: str
    message: str
    fingerprint: str

    def to_json(self) -> dict[str, str]:
        return {
            "fingerprint": self.fingerprint,
            "code": self.code,
            "path": self.path,
            "message": self.message,
        }


@dataclass(frozen=True)
class Baseline:
    path: Path
    entries: tuple[Entry, ...]

    @property
    def fingerprints(self) -> frozenset[str]:
        return frozenset(e.fingerprint for e in self.entries)


@dataclass
class Split:
    """What :func:`split` decided: ``new`` is reported, ``baselined`` is not; ``stale`` are the
    baseline's entries that matched nothing (fixed, or their lines edited)."""

    new: list[Diagnostic]
    baselined: list[Diagnostic]
    stale: list[Entry]


# ---------------------------------------------------------------------------------- identity


def rebase_path(display: str, base: Path) -> str:
    """A display path (relative to the working directory, or absolute) made relative to
    ``base`` with POSIX separators; absolute when ``base`` is on another drive."""
    absolute = os.path.abspath(display)
    try:
        rel = os.path.relpath(absolute, os.path.abspath(base))
    except ValueError:  # another drive (Windows)
        return Path(absolute).as_posix()
    return Path(rel).as_posix()


def _rebased(
    diagnostics: Sequence[Diagnostic], sources: SourceStore, base: Path
) -> tuple[list[tuple[Diagnostic, Diagnostic]], SourceStore]:
    """(original, copy with every span path relative to ``base``) pairs, and a source store
    that knows the texts under the new paths."""
    store = SourceStore()
    mapping: dict[str, str] = {}

    def rebase(span: Span) -> Span:
        new = mapping.get(span.path)
        if new is None:
            new = rebase_path(span.path, base)
            mapping[span.path] = new
            text = sources.text(span.path)
            if text is not None:
                store.add_text(new, text)
        return replace(span, path=new)

    pairs = []
    for d in diagnostics:
        copy = replace(
            d,
            message=mask_line_numbers(d.message),
            span=rebase(d.span),
            related=tuple(Related(rebase(r.span), r.message) for r in d.related),
        )
        pairs.append((d, copy))
    return pairs, store


def _fingerprinted(
    diagnostics: Sequence[Diagnostic], sources: SourceStore, base: Path
) -> list[tuple[Diagnostic, Diagnostic, str]]:
    """(original, rebased copy, fingerprint) for every diagnostic that a baseline may hold."""
    candidates = [d for d in diagnostics if d.code not in META_CODES]
    pairs, store = _rebased(candidates, sources, base)
    by_copy = {id(copy): original for original, copy in pairs}
    out = []
    for copy, fp in fingerprints([c for _, c in pairs], store):
        out.append((by_copy[id(copy)], copy, fp))
    return out


def entries(diagnostics: Sequence[Diagnostic], sources: SourceStore, base: Path) -> list[Entry]:
    """The baseline entries for ``diagnostics`` (meta codes left out), paths relative to
    ``base`` (the baseline file's directory), sorted."""
    return sorted(
        Entry(copy.path, copy.code, copy.message, fp)
        for _, copy, fp in _fingerprinted(diagnostics, sources, base)
    )


# -------------------------------------------------------------------------------------- file


def load(path: Path) -> Baseline:
    """Read a baseline file. Raises :class:`BaselineError` (with the file name) when it cannot
    be read or is not a baseline; ``FileNotFoundError`` is left to the caller."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise BaselineError(f"{path}: cannot read baseline: {exc.strerror or exc}") from None
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BaselineError(f"{path}: not a baseline file (invalid JSON: {exc})") from None
    if not isinstance(doc, dict) or _KEY not in doc:
        raise BaselineError(f"{path}: not an asyncrace baseline file (no {_KEY!r} key)")
    if doc[_KEY] != FORMAT_VERSION:
        raise BaselineError(
            f"{path}: unsupported baseline format {doc[_KEY]!r} (this asyncrace writes "
            f"{FORMAT_VERSION}; regenerate it with --update-baseline)"
        )
    if doc.get("fingerprint-version") != FINGERPRINT_VERSION:
        raise BaselineError(
            f"{path}: fingerprints of version {doc.get('fingerprint-version')!r}, this asyncrace "
            f"computes {FINGERPRINT_VERSION!r}; regenerate the baseline with --update-baseline"
        )
    items = doc.get("findings")
    if not isinstance(items, list):
        raise BaselineError(f"{path}: 'findings' must be a list")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("fingerprint"), str):
            raise BaselineError(f"{path}: findings[{i}] has no 'fingerprint' string")
        out.append(
            Entry(
                str(item.get("path", "")),
                str(item.get("code", "")),
                str(item.get("message", "")),
                item["fingerprint"],
            )
        )
    return Baseline(path, tuple(out))


def dumps(items: Iterable[Entry]) -> str:
    doc = {
        _KEY: FORMAT_VERSION,
        "fingerprint-version": FINGERPRINT_VERSION,
        "findings": [e.to_json() for e in sorted(items)],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def write(path: Path, items: Iterable[Entry]) -> None:
    """Write a baseline file atomically (a temporary file renamed over ``path``)."""
    text = dumps(items)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ------------------------------------------------------------------------------------- apply


def split(diagnostics: Sequence[Diagnostic], sources: SourceStore, baseline: Baseline) -> Split:
    """Separate ``diagnostics`` into new ones and ones the baseline records. Fingerprints are
    computed over the whole list (occurrence indexes need it), with paths relative to the
    baseline file's directory; meta codes are always new."""
    known = baseline.fingerprints
    base = baseline.path.parent
    matched: set[str] = set()
    hidden: set[int] = set()
    for original, _, fp in _fingerprinted(diagnostics, sources, base):
        if fp in known:
            matched.add(fp)
            hidden.add(id(original))
    new = [d for d in diagnostics if id(d) not in hidden]
    baselined = [d for d in diagnostics if id(d) in hidden]
    stale = [e for e in baseline.entries if e.fingerprint not in matched]
    return Split(new, baselined, stale)
