"""The language server, end to end: a real LSP client (pytest-lsp) drives ``python -m asyncrace
server`` over stdio; plus the position conversion and the context choice as units."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from asyncrace.diagnostic import Location
from asyncrace.settings import Settings

pytest_lsp = pytest.importorskip("pytest_lsp")
from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

from asyncrace import lsp  # noqa: E402

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
SERVER = [sys.executable, "-m", "asyncrace", "server"]
TIMEOUT = 60.0

# ARC001 in one file: a module global holds a per-call value across an await. Emoji (outside
# the BMP: two UTF-16 code units, four UTF-8 bytes) stand before the write and the read.
BUGGY = '''"""Email rendering."""

from __future__ import annotations

import asyncio

_current_locale = "en"


async def _load_catalog(locale: str) -> dict[str, str]:
    await asyncio.sleep(0)
    return {"greeting": "hello"}


async def render_email(locale: str, template: str) -> str:
    global _current_locale
    icon = "📧"; _current_locale = locale
    strings = await _load_catalog(locale)
    return f"{icon} 📨 {_current_locale}: " + template.format(**strings)
'''

# the fix: the locale stays a local variable
FIXED = BUGGY.replace(
    '    global _current_locale\n    icon = "📧"; _current_locale = locale\n',
    '    icon = "📧"; current = locale\n',
).replace("{_current_locale}", "{current}")


def project(root: Path, files: dict[str, str], config: str = "[tool.asyncrace]\n") -> Path:
    (root / "pyproject.toml").write_text(config, encoding="utf-8")
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


async def diagnostics_for(
    client: LanguageClient,
    uri: str,
    until: Callable[[Sequence[types.Diagnostic]], bool],
    timeout: float = TIMEOUT,
) -> Sequence[types.Diagnostic]:
    """Wait until the diagnostics published for ``uri`` satisfy ``until``."""

    async def wait() -> Sequence[types.Diagnostic]:
        while True:
            got = client.diagnostics.get(uri)
            if got is not None and until(got):
                return got
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    return await asyncio.wait_for(wait(), timeout)


def open_doc(client: LanguageClient, path: Path, text: str, version: int = 1) -> str:
    uri = path.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=version, text=text
            )
        )
    )
    return uri


def initialize_params(encodings: list[str] | None = None) -> types.InitializeParams:
    caps = client_capabilities("visual-studio-code")
    if encodings is not None:
        caps.general = types.GeneralClientCapabilities(
            position_encodings=[types.PositionEncodingKind(e) for e in encodings]
        )
    return types.InitializeParams(capabilities=caps)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    await lsp_client.initialize_session(initialize_params())
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def utf8_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    result = await lsp_client.initialize_session(initialize_params(["utf-8", "utf-16"]))
    assert result.capabilities.position_encoding == types.PositionEncodingKind.Utf8
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER),
)
async def bare_client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    """A client that does not support relatedInformation."""
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            publish_diagnostics=types.PublishDiagnosticsClientCapabilities(
                related_information=False
            ),
            synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
        )
    )
    await lsp_client.initialize_session(types.InitializeParams(capabilities=caps))
    yield
    await lsp_client.shutdown_session()


# ------------------------------------------------------------------------------ end to end


@pytest.mark.asyncio
async def test_open_buggy_then_fix_it(client: LanguageClient, tmp_path: Path) -> None:
    path = project(tmp_path, {"mailer.py": BUGGY}) / "mailer.py"
    uri = open_doc(client, path, BUGGY)
    diags = await diagnostics_for(client, uri, lambda ds: len(ds) > 0)
    assert len(diags) == 1
    d = diags[0]
    assert d.code == "ARC001"
    assert d.source == "asyncrace"
    assert d.severity == types.DiagnosticSeverity.Warning
    assert d.message.startswith("module variable `_current_locale` holds a per-call value")
    assert d.code_description is not None
    assert d.code_description.href.endswith("/rules/ARC001.md")
    # row 17 `    icon = "📧"; _current_locale = locale`: 16 characters, 17 UTF-16 units before
    assert d.range == types.Range(types.Position(16, 17), types.Position(16, 32))
    related = d.related_information or []
    assert [(r.location.uri, r.location.range, r.message) for r in related] == [
        (
            uri,
            # `await _load_catalog` after `    strings = `
            types.Range(types.Position(17, 14), types.Position(17, 33)),
            "await: other tasks run here and may overwrite it",
        ),
        (
            uri,
            # `    return f"{icon} 📨 {`: 23 characters, 24 UTF-16 units
            types.Range(types.Position(18, 24), types.Position(18, 39)),
            "read back here, after the await",
        ),
        (
            uri,
            # the evidence: `async def render_email` (a public coroutine)
            types.Range(types.Position(14, 0), types.Position(14, 22)),
            "`render_email` is a public coroutine: any number of tasks may run it at once, "
            "and module state is one for all of them",
        ),
    ]

    # edit into the fix (a full-text change), unsaved: the buffer is what is analyzed
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=FIXED)],
        )
    )
    assert list(await diagnostics_for(client, uri, lambda ds: len(ds) == 0)) == []
    assert path.read_text(encoding="utf-8") == BUGGY  # never saved

    # an incremental edit back to the bug: `current = locale` -> `_current_locale = locale` ...
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(types.Position(15, 0), types.Position(19, 0)),
                    text=(
                        "    global _current_locale\n"
                        '    icon = "📧"; _current_locale = locale\n'
                        "    strings = await _load_catalog(locale)\n"
                        '    return f"{icon} 📨 {_current_locale}: " + template.format(**strings)\n'
                    ),
                )
            ],
        )
    )
    again = await diagnostics_for(client, uri, lambda ds: len(ds) == 1)
    assert again[0].range == d.range

    # closing clears the document's diagnostics
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert list(await diagnostics_for(client, uri, lambda ds: len(ds) == 0)) == []


@pytest.mark.asyncio
async def test_utf8_position_encoding(utf8_client: LanguageClient, tmp_path: Path) -> None:
    path = project(tmp_path, {"mailer.py": BUGGY}) / "mailer.py"
    uri = open_doc(utf8_client, path, BUGGY)
    (d,) = await diagnostics_for(utf8_client, uri, lambda ds: len(ds) > 0)
    # 16 characters before the write, the emoji is 4 bytes: 19 bytes
    assert d.range.start == types.Position(16, 19)
    read = (d.related_information or [])[1]
    assert read.location.range.start == types.Position(18, 26)  # 23 characters, 26 bytes


@pytest.mark.asyncio
async def test_package_context_and_related_file(client: LanguageClient, tmp_path: Path) -> None:
    """marsys: `RealRuntime.step` is fanned out by orchestrator.py; the document alone would
    not show that it runs concurrently, its package does."""
    shutil.copytree(SEEDS / "marsys_buggy", tmp_path / "marsys_buggy")
    project(tmp_path, {})
    doc = tmp_path / "marsys_buggy" / "real_runtime.py"
    uri = open_doc(client, doc, doc.read_text(encoding="utf-8"))
    (d,) = await diagnostics_for(client, uri, lambda ds: len(ds) > 0)
    assert d.code == "ARC001"
    assert d.range.start == types.Position(37, 8)  # real_runtime.py:38:9
    other = [r for r in d.related_information or [] if r.location.uri != uri]
    assert [r.location.uri for r in other] == [
        (tmp_path / "marsys_buggy" / "orchestrator.py").as_uri()
    ]
    assert "runs in several tasks at once" in other[0].message
    assert other[0].location.range.start == types.Position(26, 41)  # orchestrator.py:27:42


@pytest.mark.asyncio
async def test_configuration_from_pyproject(client: LanguageClient, tmp_path: Path) -> None:
    root = project(tmp_path, {"mailer.py": BUGGY}, '[tool.asyncrace]\nselect = ["ARC005"]\n')
    uri = open_doc(client, root / "mailer.py", BUGGY)
    assert list(await diagnostics_for(client, uri, lambda ds: True)) == []
    # a configuration error is shown, not a crash
    (root / "pyproject.toml").write_text('[tool.asyncrace]\nselect = ["ARC042"]\n')
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )

    async def shown() -> None:
        while not client.messages:
            await client.wait_for_notification(types.WINDOW_SHOW_MESSAGE)

    await asyncio.wait_for(shown(), TIMEOUT)
    assert client.messages[0].type == types.MessageType.Error
    assert "ARC042" in client.messages[0].message


@pytest.mark.asyncio
async def test_steps_in_message_without_related_information(
    bare_client: LanguageClient, tmp_path: Path
) -> None:
    path = project(tmp_path, {"mailer.py": BUGGY}) / "mailer.py"
    uri = open_doc(bare_client, path, BUGGY)
    (d,) = await diagnostics_for(bare_client, uri, lambda ds: len(ds) > 0)
    assert d.related_information is None
    assert d.message.splitlines()[1:] == [
        "18:15: await: other tasks run here and may overwrite it",
        "19:24: read back here, after the await",
        "15:1: `render_email` is a public coroutine: any number of tasks may run it at once, "
        "and module state is one for all of them",
    ]


# ------------------------------------------------------------------------------------- units


def test_code_units() -> None:
    assert lsp.code_units("a😀b") == 4  # UTF-16: the emoji is a surrogate pair
    assert lsp.code_units("a😀b", "utf-8") == 6
    assert lsp.code_units("a😀b", "utf-32") == 3
    assert lsp.code_units("é", "utf-16") == 1


def test_lsp_position() -> None:
    lines = ["x = '😀😀'; y = 1", ""]
    # `y` is character 11 (1-based 12): 10 code points before it... plus 2 surrogate halves
    assert lsp.lsp_position(lines, Location(1, 12)) == (0, 13)
    assert lsp.lsp_position(lines, Location(1, 12), "utf-8") == (0, 17)
    assert lsp.lsp_position(lines, Location(1, 12), "utf-32") == (0, 11)
    # an exclusive end past the line, and a row past the text
    assert lsp.lsp_position(lines, Location(1, 20)) == (0, 21)
    assert lsp.lsp_position(lines, Location(5, 1)) == (4, 0)


def test_context_files(tmp_path: Path) -> None:
    settings = Settings(project_root=tmp_path)
    shutil.copytree(SEEDS / "marsys_buggy", tmp_path / "pkg")
    (tmp_path / "pkg" / "sub").mkdir()
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "mod.py").write_text("w = 1\n")
    (tmp_path / "loose.py").write_text("x = 1\n")
    (tmp_path / "other.py").write_text("y = 1\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "deep.py").write_text("z = 1\n")
    # in a package: the whole top-level package
    in_pkg = lsp.context_files(tmp_path / "pkg" / "sub" / "mod.py", settings)
    expected = sorted([*(tmp_path / "pkg").glob("*.py"), *(tmp_path / "pkg" / "sub").glob("*.py")])
    assert in_pkg == expected
    # a package above the limit: the document's directory only
    small = lsp.context_files(tmp_path / "pkg" / "sub" / "mod.py", settings, limit=2)
    assert [p.name for p in small] == ["__init__.py", "mod.py"]
    # a top-level module: its directory's modules, not the subdirectories
    loose = lsp.context_files(tmp_path / "loose.py", settings)
    assert [p.name for p in loose] == ["loose.py", "other.py"]
    # excluded files are not context
    excluded = Settings(project_root=tmp_path, extend_exclude=("other.py",))
    assert [p.name for p in lsp.context_files(tmp_path / "loose.py", excluded)] == ["loose.py"]


def test_server_without_pygls(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from asyncrace.cli import main

    def missing(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    r = CliRunner().invoke(main, ["server"])
    assert r.exit_code == 2
    assert "pip install 'asyncrace[lsp]'" in r.stderr
    assert "pygls" in r.stderr


def test_python_documents() -> None:
    assert lsp._is_python("file:///x/a.py", "python")
    assert lsp._is_python("file:///x/a.py", "")  # Neovim without filetype detection
    assert lsp._is_python("untitled:Untitled-1", "python")
    assert not lsp._is_python("file:///x/README.md", "markdown")


# ---------------------------------------------------- code actions, hover, client settings


def apply(text: str, edit: types.TextEdit) -> str:
    """A single-line edit in UTF-16 units (what the client does with it)."""
    lines = text.split("\n")
    line = lines[edit.range.start.line]
    assert edit.range.start.line == edit.range.end.line and edit.range.start.character == 0
    units = line.encode("utf-16-le")
    end = edit.range.end.character * 2
    assert end == len(units)  # the whole line
    lines[edit.range.start.line] = edit.new_text
    return "\n".join(lines)


@pytest.mark.asyncio
async def test_code_actions_noqa_and_rule_page(client: LanguageClient, tmp_path: Path) -> None:
    path = project(tmp_path, {"mailer.py": BUGGY}) / "mailer.py"
    uri = open_doc(client, path, BUGGY)
    (d,) = await diagnostics_for(client, uri, lambda ds: len(ds) > 0)
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=d.range,
            context=types.CodeActionContext(diagnostics=[d]),
        )
    )
    assert actions is not None
    by_title = {a.title: a for a in actions}
    assert set(by_title) == {
        "Add `# noqa: ARC001` (asyncrace)",
        "Open the rule page of ARC001 (asyncrace)",
    }
    noqa = by_title["Add `# noqa: ARC001` (asyncrace)"]
    assert isinstance(noqa, types.CodeAction)
    assert noqa.kind == types.CodeActionKind.QuickFix
    assert list(noqa.diagnostics or []) == [d]
    assert noqa.edit is not None and noqa.edit.changes is not None
    (edit,) = noqa.edit.changes[uri]
    # the emoji before the write is two UTF-16 units: the edit covers the whole line
    assert edit.new_text == '    icon = "📧"; _current_locale = locale  # noqa: ARC001'
    fixed = apply(BUGGY, edit)

    # the rule page: the server asks the client to show it, outside the editor
    page = by_title["Open the rule page of ARC001 (asyncrace)"]
    assert isinstance(page, types.Command)
    done = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=page.command, arguments=page.arguments)
    )
    assert done is True
    # (pytest-lsp's client records window/showDocument requests and says it showed them)
    assert [(s.uri, s.external) for s in client.shown_documents] == [
        ("https://github.com/asyncrace/asyncrace/blob/main/rules/ARC001.md", True)
    ]

    # the edit applied (unsaved), the finding is silenced
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=fixed)],
        )
    )
    assert list(await diagnostics_for(client, uri, lambda ds: len(ds) == 0)) == []
    # no finding, no action
    none = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=d.range,
            context=types.CodeActionContext(diagnostics=[]),
        )
    )
    assert not none


@pytest.mark.asyncio
async def test_hover_on_a_finding(client: LanguageClient, tmp_path: Path) -> None:
    path = project(tmp_path, {"mailer.py": BUGGY}) / "mailer.py"
    uri = open_doc(client, path, BUGGY)
    (d,) = await diagnostics_for(client, uri, lambda ds: len(ds) > 0)
    inside = types.Position(d.range.start.line, d.range.start.character + 3)
    got = await client.text_document_hover_async(
        types.HoverParams(text_document=types.TextDocumentIdentifier(uri=uri), position=inside)
    )
    assert got is not None and isinstance(got.contents, types.MarkupContent)
    assert got.contents.kind == types.MarkupKind.Markdown
    text = got.contents.value
    assert text.startswith(
        "**ARC001** `state-clobbered-across-await`: A per-call value stored on shared state is "
        "read back after an await."
    )
    assert d.message in text
    assert "(https://github.com/asyncrace/asyncrace/blob/main/rules/ARC001.md)" in text
    assert got.range == d.range
    elsewhere = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(0, 0)
        )
    )
    assert elsewhere is None


NOQA_UNUSED = BUGGY.replace(
    "    strings = await _load_catalog(locale)\n",
    "    strings = await _load_catalog(locale)  # noqa: ARC003\n",
)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def configured(lsp_client: LanguageClient) -> AsyncIterator[None]:
    """A client that sets the rule selection at initialize, as an editor's settings do."""
    params = initialize_params()
    params.initialization_options = {
        "asyncrace": {"extendSelect": ["ARC100"], "ignore": ["ARC001"], "strictness": "likely"}
    }
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_client_settings_at_initialize_and_later(
    configured: LanguageClient, tmp_path: Path
) -> None:
    client = configured
    path = project(tmp_path, {"mailer.py": NOQA_UNUSED}) / "mailer.py"
    uri = open_doc(client, path, NOQA_UNUSED)
    # ARC001 ignored, ARC100 (off by default) on: the unused noqa is the only finding
    (d,) = await diagnostics_for(client, uri, lambda ds: len(ds) > 0)
    assert d.code == "ARC100"
    assert d.range.start.line == 17
    # new settings from the editor: analyzed again with them
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"asyncrace": {"select": ["ARC001"]}})
    )
    (d,) = await diagnostics_for(client, uri, lambda ds: len(ds) > 0 and ds[0].code == "ARC001")
    assert d.range.start.line == 16
    # an unknown code: shown as an error, the settings stay as they were
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"select": ["ARC042"]})
    )

    async def shown() -> None:
        while not client.messages:
            await client.wait_for_notification(types.WINDOW_SHOW_MESSAGE)

    await asyncio.wait_for(shown(), TIMEOUT)
    assert client.messages[0].type == types.MessageType.Error
    assert "client settings ignored: select: unknown rule selector 'ARC042'" in (
        client.messages[0].message
    )


