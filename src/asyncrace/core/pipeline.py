"""Per-file extraction: read, decode, parse, extract facts and ``noqa`` comments. Runs in worker
processes for large runs; every failure becomes a diagnostic for that file, never an exception
that stops the run."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asyncrace import suppress
from asyncrace.core.extract import extract
from asyncrace.core.facts import ModuleFacts
from asyncrace.diagnostic import Diagnostic, Location, Span
from asyncrace.registry import info
from asyncrace.settings import Settings
from asyncrace.sources import DecodeFailure, decode_source

if TYPE_CHECKING:
    from asyncrace.engine import FileJob

# below this many files a process pool costs more than it saves
PARALLEL_THRESHOLD = 24
# deep expressions recurse in the extractor; beyond this the file gets a diagnostic
RECURSION_LIMIT = 12_000


@dataclass
class FileOutcome:
    display: str
    facts: ModuleFacts | None
    meta: list[Diagnostic] = field(default_factory=list)
    noqa: suppress.NoqaMap = field(default_factory=dict)


def meta(code: str, path: str, message: str, row: int = 1, col: int = 1) -> Diagnostic:
    ri = info(code)
    row = max(1, row)
    col = max(1, col)
    return Diagnostic(
        code=code,
        name=ri.name,
        message=message,
        span=Span(path, Location(row, col), Location(row, col)),
        url=ri.url,
    )


def extract_one(job: FileJob) -> FileOutcome:
    display = job.display
    text = job.text
    if text is None:
        try:
            data = Path(job.path).read_bytes()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return FileOutcome(
                display, None, [meta("ARC901", display, f"cannot read file: {reason}")]
            )
        try:
            text = decode_source(data)
        except DecodeFailure as exc:
            return FileOutcome(
                display,
                None,
                [meta("ARC901", display, f"cannot decode file: {exc}", exc.row, exc.column)],
            )
    noqa = suppress.parse_noqa(text)
    try:
        facts = extract(text, display, job.module, job.is_package)
    except SyntaxError as exc:
        msg = exc.msg or "invalid syntax"
        return FileOutcome(
            display,
            None,
            [meta("ARC900", display, f"syntax error: {msg}", exc.lineno or 1, exc.offset or 1)],
            noqa,
        )
    except ValueError as exc:  # "source code string cannot contain null bytes"
        return FileOutcome(display, None, [meta("ARC900", display, f"cannot parse: {exc}")], noqa)
    except (RecursionError, MemoryError):
        return FileOutcome(
            display,
            None,
            [
                meta(
                    "ARC900",
                    display,
                    "too deeply nested to analyze (the parser's or asyncrace's limit)",
                )
            ],
            noqa,
        )
    except Exception as exc:  # an asyncrace bug: report it, keep going
        return FileOutcome(
            display,
            None,
            [
                meta(
                    "ARC902",
                    display,
                    f"internal error while extracting: {type(exc).__name__}: {exc}; please report it",
                )
            ],
            noqa,
        )
    return FileOutcome(display, facts, [], noqa)


def _worker_init() -> None:
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))


def _extract_chunk(jobs: Sequence[FileJob]) -> list[FileOutcome]:
    return [extract_one(j) for j in jobs]


def extract_all(
    jobs: Sequence[FileJob], settings: Settings, *, jobs_n: int = 1, cache_dir: Path | None = None
) -> list[FileOutcome]:
    """Outcomes in the order of ``jobs`` whatever the number of processes."""
    del settings, cache_dir  # the cache is keyed on content; see asyncrace.core.cache
    n = max(1, jobs_n)
    if n == 1 or len(jobs) < PARALLEL_THRESHOLD:
        _worker_init()
        return [extract_one(j) for j in jobs]
    # chunks keep inter-process traffic low; several per worker balance uneven files
    size = max(1, min(64, len(jobs) // (n * 4) or 1))
    chunks = [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]
    out: list[FileOutcome] = []
    with ProcessPoolExecutor(max_workers=n, initializer=_worker_init) as pool:
        for part in pool.map(_extract_chunk, chunks):
            out.extend(part)
    return out


__all__ = ["FileOutcome", "extract_all", "extract_one", "meta"]
