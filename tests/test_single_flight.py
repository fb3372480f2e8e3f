"""``single_flight``: a function that turns back while a run of it is in progress."""

from __future__ import annotations

import textwrap

import pytest

from asyncrace.analysis.concurrency import flight_wrapper, single_flight
from asyncrace.analysis.extract import extract
from asyncrace.analysis.facts import K


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


def _flight(src: str) -> tuple[str, int] | None:
    facts = extract(textwrap.dedent(src), "m.py", "m").functions["deco.<locals>.inner"]
    found = flight_wrapper(facts, {"func"})
    if found is None:
        return None
    box, claim = found
    return box, facts.events[claim].pos[0]


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        # joins the running call's future, claims the object before it awaits
        (
            """
            def deco(func):
                running = set()
                futures = {}
                async def inner(self, *args):
                    if self in running:
                        return await futures[self]
                    running.add(self)
                    futures[self] = fut = make_future()
                    try:
                        return await func(self, *args)
                    finally:
                        running.discard(self)
                return inner
            """,
            ("running", 8),
        ),
        # ``not in`` around the call, a dict claimed by item
        (
            """
            def deco(func):
                running = {}
                async def inner(self):
                    if self not in running:
                        running[self] = True
                        await func(self)
                        del running[self]
                return inner
            """,
            ("running", 6),
        ),
        # the claim comes after an await: every concurrent call gets through
        (
            """
            def deco(func):
                running = set()
                async def inner(self):
                    if self in running:
                        return
                    await log()
                    running.add(self)
                    await func(self)
                return inner
            """,
            None,
        ),
        # the branch where it is running goes on into the call
        (
            """
            def deco(func):
                running = set()
                async def inner(self):
                    if self in running:
                        await asyncio.sleep(1)
                    running.add(self)
                    await func(self)
                return inner
            """,
            None,
        ),
        # a container the wrapper binds itself: no other call sees it
        (
            """
            def deco(func):
                async def inner(self):
                    running = set()
                    if self in running:
                        return
                    running.add(self)
                    await func(self)
                return inner
            """,
            None,
        ),
        # keyed by another argument than the receiver
        (
            """
            def deco(func):
                running = set()
                async def inner(self, key):
                    if key in running:
                        return
                    running.add(key)
                    await func(self, key)
                return inner
            """,
            None,
        ),
    ],
)
def test_flight_wrapper(src: str, expected: tuple[str, int] | None) -> None:
    assert _flight(src) == expected


@pytest.mark.parametrize(
    ("test", "guards"),
    [
        # an enum member compared or tested by identity: a value guard, both readings
        (
            "self._state == State.IDLE",
            ("self._state|1|eq|State.IDLE", "self._state|0|ne|State.IDLE"),
        ),
        (
            "self._state is not mod.State.CONNECTED",
            ("self._state|0|eq|mod.State.CONNECTED", "self._state|1|ne|mod.State.CONNECTED"),
        ),
        (
            "self._state == 'connected'",
            ("self._state|1|eq|'connected'", "self._state|0|ne|'connected'"),
        ),
        # a lower-case attribute, or one of an object (not a class), is no member
        ("self._state == State.idle", ()),
        ("self._state is self.IDLE", ()),
        ("self._state is other.IDLE", ()),
    ],
)
def test_value_guard_atoms(test: str, guards: tuple[str, ...]) -> None:
    src = f"async def run(self):\n    if {test}:\n        return\n"
    facts = extract(src, "m.py", "m").functions["run"]
    (branch,) = [e for e in facts.events if e.kind == K.BRANCH]
    assert branch.guards == guards


def test_enum_member_stored_with_its_name() -> None:
    src = "async def run(self):\n    self._state = State.STREAMING\n    self._other = State.x\n"
    facts = extract(src, "m.py", "m").functions["run"]
    writes = [e.value.literal for e in facts.events if e.kind == K.WRITE and e.value is not None]
    assert writes == ["State.STREAMING", ""]
