"""ARC003 guard-before-registration (hermes gateway PR 2086).

A check of shared state (``if key in self._running: return``, ``if self._client is None:``) is
followed, on the path where the check found nothing, by an await before the key or value is
registered. A second task arriving during that await passes the same check, and both go on:
duplicate agents, double connections, a cache filled twice.
"""

from __future__ import annotations

from collections.abc import Iterator

from asyncrace.core.facts import Event, FunctionFacts, K, ModuleFacts
from asyncrace.core.flow import Analysis, Step, fn_step, registration_of, search, short
from asyncrace.core.index import Ctx, Fn
from asyncrace.diagnostic import Diagnostic
from asyncrace.rules.base import line_of, make, module_functions

FIX = (
    "Register a placeholder (a sentinel) right after the check, before the first await, and "
    "remove it in `finally` if the work fails; or hold an asyncio.Lock from the check to the "
    "registration (and re-check inside the lock)."
)


def _guard_atoms(ev: Event) -> list[tuple[str, int, str]]:
    out: list[tuple[str, int, str]] = []
    for g in ev.guards:
        ref, branch, kind = g.split("|")
        out.append((ref, int(branch), kind))
    return out


def _reaches(f: FunctionFacts, start: int, target: int, avoid: int) -> bool:
    seen = {avoid}
    todo = [start]
    while todo:
        i = todo.pop()
        if i == target:
            return True
        if i in seen:
            continue
        seen.add(i)
        todo.extend(f.events[i].succ)
    return False


class GuardBeforeRegistration:
    code = "ARC003"

    def check(self, analysis: Analysis, module: ModuleFacts) -> Iterator[Diagnostic]:
        for fn in module_functions(analysis, module):
            f = fn.facts
            if not f.is_async or f.name in analysis.setup_dunders:
                continue
            ctx = analysis.ctx(fn)
            for b, ev in enumerate(f.events):
                if ev.kind != K.BRANCH or not ev.guards or len(ev.succ) < 2:
                    continue
                for ref, absent, kind in _guard_atoms(ev):
                    d = self._check_guard(analysis, ctx, fn, b, ref, absent, kind)
                    if d is not None:
                        yield d
                        break

    def _check_guard(
        self, analysis: Analysis, ctx: Ctx, fn: Fn, b: int, ref: str, absent: int, kind: str
    ) -> Diagnostic | None:
        f = fn.facts
        guard = f.events[b]
        callee_regs: dict[int, tuple[tuple[Step, ...], bool]] = {}

        def registers(i: int, ev: Event) -> bool:
            reg = registration_of(ev)
            if reg == ref and self._matches(ev, kind):
                return True
            if ev.kind == K.CALL and i not in callee_regs and analysis.same_object_call(ctx, ev):
                for tfn, tctx in analysis.targets(ctx, ev):
                    for r, steps, later in analysis.registrations(Ctx(tfn, tctx.recv)):
                        if r == ref:
                            spawned = ev.bind.name == "ARG" and tfn.facts.is_async
                            label = "spawns" if spawned else "calls"
                            call = fn_step(fn, ev.pos, f"{label} `{short(tfn)}`")
                            callee_regs[i] = ((call, *steps), later)
                            return True
            return i in callee_regs

        def locked_together(ev: Event) -> bool:
            shared = set(guard.regions) & set(ev.regions)
            return any(analysis.region_lock(ctx, r) is not None for r in shared)

        def stop(i: int, ev: Event) -> bool:
            if ev.kind == K.BRANCH and any(a[0] == ref for a in _guard_atoms(ev)):
                return True  # re-checked: the check that matters is the later one
            return registers(i, ev)

        def hit(i: int, ev: Event, aw: int) -> bool:
            if not registers(i, ev):
                return False
            late = aw >= 0 or (i in callee_regs and callee_regs[i][1])
            return late and not locked_together(ev)

        absent_start = guard.succ[absent]
        present_start = guard.succ[1 - absent]
        for i, aw in search(f, [absent_start], stop=stop, hit=hit):
            if _reaches(f, present_start, i, avoid=b) and (
                aw < 0 or _reaches(f, present_start, aw, avoid=b)
            ):
                # registration and await are reached whatever the check said: it guards neither
                continue
            here = fn.module.path
            steps: list[Step] = []
            if aw >= 0:
                aw_ev = f.events[aw]
                steps.append(
                    fn_step(fn, aw_ev.pos, f"{aw_ev.name}: another task can pass the check here")
                )
            if i in callee_regs:
                steps.extend(callee_regs[i][0])
            else:
                steps.append(fn_step(fn, f.events[i].pos, "registered only here"))
            reg_where = line_of(steps[-1], here)
            what = "the key" if kind == "in" else "the value"
            msg = (
                f"`{ref.removeprefix('global:')}` is checked here but {what} is registered only at "
                f"{reg_where}, after an await; a second task can pass the check in between and "
                "run the same work twice"
            )
            return make(self.code, here, guard.pos, msg, steps, FIX)
        return None

    @staticmethod
    def _matches(ev: Event, kind: str) -> bool:
        """Membership checks are answered by putting a key in; ``is None``/truthiness checks by
        assigning the attribute."""
        if kind == "in":
            return ev.kind in (K.SETITEM, K.CALL)
        return ev.kind == K.WRITE
