"""The output formats, on a small hand-built case of four findings in three files.

Snapshots live in ``tests/snapshots/test_output/``; after an intended change, regenerate with
``pytest tests/test_output.py --snapshot-update`` and read the diff."""

from __future__ import annotations

import itertools
import json
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.cells import cell_len

from asyncrace.diagnostic import Diagnostic, Location, Related, Span
from asyncrace.output import (
    FORMATS,
    fingerprint,
    fingerprints,
    render,
    render_statistics,
    render_statistics_json,
)
from asyncrace.output.full import TAB_SIZE
from asyncrace.output.github import escape_data, escape_property
from asyncrace.registry import CODES, RULES
from asyncrace.sources import SourceStore

HERE = Path(__file__).parent
DATA = HERE / "data" / "output_case"
SNAPSHOTS = HERE / "snapshots" / "test_output"
SARIF_SCHEMA = json.loads((HERE / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))

ANSI = re.compile(r"\x1b\[[0-9;]*m")

BROKEN = """\
async def main():
    results = await asyncio.gather(
        fetch(1),
        fetch(2)

print("done")
"""


def find(store: SourceStore, path: str, row: int, text: str, nth: int = 0) -> Span:
    """The span of the ``nth`` occurrence of ``text`` on line ``row`` of ``path``."""
    line = store.lines(path)[row - 1]
    col = -1
    for _ in range(nth + 1):
        col = line.index(text, col + 1)
    return Span(path, Location(row, col + 1), Location(row, col + 1 + len(text)))


def make_store() -> SourceStore:
    store = SourceStore()
    store.add_path("app/service.py", DATA / "service.py")
    store.add_path("app/cache.py", DATA / "cache.py")
    store.add_text("app/broken.py", BROKEN)
    return store


def make_case(store: SourceStore) -> list[Diagnostic]:
    svc, cache = "app/service.py", "app/cache.py"
    read = find(store, svc, 20, "self.current_user")
    return [
        Diagnostic(
            code="ARC001",
            name="state-clobbered-across-await",
            message="`self.current_user` is read after an await; a concurrent `handle()` "
            "call may have replaced it",
            span=read,
            related=(
                Related(find(store, svc, 18, "self.current_user"), "written here"),
                Related(
                    find(store, svc, 19, "await self.audit.record(user_id)"),
                    "await: other tasks run here",
                ),
                Related(read, "read here after the await"),
            ),
            fix="keep the user in a local variable (`user = await self.db.load(user_id)`) "
            "and read `user.name`",
        ),
        Diagnostic(
            code="ARC004",
            name="executor-under-lock",
            message="`self.lock` is held while awaiting a worker thread that takes the same "
            "lock: the thread can never acquire it (deadlock)",
            span=find(store, svc, 24, "await asyncio.to_thread(self.cache.load, user_id)"),
            related=(
                Related(find(store, svc, 23, "self.lock"), "`self.lock` acquired here"),
                Related(
                    find(store, cache, 12, "self.lock"),
                    "`ProfileCache.load` takes the same lock in the worker thread",
                ),
            ),
        ),
        Diagnostic(
            code="ARC003",
            name="guard-before-registration",
            message="`user_id in self.entries` is checked before an await and registered "
            "after it: concurrent `warm()` calls both pass the guard",
            span=find(store, cache, 17, "user_id in self.entries"),
            related=(
                Related(
                    find(store, cache, 19, "await fetch(user_id)"), "await: other tasks run here"
                ),
                Related(find(store, cache, 20, "self.entries[user_id]"), "registered here"),
            ),
        ),
        Diagnostic(
            code="ARC900",
            name="syntax-error",
            message="syntax error: '(' was never closed",
            span=find(store, "app/broken.py", 2, "("),
        ),
    ]


@pytest.fixture
def store() -> SourceStore:
    return make_store()


@pytest.fixture
def case(store: SourceStore) -> list[Diagnostic]:
    return make_case(store)


def normalize_json(text: str, root: Path) -> str:
    """Absolute filenames become ``<ROOT>/relative/path``."""
    items = json.loads(text)

    def rel(filename: str) -> str:
        return "<ROOT>/" + Path(filename).relative_to(root).as_posix()

    for item in items:
        item["filename"] = rel(item["filename"])
        for r in item["related"]:
            r["filename"] = rel(r["filename"])
    return json.dumps(items, indent=2, sort_keys=True) + "\n"


def normalize_json_lines(text: str, root: Path) -> str:
    return "".join(
        json.dumps(item, sort_keys=True, separators=(",", ":")) + "\n"
        for item in json.loads(normalize_json("[" + ",".join(text.splitlines()) + "]", root))
    )


