"""What a ruff user reaches for first (issue 16): ruff's flags and output shapes, the defects
found by trying asyncrace on foreign code, each on the real file system (and, where it can
hang or needs privileges dropped, through the real ``python -m asyncrace`` process)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from asyncrace.cli import main

ROOT = Path(__file__).resolve().parent.parent

RACY = """\
import asyncio


class Cache:
    async def load(self, key):
        self.current = key{comment}
        await self.fetch()
        return self.current

    async def fetch(self):
        await asyncio.sleep(0)


async def load_all(cache: Cache, keys):
    return await asyncio.gather(*(cache.load(k) for k in keys))
"""

FINDING = "app/cache.py:6:9: ARC001 `self.current` holds a per-call value across an await"


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def check(*args: str, input: str | None = None) -> Result:
    return run("check", "-j", "1", "--output-format", "concise", *args, input=input)


def process(
    *args: str, cwd: Path, timeout: float = 60, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """The real command line in a process of its own (a hang is a timeout, not a stuck
    test run)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "asyncrace", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.fixture
def racy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "cache.py").write_text(RACY.format(comment=""))
    (tmp_path / "app" / "clean.py").write_text("async def f():\n    return 1\n")
    monkeypatch.chdir(tmp_path)
    # the user's global git excludes file must not leak into these runs
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    return tmp_path


# ------------------------------------------------------------------------------- defect 9


def test_help_shows_every_command_summary_whole() -> None:
    r = run("--help")
    assert r.exit_code == 0
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith("  ")}
    assert "Explain a rule (or list every rule with --all)." in lines["rule"]
    assert "Check files or directories for concurrency hazards." in lines["check"]
    assert "Run the language server" in lines["server"]
    assert not any(line.rstrip().endswith(("...", "(e.g.")) for line in lines.values())


def _first_usage_example() -> tuple[str, list[tuple[str, str]]]:
    """docs/usage.md's first example: the file, and each console command with its output."""
    text = (ROOT / "docs" / "usage.md").read_text(encoding="utf-8")
    source = re.search(r"```python\n(# app/cache\.py\n.*?)```", text, re.S)
    console = re.search(r"For this file.*?```console\n(.*?)```", text, re.S)
    assert source is not None and console is not None
    sessions: list[tuple[str, str]] = []
    for block in re.split(r"^\$ ", console.group(1), flags=re.M)[1:]:
        command, _, output = block.partition("\n")
        sessions.append((command, output))
    return source.group(1), sessions


