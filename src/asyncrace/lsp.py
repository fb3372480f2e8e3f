"""The language server (``asyncrace server``): asyncrace's findings as editor diagnostics, over
LSP on stdin/stdout, with pygls 2 (the ``lsp`` extra: ``pip install 'asyncrace[lsp]'``).

What it does:

* On ``didOpen``, ``didChange`` (debounced by :data:`DEBOUNCE` seconds) and ``didSave`` of a
  Python document it analyzes the document's **text** (unsaved edits included) as the file it
  is, together with its **context** from disk (:func:`context_files`: the files of its
  top-level package, else its sibling modules), and publishes the document's findings. On
  save, the other open documents are analyzed again too (their context changed). On
  ``didClose`` their diagnostics are cleared.
* What a keystroke costs is the document's: the context is walked once (:class:`Contexts`)
  and kept up to date by the operating system's file events (``watchfiles``, on a thread of
  its own); the other files' facts stay in memory, and are not read or hashed again unless an
  event names them or their ``stat`` changed (``engine.ProjectState``); the rules check the
  document's module only (the others are linked as context: a module's findings do not depend
  on which others are checked). A file changed on disk by another program analyzes the open
  documents again.
* Settings come from the configuration that applies to the document's path (``asyncrace.toml``
  or ``[tool.asyncrace]`` of ``pyproject.toml``, searched upwards), read on every analysis, so
  an edit of the configuration applies at the next keystroke. A document excluded by
  ``exclude``/``extend-exclude`` gets no diagnostics. A configuration error is shown once as
  an error message (``window/showMessage``).
* Each diagnostic has ``code`` (``ARC001``), ``codeDescription.href`` (the rule's page),
  ``source`` ``asyncrace``, severity Warning (Error for the meta codes ARC900-ARC903: the file
  was not checked), the range of the primary span and one ``relatedInformation`` item per
  step of the hazard (the await, the read, the lock...), possibly in another file. Clients
  that do not support related information get the steps appended to the message.
* Positions: asyncrace counts 1-based characters (code points); LSP counts 0-based code units
  of the negotiated position encoding, UTF-16 unless the client offers UTF-8 or UTF-32 (a
  character outside the BMP, such as an emoji, is two UTF-16 units).
* Code actions on a finding: "Add `# noqa: ARC001`" (a quick fix editing the finding's line
  as ``asyncrace check --add-noqa`` would) and "Open the rule page of ARC001" (a command,
  ``asyncrace.openRulePage``, which asks the client to show the page's URL). A hover
  on a finding shows the rule's name, summary and page.
* Client settings (:class:`ClientSettings`): ``select``, ``ignore``, ``extendSelect`` and
  ``strictness`` in the ``initializationOptions`` of ``initialize`` or in
  ``workspace/didChangeConfiguration``, applied over the configuration file as the same
  command-line options would be.

The pygls-free helpers (:func:`context_files`, :func:`code_units`, :func:`lsp_position`,
:func:`analyze_document`) are used by the flake8 plugin too.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncrace import __version__
from asyncrace.config import CliOverrides, load_settings
from asyncrace.diagnostic import Diagnostic, Location, Span
from asyncrace.registry import BY_CODE, META_CODES
from asyncrace.run import discover as discover_mod
from asyncrace.run import engine
from asyncrace.settings import Settings
from asyncrace.sources import SourceStore, split_lines

if TYPE_CHECKING:
    from lsprotocol import types as lsp_types
    from pygls.lsp.server import LanguageServer

    from asyncrace.run.pipeline import FactsMemory

__all__ = [
    "CACHE_DIRNAME",
    "CONTEXT_LIMIT",
    "DEBOUNCE",
    "OPEN_RULE_PAGE",
    "ClientSettings",
    "DocumentReport",
    "MissingDependencyError",
    "analyze_document",
    "code_units",
    "context_files",
    "create_server",
    "lsp_position",
    "serve",
]

log = logging.getLogger("asyncrace.lsp")

DEBOUNCE = 0.1
"""Seconds without a change before a changed document is analyzed again."""

CONTEXT_LIMIT = 1000
"""A package with more Python files than this is not used as context: the document's sibling
modules are, so that a keystroke never costs the analysis of a huge tree."""

CACHE_DIRNAME = ".asyncrace_cache"  # as the command line's default

OPEN_RULE_PAGE = "asyncrace.openRulePage"
"""The command of the "Open the rule page" code action: its argument is the rule's code."""