def normalize_sarif(text: str) -> str:
    """The machine's root and the rule pages (which change with every edit of rules/*.md;
    test_sarif_content compares them with the pages) left out."""
    log = json.loads(text)
    for run in log["runs"]:
        run["originalUriBaseIds"]["%SRCROOT%"]["uri"] = "file:///ROOT/"
        for rule in run["tool"]["driver"]["rules"]:
            for key in ("fullDescription", "help"):
                for kind in rule.get(key, {}):
                    rule[key][kind] = f"<{key}.{kind} of rules/{rule['id']}.md>"
    return json.dumps(log, indent=2, sort_keys=True) + "\n"


# --- snapshots ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("concise", "concise.txt"),
        ("full", "full.txt"),
        ("json", "json.json"),
        ("sarif", "sarif.json"),
        ("github", "github.txt"),
        ("json-lines", "json_lines.jsonl"),
        ("gitlab", "gitlab.json"),
        ("junit", "junit.xml"),
        ("pylint", "pylint.txt"),
    ],
)
def test_snapshot(
    fmt: str,
    name: str,
    store: SourceStore,
    case: list[Diagnostic],
    snapshot: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CI_PROJECT_DIR", raising=False)
    text = render(fmt, case, store)
    if fmt == "json":
        text = normalize_json(text, tmp_path.resolve())
    elif fmt == "json-lines":
        text = normalize_json_lines(text, tmp_path.resolve())
    elif fmt == "sarif":
        text = normalize_sarif(text)
    snapshot.snapshot_dir = SNAPSHOTS
    snapshot.assert_match(text, name)


def test_snapshot_statistics(case: list[Diagnostic], snapshot: Any) -> None:
    many = case * 3 + case[:1] * 9  # 12 x ARC001, 3 x the others
    snapshot.snapshot_dir = SNAPSHOTS
    snapshot.assert_match(render_statistics(many), "statistics.txt")
    snapshot.assert_match(render_statistics_json(many), "statistics.json")


def test_snapshot_full_color(store: SourceStore, case: list[Diagnostic], snapshot: Any) -> None:
    snapshot.snapshot_dir = SNAPSHOTS
    snapshot.assert_match(render("full", case[:1], store, color=True), "full_color.txt")


# --- properties of every format -------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_shuffled_input_renders_identically(
    fmt: str, store: SourceStore, case: list[Diagnostic]
) -> None:
    expected = render(fmt, case, store)
    rng = random.Random(1234)
    for _ in range(5):
        shuffled = case[:]
        rng.shuffle(shuffled)
        assert render(fmt, shuffled, make_store()) == expected
    assert render(fmt, tuple(reversed(case)), store) == expected


def test_ties_in_sort_key_are_broken_deterministically(store: SourceStore) -> None:
    # same position, code and message; only the related steps differ
    span = find(store, "app/service.py", 20, "self.current_user")
    a = Diagnostic("ARC001", "state-clobbered-across-await", "m", span)
    b = Diagnostic(
        "ARC001",
        "state-clobbered-across-await",
        "m",
        span,
        related=(Related(find(store, "app/service.py", 18, "self.current_user"), "written"),),
    )
    for fmt in FORMATS:
        assert render(fmt, [a, b], store) == render(fmt, [b, a], store)


@pytest.mark.parametrize("fmt", FORMATS)
def test_ends_with_newline(fmt: str, store: SourceStore, case: list[Diagnostic]) -> None:
    for diags in (case, case[:1]):
        text = render(fmt, diags, store)
        assert text.endswith("\n")
        assert not text.endswith("\n\n")


def test_empty_input(store: SourceStore) -> None:
    assert render("concise", [], store) == ""
    assert render("full", [], store) == ""
    assert render("github", [], store) == ""
    assert render("json", [], store) == "[]\n"
    assert render("json-lines", [], store) == ""
    assert render("gitlab", [], store) == "[]\n"
    assert render("pylint", [], store) == ""
    junit = ET.fromstring(render("junit", [], store))
    assert junit.get("failures") == "0"
    assert [t.get("name") for t in junit.iter("testcase")] == ["No errors found"]
    assert render_statistics([]) == ""
    assert render_statistics_json([]) == "[]\n"
    log = json.loads(render("sarif", [], store))
    jsonschema.validate(log, SARIF_SCHEMA)
    assert log["runs"][0]["results"] == []
    assert [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]] == list(CODES)


def test_unknown_format(store: SourceStore) -> None:
    with pytest.raises(ValueError, match="unknown output format 'xml'"):
        render("xml", [], store)


# --- concise --------------------------------------------------------------------------------


