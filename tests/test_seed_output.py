"""The rendered ``full`` output of each documented bug is snapshot-tested: the steps (write,
await, read; attach, store, detach; guard, await, registration; lock, hand-off, re-entry) and
their wording are part of the product. Update with ``pytest --snapshot-update`` and read the
diff before committing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncrace.output import render
from asyncrace.run.engine import check
from asyncrace.settings import Settings

SEEDS = Path(__file__).parent / "fixtures" / "seeds"


@pytest.mark.parametrize("seed", ["marsys", "openarmature", "hermes", "openhands"])
def test_seed_full_output(
    seed: str, snapshot: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SEEDS)  # display paths relative to the seeds directory
    files = sorted(Path(f"{seed}_buggy").rglob("*.py"))
    result = check(files, Settings(), jobs=1)
    assert [d.code for d in result.diagnostics], f"{seed}_buggy reports nothing"
    text = render("full", result.diagnostics, result.sources, color=False, width=110)
    snapshot.snapshot_dir = Path(__file__).parent / "snapshots" / "seeds"  # type: ignore[attr-defined]
    snapshot.assert_match(text, f"{seed}_buggy_full.txt")  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", ["marsys", "openarmature", "hermes", "openhands"])
def test_seed_fixed_is_clean(seed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SEEDS)
    files = sorted(Path(f"{seed}_fixed").rglob("*.py"))
    assert check(files, Settings(), jobs=1).diagnostics == []
