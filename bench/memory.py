"""Peak memory of one odd file: ``python bench/memory.py [--keep DIR]``.

Generates the files issue 16 measured (a 6 MB one-line file, a generated file with thousands
of findings) and a few more, checks each alone with ``asyncrace check --no-cache`` in a
process of its own, and prints the peak resident set size (``getrusage(RUSAGE_CHILDREN)``
read by a parent process per run), the CPU time and what was reported. The target: every
file under 300 MB (``docs/robustness.md``, "Very large files").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

PROBE = """\
import resource, subprocess, sys
p = subprocess.run([sys.executable, "-m", "asyncrace", "check", "--no-cache", "-q",
                    "--output-format", sys.argv[2], sys.argv[1]],
                   capture_output=True, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
lines = p.stdout.splitlines()
print(p.returncode, r.ru_maxrss, round(r.ru_utime + r.ru_stime, 1), len(lines),
      (lines[0][:110] if lines else ""), sep="\\t")
"""


def one_line_list(n: int = 750_000) -> str:
    return "DATA = [" + ", ".join(str(i * 7919 % 1_000_003) for i in range(n)) + "]\n"


def one_line_dict(n: int = 300_000) -> str:
    return "DATA = {" + ", ".join(f'"k{i}": "v{i}"' for i in range(n)) + "}\n"


def one_line_statements(n: int = 300_000) -> str:
    return ";".join(f"a{i}=f(b{i},c)" for i in range(n)) + "\n"


def many_findings(n: int) -> str:
    """One class whose ``run`` gathers ``n`` methods, each an ARC001 finding."""
    out = ["import asyncio", "", "", "class C:", "    async def run(self, ks):"]
    out.append("        await asyncio.gather(")
    out += [f"            *(self.m{j}(k) for k in ks)," for j in range(n)]
    out.append("        )")
    for j in range(n):
        out += [
            f"    async def m{j}(self, k):",
            f"        self.v{j} = k",
            "        await asyncio.sleep(0)",
            f"        return self.v{j}",
            "",
        ]
    return "\n".join(out) + "\n"


CASES: dict[str, Callable[[], str]] = {
    "one-line list of numbers": one_line_list,
    "one-line dict of strings": one_line_dict,
    "one line of statements": one_line_statements,
    "generated, 23,000 findings": lambda: many_findings(23_000),
    "generated, 6,500 findings (just under the token limit)": lambda: many_findings(6_500),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="write the files here (kept)")
    parser.add_argument("--formats", default="concise,sarif", help="output formats to run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        print("file\tMB\tformat\texit\tpeak MB\tCPU s\tlines\tfirst line")
        for i, (name, make) in enumerate(CASES.items()):
            path = where / f"case{i}.py"
            text = make()
            path.write_text(text)
            for fmt in args.formats.split(","):
                out = subprocess.run(
                    [sys.executable, "-c", PROBE, path.name, fmt],
                    cwd=where,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.rstrip("\n")
                code, peak, cpu, lines, first = out.split("\t", 4)
                print(
                    f"{name}\t{len(text) / 1e6:.1f}\t{fmt}\t{code}\t{int(peak) // 1024}\t{cpu}\t"
                    f"{lines}\t{first}"
                )


if __name__ == "__main__":
    main()
