"""Reading the configuration (``asyncrace.toml`` or ``[tool.asyncrace]`` in ``pyproject.toml``)
and merging it with the command line into a :class:`~asyncrace.settings.Settings`.

Errors are :class:`ConfigError` with a message that names the file, the key and, where known,
the line; never a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncrace import registry
from asyncrace.settings import DEFAULT_EXCLUDE, STRICTNESS_LEVELS, Settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = [
    "CONFIG_FILENAME",
    "KNOWN_KEYS",
    "OUTPUT_FORMATS",
    "CliOverrides",
    "ConfigError",
    "LoadedConfig",
    "find_config",
    "load",
    "load_settings",
]

CONFIG_FILENAME = "asyncrace.toml"
PYPROJECT = "pyproject.toml"
# the formats of ``asyncrace.output`` (kept here so that configuration does not import it)
OUTPUT_FORMATS: tuple[str, ...] = (
    "concise",
    "full",
    "json",
    "json-lines",
    "sarif",
    "github",
    "gitlab",
    "junit",
    "pylint",
)

_LIST_KEYS = (
    "src",
    "exclude",
    "extend-exclude",
    "select",
    "ignore",
    "extend-select",
    "extra-lock-types",
    "extra-reentrant-lock-types",
    "extra-executor-functions",
    "lifecycle-methods",
)
KNOWN_KEYS: tuple[str, ...] = (
    *_LIST_KEYS,
    "per-file-ignores",
    "output-format",
    "respect-gitignore",
    "strictness",
    "context-managers-closed-elsewhere",
)


class ConfigError(Exception):
    """A configuration problem (file or command line). ``str()`` is the whole message."""


@dataclass(frozen=True)
class CliOverrides:
    """What the command line says about settings. ``None``/empty means "not given".

    ``select``, ``exclude`` and ``replace_per_file_ignores`` (``--per-file-ignores``) replace
    the configured ones; ``ignore``, ``extend_select``, ``extend_exclude`` and
    ``per_file_ignores`` (``--extend-per-file-ignores``) add to them; ``output_format`` and
    ``respect_gitignore`` replace them."""

    select: Sequence[str] | None = None
    ignore: Sequence[str] = ()
    extend_select: Sequence[str] = ()
    extend_exclude: Sequence[str] = ()
    per_file_ignores: Mapping[str, Sequence[str]] = field(default_factory=dict)
    exclude: Sequence[str] | None = None
    replace_per_file_ignores: Mapping[str, Sequence[str]] | None = None
    output_format: str | None = None
    respect_gitignore: bool | None = None
    strictness: str | None = None


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    # the configured (or command-line) output format; None: let the CLI choose
    output_format: str | None = None


# ------------------------------------------------------------------------------------ finding


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{_show(path)}: cannot read configuration: {exc.strerror or exc}"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_show(path)}: invalid TOML: not UTF-8 ({exc.reason})") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        if m:
            loc = f":{m.group(1)}"
        elif "end of document" in msg:
            loc = f":{len(text.splitlines()) or 1}"
        else:
            loc = ""
        raise ConfigError(f"{_show(path)}{loc}: invalid TOML: {msg}") from None


def _show(path: Path) -> str:
    """A path for messages: relative to the working directory when below it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _asyncrace_table(path: Path) -> tuple[dict[str, Any], str] | None:
    """The asyncrace settings of a configuration file (None: a pyproject.toml without
    ``[tool.asyncrace]``), with the file's text."""
    doc, text = _read_toml(path)
    if path.name == PYPROJECT:
        tool = doc.get("tool")
        if not isinstance(tool, dict) or "asyncrace" not in tool:
            return None
        table = tool["asyncrace"]
        if not isinstance(table, dict):
            raise ConfigError(f"{_show(path)}: [tool.asyncrace] must be a table")
        return table, text
    return doc, text