def test_the_first_example_of_the_usage_page_reports_what_it_says(
    racy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, sessions = _first_usage_example()
    (racy / "app" / "clean.py").unlink()
    (racy / "app" / "cache.py").write_text(source)
    monkeypatch.setenv("COLUMNS", "100")
    assert len(sessions) >= 3
    for command, expected in sessions:
        args = command.split(";")[0].split()
        assert args[0] == "asyncrace"
        proc = process(*args[1:], cwd=racy)
        shown = proc.stdout + (f"exit {proc.returncode}\n" if "exit $?" in command else "")
        assert shown == expected, command


def test_json_fix_is_null_and_the_hint_is_help(racy: Path) -> None:
    r = check("--output-format", "json")
    (item,) = json.loads(r.stdout)
    assert item["fix"] is None
    assert item["help"].startswith("Keep the per-call value in a local variable")


# ------------------------------------------------------------------------------- defect 5


def test_statistics_in_json(racy: Path) -> None:
    r = check("--statistics", "--output-format", "json")
    assert r.exit_code == 1
    assert json.loads(r.stdout) == [
        {
            "code": "ARC001",
            "name": "state-clobbered-across-await",
            "count": 1,
            "fixable": False,
            "fixable_count": 0,
        }
    ]
    # like ruff: a format that cannot show statistics is a usage error
    r = check("--statistics", "--output-format", "sarif")
    assert r.exit_code == 2
    assert "--statistics cannot be shown in the 'sarif' output format" in r.stderr


# ------------------------------------------------------------------------- output formats


@pytest.mark.parametrize(
    ("fmt", "first"),
    [
        ("pylint", "app/cache.py:6: [ARC001] `self.current` holds"),
        ("json-lines", '{"cell":null,"code":"ARC001",'),
        ("junit", '<?xml version="1.0" encoding="UTF-8"?>'),
        ("gitlab", "["),
    ],
)
def test_new_formats_end_to_end(racy: Path, fmt: str, first: str) -> None:
    r = check("--output-format", fmt)
    assert r.exit_code == 1
    assert r.stdout.startswith(first)
    assert "Found 1 finding" not in r.stdout  # machine formats print their document only


# ---------------------------------------------------------------------- -o / --output-file


def test_output_file(racy: Path) -> None:
    r = check("-o", "reports/asyncrace.txt")
    assert r.exit_code == 1
    assert r.stdout == ""
    report = (racy / "reports" / "asyncrace.txt").read_text()
    assert report.startswith(FINDING)
    assert report.endswith("Found 1 finding in 1 file.\n")  # the summary too, as ruff does
    r = check("--output-file", "r.json", "--output-format", "json", "--exit-zero")
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads((racy / "r.json").read_text())[0]["code"] == "ARC001"


def test_output_file_that_cannot_be_written(racy: Path) -> None:
    (racy / "blocker").write_text("")
    r = check("-o", "blocker/out.txt")
    assert r.exit_code == 2
    assert "asyncrace: error: cannot write output file blocker/out.txt" in r.stderr


# ------------------------------------------------------------------------------ --exclude


def test_exclude_replaces_the_configured_and_default_list(racy: Path) -> None:
    (racy / "build").mkdir()
    (racy / "build" / "gen.py").write_text(RACY.format(comment=""))
    assert "build/gen.py" not in check().stdout  # excluded by default
    r = check("--exclude", "app")
    assert r.stdout.startswith("build/gen.py:6:9: ARC001")  # the default list is replaced
    assert "app/cache.py" not in r.stdout
    assert check("--exclude", "app,build").stdout.startswith("All checks passed!")


# ------------------------------------------------------------ --(extend-)per-file-ignores


def test_per_file_ignores_replace_and_extend(racy: Path) -> None:
    (racy / "pyproject.toml").write_text(
        '[tool.asyncrace]\n[tool.asyncrace.per-file-ignores]\n"app/*" = ["ARC001"]\n'
    )
    assert check().exit_code == 0
    # replaces the configured table: app/* is checked again
    r = check("--per-file-ignores", "other.py:ARC003")
    assert r.exit_code == 1 and r.stdout.startswith(FINDING)
    # extends it
    assert check("--extend-per-file-ignores", "other.py:ARC003").exit_code == 0
    # ruff's comma-separated pairs; a code after a pair belongs to its pattern
    assert check("--per-file-ignores", "x.py:ARC003,app/cache.py:ARC002,ARC001").exit_code == 0
    r = check("--per-file-ignores", "ARC001")
    assert r.exit_code == 2 and "expected PATTERN:CODES, got 'ARC001'" in r.stderr
    r = check("--per-file-ignores", "app/*:ARC042")
    assert r.exit_code == 2 and "unknown rule selector 'ARC042'" in r.stderr


# ------------------------------------------------------------ --show-settings, --show-files


def test_show_settings(racy: Path) -> None:
    r = check("--show-settings", "--extend-select", "ARC100", "app/cache.py")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0] == f'Resolved settings for: "{racy / "app" / "cache.py"}"'
    assert f'config_path = "{racy / "pyproject.toml"}"' in lines
    assert f'project_root = "{racy}"' in lines
    enabled = r.stdout.split("enabled = [\n", 1)[1].split("]", 1)[0]
    assert '\t"ARC100",\n' in enabled and '\t"ARC001",\n' in enabled
    assert "Found" not in r.stdout  # nothing was checked


def test_show_files(racy: Path) -> None:
    (racy / "build").mkdir()
    (racy / "build" / "gen.py").write_text("x = 1\n")
    r = check("--show-files")
    assert r.exit_code == 0
    assert r.stdout.splitlines() == [
        str(racy / "app" / "cache.py"),
        str(racy / "app" / "clean.py"),
    ]


# ------------------------------------------------------------------------------ --add-noqa


def test_add_noqa(racy: Path) -> None:
    (racy / "app" / "other.py").write_bytes(
        b"\xef\xbb\xbf" + RACY.format(comment="  # noqa: E501").replace("\n", "\r\n").encode()
    )
    r = check("--add-noqa")
    assert r.exit_code == 0
    assert r.stdout == ""
    assert r.stderr == "Added 2 noqa directives.\n"
    assert (racy / "app" / "cache.py").read_text().splitlines()[5] == (
        "        self.current = key  # noqa: ARC001"
    )
    other = (racy / "app" / "other.py").read_bytes()
    assert other.startswith(b"\xef\xbb\xbf")  # the BOM is kept
    assert b"        self.current = key  # noqa: E501, ARC001\r\n" in other  # and CRLF
    assert other.count(b"\r\n") == other.count(b"\n")
    r = check()
    assert r.exit_code == 0
    assert r.stdout == "All checks passed! (2 suppressed by noqa or per-file-ignores)\n"
    assert check("--add-noqa").stderr == ""  # nothing left to add


