"""``single_flight``: a function that turns back while a run of it is in progress."""

from __future__ import annotations

import textwrap

import pytest

from asyncrace.analysis.concurrency import single_flight
from asyncrace.analysis.extract import extract


def _lines(src: str, name: str) -> tuple[int, int] | None:
    facts = extract(textwrap.dedent(src), "m.py", "m").functions[name]
    found = single_flight(facts)
    if found is None:
        return None
    check, claim = found
    return facts.events[check].pos[0], facts.events[claim].pos[0]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        # the check turns back, the claim comes before the first await
        (
            """
            async def run(self):
                if self._running:
                    return
                self._running = True
                await work()
            """,
            (3, 5),
        ),
        # ``if not flag:`` around the work, a module variable, ``raise`` to turn back
        (
            """
            async def run():
                global _busy
                if _busy:
                    raise RuntimeError("busy")
                _busy = True
                try:
                    await work()
                finally:
                    _busy = False
            """,
            (4, 6),
        ),
        # claimed only after an await: two runs can both pass the check
        (
            """
            async def run(self):
                if self._running:
                    return
                await prepare()
                self._running = True
                await work()
            """,
            None,
        ),
        # the branch that finds the flag set goes on into the work
        (
            """
            async def run(self):
                if self._running:
                    log()
                self._running = True
                await work()
            """,
            None,
        ),
        # the flag is set before the check, not claimed past it (no claim to find)
        (
            """
            async def run(self):
                await connect()
                self._connected = True
                if not self._connected:
                    schedule()
            """,
            None,
        ),
        # never suspends while it holds the flag
        (
            """
            async def run(self):
                if not self._open:
                    self._open = True
            """,
            None,
        ),
        # starts a task: the task may outlive the run and overlap the next one's
        (
            """
            async def run(self):
                if self._running:
                    return
                self._running = True
                asyncio.create_task(work())
                await asyncio.sleep(1)
                self._running = False
            """,
            None,
        ),
    ],
)
def test_single_flight(src: str, expected: tuple[int, int] | None) -> None:
    assert _lines(src, "run") == expected
