"""The pipeline: discover -> extract (per file, parallel, cached) -> link -> rules -> suppress.

The CLI, the LSP server and the flake8 plugin all call :func:`check`. Discovery happens in the
caller (it owns the paths the user typed); everything after it happens here.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from asyncrace.diagnostic import Diagnostic, sort_diagnostics
from asyncrace.run import runcache
from asyncrace.run.jobs import FileJob
from asyncrace.settings import Settings
from asyncrace.sources import SourceStore, read_source_bytes

if TYPE_CHECKING:
    # imported only when a run needs them (a run answered by the run cache needs none of
    # them): the analysis and the rules, the pipeline (and multiprocessing), the snapshot
    from asyncrace import suppress
    from asyncrace.analysis.facade import Analysis
    from asyncrace.analysis.facts import ModuleFacts
    from asyncrace.run import snapshot
    from asyncrace.run.pipeline import FactsMemory


# What a run built (facts, index, summaries), kept alive when the process is about to end
# anyway (:func:`retain_until_exit`): freeing a million small objects one by one costs more
# than half a second that nobody needs.
_RETAINED: list[object] = []
_RETAIN = False


def retain_until_exit() -> None:
    """Keep what the following runs build instead of freeing it after each run. Only for a
    process that ends right after (the command line, which then exits without tearing the
    interpreter down); a long-lived process (the language server) must not call it."""
    global _RETAIN
    _RETAIN = True


class ProjectState:
    """What a long-lived process (``asyncrace check --watch``) keeps between the runs of one
    project, so that a run after an edit does the work of the edit only:

    * each file's digest, with the ``stat`` it was taken at: a file is read and hashed again
      only when a file event named it (:meth:`touch`) or its size or modification time
      changed (an event missed);
    * the project snapshot of the last run, decoded (:mod:`asyncrace.run.snapshot`): the next
      incremental run starts from it instead of reading and decoding it from the cache
      directory (it is still written there, for the runs of other processes).

    The facts themselves are kept by the pipeline's ``FactsMemory``. Not thread-safe: one run
    at a time."""

    def __init__(self) -> None:
        # path -> digest, size, modification time, inode, whether the bytes mention noqa
        self.digests: dict[str, tuple[str, int, int, int, bool]] = {}
        self.snapshot: tuple[str, snapshot.Snapshot] | None = None  # (snapshot key, snapshot)
        self.hashed = 0  # files read and hashed by the last run (for tests and benchmarks)

    def touch(self, paths: Iterable[str]) -> None:
        """Files that file events named: read and hash them again."""
        for p in paths:
            self.digests.pop(os.path.abspath(p), None)


@dataclass(frozen=True)
class StdinInput:
    """Source text given directly (``-`` with ``--stdin-filename``, or an editor buffer)."""

    filename: str  # the path the text stands for (used for display, config and module name)
    text: str


@dataclass
class CheckResult:
    diagnostics: list[Diagnostic]  # what is reported, sorted; meta diagnostics included
    suppressed: list[Diagnostic]  # silenced by noqa or per-file-ignores, sorted
    files: int  # files analyzed
    sources: SourceStore = field(default_factory=SourceStore)
    # the files (display paths) whose bytes mention ``noqa`` (in lowercase), when asked for
    # and the run read every file's bytes anyway (for the run cache's key); None: not known
    noqa_files: frozenset[str] | None = None

    @property
    def has_internal_error(self) -> bool:
        return any(d.code == "ARC902" for d in self.diagnostics)

    @property
    def complete(self) -> bool:
        """No check failed or stopped at its time limit (ARC902, ARC903): the outcome
        depends on the bytes alone and may answer a later run."""
        return not any(d.code in ("ARC902", "ARC903") for d in self.diagnostics)


def display_path(path: Path | str) -> str:
    """Relative to the working directory when below it, POSIX separators (as ruff prints).
    Remembered for the working directory of the call (a long-lived process asks again for
    the same files at every analysis)."""
    key = (str(path), os.getcwd())
    held = _DISPLAY.get(key)
    if held is None:
        if len(_DISPLAY) > 200_000:
            _DISPLAY.clear()
        held = _DISPLAY[key] = _display_path(path)
    return held


_DISPLAY: dict[tuple[str, str], str] = {}


def _display_path(path: Path | str) -> str:
    p = os.path.abspath(path)
    try:
        rel = os.path.relpath(p)
    except ValueError:  # another drive on Windows
        return Path(p).as_posix()
    if rel.startswith(".."):
        return Path(p).as_posix()
    return rel if os.sep == "/" else Path(rel).as_posix()


def module_name(path: Path | str, packages: dict[str, list[str]] | None = None) -> tuple[str, bool]:
    """Dotted module name from the file's place among packages (``__init__.py`` files).
    ``packages`` remembers, for one run, what each directory was found to be (files of one
    directory share its answer instead of asking the file system again)."""
    p = os.path.abspath(path)
    d, name = os.path.split(p)
    is_package = name == "__init__.py"
    parts: list[str] = [] if is_package else [os.path.splitext(name)[0]]
    parts.extend(_package_parts(d, packages))
    if not parts:  # a bare __init__.py outside any package
        parts = [os.path.basename(d) or "__init__"]
    return ".".join(reversed(parts)), is_package


def _package_parts(d: str, packages: dict[str, list[str]] | None) -> list[str]:
    """The names of the packages ``d`` is in, innermost first (``d`` itself if it is one)."""
    if packages is not None and d in packages:
        return packages[d]
    parent = os.path.dirname(d)
    out: list[str] = []
    if parent != d and os.path.isfile(os.path.join(d, "__init__.py")):
        out = [os.path.basename(d), *_package_parts(parent, packages)]
    if packages is not None:
        packages[d] = out
    return out


def link_and_check(
    facts: list[ModuleFacts],
    settings: Settings,
    *,
    track: bool = False,
    only: Collection[str] | None = None,
    jobs: int = 1,
) -> tuple[list[Diagnostic], Analysis, dict[str, set[str]]]:
    """:func:`asyncrace.run.link.link_and_check`, imported when a run first needs it."""
    from asyncrace.run import link

    return link.link_and_check(facts, settings, track=track, only=only, jobs=jobs)


def check(
    paths: Sequence[Path],
    settings: Settings,
    *,
    stdin: StdinInput | None = None,
    jobs: int | None = None,
    cache_dir: Path | None = None,
    progress: Callable[[int], None] | None = None,
    memory: FactsMemory | None = None,
    collect_noqa: bool = False,
    state: ProjectState | None = None,
    only: Collection[str] | None = None,
) -> CheckResult:
    """Analyze the Python files ``paths`` (already discovered) and, if given, one text from
    stdin, all as one project (cross-module facts link across them). ``cache_dir=None``
    disables the cache. ``memory`` keeps the files' facts between the calls of a long-lived
    process (the language server), in front of the cache. ``collect_noqa``: note in
    ``CheckResult.noqa_files`` which files mention ``noqa`` (when their bytes are read for the
    run cache's key anyway). ``state`` keeps the digests and the project snapshot between
    the calls of a long-lived process (:class:`ProjectState`). ``only``: the display paths
    whose findings are wanted (an editor's document): every file is linked, as context, but
    the rules check only those modules, and the result (incomplete) is not cached."""
    sources = SourceStore()
    jobs_list: list[FileJob] = []
    packages: dict[str, list[str]] = {}  # directory -> the packages it is in (module_name)
    for p in paths:
        display = display_path(p)
        mod, pkg = module_name(p, packages)
        jobs_list.append(FileJob(str(p), display, mod, pkg))
        sources.add_path(display, Path(p))
    if stdin is not None:
        display = display_path(stdin.filename) if stdin.filename else "-"
        mod, pkg = module_name(stdin.filename) if stdin.filename else ("stdin", False)
        jobs_list = [j for j in jobs_list if j.display != display]
        jobs_list.append(FileJob("", display, mod, pkg, stdin.text))
        sources.add_text(display, stdin.text)

    # one job per display path, in a fixed order: the results must not depend on the order
    # (or repetition) of ``paths``, e.g. which of two same-named modules is renamed ``#2``
    jobs_list = sorted(
        {j.display: j for j in reversed(jobs_list)}.values(), key=lambda j: j.display
    )
    noqa_seen: set[str] | None = set() if collect_noqa else None
    key, known = (
        _run_key(jobs_list, settings, noqa_seen, state) if cache_dir is not None else (None, {})
    )
    if only is not None:
        key = None  # (a partial result answers no later run, and no snapshot is made of it)
    noqa_files = frozenset(noqa_seen) if key is not None and noqa_seen is not None else None
    if key is not None and cache_dir is not None:
        hit = runcache.load(cache_dir, key)
        if hit is not None:  # nothing that decides the findings changed since that run
            reported, silenced, n = hit
            if progress is not None:
                progress(len(jobs_list))
            return CheckResult(reported, silenced, n, sources, noqa_files)
    from asyncrace import suppress

    # the project snapshot (``run/snapshot.py``): a run with few files changed since the
    # previous run of the same files checks again only what the changes can affect
    snap_key: str | None = None
    if key is not None and cache_dir is not None and stdin is None:
        from asyncrace.run import incremental, snapshot

        snap_key = snapshot.project_key(
            [(j.display, j.module, j.is_package) for j in jobs_list], settings
        )
        held = state.snapshot if state is not None else None
        done = incremental.check(
            jobs_list,
            known,
            settings,
            cache_dir,
            snap_key,
            jobs or 1,
            snap=held[1] if held is not None and held[0] == snap_key else None,
            memory=memory,
        )
        if state is not None:
            state.snapshot = None  # (a failed run keeps none: the next one reads the disk)
        if done is not None:
            since, kept, mentions_raw = done
            if progress is not None:
                progress(len(jobs_list))
            checked = CheckResult(
                since.reported, since.suppressed, len(jobs_list), sources, noqa_files
            )
            if checked.complete:
                runcache.store(
                    cache_dir, key, checked.diagnostics, checked.suppressed, checked.files
                )
                if any(not r.raw for r in kept):  # else it is the snapshot as it was read
                    snapshot.store(cache_dir, snap_key, kept, mentions_raw)
                if state is not None:
                    state.snapshot = (snap_key, snapshot.Snapshot(kept, mentions_raw))
            return checked

    from asyncrace.run.pipeline import extract_all, gc_paused

    outcomes = extract_all(
        jobs_list,
        settings,
        jobs_n=jobs or 1,
        cache_dir=cache_dir,
        progress=progress,
        known=known,
        memory=memory,
    )
    # an outcome that depends on more than the bytes hashed for the key (a file that changed
    # during the run, an internal error) must not answer a later run
    storable = all(out.cacheable for out in outcomes)

    diagnostics: list[Diagnostic] = []
    noqa: dict[str, suppress.NoqaMap] = {}
    facts: list[ModuleFacts] = []
    linked: dict[str, ModuleFacts] = {}  # display path -> its facts, as linked
    used_names: set[str] = set()
    for out in outcomes:
        diagnostics.extend(out.meta)
        if out.noqa:
            noqa[out.display] = out.noqa
        if out.facts is not None:
            m = out.facts
            if m.module in used_names:  # two top-level modules with one name: keep both
                n = 2
                while f"{m.module}#{n}" in used_names:
                    n += 1
                # a copy: the outcome may be shared with other runs (``memory``)
                m = dataclasses.replace(m, module=f"{m.module}#{n}")
            used_names.add(m.module)
            facts.append(m)
            linked[out.display] = m

    if _RETAIN:
        _RETAINED.append(outcomes)
    with gc_paused():  # linking and rules allocate much and free nothing cyclic
        if only is None:
            found, analysis, reads = link_and_check(
                facts, settings, track=snap_key is not None, jobs=jobs or 1
            )
        else:
            found, analysis, reads = link_and_check(facts, settings, only=only)
            diagnostics = [d for d in diagnostics if d.path in only]
            noqa = {path: nm for path, nm in noqa.items() if path in only}
        if _RETAIN:
            _RETAINED.append(analysis)  # and through it the index and every memoized summary
        diagnostics.extend(found)
    diagnostics = [d for d in diagnostics if d.code in settings.enabled]
    result = suppress.apply(diagnostics, noqa, settings, report_unused="ARC100" in settings.enabled)
    checked = CheckResult(
        diagnostics=sort_diagnostics(result.reported),
        suppressed=sort_diagnostics(result.suppressed),
        files=len(jobs_list),
        sources=sources,
        noqa_files=noqa_files,
    )
    if key is not None and cache_dir is not None and storable and checked.complete:
        runcache.store(cache_dir, key, checked.diagnostics, checked.suppressed, checked.files)
        if snap_key is not None:
            made = snapshot_records(jobs_list, known, linked, analysis, reads, checked)
            if made is not None:
                from asyncrace.run import snapshot

                raw = snapshot.encode_mentions(analysis.mentions(), made)
                snapshot.store(cache_dir, snap_key, made, raw)
                if state is not None:
                    state.snapshot = (snap_key, snapshot.Snapshot(made, raw))
    if not _RETAIN:
        # gc_paused froze everything alive, the caller's own objects too: hand them back to
        # the collector (the facts themselves are freed by reference counting on return)
        import gc

        gc.unfreeze()
    return checked


def _run_key(
    jobs: Sequence[FileJob],
    settings: Settings,
    noqa: set[str] | None = None,
    state: ProjectState | None = None,
) -> tuple[str | None, dict[str, tuple[str, int]]]:
    """The run cache key: every file's bytes hashed (reading them is cheap next to parsing),
    and each file's (digest, size) by display path, so that extraction looks its cache up
    without reading and hashing every file again. The key is None when a file cannot be read
    (that run reports it, and is not cached). ``noqa`` collects the files whose bytes mention
    ``noqa`` (the command line warns about malformed ones without reading every file again).
    With a ``state``, a file whose digest it holds and whose ``stat`` did not change is not
    read again."""
    if state is not None:
        state.hashed = 0
    files: list[tuple[str, str, bool, str]] = []
    known: dict[str, tuple[str, int]] = {}
    stdin_digest = ""
    for j in jobs:
        if j.text is not None:
            stdin_digest = runcache.digest_bytes(
                f"{j.display}\0{j.text}".encode(errors="surrogateescape")
            )
            continue
        if state is not None:
            try:
                st = os.stat(j.path)
            except OSError:
                return None, {}
            held = state.digests.get(j.path)
            if held is not None and held[1:4] == (st.st_size, st.st_mtime_ns, st.st_ino):
                known[j.display] = (held[0], held[1])
                files.append((j.display, j.module, j.is_package, held[0]))
                if noqa is not None and held[4]:
                    noqa.add(j.display)
                continue
        try:
            data = read_source_bytes(j.path)  # never blocks (FIFO, device)
        except OSError:
            return None, {}
        digest = runcache.digest_bytes(data)
        known[j.display] = (digest, len(data))
        if noqa is not None and b"noqa" in data:  # one search in C: 40 ms on 80 MB
            noqa.add(j.display)
        files.append((j.display, j.module, j.is_package, digest))
        if state is not None:  # with the stat taken before reading: a later write shows
            state.hashed += 1
            state.digests[j.path] = (
                digest,
                len(data),
                st.st_mtime_ns,
                st.st_ino,
                b"noqa" in data,
            )
    return runcache.run_key(files, stdin_digest, settings), known


def snapshot_records(
    jobs: Sequence[FileJob],
    known: dict[str, tuple[str, int]],
    linked: dict[str, ModuleFacts],
    analysis: Analysis,
    reads: dict[str, set[str]],
    checked: CheckResult,
) -> list[snapshot.Record] | None:
    """The project snapshot of a full run (None when some finding is about no file of it)."""
    from asyncrace.run import snapshot
    from asyncrace.run.link import module_attr_types

    per_file: dict[str, tuple[list[Diagnostic], list[Diagnostic]]] = {
        j.display: ([], []) for j in jobs
    }
    for d in checked.diagnostics:
        if d.path not in per_file:
            return None
        per_file[d.path][0].append(d)
    for d in checked.suppressed:
        if d.path not in per_file:
            return None
        per_file[d.path][1].append(d)
    mentions = analysis.mentions().per_module
    verdicts = analysis.kept_verdicts()
    records: list[snapshot.Record] = []
    for j in jobs:
        m = linked.get(j.display)
        reported, suppressed = per_file[j.display]
        if j.display not in known:
            return None
        digest = known[j.display][0]
        if m is None:
            records.append(
                snapshot.make_record(
                    j.display, digest, None, reported=reported, suppressed=suppressed
                )
            )
            continue
        records.append(
            snapshot.make_record(
                j.display,
                digest,
                m,
                mentions=mentions.get(m.module),
                attr_types=module_attr_types(analysis.index, m),
                deps=frozenset(reads.get(m.module, ())),
                contribution=analysis.contributions.get(m.module),
                verdicts=verdicts.get(m.module),
                link_reads=frozenset(analysis.index.link_reads.get(m.module, ())),
                reported=reported,
                suppressed=suppressed,
            )
        )
    return records


__all__ = [
    "CheckResult",
    "StdinInput",
    "check",
    "display_path",
    "module_name",
    "retain_until_exit",
]
