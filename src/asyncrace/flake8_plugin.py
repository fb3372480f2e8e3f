"""The flake8 plugin: ``flake8 --select ARC`` reports asyncrace's findings with the same codes,
rows and columns as ``asyncrace check`` (``path:row:col: ARC001 message``).

Registered as the ``flake8.extension`` entry point ``ARC`` (see ``pyproject.toml``). flake8
calls a plugin once per file, but asyncrace's rules need the modules around a file (the fan-out
that makes a method concurrent, an inherited method, the callee that takes a lock). So the
plugin analyzes the file **with its context**, as the language server does
(:func:`asyncrace.lsp.context_files`: the file's top-level package, else its sibling modules),
and reports only the findings located in the file itself.

Cost: the analysis of a context is done once per flake8 process and reused for every file of
that context (when the text flake8 gives equals the file on disk up to line endings, the usual case); a text that
differs from the disk (``flake8 -`` on stdin, or an editor's buffer) is analyzed on its own
with the context from disk. When flake8's ``--select``/``--ignore`` leave no ``ARC`` code
selected, the plugin does no work at all.

Settings: asyncrace's own configuration (``asyncrace.toml`` or ``[tool.asyncrace]``) applies,
found from the file's directory: its ``select``/``ignore``, ``exclude`` (a file it excludes
gets no ARC findings, as with ``asyncrace check --force-exclude``), ``per-file-ignores`` and rule
settings. flake8's selection then filters what asyncrace reports. ``noqa`` comments are handled
by flake8 too: there a bare ``# noqa`` silences asyncrace's findings as well (flake8's rule),
while ``asyncrace check`` insists on the code.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from asyncrace import __version__
from asyncrace.config import load_settings
from asyncrace.diagnostic import Diagnostic
from asyncrace.lsp import CONTEXT_LIMIT, analyze_document, context_files
from asyncrace.registry import CODES
from asyncrace.run import discover as discover_mod
from asyncrace.run import engine
from asyncrace.settings import Settings

__all__ = ["AsyncraceChecker"]

_STDIN_NAMES = frozenset({"stdin", "-", "<stdin>"})
_NEWLINES = re.compile(r"\r\n|\r")  # flake8 reads with universal newlines

# (context files with their mtime and size, settings key) -> findings by display path
_MEMO: dict[tuple[object, ...], dict[str, list[Diagnostic]]] = {}


def _settings_key(settings: Settings) -> tuple[object, ...]:
    return (
        str(settings.config_path),
        str(settings.project_root),
        tuple(sorted(settings.enabled)),
        settings.per_file_ignores,
        settings.exclude,
        settings.extend_exclude,
        settings.respect_gitignore,
        settings.rule_knobs_key(),
    )


def _stat_key(files: list[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for f in files:
        try:
            st = f.stat()
            out.append((str(f), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(f), -1, -1))
    return tuple(out)


def _context_findings(path: Path, settings: Settings) -> dict[str, list[Diagnostic]]:
    """Every finding of ``path``'s context analyzed from disk, by display path; memoized for
    the life of the process (keyed on the files' modification times and sizes)."""
    files = context_files(path, settings, limit=CONTEXT_LIMIT)
    key = (_stat_key(files), _settings_key(settings))
    found = _MEMO.get(key)
    if found is None:
        result = engine.check(
            files, settings, jobs=1, cache_dir=settings.project_root / ".asyncrace_cache"
        )
        found = {}
        for d in result.diagnostics:
            found.setdefault(d.path, []).append(d)
        if len(_MEMO) > 64:  # a long-lived process (an editor integration): stay small
            _MEMO.clear()
        _MEMO[key] = found
    return found


def _disk_text(path: Path) -> str | None:
    from asyncrace.sources import DecodeFailure, decode_source

    try:
        return decode_source(path.read_bytes())
    except (OSError, DecodeFailure):
        return None


class AsyncraceChecker:
    """A flake8 AST plugin (flake8 passes ``tree``, ``filename`` and ``lines``)."""

    name = "asyncrace"
    version = __version__
    # whether flake8's selection enables any ARC code (set by ``parse_options``)
    enabled: ClassVar[bool] = True

    def __init__(self, tree: ast.AST, filename: str, lines: list[str]) -> None:
        del tree  # asyncrace parses the text itself (with libcst)
        self.lines = lines
        if filename in _STDIN_NAMES:
            self.path = Path(os.getcwd()) / "stdin.py"
        else:
            self.path = Path(os.path.abspath(filename))
        # here rather than in run(): flake8 reports an exception raised while constructing a
        # plugin (a configuration error) as a one-line failure, not a traceback
        self.settings = load_settings([self.path]) if self.enabled else None

    @classmethod
    def parse_options(cls, options: argparse.Namespace) -> None:
        """Skip all work when flake8's ``--select``/``--ignore`` exclude every ARC code."""
        try:
            from flake8.style_guide import Decision, DecisionEngine  # type: ignore[import-untyped]

            decider = DecisionEngine(options)
            cls.enabled = any(decider.make_decision(code) is Decision.Selected for code in CODES)
        except Exception:  # another flake8 version: do the work, flake8 filters
            cls.enabled = True

    def run(self) -> Iterator[tuple[int, int, str, type[Any]]]:
        settings = self.settings
        if not self.enabled or settings is None:
            return
        text = "".join(self.lines)
        path = self.path
        display = engine.display_path(path)
        if discover_mod.is_excluded(path, settings):
            return  # asyncrace's `exclude` applies as with `asyncrace check --force-exclude`
        disk = _disk_text(path) if path.is_file() else None
        if disk is not None and _NEWLINES.sub("\n", disk) == _NEWLINES.sub("\n", text):
            diagnostics = _context_findings(path, settings).get(display, [])
        else:
            diagnostics = analyze_document(path, text, settings=settings).diagnostics
        for d in diagnostics:
            # flake8 wants a 0-based column and shows it 1-based: the same column as asyncrace
            yield (
                d.span.start.row,
                max(d.span.start.column - 1, 0),
                f"{d.code} {d.message}",
                type(self),
            )
