"""Start-up: a short run imports only what it uses (``docs/benchmarks.md`` has the timings;
this test checks which modules are loaded, in a fresh interpreter, never how long it takes).

* ``asyncrace --version`` loads neither click nor the engine;
* a check answered by the run cache loads neither the analysis nor the rules, nor
  multiprocessing, the process pool, rich or the snapshot;
* a one-file check loads no process pool, multiprocessing, rich or snapshot (``--no-cache``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SNIPPET = "import asyncio\n\n\nasync def main() -> None:\n    await asyncio.sleep(0)\n"

PROBE = """
import json, sys
sys.argv = ["asyncrace", *json.loads(sys.argv[1])]
try:
    if sys.argv[1:] == ["--version"]:
        from asyncrace.__main__ import run
        run()
    else:
        from asyncrace.cli import main
        main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
sys.stderr.write("\\nMODULES " + json.dumps(sorted(sys.modules)) + "\\n")
"""


def loaded(args: list[str], cwd: Path) -> set[str]:
    r = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = [x for x in r.stderr.splitlines() if x.startswith("MODULES ")]
    assert line, r.stderr
    return set(json.loads(line[-1][len("MODULES ") :]))


def heavy(modules: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in modules if m.startswith(prefixes)}


def test_version_loads_neither_click_nor_the_engine(tmp_path: Path) -> None:
    mods = loaded(["--version"], tmp_path)
    assert "asyncrace" in mods
    assert not heavy(mods, ("click", "asyncrace.cli", "asyncrace.run", "asyncrace.analysis"))


def test_a_run_cache_answer_loads_no_analysis(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SNIPPET)
    first = loaded(["check", "app.py"], tmp_path)  # fills the caches
    assert "asyncrace.analysis.facade" in first  # (the probe sees what a real run loads)
    mods = loaded(["check", "app.py"], tmp_path)
    assert "asyncrace.run.runcache" in mods
    assert not heavy(
        mods,
        (
            "asyncrace.analysis",
            "asyncrace.rules",
            "asyncrace.run.pipeline",
            "asyncrace.run.snapshot",
            "multiprocessing",
            "concurrent",
            "rich",
            "pathspec",
        ),
    )


def test_a_one_file_check_loads_no_pool(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(SNIPPET)
    mods = loaded(["check", "--no-cache", "app.py"], tmp_path)
    assert "asyncrace.analysis.extract" in mods
    assert not heavy(
        mods, ("multiprocessing", "concurrent", "rich", "asyncrace.run.snapshot", "difflib")
    )
