from __future__ import annotations

from pathlib import Path

import pytest

from asyncrace.diagnostic import Diagnostic, Location, Span
from asyncrace.registry import resolve_selection
from asyncrace.settings import Settings
from asyncrace.suppress import (
    FILE_ROW,
    NoqaMap,
    apply,
    noqa_problems,
    parse_noqa,
    per_file_ignored_codes,
)


def codes(m: NoqaMap) -> dict[int, frozenset[str] | None]:
    return {row: d.code_set for row, d in m.items()}


def diag(code: str, row: int, path: str = "a.py", col: int = 5) -> Diagnostic:
    return Diagnostic(
        code=code,
        name="n",
        message=f"{code} here",
        span=Span(path, Location(row, col), Location(row, col + 3)),
    )


# ------------------------------------------------------------------------------ parse_noqa


def test_fast_path_without_noqa() -> None:
    assert parse_noqa("x = 1  # nothing\n") == {}
    assert parse_noqa("") == {}


def test_single_and_lists() -> None:
    text = (
        "a = 1  # noqa: ARC001\n"
        "b = 2  # noqa:ARC001,ARC003\n"
        "c = 3  # noqa: ARC001, ARC003 ARC005\n"
        "d = 4  # noqa: E501,ARC002\n"
    )
    assert codes(parse_noqa(text)) == {
        1: {"ARC001"},
        2: {"ARC001", "ARC003"},
        3: {"ARC001", "ARC003", "ARC005"},
        4: {"E501", "ARC002"},
    }


def test_case_insensitive_and_normalized() -> None:
    m = parse_noqa("a = 1  # NOQA: arc001\nb = 2  #NoQa : ARC003\n")
    assert codes(m) == {1: {"ARC001"}, 2: {"ARC003"}}


def test_bare_noqa_is_none() -> None:
    m = parse_noqa("a = 1  # noqa\nb = 2  # noqa because of reasons\nc = 3 # noqa ARC001\n")
    assert codes(m) == {1: None, 2: None, 3: None}


def test_trailing_explanation_is_not_a_code() -> None:
    assert codes(parse_noqa("a = 1  # noqa: ARC001 -- racy on purpose\n")) == {1: {"ARC001"}}


def test_noqa_inside_strings_does_not_count() -> None:
    text = 's = "# noqa: ARC001"\nt = """\n# noqa: ARC002\n"""\nu = 1  # noqa: ARC003\n'
    assert codes(parse_noqa(text)) == {5: {"ARC003"}}


def test_noqa_after_other_comment_and_column() -> None:
    m = parse_noqa("y = 2  # type: ignore  # noqa: ARC001\n")
    d = m[1]
    assert d.codes == ("ARC001",)
    assert d.column == 24  # the "#" that starts the directive, 1-based
    assert d.end_column == 38


def test_noqa_word_prefix_is_not_noqa() -> None:
    assert parse_noqa("a = 1  # noqalike: ARC001\n") == {}


def test_file_level_exemption() -> None:
    m = parse_noqa("# asyncrace: noqa: ARC001, ARC003\nx = 1\n")
    assert codes(m) == {FILE_ROW: {"ARC001", "ARC003"}}
    assert m[FILE_ROW].row == 1
    assert codes(parse_noqa("x = 1\n    # Asyncrace: NOQA\n")) == {FILE_ROW: None}


def test_file_level_must_be_on_its_own_line() -> None:
    assert parse_noqa("x = 1  # asyncrace: noqa: ARC001\n") == {}


def test_lone_cr_and_form_feed_rows() -> None:
    m = parse_noqa("a = 1\rb = 2  # noqa: ARC001\r\n\x0cc = 3  # noqa: ARC003\n")
    assert codes(m) == {2: {"ARC001"}, 3: {"ARC003"}}


