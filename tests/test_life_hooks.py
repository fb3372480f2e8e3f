"""Registrations that run a callback once (start-up, shutdown, an exit stack's close) are no
evidence that it runs for concurrent events (``Concurrency`` callback sites)."""

from __future__ import annotations

import pytest

from asyncrace.analysis.concurrency import _life_hook
from asyncrace.analysis.facts import Event, K

POS = (1, 0, 1, 10)


@pytest.mark.parametrize(
    ("ref", "arg", "once"),
    [
        # an AsyncExitStack runs what it is given once, when it closes (pymobiledevice3's
        # ``stack.push_async_callback(rsd.close)``, a false positive of held-out set 14)
        ("stack.push_async_callback", "rsd.close", True),
        ("self._stack.push_async_exit", "self.conn.close", True),
        ("exit_stack.callback", "self.close", True),
        ("stack.push", "self.close", True),
        ("app.on_startup.append", "self.start", True),
        ("app", "on_shutdown=self.stop", True),
        # a framework that calls it per event
        ("bus.subscribe", "self.on_message", False),
        ("signal.connect", "self.close", False),
        ("queue.push", "self.close", False),
    ],
)
def test_life_hook(ref: str, arg: str, once: bool) -> None:
    call = Event(K.CALL, POS, ref=ref, args=(arg,))
    assert _life_hook(call, arg) is once
