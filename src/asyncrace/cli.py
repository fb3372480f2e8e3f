"""The command line: ``asyncrace check``, ``asyncrace rule``, ``asyncrace server``. Thin: parse
the options, load the settings, find the files, call the engine, render, choose the exit code.

Exit codes: 0 nothing reported, 1 findings reported (0 with ``--exit-zero``), 2 usage or
configuration error, missing path, or internal error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import click

from asyncrace import __version__, registry
from asyncrace.config import OUTPUT_FORMATS, CliOverrides, ConfigError, LoadedConfig, load
from asyncrace.diagnostic import Diagnostic
from asyncrace.registry import rule_page
from asyncrace.run import discover as discover_mod
from asyncrace.run import engine

if TYPE_CHECKING:
    from asyncrace.run.pipeline import FactsMemory
    from asyncrace.settings import Settings

__all__ = ["main", "rule_page"]

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

CACHE_DIRNAME = ".asyncrace_cache"
STDIN_PATH = "-"

log = logging.getLogger("asyncrace")


def _error(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"asyncrace: error: {message}", err=True)
    sys.exit(code)


def _split_codes(values: Sequence[str]) -> list[str]:
    """``--select ARC001,ARC003 --select ARC005`` -> ``[ARC001, ARC003, ARC005]``."""
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def _use_color(choice: str) -> bool:
    if choice == "always":
        return True
    if choice == "never":
        return False
    # auto: a terminal, and NO_COLOR (any non-empty value, https://no-color.org) unset
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stdout.isatty()


def _stdout_isatty() -> bool:
    return sys.stdout.isatty()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def summary_line(reported: Sequence[Diagnostic], suppressed: int, baselined: int = 0) -> str:
    """``Found 3 findings in 2 files.`` / ``All checks passed!`` (+ suppressed and baselined
    counts)."""
    notes = []
    if suppressed:
        notes.append(f"{suppressed} suppressed by noqa or per-file-ignores")
    if baselined:
        notes.append(f"{baselined} in the baseline")
    extra = f" ({', '.join(notes)})" if notes else ""
    if not reported:
        return f"All checks passed!{extra}"
    files = len({d.path for d in reported})
    return f"Found {_plural(len(reported), 'finding')} in {_plural(files, 'file')}{extra}."


def _configure_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("asyncrace")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.propagate = False


# ------------------------------------------------------------------------------------ commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="asyncrace")
def main() -> None:
    """asyncrace: find concurrency hazards in Python asyncio code."""


# set by :func:`run`, the real entry point: the process ends when the command returns
_ENDS_AFTER = False


def run() -> NoReturn:
    """The ``asyncrace`` command (console script and ``python -m asyncrace``): :func:`main`,
    then an exit that skips tearing the interpreter down. A check builds a million small
    objects; freeing them one by one at the end took 0.6 s of a 6 s run on 1.76 million
    lines, for memory the operating system takes back at once (mypy exits the same way).
    Output is flushed first; the exit status is click's."""
    global _ENDS_AFTER
    _ENDS_AFTER = True
    try:
        main()
        code: int = EXIT_OK
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or EXIT_OK
        else:  # ``sys.exit("message")``
            print(exc.code, file=sys.stderr)
            code = 1
    for stream in (sys.stdout, sys.stderr):
        # a closed pipe, a closed stream: nothing left to flush to
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


