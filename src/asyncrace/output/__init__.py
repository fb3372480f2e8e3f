"""The output formats. Every format renders the same :class:`~asyncrace.diagnostic.Diagnostic`
objects; each lives in its own module:

- ``concise``: ``path:row:col: CODE message``, one line each;
- ``full``: header, source excerpt of every step with underlines and labels, help and rule
  url (the default on a terminal);
- ``json``: ruff's JSON shape plus ``name``, ``help`` and ``related``;
- ``json-lines``: the same objects, one per line;
- ``sarif``: SARIF 2.1.0 with related locations, code flows, fingerprints and rule pages;
- ``github``: GitHub Actions ``::error`` workflow commands;
- ``gitlab``: a GitLab Code Quality report;
- ``junit``: JUnit XML;
- ``pylint``: ``path:row: [CODE] message``.

Output is deterministic: the same diagnostics, in any order, render to the same bytes."""

from __future__ import annotations

from collections.abc import Sequence

from asyncrace.diagnostic import Diagnostic
from asyncrace.output.concise import render_concise
from asyncrace.output.fingerprint import fingerprint, fingerprints
from asyncrace.output.full import render_full
from asyncrace.output.github import render_github
from asyncrace.output.gitlab import render_gitlab
from asyncrace.output.json_format import render_json
from asyncrace.output.json_lines import render_json_lines
from asyncrace.output.junit import render_junit
from asyncrace.output.pylint import render_pylint
from asyncrace.output.sarif import render_sarif
from asyncrace.output.statistics import render_statistics, render_statistics_json
from asyncrace.sources import SourceStore

FORMATS: tuple[str, ...] = (
    "concise",
    "full",
    "json",
    "json-lines",
    "sarif",
    "github",
    "gitlab",
    "junit",
    "pylint",
)


def render(
    fmt: str,
    diagnostics: Sequence[Diagnostic],
    sources: SourceStore,
    *,
    color: bool = False,
    width: int = 100,
) -> str:
    """Render ``diagnostics`` (in any order) in format ``fmt``; ``color`` and ``width`` apply
    to ``full`` only. The result ends with a newline unless it is empty."""
    if fmt == "concise":
        return render_concise(diagnostics)
    if fmt == "full":
        return render_full(diagnostics, sources, color=color, width=width)
    if fmt == "json":
        return render_json(diagnostics)
    if fmt == "sarif":
        return render_sarif(diagnostics, sources)
    if fmt == "github":
        return render_github(diagnostics)
    if fmt == "json-lines":
        return render_json_lines(diagnostics)
    if fmt == "gitlab":
        return render_gitlab(diagnostics, sources)
    if fmt == "junit":
        return render_junit(diagnostics)
    if fmt == "pylint":
        return render_pylint(diagnostics)
    raise ValueError(f"unknown output format {fmt!r} (choose from: {', '.join(FORMATS)})")


__all__ = [
    "FORMATS",
    "fingerprint",
    "fingerprints",
    "render",
    "render_statistics",
    "render_statistics_json",
]
