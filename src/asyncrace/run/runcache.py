"""The run cache: when nothing that decides the findings changed since a previous run (the
bytes of every file, which files they are, asyncrace's version, the settings), the result of
that run is the result of this one.

The per-file extraction cache (:mod:`asyncrace.run.cache`) saves parsing, but a run still has
to load every file's facts and link them, because findings cross modules; that costs about as
much as the rules. This cache answers an unchanged tree from the hashes of its files alone.

Entries are JSON (never pickle: a cache directory can come from anywhere, and loading must not
run code), carry their own key, and are validated field by field; anything unexpected is a
miss. Writes are atomic (temporary file, then ``os.replace``); only the most recent entries are
kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asyncrace import code_version
from asyncrace.diagnostic import Diagnostic, Location, Related, Span
from asyncrace.settings import Settings

SCHEMA = 1
KEEP = 8  # run entries kept per cache directory


def run_key(
    files: Sequence[tuple[str, str, bool, str]], stdin_digest: str, settings: Settings
) -> str:
    """``files``: (display path, module, is package, content digest) for every file."""
    h = hashlib.blake2b(digest_size=20)
    # the facts depend on the Python that parsed them (newer syntax is lowered, or refused)
    py = f"{sys.version_info[0]}.{sys.version_info[1]}"
    h.update(f"asyncrace {code_version()} run {SCHEMA} python {py}\n".encode())
    h.update(repr(sorted(settings.enabled)).encode())
    h.update(repr(settings.per_file_ignores).encode())
    h.update(settings.rule_knobs_key().encode())
    h.update(str(Path(settings.project_root).resolve()).encode(errors="surrogateescape"))
    h.update(stdin_digest.encode())
    for display, module, is_package, digest in sorted(files):
        # file names need not be UTF-8: undecodable bytes arrive as surrogates
        h.update(
            f"\n{display}\0{module}\0{int(is_package)}\0{digest}".encode(errors="surrogateescape")
        )
    return h.hexdigest()


def digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def _span(s: Span) -> list[Any]:
    return [s.path, s.start.row, s.start.column, s.end.row, s.end.column]


def _diag(d: Diagnostic) -> dict[str, Any]:
    return {
        "code": d.code,
        "name": d.name,
        "message": d.message,
        "span": _span(d.span),
        "related": [[_span(r.span), r.message] for r in d.related],
        "fix": d.fix,
        "url": d.url,
        "suppressed": d.suppressed,
    }


class _Bad(ValueError):
    pass


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad
    return v


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise _Bad
    return v


def _opt_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _load_span(v: Any) -> Span:
    if not isinstance(v, list) or len(v) != 5:
        raise _Bad
    return Span(_str(v[0]), Location(_int(v[1]), _int(v[2])), Location(_int(v[3]), _int(v[4])))


def _load_diag(v: Any) -> Diagnostic:
    if not isinstance(v, dict):
        raise _Bad
    related = v.get("related")
    if not isinstance(related, list):
        raise _Bad
    rel: list[Related] = []
    for r in related:
        if not isinstance(r, list) or len(r) != 2:
            raise _Bad
        rel.append(Related(_load_span(r[0]), _str(r[1])))
    suppressed = v.get("suppressed")
    if not isinstance(suppressed, bool):
        raise _Bad
    return Diagnostic(
        code=_str(v.get("code")),
        name=_str(v.get("name")),
        message=_str(v.get("message")),
        span=_load_span(v.get("span")),
        related=tuple(rel),
        fix=_opt_str(v.get("fix")),
        url=_opt_str(v.get("url")),
        suppressed=suppressed,
    )


# the diagnostic encoding, shared with the project snapshot (``run/snapshot.py``)
dump_diag = _diag
load_diag = _load_diag


def load(cache_dir: Path, key: str) -> tuple[list[Diagnostic], list[Diagnostic], int] | None:
    """(reported, suppressed, files) of a previous run with this key, or None."""
    path = cache_dir / "runs" / f"{key}.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("key") != key or doc.get("schema") != SCHEMA:
            return None
        if doc.get("version") != code_version():
            return None
        reported = [_load_diag(d) for d in doc["reported"]]
        suppressed = [_load_diag(d) for d in doc["suppressed"]]
        return reported, suppressed, _int(doc["files"])
    except (OSError, ValueError, KeyError, TypeError, _Bad):
        return None


def store(
    cache_dir: Path,
    key: str,
    reported: Sequence[Diagnostic],
    suppressed: Sequence[Diagnostic],
    files: int,
) -> None:
    """Best effort: a cache that cannot be written is not an error."""
    runs = cache_dir / "runs"
    doc = {
        "schema": SCHEMA,
        "version": code_version(),
        "key": key,
        "files": files,
        "reported": [_diag(d) for d in reported],
        "suppressed": [_diag(d) for d in suppressed],
    }
    try:
        runs.mkdir(parents=True, exist_ok=True)
        import tempfile  # (not needed by a run that writes nothing)

        fd, tmp = tempfile.mkstemp(prefix=".run-", suffix=".tmp", dir=runs)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                # ASCII escapes: a path that is not UTF-8 (surrogates) still round-trips
                json.dump(doc, fh, ensure_ascii=True, separators=(",", ":"))
            os.replace(tmp, runs / f"{key}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        entries = sorted(runs.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except (OSError, UnicodeError, ValueError):
        return