@dataclass(frozen=True)
class ClientSettings:
    """What an editor may set for its documents, over the configuration file: the rule
    selection as ``--select``, ``--ignore`` and ``--extend-select`` would, and ``strictness``
    as ``--strictness`` (``proven`` or ``likely``). :meth:`overrides` maps them onto the
    command line's overrides: a new setting goes there."""

    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    strictness: str | None = None

    @classmethod
    def from_options(cls, options: object) -> ClientSettings:
        """From ``initializationOptions`` or the ``settings`` of
        ``workspace/didChangeConfiguration``: the keys at the top level or under
        ``asyncrace``; ``extendSelect``, ``extend-select`` and ``extend_select`` alike. A value
        of the wrong type raises ``ValueError``."""
        if not isinstance(options, dict):
            return cls()
        inner = options.get("asyncrace")
        if isinstance(inner, dict):
            options = inner

        def codes(*names: str) -> tuple[str, ...] | None:
            for name in names:
                if name in options and options[name] is not None:
                    value = options[name]
                    if isinstance(value, str):
                        value = [v for v in value.split(",") if v.strip()]
                    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                        raise ValueError(f"{name}: expected a list of rule codes, got {value!r}")
                    return tuple(v.strip() for v in value)
            return None

        from asyncrace.settings import STRICTNESS_LEVELS

        strictness = options.get("strictness")
        if strictness is not None and strictness not in STRICTNESS_LEVELS:
            raise ValueError(
                f"strictness: expected one of {', '.join(STRICTNESS_LEVELS)}, got {strictness!r}"
            )
        return cls(
            select=codes("select"),
            ignore=codes("ignore") or (),
            extend_select=codes("extendSelect", "extend-select", "extend_select") or (),
            strictness=strictness,
        )

    def overrides(self) -> CliOverrides | None:
        """The settings as command-line overrides of the configuration file (None: none)."""
        if (
            self.select is None
            and not self.ignore
            and not self.extend_select
            and self.strictness is None
        ):
            return None
        return CliOverrides(
            select=self.select,
            ignore=self.ignore,
            extend_select=self.extend_select,
            strictness=self.strictness,
        )


class MissingDependencyError(Exception):
    """pygls (the ``lsp`` extra) is not installed, or too old."""


# ----------------------------------------------------------------------------------- context


def package_root(path: Path) -> Path | None:
    """The outermost package directory containing ``path`` (the directories upwards from the
    file's that have an ``__init__.py``); None for a module outside any package."""
    top: Path | None = None
    d = Path(os.path.abspath(path)).parent
    while (d / "__init__.py").is_file() and d.parent != d:
        top = d
        d = d.parent
    return top


def _siblings(path: Path, settings: Settings) -> list[Path]:
    directory = Path(os.path.abspath(path)).parent
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    out = []
    for name in names:
        candidate = directory / name
        if (
            name.endswith(".py")
            and candidate.is_file()
            and not discover_mod.is_excluded(candidate, settings)
        ):
            out.append(candidate)
    return out


def context_files(path: Path, settings: Settings, *, limit: int = CONTEXT_LIMIT) -> list[Path]:
    """The files analyzed together with ``path`` (a document or a file flake8 checks), so that
    cross-module facts (a fan-out in another module, an inherited method, the callee that takes
    the lock) are seen without analyzing a whole repository on each keystroke:

    * in a package: every file of its top-level package, discovered as ``asyncrace check``
      would (``exclude``, ``.gitignore``), when there are at most ``limit`` of them;
    * otherwise (a top-level module, or a package above the limit): the ``*.py`` files of its
      own directory, not recursively.

    ``path`` itself is always part of the list (whether or not it exists on disk yet)."""
    apath = Path(os.path.abspath(path))
    files: list[Path] = []
    root = package_root(apath)
    if root is not None:
        try:
            files = discover_mod.discover([root], settings)
        except discover_mod.DiscoveryError:
            files = []
        if len(files) > limit:
            log.info(
                "asyncrace: %s has %d files (> %d): sibling modules only", root, len(files), limit
            )
            files = []
    if not files:
        files = _siblings(apath, settings)
    if apath.is_file() and apath not in files:
        files.append(apath)
    return sorted(files)


