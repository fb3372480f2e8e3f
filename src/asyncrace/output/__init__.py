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
from asyncrace.output.fingerprint import fingerprint, fingerprints
from asyncrace.sources import SourceStore

# each format's module is imported when it is first rendered (``full`` imports rich)

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
        from asyncrace.output.concise import render_concise

        return render_concise(diagnostics)
    if fmt == "full":
        from asyncrace.output.full import render_full

        return render_full(diagnostics, sources, color=color, width=width)
    if fmt == "json":
        from asyncrace.output.json_format import render_json

        return render_json(diagnostics)
    if fmt == "sarif":
        from asyncrace.output.sarif import render_sarif

        return render_sarif(diagnostics, sources)
    if fmt == "github":
        from asyncrace.output.github import render_github

        return render_github(diagnostics)
    if fmt == "json-lines":
        from asyncrace.output.json_lines import render_json_lines

        return render_json_lines(diagnostics)
    if fmt == "gitlab":
        from asyncrace.output.gitlab import render_gitlab

        return render_gitlab(diagnostics, sources)
    if fmt == "junit":
        from asyncrace.output.junit import render_junit

        return render_junit(diagnostics)
    if fmt == "pylint":
        from asyncrace.output.pylint import render_pylint

        return render_pylint(diagnostics)
    raise ValueError(f"unknown output format {fmt!r} (choose from: {', '.join(FORMATS)})")


def render_statistics(diagnostics: Sequence[Diagnostic]) -> str:
    """:func:`asyncrace.output.statistics.render_statistics`."""
    from asyncrace.output.statistics import render_statistics as render

    return render(diagnostics)


def render_statistics_json(diagnostics: Sequence[Diagnostic]) -> str:
    """:func:`asyncrace.output.statistics.render_statistics_json`."""
    from asyncrace.output.statistics import render_statistics_json as render

    return render(diagnostics)


__all__ = [
    "FORMATS",
    "fingerprint",
    "fingerprints",
    "render",
    "render_statistics",
    "render_statistics_json",
]
