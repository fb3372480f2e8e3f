"""What ARC006 findings name as the canceller: a caller's timeout, the ``.cancel()`` of the
task the code runs in, or a public coroutine's callers. ``test_fixtures.py`` checks where
findings are; this checks the step that says what can cancel the await."""

from __future__ import annotations

from pathlib import Path

from asyncrace.diagnostic import Diagnostic
from asyncrace.run.engine import check
from asyncrace.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def findings(rel: str, strictness: str = "proven") -> dict[int, Diagnostic]:
    settings = Settings(strictness=strictness)
    return {d.span.start.row: d for d in check([FIXTURES / rel], settings).diagnostics}


def last_step(d: Diagnostic) -> tuple[int, str]:
    r = d.related[-1]
    return r.span.start.row, r.message


def test_each_finding_names_its_canceller() -> None:
    found = findings("arc006/arc006_bad_cancel_evidence.py")
    assert sorted(found) == [28, 44, 63]
    assert last_step(found[28]) == (
        41,
        "`Link._ping` waits for `Link._request` under `wait_for`: the timeout cancels it there",
    )
    assert last_step(found[44]) == (
        59,
        "`Link.restart` cancels the task that runs `Link._pump` (`self._task`, started in "
        "`Link.start`)",
    )
    assert last_step(found[63]) == (
        62,
        "`Link.send` is a public coroutine: a caller's timeout or task group can cancel it "
        "while it waits",
    )


def test_no_canceller_found_is_likely_only() -> None:
    # ``_drain``: private, called by nothing in the project: nothing shows what cancels it
    assert 71 not in findings("arc006/arc006_bad_cancel_evidence.py")
    found = findings("arc006/arc006_bad_cancel_evidence.py", "likely")
    assert sorted(found) == [28, 44, 63, 71]
    assert found[71].message.endswith("(likely: nothing in the project shows what can cancel it)")
    assert last_step(found[71]) == (
        76,
        "the change is undone here, but only once the `try` has been entered",
    )
    # a finding with a canceller is not marked likely
    assert "likely" not in found[63].message


def test_callers_outside_the_project_are_named() -> None:
    found = findings("arc006/arc006_bad_cancel_evidence_outside.py")
    assert sorted(found) == [26, 43]
    # a plain function that returns the coroutine its callers await
    assert last_step(found[26]) == (
        22,
        "`Lease.release` is a public function that returns the coroutine: a caller's timeout "
        "or task group can cancel it while it waits",
    )
    # the exit of an ``async with`` the project's users write
    assert last_step(found[43]) == (
        42,
        "`Channel.__aexit__` is run by its callers' `async with`: a caller's timeout or task "
        "group can cancel it while it waits",
    )
