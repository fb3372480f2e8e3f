"""The pre-commit hook (``.pre-commit-hooks.yaml``), end to end: ``pre-commit try-repo`` installs
the hook from this checkout into an environment of its own (``pip install`` of the repository
at its committed HEAD, dependencies from the package index) and runs it in a scratch git
repository holding real seed code.

Skipped when pre-commit or git is missing, when this is not a git checkout, or when the package
index cannot be reached (``pip download`` of the build backend fails)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.precommit

REPO = Path(__file__).resolve().parents[1]
SEEDS = Path(__file__).parent / "fixtures" / "seeds"


def _git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }
    r = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return r.stdout.strip()


def _skip_unless_possible(tmp: Path) -> str:
    """The commit to try (HEAD of this checkout), or skip."""
    if importlib.util.find_spec("pre_commit") is None:
        pytest.skip("pre-commit is not installed")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    head = _git(REPO, "rev-parse", "HEAD")
    tracked = _git(REPO, "ls-tree", "--name-only", head, ".pre-commit-hooks.yaml")
    if not tracked:
        pytest.skip(".pre-commit-hooks.yaml is not committed")
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(tmp), "hatchling"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if probe.returncode != 0:
        pytest.skip(f"package index unreachable: {probe.stderr.strip()[-300:]}")
    return head


def _try_repo(project: Path, home: Path, ref: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "NO_COLOR": "1"}
    env.pop("PRE_COMMIT", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pre_commit",
            "try-repo",
            str(REPO),
            "asyncrace",
            "--ref",
            ref,
            "--color",
            "never",
            *args,
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _commit_all(project: Path, message: str) -> None:
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", message)


def test_hook_fails_on_the_bug_passes_on_the_fix(tmp_path: Path) -> None:
    head = _skip_unless_possible(tmp_path / "probe")
    project = tmp_path / "project"
    project.mkdir()
    home = tmp_path / "pre-commit-home"
    _git(project, "init", "-q")
    (project / "pyproject.toml").write_text("[tool.asyncrace]\n")
    shutil.copytree(SEEDS / "hermes_buggy", project / "hermes_buggy")
    shutil.copytree(SEEDS / "marsys_buggy", project / "marsys_buggy")
    _commit_all(project, "buggy")

    # every file: both seeds' findings
    r = _try_repo(project, home, head, "--all-files")
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    assert "asyncrace" in out and "Failed" in out
    assert "hermes_buggy/gateway/run.py:43:12: ARC003" in out
    assert "marsys_buggy/real_runtime.py:38:9: ARC001" in out
    assert "Found 2 findings in 2 files." in out

    # what pre-commit passes on a commit: the staged files. real_runtime.py alone: its
    # finding needs orchestrator.py (the fan-out) and is found through the project context;
    # hermes' untouched finding does not block this commit
    r = _try_repo(project, home, head, "--files", "marsys_buggy/real_runtime.py")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "marsys_buggy/real_runtime.py:38:9: ARC001" in r.stdout
    assert "hermes_buggy" not in r.stdout
    assert "Found 1 finding in 1 file." in r.stdout

    r = _try_repo(
        project, home, head, "--files", "marsys_buggy/orchestrator.py", "hermes_buggy/agent.py"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Passed" in r.stdout

    # the fixes
    shutil.rmtree(project / "hermes_buggy")
    shutil.rmtree(project / "marsys_buggy")
    shutil.copytree(SEEDS / "hermes_fixed", project / "hermes_fixed")
    shutil.copytree(SEEDS / "marsys_fixed", project / "marsys_fixed")
    _commit_all(project, "fixed")
    r = _try_repo(project, home, head, "--all-files")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Passed" in r.stdout
