"""The wheel carries everything a user needs outside the repository: the rule pages
(``asyncrace rule``), the console script and the flake8 entry point."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here (no network for the build backend?): {proc.stderr}")
    (found,) = out.glob("asyncrace-*.whl")
    return found


def test_wheel_contains_rule_pages_and_entry_points(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for code in ("ARC001", "ARC002", "ARC003", "ARC004", "ARC005", "ARC100", "ARC900"):
        assert f"asyncrace/rule_docs/{code}.md" in names
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "asyncrace = asyncrace.__main__:run" in text
    assert "ARC = asyncrace.flake8_plugin:AsyncraceChecker" in text


def test_rule_page_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import asyncrace; assert asyncrace.__file__.startswith(sys.argv[1]), asyncrace.__file__; "
        "from asyncrace.cli import main; main(['rule', 'ARC004'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(site)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# ARC004: executor-under-lock")
