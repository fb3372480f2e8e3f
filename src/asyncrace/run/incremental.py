"""Incremental runs: a run with a few files changed since the previous run of the same files
checks again only the modules whose previous check read something the changes touched
(``docs/architecture.md``, "Incremental runs").

It starts from the project snapshot (:mod:`asyncrace.run.snapshot`) and applies only while
every changed file keeps its interface (its header without positions, what its bodies mention
by name, the attribute types of its classes): then the index over the headers links as before,
and whatever another module's check learnt from a changed module it learnt through a read
that was recorded. It then

1. links the headers of every module (the changed ones with their new facts); the other
   modules' bodies are decoded from the extraction cache only when a check reads them;
2. computes again the spawn-site contributions that read a changed module, and notes the
   methods whose spawn site changed;
3. checks again every module whose recorded reads meet a changed module or such a method,
   recording their reads anew, and keeps every other file's findings from the snapshot.

Anything else (no snapshot, a changed interface, a file that gained or lost its facts, more
than :data:`MAX_CHANGED` changed files) is answered ``None``: the caller runs in full, and
writes a new snapshot.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from asyncrace import suppress
from asyncrace.analysis.concurrency import (
    ASYNC_KEY,
    NO_CALLERS_KEY,
    NO_STORED_KEY,
    SPAWN_KEY,
    merge_sites,
)
from asyncrace.analysis.facade import Analysis
from asyncrace.analysis.facts import ModuleFacts
from asyncrace.analysis.index import (
    ATTR_KEY,
    ATTR_TYPES_KEY,
    GLOBAL_VAR_KEY,
    GLOBALS_KEY,
    METHOD_KEY,
    NAME_KEY,
    SUB_KEY,
    Index,
)
from asyncrace.analysis.summaries import (
    ARG_KEY,
    CALL_KEY,
    READ_ATTR_KEY,
    RELEASES_KEY,
    Mentions,
    ModuleMentions,
    Step,
)
from asyncrace.diagnostic import Diagnostic, sort_diagnostics
from asyncrace.rules import all_rules
from asyncrace.run import snapshot
from asyncrace.run.cache import Cache, Invalid, entry_name
from asyncrace.run.jobs import FileJob, Stale
from asyncrace.run.link import check_modules, module_attr_types
from asyncrace.settings import Settings

if TYPE_CHECKING:
    from asyncrace.run.pipeline import FactsMemory

log = logging.getLogger("asyncrace.incremental")

# more changed files than this (a branch switch, a rebase): a full run is as fast
MAX_CHANGED = 64


@dataclasses.dataclass
class Result:
    reported: list[Diagnostic]
    suppressed: list[Diagnostic]


def check(
    jobs: Sequence[FileJob],
    known: dict[str, tuple[str, int]],
    settings: Settings,
    cache_dir: Path,
    key: str,
    jobs_n: int,
    *,
    snap: snapshot.Snapshot | None = None,
    memory: FactsMemory | None = None,
) -> tuple[Result, list[snapshot.Record], bytes] | None:
    """The findings of ``jobs`` from the snapshot ``key`` and what changed since, with the
    snapshot to store for the next run (records, mention index); None when a full run is
    needed. ``snap``: the snapshot ``key`` as a long-lived process kept it (else it is read
    from ``cache_dir``); ``memory``: the facts it keeps (in front of the extraction cache)."""
    try:
        if snap is None:
            snap = snapshot.load(cache_dir, key)
        if snap is None or [r.display for r in snap.records] != [j.display for j in jobs]:
            raise Full("no snapshot of these files with these settings")
        records = snap.records
        if any(j.display not in known for j in jobs):
            raise Full("a file could not be read")
        changed = [i for i, j in enumerate(jobs) if known[j.display][0] != records[i].digest]
        if not changed:
            return _combine(records), records, snap.mentions_raw
        if len(changed) > MAX_CHANGED:
            raise Full(f"{len(changed)} files changed")
        return _check(jobs, known, settings, cache_dir, snap, changed, jobs_n, memory)
    except (Full, Stale, Invalid) as exc:
        log.info("asyncrace: full run: %s", exc)
        return None


class Full(Exception):
    """Why a run cannot be an incremental one."""


def _combine(records: Sequence[snapshot.Record]) -> Result:
    reported = [d for r in records for d in r.reported]
    suppressed = [d for r in records for d in r.suppressed]
    return Result(sort_diagnostics(reported), sort_diagnostics(suppressed))


def _check(
    jobs: Sequence[FileJob],
    known: dict[str, tuple[str, int]],
    settings: Settings,
    cache_dir: Path,
    snap: snapshot.Snapshot,
    changed: list[int],
    jobs_n: int,
    memory: FactsMemory | None = None,
) -> tuple[Result, list[snapshot.Record], bytes]:
    from asyncrace.run.pipeline import FileOutcome, extract_all

    records = snap.records
    outs = extract_all(
        [jobs[i] for i in changed],
        settings,
        jobs_n=jobs_n,
        cache_dir=cache_dir,
        known=known,
        memory=memory,
    )
    fresh: dict[str, tuple[ModuleFacts, FileOutcome]] = {}  # module -> new facts
    for i, out in zip(changed, outs, strict=True):
        rec = records[i]
        if out.facts is None or rec.module is None:
            raise Full(f"{rec.display} has facts now and had none, or the other way round")
        if not out.cacheable:
            raise Full(f"{rec.display} changed during the run")
        m = out.facts
        if m.module != rec.module:  # a renamed duplicate (``name#2``)
            m = dataclasses.replace(m, module=rec.module)
        fresh[rec.module] = (m, out)

    by_module = {r.module: (i, r) for i, r in enumerate(records) if r.module is not None}
    headers: list[ModuleFacts] = []
    preset: dict[str, dict[str, str]] = {}
    for r in records:
        if r.module is None:
            continue
        if r.module in fresh:
            headers.append(fresh[r.module][0])
        else:
            headers.append(r.header_facts())
            preset.update(r.attr_types)
            # a class without inferred attribute types is linked with none
            for q in headers[-1].classes:
                preset.setdefault(f"{r.module}.{q}", {})

    cache = Cache.open(cache_dir)
    entries: dict[str, FileOutcome] = {mod: out for mod, (_m, out) in fresh.items()}

    def load(m: ModuleFacts) -> None:
        """Fill in the bodies of an unchanged module from the extraction cache."""
        job = jobs[by_module[m.module][0]]
        digest, size = known[job.display]
        mkey = (job.display, job.module, job.is_package, digest)
        entry = memory.get(mkey) if memory is not None else None
        if entry is None and cache is not None:
            name = entry_name(job.path, os.path.abspath(settings.project_root))
            hit = cache.get_as(name, job.module, job.is_package, digest, size, job.display)
            if hit is not None and hit.facts is not None:
                entry = FileOutcome(job.display, hit.facts, hit.meta, hit.noqa)
        if entry is None:  # evicted: extract it again
            entry = extract_all([job], settings, cache_dir=cache_dir, known=known)[0]
        if memory is not None:
            memory.put(mkey, entry)
        if entry.facts is None:
            raise Stale(f"{job.display}: the snapshot does not match the cache")
        try:
            snapshot.fill(m, entry.facts)
        except Invalid as exc:
            raise Stale(f"{job.display}: {exc}") from exc
        entries[m.module] = entry

    index = Index(headers, attr_types=preset, load=load)
    index.unloaded = {r.module for r in records if r.module is not None} - set(fresh)
    touched: set[str] = set(fresh)
    attr_types: dict[str, dict[str, dict[str, str]]] = {}  # of the changed modules' classes
    for mod, (m, _out) in fresh.items():
        rec = by_module[mod][1]
        attr_types[mod] = now_types = module_attr_types(index, m)
        now = snapshot.interface(m, rec.attr_types)
        added: set[str] = set()  # classes added
        if now.digest() != rec.interface:
            added = _grown(mod, m, rec, now, index, touched)
        # attribute types inferred anew (``self.x = Client()`` added to a constructor): the
        # reads of those attributes' types, and the scans of every class's
        for fq in now_types.keys() | rec.attr_types.keys():
            was, now_t = rec.attr_types.get(fq, {}), now_types.get(fq, {})
            if fq in added or was == now_t:
                continue
            touched.add(ATTR_TYPES_KEY)
            touched.update(
                f"{ATTR_KEY}{fq}.{a}"
                for a in was.keys() | now_t.keys()
                if was.get(a) != now_t.get(a)
            )
    # the classes of unchanged modules were linked (bases, attribute types) as before: unless
    # what they found missing now exists
    for r in records:
        if r.module is not None and r.module not in fresh and not r.link_reads.isdisjoint(touched):
            raise Full(f"the classes of {r.display} link otherwise now (a name added elsewhere)")

    # what the changed modules' bodies mention by name: the lookups by a name that a module
    # now mentions, or no longer does, are read again; the mention index is patched
    remention: dict[str, tuple[ModuleMentions, ModuleMentions]] = {}
    for mod, (m, _out) in fresh.items():
        old = by_module[mod][1].mentions
        new = ModuleMentions.of(m)
        if old is None:
            raise Full(f"no mentions of {m.path} in the snapshot")
        if new != old:
            remention[mod] = (old, new)
            touched.update(CALL_KEY + n for n in set(old.calls) ^ set(new.calls))
            touched.update(ARG_KEY + n for n in set(old.args) ^ set(new.args))
            touched.update(READ_ATTR_KEY + n for n in set(old.attrs) ^ set(new.attrs))
            if old.releases != new.releases:
                touched.add(RELEASES_KEY)
    patched: list[Mentions] = []

    def mentions() -> Mentions:
        if not patched:
            try:
                index_ = snap.mentions()
            except Invalid as exc:
                raise Stale(str(exc)) from exc
            for mod, (old, new) in remention.items():
                index_.patch(mod, old, new)
            patched.append(index_)
        return patched[0]

    analysis = Analysis(index, settings, mentions)
    analysis.track = True
    # a changed module where a search found no caller of a function (or none that hands it on
    # to be called later): read again only if it has one now (``NO_CALLERS_KEY``)
    unsure: set[str] = set()
    for r in records:
        for deps in (r.deps, r.contribution_deps, *(v[3] for v in r.verdicts)):
            unsure.update(
                d
                for d in deps
                if d.startswith((NO_CALLERS_KEY, NO_STORED_KEY))
                and d.rpartition("\x00")[2] in fresh
            )
    touched.update(k for k in sorted(unsure) if not analysis.concurrency.still_no_callers(k))
    # spawn-site contributions: those that read no changed module are kept
    has_table = all(rec.contribution is not None for _i, rec in by_module.values())
    old_sites: dict[str, Step] = {}
    if has_table:
        for r in records:
            if r.module is None or r.contribution is None:
                continue
            if r.module not in touched and not (r.contribution_deps & touched):
                analysis.contributions[r.module] = (r.contribution, set(r.contribution_deps))
        old_sites = merge_sites(r.contribution for r in records if r.contribution is not None)
        new_sites = analysis.spawn_sites()
        for fq in old_sites.keys() | new_sites.keys():
            if old_sites.get(fq) != new_sites.get(fq):
                touched.add(SPAWN_KEY + fq)
    # the concurrency model's verdicts that read nothing changed are answered as before (once
    # the spawn-site table is compared: a site that moved changes the steps of a verdict)
    analysis.keep_verdicts(
        (fq, scope, v, set(deps))
        for r in records
        if r.module is not None and r.module not in touched
        for fq, scope, v, deps in r.verdicts
        if not (deps & touched)
    )
    dirty = [
        r
        for r in records
        if r.module is not None and (r.module in fresh or not r.deps.isdisjoint(touched))
    ]
    rules = [r for r in all_rules() if r.code in settings.enabled]
    modules = [index.modules[r.module] for r in dirty if r.module is not None]
    modules.sort(key=lambda m: m.path)
    found, reads = check_modules(analysis, rules, modules, True)
    for m in modules:  # a module without functions was never loaded
        if m.module not in entries:
            load(m)
    log.info(
        "asyncrace: incremental: %d changed, %d checked again, %d unchanged modules' bodies read",
        len(fresh),
        len(dirty),
        len(entries) - len(fresh),
    )
    new_records = list(records)
    by_path: dict[str, list[Diagnostic]] = {}
    for d in found:
        by_path.setdefault(d.path, []).append(d)
    report_unused = "ARC100" in settings.enabled
    for m in modules:
        i, rec = by_module[m.module]
        out = entries[m.module]
        diags = [d for d in [*out.meta, *by_path.pop(m.path, [])] if d.code in settings.enabled]
        res = suppress.apply(diags, {m.path: out.noqa}, settings, report_unused=report_unused)
        if m.module in fresh:
            made = snapshot.make_record(
                rec.display,
                known[rec.display][0],
                m,
                attr_types=attr_types[m.module],
                mentions=remention[m.module][1] if m.module in remention else rec.mentions,
                link_reads=frozenset(index.link_reads.get(m.module, ())),
            )
        else:
            made = dataclasses.replace(rec, raw=b"")
        made.deps = frozenset(reads.get(m.module, ()))
        made.reported = list(res.reported)
        made.suppressed = list(res.suppressed)
        new_records[i] = made
    if by_path:  # a finding about a file that was not checked: not expected
        raise Full(f"a finding about {min(by_path)}, which was not checked")
    for mod, contribution in analysis.contributions.items():
        i, rec = by_module[mod]
        if new_records[i].contribution is not contribution[0]:
            new_records[i] = dataclasses.replace(
                new_records[i],
                contribution=contribution[0],
                contribution_deps=frozenset(contribution[1]),
                raw=b"",
            )
    # every record keeps the verdicts valid now (those kept, and those computed in this run)
    verdicts = analysis.kept_verdicts()
    for mod, (i, _rec) in by_module.items():
        now_v = [(fq, sc, v, frozenset(d)) for fq, sc, v, d in verdicts.get(mod, ())]
        if new_records[i].verdicts != now_v:
            new_records[i] = dataclasses.replace(new_records[i], verdicts=now_v, raw=b"")
    raw = snapshot.encode_mentions(mentions(), new_records) if remention else snap.mentions_raw
    return _combine(new_records), new_records, raw


def _grown(
    mod: str,
    m: ModuleFacts,
    rec: snapshot.Record,
    now: snapshot.Interface,
    index: Index,
    touched: set[str],
) -> set[str]:
    """Mark what the changed module's interface gained (functions, methods, imports, classes:
    the reads that found no such name, the subclasses of the new classes' bases); the classes
    added. A change of any other kind is a full run."""
    # functions, methods and imports added, nothing else: the reads that found no such name
    grew = snapshot.growth(snapshot.interface(rec.header_facts(), rec.attr_types), now)
    if grew is None:
        raise Full(f"the interface of {m.path} changed (names, imports, classes)")
    for qualname, name, cls, parent, is_async in grew.functions:
        if "<lambda>" not in qualname:
            touched.add(f"{NAME_KEY}{mod}.{qualname}")
        if cls is not None and parent is None:  # structural dispatch on protocols
            touched.add(METHOD_KEY + name)
        if is_async and parent is None:
            touched.add(ASYNC_KEY + name)
    # ``mod.name`` now follows the import (a re-export): who found nothing there before
    touched.update(f"{NAME_KEY}{mod}.{name}" for name in grew.imports)
    if grew.variables:  # (passed refs: the mentions mark their names)
        touched.add(GLOBALS_KEY)
        old_m = rec.header_facts()
        for name in (set(old_m.global_vars) ^ set(m.global_vars)) | {
            k
            for k in old_m.global_types.keys() | m.global_types.keys()
            if old_m.global_types.get(k) != m.global_types.get(k)
        }:
            touched.add(f"{GLOBAL_VAR_KEY}{mod}.{name}")
    for q in grew.classes:  # who found no such class, its bases' subclasses, attr types
        ci = index.classes[f"{mod}.{q}"]
        touched.add(f"{NAME_KEY}{ci.fq}")
        touched.update(SUB_KEY + b for b in ci.bases)
        if ci.attr_types:
            touched.add(ATTR_TYPES_KEY)
    return {f"{mod}.{q}" for q in grew.classes}
