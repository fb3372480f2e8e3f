"""asyncrace never imports, compiles-and-runs or executes the code it analyzes, directly or
through a dependency. Every file below would write a marker file (or exit) if it were run; the
CLI is run as a subprocess with the checked directory as its working directory, and no marker
may appear, with the exit code the findings call for.

Besides the analyzed files, the directory holds files named like modules that asyncrace (or
Python's start-up, or a worker process) imports: ``asyncio.py``, ``json.py``, ``ast.py``,
``multiprocessing.py``, ``sitecustomize.py``... A Python process that had the working directory
first on ``sys.path`` would import them instead of the real ones."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from asyncrace.run import pipeline
from asyncrace.run.engine import check
from asyncrace.settings import Settings

SNIPPET = """import asyncio


class Worker:
    async def step(self, x):
        self._current = x
        await asyncio.sleep(0)
        return self._current


async def main(obj: Worker):
    await asyncio.gather(*(obj.step(i) for i in range(3)))
"""

# modules asyncrace, its dependencies, Python's start-up or a worker's start-up import
SHADOWED = [
    "asyncio",
    "ast",
    "json",
    "re",
    "typing",
    "enum",
    "dataclasses",
    "pathlib",
    "tokenize",
    "logging",
    "hashlib",
    "tempfile",
    "threading",
    "multiprocessing",
    "concurrent",
    "click",
    "rich",
    "pathspec",
    "libcst",
    "tomllib",
    "sitecustomize",
    "usercustomize",
]


def _payload(marker: Path, tag: str) -> str:
    return f"open({str(marker / tag)!r}, 'w').write('ran')\nimport os as _os\n_os._exit(97)\n"


def _populate(root: Path, marker: Path) -> None:
    def w(rel: str, text: str) -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")

    # analyzed files that would run code at import, in a class body, in a decorator...
    w("module_level.py", _payload(marker, "module_level") + SNIPPET)
    w(
        "class_body.py",
        "class C:\n    " + _payload(marker, "class_body").replace("\n", "\n    ") + "pass\n",
    )
    w(
        "decorator.py",
        "def deco(f):\n    "
        + _payload(marker, "decorator").replace("\n", "\n    ")
        + "return f\n\n@deco\n@(lambda f: (deco(f), f)[1])\nasync def g():\n    pass\n",
    )
    w(
        "annotations.py",
        "def f(x: \"__import__('os').system('touch "
        + str(marker / "annotation")
        + "')\") -> \"exec('raise SystemExit(5)')\":\n    pass\n",
    )
    w("pkg/__init__.py", _payload(marker, "package_init"))
    w("pkg/mod.py", "from . import *\n" + SNIPPET)
    w("pkg/__main__.py", _payload(marker, "package_main"))
    w("conftest.py", _payload(marker, "conftest"))
    w("setup.py", "from setuptools import setup\n" + _payload(marker, "setup") + "setup()\n")
    w(
        "main_guard.py",
        "if __name__ == '__main__':\n    " + _payload(marker, "main").replace("\n", "\n    "),
    )
    w("zz-evil.pth", "import os; open(" + repr(str(marker / "pth")) + ", 'w').write('ran')\n")
    w("evil_pth.py", "import os; open(" + repr(str(marker / "pth_py")) + ", 'w').write('ran')\n")
    w(
        "newer_syntax.py",
        "def f[T](x: T) -> T:\n    "
        + _payload(marker, "lowered").replace("\n", "\n    ")
        + "return x\n",
    )
    for name in SHADOWED:
        w(f"{name}.py", _payload(marker, f"shadow_{name}"))
    # enough files for the process pool to be used with --jobs 2
    for i in range(30):
        w(f"many/m{i}.py", _payload(marker, f"many_{i}"))


def _markers(marker: Path) -> list[str]:
    return sorted(p.name for p in marker.iterdir())


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "checked"
    marker = tmp_path / "markers"
    marker.mkdir()
    _populate(root, marker)
    return root, marker


def _asyncrace_script() -> str:
    script = shutil.which("asyncrace", path=str(Path(sys.executable).parent))
    assert script is not None, "the asyncrace console script is not installed"
    return script


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_cli_runs_no_analyzed_code(project: tuple[Path, Path], jobs: str) -> None:
    root, marker = project

    def asyncrace() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_asyncrace_script(), "check", ".", "--output-format", "concise", "-j", jobs],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "NO_COLOR": "1"},
        )

    r = asyncrace()
    assert _markers(marker) == []
    assert r.returncode == 1, r.stderr  # the ARC001 findings: the normal exit code
    assert "module_level.py:9:9: ARC001 " in r.stdout
    assert "pkg/mod.py:7:9: ARC001 " in r.stdout
    assert "Traceback" not in r.stderr
    # warm: read back from the cache, still nothing runs
    r2 = asyncrace()
    assert _markers(marker) == []
    assert (r2.returncode, r2.stdout) == (r.returncode, r.stdout)


def test_python_dash_m_runs_no_analyzed_code(project: tuple[Path, Path]) -> None:
    root, marker = project
    r = subprocess.run(
        [sys.executable, "-m", "asyncrace", "check", ".", "--output-format", "concise"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert _markers(marker) == []
    assert r.returncode == 1


def test_python_dash_capital_p_dash_m_runs_no_analyzed_code(project: tuple[Path, Path]) -> None:
    root, marker = project
    r = subprocess.run(
        [sys.executable, "-P", "-m", "asyncrace", "check", ".", "--output-format", "concise"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert _markers(marker) == []
    assert r.returncode == 1, r.stderr


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_spawned_workers_run_no_analyzed_code(
    project: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """Workers started with ``python -c`` (spawn: Windows and macOS; forkserver: Linux from
    Python 3.14) would have the working directory first on their path without
    PYTHONSAFEPATH: a ``multiprocessing.py`` there would run in every worker."""
    root, marker = project
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(root))])
    monkeypatch.setattr(pipeline, "MP_CONTEXT", method)
    monkeypatch.setattr(pipeline, "PARALLEL_THRESHOLD", 1)
    files = sorted(Path(".").rglob("*.py"))
    result = check(files, Settings(), jobs=2)
    assert _markers(marker) == []
    assert not [d for d in result.diagnostics if d.code == "ARC902"]
    assert ("module_level.py", 9) in {(d.path, d.span.start.row) for d in result.diagnostics}