class Contexts:
    """The context of each document (:func:`context_files`), walked once and kept until a file
    event says a file was added or removed below it (:meth:`invalidate`). Thread-safe."""

    def __init__(self) -> None:
        self._lists: dict[tuple[str, int, str], tuple[Path, list[Path]]] = {}
        self._stale: set[tuple[str, int, str]] = set()  # to walk again (still watched)
        self._lock = threading.Lock()

    def files(self, path: Path, settings: Settings, limit: int) -> list[Path]:
        apath = Path(os.path.abspath(path))
        root = package_root(apath) or apath.parent
        key = (str(root), limit, repr(_walk_settings(settings)))
        with self._lock:
            held = None if key in self._stale else self._lists.get(key)
            self._stale.discard(key)
        if held is None:
            files = context_files(apath, settings, limit=limit)
            with self._lock:
                self._lists[key] = (root, files)
        else:
            files = held[1]
            if apath.is_file() and apath not in files:  # (it is always part of the list)
                files = sorted([*files, apath])
        return files

    def roots(self) -> set[Path]:
        """The directories the contexts were walked from."""
        with self._lock:
            return {root for root, _ in self._lists.values()}

    def invalidate(self, path: str | None = None) -> None:
        """A file or directory was added or removed at ``path`` (None: anywhere): walk again
        where it counts. The roots stay watched."""
        with self._lock:
            for key, (root, _) in self._lists.items():
                if path is None or path.startswith(str(root) + os.sep) or path == str(root):
                    self._stale.add(key)

    def contains(self, path: str) -> bool:
        with self._lock:
            return any(Path(path) in files for _, files in self._lists.values())


def _walk_settings(settings: Settings) -> tuple[object, ...]:
    s = settings
    return (s.project_root, s.exclude, s.extend_exclude, s.respect_gitignore)


@dataclass
class DocumentReport:
    """The findings of one document (primary location in it) and the texts to map spans."""

    display: str  # the document's display path (as in ``Diagnostic.span.path``)
    diagnostics: list[Diagnostic]
    sources: SourceStore
    files: int  # files analyzed (context included)
    excluded: bool = False  # the settings exclude the document: nothing was analyzed


def analyze_document(
    path: Path,
    text: str | None,
    *,
    limit: int = CONTEXT_LIMIT,
    jobs: int = 1,
    settings: Settings | None = None,
    respect_exclude: bool = True,
    memory: FactsMemory | None = None,
    overrides: CliOverrides | None = None,
    state: engine.ProjectState | None = None,
    contexts: Contexts | None = None,
) -> DocumentReport:
    """Analyze the document ``path`` with its context (:func:`context_files`) and return the
    findings located in it. ``text`` is its current content (an editor buffer); None reads the
    file from disk. Settings are loaded for ``path`` unless given, with ``overrides`` (an
    editor's :class:`ClientSettings`) over them (may raise
    :class:`~asyncrace.config.ConfigError`). A long-lived caller keeps ``memory`` (facts),
    ``state`` (digests) and ``contexts`` (the walks) between the analyses."""
    if settings is None:
        settings = load_settings([path], cli=overrides)
    display = engine.display_path(path)
    if respect_exclude and discover_mod.is_excluded(path, settings):
        return DocumentReport(display, [], SourceStore(), 0, excluded=True)
    if contexts is not None:
        files = contexts.files(path, settings, limit)
    else:
        files = context_files(path, settings, limit=limit)
    stdin = engine.StdinInput(str(path), text) if text is not None else None
    if stdin is not None:
        me = os.path.abspath(path)
        files = [f for f in files if os.path.abspath(f) != me]
    result = engine.check(
        files,
        settings,
        stdin=stdin,
        jobs=jobs,
        cache_dir=settings.project_root / CACHE_DIRNAME,
        memory=memory,
        state=state,
        only={display},
    )
    # the engine froze what it built (gc_paused); the facts are dropped by now, and a server
    # lives long: anything cyclic left among them must stay collectable
    gc.unfreeze()
    mine = [d for d in result.diagnostics if d.path == display]
    return DocumentReport(display, mine, result.sources, result.files)


