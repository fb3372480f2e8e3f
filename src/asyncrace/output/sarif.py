"""SARIF 2.1.0: one run, every registry rule, results with related locations, code flows and
fingerprints. Paths are relative to ``%SRCROOT%`` (the working directory, the only
machine-dependent value); columns count Unicode code points, as everywhere in asyncrace."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import asyncrace
from asyncrace.diagnostic import Diagnostic, Span
from asyncrace.output._common import level, steps
from asyncrace.output.fingerprint import VERSION, fingerprints
from asyncrace.registry import CODES, RULES, page_body, page_section
from asyncrace.sources import SourceStore

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/asyncrace/asyncrace"
SRCROOT = "%SRCROOT%"
FINGERPRINT_KEY = f"asyncraceFingerprint/{VERSION}"

_RULE_INDEX = {code: i for i, code in enumerate(CODES)}


def _artifact_location(path: str) -> dict[str, str]:
    if PurePosixPath(path).is_absolute() or Path(path).is_absolute():
        return {"uri": Path(path).as_uri()}
    return {"uri": quote(path, safe="/"), "uriBaseId": SRCROOT}


def _physical_location(span: Span) -> dict[str, object]:
    return {
        "artifactLocation": _artifact_location(span.path),
        "region": {
            "startLine": span.start.row,
            "startColumn": span.start.column,
            "endLine": span.end.row,
            "endColumn": span.end.column,
        },
    }


def _srcroot_uri() -> str:
    uri = Path.cwd().as_uri()
    return uri if uri.endswith("/") else uri + "/"


def _rules() -> list[dict[str, object]]:
    """Every rule, with its page: ``fullDescription`` is the page's "What it does" (for a meta
    code "What it means") section,
    ``help`` the whole page (Markdown, which code-scanning services show on the alert page,
    and as plain text)."""
    out: list[dict[str, object]] = []
    for r in RULES:
        rule: dict[str, object] = {
            "id": r.code,
            "name": r.name,
            "shortDescription": {"text": r.summary},
        }
        what = page_section(r.code, "What it does", "What it means")
        body = page_body(r.code)
        full = {"text": what or r.summary + "."}
        if what is not None:
            full["markdown"] = what
        rule["fullDescription"] = full
        if body is not None:
            rule["help"] = {"text": body, "markdown": body}
        else:
            rule["help"] = {"text": f"{r.summary}. See {r.url}"}
        rule["helpUri"] = r.url
        rule["defaultConfiguration"] = {"level": level(r.code)}
        out.append(rule)
    return out


def _result(d: Diagnostic, fp: str) -> dict[str, object]:
    result: dict[str, object] = {"ruleId": d.code}
    if d.code in _RULE_INDEX:
        result["ruleIndex"] = _RULE_INDEX[d.code]
    result["level"] = level(d.code)
    result["message"] = {"text": d.message}
    result["locations"] = [{"physicalLocation": _physical_location(d.span)}]
    if d.related:
        result["relatedLocations"] = [
            {
                "id": i,
                "physicalLocation": _physical_location(r.span),
                "message": {"text": r.message},
            }
            for i, r in enumerate(d.related)
        ]
        result["codeFlows"] = [
            {
                "threadFlows": [
                    {
                        "locations": [
                            {
                                "location": {
                                    "physicalLocation": _physical_location(step.span),
                                    "message": {"text": step.label or d.message},
                                }
                            }
                            for step in steps(d)
                        ]
                    }
                ]
            }
        ]
    result["partialFingerprints"] = {FINGERPRINT_KEY: fp}
    if d.suppressed:
        result["suppressions"] = [{"kind": "inSource"}]
    return result


def sarif_log(diagnostics: Sequence[Diagnostic], sources: SourceStore) -> dict[str, object]:
    """The SARIF log as a JSON-ready dict."""
    return _log([_result(d, fp) for d, fp in fingerprints(diagnostics, sources)])


def _log(results: list[object]) -> dict[str, object]:
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "asyncrace",
                        "version": asyncrace.__version__,
                        "informationUri": INFORMATION_URI,
                        "rules": _rules(),
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": _srcroot_uri()}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


_PLACEHOLDER = "\0asyncrace results\0"


def render_sarif(diagnostics: Sequence[Diagnostic], sources: SourceStore) -> str:
    """``json.dumps(sarif_log(...), indent=2, sort_keys=True)``, the results dumped one by
    one: the indenting encoder is written in Python and holds a piece of text per value until
    the end, which for thousands of results cost more memory than the analysis."""
    found = fingerprints(diagnostics, sources)
    if not found:
        return json.dumps(_log([]), indent=2, sort_keys=True) + "\n"
    head = json.dumps(_log([_PLACEHOLDER]), indent=2, sort_keys=True)
    marker = json.dumps(_PLACEHOLDER)
    at = head.index(marker)
    indent = head[head.rindex("\n", 0, at) + 1 : at]
    body = ",\n".join(
        indent + json.dumps(_result(d, fp), indent=2, sort_keys=True).replace("\n", "\n" + indent)
        for d, fp in found
    )
    return head[: at - len(indent)] + body + head[at + len(marker) :] + "\n"