def test_concise_lines(store: SourceStore, case: list[Diagnostic]) -> None:
    lines = render("concise", case, store).splitlines()
    assert lines[0] == "app/broken.py:2:35: ARC900 syntax error: '(' was never closed"
    assert len(lines) == len(case)
    assert all(re.fullmatch(r"app/\w+\.py:\d+:\d+: ARC\d{3} .+", line) for line in lines)


def test_concise_message_stays_on_one_line(store: SourceStore) -> None:
    d = Diagnostic(
        "ARC900", "syntax-error", "bad\ncharacter '\x1b'", Span("a.py", *[Location(1, 1)] * 2)
    )
    assert render("concise", [d], store) == "a.py:1:1: ARC900 bad\u240acharacter '\u241b'\n"


# --- json -----------------------------------------------------------------------------------

RUFF_KEYS = {
    "cell",
    "code",
    "end_location",
    "filename",
    "fix",
    "location",
    "message",
    "noqa_row",
    "url",
}


def test_json_shape(store: SourceStore, case: list[Diagnostic]) -> None:
    text = render("json", case, store)
    items = json.loads(text)
    assert json.dumps(items, indent=2, sort_keys=True) + "\n" == text  # round-trips
    assert [i["code"] for i in items] == ["ARC900", "ARC003", "ARC001", "ARC004"]
    for item in items:
        assert set(item) == RUFF_KEYS | {"name", "help", "related"}
        # asyncrace edits nothing: ruff's ``fix`` (edits) is always null
        assert item["fix"] is None
        assert item["cell"] is None
        assert Path(item["filename"]).is_absolute()
        assert item["noqa_row"] == item["location"]["row"]
        assert set(item["location"]) == set(item["end_location"]) == {"row", "column"}
        assert (
            item["url"]
            == f"https://github.com/asyncrace/asyncrace/blob/main/rules/{item['code']}.md"
        )
        for r in item["related"]:
            assert set(r) == {"message", "filename", "location", "end_location"}
            assert Path(r["filename"]).is_absolute()
    by_code = {i["code"]: i for i in items}
    assert by_code["ARC001"]["help"] == case[0].fix
    assert by_code["ARC004"]["help"] is None
    assert by_code["ARC001"]["name"] == "state-clobbered-across-await"
    assert [r["message"] for r in by_code["ARC001"]["related"]] == [
        "written here",
        "await: other tasks run here",
        "read here after the await",
    ]
    assert by_code["ARC004"]["related"][1]["filename"] == str((Path("app/cache.py")).resolve())
    assert by_code["ARC900"]["related"] == []
    assert by_code["ARC003"]["location"] == {"row": 17, "column": 16}
    assert by_code["ARC003"]["end_location"] == {"row": 17, "column": 39}


# --- sarif ----------------------------------------------------------------------------------


def test_sarif_validates_against_schema(store: SourceStore, case: list[Diagnostic]) -> None:
    log = json.loads(render("sarif", case, store))
    jsonschema.validate(log, SARIF_SCHEMA, format_checker=jsonschema.FormatChecker())