# --------------------------------------------------------------------------------- positions


def code_units(text: str, encoding: str = "utf-16") -> int:
    """The length of ``text`` in code units of an LSP position encoding (``utf-8``,
    ``utf-16``, ``utf-32``; anything else counts as UTF-16, LSP's default)."""
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def lsp_position(lines: Sequence[str], loc: Location, encoding: str = "utf-16") -> tuple[int, int]:
    """(line, character) of an asyncrace location (1-based row, 1-based character column) in
    LSP terms: 0-based line, 0-based offset in code units of ``encoding``. A column past the
    end of its line (an exclusive end) counts the rest as one unit per character; a row past
    the last line keeps its number (clients clamp)."""
    line = max(loc.row, 1) - 1
    chars = max(loc.column, 1) - 1
    text = lines[line] if line < len(lines) else ""
    prefix = text[:chars]
    return line, code_units(prefix, encoding) + max(0, chars - len(text))


def _span_range(span: Span, lines: Sequence[str], encoding: str) -> lsp_types.Range:
    from lsprotocol import types

    sl, sc = lsp_position(lines, span.start, encoding)
    el, ec = lsp_position(lines, span.end, encoding)
    if (el, ec) < (sl, sc):
        el, ec = sl, sc
    return types.Range(types.Position(sl, sc), types.Position(el, ec))


def _uri(display: str) -> str:
    return Path(os.path.abspath(display)).as_uri()


def to_lsp(
    d: Diagnostic,
    report: DocumentReport,
    doc_lines: Sequence[str],
    *,
    encoding: str = "utf-16",
    related_information: bool = True,
) -> lsp_types.Diagnostic:
    """One asyncrace diagnostic as an LSP diagnostic of the document ``report`` describes;
    ``doc_lines`` are the analyzed text's lines."""
    from lsprotocol import types

    def lines_of(path: str) -> Sequence[str]:
        return doc_lines if path == report.display else report.sources.lines(path)

    url = d.url or (BY_CODE[d.code].url if d.code in BY_CODE else None)
    message = d.message
    related = None
    if d.related:
        if related_information:
            related = [
                types.DiagnosticRelatedInformation(
                    location=types.Location(
                        uri=_uri(r.span.path),
                        range=_span_range(r.span, lines_of(r.span.path), encoding),
                    ),
                    message=r.message,
                )
                for r in d.related
            ]
        else:  # the steps in words, for clients without relatedInformation
            steps = []
            for r in d.related:
                where = "" if r.span.path == report.display else f"{r.span.path}:"
                steps.append(f"{where}{r.span.start.row}:{r.span.start.column}: {r.message}")
            message = message + "\n" + "\n".join(steps)
    return types.Diagnostic(
        range=_span_range(d.span, doc_lines, encoding),
        message=message,
        severity=(
            types.DiagnosticSeverity.Error
            if d.code in META_CODES
            else types.DiagnosticSeverity.Warning
        ),
        code=d.code,
        code_description=types.CodeDescription(href=url) if url else None,
        source="asyncrace",
        related_information=related,
    )


# ------------------------------------------------------------------------------------ server


def _require_pygls() -> None:
    try:
        version = metadata.version("pygls")
    except metadata.PackageNotFoundError:
        raise MissingDependencyError(
            "the language server needs pygls, which is not installed: pip install 'asyncrace[lsp]'"
        ) from None
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) < 2:
        raise MissingDependencyError(
            f"the language server needs pygls 2 or later (installed: {version}): "
            "pip install 'asyncrace[lsp]'"
        )


