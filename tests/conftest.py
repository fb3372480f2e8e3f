"""Fixtures shared by the test modules."""

from __future__ import annotations

from typing import Any

import pytest

from asyncrace.run import engine

# the analyzed fixtures are code to read, never tests to run (one project has a test suite of
# its own, tests/fixtures/projects/evidence_only_in_tests/tests/test_relay.py)
collect_ignore_glob = ["fixtures/*"]


@pytest.fixture
def full_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Number of modules of each full link-and-check (``engine.link_and_check``: not the run
    cache's answers, nor an incremental run's)."""
    runs: list[int] = []
    real = engine.link_and_check

    def counting(facts: Any, settings: Any, **kw: Any) -> Any:
        runs.append(len(facts))
        return real(facts, settings, **kw)

    monkeypatch.setattr(engine, "link_and_check", counting)
    return runs
