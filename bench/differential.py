"""Differential check of incremental runs on real code.

Copies packages of the corpus into one project, runs ``asyncrace check`` once to fill the
cache and the project snapshot, then applies random edits (``tests/edits.py``) one at a time.
After each edit it runs ``asyncrace check`` (incremental when the edit keeps the interface)
and a full run from a second cache directory whose snapshot and run cache are deleted first,
and compares the two JSON outputs byte for byte. Prints one line per edit and a summary:

    python bench/differential.py --edits 40 --seed 1                 # the whole corpus
    python bench/differential.py --packages anthropic redis --edits 20
    python bench/differential.py --edits 20 --hubs 100   # edit the 100 files read most

``--hubs N`` edits only the N files whose modules the most other modules' checks read (from
the first run's project snapshot): the edits that make an incremental run check the most.

Exit status 1 if any output differs.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402
import edits  # noqa: E402


def run(root: Path, cache: Path) -> tuple[str, float, str]:
    cmd = [sys.executable, "-m", "asyncrace", "check", ".", "--cache-dir", str(cache)]
    cmd += ["--output-format", "json", "--exit-zero", "--jobs", "2", "-v"]
    t = time.perf_counter()
    p = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"asyncrace failed ({p.returncode}): {p.stderr[-2000:]}")
    m = re.search(r"incremental: (\d+) changed, (\d+) checked again, (\d+) unchanged", p.stderr)
    how = f"incremental ({m.group(2)} checked, {m.group(3)} bodies)" if m else "full"
    return p.stdout, took, how


def hubs(root: Path, cache: Path, n: int) -> list[Path]:
    """The ``n`` files whose modules the most modules' checks read (the snapshot's reads)."""
    import json
    from collections import Counter

    (snap,) = (cache / "projects").glob("*.jsonl")
    records = [json.loads(line) for line in snap.read_bytes().split(b"\n")[2:]]
    readers: Counter[str] = Counter()
    for r in records:
        for dep in r["deps"]:
            if dep != r["module"]:
                readers[dep] += 1
    display = {r["module"]: r["display"] for r in records if r["module"]}
    top = [display[m] for m, _ in readers.most_common() if m in display][:n]
    by_display = {d: m for m, d in display.items()}
    print(
        "hubs: "
        + ", ".join(f"{d} (read by {readers[by_display[d]]})" for d in top[:3])
        + f" ... {len(top)} files",
        flush=True,
    )
    return [root / d for d in top]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packages", nargs="*", help="names from bench/corpus.toml (default: all)")
    ap.add_argument("--edits", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--corpus", type=Path, default=HERE / "corpus.toml")
    ap.add_argument("--hubs", type=int, default=0, help="edit only the N files read most")
    args = ap.parse_args()

    packages = corpus.load_corpus(args.corpus)
    if args.packages:
        packages = [p for p in packages if p.name in args.packages]
    work = Path(tempfile.mkdtemp(prefix="asyncrace-differential-"))
    root = work / "project"
    (root).mkdir()
    (root / "asyncrace.toml").write_text("")
    for pkg in packages:
        shutil.copytree(pkg.corpus_dir, root / pkg.corpus_dir.name)
    files = sorted(root.rglob("*.py"))
    inc_cache, ref_cache = work / "inc-cache", work / "ref-cache"
    run(root, inc_cache)
    run(root, ref_cache)
    if args.hubs:
        files = hubs(root, inc_cache, args.hubs)
    rng = random.Random(args.seed)
    times: list[float] = []
    differ = 0
    incremental = 0
    for i in range(args.edits):
        edit = edits.apply_random(files, rng)
        got, took, how = run(root, inc_cache)
        shutil.rmtree(ref_cache / "projects", ignore_errors=True)
        shutil.rmtree(ref_cache / "runs", ignore_errors=True)
        want, _, _ = run(root, ref_cache)
        same = got == want
        differ += not same
        if how != "full":
            incremental += 1
            times.append(took)
        rel = edit.path.relative_to(root)
        print(
            f"{i + 1:3} {'same' if same else 'DIFFERENT'} {took:5.2f} s {how:38} "
            f"{edit.kind} {rel}:{edit.line}",
            flush=True,
        )
        if not same:
            (work / f"got-{i + 1}.json").write_text(got)
            (work / f"want-{i + 1}.json").write_text(want)
    print(
        f"{args.edits} edits of {len(files)} files: {differ} different; {incremental} "
        f"incremental (median {statistics.median(times) if times else 0:.2f} s, max "
        f"{max(times) if times else 0:.2f} s), {args.edits - incremental} full; work in {work}"
    )
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
