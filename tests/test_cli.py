from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import asyncrace
from asyncrace import cli as cli_mod
from asyncrace.cli import main, summary_line
from asyncrace.diagnostic import Diagnostic, Location, Span
from asyncrace.run import engine
from asyncrace.settings import Settings


def diag(code: str = "ARC001", path: str = "a.py", row: int = 3, **kw: Any) -> Diagnostic:
    return Diagnostic(
        code=code,
        name=kw.pop("name", "state-clobbered-across-await"),
        message=kw.pop("message", f"{code} finding"),
        span=Span(path, Location(row, 5), Location(row, 13)),
        **kw,
    )


@dataclass
class FakeEngine:
    """Stands in for ``asyncrace.run.engine.check``: records the call, returns ``result``."""

    result: engine.CheckResult = field(
        default_factory=lambda: engine.CheckResult(diagnostics=[], suppressed=[], files=1)
    )
    calls: list[dict[str, Any]] = field(default_factory=list)
    raises: BaseException | None = None

    def __call__(
        self,
        paths: Sequence[Path],
        settings: Settings,
        *,
        stdin: engine.StdinInput | None = None,
        jobs: int | None = None,
        cache_dir: Path | None = None,
        collect_noqa: bool = False,
    ) -> engine.CheckResult:
        self.calls.append(
            {
                "paths": list(paths),
                "settings": settings,
                "stdin": stdin,
                "jobs": jobs,
                "cache_dir": cache_dir,
            }
        )
        if self.raises is not None:
            raise self.raises
        return self.result


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny project (with a pyproject.toml so no outer config leaks in) as the cwd."""
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "b.py").write_text("y = 2\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    f = FakeEngine()
    monkeypatch.setattr(engine, "check", f)
    return f


def run(*args: str, input: bytes | str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


# ------------------------------------------------------------------------------- basics


def test_version() -> None:
    r = run("--version")
    assert r.exit_code == 0 and asyncrace.__version__ in r.stdout


def test_python_dash_m_entry_point(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m asyncrace`` and the ``asyncrace`` command: ``--version`` answered at once,
    as click answers it; anything else handed to the command line."""
    import asyncrace.__main__ as m
    import asyncrace.cli as cli

    monkeypatch.setattr(sys, "argv", ["asyncrace", "--version"])
    with pytest.raises(SystemExit) as exc:
        m.run()
    assert exc.value.code == 0
    assert capsys.readouterr().out == run("--version").stdout
    called: list[list[str]] = []
    monkeypatch.setattr(cli, "run", lambda: called.append(sys.argv[1:]))
    monkeypatch.setattr(sys, "argv", ["asyncrace", "check", "--version"])
    m.run()
    assert called == [["check", "--version"]]


def test_clean_run(project: Path, fake: FakeEngine) -> None:
    r = run("check")
    assert r.exit_code == 0, r.output
    assert r.stdout == "All checks passed!\n"
    call = fake.calls[0]
    assert call["paths"] == [project / "a.py", project / "pkg" / "b.py"]  # discovered files
    assert call["stdin"] is None
    assert call["jobs"] == (os.cpu_count() or 1)
    assert call["cache_dir"] == project / ".asyncrace_cache"
    assert call["settings"].config_path == project / "pyproject.toml"


