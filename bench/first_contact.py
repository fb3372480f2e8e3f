"""Judge every held-out finding at its set's first run by the blind verdicts of
docs/triage.md, grouped by rule and by the kind of concurrency evidence it cites.

    python bench/first_contact.py            # the table
    python bench/first_contact.py --list     # each finding with its verdict
    python bench/first_contact.py --sets     # right of all, set by set, and since each set

The first runs are the files ``bench/triage/<commit>/heldout*-findings.jsonl`` (one per set,
copied when the set was run for the first time). A finding is joined to its verdict by
``file:line`` in the verdict tables of docs/triage.md (``real``/``plausible`` are right,
``FP`` wrong). The evidence kind is the finding's last step that speaks of concurrency, with
its names elided.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVIDENCE = re.compile(
    r"runs in several tasks|concurren|public|entry point|handler|callback|lock|spawn|served"
    r"|called from|held by|ASGI|one object"
)


def verdicts() -> list[str]:
    text = (ROOT / "docs" / "triage.md").read_text(encoding="utf-8").replace("\\_", "_")
    return [line for line in text.splitlines() if line.startswith("|")]


def judge(rows: list[str], where: str) -> bool | None:
    for line in rows:
        if where not in line:
            continue
        cells = [c.strip().strip("*").lower() for c in line.split("|")]
        if any(c.startswith(("real", "plausible")) for c in cells):
            return True
        if any(c.startswith(("fp", "false positive", "wrong")) for c in cells):
            return False
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--sets", action="store_true", help="set by set, and from each set on")
    o = ap.parse_args()
    rows = verdicts()
    table: dict[tuple[str, str], list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    per_set: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for path in sorted((ROOT / "bench" / "triage").glob("*/heldout*-findings.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            where = f"{d['file'].split('/', 1)[1]}:{d['line']}"
            ok = judge(rows, where)
            steps = [r["message"] for r in d.get("related", []) if EVIDENCE.search(r["message"])]
            kind = re.sub(r"`[^`]*`", "X", steps[-1])[:90] if steps else "-"
            table[(d["code"], kind)][0 if ok else (1 if ok is False else 2)] += 1
            name = path.name.removesuffix("-findings.jsonl")
            per_set[name][0] += bool(ok)
            per_set[name][1] += 1
            if o.list:
                verdict = {True: "right", False: "wrong", None: "?"}[ok]
                print(f"{path.parent.name} {d['code']} {verdict:5} {where}")
    total = [sum(v[i] for v in table.values()) for i in range(3)]
    if o.sets:
        order = sorted(per_set, key=_set_number)
        for i, name in enumerate(order):
            r, n = per_set[name]
            rest = [per_set[x] for x in order[i:]]
            rr, rn = sum(x[0] for x in rest), sum(x[1] for x in rest)
            print(f"{name:14} {r:3}/{n:<3} from here on {rr:3}/{rn:<3} ({100 * rr / rn:.1f}%)")
    for (code, kind), (r, w, u) in sorted(table.items(), key=lambda kv: (kv[0][0], -sum(kv[1]))):
        print(f"{code} {r:3} right {w:3} wrong" + (f" {u} unjudged" if u else "") + f"  {kind}")
    print(f"all: {total[0]} right, {total[1]} wrong, {total[2]} unjudged")
    return 0


def _set_number(name: str) -> int:
    """``heldout`` 1, ``heldout-apps`` 2, ``heldout-N`` N."""
    tail = name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else (2 if tail == "apps" else 1)


if __name__ == "__main__":
    raise SystemExit(main())
