"""The control-flow graph of a function's facts: jumps out of a ``try`` run its ``finally``."""

from __future__ import annotations

import textwrap

import pytest

from asyncrace.analysis.extract import extract
from asyncrace.analysis.facts import FunctionFacts, K, reachable

SOURCE = """
async def run(items):
    for it in items:
        h = begin()
        try:
            await step(it)
            if it:
                {jump}
        finally:
            end(h)
    after()
"""


def _facts(jump: str) -> FunctionFacts:
    src = textwrap.dedent(SOURCE.format(jump=jump))
    return extract(src, "m.py", "m").functions["run"]


def _call(f: FunctionFacts, ref: str) -> int:
    return next(i for i, e in enumerate(f.events) if e.kind == K.CALL and e.ref == ref)


@pytest.mark.parametrize("jump", ["break", "continue", "return"])
def test_jump_out_of_try_runs_finally(jump: str) -> None:
    """From the making of ``h``, no path leaves the pass (to ``after()``, the next pass's
    ``begin()`` or the function's end) without ``end(h)``."""
    f = _facts(jump)
    made, ended = _call(f, "begin"), _call(f, "end")
    skipping = reachable(f, [made], avoid={ended})
    assert _call(f, "after") not in skipping
    assert made not in skipping
    assert 1 not in skipping  # the function's exit


@pytest.mark.parametrize("jump", ["break", "continue"])
def test_jump_goes_on_after_finally(jump: str) -> None:
    """After the ``finally`` the jump reaches its target: the loop's exit for ``break``, its
    head (the next ``begin()``) for ``continue``."""
    f = _facts(jump)
    ended = _call(f, "end")
    assert _call(f, "after") in reachable(f, [ended])
    assert _call(f, "begin") in reachable(f, [ended])


def test_jump_through_nested_finally() -> None:
    """A ``break`` inside two ``try``s runs both ``finally`` blocks, inner first."""
    src = textwrap.dedent(
        """
        async def run(items):
            for it in items:
                try:
                    try:
                        if it:
                            break
                    finally:
                        inner()
                finally:
                    outer()
            after()
        """
    )
    f = extract(src, "m.py", "m").functions["run"]
    inner, outer, after = _call(f, "inner"), _call(f, "outer"), _call(f, "after")
    branch = next(i for i, e in enumerate(f.events) if e.kind == K.BRANCH and e.pos[0] == 6)
    assert after not in reachable(f, [branch], avoid={inner})
    assert after not in reachable(f, [branch], avoid={outer})


@pytest.mark.parametrize(
    ("caught", "escapes"),
    [
        ("except BaseException", False),
        ("except BaseException as err", False),
        ("except", False),
        ("except (ValueError, BaseException)", False),
        ("except Exception", True),
        ("except asyncio.CancelledError", True),
    ],
)
def test_an_exception_no_handler_matches(caught: str, escapes: bool) -> None:
    """An exception that no handler matches leaves the ``try`` (here, the function) without
    running the code after it; a bare ``except:`` or one that names ``BaseException``
    matches every exception, so from the making of ``h`` every path closes it."""
    src = textwrap.dedent(
        f"""
        async def run(fn):
            h = begin()
            try:
                await fn()
            {caught}:
                close(h)
                raise
            close(h)
        """
    )
    f = extract(src, "m.py", "m").functions["run"]
    made = _call(f, "begin")
    closes = {i for i, e in enumerate(f.events) if e.kind == K.CALL and e.ref == "close"}
    assert (1 in reachable(f, [made], avoid=closes)) is escapes