def find_config(start: Path) -> Path | None:
    """The configuration file that applies to ``start`` (a file or a directory, existing or
    not): walking up to the filesystem root, the first directory with an ``asyncrace.toml``, or
    with a ``pyproject.toml`` that has a ``[tool.asyncrace]`` table (``asyncrace.toml`` wins in
    one directory). Raises :class:`ConfigError` for a ``pyproject.toml`` that is not valid
    TOML."""
    cur = Path(os.path.abspath(start))
    if not cur.is_dir():
        cur = cur.parent
    while True:
        candidate = cur / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
        candidate = cur / PYPROJECT
        if candidate.is_file() and _asyncrace_table(candidate) is not None:
            return candidate
        if cur.parent == cur:
            return None
        cur = cur.parent


# ----------------------------------------------------------------------------------- checking


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "table"
    return type(value).__name__


class _Checker:
    def __init__(self, path: Path, text: str, in_pyproject: bool) -> None:
        self.path = path
        self.text = text
        self.section = "tool.asyncrace." if in_pyproject else ""

    def where(self, key: str) -> str:
        line = self._line_of(key)
        return f"{_show(self.path)}{f':{line}' if line else ''}"

    def _line_of(self, key: str) -> int | None:
        """Best effort: the line where ``key`` is set (``key =`` or a ``[...key]`` header),
        looking only inside the asyncrace tables of a pyproject.toml."""
        k = re.escape(key)
        assign = re.compile(rf"^\s*[\"']?{k}[\"']?\s*=")
        header = re.compile(r"^\s*\[\[?\s*([^\]]*?)\s*\]")
        inside = not self.section  # asyncrace.toml: everywhere
        for lineno, line in enumerate(self.text.splitlines(), 1):
            h = header.match(line)
            if h is not None:
                name = h.group(1).replace('"', "").replace("'", "").replace(" ", "")
                if self.section:
                    inside = name == "tool.asyncrace" or name.startswith("tool.asyncrace.")
                if inside and (name.endswith("." + key) or name == key):
                    return lineno
                continue
            if inside and assign.match(line):
                return lineno
        return None

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.where(key)}: {self.section}{key}: {message}")

    def str_list(self, table: Mapping[str, Any], key: str) -> list[str] | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, list):
            raise self.error(key, f"expected a list of strings, got {_type_name(value)}")
        for item in value:
            if not isinstance(item, str):
                raise self.error(
                    key, f"expected a list of strings, got a list containing {_type_name(item)}"
                )
        return list(value)

    def selectors(self, table: Mapping[str, Any], key: str) -> list[str] | None:
        codes = self.str_list(table, key)
        if codes is not None:
            for code in codes:
                try:
                    registry.expand(code)
                except registry.SelectionError as exc:
                    raise self.error(key, str(exc)) from None
        return codes

    def patterns(self, table: Mapping[str, Any], key: str) -> list[str] | None:
        pats = self.str_list(table, key)
        if pats is not None:
            for pat in pats:
                _check_pattern(pat, lambda msg: self.error(key, msg))
        return pats


def _check_pattern(pattern: str, error: Any) -> None:
    try:
        from pathspec import GitIgnoreSpec

        GitIgnoreSpec.from_lines([pattern])
    except ValueError as exc:
        raise error(f"invalid pattern {pattern!r}: {exc}") from None


def _unknown_key_message(key: str, in_pyproject: bool) -> str:
    import difflib

    candidates = difflib.get_close_matches(key.replace("_", "-"), KNOWN_KEYS, n=1, cutoff=0.6)
    if key == "tool" and not in_pyproject:
        hint = " (in asyncrace.toml the settings go at the top level, without [tool.asyncrace])"
    elif candidates:
        hint = f" (did you mean {candidates[0]!r}?)"
    else:
        hint = f" (known keys: {', '.join(KNOWN_KEYS)})"
    return f"unknown key {key!r}{hint}"


# ------------------------------------------------------------------------------------ loading


def _expand_codes(codes: Sequence[str]) -> frozenset[str]:
    out: set[str] = set()
    for code in codes:
        out |= registry.expand(code)
    return frozenset(out)


def _cli_selectors(option: str, codes: Sequence[str]) -> list[str]:
    for code in codes:
        try:
            registry.expand(code)
        except registry.SelectionError as exc:
            raise ConfigError(f"{option}: {exc}") from None
    return list(codes)