def test_add_noqa_with_a_reason_and_after_a_bare_noqa(racy: Path) -> None:
    (racy / "app" / "cache.py").write_text(RACY.format(comment="  # noqa"))
    r = check("--add-noqa=reviewed: one task per cache", "app")
    assert r.exit_code == 0, r.output
    assert (racy / "app" / "cache.py").read_text().splitlines()[5] == (
        # the bare noqa stays for other linters; asyncrace reads the codes of the second
        "        self.current = key  # noqa  # noqa: ARC001 reviewed: one task per cache"
    )
    assert check().exit_code == 0


def test_add_noqa_never_breaks_code(racy: Path) -> None:
    # the finding is reported on a row that ends inside a triple-quoted string
    text = RACY.format(comment="").replace(
        "        self.current = key\n", '        self.current = key + """\n"""\n'
    )
    (racy / "app" / "cache.py").write_text(text)
    before = check().stdout
    assert before.startswith(FINDING)
    r = check("--add-noqa")
    assert r.exit_code == 0
    assert "app/cache.py:6: cannot add a noqa comment there" in r.stderr
    assert (racy / "app" / "cache.py").read_text() == text
    assert check().stdout == before


# ------------------------------------------------------------------------------- defect 7


@pytest.mark.parametrize(
    ("comment", "warning", "silenced"),
    [
        (
            "  # noqa: ARC001ARC003",
            "Missing or joined rule code(s) at app/cache.py:6: expected comma or space "
            "delimiter between codes (`ARC001ARC003`)",
            True,  # read as ARC001 and ARC003, as ruff reads joined codes
        ),
        (
            "  # noqa: ARC00l",
            "Missing or joined rule code(s) at app/cache.py:6: expected comma or space "
            "delimiter between codes (`ARC00l`)",
            False,
        ),
        (
            "  # noqa: ARC001,,ARC003",
            "Missing or joined rule code(s) at app/cache.py:6: expected rule code between commas",
            True,
        ),
        (
            "  # noqa ARC001",
            "Invalid `# noqa` directive at app/cache.py:6: expected `:` before the codes "
            "(`ARC001`)",
            False,
        ),
    ],
)
def test_malformed_noqa_warns_without_failing(
    racy: Path, comment: str, warning: str, silenced: bool
) -> None:
    (racy / "app" / "cache.py").write_text(RACY.format(comment=comment))
    for _ in range(2):  # the second run answers from the cache, and still warns
        r = check()
        assert r.stderr.splitlines() == [f"asyncrace: warning: {warning}"]
        assert r.exit_code == (0 if silenced else 1)
    assert check("--quiet").stderr == ""


def test_other_tools_noqa_codes_are_theirs(racy: Path) -> None:
    (racy / "app" / "cache.py").write_text(RACY.format(comment="  # noqa: E501F401, ARC001"))
    r = check()
    assert r.exit_code == 0 and r.stderr == ""


# ------------------------------------------------------------------------------- defect 6


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_named_on_the_command_line_is_skipped_not_waited_for(racy: Path) -> None:
    os.mkfifo(racy / "app" / "pipe.py")
    for fmt in ("concise", "full"):  # full reads source lines to show: it must not hang either
        proc = process("check", "--output-format", fmt, "app/pipe.py", "app/cache.py", cwd=racy)
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout.startswith(
            "app/cache.py:6:9: ARC001" if fmt == "concise" else "app/cache.py:6:9: ARC001 ["
        )
        assert "app/pipe.py:1:1: ARC901 " in proc.stdout
        assert "cannot read file: not a regular file (a FIFO), skipped" in proc.stdout
    # walking a directory skips it silently, as before
    proc = process("check", "--output-format", "concise", "app", cwd=racy)
    assert proc.returncode == 1 and "pipe.py" not in proc.stdout


def test_a_character_device_is_skipped(racy: Path) -> None:
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    proc = process("check", "--output-format", "concise", "/dev/zero", cwd=racy, timeout=30)
    assert proc.returncode == 1
    assert "ARC901 cannot read file: not a regular file (a character device), skipped" in (
        proc.stdout
    )


def _without_read_override() -> tuple[str, ...] | None:
    """A command prefix under which this process cannot read a chmod-000 file: none needed
    for an ordinary user; for root, ``setpriv`` dropping the capabilities that bypass file
    permissions. None when that is not possible here."""
    if os.name == "nt":
        return None
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    caps = "-dac_override,-dac_read_search"
    return (setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}")


