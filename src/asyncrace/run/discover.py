"""Finding the Python files to check.

The rules, in the order they are applied:

* A path named on the command line must exist (:class:`DiscoveryError` otherwise). A file named
  explicitly is checked whatever its name or extension and even when ``exclude`` or
  ``.gitignore`` would skip it (ruff's behaviour), unless ``force_exclude=True``: then
  ``exclude``/``extend-exclude`` apply to it as well (this is what pre-commit and editors want,
  since they pass every file name).
* Directories are walked recursively in sorted order; only ``*.py`` files are collected. A
  directory named ``x.py`` is a directory. Symbolic links to directories are never followed
  while walking (no loops, no escaping the tree); symbolic links to files are followed, broken
  ones are skipped. A directory named explicitly is walked even when it is a symbolic link.
* ``settings.exclude`` + ``settings.extend_exclude`` are gitignore-style patterns (pathspec)
  matched against the path relative to ``settings.project_root``; a bare name such as ``build``
  matches that name at any depth, ``/build`` only at the root, ``build/`` only directories.
  A path outside the project root is matched relative to the directory named on the command
  line that contains it. When a directory named explicitly is itself excluded (``asyncrace
  check build/`` with ``build`` excluded), it is checked and its contents are matched relative to
  it (so nested excluded directories are still skipped).
* When ``settings.respect_gitignore`` is true, ``.gitignore`` files are honoured: the ones in
  the walked directories and in their ancestors up to the project root, each relative to its
  own directory, the deepest deciding (negations such as ``!keep.py`` work). A ``.git``
  directory is not required for those. Inside a git repository, the repository's
  ``info/exclude`` and the user's global excludes file (``core.excludesFile`` of the
  repository's or the global git configuration, else ``$XDG_CONFIG_HOME/git/ignore``, i.e.
  ``~/.config/git/ignore``) are honoured too, relative to the repository's top, with less
  weight than any ``.gitignore`` (git's order). A directory named explicitly that a
  ``.gitignore`` above it (or those files) ignores is checked, with only the ``.gitignore``
  files from it downwards.

The result is sorted and free of duplicates; every path is **absolute and normalized** (``..``
and ``.`` removed with :func:`os.path.abspath`, symbolic links *not* resolved), whatever form
the arguments had. Callers compute display paths from them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from asyncrace.settings import Settings

if TYPE_CHECKING:  # pathspec is imported when a pattern is first needed
    from pathspec import GitIgnoreSpec

__all__ = ["DiscoveryError", "discover", "exclude_spec", "global_excludes_file", "is_excluded"]

log = logging.getLogger("asyncrace.discover")


class DiscoveryError(Exception):
    """A path named on the command line does not exist. ``str()`` names it:
    ``path does not exist: foo``."""

    def __init__(self, path: Path | str) -> None:
        super().__init__(f"path does not exist: {path}")
        self.path = path


def exclude_spec(settings: Settings) -> GitIgnoreSpec:
    """The compiled ``exclude`` + ``extend-exclude`` patterns.

    Raises ``ValueError`` for an invalid pattern (``config.py`` validates them earlier)."""
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines([*settings.exclude, *settings.extend_exclude])


def _rel_posix(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` with POSIX separators, None when not below it."""
    if path == base:
        return "."
    prefix = base if base.endswith(os.sep) else base + os.sep
    if not path.startswith(prefix):
        return None
    rel = path[len(prefix) :]
    return rel.replace(os.sep, "/") if os.sep != "/" else rel


def _matches(spec: GitIgnoreSpec, rel: str, is_dir: bool) -> bool:
    if rel in ("", "."):
        return False
    return spec.match_file(rel + "/" if is_dir else rel)


def is_excluded(path: Path | str, settings: Settings, *, spec: GitIgnoreSpec | None = None) -> bool:
    """Whether ``exclude``/``extend-exclude`` skip ``path`` (a file or a directory, existing or
    not), matched relative to the project root; a path outside it is matched by its name only.
    This is the test ``force_exclude`` applies to explicitly named files (and the CLI applies to
    ``--stdin-filename`` with ``--force-exclude``). ``.gitignore`` files are not consulted."""
    spec = spec if spec is not None else exclude_spec(settings)
    apath = os.path.abspath(path)
    root = os.path.abspath(settings.project_root)
    rel = _rel_posix(apath, root)
    if rel is None:
        rel = os.path.basename(apath)
    return _matches(spec, rel, os.path.isdir(apath))


def _read_spec(path: str) -> GitIgnoreSpec | None:
    try:
        if os.path.isfile(path):
            from pathspec import GitIgnoreSpec

            with open(path, encoding="utf-8", errors="replace") as f:
                return GitIgnoreSpec.from_lines(f.read().splitlines())
    except (OSError, ValueError) as exc:
        log.warning("asyncrace: warning: ignoring unreadable %s: %s", path, exc)
    return None