def _search_start(paths: Sequence[Path]) -> Path:
    """Where the configuration is searched from: the deepest directory containing every path
    (a file counts as its directory), the working directory when there are none."""
    if not paths:
        return Path.cwd()
    dirs = []
    for p in paths:
        ap = os.path.abspath(p)
        dirs.append(ap if os.path.isdir(ap) else os.path.dirname(ap))
    try:
        return Path(os.path.commonpath(dirs))
    except ValueError:  # different drives
        return Path(dirs[0])


def load(
    paths: Sequence[Path],
    *,
    config: Path | None = None,
    cli: CliOverrides | None = None,
) -> LoadedConfig:
    """Settings (and the output format) for checking ``paths``: from ``config`` if given, else
    from the file :func:`find_config` finds from the deepest common directory of ``paths`` (the
    working directory when empty), merged with ``cli``."""
    cli = cli or CliOverrides()
    if config is not None:
        if not Path(config).is_file():
            raise ConfigError(f"{_show(Path(config))}: configuration file does not exist")
        config_path: Path | None = Path(os.path.abspath(config))
    else:
        config_path = find_config(_search_start(paths))

    table: Mapping[str, Any] = {}
    text = ""
    in_pyproject = False
    if config_path is not None:
        in_pyproject = config_path.name == PYPROJECT
        loaded = _asyncrace_table(config_path)
        if loaded is not None:
            table, text = loaded
        root = config_path.parent
    else:
        root = Path.cwd()

    chk = _Checker(config_path or Path(CONFIG_FILENAME), text, in_pyproject)
    for key in table:
        if key not in KNOWN_KEYS:
            raise ConfigError(
                f"{chk.where(key)}: {'tool.asyncrace: ' if in_pyproject else ''}"
                f"{_unknown_key_message(key, in_pyproject)}"
            )

    select = chk.selectors(table, "select")
    ignore = chk.selectors(table, "ignore") or []
    extend_select = chk.selectors(table, "extend-select") or []
    src = chk.str_list(table, "src")
    exclude = chk.patterns(table, "exclude")
    extend_exclude = chk.patterns(table, "extend-exclude") or []
    knobs = {
        k: chk.str_list(table, k) or []
        for k in (
            "extra-lock-types",
            "extra-reentrant-lock-types",
            "extra-executor-functions",
            "lifecycle-methods",
        )
    }
    for k, names in knobs.items():
        for name in names:
            if not name.strip():
                raise chk.error(k, "empty name")

    output_format: str | None = None
    if "output-format" in table:
        value = table["output-format"]
        if not isinstance(value, str):
            raise chk.error("output-format", f"expected a string, got {_type_name(value)}")
        if value not in OUTPUT_FORMATS:
            raise chk.error(
                "output-format",
                f"unknown format {value!r} (one of: {', '.join(OUTPUT_FORMATS)})",
            )
        output_format = value

    respect_gitignore = True
    if "respect-gitignore" in table:
        value = table["respect-gitignore"]
        if not isinstance(value, bool):
            raise chk.error("respect-gitignore", f"expected true or false, got {_type_name(value)}")
        respect_gitignore = value

    strictness = "proven"
    if "strictness" in table:
        value = table["strictness"]
        if not isinstance(value, str):
            raise chk.error("strictness", f"expected a string, got {_type_name(value)}")
        if value not in STRICTNESS_LEVELS:
            raise chk.error(
                "strictness",
                f"unknown level {value!r} (one of: {', '.join(STRICTNESS_LEVELS)})",
            )
        strictness = value
    closed_elsewhere = False
    if "context-managers-closed-elsewhere" in table:
        value = table["context-managers-closed-elsewhere"]
        if not isinstance(value, bool):
            raise chk.error(
                "context-managers-closed-elsewhere",
                f"expected true or false, got {_type_name(value)}",
            )
        closed_elsewhere = value

    per_file: list[tuple[str, frozenset[str]]] = []
    if "per-file-ignores" in table:
        value = table["per-file-ignores"]
        if not isinstance(value, dict):
            raise chk.error(
                "per-file-ignores",
                f"expected a table of pattern = [codes], got {_type_name(value)}",
            )
        import json

        for pattern, codes in value.items():
            key = f"per-file-ignores.{json.dumps(pattern)}"
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                got = _type_name(codes)
                raise ConfigError(
                    f"{chk.where(pattern)}: {chk.section}per-file-ignores.{json.dumps(pattern)}: "
                    f"expected a list of codes, got {got}"
                )
            for c in codes:
                try:
                    registry.expand(c)
                except registry.SelectionError as exc:
                    raise ConfigError(
                        f"{chk.where(pattern)}: {chk.section}per-file-ignores."
                        f"{json.dumps(pattern)}: {exc}"
                    ) from None
            _check_pattern(pattern, lambda msg, key=key: chk.error(key, msg))
            per_file.append((pattern, _expand_codes(codes)))

    # the command line
    if cli.select is not None:
        select = _cli_selectors("--select", cli.select)
    ignore = ignore + _cli_selectors("--ignore", cli.ignore)
    extend_select = extend_select + _cli_selectors("--extend-select", cli.extend_select)
    for pat in cli.extend_exclude:
        _check_pattern(pat, lambda msg: ConfigError(f"--extend-exclude: {msg}"))
    extend_exclude = extend_exclude + list(cli.extend_exclude)
    if cli.exclude is not None:
        for pat in cli.exclude:
            _check_pattern(pat, lambda msg: ConfigError(f"--exclude: {msg}"))
        exclude = list(cli.exclude)
    if cli.replace_per_file_ignores is not None:
        per_file = []
        for pattern, codes in cli.replace_per_file_ignores.items():
            _check_pattern(pattern, lambda msg: ConfigError(f"--per-file-ignores: {msg}"))
            per_file.append((pattern, _expand_codes(_cli_selectors("--per-file-ignores", codes))))
    for pattern, codes in cli.per_file_ignores.items():
        _check_pattern(pattern, lambda msg: ConfigError(f"--extend-per-file-ignores: {msg}"))
        per_file.append(
            (pattern, _expand_codes(_cli_selectors("--extend-per-file-ignores", codes)))
        )
    if cli.output_format is not None:
        if cli.output_format not in OUTPUT_FORMATS:
            raise ConfigError(
                f"--output-format: unknown format {cli.output_format!r} "
                f"(one of: {', '.join(OUTPUT_FORMATS)})"
            )
        output_format = cli.output_format
    if cli.respect_gitignore is not None:
        respect_gitignore = cli.respect_gitignore
    if cli.strictness is not None:
        if cli.strictness not in STRICTNESS_LEVELS:
            raise ConfigError(
                f"--strictness: unknown level {cli.strictness!r} "
                f"(one of: {', '.join(STRICTNESS_LEVELS)})"
            )
        strictness = cli.strictness

    settings = Settings(
        enabled=registry.resolve_selection(select, ignore, extend_select),
        per_file_ignores=tuple(per_file),
        src=tuple(Path(os.path.normpath(root / s)) for s in src or ()),
        exclude=tuple(exclude) if exclude is not None else DEFAULT_EXCLUDE,
        extend_exclude=tuple(extend_exclude),
        respect_gitignore=respect_gitignore,
        extra_lock_types=tuple(knobs["extra-lock-types"]),
        extra_reentrant_lock_types=tuple(knobs["extra-reentrant-lock-types"]),
        extra_executor_functions=tuple(knobs["extra-executor-functions"]),
        lifecycle_methods=tuple(knobs["lifecycle-methods"]),
        strictness=strictness,
        context_managers_closed_elsewhere=closed_elsewhere,
        config_path=config_path,
        project_root=root,
    )
    return LoadedConfig(settings, output_format)


def load_settings(
    paths: Sequence[Path],
    *,
    config: Path | None = None,
    cli: CliOverrides | None = None,
) -> Settings:
    """:func:`load` without the output format."""
    return load(paths, config=config, cli=cli).settings
