"""Does the link-and-rules stage cost the same per line on a quarter of the corpus as on all of
it? And if not, what grows faster than the code?

    python bench/rules_scaling.py                 # the whole corpus against a quarter of it
    python bench/rules_scaling.py --reps 3 --top 25
    python bench/rules_scaling.py --packages      # a quarter made of whole packages

Extracts every file once (in this process, facts kept in memory), deals the files in corpus
order into four parts of about equal lines (as bench/run.py deals two halves), then links and
checks the first part alone and the whole corpus, each ``--reps`` times, and prints the CPU
seconds of the stage (the index, then the rules over every module), per line, and the ratio.
Then it profiles one run of each (cProfile) and lists the functions whose own time per line
grows most from the quarter to the whole: where the super-linear part is. CPU time of this one
process: other load on the machine disturbs it little.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
import warnings
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

from asyncrace.analysis.facts import ModuleFacts  # noqa: E402
from asyncrace.run import engine, pipeline  # noqa: E402
from asyncrace.run.jobs import FileJob  # noqa: E402
from asyncrace.run.link import link_and_check  # noqa: E402
from asyncrace.settings import Settings  # noqa: E402

CORPUS = BENCH / ".cache" / "corpus"


def facts_of(files: list[Path]) -> list[tuple[ModuleFacts, int]]:
    out = []
    packages: dict[str, list[str]] = {}
    warnings.simplefilter("ignore")
    for f in files:
        mod, pkg = engine.module_name(f, packages)
        data = f.read_bytes()
        job = FileJob(str(f), str(f), mod, pkg)
        o = pipeline.run_deep(lambda work: pipeline.analyze_bytes(*work), (job, data))
        if o.facts is not None:
            out.append((o.facts, data.count(b"\n") + (not data.endswith(b"\n"))))
    return out


def unique(facts: list[ModuleFacts]) -> list[ModuleFacts]:
    """Two top-level modules of one name are kept apart as the engine keeps them."""
    import dataclasses

    seen: set[str] = set()
    out = []
    for m in facts:
        name, n = m.module, 2
        while name in seen:
            name = f"{m.module}#{n}"
            n += 1
        seen.add(name)
        out.append(m if name == m.module else dataclasses.replace(m, module=name))
    return out


def stage(facts: list[ModuleFacts], reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        gc.collect()
        gc.disable()
        t = time.process_time()
        link_and_check(facts, Settings(), track=False)
        best = min(best, time.process_time() - t)
        gc.enable()
    return best


# what a part asks (call counts are exact whatever the load): the concurrency model's
# questions, the nodes its caller search visits, ARC003's evidence searches, the by-name caller
# search per module
ASKED = (
    "concurrency.py:Concurrency.concurrent",
    "concurrency.py:Concurrency._node",
    "concurrency.py:Concurrency._iter_callers",
    "concurrency.py:Concurrency._callers_in",
    "arc003_guard_registration.py:GuardBeforeRegistration._evidence",
)


def profile(facts: list[ModuleFacts]) -> tuple[dict[str, float], dict[str, int]]:
    """Own time per function, and call counts by ``file:name`` (the last part of the
    qualified name of :data:`ASKED`)."""
    prof = cProfile.Profile()
    gc.disable()
    prof.enable()
    link_and_check(facts, Settings(), track=False)
    prof.disable()
    gc.enable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    out: dict[str, float] = {}
    calls: dict[str, int] = {}
    for (file, line, name), (_cc, nc, tt, _ct, _callers) in stats.items():
        key = f"{Path(file).name}:{line}({name})"
        out[key] = out.get(key, 0.0) + tt
        short = f"{Path(file).name}:{name}"
        calls[short] = calls.get(short, 0) + nc
    return out, calls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument(
        "--packages",
        action="store_true",
        help="the quarter made of whole packages (each package to the part with the fewest "
        "lines, largest first; the part nearest a quarter of the lines), not of files",
    )
    args = ap.parse_args(argv)
    files = sorted(CORPUS.rglob("*.py"))
    print(f"extracting {len(files)} files ...", file=sys.stderr)
    pairs = facts_of(files)
    total = sum(n for _m, n in pairs)
    # each file, in corpus order, goes to the part with fewer lines so far (bench/run.py's
    # halves, four ways); the first part is the quarter
    parts: list[list[tuple[ModuleFacts, int]]] = [[], [], [], []]
    sizes = [0, 0, 0, 0]
    if args.packages:
        # a project a quarter as big: its imports resolve as they do in the whole
        by_package: dict[str, list[tuple[ModuleFacts, int]]] = {}
        for m, n in pairs:  # (a module's path is its file's: ``facts_of``)
            by_package.setdefault(Path(m.path).relative_to(CORPUS).parts[0], []).append((m, n))
        for _lines, pkg in sorted(
            ((sum(n for _m, n in v), k) for k, v in by_package.items()), reverse=True
        ):
            i = sizes.index(min(sizes))
            parts[i].extend(by_package[pkg])
            sizes[i] += _lines
        quarter = min(parts, key=lambda p: abs(sum(n for _m, n in p) - total / 4))
    else:
        for m, n in pairs:
            i = sizes.index(min(sizes))
            parts[i].append((m, n))
            sizes[i] += n
        quarter = parts[0]
    whole_facts = unique([m for m, _n in pairs])
    part_facts = unique([m for m, _n in quarter])
    part_lines = sum(n for _m, n in quarter)
    t_part = stage(part_facts, args.reps)
    t_whole = stage(whole_facts, args.reps)
    per_part, per_whole = t_part / part_lines, t_whole / total
    print(f"quarter: {len(part_facts)} modules, {part_lines:,} lines: {t_part:.2f} s CPU")
    print(f"whole:   {len(whole_facts)} modules, {total:,} lines: {t_whole:.2f} s CPU")
    print(
        f"line ratio {total / part_lines:.2f}, time ratio {t_whole / t_part:.2f}, "
        f"per line {per_whole / per_part:.2f}x"
    )
    (p_part, c_part), (p_whole, c_whole) = profile(part_facts), profile(whole_facts)
    scale = total / part_lines
    print("\nwhat each asks (calls; whole / quarter):")
    for k in ASKED:
        file, _, qual = k.partition(":")
        short = f"{file}:{qual.rpartition('.')[2]}"
        a, b = c_part.get(short, 0), c_whole.get(short, 0)
        print(f"  {qual:42} {a:>9,} {b:>9,}  ({b / a if a else 0:.1f}x)")
    grown = sorted(
        ((p_whole.get(k, 0.0) - scale * p_part.get(k, 0.0), k) for k in p_whole),
        reverse=True,
    )
    print(f"\nown time beyond linear growth (whole - {scale:.2f} x quarter), cProfile seconds:")
    for extra, k in grown[: args.top]:
        print(f"  {extra:7.3f}  {k}  (quarter {p_part.get(k, 0.0):.3f}, whole {p_whole[k]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