@pytest.mark.parametrize(
    "text",
    [
        'x = """unterminated\n# noqa: ARC001\n',
        "def f(:\n  # noqa: ARC001\n",
        "if x:\n        a = 1\n    b = 2  # noqa: ARC001\n",
        "\x00 # noqa: ARC001\n",
    ],
)
def test_never_raises_and_falls_back(text: str) -> None:
    m = parse_noqa(text)
    assert any(d.codes == ("ARC001",) for d in m.values())


# ----------------------------------------------------------------------------------- apply


def settings(tmp_path: Path | None = None, **kw: object) -> Settings:
    return Settings(project_root=tmp_path or Path.cwd(), **kw)  # type: ignore[arg-type]


def test_apply_line_noqa() -> None:
    noqa = {"a.py": parse_noqa("x\n\nz  # noqa: ARC001\n")}
    ds = [diag("ARC001", 3), diag("ARC003", 3), diag("ARC001", 1)]
    res = apply(ds, noqa, settings(), report_unused=False)
    assert [(d.code, d.span.start.row) for d in res.kept] == [("ARC001", 1), ("ARC003", 3)]
    assert [(d.code, d.suppressed) for d in res.suppressed] == [("ARC001", True)]
    assert res.unused == []


def test_apply_bare_noqa_not_honoured() -> None:
    noqa = {"a.py": parse_noqa("x  # noqa\n")}
    res = apply([diag("ARC001", 1)], noqa, settings(), report_unused=True)
    assert [d.code for d in res.kept] == ["ARC001"]
    assert res.suppressed == [] and res.unused == []


def test_apply_other_path_not_affected() -> None:
    noqa = {"a.py": parse_noqa("x  # noqa: ARC001\n")}
    res = apply([diag("ARC001", 1, path="b.py")], noqa, settings(), report_unused=False)
    assert len(res.kept) == 1


def test_apply_file_level() -> None:
    noqa = {"a.py": parse_noqa("# asyncrace: noqa: ARC003\nx\n")}
    res = apply([diag("ARC001", 2), diag("ARC003", 2)], noqa, settings(), report_unused=False)
    assert [d.code for d in res.kept] == ["ARC001"]
    assert [d.code for d in res.suppressed] == ["ARC003"]
    noqa = {"a.py": parse_noqa("# asyncrace: noqa\nx\n")}
    res = apply([diag("ARC001", 2), diag("ARC003", 2)], noqa, settings(), report_unused=False)
    assert res.kept == []


def test_meta_codes_never_suppressed(tmp_path: Path) -> None:
    noqa = {"a.py": parse_noqa("# asyncrace: noqa\nx  # noqa: ARC900, ARC902\n")}
    s = settings(tmp_path, per_file_ignores=(("*.py", frozenset({"ARC900", "ARC902"})),))
    ds = [diag("ARC900", 2), diag("ARC902", 2), diag("ARC901", 1)]
    res = apply(ds, noqa, s, report_unused=False)
    assert sorted(d.code for d in res.kept) == ["ARC900", "ARC901", "ARC902"]
    assert res.suppressed == []


def test_per_file_ignores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = settings(
        tmp_path,
        per_file_ignores=(
            ("tests/**", frozenset({"ARC001"})),
            ("__init__.py", frozenset({"ARC"})),  # a prefix
            ("/scripts/*.py", frozenset({"ARC003"})),
        ),
    )
    ds = [
        diag("ARC001", 1, "tests/unit/test_a.py"),
        diag("ARC003", 1, "tests/unit/test_a.py"),
        diag("ARC001", 1, "src/tests_helper.py"),
        diag("ARC005", 1, "src/pkg/__init__.py"),
        diag("ARC003", 1, "scripts/run.py"),
        diag("ARC003", 1, "src/scripts/run.py"),
    ]
    res = apply(ds, {}, s, report_unused=False)
    assert sorted((d.path, d.code) for d in res.suppressed) == [
        ("scripts/run.py", "ARC003"),
        ("src/pkg/__init__.py", "ARC005"),
        ("tests/unit/test_a.py", "ARC001"),
    ]
    assert len(res.kept) == 3