def test_client_settings_units() -> None:
    from asyncrace.config import CliOverrides

    assert lsp.ClientSettings.from_options(None) == lsp.ClientSettings()
    got = lsp.ClientSettings.from_options(
        {"select": "ARC001,ARC003", "extend-select": ["ARC100"], "strictness": "likely"}
    )
    assert got == lsp.ClientSettings(("ARC001", "ARC003"), (), ("ARC100",), "likely")
    assert got.overrides() == CliOverrides(
        select=("ARC001", "ARC003"), ignore=(), extend_select=("ARC100",), strictness="likely"
    )
    assert lsp.ClientSettings(strictness="likely").overrides() == CliOverrides(strictness="likely")
    with pytest.raises(ValueError, match="ignore: expected a list of rule codes"):
        lsp.ClientSettings.from_options({"ignore": 3})
    with pytest.raises(ValueError, match="strictness: expected one of proven, likely"):
        lsp.ClientSettings.from_options({"strictness": "high"})


NO_EVIDENCE = """import asyncio


class Cache:
    async def load(self, key):
        self.current = key
        await self.fetch()
        return self.current

    async def fetch(self):
        await asyncio.sleep(0)  # (an await that suspends: one that never does is no await)
"""


@pytest.mark.asyncio
async def test_client_strictness(client: LanguageClient, tmp_path: Path) -> None:
    """``strictness`` from the editor is the configuration's: ``likely`` reports a shape that
    nothing shows to run concurrently, which ``proven`` (the default) does not."""
    path = project(tmp_path, {"cache.py": NO_EVIDENCE}) / "cache.py"
    uri = open_doc(client, path, NO_EVIDENCE)
    assert list(await diagnostics_for(client, uri, lambda ds: True)) == []
    client.workspace_did_change_configuration(
        types.DidChangeConfigurationParams(settings={"asyncrace": {"strictness": "likely"}})
    )
    (d,) = await diagnostics_for(client, uri, lambda ds: len(ds) > 0)
    assert d.code == "ARC001" and "(likely:" in d.message
