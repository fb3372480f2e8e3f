"""Resolved settings: what the configuration file and the command line decide together.
``config.py`` builds one; the engine, the rules and the suppression stage read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from asyncrace.registry import resolve_selection

STRICTNESS_LEVELS: tuple[str, ...] = ("proven", "likely")

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".git-rewrite",
    ".hg",
    ".mypy_cache",
    ".nox",
    ".pants.d",
    ".pytype",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    ".asyncrace_cache",
    "__pypackages__",
    "_build",
    "buck-out",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
)


@dataclass(frozen=True)
class Settings:
    # rule selection, already expanded to codes (meta codes always included)
    enabled: frozenset[str] = field(default_factory=lambda: resolve_selection(None))
    # (glob pattern, codes) pairs; a code set here is ignored for files matching the pattern
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    src: tuple[Path, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    # knobs of the rules
    # dotted names of extra classes whose instances are locks (e.g. "mypkg.sync.FIFOLock")
    extra_lock_types: tuple[str, ...] = ()
    # ...and which of those are reentrant for their owning thread
    extra_reentrant_lock_types: tuple[str, ...] = ()
    # dotted names or bare method names of extra functions that run their first argument on
    # another thread (e.g. "mypkg.pool.run_blocking")
    extra_executor_functions: tuple[str, ...] = ()
    # method names treated as object set-up/tear-down, never called concurrently on one object
    # (ARC001/ARC003 stay silent in them)
    lifecycle_methods: tuple[str, ...] = ()
    # how much is reported: "proven" (only with evidence that the code runs concurrently) or
    # "likely" (also shapes on long-lived objects with no evidence either way)
    strictness: str = "proven"
    # ARC002: public @contextmanager/@asynccontextmanager generators may be closed from another
    # task (a library's managers, entered by users into exit stacks and streams): report every
    # one that holds a context token across its yield
    context_managers_closed_elsewhere: bool = False
    # where the settings came from (for messages), None when defaults
    config_path: Path | None = None
    # the directory relative to which patterns (exclude, per-file-ignores) are matched
    project_root: Path = field(default_factory=Path.cwd)

    def rule_knobs_key(self) -> str:
        """A stable string of every setting that changes findings (for cache keys)."""
        return repr(
            (
                sorted(self.extra_lock_types),
                sorted(self.extra_reentrant_lock_types),
                sorted(self.extra_executor_functions),
                sorted(self.lifecycle_methods),
                self.strictness,
                self.context_managers_closed_elsewhere,
            )
        )