def test_an_unreadable_file_is_an_arc901_finding_not_a_usage_error(racy: Path) -> None:
    prefix = _without_read_override()
    if prefix is None:
        pytest.skip("running as root without setpriv: a chmod 000 file stays readable")
    locked = racy / "app" / "locked.py"
    locked.write_text("x = 1\n")
    locked.chmod(0)
    try:
        probe = subprocess.run(
            [*prefix, sys.executable, "-c", f"open({str(locked)!r}).read()"],
            capture_output=True,
        )
        if probe.returncode == 0:
            pytest.skip("the file stays readable here (capabilities could not be dropped)")
        proc = process("check", "--output-format", "concise", "app/locked.py", cwd=racy,
                       prefix=prefix)  # fmt: skip
    finally:
        locked.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        "app/locked.py:1:1: ARC901 cannot read file: Permission denied"
    )


# ------------------------------------------------------------------------------ defect 11

LOADER = """\
class Loader:
    async def load(self, key):
        self.current = key
        await self.fetch()
        return self.current

    async def fetch(self):
        pass
"""

FANOUT = """\
import asyncio

from app.loader import Loader


async def load_all(loader: Loader, keys):
    return await asyncio.gather(*(loader.load(k) for k in keys))
"""


def test_stdin_is_analyzed_with_the_project_when_there_is_one(racy: Path) -> None:
    (racy / "app" / "__init__.py").write_text("")
    (racy / "app" / "loader.py").write_text(LOADER)
    (racy / "app" / "fanout.py").write_text(FANOUT)
    args = ("-", "--stdin-filename", "app/loader.py")
    r = check(*args, input=LOADER)  # the gather is in another module
    assert r.exit_code == 1
    assert r.stdout.splitlines() == [
        "app/loader.py:3:9: ARC001 `self.current` holds a per-call value across an await and "
        "is read back at line 5; a concurrent call of `Loader.load()` can overwrite it in "
        "between (it runs in several tasks at once: see the evidence)",
        "Found 1 finding in 1 file.",
    ]  # and only the findings of the file read from stdin
    assert check(*args, "--no-project-context", input=LOADER).stdout == "All checks passed!\n"
    # without a configuration file there is no project to speak of: the text alone
    (racy / "pyproject.toml").unlink()
    assert check(*args, input=LOADER).stdout == "All checks passed!\n"
    assert check(*args, "--project-context", input=LOADER).exit_code == 1


# ------------------------------------------------------------------------------- defect 1


def test_the_cache_is_shared_by_every_working_directory(racy: Path) -> None:
    (racy / "app" / "sub").mkdir()
    (racy / "app" / "sub" / "deep.py").write_text("x = 1\n")

    def cache_line(cwd: Path, *args: str) -> str:
        proc = process("check", "-v", "-j", "1", *args, cwd=cwd)
        lines = [line for line in proc.stderr.splitlines() if "asyncrace: cache:" in line]
        return lines[0] if lines else "(answered by the run cache)"

    assert cache_line(racy) == "asyncrace: cache: 0 of 3 files unchanged"
    assert cache_line(racy / "app") == "asyncrace: cache: 3 of 3 files unchanged"
    assert cache_line(racy / "app" / "sub") == "asyncrace: cache: 1 of 1 files unchanged"
    # other settings: neither the run cache nor the snapshot answers, every file is looked up
    (racy / "app" / "clean.py").write_text("async def f():\n    return 2\n")
    assert cache_line(racy, "--extend-select", "ARC100") == (
        "asyncrace: cache: 2 of 3 files unchanged"
    )
    assert cache_line(racy / "app" / "sub", "../..") == "asyncrace: cache: 3 of 3 files unchanged"


# -------------------------------------------------------------- rule --output-format json


def test_rule_in_json() -> None:
    r = run("rule", "arc004", "--output-format", "json")
    assert r.exit_code == 0
    doc = json.loads(r.stdout)
    page = (ROOT / "rules" / "ARC004.md").read_text(encoding="utf-8")
    assert {k: doc[k] for k in ("name", "code", "linter", "fix_availability", "preview")} == {
        "name": "executor-under-lock",
        "code": "ARC004",
        "linter": "asyncrace",
        "fix_availability": "None",
        "preview": False,
    }
    # ruff's explanation: the page without its title
    assert doc["explanation"].startswith("## What it does\n")
    assert doc["explanation"].strip() in page
    everything = json.loads(run("rule", "--all", "--output-format", "json").stdout)
    assert [(r["code"], r["default"], r["meta"]) for r in everything][-5:] == [
        ("ARC100", False, False),
        ("ARC900", True, True),
        ("ARC901", True, True),
        ("ARC902", True, True),
        ("ARC903", True, True),
    ]
    assert run("rule", "ARC042", "--output-format", "json").exit_code == 2
