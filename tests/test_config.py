from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from asyncrace.config import (
    CliOverrides,
    ConfigError,
    find_config,
    load,
    load_settings,
)
from asyncrace.registry import resolve_selection
from asyncrace.settings import DEFAULT_EXCLUDE


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # messages show paths relative to the working directory


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


# ---------------------------------------------------------------------------- find_config


def test_find_config_walks_up(tmp_path: Path) -> None:
    cfg = write(tmp_path / "pyproject.toml", "[tool.asyncrace]\nselect = ['ARC001']\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_config(tmp_path / "a" / "b") == cfg
    assert find_config(tmp_path / "a" / "b" / "file.py") == cfg  # a file: its directory
    assert find_config(tmp_path / "a" / "missing" / "x.py") == cfg  # need not exist


def test_pyproject_without_table_is_skipped(tmp_path: Path) -> None:
    outer = write(tmp_path / "asyncrace.toml", "select = ['ARC001']\n")
    write(tmp_path / "pkg" / "pyproject.toml", "[tool.ruff]\nline-length = 90\n")
    assert find_config(tmp_path / "pkg") == outer


def test_asyncrace_toml_wins_in_the_same_directory(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.asyncrace]\nselect = ['ARC001']\n")
    cfg = write(tmp_path / "asyncrace.toml", "select = ['ARC003']\n")
    assert find_config(tmp_path) == cfg


def test_nearest_directory_wins(tmp_path: Path) -> None:
    write(tmp_path / "asyncrace.toml", "")
    inner = write(tmp_path / "sub" / "pyproject.toml", "[tool.asyncrace]\n")
    assert find_config(tmp_path / "sub") == inner


def test_no_config(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    if find_config(tmp_path) is not None:
        pytest.skip("a configuration file above the temporary directory")
    assert find_config(tmp_path / "x") is None
    loaded = load([tmp_path / "x"])
    s = loaded.settings
    assert s.config_path is None and loaded.output_format is None
    assert s.project_root == tmp_path  # the working directory
    assert s.enabled == resolve_selection(None)
    assert s.exclude == DEFAULT_EXCLUDE


# ------------------------------------------------------------------------------- every key


def test_every_key(tmp_path: Path) -> None:
    cfg = write(
        tmp_path / "pyproject.toml",
        """
        [tool.ruff.lint]
        select = ["E"]

        [tool.asyncrace]
        src = ["src", "lib/../tools"]
        exclude = ["generated"]
        extend-exclude = ["*_pb2.py"]
        select = ["ARC0"]
        ignore = ["ARC004"]
        extend-select = ["ARC100"]
        output-format = "json"
        respect-gitignore = false
        extra-lock-types = ["mypkg.sync.FIFOLock"]
        extra-reentrant-lock-types = ["mypkg.sync.RLock"]
        extra-executor-functions = ["mypkg.pool.run_blocking", "offload"]
        lifecycle-methods = ["setup", "teardown"]
        context-managers-closed-elsewhere = true

        [tool.asyncrace.per-file-ignores]
        "tests/**" = ["ARC001"]
        "__init__.py" = ["ARC"]
        """,
    )
    loaded = load([tmp_path])
    s = loaded.settings
    assert loaded.output_format == "json"
    assert s.config_path == cfg
    assert s.project_root == tmp_path
    assert s.src == (tmp_path / "src", tmp_path / "tools")
    assert s.exclude == ("generated",)
    assert s.extend_exclude == ("*_pb2.py",)
    assert s.enabled == frozenset(
        {
            "ARC001",
            "ARC002",
            "ARC003",
            "ARC005",
            "ARC006",
            "ARC100",
            "ARC900",
            "ARC901",
            "ARC902",
            "ARC903",
        }
    )
    assert s.respect_gitignore is False
    assert s.extra_lock_types == ("mypkg.sync.FIFOLock",)
    assert s.extra_reentrant_lock_types == ("mypkg.sync.RLock",)
    assert s.extra_executor_functions == ("mypkg.pool.run_blocking", "offload")
    assert s.lifecycle_methods == ("setup", "teardown")
    assert s.context_managers_closed_elsewhere is True
    pfi = dict(s.per_file_ignores)
    assert pfi["tests/**"] == {"ARC001"}
    assert {"ARC001", "ARC005", "ARC100"} <= pfi["__init__.py"]  # a prefix, expanded


def test_asyncrace_toml_top_level_keys(tmp_path: Path) -> None:
    write(tmp_path / "asyncrace.toml", "select = ['ARC003']\n[per-file-ignores]\n'x.py' = []\n")
    s = load_settings([tmp_path])
    assert s.enabled == resolve_selection(["ARC003"])
    assert s.per_file_ignores == (("x.py", frozenset()),)


def test_defaults_with_empty_table(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.asyncrace]\n")
    loaded = load([tmp_path])
    s = loaded.settings
    assert loaded.output_format is None
    assert s.enabled == resolve_selection(None)
    assert s.exclude == DEFAULT_EXCLUDE and s.extend_exclude == ()
    assert s.respect_gitignore is True and s.src == ()


def test_config_searched_from_common_directory_of_paths(tmp_path: Path) -> None:
    write(tmp_path / "asyncrace.toml", "select = ['ARC001']\n")
    write(tmp_path / "a" / "asyncrace.toml", "select = ['ARC003']\n")
    (tmp_path / "b").mkdir()
    both = load_settings([tmp_path / "a" / "x.py", tmp_path / "b"])
    assert both.config_path == tmp_path / "asyncrace.toml"
    only_a = load_settings([tmp_path / "a" / "x.py"])
    assert only_a.config_path == tmp_path / "a" / "asyncrace.toml"


def test_explicit_config(tmp_path: Path) -> None:
    cfg = write(tmp_path / "conf" / "custom.toml", "select = ['ARC005']\nsrc = ['../code']\n")
    s = load_settings([], config=cfg)
    assert s.config_path == cfg
    assert s.project_root == tmp_path / "conf"
    assert s.src == (tmp_path / "code",)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings([], config=tmp_path / "nope.toml")


def test_explicit_pyproject_without_table_gives_defaults(tmp_path: Path) -> None:
    cfg = write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    s = load_settings([], config=cfg)
    assert s.enabled == resolve_selection(None) and s.project_root == tmp_path


# ------------------------------------------------------------------------------ cli merge


def test_cli_select_replaces_ignore_and_extend_add(tmp_path: Path) -> None:
    write(
        tmp_path / "asyncrace.toml",
        "select = ['ARC001', 'ARC003']\nignore = ['ARC003']\nextend-select = ['ARC005']\n",
    )
    s = load_settings([tmp_path])
    assert s.enabled - {"ARC900", "ARC901", "ARC902", "ARC903"} == {"ARC001", "ARC005"}
    cli = CliOverrides(select=["ARC00"], ignore=["ARC002"], extend_select=["ARC100"])
    s = load_settings([tmp_path], cli=cli)
    # select replaced by ARC00*, config ignore (ARC003) and CLI ignore (ARC002) both apply
    assert s.enabled - {"ARC900", "ARC901", "ARC902", "ARC903"} == {
        "ARC001",
        "ARC004",
        "ARC005",
        "ARC006",
        "ARC100",
    }


def test_cli_other_overrides(tmp_path: Path) -> None:
    write(
        tmp_path / "asyncrace.toml",
        "extend-exclude = ['a']\noutput-format = 'json'\nrespect-gitignore = true\n",
    )
    cli = CliOverrides(
        extend_exclude=["b"],
        output_format="sarif",
        respect_gitignore=False,
        per_file_ignores={"tests/**": ["ARC001"]},
    )
    loaded = load([tmp_path], cli=cli)
    assert loaded.output_format == "sarif"
    assert loaded.settings.extend_exclude == ("a", "b")
    assert loaded.settings.respect_gitignore is False
    assert loaded.settings.per_file_ignores == (("tests/**", frozenset({"ARC001"})),)


def test_cli_unknown_code(tmp_path: Path) -> None:
    write(tmp_path / "asyncrace.toml", "")
    with pytest.raises(ConfigError, match=r"--ignore: unknown rule selector 'XYZ1'.*ARC001"):
        load_settings([tmp_path], cli=CliOverrides(ignore=["XYZ1"]))


# --------------------------------------------------------------------------------- errors


def error_of(tmp_path: Path, text: str, name: str = "asyncrace.toml") -> str:
    write(tmp_path / name, text)
    with pytest.raises(ConfigError) as info:
        load_settings([tmp_path])
    return str(info.value)


def test_unknown_key_suggests(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "\nselct = ['ARC001']\n")
    assert "asyncrace.toml:2" in msg
    assert "unknown key 'selct'" in msg and "did you mean 'select'?" in msg


def test_unknown_key_snake_case_suggests_kebab(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "[tool.asyncrace]\nextend_select = []\n", "pyproject.toml")
    assert "pyproject.toml:2" in msg and "tool.asyncrace" in msg
    assert "did you mean 'extend-select'?" in msg


def test_unknown_key_without_close_match_lists_known(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "zzz = 1\n")
    assert "unknown key 'zzz'" in msg and "known keys:" in msg and "lifecycle-methods" in msg


def test_tool_table_in_asyncrace_toml(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "[tool.asyncrace]\nselect = []\n")
    assert "without [tool.asyncrace]" in msg


def test_wrong_type_names_key_file_and_line(tmp_path: Path) -> None:
    msg = error_of(
        tmp_path,
        "[tool.ruff]\nselect = 1\n[tool.asyncrace]\nsrc = []\nselect = 5\n",
        "pyproject.toml",
    )
    assert msg.startswith("pyproject.toml:5: tool.asyncrace.select: ")
    assert "expected a list of strings, got int" in msg


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ignore = 'ARC001'", "ignore: expected a list of strings, got string"),
        ("exclude = [1]", "exclude: expected a list of strings, got a list containing int"),
        ("src = {a = 1}", "src: expected a list of strings, got table"),
        ("respect-gitignore = 'yes'", "respect-gitignore: expected true or false, got string"),
        (
            "context-managers-closed-elsewhere = 1",
            "context-managers-closed-elsewhere: expected true or false, got int",
        ),
        ("output-format = 3", "output-format: expected a string, got int"),
        ("output-format = 'xml'", "unknown format 'xml' (one of: concise, full"),
        ("per-file-ignores = ['a']", "per-file-ignores: expected a table"),
        ("[per-file-ignores]\n'a.py' = 'ARC001'", 'per-file-ignores."a.py": expected a list'),
        ("lifecycle-methods = ['']", "lifecycle-methods: empty name"),
        ("extra-lock-types = [true]", "got a list containing bool"),
        ('extend-exclude = ["\\\\"]', "invalid pattern"),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, needle: str) -> None:
    msg = error_of(tmp_path, text + "\n")
    assert needle in msg
    assert msg.startswith(f"asyncrace.toml:{text.count(chr(10)) + 1}: ")


def test_unknown_rule_code_in_config(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "select = ['ARC001']\nextend-select = ['ARC777']\n")
    assert msg.startswith("asyncrace.toml:2: extend-select: unknown rule selector 'ARC777'")
    assert "known codes: ARC001" in msg


def test_unknown_rule_code_in_per_file_ignores(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "[per-file-ignores]\n'tests/**' = ['ARC0011']\n")
    assert msg.startswith('asyncrace.toml:2: per-file-ignores."tests/**": unknown rule selector')


def test_invalid_toml_names_line(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "select = ['ARC001']\nignore = [\n", "asyncrace.toml")
    assert msg.startswith("asyncrace.toml:2: invalid TOML")
    msg = error_of(tmp_path / "p", "[tool.asyncrace]\nselect = = 1\n", "pyproject.toml")
    assert msg.startswith("p/pyproject.toml:2: invalid TOML")
    assert "(at line 2, column 10)" in msg


def test_invalid_pyproject_while_searching(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        find_config(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "asyncrace.toml").write_bytes(b"select = ['\xff']\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings([tmp_path])


def test_tool_asyncrace_not_a_table(tmp_path: Path) -> None:
    msg = error_of(tmp_path, "[tool]\nasyncrace = 1\n", "pyproject.toml")
    assert "[tool.asyncrace] must be a table" in msg


def test_error_paths_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "sub" / "asyncrace.toml", "bogus = 1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_settings([Path("sub")])
    assert str(info.value).startswith("sub/asyncrace.toml:1: unknown key 'bogus'")
