"""Tests of the benchmark runner's pieces (no corpus, no peers needed). Run: pytest bench/tests"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import corpus
import run


def test_run_measured_times_and_memory(tmp_path: Path) -> None:
    # a parent that starts a child holding ~60 MB: the tree figure covers the child
    code = (
        "import subprocess, sys; "
        "subprocess.run([sys.executable, '-c', "
        '\'import time; b = bytearray(60 * 1024 * 1024); b[::4096] = b"x" * len(b[::4096]); '
        "time.sleep(0.5)'], check=True); print('done')"
    )
    s = run.run_measured(
        [sys.executable, "-c", code], tmp_path, tmp_path / "o", tmp_path / "e", timeout=60
    )
    assert s.exit_code == 0 and (tmp_path / "o").read_text().strip() == "done"
    assert s.wall_s >= 0.5
    assert s.max_rss_kb is not None and s.max_rss_kb > 60 * 1024
    assert s.tree_rss_kb is not None and s.tree_rss_kb >= s.max_rss_kb
    assert s.cpu_s is not None and s.cpu_s > 0


def test_run_measured_exit_code_and_timeout(tmp_path: Path) -> None:
    s = run.run_measured(
        [sys.executable, "-c", "raise SystemExit(3)"], tmp_path, tmp_path / "o", tmp_path / "e", 60
    )
    assert s.exit_code == 3
    s = run.run_measured(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        tmp_path,
        tmp_path / "o",
        tmp_path / "e",
        timeout=0.5,
    )
    assert s.exit_code != 0 and s.wall_s < 20


def test_details_parsers() -> None:
    f8 = (
        "a/b.py:3:1: ASYNC910 exit from async function\n"
        "a/c.py:9:5: ASYNC109 timeout parameter\n"
        "a/c.py:19:5: ASYNC109 timeout parameter\n"
        "0.5       seconds elapsed\n"
        "1234      total logical lines processed\n"
        "12        files\n"
    )
    info = run.flake8_details(f8, "")
    assert info == {"files": 12, "findings": 3, "by_code": {"ASYNC109": 2, "ASYNC910": 1}}
    ruff = json.dumps([{"code": "ASYNC109"}, {"code": "ASYNC109"}, {"code": "ASYNC110"}])
    assert run.ruff_details(ruff, "")["by_code"] == {"ASYNC109": 2, "ASYNC110": 1}
    ar = json.dumps([{"code": "ARC001"}, {"code": "ARC900"}])
    info = run.asyncrace_details(ar, "asyncrace: 7 files to check\n")
    assert info == {"findings": 1, "by_code": {"ARC001": 1}, "meta": {"ARC900": 1}, "files": 7}


def test_half_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus, "CORPUS", tmp_path)
    pkg = corpus.Package("p", "1", "sdist", "p-1.tar.gz", "0" * 64, "p")
    sizes = [10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5]
    for i, n in enumerate(sizes):
        path = pkg.corpus_dir / f"m{i:02}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n" * n)
    half = run.half_of([pkg])
    lines = sum(corpus.count_lines(p.read_bytes())[0] for p in half)
    assert abs(lines - sum(sizes) / 2) <= max(sizes) / 2


def test_update_doc_keeps_the_rest(tmp_path: Path) -> None:
    doc = tmp_path / "b.md"
    doc.write_text("# T\n\nintro\n\n<!-- B -->\nold\n<!-- E -->\n\ntail\n")
    corpus.update_doc(doc, "<!-- B -->\nnew\n<!-- E -->\n", "<!-- B -->", "<!-- E -->", "## S")
    assert doc.read_text() == "# T\n\nintro\n\n<!-- B -->\nnew\n<!-- E -->\n\ntail\n"
    other = tmp_path / "c.md"
    corpus.update_doc(other, "<!-- B -->\nx\n<!-- E -->", "<!-- B -->", "<!-- E -->", "## S")
    assert other.read_text() == "# Benchmarks\n\n## S\n\n<!-- B -->\nx\n<!-- E -->\n"
