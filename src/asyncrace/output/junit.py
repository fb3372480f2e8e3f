"""``junit``: JUnit XML (ruff's ``junit`` shape), for CI systems that show test reports: one
``<testsuite>`` per file with findings, one ``<testcase>`` with a ``<failure>`` per finding; a
single passing ``No errors found`` test case when there is nothing to report."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

from asyncrace.diagnostic import Diagnostic
from asyncrace.output._common import ordered, printable

PACKAGE = "org.asyncrace"


def escape(text: str) -> str:
    """Character data (xml.sax.saxutils' rules, without importing it: it imports urllib)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quoteattr(text: str) -> str:
    """A double-quoted attribute value; line breaks and tabs as character references."""
    text = escape(text).replace('"', "&quot;")
    return '"' + text.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;") + '"'


def _attr(text: str) -> str:
    return quoteattr(printable(text))


def _classname(path: str) -> str:
    return path[: -len(".py")] if path.endswith(".py") else path


def render_junit(diagnostics: Sequence[Diagnostic]) -> str:
    diags = ordered(diagnostics)
    n = len(diags)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<testsuites name="asyncrace" tests="{max(n, 1)}" skipped="0" failures="{n}" errors="0">',
    ]
    if not diags:
        out += [
            '    <testsuite name="asyncrace" tests="1" skipped="0" errors="0" failures="0" '
            f'package="{PACKAGE}">',
            '        <testcase name="No errors found" classname="asyncrace"/>',
            "    </testsuite>",
        ]
    for path, group in groupby(diags, key=lambda d: d.path):
        items = list(group)
        out.append(
            f'    <testsuite name={_attr(path)} tests="{len(items)}" skipped="0" '
            f'errors="0" failures="{len(items)}" package="{PACKAGE}">'
        )
        for d in items:
            s = d.span.start
            message = printable(d.message)
            out += [
                f"        <testcase name={_attr(f'{PACKAGE}.{d.code}')} "
                f'classname={_attr(_classname(path))} line="{s.row}" column="{s.column}">',
                f"            <failure message={quoteattr(message)}>"
                f"line {s.row}, col {s.column}, {escape(message)}</failure>",
                "        </testcase>",
            ]
        out.append("    </testsuite>")
    out.append("</testsuites>")
    return "\n".join(out) + "\n"
