"""Edit-to-report latency of the long-lived modes, against running the command again.

    python bench/latency.py watch [--packages anthropic] [--reps 5]
    python bench/latency.py lsp [--package anthropic-2.10.0/anthropic] [--reps 10]

``watch``: copies corpus packages (default: all of them) to a scratch tree, fills a scratch
cache with one run, starts ``asyncrace check TREE --watch`` (``-j 2``), and for each repetition
appends a comment to the file of median length and measures the time from the write to the
end of the next report on stdout. Then the same edit, checked by a new ``asyncrace check``
process each time (a one-file-changed run), timed as a whole process. Prints both medians.

``lsp``: copies one package (default: anthropic, 311 files) to a scratch directory, starts
``asyncrace server`` with pygls's own client, opens the package's ``_client.py``, and for each
repetition sends a ``didChange`` (a comment appended to the buffer) and measures the time to the
``publishDiagnostics`` of that version: what an editor user waits, debounce included.

Wall-clock figures: run them when the machine is quiet (``uptime``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
CORPUS = BENCH / ".cache" / "corpus"
PY = [sys.executable, "-m", "asyncrace"]


def _tree(tmp: Path, packages: list[str] | None) -> tuple[Path, Path]:
    tree = tmp / "tree"
    tree.mkdir()
    for d in sorted(CORPUS.iterdir()):
        if d.is_dir() and (not packages or any(d.name.startswith(p) for p in packages)):
            shutil.copytree(d, tree / d.name)
    (tree / "asyncrace.toml").write_text("")
    files = sorted(tree.rglob("*.py"), key=lambda p: (p.stat().st_size, str(p)))
    return tree, files[len(files) // 2]


def watch(packages: list[str] | None, reps: int) -> None:
    with tempfile.TemporaryDirectory(prefix="asyncrace-latency-") as tmp:
        tree, edited = _tree(Path(tmp), packages)
        cache = Path(tmp) / "cache"
        args = [*PY, "check", str(tree), "--cache-dir", str(cache), "-j", "2", "--exit-zero"]
        args += ["--output-format", "concise", "--config", str(tree / "asyncrace.toml")]
        subprocess.run(args, capture_output=True, check=False)  # fill the cache
        n = sum(1 for _ in tree.rglob("*.py"))
        print(f"{n} files; editing {edited.relative_to(tree)}")
        proc = subprocess.Popen(
            [*args, "--watch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        reports: list[float] = []
        ready = threading.Event()

        def read_out() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(("Found ", "All checks passed!")):
                    reports.append(time.perf_counter())

        def read_err() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "watching for changes" in line:
                    ready.set()

        threading.Thread(target=read_out, daemon=True).start()
        threading.Thread(target=read_err, daemon=True).start()
        try:
            if not ready.wait(300):
                raise SystemExit("the watch did not start")
            watch_times = []
            for i in range(reps):
                time.sleep(1.0)
                before = len(reports)
                t0 = time.perf_counter()
                with edited.open("a") as f:
                    f.write(f"# watch edit {i}\n")
                while len(reports) == before:
                    if time.perf_counter() - t0 > 120:
                        raise SystemExit("no report after an edit")
                    time.sleep(0.002)
                watch_times.append(reports[before] - t0)
        finally:
            proc.terminate()
            proc.wait(30)
        run_times = []
        for i in range(reps):
            with edited.open("a") as f:
                f.write(f"# run edit {i}\n")
            t0 = time.perf_counter()
            subprocess.run(args, capture_output=True, check=False)
            run_times.append(time.perf_counter() - t0)
        w, r = statistics.median(watch_times), statistics.median(run_times)
        print(
            f"--watch, edit to report: median {w:.3f} s ({', '.join(f'{t:.3f}' for t in watch_times)})"
        )
        print(
            f"a new run after the edit: median {r:.3f} s ({', '.join(f'{t:.3f}' for t in run_times)})"
        )
        print(f"ratio {w / r:.2f}")


async def _lsp(package: str, reps: int) -> None:
    from lsprotocol import types
    from pygls.lsp.client import LanguageClient

    with tempfile.TemporaryDirectory(prefix="asyncrace-lsp-latency-") as tmp:
        src = CORPUS / package
        root = Path(tmp) / "project"
        shutil.copytree(src, root / src.name)
        (root / "pyproject.toml").write_text("[tool.asyncrace]\n")
        n = sum(1 for _ in root.rglob("*.py"))
        doc = root / src.name / "_client.py"
        text = doc.read_text()
        uri = doc.as_uri()
        client = LanguageClient("latency", "1")
        published: dict[int, float] = {}

        @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def _diagnostics(params: types.PublishDiagnosticsParams) -> None:
            if params.uri == uri and params.version is not None:
                published[params.version] = time.perf_counter()

        await client.start_io(*PY, "server", cwd=str(root))
        await client.initialize_async(
            types.InitializeParams(capabilities=types.ClientCapabilities(), root_uri=root.as_uri())
        )
        client.initialized(types.InitializedParams())
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri, "python", 1, text)
            )
        )
        while 1 not in published:
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)
        times = []
        for i in range(reps):
            version = i + 2
            text += f"# edit {i}\n"
            t0 = time.perf_counter()
            client.text_document_did_change(
                types.DidChangeTextDocumentParams(
                    text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                    content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
                )
            )
            while version not in published:
                if time.perf_counter() - t0 > 60:
                    raise SystemExit("no diagnostics after an edit")
                await asyncio.sleep(0.002)
            times.append(published[version] - t0)
            await asyncio.sleep(0.5)
        await client.shutdown_async(None)
        client.exit(None)
        await client.stop()
        print(f"{n} files; {doc.relative_to(root)}")
        print(
            f"edit to diagnostics: median {statistics.median(times):.3f} s "
            f"(min {min(times):.3f}, max {max(times):.3f})"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    w = sub.add_parser("watch")
    w.add_argument("--packages", nargs="+")
    w.add_argument("--reps", type=int, default=5)
    lsp = sub.add_parser("lsp")
    lsp.add_argument("--package", default="anthropic-2.10.0/anthropic")
    lsp.add_argument("--reps", type=int, default=10)
    args = ap.parse_args(argv)
    os.environ.setdefault("NO_COLOR", "1")
    if args.what == "watch":
        watch(args.packages, args.reps)
    else:
        asyncio.run(_lsp(args.package, args.reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
