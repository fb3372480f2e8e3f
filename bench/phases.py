"""Where the time of a one-file-changed run goes: the phases of ``asyncrace check``, timed inside
one process.

    python bench/phases.py                  # the whole corpus (bench/.cache/corpus)
    python bench/phases.py --packages arq httpx --reps 5

Copies the corpus files to a scratch directory (the corpus itself is never edited), fills a
scratch cache with one run, then, for each repetition, appends a comment to the file of median
length and runs ``asyncrace check`` in this process with the engine's phases wrapped in timers:
hashing every file for the run key, getting the facts (the changed file parsed, the others
decoded from the cache), linking and running the rules, and the rest (suppression, output,
storing the run cache). Prints the median of each phase. This is a diagnostic for
``docs/architecture.md``; ``bench/run.py`` is the benchmark.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "src"))

from asyncrace.cli import main as cli_main  # noqa: E402
from asyncrace.run import engine, link, pipeline  # noqa: E402

CORPUS = BENCH / ".cache" / "corpus"


def timed(name: str, fn: Callable[..., Any], into: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            into[name] = into.get(name, 0.0) + time.perf_counter() - t

    return wrapper


def run_check(tree: Path, cache: Path) -> None:
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        cli_main(
            ["check", str(tree), "--cache-dir", str(cache), "--exit-zero", "-q", "--jobs", "2"],
            standalone_mode=False,
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packages", nargs="+", help="only these corpus directories (name-version)")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args(argv)
    if not CORPUS.is_dir():
        print("no corpus: run `python bench/corpus.py fetch` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="asyncrace-phases-") as tmp:
        tree, cache = Path(tmp) / "tree", Path(tmp) / "cache"
        tree.mkdir()
        for d in sorted(CORPUS.iterdir()):
            if d.is_dir() and (
                not args.packages or any(d.name.startswith(p) for p in args.packages)
            ):
                shutil.copytree(d, tree / d.name)
        files = sorted(tree.rglob("*.py"), key=lambda p: (p.stat().st_size, str(p)))
        changed = files[len(files) // 2]
        lines = sum(p.read_bytes().count(b"\n") for p in files)
        print(f"{len(files)} files, {lines:,} lines; editing {changed.relative_to(tree)}")
        run_check(tree, cache)  # fill the cache
        samples: list[dict[str, float]] = []
        real = (engine._run_key, pipeline.extract_all, link.run_rules)
        for rep in range(args.reps):
            with changed.open("a", encoding="utf-8") as f:
                f.write(f"# bench/phases.py: edit {rep + 1}\n")
            phases: dict[str, float] = {}
            engine._run_key = timed("hash every file (run key)", real[0], phases)  # type: ignore[assignment]
            pipeline.extract_all = timed("facts (1 parsed, rest from cache)", real[1], phases)  # type: ignore[assignment]
            link.run_rules = timed("link and rules", real[2], phases)  # type: ignore[assignment]
            t = time.perf_counter()
            try:
                run_check(tree, cache)
            finally:
                engine._run_key, pipeline.extract_all, link.run_rules = real  # type: ignore[assignment]
            total = time.perf_counter() - t
            phases["rest (discovery, suppression, output)"] = total - sum(phases.values())
            phases["total (in process, without start-up)"] = total
            samples.append(phases)
        for name in samples[0]:
            values = [s[name] for s in samples]
            print(f"{name:42s} {statistics.median(values):6.2f} s  (min {min(values):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
