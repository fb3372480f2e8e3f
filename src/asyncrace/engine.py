"""The pipeline: discover -> extract (per file, parallel, cached) -> link -> rules -> suppress.

The CLI, the LSP server and the flake8 plugin all call :func:`check`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asyncrace.diagnostic import Diagnostic
from asyncrace.settings import Settings
from asyncrace.sources import SourceStore


@dataclass(frozen=True)
class StdinInput:
    """Source text given directly (``-`` with ``--stdin-filename``, or an editor buffer)."""

    filename: str  # the path the text stands for (used for display, config and module name)
    text: str


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic]  # what is reported, sorted; meta diagnostics included
    suppressed: list[Diagnostic]  # silenced by noqa or per-file-ignores, sorted
    files: int  # files analyzed
    sources: SourceStore = field(default_factory=SourceStore)

    @property
    def has_internal_error(self) -> bool:
        return any(d.code == "ARC902" for d in self.diagnostics)


def check(
    paths: Sequence[Path],
    settings: Settings,
    *,
    stdin: StdinInput | None = None,
    jobs: int | None = None,
    cache_dir: Path | None = None,
) -> CheckResult:
    """Analyze ``paths`` (files or directories, discovered with the settings' excludes) and,
    if given, one text from stdin. ``cache_dir=None`` disables the cache."""
    raise NotImplementedError