def test_per_file_ignores_relative_to_project_root_from_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tests").mkdir()
    monkeypatch.chdir(tmp_path / "tests")  # display paths are relative to the cwd
    s = settings(tmp_path, per_file_ignores=(("tests/**", frozenset({"ARC001"})),))
    res = apply([diag("ARC001", 1, "test_x.py")], {}, s, report_unused=False)
    assert res.kept == [] and len(res.suppressed) == 1
    assert per_file_ignored_codes("test_x.py", s) == {"ARC001"}


def test_per_file_ignores_outside_root_match_basename(tmp_path: Path) -> None:
    s = settings(tmp_path / "proj", per_file_ignores=(("__init__.py", frozenset({"ARC001"})),))
    other = str(tmp_path / "elsewhere" / "__init__.py")
    assert per_file_ignored_codes(other, s) == {"ARC001"}


def test_noqa_takes_credit_before_per_file_ignores(tmp_path: Path) -> None:
    s = settings(
        tmp_path,
        enabled=resolve_selection(None, extend_select=["ARC100"]),
        per_file_ignores=(("*.py", frozenset({"ARC001"})),),
    )
    p = str(tmp_path / "a.py")
    noqa = {p: parse_noqa("x  # noqa: ARC001\n")}
    res = apply([diag("ARC001", 1, p)], noqa, s, report_unused=True)
    assert res.unused == [] and len(res.suppressed) == 1


# ----------------------------------------------------------------------------- unused noqa


def enabled_with_arc100(*extra_ignore: str) -> Settings:
    return settings(
        enabled=resolve_selection(None, ignore=list(extra_ignore), extend_select=["ARC100"])
    )


def test_unused_noqa_reported() -> None:
    text = "a  # noqa: ARC001, ARC003, E501\nb  # noqa: ARC005\n"
    noqa = {"a.py": parse_noqa(text)}
    res = apply([diag("ARC001", 1)], noqa, enabled_with_arc100(), report_unused=True)
    assert res.kept == []
    msgs = [(d.code, d.name, d.span.start.row, d.span.start.column, d.message) for d in res.unused]
    assert msgs == [
        ("ARC100", "unused-noqa", 1, 4, "Unused `noqa` directive (unused: `ARC003`)"),
        ("ARC100", "unused-noqa", 2, 4, "Unused `noqa` directive (unused: `ARC005`)"),
    ]
    assert res.reported == res.unused


def test_unused_noqa_unknown_and_non_enabled() -> None:
    noqa = {"a.py": parse_noqa("a  # noqa: ARC999, ARC002, ARC003\n")}
    res = apply([], noqa, enabled_with_arc100("ARC002"), report_unused=True)
    (d,) = res.unused
    assert d.message == (
        "Unused `noqa` directive (unused: `ARC003`; non-enabled: `ARC002`; unknown: `ARC999`)"
    )


def test_unused_noqa_not_reported_without_flag_or_for_bare_or_foreign() -> None:
    noqa = {"a.py": parse_noqa("a  # noqa: ARC003\nb  # noqa\nc  # noqa: E501\n")}
    assert apply([], noqa, enabled_with_arc100(), report_unused=False).unused == []
    res = apply([], noqa, enabled_with_arc100(), report_unused=True)
    assert [d.span.start.row for d in res.unused] == [1]


def test_unused_noqa_silenced_by_arc100_on_the_comment_or_file_level() -> None:
    noqa = {"a.py": parse_noqa("a  # noqa: ARC003, ARC100\n")}
    res = apply([], noqa, enabled_with_arc100(), report_unused=True)
    assert res.unused == [] and [d.code for d in res.suppressed] == ["ARC100"]
    noqa = {"a.py": parse_noqa("# asyncrace: noqa: ARC100\na  # noqa: ARC003\n")}
    res = apply([], noqa, enabled_with_arc100(), report_unused=True)
    assert res.unused == []


