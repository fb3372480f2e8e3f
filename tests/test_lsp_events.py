"""The language server keeps what it knows of a document's context between keystrokes (the
walk of its package, the other files' facts and digests) and keeps it true with the operating
system's file events: a file of the context changed, removed or added on disk by another
program (a ``git checkout``, a formatter) analyzes the open documents again, with no message
from the editor. A real LSP client (pytest-lsp) drives ``python -m asyncrace server``."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

pytest_lsp = pytest.importorskip("pytest_lsp")
pytest.importorskip("watchfiles")
from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

SEEDS = Path(__file__).parent / "fixtures" / "seeds"
SERVER = [sys.executable, "-m", "asyncrace", "server"]
TIMEOUT = 60.0


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def client(lsp_client: LanguageClient) -> AsyncIterator[None]:
    caps = client_capabilities("visual-studio-code")
    await lsp_client.initialize_session(types.InitializeParams(capabilities=caps))
    yield
    await lsp_client.shutdown_session()


async def published(
    client: LanguageClient, uri: str, until: Callable[[Sequence[types.Diagnostic]], bool]
) -> Sequence[types.Diagnostic]:
    async def wait() -> Sequence[types.Diagnostic]:
        while True:
            got = client.diagnostics.get(uri)
            if got is not None and until(got):
                return got
            await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)

    return await asyncio.wait_for(wait(), TIMEOUT)


@pytest.mark.asyncio
async def test_context_files_changed_on_disk_are_seen(
    client: LanguageClient, tmp_path: Path
) -> None:
    """marsys: ``RealRuntime.step`` is flagged because orchestrator.py fans it out. The fan-out
    is edited away on disk, the file is removed, and put back: each time the open document's
    diagnostics follow, from file events alone."""
    shutil.copytree(SEEDS / "marsys_buggy", tmp_path / "marsys_buggy")
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    doc = tmp_path / "marsys_buggy" / "real_runtime.py"
    orchestrator = tmp_path / "marsys_buggy" / "orchestrator.py"
    original = orchestrator.read_text()
    uri = doc.as_uri()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=doc.read_text()
            )
        )
    )
    (d,) = await published(client, uri, lambda ds: len(ds) > 0)
    assert d.code == "ARC001"
    await asyncio.sleep(0.5)  # (the server's watcher starts after the first analysis)

    # another program edits the context in place: one task at a time
    sequential = original.replace(
        "tasks = [asyncio.create_task(self.runtime.step(branch)) for branch in batch]\n"
        "            for branch, result in zip(batch, await asyncio.gather(*tasks)):\n"
        "                self._interpret(branch, result)",
        "for branch in batch:\n"
        "                self._interpret(branch, await self.runtime.step(branch))",
    )
    assert sequential != original
    orchestrator.write_text(sequential)
    await published(client, uri, lambda ds: len(ds) == 0)

    orchestrator.write_text(original)
    await published(client, uri, lambda ds: len(ds) == 1)

    # the file is removed: its fan-out with it
    orchestrator.unlink()
    await published(client, uri, lambda ds: len(ds) == 0)

    # and added again (a new file, which only a new walk finds)
    orchestrator.write_text(original)
    (again,) = await published(client, uri, lambda ds: len(ds) == 1)
    assert again.range == d.range
