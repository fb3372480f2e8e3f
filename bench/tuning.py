"""Tuning figures: every pinned list run at one commit, each finding judged by the blind
verdicts of docs/triage.md, and two such runs compared list by list.

    python bench/tuning.py fetch --jobs 2          # every list's cache (downloads; once)
    python bench/tuning.py run OUT                 # the corpus and every held-out list
    python bench/tuning.py run OUT 10 18 corpus    # some of them (N: bench/heldout-N.toml)
    python bench/tuning.py run OUT --at REV        # the asyncrace of commit REV (a snapshot)
    python bench/tuning.py judge OUT               # right, wrong, unjudged: per rule, per evidence
    python bench/tuning.py judge OUT --list        # each finding with its verdict
    python bench/tuning.py judge OUT --why ARC003  # its wrong findings: evidence, the verdict's words
    python bench/tuning.py diff OLD NEW            # per list, the findings only one run has

``run`` checks each list as ``python bench/corpus.py check --offline --corpus F --jobs 2`` does
(its cache must be fetched: ``corpus.py fetch``) and copies its ``findings.jsonl`` to
``OUT/<stem>.jsonl``; a list that fails or has no cache is named in ``OUT/FAILS``. ``judge``
reads every ``OUT/heldout*.jsonl`` (the corpus apart: it has its own triage) and joins each
finding to its verdict by ``file:line`` as ``bench/first_contact.py`` does; the evidence kind is
the finding's last step that speaks of concurrency or of a canceller, names elided. ``diff``
compares (code, file, line) list by list, each finding with its verdict. These are the tuning
figures of docs/triage.md (every held-out list has been read to teach rules by now); the
held-out figures are the sets' first runs (``bench/first_contact.py``). Never run in a timed
test or in CI: the lists' caches are outside the repository and a full run takes minutes.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from first_contact import EVIDENCE, judge, verdicts  # noqa: E402

CANCELLER = re.compile(r"can cancel it|cancels the task|the timeout cancels")
VERDICT = {True: "right", False: "wrong", None: "?"}


def lists(names: list[str]) -> list[tuple[str, Path]]:
    """(stem, pinned list) for ``names`` (``corpus``, ``heldout``, ``apps`` or a set's number),
    or for every pinned list in order when none is named."""
    if not names:
        sets = sorted(
            int(p.stem.removeprefix("heldout-"))
            for p in BENCH.glob("heldout-*.toml")
            if p.stem.removeprefix("heldout-").isdigit()
        )
        names = ["corpus", "heldout", "apps", *map(str, sets)]
    out = []
    for n in names:
        if n == "corpus":
            out.append(("corpus", BENCH / "corpus.toml"))
        elif n == "heldout":
            out.append(("heldout", BENCH / "heldout.toml"))
        elif n == "apps":
            out.append(("heldout-apps", BENCH / "heldout-apps.toml"))
        else:
            out.append((f"heldout-{n}", BENCH / f"heldout-{n}.toml"))
    return out


def fetch(names: list[str], jobs: int) -> int:
    """``corpus.py fetch`` for every list named (all when none), ``jobs`` at a time; a list
    whose fetch fails is named at the end. Each list's output goes to
    ``bench/out/fetch/<stem>.log``."""
    logs = BENCH / "out" / "fetch"
    logs.mkdir(parents=True, exist_ok=True)
    todo = lists(names)
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    failed: list[str] = []
    while todo or running:
        while todo and len(running) < jobs:
            stem, toml = todo.pop(0)
            cmd = [sys.executable, str(BENCH / "corpus.py"), "fetch", "--corpus", str(toml)]
            with (logs / f"{stem}.log").open("wb") as log:
                running.append((stem, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)))
        stem, proc = running.pop(0)
        if proc.wait() != 0:
            failed.append(stem)
        print(f"{stem}: {'failed' if stem in failed else 'fetched'}", file=sys.stderr)
    for stem in failed:
        print(f"failed: {stem} (bench/out/fetch/{stem}.log)")
    return 1 if failed else 0


def run(out: Path, names: list[str], at: str | None = None) -> int:
    out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    for stem, toml in lists(names):
        findings = BENCH / "out" / ("" if stem == "corpus" else stem) / "findings.jsonl"
        cmd = [sys.executable, str(BENCH / "corpus.py"), "check", "--offline"]
        cmd += ["--corpus", str(toml), "--jobs", "2"]
        if at:
            cmd += ["--at", at]
        with (out / f"{stem}.log").open("w", encoding="utf-8") as log:
            done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
        if done.returncode == 0 and findings.is_file():
            shutil.copyfile(findings, out / f"{stem}.jsonl")
        else:
            failed.append(stem)
        print(f"{stem}: {'failed' if stem in failed else 'done'}", file=sys.stderr)
    (out / "FAILS").write_text("".join(f"{s}\n" for s in failed), encoding="utf-8")
    return 1 if failed else 0


def _where(d: dict[str, object]) -> str:
    return f"{str(d['file']).split('/', 1)[1]}:{d['line']}"


def _kind(d: dict[str, object]) -> str:
    related = d.get("related") or []
    assert isinstance(related, list)
    steps = [r["message"] for r in related if EVIDENCE.search(r["message"])]
    steps += [r["message"] for r in related if CANCELLER.search(r["message"])]
    return re.sub(r"`[^`]*`", "X", steps[-1])[:90] if steps else "-"


def _records(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _reason(rows: list[str], where: str) -> str:
    """The longest cell of the verdict row of ``where``: its reason."""
    for line in rows:
        if where in line:
            return max((c.strip() for c in line.split("|")), key=len)
    return ""


def why(out: Path, code: str, verdict: str) -> int:
    """Each finding of ``code`` whose verdict is ``verdict`` (right, wrong, ? or all): where,
    its evidence kind, and the start of the verdict's reason."""
    rows = verdicts()
    for path in sorted(out.glob("heldout*.jsonl")):
        for d in _records(path):
            if d["code"] != code:
                continue
            where = _where(d)
            v = VERDICT[judge(rows, where)]
            if verdict != "all" and v != verdict:
                continue
            print(f"{path.stem} {v} {where}\n   kind: {_kind(d)}")
            print(f"   why: {_reason(rows, where)[:400]}")
    return 0


def judge_run(out: Path, show: bool) -> int:
    rows = verdicts()
    table: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    per_rule: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    for path in sorted(out.glob("heldout*.jsonl")):
        for d in _records(path):
            ok = judge(rows, _where(d))
            i = 0 if ok else (1 if ok is False else 2)
            code = str(d["code"])
            table[(code, _kind(d))][i] += 1
            per_rule[code][i] += 1
            if show:
                print(f"{path.stem} {code} {VERDICT[ok]:5} {_where(d)}")
    for (code, kind), (r, w, u) in sorted(table.items(), key=lambda kv: (kv[0][0], -sum(kv[1]))):
        print(f"{code} {r:3} right {w:3} wrong" + (f" {u} unjudged" if u else "") + f"  {kind}")
    for code, (r, w, u) in sorted(per_rule.items()):
        print(f"{code}: {r} right, {w} wrong, {u} unjudged ({_pct(r, w)})")
    r, w, u = (sum(v[i] for v in per_rule.values()) for i in range(3))
    print(f"all: {r} right, {w} wrong, {u} unjudged ({_pct(r, w)})")
    return 0


def _pct(r: int, w: int) -> str:
    return f"{100 * r / (r + w):.1f}%" if r + w else "-"


def diff(old: Path, new: Path) -> int:
    rows = verdicts()
    gone = [0, 0, 0]
    came = [0, 0, 0]
    for path in sorted(new.glob("*.jsonl")):
        before = old / path.name
        if not before.is_file():
            print(f"== {path.stem}: not in {old}")
            continue

        def keyed(p: Path) -> dict[tuple[str, str, int], dict[str, object]]:
            return {(str(d["code"]), str(d["file"]), int(str(d["line"]))): d for d in _records(p)}

        a, b = keyed(before), keyed(path)
        changed = [("-", k, a[k]) for k in sorted(a.keys() - b.keys())]
        changed += [("+", k, b[k]) for k in sorted(b.keys() - a.keys())]
        if not changed:
            continue
        print(f"== {path.stem}")
        for sign, (code, _file, _line), d in changed:
            ok = judge(rows, _where(d))
            (gone if sign == "-" else came)[0 if ok else (1 if ok is False else 2)] += 1
            print(f"{sign} {code} {VERDICT[ok]:5} {_where(d)}")
    for name, t in (("only in the old run", gone), ("only in the new run", came)):
        print(f"{name}: {t[0]} right, {t[1]} wrong, {t[2]} unjudged")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", help="fetch every pinned list's cache (or the ones named)")
    f.add_argument("lists", nargs="*", help="corpus, heldout, apps, or a set's number")
    f.add_argument("--jobs", type=int, default=2, help="fetches at once (default 2)")
    r = sub.add_parser("run", help="run every pinned list (or the ones named) into OUT")
    r.add_argument("out", type=Path)
    r.add_argument("lists", nargs="*", help="corpus, heldout, apps, or a set's number")
    r.add_argument("--at", help="run the asyncrace of this commit (corpus.py check --at)")
    j = sub.add_parser("judge", help="the tuning figures of a run")
    j.add_argument("out", type=Path)
    j.add_argument("--list", action="store_true", help="each finding with its verdict")
    j.add_argument("--why", metavar="CODE", help="one rule's findings with their verdicts' reasons")
    j.add_argument(
        "--verdict", default="wrong", choices=("right", "wrong", "?", "all"), help="with --why"
    )
    d = sub.add_parser("diff", help="the findings only one of two runs has, list by list")
    d.add_argument("old", type=Path)
    d.add_argument("new", type=Path)
    o = ap.parse_args()
    if o.cmd == "fetch":
        return fetch(o.lists, max(1, o.jobs))
    if o.cmd == "run":
        return run(o.out, o.lists, o.at)
    if o.cmd == "judge":
        return why(o.out, o.why, o.verdict) if o.why else judge_run(o.out, o.list)
    return diff(o.old, o.new)


if __name__ == "__main__":
    raise SystemExit(main())
