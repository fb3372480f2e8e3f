"""Tests of the corpus harness, offline, with a fake asyncrace. Run: pytest bench/tests"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import textwrap
from pathlib import Path, PurePosixPath

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import corpus

FAKE_ASYNCRACE = textwrap.dedent(
    '''
    """A stand-in for asyncrace: one ARC001 per file, ARC902 for boom.py, ARC900 for bad.py."""
    import json, os, sys
    args = sys.argv[1:]
    if args == ["--version"]:
        print("asyncrace, version 9.9-fake"); sys.exit(0)
    if args[:2] == ["check", "--help"]:
        print("--output-format --exit-zero --no-cache --cache-dir --jobs --config --verbose"); sys.exit(0)
    target = args[1]
    out = []
    for dirpath, _, files in sorted(os.walk(target)):
        for fn in sorted(files):
            path = os.path.abspath(os.path.join(dirpath, fn))
            loc = {"row": 3, "column": 5}
            code = {"boom.py": "ARC902", "bad.py": "ARC900"}.get(fn, "ARC001")
            out.append({"code": code, "name": "x", "message": f"msg {fn}", "filename": path,
                        "location": loc, "end_location": {"row": 3, "column": 9},
                        "related": [{"message": "the await", "filename": path,
                                     "location": {"row": 2, "column": 1},
                                     "end_location": {"row": 2, "column": 6}}]})
    if "--verbose" in args:
        print(f"asyncrace: {len(out)} files to check", file=sys.stderr)
    print(json.dumps(out))
    '''
)


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("CACHE", "DIST", "SRC", "CORPUS", "OUT"):
        monkeypatch.setattr(corpus, name, tmp_path / name.lower())
    return tmp_path


def make_sdist(path: Path, top: str, files: dict[str, str], evil: bool = False) -> str:
    with tarfile.open(path, "w:gz") as tf:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if evil:
            data = b"pwned"
            info = tarfile.TarInfo("../escape.py")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
            link = tarfile.TarInfo(f"{top}/pkg/link.py")
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/passwd"
            tf.addfile(link)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_glob_to_regex() -> None:
    r = corpus.glob_to_regex("types/**")
    assert r.match("types/a.py") and r.match("types/x/y.py")
    assert not r.match("resources/types/a.py")
    r = corpus.glob_to_regex("**/test_*.py")
    assert r.match("test_a.py") and r.match("a/b/test_c.py") and not r.match("a/b/c.py")
    r = corpus.glob_to_regex("*.py")
    assert r.match("a.py") and not r.match("a/b.py")


def test_count_lines() -> None:
    assert corpus.count_lines(b"") == (0, 0)
    assert corpus.count_lines(b"a\n\n  \nb") == (4, 2)
    assert corpus.count_lines(b"a\r\nb\rc\n") == (3, 3)


def test_select_files(tmp_path: Path) -> None:
    for rel in ("a.py", "b.txt", "types/t.py", "sub/c.py", "sub/types/d.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    got = corpus.select_files(tmp_path, ["types/**"])
    assert got == [PurePosixPath(p) for p in ("a.py", "sub/c.py", "sub/types/d.py")]


def test_load_corpus_real_file() -> None:
    packages = corpus.load_corpus()
    assert len(packages) >= 15
    assert all(p.kind in ("sdist", "wheel") and len(p.sha256) == 64 for p in packages)
    assert len({p.name for p in packages}) == len(packages)


def test_fetch_extract_and_hash(tree: Path) -> None:
    corpus.DIST.mkdir(parents=True)
    files = {
        "PKG-INFO": "",
        "pkg/__init__.py": "x = 1\n\ny = 2\n",
        "pkg/test/t.py": "assert 1\n",
        "tests/test_x.py": "pass\n",
    }
    sha = make_sdist(corpus.DIST / "pkg-1.0.tar.gz", "pkg-1.0", files, evil=True)
    pkg = corpus.Package("pkg", "1.0", "sdist", "pkg-1.0.tar.gz", sha, "pkg", ("test/**",))
    count = corpus.ensure(pkg, offline=True)
    assert (count.files, count.lines, count.nonempty) == (1, 3, 2)
    assert (corpus.SRC / "pkg-1.0" / "tests" / "test_x.py").is_file()  # full extraction
    assert not (tree / "escape.py").exists() and not (corpus.SRC / "escape.py").exists()
    assert not (corpus.SRC / "pkg-1.0" / "pkg" / "link.py").exists()
    assert corpus.select_files(pkg.corpus_dir) == [PurePosixPath("__init__.py")]
    # a second run reuses everything
    assert corpus.ensure(pkg, offline=True).lines == 3
    # a wrong hash in the cache: refetch, which --offline forbids
    bad = corpus.Package("pkg", "1.0", "sdist", "pkg-1.0.tar.gz", "0" * 64, "pkg")
    with pytest.raises(corpus.FetchError, match="offline"):
        corpus.ensure(bad, offline=True)


def test_source_is_the_archive_top(tree: Path) -> None:
    """`source = "."`: an application made of several top-level packages; the corpus
    directory is the package's own directory in the corpus tree, excludes apply from the top."""
    corpus.DIST.mkdir(parents=True)
    files = {
        "PKG-INFO": "",
        "setup.py": "from setuptools import setup\n",
        "app.py": "x = 1\n",
        "gateway/run.py": "async def f():\n    pass\n",
        "tests/test_run.py": "pass\n",
        "skills/tool/script.py": "pass\n",
    }
    sha = make_sdist(corpus.DIST / "app-2.0.tar.gz", "app-2.0", files)
    excl = ("tests/**", "skills/**", "setup.py")
    pkg = corpus.Package("app", "2.0", "sdist", "app-2.0.tar.gz", sha, ".", excl)
    assert pkg.corpus_dir == pkg.corpus_root == corpus.CORPUS / "app-2.0"
    count = corpus.ensure(pkg, offline=True)
    assert (count.files, count.lines) == (2, 3)
    got = corpus.select_files(pkg.corpus_dir)
    assert got == [PurePosixPath("app.py"), PurePosixPath("gateway/run.py")]
    assert corpus.ensure(pkg, offline=True).files == 2  # the stamp is not counted