def _repository(directory: str) -> tuple[str, str] | None:
    """(top of the work tree, git directory holding ``info/``) of the git repository that
    contains ``directory``: the nearest ``.git`` upwards, a directory or a ``gitdir:`` file
    (worktrees, submodules; a worktree's ``commondir`` is followed)."""
    cur = directory
    while True:
        dotgit = os.path.join(cur, ".git")
        if os.path.isdir(dotgit):
            return cur, dotgit
        if os.path.isfile(dotgit):
            try:
                with open(dotgit, encoding="utf-8", errors="replace") as f:
                    first = f.readline().strip()
            except OSError:
                return None
            if not first.startswith("gitdir:"):
                return None
            gitdir = os.path.normpath(os.path.join(cur, first[len("gitdir:") :].strip()))
            try:
                with open(os.path.join(gitdir, "commondir"), encoding="utf-8") as f:
                    gitdir = os.path.normpath(os.path.join(gitdir, f.read().strip()))
            except OSError:
                pass
            return cur, gitdir
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def _config_excludes_file(config: str) -> str | None:
    """``core.excludesFile`` of a git configuration file (the last one set; ``[include]``
    directives are not followed), ``~`` expanded; None when not set or unreadable."""
    try:
        with open(config, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    found: str | None = None
    section = ""
    for raw in lines:
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line[1:].split("]", 1)[0].strip().lower()
            rest = line.split("]", 1)[1].strip() if "]" in line else ""
            if not rest:
                continue
            line = rest  # ``[core] excludesFile = x`` on one line
        if section != "core" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if key.strip().lower() != "excludesfile":
            continue
        value = value.strip()
        for mark in (" #", " ;", "\t#", "\t;"):
            if not value.startswith('"') and mark in value:
                value = value.split(mark, 1)[0].strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        found = os.path.expanduser(value) if value else None
    return found


def global_excludes_file(git_dir: str | None = None) -> str:
    """The excludes file git reads for every repository: ``core.excludesFile`` (the
    repository's configuration, else ``$GIT_CONFIG_GLOBAL`` or ``~/.gitconfig`` and
    ``$XDG_CONFIG_HOME/git/config``), else ``$XDG_CONFIG_HOME/git/ignore`` (``XDG_CONFIG_HOME``
    defaults to ``~/.config``)."""
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    if os.environ.get("GIT_CONFIG_GLOBAL"):
        configs = [os.environ["GIT_CONFIG_GLOBAL"]]
    else:
        configs = [os.path.join(xdg, "git", "config"), os.path.join("~", ".gitconfig")]
    if git_dir is not None:
        configs.append(os.path.join(git_dir, "config"))  # read last: it wins
    found: str | None = None
    for config in configs:
        value = _config_excludes_file(os.path.expanduser(config))
        if value is not None:
            found = value
    return found or os.path.join(xdg, "git", "ignore")


class _GitIgnores:
    """``.gitignore`` files by directory, read lazily and cached; and, by repository, its
    ``info/exclude`` and the global excludes file."""

    def __init__(self) -> None:
        self._specs: dict[str, GitIgnoreSpec | None] = {}
        self._repos: dict[str, tuple[str, list[GitIgnoreSpec]] | None] = {}

    def spec(self, directory: str) -> GitIgnoreSpec | None:
        if directory not in self._specs:
            self._specs[directory] = _read_spec(os.path.join(directory, ".gitignore"))
        return self._specs[directory]

    def repository_excludes(self, directory: str) -> tuple[str, list[GitIgnoreSpec]] | None:
        """(top of the work tree, [info/exclude, global excludes]) for ``directory``: one
        look for ``.git`` per directory, the parent's answer otherwise."""
        if directory in self._repos:
            return self._repos[directory]
        value: tuple[str, list[GitIgnoreSpec]] | None = None
        parent = os.path.dirname(directory)
        if os.path.lexists(os.path.join(directory, ".git")):
            found = _repository(directory)
            if found is not None:
                top, git_dir = found
                specs = [
                    _read_spec(os.path.join(git_dir, "info", "exclude")),
                    _read_spec(global_excludes_file(git_dir)),
                ]
                value = (top, [sp for sp in specs if sp is not None])
        elif parent != directory:
            value = self.repository_excludes(parent)
        self._repos[directory] = value
        return value

    def ignored(
        self, path: str, is_dir: bool, dirs: Sequence[str], repository: bool = True
    ) -> bool:
        """``dirs``: the directories whose ``.gitignore`` apply to ``path``, outermost first;
        ``repository``: whether the repository's excludes apply too."""
        for d in reversed(dirs):
            spec = self.spec(d)
            if spec is None:
                continue
            rel = _rel_posix(path, d)
            if rel is None or rel == ".":
                continue
            include = spec.check_file(rel + "/" if is_dir else rel).include
            if include is not None:
                return include
        if repository:
            repo = self.repository_excludes(os.path.dirname(path))
            if repo is not None:
                top, specs = repo
                rel = _rel_posix(path, top)
                if rel is not None and rel != ".":
                    for spec in specs:  # info/exclude first: it weighs more
                        include = spec.check_file(rel + "/" if is_dir else rel).include
                        if include is not None:
                            return include
        return False


def _ancestors_within(directory: str, root: str) -> list[str]:
    """``root`` ... ``directory`` (outermost first) when ``directory`` is below ``root``; else
    just ``[directory]``."""
    if _rel_posix(directory, root) is None:
        return [directory]
    chain = [directory]
    cur = directory
    while cur != root:
        parent = os.path.dirname(cur)
        if parent == cur:
            break
        chain.append(parent)
        cur = parent
    chain.reverse()
    return chain


def discover(
    paths: Sequence[Path], settings: Settings, *, force_exclude: bool = False
) -> list[Path]:
    """The Python files to check under ``paths``: sorted, deduplicated, absolute and normalized
    (symbolic links not resolved). See the module docstring for the rules.

    Raises :class:`DiscoveryError` for a path that does not exist (a broken symbolic link
    included), before anything is walked."""
    for p in paths:
        if not os.path.exists(p):
            raise DiscoveryError(p)
    root = os.path.abspath(settings.project_root)
    gitignores = _GitIgnores() if settings.respect_gitignore else None
    found: set[str] = set()
    # files named alone (a pre-commit hook, an editor) need no pattern unless force_exclude
    need_spec = force_exclude or any(os.path.isdir(p) for p in paths)
    spec = exclude_spec(settings) if need_spec else None
    for p in paths:
        apath = os.path.abspath(p)
        if os.path.isdir(apath):
            if spec is None:  # (a file that became a directory meanwhile)
                spec = exclude_spec(settings)
            if force_exclude and is_excluded(apath, settings, spec=spec):
                log.debug("excluded (force-exclude): %s", apath)
                continue
            # an explicitly named directory that is itself excluded: match below it
            base = root
            rel = _rel_posix(apath, root)
            if rel is None or _matches(spec, rel, True):
                base = apath
            gi_dirs: list[str] = []
            repository = True
            if gitignores is not None:
                gi_dirs = _ancestors_within(apath, root)
                # an explicitly named directory that a .gitignore above it (or the repository's
                # excludes) ignores: only the .gitignore files from it downwards apply
                if gitignores.ignored(apath, True, gi_dirs[:-1]):
                    gi_dirs = [apath]
                    repository = False
            found.update(_walk(apath, base, spec, gitignores, gi_dirs, repository))
        elif force_exclude and spec is not None and is_excluded(apath, settings, spec=spec):
            log.debug("excluded (force-exclude): %s", apath)
        else:
            found.add(apath)
    return [Path(f) for f in sorted(found)]


def _walk(
    top: str,
    base: str,
    spec: GitIgnoreSpec,
    gitignores: _GitIgnores | None,
    gi_dirs: list[str],
    repository: bool = True,
) -> Iterable[str]:
    """Files below ``top`` (iteratively; ``gi_dirs`` are the directories whose ``.gitignore``
    apply to ``top``'s entries, ``top`` included)."""
    stack: list[tuple[str, list[str]]] = [(top, gi_dirs)]
    while stack:
        directory, dirs_gi = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            log.warning("asyncrace: warning: cannot read directory %s: %s", directory, exc)
            continue
        subdirs: list[str] = []
        for entry in entries:
            path = entry.path
            try:
                if entry.is_dir(follow_symlinks=False):
                    is_dir = True
                elif entry.is_symlink():
                    # a symlink: to a directory -> not followed; broken -> skipped
                    if os.path.isdir(path) or not os.path.exists(path):
                        log.debug("skipped symlink: %s", path)
                        continue
                    is_dir = False
                elif entry.is_file():
                    is_dir = False
                else:  # fifo, socket, device
                    continue
            except OSError:
                continue
            if not is_dir and not entry.name.endswith(".py"):
                continue
            rel = _rel_posix(path, base)
            if rel is not None and _matches(spec, rel, is_dir):
                log.debug("excluded: %s", path)
                continue
            if gitignores is not None and gitignores.ignored(path, is_dir, dirs_gi, repository):
                log.debug("ignored by .gitignore: %s", path)
                continue
            if is_dir:
                subdirs.append(path)
            else:
                yield path
        for sub in reversed(subdirs):
            stack.append((sub, [*dirs_gi, sub] if gitignores is not None else dirs_gi))