class _CheckCommand(click.Command):
    """``check``, with ruff's ``--add-noqa[=REASON]``: the reason only with ``=``, so that
    ``--add-noqa src/`` is the flag and a path (click would take ``src/`` as the value)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rewritten: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                rewritten.extend(args[i:])
                break
            if arg.startswith("--add-noqa="):
                rewritten += ["--add-noqa", "--add-noqa-reason", arg[len("--add-noqa=") :]]
            else:
                rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


@main.command(
    cls=_CheckCommand,
    short_help="Check files or directories for concurrency hazards.",
)
# readable=False: an unreadable file is an ARC901 finding, not a usage error
@click.argument("paths", nargs=-1, type=click.Path(path_type=str, readable=False))
@click.option(
    "--select",
    multiple=True,
    metavar="CODES",
    help="Comma-separated codes or prefixes to enable (replaces the configured `select`).",
)
@click.option(
    "--ignore",
    multiple=True,
    metavar="CODES",
    help="Comma-separated codes or prefixes to disable (added to the configured `ignore`).",
)
@click.option(
    "--extend-select",
    multiple=True,
    metavar="CODES",
    help="Comma-separated codes or prefixes to enable in addition (e.g. ARC100).",
)
@click.option(
    "--extend-exclude",
    multiple=True,
    metavar="PATTERNS",
    help="Comma-separated gitignore-style patterns to exclude in addition.",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERNS",
    help="Comma-separated gitignore-style patterns to exclude (replaces the configured "
    "`exclude`, the default list included).",
)
@click.option(
    "--per-file-ignores",
    multiple=True,
    metavar="PATTERN:CODES",
    help="Comma-separated `pattern:code` pairs, e.g. `tests/**:ARC001,ARC003` (replaces the "
    "configured `per-file-ignores`).",
)
@click.option(
    "--extend-per-file-ignores",
    multiple=True,
    metavar="PATTERN:CODES",
    help="Like --per-file-ignores, added to the configured `per-file-ignores`.",
)
@click.option(
    "--output-format",
    type=click.Choice(OUTPUT_FORMATS),
    default=None,
    help="Output format [default: the configured one, else `full` on a terminal, else `concise`].",
)
@click.option(
    "-o",
    "--output-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Write the report (and the summary line) to FILE instead of standard output.",
)
@click.option("--statistics", is_flag=True, help="Show counts per rule instead of the findings.")
@click.option("--exit-zero", is_flag=True, help="Exit with 0 even when findings are reported.")
@click.option("-q", "--quiet", is_flag=True, help="Only print the findings (no summary).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Use this configuration file (asyncrace.toml or pyproject.toml) instead of searching.",
)
@click.option(
    "--stdin-filename",
    default=None,
    metavar="NAME",
    help="Check source read from stdin (path `-`) as if it were this file.",
)
@click.option(
    "--show-suppressed",
    is_flag=True,
    help="Also list the findings silenced by noqa comments or per-file-ignores.",
)
@click.option(
    "--force-exclude",
    is_flag=True,
    help="Apply exclude patterns to files named on the command line too (for pre-commit).",
)
@click.option(
    "--project-context/--no-project-context",
    default=None,
    help="Analyze the whole project (the configured `src`, else the project root) with PATHS, "
    "but report only findings located in PATHS (for pre-commit, which passes changed files) "
    "[default: on for stdin when a configuration file is found, else off].",
)
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Do not report the findings recorded in this baseline file (JSON).",
)
@click.option(
    "--update-baseline",
    is_flag=True,
    help="With --baseline: record every current finding in FILE (created or rewritten).",
)
@click.option(
    "--strictness",
    type=click.Choice(["proven", "likely"]),
    default=None,
    help="How much to report: `proven` (only with evidence that the code runs concurrently) "
    "or `likely` (also shapes on long-lived objects with no evidence either way) "
    "[default: the configured value, else proven].",
)
@click.option(
    "--respect-gitignore/--no-respect-gitignore",
    default=None,
    help="Skip files ignored by .gitignore [default: the configured value, else yes].",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Number of worker processes [default: the number of CPUs].",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the cache.")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=f"Cache directory [default: <project root>/{CACHE_DIRNAME}].",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Check again whenever a checked file or the configuration changes (Ctrl-C to stop); "
    "facts of unchanged files stay in memory.",
)
@click.option(
    "--show-settings",
    is_flag=True,
    help="Print the settings used for the first path (or the project) and exit.",
)
@click.option(
    "--show-files",
    is_flag=True,
    help="Print the files that would be checked and exit.",
)
@click.option(
    "--add-noqa",
    is_flag=True,
    help="Add `# noqa: CODE` to the line of every finding instead of reporting it; "
    "`--add-noqa=REASON` appends REASON after the codes.",
)
@click.option("--add-noqa-reason", default=None, hidden=True)
@click.option("-v", "--verbose", is_flag=True, help="Explain what is done; tracebacks on errors.")
@click.option(
    "--color",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Colour the output; `auto`: on a terminal unless NO_COLOR is set.",
)
def check(
    paths: tuple[str, ...],
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    extend_exclude: tuple[str, ...],
    exclude: tuple[str, ...],
    per_file_ignores: tuple[str, ...],
    extend_per_file_ignores: tuple[str, ...],
    output_format: str | None,
    output_file: Path | None,
    statistics: bool,
    exit_zero: bool,
    quiet: bool,
    config_path: Path | None,
    stdin_filename: str | None,
    show_suppressed: bool,
    force_exclude: bool,
    project_context: bool | None,
    baseline_path: Path | None,
    update_baseline: bool,
    strictness: str | None,
    respect_gitignore: bool | None,
    jobs: int | None,
    no_cache: bool,
    cache_dir: Path | None,
    watch: bool,
    show_settings: bool,
    show_files: bool,
    add_noqa: bool,
    add_noqa_reason: str | None,
    verbose: bool,
    color: str,
) -> None:
    """Check PATHS (files or directories; default: the configured `src`, else `.`).

    Exit status: 0 nothing reported, 1 findings reported, 2 error."""
    _configure_logging(verbose)
    started = time.perf_counter()
    if update_baseline and baseline_path is None:
        raise click.UsageError("--update-baseline needs --baseline FILE")
    if add_noqa_reason is not None:
        add_noqa = True
    read_stdin = STDIN_PATH in paths or (stdin_filename is not None and not paths)
    if watch and (read_stdin or update_baseline):
        raise click.UsageError("--watch cannot read stdin or update a baseline")
    if add_noqa and (read_stdin or watch or update_baseline):
        raise click.UsageError("--add-noqa cannot read stdin, watch or update a baseline")
    file_args = [Path(p) for p in paths if p != STDIN_PATH]
    stdin_name = stdin_filename if stdin_filename is not None else STDIN_PATH

    # settings: searched from the paths (and the stdin file's directory)
    search_paths = list(file_args)
    if read_stdin and stdin_filename is not None:
        search_paths.append(Path(stdin_filename))
    overrides = CliOverrides(
        select=_split_codes(select) if select else None,
        ignore=_split_codes(ignore),
        extend_select=_split_codes(extend_select),
        extend_exclude=_split_codes(extend_exclude),
        exclude=_split_codes(exclude) if exclude else None,
        per_file_ignores=_pairs("--extend-per-file-ignores", extend_per_file_ignores),
        replace_per_file_ignores=(
            _pairs("--per-file-ignores", per_file_ignores) if per_file_ignores else None
        ),
        output_format=output_format,
        respect_gitignore=respect_gitignore,
        strictness=strictness,
    )
    try:
        loaded: LoadedConfig = load(search_paths, config=config_path, cli=overrides)
    except ConfigError as exc:
        _error(str(exc))
    settings = loaded.settings
    if settings.config_path is not None:
        log.info("asyncrace: using configuration %s", settings.config_path)
    else:
        log.info("asyncrace: no configuration file found, using defaults")
    log.debug("asyncrace: enabled rules: %s", ", ".join(sorted(settings.enabled)))

    for raw in paths:  # before discovery, to name the path exactly as it was written
        if raw != STDIN_PATH and not os.path.exists(raw):
            _error(f"path does not exist: {raw}")
    if not file_args and not read_stdin:
        file_args = list(settings.src) or [Path(".")]

    fmt = loaded.output_format or (
        "full" if _stdout_isatty() and output_file is None else "concise"
    )
    if statistics and fmt not in STATISTICS_FORMATS:
        raise click.UsageError(
            f"--statistics cannot be shown in the {fmt!r} output format "
            f"(one of: {', '.join(STATISTICS_FORMATS)})"
        )
    if show_settings:
        if read_stdin and stdin_filename:
            first = Path(stdin_filename)
        else:
            first = file_args[0] if file_args else Path(".")
        click.echo(_show_settings(first, settings, fmt), nl=False)
        sys.exit(EXIT_OK)
    if show_files:
        try:
            found = discover_mod.discover(file_args, settings, force_exclude=force_exclude)
        except discover_mod.DiscoveryError as exc:
            _error(str(exc))
        for f in found:
            click.echo(str(f))
        sys.exit(EXIT_OK)
    if project_context is None:
        # stdin stands for a file of a project: analyze it with the project, as the language
        # server does, when there is a project (a configuration file was found)
        project_context = bool(
            read_stdin and stdin_filename is not None and settings.config_path is not None
        )
        if project_context:
            log.info("asyncrace: stdin analyzed with the project at %s", settings.project_root)

    memory: FactsMemory | None = None
    project: engine.ProjectState | None = None
    if watch:
        from asyncrace.run.pipeline import FactsMemory as Memory

        # room for the facts of a whole large project (1.76 million lines: about 1.4 million
        # events, 800 MB): an incremental re-check may read the bodies of most modules, and a
        # memory smaller than what one check reads keeps none of them (least recently used)
        memory = Memory(limit=WATCH_MEMORY_EVENTS)
        project = engine.ProjectState()
    config = {"loaded": loaded}  # --watch reads it again when it changes

    def once(files: list[Path] | None = None) -> tuple[engine.CheckResult, list[Path]]:
        """Discover (unless ``files`` are given), analyze and report once; the result and the
        files analyzed."""
        return _check_once(
            file_args,
            config["loaded"].settings,
            fmt,
            files=files,
            state=project,
            read_stdin=read_stdin,
            stdin_filename=stdin_filename,
            stdin_name=stdin_name,
            force_exclude=force_exclude,
            project_context=project_context,
            baseline_path=baseline_path,
            update_baseline=update_baseline,
            jobs=jobs,
            no_cache=no_cache,
            cache_dir=cache_dir,
            verbose=verbose,
            color=color,
            statistics=statistics,
            quiet=quiet,
            show_suppressed=show_suppressed,
            memory=memory,
            output_file=output_file,
            add_noqa=(add_noqa_reason or "") if add_noqa else None,
        )

    started_ns = time.time_ns()
    result, files = once()
    log.info(
        "asyncrace: checked %s in %.2fs",
        _plural(result.files, "file"),
        time.perf_counter() - started,
    )
    if watch:

        def reload() -> Settings:
            """The configuration read again (a ConfigError is the caller's)."""
            config["loaded"] = load(search_paths, config=config_path, cli=overrides)
            return config["loaded"].settings

        assert project is not None
        cache_root = None if no_cache else (cache_dir or settings.project_root / CACHE_DIRNAME)
        _watch(  # never returns: Ctrl-C ends it with status 0
            once, reload, file_args, files, settings, project, started_ns, cache_root
        )

    if result.has_internal_error:
        for d in result.diagnostics:
            if d.code == "ARC902":
                click.echo(f"asyncrace: internal error: {d.path}: {d.message}", err=True)
        sys.exit(EXIT_ERROR)
    if add_noqa:
        sys.exit(EXIT_OK)
    if result.diagnostics and not exit_zero:
        sys.exit(EXIT_FINDINGS)
    sys.exit(EXIT_OK)


# --statistics is a table (the text formats) or JSON, as in ruff
STATISTICS_FORMATS = ("concise", "full", "json")


def _pairs(option: str, values: Sequence[str]) -> dict[str, list[str]]:
    """``--per-file-ignores 'tests/**:ARC001,ARC003' --per-file-ignores '__init__.py:ARC'``
    -> ``{"tests/**": ["ARC001", "ARC003"], "__init__.py": ["ARC"]}``. ruff's
    ``pattern:code`` pairs, comma-separated; a code without a pattern belongs to the pair
    before it. The pattern is what precedes the last ``:``."""
    out: dict[str, list[str]] = {}
    for value in values:
        current: str | None = None
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            if ":" in part:
                pattern, _, code = part.rpartition(":")
                pattern, code = pattern.strip(), code.strip()
                if not pattern or not code:
                    raise click.BadParameter(
                        f"expected PATTERN:CODES, got {part!r}", param_hint=f"'{option}'"
                    )
                current = pattern
                out.setdefault(pattern, []).append(code)
            elif current is None:
                raise click.BadParameter(
                    f"expected PATTERN:CODES, got {part!r}", param_hint=f"'{option}'"
                )
            else:
                out[current].append(part)
    return out


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        return "[\n" + "".join(f"\t{_toml_value(v)},\n" for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _show_settings(path: Path, settings: Settings, fmt: str) -> str:
    """``--show-settings``: the resolved settings, as ruff prints them (one ``key = value``
    per line, lists one item per line), for ``path``."""
    pfi = {pattern: sorted(codes) for pattern, codes in settings.per_file_ignores}
    rows: list[tuple[str, object]] = [
        ("config_path", str(settings.config_path) if settings.config_path else "(none)"),
        ("project_root", str(settings.project_root)),
        ("output_format", fmt),
        ("src", [str(p) for p in settings.src]),
        ("exclude", list(settings.exclude)),
        ("extend_exclude", list(settings.extend_exclude)),
        ("respect_gitignore", settings.respect_gitignore),
        ("enabled", sorted(settings.enabled)),
        ("extra_lock_types", list(settings.extra_lock_types)),
        ("extra_reentrant_lock_types", list(settings.extra_reentrant_lock_types)),
        ("extra_executor_functions", list(settings.extra_executor_functions)),
        ("lifecycle_methods", list(settings.lifecycle_methods)),
        ("strictness", settings.strictness),
    ]
    out = [f"Resolved settings for: {json.dumps(os.path.abspath(path), ensure_ascii=False)}", ""]
    out += [f"{key} = {_toml_value(value)}" for key, value in rows]
    if pfi:
        out.append("per_file_ignores = {")
        out += [f"\t{json.dumps(k)} = {_toml_value(v)}," for k, v in pfi.items()]
        out.append("}")
    else:
        out.append("per_file_ignores = {}")
    return "\n".join(out) + "\n"


def _check_once(
    file_args: list[Path],
    settings: Settings,
    fmt: str,
    *,
    files: list[Path] | None = None,
    state: engine.ProjectState | None = None,
    read_stdin: bool,
    stdin_filename: str | None,
    stdin_name: str,
    force_exclude: bool,
    project_context: bool,
    baseline_path: Path | None,
    update_baseline: bool,
    jobs: int | None,
    no_cache: bool,
    cache_dir: Path | None,
    verbose: bool,
    color: str,
    statistics: bool,
    quiet: bool,
    show_suppressed: bool,
    memory: FactsMemory | None,
    output_file: Path | None = None,
    add_noqa: str | None = None,
) -> tuple[engine.CheckResult, list[Path]]:
    try:
        if files is None:
            files = discover_mod.discover(file_args, settings, force_exclude=force_exclude)
    except discover_mod.DiscoveryError as exc:
        _error(str(exc))
    except Exception as exc:  # e.g. an invalid pattern given programmatically
        _internal_error(exc, verbose)
    log.info("asyncrace: %s to check", _plural(len(files), "file"))

    stdin_input: engine.StdinInput | None = None
    if read_stdin:
        from asyncrace.sources import DecodeFailure, decode_source

        if (
            force_exclude
            and stdin_filename is not None
            and discover_mod.is_excluded(stdin_filename, settings)
        ):
            log.info("asyncrace: %s is excluded, not checked", stdin_filename)
        else:
            data = sys.stdin.buffer.read()
            try:
                text = decode_source(data)
            except DecodeFailure as exc:
                _error(f"cannot decode stdin: {exc}")
            stdin_input = engine.StdinInput(stdin_name, text)

    # --project-context: the named files are what is reported, the project is what is analyzed
    report_only: set[str] | None = None
    if project_context:
        report_only = {engine.display_path(f) for f in files}
        if stdin_input is not None:
            report_only.add(engine.display_path(stdin_input.filename))
        if files or stdin_input is not None:
            try:
                project = [p for p in (settings.src or (settings.project_root,)) if p.exists()]
                files = sorted({*files, *discover_mod.discover(project, settings)})
            except Exception as exc:
                _internal_error(exc, verbose)
            log.info("asyncrace: %s analyzed with the project", _plural(len(files), "file"))

    use_color = _use_color(color) and output_file is None

    if not files and stdin_input is None:
        if not (force_exclude and (file_args or read_stdin)):
            click.echo("asyncrace: warning: no Python files found", err=True)
        result = engine.CheckResult(diagnostics=[], suppressed=[], files=0)
    else:
        if _ENDS_AFTER and memory is None:  # the process ends next: nothing need be freed
            engine.retain_until_exit()
        resolved_cache: Path | None = None
        if not no_cache:
            resolved_cache = cache_dir or settings.project_root / CACHE_DIRNAME
        try:
            with _progress_bar(len(files), quiet) as progress:
                extra: dict[str, Any] = {"progress": progress} if progress is not None else {}
                if memory is not None:
                    extra["memory"] = memory
                if not quiet and add_noqa is None:  # for the noqa warnings
                    extra["collect_noqa"] = True
                if state is not None:
                    extra["state"] = state
                result = engine.check(
                    files,
                    settings,
                    stdin=stdin_input,
                    jobs=jobs or os.cpu_count() or 1,
                    cache_dir=resolved_cache,
                    **extra,
                )
        except discover_mod.DiscoveryError as exc:
            _error(str(exc))
        except Exception as exc:
            _internal_error(exc, verbose)

    baselined = 0
    if baseline_path is not None:
        result, baselined = _apply_baseline(
            result, baseline_path, update=update_baseline, analyzed=files, stdin=stdin_input
        )
    if report_only is not None:
        result = replace(
            result,
            diagnostics=[d for d in result.diagnostics if d.path in report_only],
            suppressed=[d for d in result.suppressed if d.path in report_only],
        )

    if add_noqa is not None:
        _add_noqa(result, add_noqa, verbose)
        return result, files
    _warn_malformed_noqa(files, stdin_input, report_only, quiet, result)
    try:
        if output_file is None:
            _report(
                result,
                fmt=fmt,
                color=use_color,
                statistics=statistics,
                quiet=quiet,
                show_suppressed=show_suppressed,
                baselined=baselined,
            )
        else:
            try:
                output_file.parent.mkdir(parents=True, exist_ok=True)
                out = output_file.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                _error(f"cannot write output file {output_file}: {exc.strerror or exc}")
            with out:
                _report(
                    result,
                    fmt=fmt,
                    color=False,
                    statistics=statistics,
                    quiet=quiet,
                    show_suppressed=show_suppressed,
                    baselined=baselined,
                    out=out,
                )
    except BrokenPipeError:
        # the reader stopped early (``asyncrace check . | head``): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except SystemExit:
        raise
    except Exception as exc:
        _internal_error(exc, verbose)
    return result, files


def _warn_malformed_noqa(
    files: Sequence[Path],
    stdin: engine.StdinInput | None,
    report_only: set[str] | None,
    quiet: bool,
    result: engine.CheckResult,
) -> None:
    """Warn (on stderr, as ruff does, not with ``--quiet``) about each ``# noqa`` comment whose
    asyncrace codes are malformed (``# noqa: ARC001ARC003``, ``# noqa: ARC00l``); the run goes
    on. When the run knows which files mention ``noqa`` (it read every file for the run
    cache's key), only those are read again; only those with ``#``, ``noqa`` and ``ARC`` on
    one line are tokenized (:func:`asyncrace.suppress.noqa_problems_in_files`)."""
    if quiet:
        return
    from asyncrace.suppress import noqa_problems_in_files

    named: list[tuple[str, Path]] = []
    if result.noqa_files is not None:
        for display in sorted(result.noqa_files):
            path = result.sources.path(display)
            if path is not None and (report_only is None or display in report_only):
                named.append((display, path))
    else:
        for f in files:
            display = engine.display_path(f)
            if report_only is None or display in report_only:
                named.append((display, f))
    texts = {engine.display_path(stdin.filename): stdin.text} if stdin is not None else {}
    for _, _, message in noqa_problems_in_files(named, texts):
        click.echo(f"asyncrace: warning: {message}", err=True)


def _add_noqa(result: engine.CheckResult, reason: str, verbose: bool) -> None:
    """``--add-noqa``: a ``# noqa: CODE`` comment on the row of every finding reported (not
    on those of the meta codes, which cannot be silenced, nor ARC100's)."""
    from asyncrace.suppress import add_noqa_to_file

    rows: dict[str, dict[int, set[str]]] = {}
    for d in result.diagnostics:
        if d.code in registry.META_CODES or d.code == "ARC100" or d.path == STDIN_PATH:
            continue
        rows.setdefault(d.path, {}).setdefault(d.span.start.row, set()).add(d.code)
    added = 0
    failed = False
    for display in sorted(rows):
        try:
            n, skipped = add_noqa_to_file(Path(display), rows[display], reason)
        except OSError as exc:
            click.echo(
                f"asyncrace: error: cannot add noqa comments to {display}: {exc.strerror or exc}",
                err=True,
            )
            failed = True
            continue
        except Exception as exc:
            _internal_error(exc, verbose)
        added += n
        for row in skipped:
            click.echo(
                f"asyncrace: warning: {display}:{row}: cannot add a noqa comment there "
                "(the line ends inside a string or a continued line); add it by hand",
                err=True,
            )
    if added:
        click.echo(f"Added {_plural(added, 'noqa directive')}.", err=True)
    if failed:
        sys.exit(EXIT_ERROR)


# --watch: the facts kept in memory between checks, in events (about 570 bytes each)
WATCH_MEMORY_EVENTS = 1_600_000
# --watch: how long the file events of one save may keep coming (milliseconds) before a
# check starts, and how often it looks whether a root it watches still exists
WATCH_DEBOUNCE_MS = 30
WATCH_STEP_MS = 30
WATCH_ROOT_POLL = 0.5
CONFIG_FILES = ("pyproject.toml", "asyncrace.toml")


def _watch(
    once: Callable[[list[Path] | None], tuple[engine.CheckResult, list[Path]]],
    reload: Callable[[], Settings],
    roots: Sequence[Path],
    files: list[Path],
    settings: Settings,
    project: engine.ProjectState,
    started: int,
    cache_root: Path | None = None,
) -> NoReturn:
    """Check again on every change, until interrupted (exit status 0), from the operating
    system's file events (``watchfiles``: inotify, FSEvents, ReadDirectoryChangesW), not by
    looking at the files: an idle watch costs nothing. The roots are watched recursively, and
    the configuration files that apply (and those of the project root).

    * A changed ``.py`` file is read and hashed again, and only it (``engine.ProjectState``);
      the facts of the others stay in memory, and so does the project snapshot.
    * A file added or removed, or a ``.gitignore`` changed: discovery runs again.
    * ``pyproject.toml``/``asyncrace.toml`` changed: the configuration is read again (an error
      in it is reported, and the watch waits for the fix).
    * A root that disappears (a ``git checkout``) is reported, and watched again once back.

    Events that arrive while a check runs are kept by the watcher and start the next check at
    once. ``started``: when the first check began (``time.time_ns``): a file saved during it
    (modified after that) is checked again at once."""
    import gc

    from watchfiles import Change, DefaultFilter, watch

    gc.unfreeze()  # each run freezes what it built (gc_paused); a long watch must collect it
    base_filter = DefaultFilter()
    own = os.path.abspath(cache_root) + os.sep if cache_root is not None else None

    def relevant(change: Change, path: str) -> bool:
        if own is not None and path.startswith(own):
            return False  # what the checks write
        name = os.path.basename(path)
        if name.endswith(".py") or name in CONFIG_FILES or name == ".gitignore":
            return base_filter(change, path)
        if change == Change.added:  # a new directory: discovery finds what it holds
            return os.path.isdir(path) and base_filter(change, path)
        if change == Change.deleted:  # a directory removed, with checked files in it
            below = path + os.sep
            return any(str(f).startswith(below) for f in files)
        return False

    def watched() -> list[Path]:
        paths = {Path(os.path.abspath(r)) for r in roots if os.path.exists(r)}
        for p in (settings.config_path, *(settings.project_root / n for n in CONFIG_FILES)):
            if p is not None and p.is_file():
                paths.add(Path(os.path.abspath(p)))
        return sorted(paths)

    def saved_since(t: int) -> bool:
        """A checked file or a configuration file written since ``t`` (``time.time_ns``)."""
        for f in [*files, *watched()]:
            with contextlib.suppress(OSError):
                if os.path.isfile(f) and os.stat(f).st_mtime_ns >= t:
                    return True
        return False

    def recheck(rediscover: bool) -> None:
        nonlocal files, started
        click.echo(
            f"\n[{time.strftime('%H:%M:%S')}] asyncrace: a file changed, checking again",
            err=True,
        )
        started = time.time_ns()
        with contextlib.suppress(SystemExit):  # the error is printed; watch for the fix
            _, files = once(None if rediscover else files)
        gc.unfreeze()

    announced = False
    lost = False  # a root was seen gone: check again once it is back
    try:
        while True:
            if any(not os.path.exists(r) for r in roots):
                lost = True
                time.sleep(WATCH_ROOT_POLL)  # a root is gone: wait until it is back
                continue
            if lost:  # (also when it came back before this loop saw it gone)
                lost = False
                project.touch(map(str, files))
                recheck(True)
            restart = False
            up = False
            for changes in watch(
                *watched(),
                watch_filter=relevant,
                debounce=WATCH_DEBOUNCE_MS,
                step=WATCH_STEP_MS,
                rust_timeout=int(WATCH_ROOT_POLL * 1000),
                yield_on_timeout=True,
                raise_interrupt=True,
            ):
                if not up:  # the watcher runs: nothing written from here on is missed
                    up = True
                    if not announced:
                        announced = True
                        click.echo("asyncrace: watching for changes (Ctrl-C to stop)", err=True)
                    if saved_since(started):  # written before it ran: check again
                        project.touch(map(str, files))
                        try:
                            settings = reload()
                        except ConfigError as exc:
                            click.echo(f"asyncrace: error: {exc}", err=True)
                            continue
                        recheck(True)
                        restart = True
                        break
                if not changes:  # a timeout: are the roots still there?
                    if any(not os.path.exists(r) for r in roots):
                        click.echo("asyncrace: error: a checked path disappeared", err=True)
                        lost = True
                        restart = True
                        break
                    continue
                names = {os.path.basename(p) for _c, p in changes}
                project.touch(p for _c, p in changes)
                if names & set(CONFIG_FILES):
                    try:
                        settings = reload()
                    except ConfigError as exc:
                        click.echo(f"asyncrace: error: {exc}", err=True)
                        restart = True  # (an editor may have replaced the file: watch anew)
                        break
                    click.echo("asyncrace: configuration changed, read again", err=True)
                    recheck(True)
                    restart = True
                    break
                rediscover = ".gitignore" in names or any(c != Change.modified for c, _p in changes)
                recheck(rediscover)
            if not restart:  # the watcher stopped by itself
                time.sleep(WATCH_ROOT_POLL)
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)


def _apply_baseline(
    result: engine.CheckResult,
    path: Path,
    *,
    update: bool,
    analyzed: Sequence[Path],
    stdin: engine.StdinInput | None,
) -> tuple[engine.CheckResult, int]:
    """Leave out the findings recorded in the baseline ``path`` (written first from this run's
    findings when ``update``); returns the result to report and how many were left out."""
    from asyncrace import baseline as baseline_mod

    if update:
        before: set[str] = set()
        if path.is_file():
            with contextlib.suppress(baseline_mod.BaselineError):  # rewritten below
                before = set(baseline_mod.load(path).fingerprints)
        items = baseline_mod.entries(result.diagnostics, result.sources, path.parent)
        try:
            baseline_mod.write(path, items)
        except OSError as exc:
            _error(f"{path}: cannot write baseline: {exc.strerror or exc}")
        now = {e.fingerprint for e in items}
        dropped = len(before - now)
        click.echo(
            f"asyncrace: baseline {path}: recorded {_plural(len(items), 'finding')}"
            + (f", dropped {dropped} no longer found" if dropped else ""),
            err=True,
        )
    try:
        loaded = baseline_mod.load(path)
    except FileNotFoundError:
        _error(f"baseline file does not exist: {path} (create it with --update-baseline)")
    except baseline_mod.BaselineError as exc:
        _error(str(exc))
    split = baseline_mod.split(result.diagnostics, result.sources, loaded)
    # entries for files that were analyzed but no longer match: fixed or edited findings
    checked = {baseline_mod.rebase_path(str(p), path.parent) for p in analyzed}
    if stdin is not None:
        checked.add(baseline_mod.rebase_path(stdin.filename, path.parent))
    stale = [e for e in split.stale if e.path in checked]
    if stale and not update:
        click.echo(
            f"asyncrace: note: {len(stale)} baseline "
            f"{'entry no longer matches' if len(stale) == 1 else 'entries no longer match'} "
            f"any finding ({path}); run with --update-baseline to drop "
            f"{'it' if len(stale) == 1 else 'them'}",
            err=True,
        )
    return replace(result, diagnostics=split.new), len(split.baselined)


# below this many files a run is over before a bar would be worth drawing
PROGRESS_MIN_FILES = 200


@contextlib.contextmanager
def _progress_bar(total: int, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for long runs, only when stderr is a terminal (never in CI,
    pre-commit, editors or pipes) and not with ``--quiet``; gone when the run ends."""
    if quiet or total < PROGRESS_MIN_FILES or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")))
    with Progress(
        TextColumn("checking"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("check", total=total)
        yield lambda n: bar.advance(task, n)


def _internal_error(exc: BaseException, verbose: bool) -> NoReturn:
    click.echo(f"asyncrace: internal error: {type(exc).__name__}: {exc}", err=True)
    if verbose:
        click.echo("".join(traceback.format_exception(exc)), err=True, nl=False)
    else:
        click.echo("asyncrace: run with --verbose for the traceback", err=True)
    sys.exit(EXIT_ERROR)


def _report(
    result: engine.CheckResult,
    *,
    fmt: str,
    color: bool,
    statistics: bool,
    quiet: bool,
    show_suppressed: bool,
    baselined: int = 0,
    out: TextIO | None = None,
) -> None:
    """Render the result to ``out`` (standard output by default)."""
    import shutil

    from asyncrace.output import render, render_statistics, render_statistics_json

    reported = result.diagnostics
    suppressed = [d if d.suppressed else _mark(d) for d in result.suppressed]
    width = shutil.get_terminal_size((100, 24)).columns if out is None else 100

    def line(text: str = "") -> None:
        click.echo(text, file=out, color=color)

    def echo(text: str) -> None:
        text = text.rstrip("\n")
        if text:
            line(text)

    text_format = fmt in ("concise", "full")
    if statistics and fmt == "json":
        echo(render_statistics_json(reported))
    elif statistics:
        echo(render_statistics(reported))
        if show_suppressed and suppressed:
            echo(f"\nSuppressed by noqa or per-file-ignores ({len(suppressed)}):")
            echo(render_statistics(suppressed))
    elif show_suppressed and suppressed and fmt == "sarif":
        # SARIF marks them itself ("suppressions": [{"kind": "inSource"}])
        echo(render(fmt, [*reported, *suppressed], result.sources, color=color, width=100))
    elif show_suppressed and suppressed and fmt in ("json", "json-lines"):
        items = json.loads(render("json", reported, result.sources))
        hidden = json.loads(render("json", suppressed, result.sources))
        for item in items:
            item["suppressed"] = False
        for item in hidden:
            item["suppressed"] = True
        if fmt == "json":
            echo(json.dumps(items + hidden, indent=2, sort_keys=True))
        else:
            for item in items + hidden:
                line(json.dumps(item, sort_keys=True, separators=(",", ":")))
    else:
        echo(render(fmt, reported, result.sources, color=color, width=width))
        # one document each: suppressed findings cannot follow it
        if show_suppressed and suppressed and fmt not in ("gitlab", "junit"):
            header = f"Suppressed by noqa or per-file-ignores ({len(suppressed)}):"
            if fmt == "github":  # a collapsed log group, not annotations
                line(f"::group::{header}")
                echo(render("concise", suppressed, result.sources))
                line("::endgroup::")
            else:
                if fmt == "full" or reported:
                    line("")
                line(click.style(header, bold=True) if color else header)
                echo(render(fmt, suppressed, result.sources, color=color, width=width))
    if text_format and not quiet:
        if fmt == "full" and (reported or (show_suppressed and suppressed)) and not statistics:
            line("")
        line(summary_line(reported, len(result.suppressed), baselined))


def _mark(d: Diagnostic) -> Diagnostic:
    return replace(d, suppressed=True)


# ---------------------------------------------------------------------------------- rule pages


@main.command(short_help="Explain a rule (or list every rule with --all).")
@click.argument("code", required=False)
@click.option("--all", "show_all", is_flag=True, help="List every rule.")
@click.option(
    "--output-format",
    "rule_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="`json`: ruff's shape (name, code, linter, summary, explanation, ...).",
)
def rule(code: str | None, show_all: bool, rule_format: str) -> None:
    """Explain rule CODE (e.g. ARC001), or list every rule with --all."""
    if show_all and code:
        raise click.UsageError("give a CODE or --all, not both")
    if rule_format == "json":
        if show_all:
            click.echo(json.dumps([_rule_json(r) for r in registry.RULES], indent=2))
            return
        if not code:
            raise click.UsageError("give a rule CODE (e.g. ARC001) or --all")
        found = registry.BY_CODE.get(code.strip().upper())
        if found is None:
            _error(f"unknown rule code {code!r} (known codes: {', '.join(registry.CODES)})")
        click.echo(json.dumps(_rule_json(found), indent=2))
        return
    if show_all:
        rows = [
            (
                r.code,
                r.name,
                "always" if r.meta else ("yes" if r.default else "no"),
                r.summary,
            )
            for r in registry.RULES
        ]
        header = ("code", "name", "default", "summary")
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(3)]
        for row in [header, *rows]:
            click.echo(
                "  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True))
                + "  "
                + row[3]
            )
        return
    if not code:
        raise click.UsageError("give a rule CODE (e.g. ARC001) or --all")
    key = code.strip().upper()
    info = registry.BY_CODE.get(key)
    if info is None:
        _error(f"unknown rule code {code!r} (known codes: {', '.join(registry.CODES)})")
    page = rule_page(key)
    if page is not None:
        click.echo(page.rstrip("\n"))
        return
    click.echo(f"# {info.code}: {info.name}\n\n{info.summary}.")
    if info.meta:
        click.echo("\nA meta code: it reports on the run itself and cannot be deselected.")
    elif not info.default:
        click.echo(f"\nOff by default; enable it with `--extend-select {info.code}`.")


def _rule_json(info: registry.RuleInfo) -> dict[str, object]:
    """A rule as ``ruff rule --output-format json`` describes one, plus ``url``, ``default``
    (on without ``--select``) and ``meta`` (always on)."""
    return {
        "name": info.name,
        "code": info.code,
        "linter": "asyncrace",
        "summary": info.summary,
        "message_formats": [],
        "fix": "Fix is not available.",
        "fix_availability": "None",
        "explanation": registry.page_body(info.code) or f"{info.summary}.\n",
        "preview": False,
        "url": info.url,
        "default": info.default or info.meta,
        "meta": info.meta,
    }


# -------------------------------------------------------------------------------------- server


@main.command(short_help="Run the language server (LSP over standard input and output).")
@click.option(
    "--stdio",
    is_flag=True,
    help="Talk LSP over standard input and output (the default; accepted for editor clients "
    "that pass it).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log what the server does to stderr.")
def server(stdio: bool, verbose: bool) -> None:
    """Run the language server: diagnostics in editors, over LSP on stdin/stdout.

    Needs the `lsp` extra: pip install 'asyncrace[lsp]'."""
    del stdio  # the only transport
    from asyncrace import lsp

    try:
        lsp.serve(verbose=verbose)
    except lsp.MissingDependencyError as exc:
        _error(str(exc))