def test_findings_exit_1_and_summary(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(
        diagnostics=[diag(path="a.py"), diag("ARC003", "pkg/b.py", 1), diag(path="a.py", row=9)],
        suppressed=[],
        files=2,
    )
    r = run("check", "--output-format", "concise")
    assert r.exit_code == 1
    assert r.stdout.splitlines() == [
        "a.py:3:5: ARC001 ARC001 finding",
        "a.py:9:5: ARC001 ARC001 finding",
        "pkg/b.py:1:5: ARC003 ARC003 finding",
        "Found 3 findings in 2 files.",
    ]


def test_default_format_is_concise_when_not_a_terminal(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(diagnostics=[diag()], suppressed=[], files=1)
    r = run("check")
    assert r.stdout.splitlines()[0] == "a.py:3:5: ARC001 ARC001 finding"


def test_default_format_is_full_on_a_terminal(
    project: Path, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.result = engine.CheckResult(diagnostics=[diag()], suppressed=[], files=1)
    monkeypatch.setattr(cli_mod, "_stdout_isatty", lambda: True)
    r = run("check", "--color", "never")
    assert "ARC001" in r.stdout and "a.py:3:5" in r.stdout
    assert r.stdout.splitlines()[0] != "a.py:3:5: ARC001 ARC001 finding"
    assert r.stdout.endswith("\nFound 1 finding in 1 file.\n")


def test_configured_output_format(project: Path, fake: FakeEngine) -> None:
    (project / "pyproject.toml").write_text("[tool.asyncrace]\noutput-format = 'json'\n")
    fake.result = engine.CheckResult(diagnostics=[diag()], suppressed=[], files=1)
    r = run("check")
    assert json.loads(r.stdout)[0]["code"] == "ARC001"  # and no summary line


def test_exit_zero(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(diagnostics=[diag()], suppressed=[], files=1)
    r = run("check", "--exit-zero")
    assert r.exit_code == 0 and "Found 1 finding in 1 file." in r.stdout


def test_quiet(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(diagnostics=[diag()], suppressed=[], files=1)
    r = run("check", "-q")
    assert r.stdout == "a.py:3:5: ARC001 ARC001 finding\n"
    fake.result = engine.CheckResult(diagnostics=[], suppressed=[], files=1)
    assert run("check", "--quiet").stdout == ""


@pytest.mark.parametrize("fmt", ["json", "sarif", "github"])
def test_machine_formats_have_no_summary(project: Path, fake: FakeEngine, fmt: str) -> None:
    fake.result = engine.CheckResult(diagnostics=[diag()], suppressed=[], files=1)
    r = run("check", "--output-format", fmt)
    assert r.exit_code == 1
    assert "Found" not in r.stdout
    if fmt != "github":
        json.loads(r.stdout)
    else:
        assert r.stdout.startswith("::error")


def test_statistics(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(
        diagnostics=[diag(), diag(row=5), diag("ARC003", name="guard-before-registration")],
        suppressed=[],
        files=1,
    )
    r = run("check", "--statistics")
    assert r.exit_code == 1
    lines = r.stdout.splitlines()
    assert lines[0].split("\t") == ["2", "ARC001", "state-clobbered-across-await"]
    assert lines[1].split("\t") == ["1", "ARC003", "guard-before-registration"]
    assert lines[-1] == "Found 3 findings in 1 file."
    assert "a.py:3:5" not in r.stdout


def test_summary_line() -> None:
    assert summary_line([], 0) == "All checks passed!"
    assert summary_line([], 2) == "All checks passed! (2 suppressed by noqa or per-file-ignores)"
    assert summary_line([diag()], 0) == "Found 1 finding in 1 file."
    assert (
        summary_line([diag(), diag(path="b.py")], 1)
        == "Found 2 findings in 2 files (1 suppressed by noqa or per-file-ignores)."
    )


# ---------------------------------------------------------------------------- suppressed


def test_suppressed_count_and_show_suppressed(project: Path, fake: FakeEngine) -> None:
    hidden = diag("ARC003", row=7, suppressed=True)
    fake.result = engine.CheckResult(diagnostics=[diag()], suppressed=[hidden], files=1)
    r = run("check")
    assert r.stdout.splitlines() == [
        "a.py:3:5: ARC001 ARC001 finding",
        "Found 1 finding in 1 file (1 suppressed by noqa or per-file-ignores).",
    ]
    r = run("check", "--show-suppressed")
    assert r.stdout.splitlines() == [
        "a.py:3:5: ARC001 ARC001 finding",
        "",
        "Suppressed by noqa or per-file-ignores (1):",
        "a.py:7:5: ARC003 ARC003 finding",
        "Found 1 finding in 1 file (1 suppressed by noqa or per-file-ignores).",
    ]
    assert r.exit_code == 1


def test_only_suppressed_exits_0(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(diagnostics=[], suppressed=[diag(suppressed=True)], files=1)
    r = run("check", "--show-suppressed")
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == "Suppressed by noqa or per-file-ignores (1):"
    assert r.stdout.splitlines()[-1].startswith("All checks passed! (1 suppressed")


def test_show_suppressed_json_marks_items(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(
        diagnostics=[diag()], suppressed=[diag("ARC003", suppressed=True)], files=1
    )
    items = json.loads(run("check", "--output-format", "json", "--show-suppressed").stdout)
    assert [(i["code"], i["suppressed"]) for i in items] == [("ARC001", False), ("ARC003", True)]
    items = json.loads(run("check", "--output-format", "json").stdout)
    assert [i["code"] for i in items] == ["ARC001"]


def test_show_suppressed_sarif_and_github(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(
        diagnostics=[], suppressed=[diag("ARC003", suppressed=True)], files=1
    )
    sarif = json.loads(run("check", "--output-format", "sarif", "--show-suppressed").stdout)
    (res,) = sarif["runs"][0]["results"]
    assert res["suppressions"] == [{"kind": "inSource"}]
    gh = run("check", "--output-format", "github", "--show-suppressed").stdout
    assert "::error" not in gh and gh.startswith("::group::")


# ------------------------------------------------------------------------------- selection


def test_select_ignore_extend_select_passed_to_engine(project: Path, fake: FakeEngine) -> None:
    run("check", "--select", "ARC001,ARC003", "--select", "ARC005", "--ignore", "ARC003")
    enabled = fake.calls[-1]["settings"].enabled
    assert enabled - {"ARC900", "ARC901", "ARC902", "ARC903"} == {"ARC001", "ARC005"}
    run("check", "--extend-select", "ARC100")
    assert "ARC100" in fake.calls[-1]["settings"].enabled
    run("check", "--select", "arc0", "--ignore", "ARC00")
    assert fake.calls[-1]["settings"].enabled == {"ARC900", "ARC901", "ARC902", "ARC903"}


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_unknown_code_exit_2(project: Path, fake: FakeEngine, option: str) -> None:
    r = run("check", option, "ARC001,ARC042")
    assert r.exit_code == 2
    assert f"asyncrace: error: {option}: unknown rule selector 'ARC042'" in r.stderr
    assert "known codes: ARC001, ARC002" in r.stderr
    assert fake.calls == []


def test_extend_exclude_option(project: Path, fake: FakeEngine) -> None:
    run("check", "--extend-exclude", "pkg")
    assert fake.calls[-1]["paths"] == [project / "a.py"]


# ---------------------------------------------------------------------------------- errors


def test_config_error_exit_2_without_traceback(project: Path, fake: FakeEngine) -> None:
    (project / "pyproject.toml").write_text("[tool.asyncrace]\nselct = ['ARC001']\n")
    r = run("check")
    assert r.exit_code == 2
    assert r.stderr == (
        "asyncrace: error: pyproject.toml:2: tool.asyncrace: unknown key 'selct' "
        "(did you mean 'select'?)\n"
    )
    assert "Traceback" not in r.output


def test_bad_toml_exit_2(project: Path, fake: FakeEngine) -> None:
    (project / "pyproject.toml").write_text("[tool.asyncrace]\nselect = [\n")
    r = run("check")
    assert r.exit_code == 2 and "pyproject.toml:2: invalid TOML" in r.stderr


def test_explicit_config(project: Path, fake: FakeEngine) -> None:
    (project / "other.toml").write_text("select = ['ARC005']\n")
    r = run("check", "--config", "other.toml")
    assert r.exit_code == 0
    assert fake.calls[-1]["settings"].enabled - {"ARC900", "ARC901", "ARC902", "ARC903"} == {
        "ARC005"
    }
    r = run("check", "--config", "missing.toml")
    assert r.exit_code == 2 and "missing.toml: configuration file does not exist" in r.stderr


def test_missing_path_exit_2(project: Path, fake: FakeEngine) -> None:
    r = run("check", "a.py", "nope/")
    assert r.exit_code == 2
    assert r.stderr == "asyncrace: error: path does not exist: nope/\n"
    assert fake.calls == []


def test_usage_error_exit_2(project: Path) -> None:
    assert run("check", "--output-format", "xml").exit_code == 2
    assert run("check", "--jobs", "0").exit_code == 2
    assert run("frobnicate").exit_code == 2


def test_engine_exception_is_internal_error(project: Path, fake: FakeEngine) -> None:
    fake.raises = RuntimeError("boom")
    r = run("check")
    assert r.exit_code == 2
    assert "asyncrace: internal error: RuntimeError: boom" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("check", "--verbose")
    assert r.exit_code == 2 and "Traceback" in r.stderr and "RuntimeError: boom" in r.stderr


def test_internal_error_diagnostic_exit_2_even_with_exit_zero(
    project: Path, fake: FakeEngine
) -> None:
    fake.result = engine.CheckResult(
        diagnostics=[diag("ARC902", message="crashed in rule ARC001", name="internal-error")],
        suppressed=[],
        files=1,
    )
    r = run("check", "--exit-zero")
    assert r.exit_code == 2
    assert "a.py:3:5: ARC902 crashed in rule ARC001" in r.stdout
    assert "asyncrace: internal error: a.py: crashed in rule ARC001" in r.stderr


def test_syntax_error_diagnostic_is_a_finding(project: Path, fake: FakeEngine) -> None:
    fake.result = engine.CheckResult(
        diagnostics=[diag("ARC900", message="invalid syntax", name="syntax-error")],
        suppressed=[],
        files=1,
    )
    assert run("check").exit_code == 1


# ----------------------------------------------------------------------- paths and options


def test_paths_and_src(project: Path, fake: FakeEngine) -> None:
    run("check", "pkg")
    assert fake.calls[-1]["paths"] == [project / "pkg" / "b.py"]
    (project / "pyproject.toml").write_text("[tool.asyncrace]\nsrc = ['pkg']\n")
    run("check")
    assert fake.calls[-1]["paths"] == [project / "pkg" / "b.py"]


def test_no_python_files(project: Path, fake: FakeEngine) -> None:
    (project / "empty").mkdir()
    r = run("check", "empty")
    assert r.exit_code == 0 and fake.calls == []
    assert "no Python files found" in r.stderr and r.stdout == "All checks passed!\n"


def test_force_exclude(project: Path, fake: FakeEngine) -> None:
    (project / "build").mkdir()
    (project / "build" / "gen.py").write_text("z = 3\n")
    run("check", "build/gen.py", "a.py")
    assert fake.calls[-1]["paths"] == [project / "a.py", project / "build" / "gen.py"]
    run("check", "--force-exclude", "build/gen.py", "a.py")
    assert fake.calls[-1]["paths"] == [project / "a.py"]
    n = len(fake.calls)
    r = run("check", "--force-exclude", "build/gen.py")
    assert r.exit_code == 0 and len(fake.calls) == n and r.stderr == ""


def test_cache_and_jobs_options(project: Path, fake: FakeEngine) -> None:
    run("check", "--no-cache", "-j", "3")
    assert fake.calls[-1]["cache_dir"] is None and fake.calls[-1]["jobs"] == 3
    run("check", "--cache-dir", "cachehere")
    assert fake.calls[-1]["cache_dir"] == Path("cachehere")


def test_respect_gitignore_flag(project: Path, fake: FakeEngine) -> None:
    (project / ".gitignore").write_text("pkg/\n")
    run("check")
    assert fake.calls[-1]["paths"] == [project / "a.py"]
    run("check", "--no-respect-gitignore")
    assert fake.calls[-1]["paths"] == [project / "a.py", project / "pkg" / "b.py"]


# ----------------------------------------------------------------------------------- stdin


def test_stdin(project: Path, fake: FakeEngine) -> None:
    (project / "sub").mkdir()
    (project / "sub" / "asyncrace.toml").write_text("select = ['ARC003']\n")
    fake.result = engine.CheckResult(diagnostics=[diag(path="sub/app.py")], suppressed=[], files=1)
    src = "# coding: latin-1\nname = 'caf\xe9'\n".encode("latin-1")
    r = run("check", "-", "--stdin-filename", "sub/app.py", input=src)
    assert r.exit_code == 1
    call = fake.calls[-1]
    assert call["paths"] == []
    assert call["stdin"] == engine.StdinInput("sub/app.py", "# coding: latin-1\nname = 'café'\n")
    # the configuration is searched from the stdin file's directory
    assert call["settings"].config_path == project / "sub" / "asyncrace.toml"
    assert r.stdout.startswith("sub/app.py:3:5: ARC001")


def test_stdin_filename_without_dash_reads_stdin(project: Path, fake: FakeEngine) -> None:
    run("check", "--stdin-filename", "x.py", input="a = 1\n")
    assert fake.calls[-1]["stdin"] == engine.StdinInput("x.py", "a = 1\n")


def test_stdin_with_force_exclude(project: Path, fake: FakeEngine) -> None:
    r = run("check", "-", "--stdin-filename", "build/x.py", "--force-exclude", input="a = 1\n")
    assert r.exit_code == 0 and fake.calls == []


def test_stdin_undecodable(project: Path, fake: FakeEngine) -> None:
    r = run("check", "-", "--stdin-filename", "x.py", input=b"x = '\xff'\n")
    assert r.exit_code == 2 and "cannot decode stdin" in r.stderr


# ----------------------------------------------------------------------------------- color


def test_color_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli_mod._use_color("always") is True
    assert cli_mod._use_color("never") is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli_mod._use_color("auto") is False
    assert cli_mod._use_color("always") is True


def test_no_color_env_disables_colour_on_a_terminal(
    project: Path, fake: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.result = engine.CheckResult(diagnostics=[diag()], suppressed=[], files=1)
    seen: list[bool] = []
    real_use_color = cli_mod._use_color

    def spy(choice: str) -> bool:
        monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
        seen.append(real_use_color(choice))
        return seen[-1]

    monkeypatch.setattr(cli_mod, "_use_color", spy)
    r = run("check", "--output-format", "full", env={"NO_COLOR": "1"})
    assert seen == [False] and "\x1b[" not in r.stdout
    r = run("check", "--output-format", "full", "--color", "always")
    assert seen[-1] is True and "\x1b[" in r.stdout


# ------------------------------------------------------------------------------------ rule


def test_rule_page_from_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = {"ARC001": "# ARC001 state-clobbered-across-await\n\nLong text.\n"}
    monkeypatch.setattr(cli_mod, "rule_page", pages.get)
    r = run("rule", "arc001")
    assert r.exit_code == 0 and r.stdout == pages["ARC001"]


def test_rule_without_page_falls_back_to_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_mod, "rule_page", lambda code: None)
    r = run("rule", "ARC100")
    assert r.exit_code == 0
    assert r.stdout.startswith("# ARC100: unused-noqa\n")
    assert "--extend-select ARC100" in r.stdout


def test_rule_page_lookup_reads_repository_rules() -> None:
    page = cli_mod.rule_page("ARC001")
    repo = Path(cli_mod.__file__).resolve().parents[2] / "rules" / "ARC001.md"
    if repo.is_file():
        assert page == repo.read_text(encoding="utf-8")
    assert cli_mod.rule_page("ARC999") is None


def test_rule_unknown_and_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    r = run("rule", "ARC999")
    assert r.exit_code == 2 and "unknown rule code 'ARC999'" in r.stderr
    assert "ARC001" in r.stderr
    assert run("rule").exit_code == 2
    assert run("rule", "ARC001", "--all").exit_code == 2


def test_rule_all() -> None:
    r = run("rule", "--all")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["code", "name", "default", "summary"]
    by_code = {line.split()[0]: line.split() for line in lines[1:]}
    assert by_code["ARC001"][1:3] == ["state-clobbered-across-await", "yes"]
    assert by_code["ARC100"][1:3] == ["unused-noqa", "no"]
    assert by_code["ARC900"][2] == "always"
    assert len(by_code) == 11


# ------------------------------------------------------------------- end to end (real engine)

RACY = """\
class Cache:
    async def load(self, key):
        self.current = key{comment}
        await self.fetch()
        return self.current

    async def fetch(self):
        pass


async def load_all(cache: Cache, keys):
    import asyncio

    return await asyncio.gather(*(cache.load(k) for k in keys))
"""


@pytest.fixture
def racy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.asyncrace]\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "cache.py").write_text(RACY.format(comment=""))
    (tmp_path / "app" / "clean.py").write_text("async def f():\n    return 1\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def e2e(*args: str, input: str | None = None) -> Result:
    return run("check", "--no-cache", "-j", "1", *args, input=input)


def test_e2e_finding(racy: Path) -> None:
    r = e2e()
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert lines[0].startswith("app/cache.py:3:9: ARC001 `self.current`")
    assert lines[-1] == "Found 1 finding in 1 file."
    assert e2e("--select", "ARC003").exit_code == 0
    assert e2e("--ignore", "ARC0").stdout == "All checks passed!\n"


def test_e2e_noqa_and_bare_noqa(racy: Path) -> None:
    cache = racy / "app" / "cache.py"
    cache.write_text(RACY.format(comment="  # noqa: ARC001"))
    r = e2e()
    assert r.exit_code == 0
    assert r.stdout == "All checks passed! (1 suppressed by noqa or per-file-ignores)\n"
    cache.write_text(RACY.format(comment="  # noqa"))
    assert e2e().exit_code == 1  # a bare noqa does not silence asyncrace
    cache.write_text("# asyncrace: noqa: ARC001\n" + RACY.format(comment=""))
    assert e2e().exit_code == 0


def test_e2e_unused_noqa(racy: Path) -> None:
    (racy / "app" / "cache.py").write_text(RACY.format(comment="  # noqa: ARC001, ARC003, E501"))
    assert e2e().exit_code == 0
    r = e2e("--extend-select", "ARC100")
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0] == (
        "app/cache.py:3:29: ARC100 Unused `noqa` directive (unused: `ARC003`)"
    )


def test_e2e_per_file_ignores(racy: Path) -> None:
    (racy / "pyproject.toml").write_text(
        "[tool.asyncrace.per-file-ignores]\n'app/cache.py' = ['ARC001']\n"
    )
    r = e2e("--show-suppressed")
    assert r.exit_code == 0
    assert "Suppressed by noqa or per-file-ignores (1):" in r.stdout


def test_e2e_json_and_stdin(racy: Path) -> None:
    items = json.loads(e2e("--output-format", "json").stdout)
    assert [(i["code"], i["location"]["row"]) for i in items] == [("ARC001", 3)]
    r = e2e("-", "--stdin-filename", "app/other.py", input=RACY.format(comment=""))
    assert r.exit_code == 1
    assert r.stdout.startswith("app/other.py:3:9: ARC001")


def test_e2e_syntax_error_is_reported(racy: Path) -> None:
    (racy / "app" / "broken.py").write_text("def f(:\n")
    r = e2e()
    assert r.exit_code == 1
    assert "app/broken.py:1:" in r.stdout and "ARC900" in r.stdout


def test_e2e_cache_dir(racy: Path) -> None:
    args = ["check", "-j", "1", "--cache-dir", str(racy / "c")]
    first, second = run(*args), run(*args)
    assert first.exit_code == second.exit_code == 1
    assert first.stdout == second.stdout


def test_e2e_python_dash_m(racy: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "asyncrace", "check", "--no-cache", "app"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("app/cache.py:3:9: ARC001")


def test_reader_closing_the_pipe_is_not_an_error() -> None:
    """``asyncrace check . | head -1``: no traceback, the normal exit code."""
    import subprocess
    import sys

    fixtures = Path(__file__).parent / "fixtures"
    proc = subprocess.Popen(
        [sys.executable, "-m", "asyncrace", "check", str(fixtures), "--output-format", "full"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # what head does after its first line
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err and "internal error" not in err


def test_the_real_command_exits_fast_with_click_s_status_and_all_its_output(
    racy: Path,
) -> None:
    """``run()`` (console script, ``python -m``) leaves without tearing the interpreter down;
    the exit status must still be click's and every byte written before must arrive, also
    when it is much more than a pipe buffer."""
    import subprocess
    import sys

    fixtures = Path(__file__).parent / "fixtures"

    def asyncrace(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "asyncrace", *args],
            capture_output=True,
            text=True,
            timeout=300,
        )

    full = asyncrace("check", str(fixtures), "--output-format", "json", "--no-cache")
    assert full.returncode == 1, full.stderr
    assert len(full.stdout) > 100_000  # far more than a pipe buffer
    assert len(json.loads(full.stdout)) > 50  # complete: the JSON document parses
    assert asyncrace("check", "--no-cache", "--exit-zero", "app").returncode == 0
    assert asyncrace("check", "--select", "NOPE1", "app").returncode == 2
    assert asyncrace("--version").returncode == 0
    bad = asyncrace("frobnicate")
    assert bad.returncode == 2 and "No such command" in bad.stderr


def test_only_the_real_command_keeps_the_run_s_objects_until_exit(racy: Path) -> None:
    """A run inside a longer process (tests here, the language server) frees what it built."""
    from asyncrace.run import engine

    assert run("check", "--no-cache", "app").exit_code == 1
    assert not engine._RETAIN and not engine._RETAINED


def test_watch_refuses_stdin_and_baseline_updates(racy: Path) -> None:
    r = run("check", "-", "--watch", input="x = 1\n")
    assert r.exit_code == 2 and "--watch" in r.stderr
    (racy / "b.json").write_text("[]")
    r = run("check", "app", "--watch", "--baseline", "b.json", "--update-baseline")
    assert r.exit_code == 2 and "--watch" in r.stderr
