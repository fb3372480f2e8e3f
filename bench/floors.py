"""Parse every file of a list in this one process: the floor a per-file analyzer cannot beat.

    python bench/floors.py ast FILELIST      # ast.parse of each file's bytes
    python bench/floors.py libcst FILELIST   # libcst.parse_module of each file's bytes

FILELIST holds one path a line. Prints one JSON object: files, failures (path and error) and
the seconds spent reading and parsing (the interpreter's start-up is not in it; bench/run.py
measures the whole process from outside as well).
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path


def parser(kind: str) -> Callable[[bytes], object]:
    if kind == "ast":
        import ast

        return ast.parse
    if kind == "libcst":
        import libcst

        return libcst.parse_module
    raise SystemExit(f"unknown floor {kind!r}: ast or libcst")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit(__doc__)
    parse = parser(argv[0])
    files = [line for line in Path(argv[1]).read_text().splitlines() if line]
    warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in old code
    failures: list[dict[str, str]] = []
    t0 = time.perf_counter()
    for name in files:
        data = Path(name).read_bytes()
        try:
            parse(data)
        except Exception as exc:  # a parser's error, whatever its class
            failures.append({"file": name, "error": f"{type(exc).__name__}: {exc}"[:500]})
    seconds = time.perf_counter() - t0
    print(json.dumps({"files": len(files), "failures": failures, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