def test_meta_code_in_noqa_is_unused() -> None:
    noqa = {"a.py": parse_noqa("a  # noqa: ARC900\n")}
    res = apply([diag("ARC900", 1)], noqa, enabled_with_arc100(), report_unused=True)
    assert [d.code for d in res.kept] == ["ARC900"]
    assert [d.message for d in res.unused] == ["Unused `noqa` directive (unused: `ARC900`)"]


def test_results_sorted() -> None:
    ds = [diag("ARC003", 9), diag("ARC001", 2, "b.py"), diag("ARC001", 2)]
    res = apply(ds, {}, settings(), report_unused=False)
    assert [(d.path, d.span.start.row) for d in res.kept] == [("a.py", 2), ("a.py", 9), ("b.py", 2)]


# ------------------------------------------------------------------- malformed directives


def test_joined_codes_are_read_as_ruff_reads_them() -> None:
    assert codes(parse_noqa("a = 1  # noqa: ARC001ARC003\n")) == {1: {"ARC001", "ARC003"}}
    # a code followed by letters ends there: `ARC00` (unknown), and nothing for `l`
    assert codes(parse_noqa("a = 1  # noqa: ARC00l\n")) == {1: {"ARC00"}}
    assert codes(parse_noqa("a = 1  # noqa: ARC001,,ARC003\n")) == {1: {"ARC001", "ARC003"}}


def test_a_bare_noqa_then_codes_in_one_comment() -> None:
    m = parse_noqa("a = 1  # noqa  # noqa: ARC001 reviewed\n")
    assert codes(m) == {1: {"ARC001"}}
    assert (m[1].column, m[1].end_column) == (16, 30)  # the directive with the codes


@pytest.mark.parametrize(
    ("comment", "detail"),
    [
        (
            "# noqa: ARC001ARC003",
            "expected comma or space delimiter between codes (`ARC001ARC003`)",
        ),
        ("# noqa: ARC00l, E501", "expected comma or space delimiter between codes (`ARC00l`)"),
        ("# noqa: ARC001,,ARC003", "expected rule code between commas"),
        ("# noqa: , ARC001", "expected rule code between commas"),
        (
            "# noqa: arc",
            "expected a comma-separated list of codes (e.g., `# noqa: ARC001, ARC003`) (`arc`)",
        ),
        ("# noqa ARC001", "expected `:` before the codes (`ARC001`)"),
        (
            "# asyncrace: noqa: ARC001ARC002",
            "expected comma or space delimiter between codes (`ARC001ARC002`)",
        ),
    ],
)
def test_noqa_problems(comment: str, detail: str) -> None:
    (problem,) = noqa_problems(f"x = 1\n{comment}\n")
    assert problem.row == 2
    assert problem.detail == detail
    assert problem.message("a.py").endswith(f" at a.py:2: {detail}")


@pytest.mark.parametrize(
    "comment",
    [
        "# noqa: ARC001, ARC003 racy on purpose",
        "# noqa: E501F401",  # other tools' codes: theirs to complain about
        "# noqa:",
        "# noqa",
        "# noqa because of reasons",
        "# asyncrace: noqa",
    ],
)
def test_no_problem(comment: str) -> None:
    assert noqa_problems(f"x = 1  {comment}\n") == []
    assert noqa_problems(f's = "{comment} ARC001ARC002"\n') == []  # inside a string


# ------------------------------------------------- noqa found without tokenizing whole files

