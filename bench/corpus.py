"""The real-code corpus: fetch it, run asyncrace over it, sample what it finds.

    python bench/corpus.py fetch                  # download (pinned, hashed), extract, count
    python bench/corpus.py check [--jobs N] [--asyncrace CMD]
    python bench/corpus.py sample --n 150 --seed 1

``fetch`` downloads every package of ``bench/corpus.toml`` with ``pip download`` into
``bench/.cache/dist/`` (a file already there whose sha256 matches is reused, so re-runs work
offline), extracts it to ``bench/.cache/src/<name>-<version>/`` and copies the files that make
up the corpus (``source`` minus ``exclude``) to ``bench/.cache/corpus/<name>-<version>/<pkg>/``:
the one tree every tool is run on. ``check`` runs asyncrace on each package directory of that
tree and writes ``bench/out/report.json``, ``bench/out/report.md`` and
``bench/out/findings.jsonl``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BENCH = Path(__file__).resolve().parent
CORPUS_TOML = BENCH / "corpus.toml"
CACHE = BENCH / ".cache"
DIST = CACHE / "dist"
SRC = CACHE / "src"
CORPUS = CACHE / "corpus"
OUT = BENCH / "out"

META_CODES = {
    "ARC900": "syntax error",
    "ARC901": "unreadable file",
    "ARC902": "internal error",
}
# The stamp that says a corpus directory is complete and built from this configuration.
STAMP = ".corpus-stamp.json"


# --------------------------------------------------------------------------- the corpus file


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    kind: str  # "sdist" or "wheel"
    file: str  # the file name PyPI serves
    sha256: str
    source: str  # path of the package source inside the extracted archive (POSIX)
    exclude: tuple[str, ...] = ()  # globs relative to ``source`` (``**`` crosses directories)
    category: str = ""

    @property
    def slug(self) -> str:
        return f"{self.name}-{self.version}"

    @property
    def src_dir(self) -> Path:
        """Where the archive is extracted (its top directory stripped)."""
        return SRC / self.slug

    @property
    def corpus_root(self) -> Path:
        return CORPUS / self.slug

    @property
    def corpus_dir(self) -> Path:
        """The package directory (``<pkg>/``) in the corpus tree: what tools are run on."""
        return self.corpus_root / PurePosixPath(self.source).name

    def stamp(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256,
            "source": self.source,
            "exclude": list(self.exclude),
        }


def load_corpus(path: Path | None = None) -> list[Package]:
    path = CORPUS_TOML if path is None else path
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    packages: list[Package] = []
    seen: set[str] = set()
    for i, entry in enumerate(data.get("package", [])):
        try:
            pkg = Package(
                name=str(entry["name"]),
                version=str(entry["version"]),
                kind=str(entry.get("kind", "sdist")),
                file=str(entry["file"]),
                sha256=str(entry["sha256"]).lower(),
                source=str(entry["source"]).strip("/"),
                exclude=tuple(str(e) for e in entry.get("exclude", [])),
                category=str(entry.get("category", "")),
            )
        except KeyError as exc:
            raise SystemExit(f"{path}: package #{i + 1}: missing key {exc}") from None
        if pkg.kind not in ("sdist", "wheel"):
            raise SystemExit(f"{path}: {pkg.slug}: kind must be sdist or wheel, not {pkg.kind!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", pkg.sha256):
            raise SystemExit(f"{path}: {pkg.slug}: sha256 is not 64 hex digits")
        if pkg.slug in seen:
            raise SystemExit(f"{path}: {pkg.slug} listed twice")
        seen.add(pkg.slug)
        packages.append(pkg)
    if not packages:
        raise SystemExit(f"{path}: no [[package]] entries")
    return packages


def select_packages(packages: list[Package], names: Sequence[str] | None) -> list[Package]:
    if not names:
        return packages
    by_name = {p.name: p for p in packages}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise SystemExit(f"unknown package(s): {', '.join(missing)} (see {CORPUS_TOML})")
    return [by_name[n] for n in names]


# --------------------------------------------------------------------------- globs and counting


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """A glob over POSIX relative paths: ``**`` matches across directories, ``*`` and ``?``
    within one path component. ``dir/**`` matches everything below ``dir``."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


def select_files(root: Path, exclude: Iterable[str] = ()) -> list[PurePosixPath]:
    """The ``*.py`` files below ``root`` (relative POSIX paths, sorted) not matched by
    ``exclude``. Symbolic links are not followed."""
    patterns = [glob_to_regex(p) for p in exclude]
    found: list[PurePosixPath] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if not fn.endswith(".py"):
                continue
            full = Path(dirpath, fn)
            if full.is_symlink() or not full.is_file():
                continue
            rel = PurePosixPath(full.relative_to(root).as_posix())
            if any(p.match(str(rel)) for p in patterns):
                continue
            found.append(rel)
    return sorted(found)


@dataclass
class LineCount:
    files: int = 0
    lines: int = 0  # physical lines
    nonempty: int = 0  # lines with something other than whitespace

    def add(self, other: LineCount) -> None:
        self.files += other.files
        self.lines += other.lines
        self.nonempty += other.nonempty


def count_lines(data: bytes) -> tuple[int, int]:
    """(physical lines, non-empty lines). A physical line ends in ``\\n``, ``\\r\\n`` or ``\\r``;
    a last line without a newline counts too (``wc -l`` would miss it)."""
    lines = data.splitlines()
    return len(lines), sum(1 for line in lines if line.strip())


def count_tree(root: Path) -> LineCount:
    total = LineCount()
    for rel in select_files(root):
        lines, nonempty = count_lines((root / rel).read_bytes())
        total.add(LineCount(1, lines, nonempty))
    return total


# --------------------------------------------------------------------------- fetch and extract


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FetchError(Exception):
    pass


def download(pkg: Package, dist: Path | None = None, *, offline: bool = False) -> Path:
    """The verified archive of ``pkg`` in ``dist``, downloaded with pip when missing or when
    the file there has another hash."""
    dist = DIST if dist is None else dist
    dist.mkdir(parents=True, exist_ok=True)
    target = dist / pkg.file
    if target.is_file():
        actual = sha256_of(target)
        if actual == pkg.sha256:
            return target
        print(
            f"  {target.name}: cached file has sha256 {actual}, expected {pkg.sha256}; "
            "downloading again",
            file=sys.stderr,
        )
        target.unlink()
    if offline:
        raise FetchError(f"{pkg.slug}: {target} is not in the cache and --offline was given")
    with tempfile.TemporaryDirectory(prefix=f".tmp-{pkg.slug}-", dir=dist) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--disable-pip-version-check",
            "--dest",
            tmp,
        ]
        if pkg.kind == "sdist":
            cmd += ["--no-binary", ":all:"]
        else:
            cmd += ["--only-binary", ":all:"]
        cmd.append(f"{pkg.name}=={pkg.version}")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = [p for p in Path(tmp).iterdir() if p.is_file()]
        if proc.returncode != 0 or not got:
            raise FetchError(
                f"{pkg.slug}: pip download failed ({proc.returncode}):\n{proc.stderr.strip()}"
            )
        if len(got) != 1:
            raise FetchError(f"{pkg.slug}: pip download gave {len(got)} files: {got}")
        downloaded = got[0]
        actual = sha256_of(downloaded)
        if actual != pkg.sha256:
            raise FetchError(
                f"{pkg.slug}: {downloaded.name} has sha256 {actual}, corpus.toml pins "
                f"{pkg.sha256}: refusing it"
            )
        if downloaded.name != pkg.file:
            print(
                f"  note: {pkg.slug}: PyPI served {downloaded.name}, corpus.toml says "
                f"{pkg.file} (same hash; stored as {pkg.file})",
                file=sys.stderr,
            )
        os.replace(downloaded, target)
    return target


def _strip_top(name: str) -> str | None:
    """The member name with its first component removed (None for the top itself)."""
    parts = PurePosixPath(name).parts
    return None if len(parts) <= 1 else str(PurePosixPath(*parts[1:]))


def _safe_rel(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and name not in ("", ".")


def extract(archive: Path, dest: Path, kind: str) -> None:
    """Extract ``archive`` into ``dest`` (replaced). An sdist's single top directory is
    stripped; a wheel is extracted as it is. Only regular files and directories are written;
    links, devices and paths leaving ``dest`` are skipped."""
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if kind == "wheel" or archive.suffix == ".zip":
        strip = kind != "wheel"
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = _strip_top(info.filename) if strip else info.filename
                if name is None or not _safe_rel(name) or info.is_dir():
                    continue
                out = tmp / name
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                name = _strip_top(member.name)
                if name is None or not _safe_rel(name):
                    continue
                if member.isdir():
                    (tmp / name).mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    out = tmp / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(member)
                    assert src is not None
                    with src, out.open("wb") as dst:
                        shutil.copyfileobj(src, dst)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


def _stamp_ok(directory: Path, stamp: dict[str, Any]) -> bool:
    try:
        return json.loads((directory / STAMP).read_text()) == stamp
    except (OSError, ValueError):
        return False


def build_corpus_dir(pkg: Package) -> LineCount:
    """Copy the corpus files of ``pkg`` from its extracted sources into the corpus tree."""
    source = pkg.src_dir / pkg.source
    if not source.is_dir():
        raise FetchError(f"{pkg.slug}: source directory {pkg.source!r} not in the archive")
    files = select_files(source, pkg.exclude)
    if not files:
        raise FetchError(f"{pkg.slug}: no .py files under {pkg.source!r}")
    root = pkg.corpus_root
    shutil.rmtree(root, ignore_errors=True)
    count = LineCount()
    for rel in files:
        src = source / rel
        dst = pkg.corpus_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        lines, nonempty = count_lines(src.read_bytes())
        count.add(LineCount(1, lines, nonempty))
    (root / STAMP).write_text(json.dumps(pkg.stamp()))
    return count


def write_corpus_config() -> None:
    """An asyncrace.toml at the corpus root, so that asyncrace neither picks up a configuration
    from the repository around it nor goes looking further (defaults apply)."""
    CORPUS.mkdir(parents=True, exist_ok=True)
    cfg = CORPUS / "asyncrace.toml"
    text = "# written by bench/corpus.py: the corpus is checked with the default settings\n"
    if not cfg.is_file() or cfg.read_text() != text:
        cfg.write_text(text)


def ensure(pkg: Package, *, offline: bool = False) -> LineCount:
    """Make sure ``pkg`` is downloaded, extracted and in the corpus tree; its line count."""
    archive = download(pkg, offline=offline)
    src_stamp = {"sha256": pkg.sha256}
    if not _stamp_ok(pkg.src_dir, src_stamp):
        extract(archive, pkg.src_dir, pkg.kind)
        (pkg.src_dir / STAMP).write_text(json.dumps(src_stamp))
    if not _stamp_ok(pkg.corpus_root, pkg.stamp()):
        return build_corpus_dir(pkg)
    return count_tree(pkg.corpus_dir)


def ensure_all(
    packages: Sequence[Package], *, offline: bool = False, quiet: bool = False
) -> dict[str, LineCount]:
    write_corpus_config()
    counts: dict[str, LineCount] = {}
    failures: list[str] = []
    for pkg in packages:
        try:
            counts[pkg.slug] = ensure(pkg, offline=offline)
        except FetchError as exc:
            failures.append(str(exc))
            print(f"error: {exc}", file=sys.stderr)
            continue
        if not quiet:
            c = counts[pkg.slug]
            print(
                f"  {pkg.slug:<28} {c.files:>6} files {c.lines:>9,} lines "
                f"{c.nonempty:>9,} non-empty",
                flush=True,
            )
    if failures:
        raise SystemExit(f"{len(failures)} package(s) could not be fetched")
    return counts


def corpus_files(packages: Sequence[Package]) -> list[Path]:
    """Every corpus file (absolute), in package order."""
    files: list[Path] = []
    for pkg in packages:
        files.extend(pkg.corpus_dir / rel for rel in select_files(pkg.corpus_dir))
    return files


def cmd_fetch(args: argparse.Namespace) -> int:
    packages = select_packages(load_corpus(), args.packages)
    print(f"corpus: {len(packages)} packages -> {CORPUS.relative_to(BENCH.parent)}/")
    counts = ensure_all(packages, offline=args.offline)
    total = LineCount()
    for c in counts.values():
        total.add(c)
    print(
        f"  {'total':<28} {total.files:>6} files {total.lines:>9,} lines "
        f"{total.nonempty:>9,} non-empty"
    )
    print("(lines = physical lines; non-empty = lines with more than whitespace)")
    return 0


# --------------------------------------------------------------------------- asyncrace runs


def asyncrace_command(spec: str | None) -> list[str]:
    return shlex.split(spec) if spec else [sys.executable, "-m", "asyncrace"]


def check_options(cmd: Sequence[str]) -> set[str]:
    """The long options ``asyncrace check --help`` mentions (empty when it cannot run)."""
    try:
        proc = subprocess.run(
            [*cmd, "check", "--help"], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired):
        return set()
    if proc.returncode != 0:
        return set()
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", proc.stdout))


def asyncrace_version(cmd: Sequence[str]) -> str:
    try:
        proc = subprocess.run([*cmd, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (proc.stdout.strip() or proc.stderr.strip() or "unknown").splitlines()[0]


def check_argv(
    cmd: Sequence[str],
    target: Path,
    options: set[str],
    *,
    jobs: int | None,
    cache_dir: Path | None = None,
) -> list[str]:
    """The command line that checks ``target`` with JSON output, using only the options this
    asyncrace has (all of them are expected; the absence of one is tolerated and recorded)."""
    argv = [*cmd, "check", str(target), "--output-format", "json"]
    if "--exit-zero" in options:
        argv.append("--exit-zero")
    if cache_dir is None:
        if "--no-cache" in options:
            argv.append("--no-cache")
    elif "--cache-dir" in options:
        argv += ["--cache-dir", str(cache_dir)]
    if jobs is not None and "--jobs" in options:
        argv += ["--jobs", str(jobs)]
    if "--config" in options:  # the corpus root's settings file (defaults), never the repo's
        argv += ["--config", str(CORPUS / "asyncrace.toml")]
    return argv


@dataclass
class PackageResult:
    name: str
    version: str
    files: int
    lines: int
    nonempty: int
    wall_s: float
    exit_code: int
    argv: list[str]
    findings: dict[str, int] = field(default_factory=dict)
    meta: dict[str, int] = field(default_factory=dict)
    meta_list: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def rel_to_corpus(filename: str) -> str:
    p = Path(filename)
    if not p.is_absolute():
        p = (CORPUS / p).resolve()
    try:
        return p.relative_to(CORPUS.resolve()).as_posix()
    except ValueError:
        return filename


def _loc(d: dict[str, Any], key: str) -> tuple[int | None, int | None]:
    loc = d.get(key) or {}
    return loc.get("row"), loc.get("column")


def flatten(item: dict[str, Any], package: str) -> dict[str, Any]:
    """One JSON diagnostic as a findings.jsonl record."""
    line, col = _loc(item, "location")
    end_line, end_col = _loc(item, "end_location")
    related = []
    for r in item.get("related") or []:
        rline, rcol = _loc(r, "location")
        related.append(
            {
                "message": r.get("message", ""),
                "file": rel_to_corpus(str(r.get("filename", ""))),
                "line": rline,
                "column": rcol,
            }
        )
    return {
        "package": package,
        "code": item.get("code"),
        "name": item.get("name"),
        "file": rel_to_corpus(str(item.get("filename", ""))),
        "line": line,
        "column": col,
        "end_line": end_line,
        "end_column": end_col,
        "message": item.get("message", ""),
        "related": related,
    }


def parse_output(stdout: str) -> list[dict[str, Any]]:
    data = json.loads(stdout) if stdout.strip() else []
    if not isinstance(data, list):
        raise ValueError("asyncrace JSON output is not a list")
    return [d for d in data if isinstance(d, dict)]


def run_package(
    pkg: Package, count: LineCount, cmd: Sequence[str], options: set[str], jobs: int | None
) -> tuple[PackageResult, list[dict[str, Any]]]:
    argv = check_argv(cmd, pkg.corpus_dir, options, jobs=jobs)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=CORPUS)
    wall = time.perf_counter() - t0
    res = PackageResult(
        pkg.name,
        pkg.version,
        count.files,
        count.lines,
        count.nonempty,
        round(wall, 3),
        proc.returncode,
        argv,
    )
    records: list[dict[str, Any]] = []
    try:
        items = parse_output(proc.stdout)
    except ValueError as exc:
        res.error = (
            f"unreadable output ({exc}); exit {proc.returncode}; stderr: "
            + (proc.stderr.strip()[-2000:])
        )
        return res, records
    if proc.returncode not in (0, 1) or (proc.returncode != 0 and "--exit-zero" in argv):
        res.error = f"exit {proc.returncode}; stderr: {proc.stderr.strip()[-2000:]}"
    findings: Counter[str] = Counter()
    meta: Counter[str] = Counter()
    for item in items:
        rec = flatten(item, pkg.slug)
        code = str(rec["code"])
        if code in META_CODES:
            meta[code] += 1
            res.meta_list.append(rec)
        else:
            findings[code] += 1
            records.append(rec)
    res.findings = dict(sorted(findings.items()))
    res.meta = dict(sorted(meta.items()))
    return res, records


def per_10k(findings: dict[str, int], lines: int) -> dict[str, float]:
    return {c: round(n * 10_000 / lines, 3) for c, n in sorted(findings.items())} if lines else {}


def build_report(
    results: Sequence[PackageResult],
    *,
    asyncrace: str,
    version: str,
    options: set[str],
    jobs: int | None,
) -> dict[str, Any]:
    totals_findings: Counter[str] = Counter()
    totals_meta: Counter[str] = Counter()
    files = lines = nonempty = 0
    wall = 0.0
    for r in results:
        totals_findings.update(r.findings)
        totals_meta.update(r.meta)
        files += r.files
        lines += r.lines
        nonempty += r.nonempty
        wall += r.wall_s
    internal = [m for r in results for m in r.meta_list if m["code"] == "ARC902"]
    missing = (
        sorted({"--exit-zero", "--no-cache", "--jobs", "--output-format"} - options)
        if options
        else ["(could not read `check --help`)"]
    )
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "python": sys.version.split()[0],
        "asyncrace": asyncrace,
        "asyncrace_version": version,
        "jobs": jobs,
        "missing_options": missing,
        "line_count": "physical lines (non-empty lines beside them)",
        "packages": [r.__dict__ for r in results],
        "totals": {
            "packages": len(results),
            "files": files,
            "lines": lines,
            "nonempty": nonempty,
            "wall_s": round(wall, 3),
            "findings": dict(sorted(totals_findings.items())),
            "findings_total": sum(totals_findings.values()),
            "meta": dict(sorted(totals_meta.items())),
        },
        "findings_per_10k_lines": per_10k(dict(totals_findings), lines),
        "internal_errors": internal,
        "errors": [
            {"package": f"{r.name}-{r.version}", "error": r.error} for r in results if r.error
        ],
    }


def render_markdown(report: dict[str, Any]) -> str:
    codes = sorted(report["totals"]["findings"])
    metas = sorted(META_CODES)
    out: list[str] = []
    out.append("# asyncrace on the real-code corpus\n")
    out.append(
        f"- asyncrace: `{report['asyncrace']}` ({report['asyncrace_version']}), "
        f"Python {report['python']}, generated {report['generated']}"
    )
    out.append(f"- `--jobs`: {report['jobs']}; lines are {report['line_count']}")
    if report["missing_options"]:
        out.append(
            f"- options this asyncrace lacks (run without them): "
            f"{', '.join(report['missing_options'])}"
        )
    out.append("")
    head = ["package", "files", "lines", *codes, "findings", *metas, "wall s"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "|".join(["---"] + ["--:"] * (len(head) - 1)) + "|")
    for p in report["packages"]:
        row = [f"{p['name']} {p['version']}", str(p["files"]), f"{p['lines']:,}"]
        row += [str(p["findings"].get(c, 0)) for c in codes]
        row.append(str(sum(p["findings"].values())))
        row += [str(p["meta"].get(m, 0)) for m in metas]
        row.append(f"{p['wall_s']:.2f}" + (" (error)" if p["error"] else ""))
        out.append("| " + " | ".join(row) + " |")
    t = report["totals"]
    row = ["**total**", str(t["files"]), f"{t['lines']:,}"]
    row += [str(t["findings"].get(c, 0)) for c in codes]
    row.append(str(t["findings_total"]))
    row += [str(t["meta"].get(m, 0)) for m in metas]
    row.append(f"{t['wall_s']:.2f}")
    out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append(
        "Findings per 10,000 lines: "
        + (", ".join(f"{c} {v:.2f}" for c, v in report["findings_per_10k_lines"].items()) or "none")
    )
    out.append("")
    out.append(
        "Meta diagnostics: "
        + ", ".join(f"{c} ({META_CODES[c]}) {t['meta'].get(c, 0)}" for c in metas)
    )
    internal = report["internal_errors"]
    if internal:
        out.append("")
        out.append(f"## !!! {len(internal)} INTERNAL ERRORS (ARC902): these must be zero !!!\n")
        for m in internal:
            out.append(f"- `{m['file']}:{m['line']}`: {m['message']}")
    syntax = [m for p in report["packages"] for m in p["meta_list"] if m["code"] != "ARC902"]
    if syntax:
        out.append("\n## Files asyncrace could not read or parse (ARC900/ARC901)\n")
        for m in syntax:
            out.append(f"- {m['code']} `{m['file']}:{m['line']}`: {m['message']}")
    if report["errors"]:
        out.append("\n## Runs that failed\n")
        for e in report["errors"]:
            out.append(f"- {e['package']}: {e['error']}")
    return "\n".join(out) + "\n"


def cmd_check(args: argparse.Namespace) -> int:
    packages = select_packages(load_corpus(), args.packages)
    counts = ensure_all(packages, offline=args.offline, quiet=True)
    cmd = asyncrace_command(args.asyncrace)
    options = check_options(cmd)
    version = asyncrace_version(cmd)
    print(
        f"asyncrace: {shlex.join(cmd)} ({version}); options: "
        f"{'ok' if options else 'could not read check --help'}",
        flush=True,
    )
    OUT.mkdir(parents=True, exist_ok=True)
    results: list[PackageResult] = []
    with (OUT / "findings.jsonl").open("w", encoding="utf-8") as jf:
        for pkg in packages:
            res, records = run_package(pkg, counts[pkg.slug], cmd, options, args.jobs)
            results.append(res)
            for rec in records:
                jf.write(json.dumps(rec, sort_keys=True) + "\n")
            n = sum(res.findings.values())
            print(
                f"  {pkg.slug:<28} {res.files:>5} files {res.lines:>8,} lines "
                f"{n:>5} findings {dict(res.findings)} meta {dict(res.meta)} "
                f"{res.wall_s:7.2f}s" + (f"  ERROR: {res.error[:300]}" if res.error else ""),
                flush=True,
            )
    report = build_report(
        results, asyncrace=shlex.join(cmd), version=version, options=options, jobs=args.jobs
    )
    (OUT / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (OUT / "report.md").write_text(render_markdown(report), encoding="utf-8")
    t = report["totals"]
    print(
        f"total: {t['files']} files, {t['lines']:,} lines, {t['findings_total']} findings "
        f"{t['findings']}, meta {t['meta']}, {t['wall_s']:.1f}s"
    )
    print(f"per 10k lines: {report['findings_per_10k_lines']}")
    print(f"wrote {OUT / 'report.json'}, {OUT / 'report.md'}, {OUT / 'findings.jsonl'}")
    rc = 0
    if report["internal_errors"]:
        print(
            f"\n!!! {len(report['internal_errors'])} INTERNAL ERRORS (ARC902) — must be zero:",
            file=sys.stderr,
        )
        for m in report["internal_errors"]:
            print(f"!!!   {m['file']}:{m['line']}: {m['message']}", file=sys.stderr)
        rc = 1
    if report["errors"]:
        print(f"\n{len(report['errors'])} run(s) failed:", file=sys.stderr)
        for e in report["errors"]:
            print(f"  {e['package']}: {e['error'][:1000]}", file=sys.stderr)
        rc = 1
    return rc


# --------------------------------------------------------------------------- sampling


def read_lines(path: Path, cache: dict[Path, list[str] | str]) -> list[str] | str:
    """The lines of ``path`` (cached), or an error message."""
    if path not in cache:
        try:
            cache[path] = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            cache[path] = f"(cannot read {path}: {exc})"
    return cache[path]


def snippets(
    marks: Sequence[tuple[str, str, int | None]],
    radius: int,
    cache: dict[Path, list[str] | str],
) -> list[str]:
    """Source around each marked line: ``marks`` are (label, corpus-relative file, line). The
    windows (``radius`` lines before and after) of one file are merged, so a step next to the
    primary line is shown once, with its label in the gutter (``P`` the primary line, ``1``,
    ``2``... the related steps)."""
    by_file: dict[str, dict[int, list[str]]] = {}
    out: list[str] = []
    for label, file, line in marks:
        if line is None:
            out.append(f"   [{label}] {file}: no line")
            continue
        by_file.setdefault(file, {}).setdefault(line, []).append(label)
    for file, lines_marked in by_file.items():
        text = read_lines(CORPUS / file, cache)
        out.append(f"   --- {file}")
        if isinstance(text, str):
            out.append(f"   {text}")
            continue
        ranges: list[list[int]] = []
        for line in sorted(lines_marked):
            lo, hi = max(1, line - radius), min(len(text), line + radius)
            if ranges and lo <= ranges[-1][1] + 3:  # a gap of up to 2 lines is shown
                ranges[-1][1] = max(ranges[-1][1], hi)
            else:
                ranges.append([lo, hi])
        for n, (lo, hi) in enumerate(ranges):
            if n:
                out.append("   ...")
            for ln in range(lo, hi + 1):
                tag = ",".join(lines_marked.get(ln, []))
                out.append(f"{tag:>4}{'>' if tag else ' '} {ln:>5} | {text[ln - 1]}")
    return out


def cmd_sample(args: argparse.Namespace) -> int:
    path = Path(args.findings)
    if not path.is_file():
        raise SystemExit(f"{path} not found: run `python bench/corpus.py check` first")
    raw = path.read_bytes()
    records = [json.loads(line) for line in raw.splitlines() if line.strip()]
    if args.code:
        records = [r for r in records if r["code"] in args.code]
    rng = random.Random(args.seed)
    n = min(args.n, len(records))
    picked = sorted(rng.sample(range(len(records)), n))
    digest = hashlib.sha256(raw).hexdigest()[:16]
    print(
        f"# sample: seed={args.seed} n={n} of {len(records)} findings"
        f"{' with code ' + ','.join(args.code) if args.code else ''}; "
        f"{rel_display(path)} sha256:{digest}; ±{args.context} lines of context; "
        "gutter: P = the reported line, 1, 2... = the related steps"
    )
    print(
        f"# reproduce: python bench/corpus.py sample --n {args.n} --seed {args.seed}"
        + "".join(f" --code {c}" for c in args.code or [])
        + (f" --context {args.context}" if args.context != 6 else "")
    )
    cache: dict[Path, list[str] | str] = {}
    for k, i in enumerate(picked, 1):
        r = records[i]
        print(
            f"\n## [{k}/{n}] #{i} {r['code']} {r.get('name') or ''} "
            f"{r['file']}:{r['line']}:{r['column']}"
        )
        print(f"   P: {r['message']}")
        marks: list[tuple[str, str, int | None]] = [("P", r["file"], r["line"])]
        for j, step in enumerate(r.get("related") or [], 1):
            print(f"   {j}: {step['message']} ({step['file']}:{step['line']})")
            marks.append((str(j), step["file"], step["line"]))
        print("\n".join(snippets(marks, args.context, cache)))
    return 0


def rel_display(path: Path) -> str:
    try:
        return path.resolve().relative_to(BENCH.parent).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/corpus.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fetch", help="download, verify, extract and count the corpus")
    p.add_argument("packages", nargs="*", help="only these packages (names from corpus.toml)")
    p.add_argument("--offline", action="store_true", help="use only the cache, never pip")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("check", help="run asyncrace over every package, write bench/out/")
    p.add_argument("packages", nargs="*", help="only these packages (names from corpus.toml)")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="passed to asyncrace as --jobs (packages run one after another)",
    )
    p.add_argument(
        "--asyncrace",
        default=None,
        help="the asyncrace command (default: `python -m asyncrace` of this Python)",
    )
    p.add_argument("--offline", action="store_true", help="use only the cache, never pip")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("sample", help="print a reproducible random sample of the findings")
    p.add_argument("--n", type=int, default=150)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--code", action="append", help="only this rule code (repeatable)")
    p.add_argument(
        "--context",
        type=int,
        default=6,
        help="lines of source shown before and after each line (default 6)",
    )
    p.add_argument("--findings", default=str(OUT / "findings.jsonl"))
    p.set_defaults(func=cmd_sample)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:  # `... | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
