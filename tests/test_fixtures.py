"""Every fixture states its expected findings in ``# expect: ARC00N`` comments on the primary
lines; this test asserts the exact set of (file, line, code) per case: no more, no fewer.

A case is one file under ``tests/fixtures/arcNNN/`` (analyzed alone) or one package under
``tests/fixtures/seeds/`` or ``tests/fixtures/projects/`` (analyzed as a project, so
cross-module findings link). Every case is checked at both strictness levels: ``proven`` (the
default) must report exactly the ``# expect:`` lines; ``likely`` also the
``# expect-likely:`` lines (shapes with no evidence either way that the code runs
concurrently)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from asyncrace.run.engine import check
from asyncrace.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
EXPECT = re.compile(r"#\s*expect(-likely)?:\s*([A-Z]{3}\d{3}(?:\s*,\s*[A-Z]{3}\d{3})*)")
RULE_CODES = ("ARC001", "ARC002", "ARC003", "ARC004", "ARC005", "ARC006")


def _cases() -> list[Path]:
    singles = sorted(p for p in FIXTURES.glob("arc*/*.py"))
    packages = sorted(p for p in (FIXTURES / "seeds").iterdir() if p.is_dir())
    projects = sorted(p for p in (FIXTURES / "projects").iterdir() if p.is_dir())
    return [*singles, *packages, *projects]


def expected(files: list[Path], strictness: str = "proven") -> set[tuple[str, int, str]]:
    out: set[tuple[str, int, str]] = set()
    for f in files:
        for row, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            m = EXPECT.search(line)
            if m and (m.group(1) is None or strictness == "likely"):
                for code in m.group(2).split(","):
                    out.add((f.resolve().as_posix(), row, code.strip()))
    return out


def found(files: list[Path], strictness: str = "proven") -> set[tuple[str, int, str]]:
    result = check(files, Settings(strictness=strictness))
    return {
        (Path(d.span.path).resolve().as_posix(), d.span.start.row, d.code)
        for d in result.diagnostics
    }


@pytest.mark.parametrize("strictness", ["proven", "likely"])
@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_fixture(case: Path, strictness: str) -> None:
    files = sorted(case.rglob("*.py")) if case.is_dir() else [case]
    want = expected(files, strictness)
    got = found(files, strictness)
    assert got == want, (
        f"\nmissing (expected, not reported): {sorted(want - got)}"
        f"\nunexpected (reported, not expected): {sorted(got - want)}"
    )


def test_every_rule_has_bad_and_good_fixtures() -> None:
    for code in RULE_CODES:
        folder = FIXTURES / code.lower()
        bad = list(folder.glob("*_bad_*.py"))
        good = list(folder.glob("*_good_*.py"))
        assert len(bad) >= 8 and len(good) >= 8, (code, len(bad), len(good))


def test_every_seed_has_buggy_and_fixed() -> None:
    seeds = {p.name for p in (FIXTURES / "seeds").iterdir() if p.is_dir()}
    for name in ("marsys", "openarmature", "hermes", "openhands"):
        assert {f"{name}_buggy", f"{name}_fixed"} <= seeds
        buggy = sorted((FIXTURES / "seeds" / f"{name}_buggy").rglob("*.py"))
        assert expected(buggy), f"{name}_buggy states no expected finding"