class _Scheduler:
    """Debounced, one-at-a-time analyses of documents; publishes their diagnostics."""

    def __init__(self, server: LanguageServer, *, debounce: float, limit: int) -> None:
        self.server = server
        self.debounce = debounce
        self.limit = limit
        self.waiting: dict[str, asyncio.Task[None]] = {}  # still in their debounce sleep
        self.running: set[asyncio.Task[None]] = set()
        self.lock = asyncio.Lock()
        self.shown_errors: set[str] = set()
        self.analyzed: set[str] = set()  # documents analyzed (Python ones, open)
        # the facts of the files around the documents, kept between analyses: an edit
        # re-extracts the edited buffer only, nothing is decoded from the cache again; the
        # digests of those files, and the walks of the contexts, kept up to date by file
        # events (a thread of its own, :meth:`_watch`)
        from asyncrace.run.pipeline import FactsMemory

        self.memory = FactsMemory()
        self.client = ClientSettings()
        # what was published last for each document: (document version, its asyncrace
        # findings, their LSP diagnostics), for code actions and hovers
        self.published: dict[str, tuple[int | None, list[Diagnostic], list[Any]]] = {}
        self.state = engine.ProjectState()
        self.contexts: Contexts | None = Contexts()
        self.loop = asyncio.get_running_loop()
        self.stop = threading.Event()
        self.watcher: threading.Thread | None = None
        try:
            import watchfiles  # noqa: F401
        except ImportError:  # (a dependency, but never fatal): walk at every analysis
            self.contexts = None

    def schedule(self, uri: str, delay: float) -> None:
        old = self.waiting.pop(uri, None)
        if old is not None:
            old.cancel()
        task = asyncio.get_running_loop().create_task(self._run(uri, delay))
        self.waiting[uri] = task
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    def forget(self, uri: str) -> None:
        self.analyzed.discard(uri)
        old = self.waiting.pop(uri, None)
        if old is not None:
            old.cancel()
        self.published.pop(uri, None)

    def reanalyze(self, uris: Sequence[str]) -> None:
        """Analyze these documents again (the settings changed)."""
        for uri in uris:
            self.schedule(uri, 0)

    def set_client_settings(self, options: object) -> bool:
        """Take the editor's settings (:class:`ClientSettings`); False, with an error message
        shown, when they are not valid (the previous ones stay)."""
        from lsprotocol import types

        from asyncrace import registry

        try:
            client = ClientSettings.from_options(options)
            for name, codes in (
                ("select", client.select or ()),
                ("ignore", client.ignore),
                ("extendSelect", client.extend_select),
            ):
                for code in codes:
                    try:
                        registry.expand(code)
                    except registry.SelectionError as exc:
                        raise ValueError(f"{name}: {exc}") from None
        except ValueError as exc:
            self.server.window_show_message(
                types.ShowMessageParams(
                    type=types.MessageType.Error,
                    message=f"asyncrace: client settings ignored: {exc}",
                )
            )
            return False
        self.client = client
        return True

    def findings_at(
        self, uri: str, version: int | None
    ) -> list[tuple[Diagnostic, lsp_types.Diagnostic]]:
        """The findings published for the document at ``version`` (none if it changed since:
        their positions would be stale)."""
        held = self.published.get(uri)
        if held is None or held[0] != version:
            return []
        return list(zip(held[1], held[2], strict=True))

    def cancel_all(self) -> None:
        for task in list(self.waiting.values()):
            task.cancel()
        self.waiting.clear()
        self.stop.set()

    def _start_watching(self) -> None:
        if self.watcher is None and self.contexts is not None and not self.stop.is_set():
            self.watcher = threading.Thread(
                target=self._watch, name="asyncrace-file-events", daemon=True
            )
            self.watcher.start()

    def _watch(self) -> None:
        """File events below the contexts' roots (until shutdown): a file added or removed
        drops the walk it belongs to, any change drops the file's digest; then the open
        documents are analyzed again (their context changed on disk)."""
        from watchfiles import Change, DefaultFilter, watch

        contexts = self.contexts
        assert contexts is not None
        base = DefaultFilter()

        def relevant(change: Change, path: str) -> bool:
            if CACHE_DIRNAME in path.split(os.sep):
                return False  # what the analyses write
            name = os.path.basename(path)
            if name.endswith(".py") or name == ".gitignore":
                return base(change, path)
            if change == Change.added:  # a directory: its files are the context's now
                return os.path.isdir(path) and base(change, path)
            # a directory removed (its files with it)
            return change == Change.deleted and not os.path.splitext(name)[1]

        first = True
        while not self.stop.is_set():
            roots = contexts.roots()
            existing = sorted(str(r) for r in roots if r.is_dir())
            if not existing:
                self.stop.wait(0.2)
                continue
            if not first:  # files added or removed while no watcher ran: walk again
                contexts.invalidate()
                self.loop.call_soon_threadsafe(self._files_changed)
            first = False
            try:
                for changes in watch(
                    *existing,
                    watch_filter=relevant,
                    debounce=50,
                    step=20,
                    rust_timeout=200,
                    yield_on_timeout=True,
                    stop_event=self.stop,
                    raise_interrupt=False,
                ):
                    if changes:
                        for change, path in changes:
                            self.state.touch([path])
                            if change != Change.modified or path.endswith(".gitignore"):
                                contexts.invalidate(path)
                        self.loop.call_soon_threadsafe(self._files_changed)
                    if contexts.roots() != roots:
                        break  # a new context: watch it too
            except Exception:  # a root that went away, a watcher that failed: again
                log.debug("asyncrace: file events: restarting", exc_info=True)
                self.stop.wait(0.5)

    def _files_changed(self) -> None:
        for uri in list(self.server.workspace.text_documents):
            if uri in self.waiting or uri in self.analyzed:
                self.schedule(uri, self.debounce)

    def _encoding(self) -> str:
        enc = self.server.workspace.position_encoding
        return str(getattr(enc, "value", enc) or "utf-16")

    def _related_supported(self) -> bool:
        caps = self.server.client_capabilities
        pd = caps.text_document.publish_diagnostics if caps.text_document else None
        return bool(pd and pd.related_information)

    async def _run(self, uri: str, delay: float) -> None:
        from lsprotocol import types

        from asyncrace.config import ConfigError

        if delay > 0:
            await asyncio.sleep(delay)
        if self.waiting.get(uri) is asyncio.current_task():
            del self.waiting[uri]  # from here on it is not cancelled by newer changes
        async with self.lock:
            doc = self.server.workspace.text_documents.get(uri)
            if doc is None:
                return
            version, text = doc.version, doc.source
            path = _document_path(uri)
            try:
                report = await asyncio.to_thread(
                    analyze_document,
                    path,
                    text,
                    limit=self.limit,
                    jobs=1,
                    memory=self.memory,
                    overrides=self.client.overrides(),
                    state=self.state,
                    contexts=self.contexts,
                )
                self.analyzed.add(uri)
                self._start_watching()
            except ConfigError as exc:
                message = f"asyncrace: {exc}"
                log.warning("%s", message)
                if message not in self.shown_errors:
                    self.shown_errors.add(message)
                    self.server.window_show_message(
                        types.ShowMessageParams(type=types.MessageType.Error, message=message)
                    )
                self._publish(uri, version, [])
                return
            except Exception as exc:  # never take the server down
                log.exception("asyncrace: analysis of %s failed", uri)
                self.server.window_log_message(
                    types.LogMessageParams(
                        type=types.MessageType.Error,
                        message=f"asyncrace: analysis of {uri} failed: {type(exc).__name__}: {exc}",
                    )
                )
                return
        current = self.server.workspace.text_documents.get(uri)
        if current is None or current.version != version:
            return  # edited meanwhile: a newer analysis is on its way
        lines = split_lines(text)
        encoding = self._encoding()
        related = self._related_supported()
        diagnostics = []
        kept: list[Diagnostic] = []
        for d in report.diagnostics:
            try:
                diagnostics.append(
                    to_lsp(d, report, lines, encoding=encoding, related_information=related)
                )
                kept.append(d)
            except Exception:  # one odd span must not hide the others
                log.exception("asyncrace: cannot convert %s at %s", d.code, d.span)
        self.published[uri] = (version, kept, diagnostics)
        log.info(
            "asyncrace: %s: %d diagnostics (%d files analyzed)",
            report.display,
            len(diagnostics),
            report.files,
        )
        self._publish(uri, version, diagnostics)

    def _publish(
        self, uri: str, version: int | None, diagnostics: list[lsp_types.Diagnostic]
    ) -> None:
        from lsprotocol import types

        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )


