"""Baselines (``check --baseline FILE [--update-baseline]``) with the real engine, the stability
of their fingerprints under unrelated edits, and ``--project-context``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from asyncrace import baseline
from asyncrace.cli import main
from asyncrace.diagnostic import Diagnostic, Location, Related, Span
from asyncrace.sources import SourceStore

SEEDS = Path(__file__).parent / "fixtures" / "seeds"

MAILER = '''"""Email rendering."""

from __future__ import annotations

import asyncio

_current_locale = "en"


async def _load_catalog(locale: str) -> dict[str, str]:
    await asyncio.sleep(0)
    return {"greeting": "hello"}


async def render_email(locale: str, template: str) -> str:
    global _current_locale
    _current_locale = locale
    strings = await _load_catalog(locale)
    return template.format(locale=_current_locale, **strings)
'''

SECOND_HAZARD = """

_current_user = ""


async def render_sms(user: str, template: str) -> str:
    global _current_user
    _current_user = user
    await asyncio.sleep(0)
    return template.format(user=_current_user)
"""


@pytest.fixture
def proj(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "mailer.py").write_text(MAILER)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check(*args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["check", "--no-cache", "--output-format", "concise", *args],
        catch_exceptions=False,
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# ------------------------------------------------------------------------------------- CLI


def test_record_then_only_new_findings_fail(proj: Path) -> None:
    r = check()
    assert r.exit_code == 1 and "ARC001" in r.stdout

    r = check("--baseline", "asyncrace-baseline.json", "--update-baseline")
    assert r.exit_code == 0, r.output
    assert r.stdout == "All checks passed! (1 in the baseline)\n"
    assert "recorded 1 finding" in r.stderr
    doc = json.loads((proj / "asyncrace-baseline.json").read_text())
    assert doc["asyncrace-baseline"] == 1
    assert doc["fingerprint-version"] == "v2"
    (entry,) = doc["findings"]
    assert entry["code"] == "ARC001"
    assert entry["path"] == "app/mailer.py"
    assert entry["message"].startswith("module variable `_current_locale`")
    assert len(entry["fingerprint"]) == 32

    r = check("--baseline", "asyncrace-baseline.json")
    assert r.exit_code == 0, r.output
    assert r.stdout == "All checks passed! (1 in the baseline)\n"

    # unrelated edits that move the finding: lines, blank lines and comments above it, a new
    # function above it, lines inside other functions and between its own steps
    mailer = proj / "app" / "mailer.py"
    edit(mailer, '"""Email rendering."""\n', '"""Email rendering."""\n\n# a comment\n\n\n')
    edit(
        mailer, "import asyncio\n", "import asyncio\nimport logging\n\nlog = logging.getLogger()\n"
    )
    edit(
        mailer,
        "    await asyncio.sleep(0)\n",
        "    # simulate I/O\n\n    log.debug('loading')\n    await asyncio.sleep(0)\n",
    )
    edit(
        mailer,
        "async def render_email(",
        "def helper() -> int:\n    return 1\n\n\nasync def render_email(",
    )
    edit(mailer, "    strings = await", "    # fetch the strings\n    strings = await")
    moved = check()
    assert moved.exit_code == 1
    assert "mailer.py:17:" not in moved.stdout  # it did move...
    r = check("--baseline", "asyncrace-baseline.json")
    assert r.exit_code == 0, r.output  # ...and is still baselined
    assert r.stdout == "All checks passed! (1 in the baseline)\n"
    assert r.stderr == ""

    # from another working directory (the baseline's paths are relative to its own directory)
    r = CliRunner().invoke(
        main,
        ["check", "--no-cache", "--baseline", str(proj / "asyncrace-baseline.json"), str(proj)],
    )
    assert r.exit_code == 0, r.output

    # a second hazard: only it is reported
    mailer.write_text(mailer.read_text() + SECOND_HAZARD)
    r = check("--baseline", "asyncrace-baseline.json")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    assert "ARC001 module variable `_current_user`" in lines[0]
    assert lines[1] == "Found 1 finding in 1 file (1 in the baseline)."

    # GitHub annotations too: only the new one
    r = check("--baseline", "asyncrace-baseline.json", "--output-format", "github")
    assert r.exit_code == 1
    assert r.stdout.count("::error ") == 1 and "_current_user" in r.stdout


def test_editing_the_flagged_line_makes_it_new(proj: Path) -> None:
    assert check("--baseline", "b.json", "--update-baseline").exit_code == 0
    edit(
        proj / "app" / "mailer.py",
        "    _current_locale = locale\n",
        "    _current_locale = locale[:2]\n",
    )
    r = check("--baseline", "b.json")
    assert r.exit_code == 1
    assert "ARC001" in r.stdout
    # the old entry matches nothing now
    assert "1 baseline entry no longer matches any finding" in r.stderr


def test_update_drops_fixed_findings_and_is_deterministic(proj: Path) -> None:
    mailer = proj / "app" / "mailer.py"
    mailer.write_text(MAILER + SECOND_HAZARD)
    assert check("--baseline", "b.json", "--update-baseline").exit_code == 0
    first = (proj / "b.json").read_bytes()
    assert len(json.loads(first)["findings"]) == 2
    assert check("--baseline", "b.json", "--update-baseline").exit_code == 0
    assert (proj / "b.json").read_bytes() == first  # same findings, same bytes

    mailer.write_text(MAILER)  # the SMS hazard is fixed
    r = check("--baseline", "b.json")
    assert r.exit_code == 0
    assert "1 baseline entry no longer matches any finding" in r.stderr
    r = check("--baseline", "b.json", "--update-baseline")
    assert r.exit_code == 0
    assert "recorded 1 finding, dropped 1 no longer found" in r.stderr
    assert len(json.loads((proj / "b.json").read_text())["findings"]) == 1


def test_missing_or_broken_baseline_is_an_error(proj: Path) -> None:
    r = check("--baseline", "nope.json")
    assert r.exit_code == 2
    assert "baseline file does not exist: nope.json (create it with --update-baseline)" in r.stderr

    (proj / "bad.json").write_text("{not json")
    r = check("--baseline", "bad.json")
    assert r.exit_code == 2 and "not a baseline file" in r.stderr

    (proj / "other.json").write_text('{"findings": []}')
    r = check("--baseline", "other.json")
    assert r.exit_code == 2 and "not an asyncrace baseline file" in r.stderr

    (proj / "old.json").write_text('{"asyncrace-baseline": 1, "fingerprint-version": "v0"}')
    r = check("--baseline", "old.json")
    assert r.exit_code == 2 and "regenerate the baseline with --update-baseline" in r.stderr

    r = check("--update-baseline")
    assert r.exit_code == 2 and "--update-baseline needs --baseline FILE" in r.output


def test_syntax_errors_are_never_baselined(proj: Path) -> None:
    (proj / "app" / "broken.py").write_text("def f(:\n")
    r = check("--baseline", "b.json", "--update-baseline")
    assert r.exit_code == 1  # the file was not checked: still reported
    assert "ARC900" in r.stdout
    assert [e["code"] for e in json.loads((proj / "b.json").read_text())["findings"]] == ["ARC001"]


# ----------------------------------------------------------------------------------- units


def _diag(path: str, row: int, message: str, related_row: int) -> Diagnostic:
    return Diagnostic(
        code="ARC001",
        name="state-clobbered-across-await",
        message=message,
        span=Span(path, Location(row, 1), Location(row, 5)),
        related=(Related(Span(path, Location(related_row, 1), Location(related_row, 3)), "m"),),
    )


def test_fingerprints_ignore_line_numbers_and_the_working_directory(tmp_path: Path) -> None:
    store_a = SourceStore()
    store_a.add_text("a.py", "x = 1\nawait y\n")
    store_b = SourceStore()
    store_b.add_text("sub/../a.py", "\n\n\n  x = 1\n\n    await y\n")  # moved and re-indented
    a = baseline.entries([_diag("a.py", 1, "read back at line 2", 2)], store_a, Path("."))
    b = baseline.entries([_diag("sub/../a.py", 4, "read back at line 6", 6)], store_b, Path("."))
    assert a == b
    assert a[0].path == "a.py"
    # stored with the line references masked too: regenerating after edits rewrites the same file
    assert a[0].message == "read back at line #"


def test_mask_line_numbers() -> None:
    assert baseline.mask_line_numbers("is read back at line 61; a") == "is read back at line #; a"
    assert (
        baseline.mask_line_numbers("detached in `f` (pkg/obs.py:34); x")
        == "detached in `f` (pkg/obs.py:#); x"
    )
    assert baseline.mask_line_numbers("held across 3 await points") == "held across 3 await points"


# -------------------------------------------------------------------------- project context


@pytest.fixture
def marsys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    shutil.copytree(SEEDS / "marsys_buggy", tmp_path / "marsys_buggy")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_project_context_reports_named_files_with_cross_module_facts(marsys: Path) -> None:
    # alone, real_runtime.py does not show that `RealRuntime.step` runs concurrently
    assert check("marsys_buggy/real_runtime.py").exit_code == 0
    # with the project as context it does (the fan-out is in orchestrator.py)
    r = check("--project-context", "marsys_buggy/real_runtime.py")
    assert r.exit_code == 1
    assert r.stdout.startswith("marsys_buggy/real_runtime.py:38:9: ARC001")
    # a finding outside the named files is not reported
    r = check("--project-context", "marsys_buggy/orchestrator.py")
    assert r.exit_code == 0
    assert r.stdout == "All checks passed!\n"


def test_project_context_uses_configured_src(marsys: Path) -> None:
    (marsys / "pyproject.toml").write_text('[tool.asyncrace]\nsrc = ["marsys_buggy"]\n')
    (marsys / "outside.py").write_text("x = 1\n")
    r = check("--project-context", "marsys_buggy/real_runtime.py")
    assert r.exit_code == 1
    # force-excluded named files: nothing analyzed, nothing reported
    (marsys / "pyproject.toml").write_text(
        '[tool.asyncrace]\nextend-exclude = ["real_runtime.py"]\n'
    )
    r = check("--force-exclude", "--project-context", "marsys_buggy/real_runtime.py")
    assert r.exit_code == 0
    assert r.stdout == "All checks passed!\n"


def test_project_context_with_stdin(marsys: Path) -> None:
    text = (marsys / "marsys_buggy" / "real_runtime.py").read_text()
    r = CliRunner().invoke(
        main,
        [
            "check",
            "--no-cache",
            "--output-format",
            "concise",
            "--project-context",
            "-",
            "--stdin-filename",
            "marsys_buggy/real_runtime.py",
        ],
        input=text,
    )
    assert r.exit_code == 1
    assert r.stdout.startswith("marsys_buggy/real_runtime.py:38:9: ARC001")
