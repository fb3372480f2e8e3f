"""Does a module checked alone, with fresh summaries, get the findings of a full run?

An incremental run checks a few modules in a new ``Analysis``: its memoized summaries start
empty, while in a full run they were filled by the modules checked before. If a summary's value
depended on that order (a depth bound, a recursion guard), the incremental answer could differ
from the full one. This links the corpus once, runs the full check, then checks every module
(or a sample) again alone with a fresh ``Analysis`` (the spawn-site contributions kept, as an
incremental run keeps them) and compares its findings:

    python bench/alone.py                    # every module of the corpus
    python bench/alone.py --sample 300 --packages anthropic redis

Exit status 1 if any module's findings differ.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402

from asyncrace.analysis.facade import Analysis  # noqa: E402
from asyncrace.rules import all_rules  # noqa: E402
from asyncrace.run.engine import module_name  # noqa: E402
from asyncrace.run.jobs import FileJob  # noqa: E402
from asyncrace.run.link import check_modules, link_and_check  # noqa: E402
from asyncrace.run.pipeline import extract_all  # noqa: E402
from asyncrace.settings import Settings  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packages", nargs="*", help="names from bench/corpus.toml (default: all)")
    ap.add_argument("--sample", type=int, default=0, help="check N random modules (0: all)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    packages = corpus.load_corpus(HERE / "corpus.toml")
    if args.packages:
        packages = [p for p in packages if p.name in args.packages]
    jobs: list[FileJob] = []
    for pkg in packages:
        for rel in corpus.select_files(pkg.corpus_dir):
            path = pkg.corpus_dir / rel
            display = f"{pkg.corpus_dir.name}/{rel}"
            mod, is_pkg = module_name(path)
            jobs.append(FileJob(str(path), display, mod, is_pkg))
    jobs.sort(key=lambda j: j.display)
    settings = Settings()
    with tempfile.TemporaryDirectory() as cache:
        outs = extract_all(jobs, settings, jobs_n=2, cache_dir=Path(cache))
    facts = [o.facts for o in outs if o.facts is not None]
    gc.collect()
    gc.freeze()
    found, analysis, _reads = link_and_check(facts, settings, track=True)
    want: dict[str, list[str]] = {}
    for d in found:
        want.setdefault(d.path, []).append(repr(d))
    modules = sorted(facts, key=lambda m: m.path)
    if args.sample:
        modules = random.Random(args.seed).sample(modules, min(args.sample, len(modules)))
    rules = [r for r in all_rules() if r.code in settings.enabled]
    t = time.perf_counter()
    different = 0
    for m in modules:
        fresh = Analysis(analysis.index, settings)
        fresh.track = True
        fresh.contributions = dict(analysis.contributions)
        got, _ = check_modules(fresh, [type(r)() for r in rules], [m], True)
        if sorted(map(repr, got)) != sorted(want.get(m.path, [])):
            different += 1
            print(
                f"DIFFERENT {m.path}: {len(got)} findings alone, {len(want.get(m.path, []))} in full"
            )
    print(
        f"{len(modules)} modules checked alone ({len(found)} findings in the full run): "
        f"{different} different ({time.perf_counter() - t:.1f} s)"
    )
    return 1 if different else 0


if __name__ == "__main__":
    raise SystemExit(main())
