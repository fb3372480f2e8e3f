"""The rules, one module each. Every rule queries the shared analysis; none re-parses."""

from __future__ import annotations

from asyncrace.rules.arc001_state_clobbered import StateClobberedAcrossAwait
from asyncrace.rules.arc002_context_token import ContextTokenCrossesHandler
from asyncrace.rules.arc003_guard_registration import GuardBeforeRegistration
from asyncrace.rules.arc004_executor_under_lock import ExecutorUnderLock
from asyncrace.rules.arc005_thread_lock_await import ThreadLockHeldAcrossAwait
from asyncrace.rules.arc006_cancel_state import StateBrokenByCancellation
from asyncrace.rules.base import Rule


def all_rules() -> list[Rule]:
    """Fresh instances (rules may memoize per run)."""
    return [
        StateClobberedAcrossAwait(),
        ContextTokenCrossesHandler(),
        GuardBeforeRegistration(),
        ExecutorUnderLock(),
        ThreadLockHeldAcrossAwait(),
        StateBrokenByCancellation(),
    ]


__all__ = ["Rule", "all_rules"]