def _overlaps(a: lsp_types.Range, b: lsp_types.Range) -> bool:
    start_a, end_a = (a.start.line, a.start.character), (a.end.line, a.end.character)
    start_b, end_b = (b.start.line, b.start.character), (b.end.line, b.end.character)
    return start_a <= end_b and start_b <= end_a


def _noqa_edit(
    text: str, lines: Sequence[str], finding: Diagnostic, encoding: str
) -> lsp_types.TextEdit | None:
    """The edit that adds ``# noqa: CODE`` for ``finding`` to its line (as ``asyncrace check
    --add-noqa`` writes it); None for a meta code, ARC100, or a line that cannot take a
    comment (it ends inside a string or continues with a backslash)."""
    from lsprotocol import types

    from asyncrace.suppress import add_noqa_to_text

    if finding.code in META_CODES or finding.code == "ARC100":
        return None
    row = finding.span.start.row
    if not 1 <= row <= len(lines):
        return None
    new_text, changed, _ = add_noqa_to_text(text, {row: [finding.code]})
    if not changed:
        return None
    new_line = split_lines(new_text)[row - 1]
    old = lines[row - 1]
    return types.TextEdit(
        range=types.Range(
            types.Position(row - 1, 0), types.Position(row - 1, code_units(old, encoding))
        ),
        new_text=new_line,
    )