# Texts the parser accepts, with ``noqa`` in comments, in string literals of every kind, in
# literals spanning lines, after a ``#`` inside a literal, and with every kind of newline.
TRICKY_SOURCES = [
    'x = "# noqa: ARC001"  # noqa: ARC003\n',
    "x = '# noqa: ARC001'\ny = 1  # NOQA:arc002\n",
    'doc = """\n# noqa: ARC001\n"""  # noqa: ARC005\nz = 1  # noqa: ARC004\n',
    "doc = '''\n  # noqa: ARC001 ''' ; q = 2 # noqa: ARC002\n",
    's = "a\\\n# noqa: ARC001"\nt = 1  # noqa: ARC003\n',
    "s = r'\\'' + '# noqa: ARC001'  # noqa: ARC004\n",
    'r = rb"\\"# noqa: ARC001" + b"\\\\"  # noqa: ARC002\n',
    's = """x\\""" # noqa: ARC001"""\nq = 1 # noqa: ARC003\n',
    's = """"" # noqa: ARC001"""\n',
    "a = ''''' # noqa: ARC001 '''  # noqa: ARC003\n",
    'f = f"{x!r} # noqa: ARC001"  # noqa: ARC002\n',
    "f = f'{d[\"k\"]} # noqa'  # noqa: ARC002\n",
    "f = F'''{x}\n# noqa: ARC001\n'''\n",
    "a = 1\rb = 2  # noqa: ARC001\r\n\x0cc = 3  # noqa: ARC003\n",
    'a = """\r# noqa: ARC001\r"""  # noqa: ARC002\r',
    "def f():\n    # asyncrace: noqa: ARC001\n    return 1  # noqa: ARC003, E501\n",
    "# asyncrace: noqa\nx = 1  # type: ignore  # noqa: ARC001\n",
    "x = [  # noqa: ARC001\n    1,  # noqa: ARC002\n    '# noqa: ARC003',\n]\n",
    "if'x'in'y # noqa: ARC001':pass  # noqa: ARC004\n",
    "x = 1  # no qa\ny = 'noqa'  # noqa ARC001\n",
    'x = "é # noqa: ARC001"  # é noqa: ARC002\ny = "\\N{BULLET}"  # noqa: ARC003\n',
    "x = 1  # noqa: ARC001",
]


@pytest.mark.parametrize("text", TRICKY_SOURCES)
def test_scan_finds_what_the_tokenizer_finds(text: str) -> None:
    import ast

    ast.parse(text)  # the fast path is only for texts the parser accepts
    assert parse_noqa(text, parsed=True) == parse_noqa(text)


def test_scan_keeps_noqa_in_strings_out() -> None:
    text = 'x = "# noqa: ARC001"  # noqa: ARC003\ndoc = """\n# noqa: ARC002\n"""\n'
    assert codes(parse_noqa(text, parsed=True)) == {1: frozenset({"ARC003"})}


def test_scan_agrees_with_the_tokenizer_on_generated_texts() -> None:
    """Lines drawn from fragments that open and close literals of every kind, with and
    without ``noqa`` comments: every text the parser accepts gets the tokenizer's answer."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    fragments = [
        "x = 1",
        "x = 1  # noqa: ARC001",
        "# noqa: ARC002",
        "# asyncrace: noqa: ARC003",
        "    # asyncrace: noqa",
        's = "# noqa: ARC001"',
        "s = '#' # noqa: ARC004",
        'd = """',
        "d = '''",
        '# noqa: ARC005 """',
        "'''  # noqa: ARC001",
        '"""  # noqa: ARC002',
        "t = 'a\\",
        "b # noqa' # noqa: ARC003",
        "y = (  # noqa: ARC001",
        ")  # noqa: ARC002",
        "f = f'{x} # noqa'  # noqa: ARC004",
        "z = r'\\'  # noqa: ARC005'",
        "",
    ]
    seen: list[bool] = []

    @hypothesis.settings(max_examples=400, deadline=None, derandomize=True)
    @hypothesis.given(
        st.lists(st.sampled_from(fragments), max_size=12),
        st.sampled_from(["\n", "\r\n", "\r"]),
    )
    def agree(lines: list[str], newline: str) -> None:
        import ast

        text = newline.join(lines) + newline
        try:
            ast.parse(text)
        except SyntaxError:
            return
        seen.append(bool(parse_noqa(text)))
        assert parse_noqa(text, parsed=True) == parse_noqa(text)

    agree()
    assert sum(seen) > 50  # the texts that parse do hold directives
