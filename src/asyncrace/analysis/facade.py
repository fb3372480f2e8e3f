"""``Analysis``: the one object every rule queries.

It holds the index, the lock model, the call-graph summaries
(:class:`~asyncrace.analysis.summaries.Summaries`) and the concurrency model
(:class:`~asyncrace.analysis.concurrency.Concurrency`), and hands out their queries under one
name: a rule asks ``analysis.acquires(ctx)`` or ``analysis.shared_evidence(fn)`` without
knowing which part answers. The queries are the parts' own bound methods, so going through the
facade costs nothing per call.
"""

from __future__ import annotations

from collections.abc import Callable

from asyncrace.analysis.concurrency import Concurrency, Contribution
from asyncrace.analysis.index import Index
from asyncrace.analysis.summaries import Mentions, Summaries
from asyncrace.settings import Settings


class Analysis:
    """The index plus the lock model plus memoized summaries plus the concurrency model: what
    every rule queries."""

    def __init__(
        self,
        index: Index,
        settings: Settings,
        mentions: Callable[[], Mentions] | None = None,
    ) -> None:
        """``mentions`` gives the project's mention index when first needed (an incremental
        run reads it from the snapshot); without it, the index is built from the bodies."""
        self.index = index
        self.settings = settings
        self.tracker = index.tracker
        self.summaries = s = Summaries(index, settings, mentions)
        self.concurrency = c = Concurrency(index, settings, s)
        self.locks = s.locks
        self.lifecycle = c.lifecycle
        self.setup_dunders = c.setup_dunders

        # the call-graph summaries
        self.ctx = s.ctx
        self.ctx_with = s.ctx_with
        self.targets = s.targets
        self.region_lock = s.region_lock
        self.acquires = s.acquires
        self.handoffs = s.handoffs
        self.direct_handoff = s.direct_handoff
        self.reads = s.reads
        self.late_reads = s.late_reads
        self.late_writes = s.late_writes
        self.same_object_call = s.same_object_call
        self.reads_through = s.reads_through
        self.property_getter = s.property_getter
        self.is_contextvar = s.is_contextvar
        self.per_task_attr = s.per_task_attr
        self.registrations = s.registrations
        self.mentions = s.mentions
        self.attr_read_off_others = s.attr_read_off_others
        self.calls_by_name = s.calls_by_name
        self.calls_of = s.calls_of
        self.self_callers = s.self_callers
        self.passed_on = s.passed_on
        self.suspends = s.suspends
        self.suspending = s.suspending
        self.free_lock_entry = s.free_lock_entry
        self.invalidates_on_cancel = s.invalidates_on_cancel
        self.exchange = s.exchange
        self.exchange_at = s.exchange_at
        self.pool_returns = s.pool_returns

        # who may run at the same time
        self.spawn_site = c.spawn_site
        self.spawn_sites = c.spawn_sites
        self.spawner = c.spawner
        self.shared_evidence = c.shared_evidence
        self.single_consumer = c.single_consumer
        self.single_task = c.single_task
        self.per_call_class = c.per_call_class
        self.overridden = c.overridden
        self.concurrent = c.concurrent
        self.kept_verdicts = c.kept_verdicts
        self.keep_verdicts = c.keep_verdicts
        self.api_entry = c.api_entry
        self.called_in_project = c.called_in_project
        self.entry_above = c.entry_above
        self.canceller = c.canceller
        self.canceller_restores = c.canceller_restores
        self.locking_site = c.locking_site

    @property
    def contributions(self) -> dict[str, Contribution]:
        """Each module's contribution to the spawn-site table (``Concurrency.contributions``);
        an incremental run fills in those it need not compute again."""
        return self.concurrency.contributions

    @contributions.setter
    def contributions(self, value: dict[str, Contribution]) -> None:
        self.concurrency.contributions = value

    @property
    def track(self) -> bool:
        """Record the modules each spawn-site contribution reads (a run that keeps a project
        snapshot)."""
        return self.concurrency.track

    @track.setter
    def track(self, value: bool) -> None:
        self.concurrency.track = value


__all__ = ["Analysis"]