def hover_text(finding: Diagnostic) -> str:
    """The hover of a finding (Markdown): the rule's code, name and summary, the message, and
    a link to the rule's page."""
    info = BY_CODE.get(finding.code)
    head = f"**{finding.code}** `{finding.name}`"
    out = [head]
    if info is not None:
        out[0] = f"**{info.code}** `{info.name}`: {info.summary}."
    out.append(finding.message)
    if finding.fix:
        out.append(f"*Fix:* {finding.fix}")
    url = finding.url or (info.url if info is not None else None)
    if url:
        out.append(f"[Rule page: {finding.code}]({url})")
    return "\n\n".join(out)


def _document_path(uri: str) -> Path:
    from pygls.uris import to_fs_path

    fs = to_fs_path(uri)
    if fs is None:  # untitled:, vscode-notebook-cell: ... analyzed as a file of the cwd
        name = uri.rsplit("/", 1)[-1].split(":")[-1] or "untitled"
        fs = os.path.join(os.getcwd(), name if name.endswith(".py") else name + ".py")
    return Path(fs)


def _is_python(uri: str, language_id: str | None) -> bool:
    """A Python document: by the language the client names, else (an empty or unknown
    language, as an editor without filetype detection sends) by the extension."""
    if language_id == "python":
        return True
    return uri.endswith((".py", ".pyi"))


