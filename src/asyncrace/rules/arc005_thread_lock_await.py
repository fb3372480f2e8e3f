"""ARC005 thread-lock-held-across-await.

``with self._lock:`` on a non-reentrant thread lock (``threading.Lock``, a semaphore) around an
``await``: while the holder is suspended, the next coroutine that reaches the same ``with``
blocks the event-loop thread on ``acquire()``; the holder can then never resume to release it.
The whole loop hangs. Like Clippy's ``await_holding_lock``, the finding lists every await point
the lock is held through.
"""

from __future__ import annotations

from collections.abc import Iterator

from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import K, ModuleFacts
from asyncrace.analysis.summaries import at, fn_step
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import make, module_functions, shown

FIX = (
    "Use an asyncio.Lock (`async with lock:`) to serialize coroutines, or release the thread "
    "lock before the await (copy what you need under the lock, then await outside it)."
)


class ThreadLockHeldAcrossAwait:
    code = "ARC005"

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        for fn in module_functions(analysis, module):
            f = fn.facts
            if not f.is_async or not f.regions:
                continue
            ctx = analysis.ctx(fn)
            for rid, region in enumerate(f.regions):
                if region.is_async:
                    continue
                lock = analysis.region_lock(ctx, rid)
                if lock is None or lock.kind != "thread" or lock.reentrant is not False:
                    continue
                awaits = [
                    e
                    for e in f.events[region.first : region.last]
                    if e.kind == K.AWAIT and rid in e.regions
                ]
                if not awaits:
                    continue
                steps = [
                    fn_step(fn, at(e), f"{e.name} while `{shown(region.ref)}` is held")
                    for e in awaits
                ]
                n = len(awaits)
                msg = (
                    f"`{shown(region.ref)}` (a non-reentrant {lock.describe}) is held across "
                    f"{n} await point{'s' if n != 1 else ''}; the next coroutine to take it "
                    "blocks the event loop while the holder is suspended: the loop hangs"
                )
                yield make(self.code, fn.module.path, region.pos, msg, steps, FIX)