def test_sarif_content(store: SourceStore, case: list[Diagnostic]) -> None:
    log = json.loads(render("sarif", case, store))
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == Path.cwd().as_uri().rstrip("/") + "/"
    rules = run["tool"]["driver"]["rules"]
    assert [(r["id"], r["name"]) for r in rules] == [(r.code, r.name) for r in RULES]
    # the rule pages, for the code-scanning alert page: "What it does" and the whole page
    arc001 = rules[0]
    page = (HERE.parent / "rules" / "ARC001.md").read_text(encoding="utf-8")
    assert arc001["fullDescription"]["text"].startswith("Finds a coroutine that stores")
    assert arc001["fullDescription"]["text"] in page
    assert arc001["help"]["markdown"].startswith("## What it does")
    assert "## Why is this bad?" in arc001["help"]["markdown"]
    assert arc001["help"]["markdown"].strip() in page
    for r in rules:
        assert r["help"]["text"] and r["fullDescription"]["text"]
    results = {r["ruleId"]: r for r in run["results"]}
    assert [r["ruleId"] for r in run["results"]] == ["ARC900", "ARC003", "ARC001", "ARC004"]
    for r in run["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        (loc,) = r["locations"]
        artifact = loc["physicalLocation"]["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert artifact["uri"].startswith("app/")
        assert len(r["partialFingerprints"]["asyncraceFingerprint/v2"]) == 32
    assert results["ARC900"]["level"] == "error"
    assert {results[c]["level"] for c in ("ARC001", "ARC003", "ARC004")} == {"warning"}
    assert "codeFlows" not in results["ARC900"]
    assert "relatedLocations" not in results["ARC900"]
    # the flow: primary first (with the message of the related step on the same span), then
    # the related steps in order, without repeating the primary one
    flow = results["ARC001"]["codeFlows"][0]["threadFlows"][0]["locations"]
    assert [
        (f["location"]["message"]["text"], f["location"]["physicalLocation"]["region"]["startLine"])
        for f in flow
    ] == [
        ("read here after the await", 20),
        ("written here", 18),
        ("await: other tasks run here", 19),
    ]
    # related locations are the related steps as given
    assert [rl["id"] for rl in results["ARC001"]["relatedLocations"]] == [0, 1, 2]
    cross = results["ARC004"]["relatedLocations"][1]["physicalLocation"]
    assert cross["artifactLocation"]["uri"] == "app/cache.py"
    assert cross["region"] == {"startLine": 12, "startColumn": 14, "endLine": 12, "endColumn": 23}
    flow4 = results["ARC004"]["codeFlows"][0]["threadFlows"][0]["locations"]
    assert flow4[0]["location"]["message"]["text"] == case[1].message


def test_sarif_uris_are_encoded(store: SourceStore) -> None:
    loc = Location(1, 1)
    diags = [
        Diagnostic("ARC901", "unreadable-file", "m", Span("my dir/ä,b.py", loc, loc)),
        Diagnostic("ARC901", "unreadable-file", "m", Span("/abs/x y.py", loc, loc)),
    ]
    log = json.loads(render("sarif", diags, store))
    jsonschema.validate(log, SARIF_SCHEMA)
    artifacts = [
        r["locations"][0]["physicalLocation"]["artifactLocation"] for r in log["runs"][0]["results"]
    ]
    assert artifacts == [
        {"uri": "file:///abs/x%20y.py"},
        {"uri": "my%20dir/%C3%A4%2Cb.py", "uriBaseId": "%SRCROOT%"},
    ]


def test_sarif_unknown_code_has_no_rule_index(store: SourceStore) -> None:
    d = Diagnostic("XYZ123", "made-up", "m", Span("a.py", Location(1, 1), Location(1, 2)))
    (result,) = json.loads(render("sarif", [d], store))["runs"][0]["results"]
    assert result["ruleId"] == "XYZ123"
    assert "ruleIndex" not in result


# --- github ---------------------------------------------------------------------------------


def test_github_line(store: SourceStore, case: list[Diagnostic]) -> None:
    lines = render("github", case, store).splitlines()
    assert lines[0] == (
        "::error title=asyncrace (ARC900),file=app/broken.py,line=2,col=35,endLine=2,"
        "endColumn=36::app/broken.py:2:35: ARC900 syntax error: '(' was never closed"
    )
    # with a fix hint: a second line of the annotation, as ruff writes its help
    (arc001,) = [line for line in lines if "ARC001" in line]
    assert arc001.endswith(
        "%0A  help: keep the user in a local variable (`user = await self.db.load(user_id)`) "
        "and read `user.name`"
    )


# --- json-lines, gitlab, junit, pylint -----------------------------------------------------


def test_json_lines_are_the_json_objects(store: SourceStore, case: list[Diagnostic]) -> None:
    lines = render("json-lines", case, store).splitlines()
    assert [json.loads(line) for line in lines] == json.loads(render("json", case, store))
    assert all("\n" not in line and line.startswith('{"cell":null,') for line in lines)


def test_gitlab_shape(
    store: SourceStore, case: list[Diagnostic], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI_PROJECT_DIR", raising=False)
    items = json.loads(render("gitlab", case, store))
    for item in items:
        assert set(item) == {"check_name", "description", "fingerprint", "severity", "location"}
        assert set(item["location"]) == {"path", "lines"}
        assert set(item["location"]["lines"]) == {"begin", "end"}
        assert item["description"].startswith(item["check_name"] + ": ")
    fps = [fp for _, fp in fingerprints(case, store)]
    assert [i["fingerprint"] for i in items] == fps  # line-independent, as baselines
    assert [(i["check_name"], i["severity"]) for i in items] == [
        ("ARC900", "critical"),
        ("ARC003", "major"),
        ("ARC001", "major"),
        ("ARC004", "major"),
    ]
    assert items[1]["location"] == {"path": "app/cache.py", "lines": {"begin": 17, "end": 17}}


def test_gitlab_paths_relative_to_ci_project_dir(
    store: SourceStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "repo" / "sub").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "sub")
    monkeypatch.setenv("CI_PROJECT_DIR", str(tmp_path / "repo"))
    loc = Location(1, 1)
    d = Diagnostic("ARC901", "unreadable-file", "m", Span("app/x.py", loc, loc))
    (item,) = json.loads(render("gitlab", [d], store))
    assert item["location"]["path"] == "sub/app/x.py"


def test_junit_shape(store: SourceStore, case: list[Diagnostic]) -> None:
    root = ET.fromstring(render("junit", case, store))
    assert root.tag == "testsuites"
    assert (root.get("name"), root.get("tests"), root.get("failures")) == ("asyncrace", "4", "4")
    suites = root.findall("testsuite")
    assert [(s.get("name"), s.get("tests"), s.get("failures")) for s in suites] == [
        ("app/broken.py", "1", "1"),
        ("app/cache.py", "1", "1"),
        ("app/service.py", "2", "2"),
    ]
    case_ = suites[1].find("testcase")
    assert case_ is not None
    assert case_.attrib == {
        "name": "org.asyncrace.ARC003",
        "classname": "app/cache",
        "line": "17",
        "column": "16",
    }
    failure = case_.find("failure")
    assert failure is not None
    assert failure.get("message") == case[2].message
    assert failure.text == f"line 17, col 16, {case[2].message}"


def test_junit_escapes_markup_and_control_characters(store: SourceStore) -> None:
    d = Diagnostic(
        "ARC900", "syntax-error", 'bad <tag> & "q" \x1b', Span("a&b.py", *[Location(1, 1)] * 2)
    )
    root = ET.fromstring(render("junit", [d], store))  # well-formed XML 1.0
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == 'bad <tag> & "q" \u241b'


def test_pylint_lines(store: SourceStore, case: list[Diagnostic]) -> None:
    assert render("pylint", case, store).splitlines() == [
        "app/broken.py:2: [ARC900] syntax error: '(' was never closed",
        f"app/cache.py:17: [ARC003] {case[2].message}",
        f"app/service.py:20: [ARC001] {case[0].message}",
        f"app/service.py:24: [ARC004] {case[1].message}",
    ]


def test_github_escaping(store: SourceStore) -> None:
    d = Diagnostic(
        "ARC001",
        "state-clobbered-across-await",
        "100% sure: a, b\nnext line\r",
        Span("dir,x/a:b.py", Location(3, 5), Location(3, 9)),
    )
    assert render("github", [d], store) == (
        "::error title=asyncrace (ARC001),file=dir%2Cx/a%3Ab.py,line=3,col=5,endLine=3,"
        "endColumn=9::dir,x/a:b.py:3:5: ARC001 100%25 sure: a, b%0Anext line%0D\n"
    )
    assert escape_data("a%b:c,d\r\n") == "a%25b:c,d%0D%0A"
    assert escape_property("a%b:c,d\r\n") == "a%25b%3Ac%2Cd%0D%0A"


# --- statistics -----------------------------------------------------------------------------


def test_statistics(case: list[Diagnostic]) -> None:
    many = case[:1] * 10 + case[2:3] * 2 + case[1:2] * 2 + case[3:]
    assert render_statistics(many) == (
        "10\tARC001\tstate-clobbered-across-await\n"
        " 2\tARC003\tguard-before-registration\n"
        " 2\tARC004\texecutor-under-lock\n"
        " 1\tARC900\tsyntax-error\n"
    )


# --- full -----------------------------------------------------------------------------------


def excerpts(text: str) -> list[tuple[str, str, str]]:
    """(source line, the source text above the carets, label) for every underline."""
    out = []
    lines = text.splitlines()
    for above, line in itertools.pairwise(lines):
        m = re.fullmatch(r"( *)\d+ \| (.*)", above)
        u = re.fullmatch(r"( *) \| ( *)(\^+)(?: (.*))?", line)
        if not (m and u):
            continue
        source = m.group(2)
        # cells -> characters, so wide characters count twice
        start_cell, end_cell = len(u.group(2)), len(u.group(2)) + len(u.group(3))
        chars, cell = [], 0
        for ch in source:
            if start_cell <= cell < end_cell:
                chars.append(ch)
            cell += cell_len(ch)
        out.append((source, "".join(chars), u.group(4) or ""))
    return out


def test_full_carets_under_the_spans(store: SourceStore, case: list[Diagnostic]) -> None:
    text = render("full", case, store)
    assert [(under, label) for _, under, label in excerpts(text)] == [
        ("(", "syntax-error"),
        ("user_id in self.entries", "guard-before-registration"),
        ("await fetch(user_id)", "await: other tasks run here"),
        ("self.entries[user_id]", "registered here"),
        ("self.current_user", "read here after the await"),
        ("self.current_user", "written here"),
        ("await self.audit.record(user_id)", "await: other tasks run here"),
        ("await asyncio.to_thread(self.cache.load, user_id)", "executor-under-lock"),
        ("self.lock", "`self.lock` acquired here"),
        ("self.lock", "`ProfileCache.load` takes the same lock in the worker thread"),
    ]


def test_full_structure(store: SourceStore, case: list[Diagnostic]) -> None:
    text = render("full", case, store)
    blocks = text.split("\n\n")
    assert len(blocks) == len(case)
    arc004 = blocks[3]
    assert arc004.splitlines()[0] == (
        "app/service.py:24:23: ARC004 [executor-under-lock] " + case[1].message
    )
    assert "  --> app/cache.py:12:14\n" in arc004  # the related span in the other file
    assert arc004.count("-->") == 1
    assert arc004.endswith(
        "   = rule: https://github.com/asyncrace/asyncrace/blob/main/rules/ARC004.md\n"
    )
    assert "= help:" not in arc004
    arc001 = blocks[2]
    assert f"   = help: {case[0].fix}\n" in arc001
    assert arc001.count("20 |") == 1  # the primary span listed as a related step is folded


def test_full_color(store: SourceStore, case: list[Diagnostic]) -> None:
    plain = render("full", case, store, color=False)
    colored = render("full", case, store, color=True)
    assert "\x1b" not in plain
    assert "\x1b[" in colored
    assert ANSI.sub("", colored) == plain


def test_full_ignores_the_environment(
    store: SourceStore, case: list[Diagnostic], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = render("full", case, store)
    colored = render("full", case, store, color=True)
    for var, value in [
        ("FORCE_COLOR", "1"),
        ("NO_COLOR", "1"),
        ("COLUMNS", "30"),
        ("TERM", "dumb"),
    ]:
        monkeypatch.setenv(var, value)
    assert render("full", case, store) == plain
    assert render("full", case, store, color=True) == colored


def test_full_missing_source(case: list[Diagnostic]) -> None:
    text = render("full", case[1:2], SourceStore())  # the files are not there
    assert text == (
        "app/service.py:24:23: ARC004 [executor-under-lock] " + case[1].message + "\n"
        "  --> app/service.py:24:23: executor-under-lock\n"
        "  --> app/service.py:23:14: `self.lock` acquired here\n"
        "  --> app/cache.py:12:14: `ProfileCache.load` takes the same lock in the worker thread\n"
        "   = rule: https://github.com/asyncrace/asyncrace/blob/main/rules/ARC004.md\n"
    )


def edge_store() -> SourceStore:
    store = SourceStore()
    store.add_text(
        "edge/tabs.py",
        "class Pool:\n"
        "\tasync def run(self):\n"
        "\t\tself.state = 1\t# tab before the comment\n"
        "\t\tawait self.step()\t\n"
        "\t\treturn self.state\n",
    )
    store.add_text(
        "edge/wide.py",
        "async def greet(self):\n"
        '    self.名前 = "世界🌍"; await asyncio.sleep(0); print(self.名前)\n'
        '    note = "\x1b[31mred\x0c"; return self.x\n',
    )
    long_line = "    result = " + " + ".join(f"value_{i}" for i in range(40)) + "\n"
    store.add_text(
        "edge/long.py",
        "async def compute(self):\n"
        "    with self.lock:\n"
        "        await asyncio.gather(\n"
        "            self.fetch(1),\n"
        "\n"
        "            self.fetch(2),\n"
        "            self.fetch(3),\n"
        "        )\n" + long_line + "    return await self.done()\n",
    )
    return store


def edge_case(store: SourceStore) -> list[Diagnostic]:
    tabs, wide, long = "edge/tabs.py", "edge/wide.py", "edge/long.py"
    long_row = store.lines(long)[8]
    return [
        Diagnostic(
            "ARC001",
            "state-clobbered-across-await",
            "`self.state` is read after an await (tab-indented file)",
            find(store, tabs, 5, "self.state"),
            related=(
                Related(find(store, tabs, 3, "self.state"), "written here"),
                Related(find(store, tabs, 4, "await self.step()"), "await: other tasks run here"),
            ),
        ),
        Diagnostic(
            "ARC001",
            "state-clobbered-across-await",
            "`self.名前` is read after an await (wide characters)",
            find(store, wide, 2, "self.名前", 1),
            related=(
                Related(find(store, wide, 2, "self.名前"), "written here"),
                Related(
                    find(store, wide, 2, "await asyncio.sleep(0)"), "await: other tasks run here"
                ),
                Related(find(store, wide, 3, "self.x"), "after control characters"),
                Related(Span(wide, Location(3, 40), Location(3, 40)), "past the end of the line"),
            ),
        ),
        Diagnostic(
            "ARC005",
            "thread-lock-held-across-await",
            "`self.lock` is held across an await spanning several lines",
            find(store, long, 2, "self.lock"),
            related=(
                Related(
                    Span(long, Location(3, 9), Location(8, 10)),
                    "await: other tasks run here (a long span)",
                ),
                Related(
                    Span(long, Location(3, 9), Location(4, 26)),
                    "a two-line span",
                ),
                Related(find(store, long, 9, "value_30"), "in a long line"),
                Related(
                    Span(long, Location(9, 5), Location(9, len(long_row) + 1)),
                    "the whole long line",
                ),
                Related(Span("edge/gone.py", Location(7, 1), Location(7, 5)), "in a deleted file"),
                Related(find(store, long, 10, "await self.done()"), "back in the first file"),
            ),
        ),
    ]


def test_snapshot_full_edge_cases(snapshot: Any) -> None:
    store = edge_store()
    snapshot.snapshot_dir = SNAPSHOTS
    snapshot.assert_match(render("full", edge_case(store), store, width=100), "full_edge_cases.txt")


def test_full_edge_case_carets() -> None:
    store = edge_store()
    text = render("full", edge_case(store), store, width=100)
    found = [(under, label) for _, under, label in excerpts(text)]
    expand = TAB_SIZE * " "
    assert ("self.state", "state-clobbered-across-await") in found
    assert ("self.state", "written here") in found
    assert ("await self.step()", "await: other tasks run here") in found
    assert found.count(("self.名前", "written here")) == 1
    assert ("self.名前", "state-clobbered-across-await") in found
    assert ("await asyncio.sleep(0)", "await: other tasks run here") in found
    assert ("self.x", "after control characters") in found
    assert ("value_30", "in a long line") in found
    assert "\t" not in text and expand + expand + "self.state = 1" in text
    assert "\x1b" not in text and "\x0c" not in text
    # every source line fits the width (the long one is cut around its span)
    assert all(cell_len(line) <= 100 for line in text.splitlines() if re.match(r" *\d+ \|", line))
    assert "     ..." not in text  # elided rows are shown by a bare "..." gutter
    assert "\n...\n" in text


def test_full_width_is_respected_for_narrow_terminals() -> None:
    store = edge_store()
    text = render("full", edge_case(store), store, width=60)
    assert all(cell_len(line) <= 60 for line in text.splitlines() if re.match(r" *\d+ \|", line))
    assert ("value_30", "in a long line") in [(u, lab) for _, u, lab in excerpts(text)]


# --- fingerprints ---------------------------------------------------------------------------


def shifted(store: SourceStore, path: str, text: str, lines: int) -> tuple[SourceStore, str]:
    """A store where ``lines`` blank lines were inserted at the top of ``path``."""
    new = make_store()
    new.add_text(path, "\n" * lines + text)
    return new, path


def shift(d: Diagnostic, path: str, lines: int) -> Diagnostic:
    def move(s: Span) -> Span:
        if s.path != path:
            return s
        return Span(
            s.path,
            Location(s.start.row + lines, s.start.column),
            Location(s.end.row + lines, s.end.column),
        )

    return Diagnostic(
        d.code,
        d.name,
        d.message,
        move(d.span),
        tuple(Related(move(r.span), r.message) for r in d.related),
        d.fix,
        d.url,
    )


def test_fingerprint_stable_when_lines_are_inserted_above(
    store: SourceStore, case: list[Diagnostic]
) -> None:
    text = (DATA / "service.py").read_text(encoding="utf-8")
    moved_store, path = shifted(store, "app/service.py", text, 5)
    for d in case:
        assert fingerprint(shift(d, path, 5), moved_store) == fingerprint(d, store)
    before = [fp for _, fp in fingerprints(case, store)]
    after = [fp for _, fp in fingerprints([shift(d, path, 5) for d in case], moved_store)]
    assert before == after
    sarif_before = json.loads(render("sarif", case, store))["runs"][0]["results"]
    sarif_after = json.loads(render("sarif", [shift(d, path, 5) for d in case], moved_store))
    assert [r["partialFingerprints"] for r in sarif_before] == [
        r["partialFingerprints"] for r in sarif_after["runs"][0]["results"]
    ]


def test_fingerprint_changes_when_the_flagged_line_changes(
    store: SourceStore, case: list[Diagnostic]
) -> None:
    text = (DATA / "service.py").read_text(encoding="utf-8")
    edited = make_store()
    edited.add_text("app/service.py", text.replace('{"name": self', '{"user": self'))
    assert fingerprint(case[0], edited) != fingerprint(case[0], store)
    assert fingerprint(case[1], edited) == fingerprint(case[1], store)


def test_fingerprints_differ_between_findings(store: SourceStore, case: list[Diagnostic]) -> None:
    fps = [fp for _, fp in fingerprints(case, store)]
    assert len(set(fps)) == len(fps)
    assert all(re.fullmatch(r"[0-9a-f]{32}", fp) for fp in fps)
    # same code and position but another message
    other = Diagnostic(case[0].code, case[0].name, "another message", case[0].span, case[0].related)
    assert fingerprint(other, store) != fingerprint(case[0], store)


def test_identical_findings_are_told_apart_by_occurrence() -> None:
    store = SourceStore()
    line = "        self.user = await self.db.load(user_id)\n"
    store.add_text(
        "dup.py", "async def a(self, user_id):\n" + line + "\nasync def b(self, user_id):\n" + line
    )
    d1 = Diagnostic(
        "ARC001", "state-clobbered-across-await", "m", find(store, "dup.py", 2, "self.user")
    )
    d2 = Diagnostic(
        "ARC001", "state-clobbered-across-await", "m", find(store, "dup.py", 5, "self.user")
    )
    result = fingerprints([d2, d1], store)
    assert [d for d, _ in result] == [d1, d2]
    assert result[0][1] == fingerprint(d1, store) == fingerprint(d2, store, occurrence=0)
    assert result[1][1] == fingerprint(d2, store, occurrence=1)
    assert result[0][1] != result[1][1]


@pytest.mark.parametrize("width", [200, 70, 40])
def test_full_carets_align_on_random_lines(width: int) -> None:
    """Under any mix of indentation tabs, wide and control characters, the underline sits
    under exactly the span's characters (or, when the line is cut, starts at the span)."""
    rng = random.Random(width)
    alphabet = "abcxyz_.()= " * 3 + "名前🌍\x1b\x0c"
    store = SourceStore()
    diags = []
    for row in range(1, 200):
        indent = "".join(rng.choice(["\t", "    ", "  "]) for _ in range(rng.randrange(4)))
        body = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 120))).strip() or "x"
        line = indent + body
        a = rng.randrange(len(indent), len(line))
        b = rng.randrange(a + 1, len(line) + 1)
        if line[a:b].strip() != line[a:b] or not line[a:b].strip():
            continue  # keep spans that start and end on visible characters
        path = f"r{row}.py"
        store.add_text(path, line + "\n")
        diags.append(
            (
                Diagnostic(
                    "ARC001",
                    "state-clobbered-across-await",
                    "m",
                    Span(path, Location(1, a + 1), Location(1, b + 1)),
                ),
                line[a:b],
            )
        )
    assert len(diags) > 50
    for d, expected in diags:
        text = render("full", [d], store, width=width)
        ((source, under, label),) = excerpts(text)
        shown = expected.replace("\x1b", "\u241b").replace("\x0c", "\u240c")
        assert label == "state-clobbered-across-await"
        assert cell_len(source) <= width - 4
        if width == 200:
            assert under == shown
        else:
            assert under and shown.startswith(under.rstrip("."))


