"""``const_flags`` and ``decided_by_flags``: a flag a call passes by name as a constant decides
the callee's tests of it."""

from __future__ import annotations

import textwrap

import pytest

from asyncrace.analysis.extract import extract
from asyncrace.analysis.facts import FunctionFacts, K
from asyncrace.analysis.summaries import const_flags, decided_by_flags

SRC = """
async def f(force=False, refresh=False, other=None):
    if not force and self._cache is not None:
        return self._cache
    if refresh or self._stale:
        await reload()
    if force:
        if self._client is None:
            await connect()
    if other and self._x:
        pass
"""


def _branches() -> tuple[list[int], FunctionFacts]:
    facts = extract(textwrap.dedent(SRC), "m.py", "m").functions["f"]
    return [i for i, e in enumerate(facts.events) if e.kind == K.BRANCH], facts


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({}, [False, False, False, False, False]),
        # ``not force and ...`` is false; ``if force:`` is true, the check inside it is reached
        ({"force": True}, [True, False, True, False, False]),
        # ``if force:`` is false: the check inside is never reached
        ({"force": False}, [False, False, True, True, False]),
        # ``refresh or ...`` is true whatever the state says
        ({"refresh": True}, [False, True, False, False, False]),
        ({"refresh": False}, [False, False, False, False, False]),
    ],
)
def test_decided_by_flags(flags: dict[str, bool], expected: list[bool]) -> None:
    branches, facts = _branches()
    got = [decided_by_flags(facts, b, flags) for b in branches]
    assert got == expected


def test_const_flags_reads_flags_passed_by_name() -> None:
    src = "async def g():\n    await f(1, force=True, refresh=False, other=None, n=3)\n"
    facts = extract(src, "m.py", "m").functions["g"]
    call = next(e for e in facts.events if e.kind == K.CALL)
    assert const_flags(call) == {"force": True, "refresh": False}
