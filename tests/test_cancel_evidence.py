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
    assert sorted(found) == [30, 46]
    assert last_step(found[30]) == (
        43,
        "`Link._ping` waits for `Link._request` under `wait_for`: the timeout cancels it there",
    )
    assert last_step(found[46]) == (
        61,
        "`Link.restart` cancels the task that runs `Link._pump` (`self._task`, started in "
        "`Link.start`)",
    )


def test_plain_change_with_an_assumed_canceller_is_likely_only() -> None:
    # ``send``: a counter (plain state), and only its being public says it can be cancelled
    assert 65 not in findings("arc006/arc006_bad_cancel_evidence.py")
    found = findings("arc006/arc006_bad_cancel_evidence.py", "likely")
    assert found[65].message.endswith(
        "(likely: only its being public says something can cancel it)"
    )
    assert last_step(found[65]) == (
        64,
        "`Link.send` is a public coroutine: a caller's timeout or task group can cancel it "
        "while it waits",
    )
    # a lock taken by hand is no plain state: the assumed canceller is enough for it
    lock = findings("arc006/arc006_bad_lock_taken_by_hand_through_a_local.py")
    assert lock and all("likely" not in d.message for d in lock.values())
    assert any("public coroutine" in last_step(d)[1] for d in lock.values())
    # nor is an ``Event`` cleared for others to wait on: they wait for good
    gate = findings("arc006/arc006_bad_event_cleared_across_sleep.py")
    assert sorted(gate) == [33]
    assert "public coroutine" in last_step(gate[33])[1]
    assert "likely" not in gate[33].message


def test_no_canceller_found_is_likely_only() -> None:
    # ``_drain``: private, called by nothing in the project: nothing shows what cancels it
    assert 73 not in findings("arc006/arc006_bad_cancel_evidence.py")
    found = findings("arc006/arc006_bad_cancel_evidence.py", "likely")
    assert sorted(found) == [30, 46, 65, 73]
    assert found[73].message.endswith("(likely: nothing in the project shows what can cancel it)")
    assert last_step(found[73]) == (
        78,
        "the change is undone here, but only once the `try` has been entered",
    )
    # a finding with a canceller found in the project is not marked likely
    assert "likely" not in found[30].message
    assert "likely" not in found[46].message


def test_callers_outside_the_project_are_named() -> None:
    found = findings("arc006/arc006_bad_cancel_evidence_outside.py")
    assert sorted(found) == [28]
    found.update(findings("arc006/arc006_bad_cancel_evidence_outside.py", "likely"))
    assert sorted(found) == [28, 45]
    # a plain function that returns the coroutine its callers await
    assert last_step(found[28]) == (
        24,
        "`Lease.release` is a public function that returns the coroutine: a caller's timeout "
        "or task group can cancel it while it waits",
    )
    # the exit of an ``async with`` the project's users write
    assert last_step(found[45]) == (
        44,
        "`Channel.__aexit__` is run by its callers' `async with`: a caller's timeout or task "
        "group can cancel it while it waits",
    )


def test_a_shared_future_left_in_its_table_names_the_later_callers() -> None:
    found = findings("arc006/arc006_bad_shared_future_resolved_only_on_completion.py")
    assert sorted(found) == [24, 49, 79]
    # taken out of the table in ``finally``: only the calls already waiting are left waiting
    assert found[24].message.endswith(
        "`fut` stays pending, and every call already waiting on it waits for good"
    )
    assert found[49].message.endswith("every call already waiting on it waits for good")
    # nothing takes it out on a cancellation: later calls find it and wait too
    assert found[79].message.endswith(
        "`fut` stays pending, and stays in `self._cache`: every call waiting on it, and every "
        "later call that finds it there, waits for good"
    )
    # each names its canceller: a caller's ``wait_for``, or its ``asyncio.timeout``
    assert all("cancels it there" in last_step(d)[1] for d in found.values())