def test_sarif_marks_suppressed_findings(store: SourceStore, case: list[Diagnostic]) -> None:
    d = case[0]
    shown = Diagnostic(d.code, d.name, d.message, d.span, d.related, d.fix, d.url, suppressed=True)
    log = json.loads(render("sarif", [shown, case[1]], store))
    jsonschema.validate(log, SARIF_SCHEMA)
    first, second = log["runs"][0]["results"]
    assert first["suppressions"] == [{"kind": "inSource"}]
    assert "suppressions" not in second


@pytest.mark.parametrize("column", [1, 30, 5_000, 99_990, 100_930, 101_126, 101_200])
def test_very_long_lines_render_as_if_laid_out_whole(
    column: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A minified line is laid out only around its underline: the same text as laying out
    the whole line (which for a 6 MB line took hundreds of megabytes)."""
    import asyncrace.output.full as full_mod

    line = "".join(("x = f(a)\t; é = '中' " if i % 7 else "y=1;") for i in range(6_000))
    assert len(line) == 101_130
    store = SourceStore()
    store.add_text("min.py", line + "\n")
    d = Diagnostic(
        "ARC001",
        "state-clobbered-across-await",
        "m",
        Span("min.py", Location(1, column), Location(1, column + 5)),
        related=(Related(Span("min.py", Location(1, 7), Location(1, 8)), "first"),),
    )
    windowed = render("full", [d], store, width=100)
    monkeypatch.setattr(full_mod, "LONG_LINE", 10**9)
    assert windowed == render("full", [d], store, width=100)
