"""The one object every stage produces and every output format renders."""

from __future__ import annotations

from dataclasses import dataclass, field

DOCS_URL = "https://github.com/asyncrace/asyncrace/blob/main/rules/{code}.md"


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A position in a file: 1-based row, 1-based column counted in characters (as ruff)."""

    row: int
    column: int


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A range in one file. ``path`` is the display path (relative to the working directory
    when the file is below it, POSIX separators)."""

    path: str
    start: Location
    end: Location


@dataclass(frozen=True, slots=True)
class Related:
    """One step of a multi-step hazard: the write, the await, the read, the lock..."""

    span: Span
    message: str


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    name: str
    message: str
    span: Span
    related: tuple[Related, ...] = ()
    fix: str | None = None  # a hint in words: how to fix it; asyncrace never rewrites code
    url: str | None = None
    # not part of identity; set by the suppression stage when shown with --show-suppressed
    suppressed: bool = field(default=False, compare=False)

    @property
    def path(self) -> str:
        return self.span.path

    @property
    def sort_key(self) -> tuple[str, int, int, str, str]:
        s = self.span
        return (s.path, s.start.row, s.start.column, self.code, self.message)


def sort_diagnostics(diags: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diags, key=lambda d: d.sort_key)
