"""The evidence of ARC004/ARC005 findings on the shapes locks are written in: a factory, a
``@contextmanager`` function, a generator-based coroutine, a blocking acquisition handed to a
shared pool, and the other places where the loop would block. ``test_fixtures.py`` checks where
findings are; this checks what they say and point at."""

from __future__ import annotations

from pathlib import Path

from asyncrace.analysis.extract import extract
from asyncrace.diagnostic import Diagnostic
from asyncrace.run.engine import check
from asyncrace.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def findings(rel: str) -> list[Diagnostic]:
    return list(check([FIXTURES / rel], Settings()).diagnostics)


def related(d: Diagnostic) -> list[tuple[int, str]]:
    return [(r.span.start.row, r.message) for r in d.related]


def test_factory_is_the_evidence_of_the_kind() -> None:
    (d,) = findings("arc005/arc005_bad_lock_factory.py")
    steps = related(d)
    assert (26, "`new_lock` returns a `threading.Lock`") in steps
    assert steps[0][0] == 46 and "await" in steps[0][1]


def test_contextmanager_wrapper_points_at_the_inner_lock() -> None:
    (d,) = findings("arc005/arc005_bad_contextmanager_wrapper.py")
    assert d.message.startswith("`self._exclusive()` (a non-reentrant `threading.Lock`)")
    steps = related(d)
    assert (27, "`_exclusive` takes `threading.Lock` here") in steps
    # ``write`` is synchronous and no coroutine calls it: not a place where the loop blocks
    assert [row for row, _ in steps if "blocks the event loop" in _] == [41]
    assert "(here, or in `Sink.close` at line 41)" in d.message


def test_lock_passed_to_a_contextmanager_function_is_the_callers() -> None:
    (d,) = findings("arc005/arc005_bad_contextmanager_acquire_release.py")
    assert d.message.startswith("`holding(self._slots)` (a non-reentrant `threading.Semaphore`)")
    assert (17, "`holding` takes `threading.Semaphore` here") in related(d)


def test_other_places_the_lock_is_taken_on_the_loop() -> None:
    (d,) = findings("arc005/arc005_bad_lock_taken_elsewhere.py")
    sites = [(row, m) for row, m in related(d) if "blocks the event loop" in m]
    assert [row for row, _ in sites] == [29, 44]  # not the fork handler at line 34
    assert "which the coroutine `ConnectionPool.query` calls" in sites[0][1]
    assert "the coroutine `ConnectionPool.close`" in sites[1][1]
    assert (
        "(here, in `ConnectionPool._checkin` at line 29, or in `ConnectionPool.close` at line 44)"
        in d.message
    )


def test_yield_from_in_await_is_an_await_point() -> None:
    (d,) = findings("arc005/arc005_bad_await_dunder.py")
    assert "held across 1 await point" in d.message
    assert related(d)[0][0] == 34 and "`yield` suspends the coroutine" in related(d)[0][1]


def test_pool_starvation_names_the_pool_and_what_it_waits_for() -> None:
    acquire, semaphore = [
        d for d in findings("arc004/arc004_bad_acquire_on_default_pool.py") if d.code == "ARC004"
    ]
    assert "runs on the event loop's default executor" in acquire.message
    assert "until `self._lock` (`threading.Lock`) is free" in acquire.message
    assert "until `self._writers` (`threading.Semaphore`) is free" in semaphore.message
    assert related(acquire)[0][1].startswith("`run_in_executor` runs `self._lock.acquire` on")

    typed, bare = findings("arc004/arc004_bad_enter_on_default_pool.py")
    assert "typed `AbstractContextManager`" in typed.message
    assert (21, typed.related[1].message) == related(typed)[1]  # ``self._context = context``
    assert "AnyIO's default thread limiter" in bare.message and "not annotated" in bare.message
    assert related(bare)[1][0] == 38  # the function that takes ``cm``


def test_redefined_function_keeps_what_earlier_definitions_return() -> None:
    src = (
        "import threading\n"
        "if FLAG:\n"
        "    def make():\n"
        "        return threading.Lock()\n"
        "else:\n"
        "    def make():\n"
        "        lock = threading.RLock()\n"
        "        return lock\n"
    )
    f = extract(src, "m.py", "m").functions["make"]
    assert f.returns_refs == ("lock",)
    assert f.earlier_returns == (("threading.Lock()",),)
