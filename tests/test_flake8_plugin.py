"""The flake8 plugin, end to end: real flake8 (a subprocess) on fixture files reports what
``asyncrace check`` reports, with the same codes, rows and columns."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("flake8")

FIXTURES = Path(__file__).parent / "fixtures"
SEEDS = FIXTURES / "seeds"


def run(cwd: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def flake8(cwd: Path, *args: str, input: str | None = None) -> list[str]:
    r = run(cwd, "flake8", "--isolated", "--select", "ARC", *args, input=input)
    assert r.returncode in (0, 1), r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    return sorted(line.removeprefix("./") for line in r.stdout.splitlines())


def asyncrace(cwd: Path, *args: str) -> list[str]:
    r = run(cwd, "asyncrace", "check", "--output-format", "concise", "--quiet", "--no-cache", *args)
    assert r.returncode in (0, 1), r.stderr
    return sorted(r.stdout.splitlines())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Seeds (packages) and single-file cases (top-level modules) in a project of their own."""
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    for name in ("marsys_buggy", "marsys_fixed", "hermes_buggy"):
        shutil.copytree(SEEDS / name, tmp_path / name)
    (tmp_path / "single").mkdir()
    for name in (
        "arc005/arc005_bad_module_lock.py",
        "arc005/arc005_good_rlock.py",
        "arc001/arc001_bad_module_global.py",
        "arc003/arc003_bad_evidence_taskgroup_loop.py",
    ):
        shutil.copy(FIXTURES / name, tmp_path / "single")
    return tmp_path


def test_same_findings_as_asyncrace_check(tree: Path) -> None:
    got = flake8(tree, ".")
    assert got == asyncrace(tree, ".")
    assert len(got) == 5
    # the wording is asyncrace's (compared above); the place and code are the fixture's
    lock = [line for line in got if line.startswith("single/arc005_bad_module_lock.py:")]
    assert len(lock) == 1
    assert lock[0].startswith("single/arc005_bad_module_lock.py:19:10: ARC005 ")
    assert "_CONFIG_LOCK" in lock[0]
    codes = sorted(line.split(": ")[1].split()[0] for line in got)
    assert codes == ["ARC001", "ARC001", "ARC003", "ARC003", "ARC005"]


def test_lines_and_columns(tree: Path) -> None:
    lines = flake8(tree, "single/arc001_bad_module_global.py", "hermes_buggy/gateway/run.py")
    assert [line.split(" ", 2)[:2] for line in lines] == [
        ["hermes_buggy/gateway/run.py:43:12:", "ARC003"],
        ["single/arc001_bad_module_global.py:31:5:", "ARC001"],
    ]


def test_one_file_is_analyzed_with_its_package(tree: Path) -> None:
    """`RealRuntime.step` is fanned out in orchestrator.py: flake8 passes real_runtime.py alone,
    the plugin still sees the package."""
    got = flake8(tree, "marsys_buggy/real_runtime.py")
    assert len(got) == 1
    assert got[0].startswith("marsys_buggy/real_runtime.py:38:9: ARC001 `self._current_instance`")
    assert flake8(tree, "marsys_fixed/real_runtime.py") == []


def test_stdin_is_analyzed_with_the_context_from_disk(tree: Path) -> None:
    buggy = (tree / "marsys_buggy" / "real_runtime.py").read_text()
    got = flake8(tree, "--stdin-display-name", "marsys_fixed/real_runtime.py", "-", input=buggy)
    assert len(got) == 1
    assert got[0].startswith("marsys_fixed/real_runtime.py:38:9: ARC001")


def test_noqa_and_configuration(tree: Path) -> None:
    target = tree / "single" / "arc005_bad_module_lock.py"
    lines = target.read_text().splitlines(keepends=True)
    assert "# expect: ARC005" in lines[18]
    lines[18] = lines[18].replace("# expect: ARC005", "# noqa: ARC005")
    target.write_text("".join(lines))
    assert not any("arc005_bad_module_lock" in line for line in flake8(tree, "single"))

    # asyncrace's own configuration applies: its select
    (tree / "pyproject.toml").write_text('[tool.asyncrace]\nselect = ["ARC003"]\n')
    assert [line.split(": ")[1].split()[0] for line in flake8(tree, "single")] == ["ARC003"]


def test_no_work_when_flake8_selects_no_arc_code() -> None:
    from flake8.options.parse_args import parse_args  # type: ignore[import-untyped]

    from asyncrace.flake8_plugin import AsyncraceChecker

    try:
        parse_args(["--isolated", "--select", "E"])  # calls the plugins' parse_options
        assert AsyncraceChecker.enabled is False
        parse_args(["--isolated", "--select", "E,ARC0"])
        assert AsyncraceChecker.enabled is True
        parse_args(["--isolated", "--select", "ARC", "--ignore", "ARC"])
        assert AsyncraceChecker.enabled is False
        parse_args(["--isolated"])  # the default: every plugin's codes
        assert AsyncraceChecker.enabled is True
    finally:
        AsyncraceChecker.enabled = True


def test_plugin_is_registered() -> None:
    r = run(Path.cwd(), "flake8", "--version")
    assert "asyncrace" in r.stdout


def test_configuration_error_is_one_line(tree: Path) -> None:
    (tree / "pyproject.toml").write_text('[tool.asyncrace]\nselect = ["ARC042"]\n')
    r = run(tree, "flake8", "--isolated", "--select", "ARC", "single/arc005_good_rlock.py")
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    assert "tool.asyncrace.select: unknown rule selector 'ARC042'" in out
