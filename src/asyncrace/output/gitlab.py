"""``gitlab``: a GitLab Code Quality report (ruff's ``gitlab`` shape): a JSON array of
``{"check_name", "description", "fingerprint", "severity", "location": {"path", "lines":
{"begin", "end"}}}``.

Paths are relative to ``$CI_PROJECT_DIR`` when it is set and the file is below it (GitLab
matches them against the repository), else the display path. The fingerprint is asyncrace's
own (``output.fingerprint``: no line numbers), so a finding keeps its identity across merge
requests when code above it moves. Findings are ``major``, files that could not be checked
(ARC900-ARC903) ``critical``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from asyncrace.diagnostic import Diagnostic
from asyncrace.output.fingerprint import fingerprints
from asyncrace.registry import META_CODES
from asyncrace.sources import SourceStore


def _project_path(path: str) -> str:
    project = os.environ.get("CI_PROJECT_DIR")
    if not project:
        return path
    try:
        rel = os.path.relpath(os.path.abspath(path), os.path.abspath(project))
    except ValueError:  # another drive
        return path
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return path
    return Path(rel).as_posix()


def gitlab_report(diagnostics: Sequence[Diagnostic], sources: SourceStore) -> list[object]:
    out: list[object] = []
    for d, fp in fingerprints(diagnostics, sources):
        s = d.span
        out.append(
            {
                "check_name": d.code,
                "description": f"{d.code}: {d.message}",
                "fingerprint": fp,
                "severity": "critical" if d.code in META_CODES else "major",
                "location": {
                    "path": _project_path(d.path),
                    "lines": {"begin": s.start.row, "end": max(s.end.row, s.start.row)},
                },
            }
        )
    return out


def render_gitlab(diagnostics: Sequence[Diagnostic], sources: SourceStore) -> str:
    return json.dumps(gitlab_report(diagnostics, sources), indent=2) + "\n"