def create_server(*, debounce: float = DEBOUNCE, limit: int = CONTEXT_LIMIT) -> LanguageServer:
    """The language server with its handlers (not started)."""
    _require_pygls()
    from lsprotocol import types
    from pygls.lsp.server import LanguageServer

    server = LanguageServer(
        "asyncrace", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental
    )
    state: dict[str, _Scheduler] = {}
    languages: dict[str, str | None] = {}

    def scheduler() -> _Scheduler:
        if "s" not in state:
            state["s"] = _Scheduler(server, debounce=debounce, limit=limit)
        return state["s"]

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    async def did_open(ls: LanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        languages[doc.uri] = doc.language_id
        if _is_python(doc.uri, doc.language_id):
            scheduler().schedule(doc.uri, 0)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: LanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        if _is_python(uri, languages.get(uri)):
            scheduler().schedule(uri, scheduler().debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    async def did_save(ls: LanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        s = scheduler()
        if _is_python(uri, languages.get(uri)):
            s.schedule(uri, 0)
        # the saved file is context for the other open documents
        for other in list(ls.workspace.text_documents):
            if other != uri and _is_python(other, languages.get(other)):
                s.schedule(other, s.debounce)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    async def did_close(ls: LanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        languages.pop(uri, None)
        scheduler().forget(uri)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )

    def python_documents() -> list[str]:
        return [u for u in server.workspace.text_documents if _is_python(u, languages.get(u))]

    @server.feature(types.INITIALIZE)
    def initialize(ls: LanguageServer, params: types.InitializeParams) -> None:
        if params.initialization_options is not None:
            scheduler().set_client_settings(params.initialization_options)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(
        ls: LanguageServer, params: types.DidChangeConfigurationParams
    ) -> None:
        if scheduler().set_client_settings(params.settings):
            scheduler().reanalyze(python_documents())

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(
        ls: LanguageServer, params: types.CodeActionParams
    ) -> list[types.CodeAction | types.Command] | None:
        only = params.context.only
        if only and not any(k in ("", types.CodeActionKind.QuickFix) for k in only):
            return None
        uri = params.text_document.uri
        doc = ls.workspace.text_documents.get(uri)
        if doc is None:
            return None
        wanted = params.range
        actions: list[types.CodeAction | types.Command] = []
        pages: set[str] = set()
        lines = split_lines(doc.source)
        encoding = scheduler()._encoding()
        for finding, diag in scheduler().findings_at(uri, doc.version):
            if not _overlaps(diag.range, wanted):
                continue
            edit = _noqa_edit(doc.source, lines, finding, encoding)
            if edit is not None:
                actions.append(
                    types.CodeAction(
                        title=f"Add `# noqa: {finding.code}` (asyncrace)",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diag],
                        edit=types.WorkspaceEdit(changes={uri: [edit]}),
                    )
                )
            if finding.code in BY_CODE and finding.code not in pages:
                # a bare Command: a CodeAction that carries a command is read as a Command by
                # some clients (lsprotocol's own converter), which then cannot run it
                pages.add(finding.code)
                actions.append(
                    types.Command(
                        title=f"Open the rule page of {finding.code} (asyncrace)",
                        command=OPEN_RULE_PAGE,
                        arguments=[finding.code],
                    )
                )
        return actions

    # (annotations that pygls can resolve: it reads them to convert the arguments)
    @server.command(OPEN_RULE_PAGE)
    async def open_rule_page(ls: Any, *args: Any) -> bool:
        code = args[0] if args else None
        if isinstance(code, list):  # clients that pass the arguments as one list
            code = code[0] if code else None
        if not isinstance(code, str) or code not in BY_CODE:
            raise ValueError(f"{OPEN_RULE_PAGE}: unknown rule code {code!r}")
        url = BY_CODE[code].url
        caps = ls.client_capabilities.window
        if caps is not None and caps.show_document is not None and caps.show_document.support:
            result = await ls.window_show_document_async(
                types.ShowDocumentParams(uri=url, external=True)
            )
            return bool(result.success)
        ls.window_show_message(  # a client that cannot open it: say where it is
            types.ShowMessageParams(type=types.MessageType.Info, message=f"{code}: {url}")
        )
        return False

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: LanguageServer, params: types.HoverParams) -> types.Hover | None:
        uri = params.text_document.uri
        doc = ls.workspace.text_documents.get(uri)
        if doc is None:
            return None
        at = params.position
        parts: list[str] = []
        where: types.Range | None = None
        for finding, diag in scheduler().findings_at(uri, doc.version):
            r = diag.range
            if (
                (r.start.line, r.start.character)
                <= (at.line, at.character)
                <= (
                    r.end.line,
                    r.end.character,
                )
            ):
                parts.append(hover_text(finding))
                where = where or r
        if not parts:
            return None
        return types.Hover(
            contents=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(parts)
            ),
            range=where,
        )

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: LanguageServer, params: Any) -> None:
        if "s" in state:
            state["s"].cancel_all()

    return server


def serve(*, verbose: bool = False) -> None:
    """Run the server on stdin/stdout until the client says exit. Raises
    :class:`MissingDependencyError` when pygls 2 is not installed."""
    _require_pygls()
    handler = logging.StreamHandler(sys.stderr)  # stdout carries the protocol
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("asyncrace")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    root.propagate = False
    create_server().start_io()