def test_check_report_and_sample(
    tree: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus.DIST.mkdir(parents=True)
    src = {"pkg/__init__.py": "import asyncio\n\nasync def f():\n    await g()\n"}
    src["pkg/boom.py"] = "x = 1\n"
    sha = make_sdist(corpus.DIST / "pkg-1.0.tar.gz", "pkg-1.0", src)
    pkgs = [corpus.Package("pkg", "1.0", "sdist", "pkg-1.0.tar.gz", sha, "pkg")]
    monkeypatch.setattr(corpus, "load_corpus", lambda path=None: pkgs)
    fake = tree / "fake_asyncrace.py"
    fake.write_text(FAKE_ASYNCRACE)
    rc = corpus.main(
        ["check", "--offline", "--jobs", "2", "--asyncrace", f"{sys.executable} {fake}"]
    )
    out = capsys.readouterr()
    assert rc == 1  # an internal error is reported loudly and fails the run
    assert "INTERNAL ERRORS" in out.err and "pkg-1.0/pkg/boom.py:3" in out.err
    report = json.loads((corpus.OUT / "report.json").read_text())
    assert report["totals"]["findings"] == {"ARC001": 1}
    assert report["totals"]["meta"] == {"ARC902": 1}
    assert report["findings_per_10k_lines"]["ARC001"] == pytest.approx(10_000 / 5, rel=1e-3)
    assert report["missing_options"] == []
    assert report["errors"] == []  # the file count asyncrace reports matches the corpus
    assert "corpus" not in report  # the main corpus's report is as it was before --corpus
    assert report["command"] == "python bench/corpus.py check --jobs 2"
    p = report["packages"][0]
    assert "--jobs" in p["argv"] and "--no-cache" in p["argv"] and "--exit-zero" in p["argv"]
    md = (corpus.OUT / "report.md").read_text()
    assert "INTERNAL ERRORS" in md and "| pkg 1.0 | 2 | 5 |" in md
    assert md.startswith("# asyncrace on the real-code corpus\n")
    assert (corpus.CORPUS / "asyncrace.toml").is_file()
    assert f"--config {corpus.CORPUS / 'asyncrace.toml'}" in " ".join(p["argv"])
    lines = (corpus.OUT / "findings.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    assert rec["file"] == "pkg-1.0/pkg/__init__.py" and rec["line"] == 3
    assert rec["related"] == [
        {"message": "the await", "file": "pkg-1.0/pkg/__init__.py", "line": 2, "column": 1}
    ]
    assert corpus.main(["sample", "--n", "5", "--seed", "3", "--context", "1"]) == 0
    text = capsys.readouterr().out
    assert "seed=3 n=1 of 1" in text
    assert "   P>     3 | async def f():" in text and "         4 |     await g()" in text
    assert "   1>     2 | " in text and "   1: the await (pkg-1.0/pkg/__init__.py:2)" in text
    assert text.count("--- pkg-1.0/pkg/__init__.py") == 1  # one merged window


def test_an_asyncrace_that_does_not_start_stops_the_run() -> None:
    """A crash of ``asyncrace check --help`` (a missing dependency, the wrong interpreter) must
    not be measured as a run with no findings."""
    import sys

    with pytest.raises(SystemExit, match="asyncrace does not start"):
        corpus.check_options([sys.executable, "-c", "import sys; sys.exit('no pathspec')"])
    with pytest.raises(SystemExit, match="asyncrace does not start"):
        corpus.check_options(["/nonexistent/asyncrace"])


# --------------------------------------------------------------------------- --corpus FILE


def write_list(path: Path, sha: str, name: str = "pkg") -> Path:
    path.write_text(
        textwrap.dedent(
            f"""
            [[package]]
            name = "{name}"
            version = "1.0"
            kind = "sdist"
            file = "{name}-1.0.tar.gz"
            sha256 = "{sha}"
            source = "{name}"
            """
        )
    )
    return path


def test_layout_for(tree: Path, tmp_path: Path) -> None:
    main = corpus.layout_for()
    assert main.main and main.toml == corpus.CORPUS_TOML
    assert (main.dist, main.src, main.corpus, main.out) == (
        corpus.DIST,
        corpus.SRC,
        corpus.CORPUS,
        corpus.OUT,
    )
    assert corpus.layout_for(corpus.CORPUS_TOML) == main  # named explicitly: still the main one
    held = corpus.layout_for(tmp_path / "heldout.toml")
    assert not held.main
    assert held.dist == corpus.CACHE / "heldout" / "dist"
    assert held.src == corpus.CACHE / "heldout" / "src"
    assert held.corpus == corpus.CACHE / "heldout" / "corpus"
    assert held.out == corpus.OUT / "heldout"
    # a stem that would land on the main corpus's (or run.py's) directories is refused
    for stem in ("corpus", "dist", "src", "snapshots", "bench", "run", ".hidden"):
        with pytest.raises(SystemExit, match="cannot name a cache directory"):
            corpus.layout_for(tmp_path / f"{stem}.toml")


def test_heldout_list_is_disjoint_from_the_corpus() -> None:
    """bench/heldout.toml loads, keeps its own directories and shares no package with the
    corpus the rules were tuned on."""
    held = corpus.load_corpus(corpus.BENCH / "heldout.toml")
    assert {p.name for p in held} == {"slack-bolt", "matrix-nio", "telethon", "aio-pika"}
    assert all(p.layout is not None and not p.layout.main for p in held)
    assert all(p.corpus_root.parent == corpus.CACHE / "heldout" / "corpus" for p in held)
    assert not {p.name for p in held} & {p.name for p in corpus.load_corpus()}
    assert all(p.layout is None for p in corpus.load_corpus())


def test_another_corpus_is_kept_apart(
    tree: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """fetch, check and sample with --corpus use bench/.cache/<stem>/ and bench/out/<stem>/;
    the main corpus's tree, outputs and docs section are not touched."""
    doc = tree / "benchmarks.md"
    doc.write_text("# Benchmarks\n")
    monkeypatch.setattr(corpus, "DOC", doc)
    corpus.OUT.mkdir(parents=True)
    for name in ("findings.jsonl", "report.json", "report.md"):
        (corpus.OUT / name).write_text("main corpus output\n")
    layout = corpus.layout_for(tree / "held.toml")
    layout.dist.mkdir(parents=True)
    src = {"pkg/__init__.py": "import asyncio\n\nasync def f():\n    await g()\n"}
    sha = make_sdist(layout.dist / "pkg-1.0.tar.gz", "pkg-1.0", src)
    toml = write_list(tree / "held.toml", sha)

    assert corpus.main(["fetch", "--offline", "--corpus", str(toml)]) == 0
    out = capsys.readouterr().out
    assert "1 packages ->" in out and "pkg-1.0" in out
    assert (layout.corpus / "pkg-1.0" / "pkg" / "__init__.py").is_file()
    assert (layout.src / "pkg-1.0" / "pkg" / "__init__.py").is_file()
    assert (layout.corpus / "asyncrace.toml").is_file()
    assert not corpus.CORPUS.exists() and not corpus.SRC.exists() and not corpus.DIST.exists()

    fake = tree / "fake_asyncrace.py"
    fake.write_text(FAKE_ASYNCRACE)
    asyncrace = f"{sys.executable} {fake}"
    with pytest.raises(SystemExit, match="--update-doc"):
        corpus.main(
            ["check", "--offline", "--corpus", str(toml), "--asyncrace", asyncrace, "--update-doc"]
        )
    assert doc.read_text() == "# Benchmarks\n"
    assert not layout.out.exists()  # refused before anything ran

    rc = corpus.main(
        ["check", "--offline", "--corpus", str(toml), "--jobs", "2", "--asyncrace", asyncrace]
    )
    assert rc == 0, capsys.readouterr()
    capsys.readouterr()
    for name in ("findings.jsonl", "report.json", "report.md"):
        assert (corpus.OUT / name).read_text() == "main corpus output\n"
    assert not corpus.CORPUS.exists()
    report = json.loads((layout.out / "report.json").read_text())
    assert report["totals"]["findings"] == {"ARC001": 1}
    assert report["corpus"] == str(toml)  # outside the repository: shown as it is
    assert report["command"] == f"python bench/corpus.py check --corpus {toml} --jobs 2"
    argv = report["packages"][0]["argv"]
    assert argv[argv.index("--config") + 1] == str(layout.corpus / "asyncrace.toml")
    md = (layout.out / "report.md").read_text()
    assert md.startswith(f"# asyncrace on the pinned list `{toml}`")
    assert f"reproduce: `python bench/corpus.py check --corpus {toml} --jobs 2`" in md
    rec = json.loads((layout.out / "findings.jsonl").read_text().splitlines()[0])
    assert rec["file"] == "pkg-1.0/pkg/__init__.py"  # relative to this list's corpus tree
    assert rec["related"][0]["file"] == "pkg-1.0/pkg/__init__.py"

    assert corpus.main(["sample", "--corpus", str(toml), "--n", "5", "--context", "1"]) == 0
    text = capsys.readouterr().out
    assert f"# reproduce: python bench/corpus.py sample --corpus {toml} --n 5" in text
    assert "   P>     3 | async def f():" in text  # the source is read from this list's tree
    assert doc.read_text() == "# Benchmarks\n"


def test_sample_of_another_corpus_needs_its_check(tree: Path) -> None:
    toml = write_list(tree / "held.toml", "0" * 64)
    with pytest.raises(SystemExit, match="check --corpus"):
        corpus.main(["sample", "--corpus", str(toml)])


def test_download_goes_to_the_lists_dist(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pip is asked for the package's own sdist (its build backend may be a wheel) and the file
    lands in the dist directory of the list the package comes from."""
    data = b"not really a tarball"
    sha = hashlib.sha256(data).hexdigest()
    toml = write_list(tree / "held.toml", sha, name="aio-thing")
    (pkg,) = corpus.load_corpus(toml)
    calls: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: object) -> object:
        calls.append(cmd)
        dest = Path(cmd[cmd.index("--dest") + 1])
        (dest / "aio_thing-1.0.tar.gz").write_bytes(data)
        return type("Proc", (), {"returncode": 0, "stderr": ""})()

    monkeypatch.setattr(corpus.subprocess, "run", fake_run)
    got = corpus.download(pkg)
    assert got == corpus.CACHE / "held" / "dist" / "aio-thing-1.0.tar.gz"
    assert got.read_bytes() == data and not corpus.DIST.exists()
    (cmd,) = calls
    assert cmd[cmd.index("--no-binary") + 1] == "aio-thing" and cmd[-1] == "aio-thing==1.0"
    assert corpus.download(pkg) == got and len(calls) == 1  # cached, hash checked: no pip
