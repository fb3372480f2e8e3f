from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from asyncrace.run.discover import DiscoveryError, discover, is_excluded
from asyncrace.settings import Settings

needs_symlinks = pytest.mark.skipif(
    not hasattr(os, "symlink") or os.name == "nt", reason="symlinks not available"
)


def touch(root: Path, *names: str) -> None:
    for name in names:
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x = 1\n")


def rel(root: Path, files: list[Path]) -> list[str]:
    return [f.relative_to(root).as_posix() for f in files]


def settings(root: Path, **kw: object) -> Settings:
    return Settings(project_root=root, **kw)  # type: ignore[arg-type]


def test_walks_recursively_sorted_py_only(tmp_path: Path) -> None:
    touch(tmp_path, "b.py", "a.py", "sub/z.py", "sub/a.py", "notes.txt", "c.pyi", "d.pyc")
    files = discover([tmp_path], settings(tmp_path))
    assert rel(tmp_path, files) == ["a.py", "b.py", "sub/a.py", "sub/z.py"]
    assert all(f.is_absolute() for f in files)


def test_paths_are_absolute_and_normalized_for_relative_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path, "pkg/a.py")
    monkeypatch.chdir(tmp_path)
    files = discover([Path("pkg/../pkg"), Path("./pkg/a.py")], settings(tmp_path))
    assert files == [tmp_path / "pkg" / "a.py"]  # and deduplicated


def test_default_excludes(tmp_path: Path) -> None:
    touch(tmp_path, "a.py", ".venv/lib/x.py", "build/b.py", "pkg/build/c.py", "pkg/.git/d.py")
    assert rel(tmp_path, discover([tmp_path], settings(tmp_path))) == ["a.py"]


def test_exclude_replaces_defaults_and_extend_exclude_adds(tmp_path: Path) -> None:
    touch(tmp_path, "a.py", "build/b.py", "gen/c.py", "pkg/gen/d.py", "pkg/x_pb2.py")
    s = settings(tmp_path, exclude=("gen",))
    assert rel(tmp_path, discover([tmp_path], s)) == ["a.py", "build/b.py", "pkg/x_pb2.py"]
    s = settings(tmp_path, extend_exclude=("/gen", "*_pb2.py"))
    # "/gen" is anchored at the project root; pkg/gen is kept; build is a default exclude
    assert rel(tmp_path, discover([tmp_path], s)) == ["a.py", "pkg/gen/d.py"]


def test_exclude_is_relative_to_project_root_not_argument(tmp_path: Path) -> None:
    touch(tmp_path, "src/gen/a.py", "src/b.py")
    s = settings(tmp_path, extend_exclude=("src/gen/",))
    assert rel(tmp_path, discover([tmp_path / "src"], s)) == ["src/b.py"]


def test_gitignore_root_and_nested(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "a.py",
        "ignored.py",
        "logs/x.py",
        "pkg/b.py",
        "pkg/local.py",
        "pkg/keep_me.py",
        "pkg/sub/local.py",
    )
    (tmp_path / ".gitignore").write_text("ignored.py\nlogs/\n*_me.py\n")
    (tmp_path / "pkg" / ".gitignore").write_text("/local.py\n!keep_me.py\n")
    files = rel(tmp_path, discover([tmp_path], settings(tmp_path)))
    # pkg/.gitignore: "/local.py" only at pkg/, and re-includes keep_me.py
    assert files == ["a.py", "pkg/b.py", "pkg/keep_me.py", "pkg/sub/local.py"]
    off = rel(tmp_path, discover([tmp_path], settings(tmp_path, respect_gitignore=False)))
    assert "ignored.py" in off and "logs/x.py" in off and "pkg/local.py" in off


def test_gitignore_of_ancestor_applies_to_subdirectory_argument(tmp_path: Path) -> None:
    touch(tmp_path, "pkg/a.py", "pkg/secret.py")
    (tmp_path / ".gitignore").write_text("secret.py\n")
    assert rel(tmp_path, discover([tmp_path / "pkg"], settings(tmp_path))) == ["pkg/a.py"]


def test_explicit_file_checked_even_if_excluded(tmp_path: Path) -> None:
    touch(tmp_path, "build/gen.py", "ignored.py", "script")
    (tmp_path / ".gitignore").write_text("ignored.py\n")
    s = settings(tmp_path)
    explicit = [tmp_path / "build/gen.py", tmp_path / "ignored.py", tmp_path / "script"]
    assert rel(tmp_path, discover(explicit, s)) == ["build/gen.py", "ignored.py", "script"]


def test_force_exclude(tmp_path: Path) -> None:
    touch(tmp_path, "build/gen.py", "pkg/a.py", "pkg/x_pb2.py")
    s = settings(tmp_path, extend_exclude=("*_pb2.py",))
    files = [tmp_path / "build/gen.py", tmp_path / "pkg/a.py", tmp_path / "pkg/x_pb2.py"]
    assert rel(tmp_path, discover(files, s, force_exclude=True)) == ["pkg/a.py"]
    assert discover([tmp_path / "build"], s, force_exclude=True) == []


def test_explicit_excluded_directory_is_walked(tmp_path: Path) -> None:
    touch(tmp_path, "build/a.py", "build/sub/b.py", "build/node_modules/c.py")
    got = rel(tmp_path, discover([tmp_path / "build"], settings(tmp_path)))
    assert got == ["build/a.py", "build/sub/b.py"]  # nested excluded dirs still skipped


def test_explicit_gitignored_directory_is_walked(tmp_path: Path) -> None:
    touch(tmp_path, "out/a.py")
    (tmp_path / ".gitignore").write_text("out/\n")
    assert rel(tmp_path, discover([tmp_path], settings(tmp_path))) == []
    assert rel(tmp_path, discover([tmp_path / "out"], settings(tmp_path))) == ["out/a.py"]


def test_directory_named_like_a_python_file(tmp_path: Path) -> None:
    touch(tmp_path, "x.py/inner.py", "x.py/data.txt")
    assert rel(tmp_path, discover([tmp_path], settings(tmp_path))) == ["x.py/inner.py"]
    assert rel(tmp_path, discover([tmp_path / "x.py"], settings(tmp_path))) == ["x.py/inner.py"]


def test_missing_path(tmp_path: Path) -> None:
    touch(tmp_path, "a.py")
    with pytest.raises(DiscoveryError, match=r"path does not exist: .*nope"):
        discover([tmp_path / "a.py", tmp_path / "nope"], settings(tmp_path))


@needs_symlinks
def test_symlink_loop_not_followed(tmp_path: Path) -> None:
    touch(tmp_path, "pkg/a.py")
    (tmp_path / "pkg" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "pkg" / "self").symlink_to(tmp_path / "pkg", target_is_directory=True)
    assert rel(tmp_path, discover([tmp_path], settings(tmp_path))) == ["pkg/a.py"]


@needs_symlinks
def test_broken_symlink_skipped_and_file_symlink_kept(tmp_path: Path) -> None:
    touch(tmp_path, "a.py", "real/b.txt")
    (tmp_path / "broken.py").symlink_to(tmp_path / "missing.py")
    (tmp_path / "link.py").symlink_to(tmp_path / "real" / "b.txt")
    assert rel(tmp_path, discover([tmp_path], settings(tmp_path))) == ["a.py", "link.py"]
    with pytest.raises(DiscoveryError):
        discover([tmp_path / "broken.py"], settings(tmp_path))


@needs_symlinks
def test_explicit_symlinked_directory_is_walked(tmp_path: Path) -> None:
    touch(tmp_path, "real/a.py")
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    assert rel(tmp_path, discover([tmp_path / "link"], settings(tmp_path))) == ["link/a.py"]


def test_path_outside_project_root(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    other = tmp_path / "other"
    touch(root, "a.py")
    touch(other, "b.py", "build/c.py")
    got = discover([other], settings(root))
    assert [f.relative_to(other).as_posix() for f in got] == ["b.py"]


def test_is_excluded(tmp_path: Path) -> None:
    s = settings(tmp_path, extend_exclude=("gen/",))
    assert is_excluded(tmp_path / "build" / "x.py", s)
    assert is_excluded(tmp_path / "pkg" / "gen" / "x.py", s)
    assert not is_excluded(tmp_path / "pkg" / "x.py", s)
    assert not is_excluded(tmp_path, s)


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="needs POSIX permissions")
def test_unreadable_directory_is_skipped(tmp_path: Path) -> None:
    touch(tmp_path, "a.py", "locked/b.py")
    (tmp_path / "locked").chmod(0)
    try:
        assert rel(tmp_path, discover([tmp_path], settings(tmp_path))) == ["a.py"]
    finally:
        (tmp_path / "locked").chmod(0o755)


# ---------------------------------------------- .git/info/exclude and the global excludes file

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def git_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME of our own: the global git configuration and excludes file are ours."""
    home = tmp_path / "home"
    (home / ".config" / "git").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return home


def _agrees_with_git(repo: Path, found: list[Path]) -> None:
    """What git itself lists as untracked and not ignored is what discovery found."""
    listed = _git(repo, "ls-files", "--others", "--exclude-standard", "--", "*.py")
    assert rel(repo, found) == sorted(listed.split())


@needs_git
@pytest.mark.parametrize("global_file", ["default", "core.excludesFile", "repository config"])
def test_git_info_exclude_and_global_excludes(
    tmp_path: Path, git_home: Path, global_file: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", ".")
    touch(repo, "a.py", "gen/g.py", "lib/b.py", "lib/scratch_1.py", "lib/keep_scratch.py")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("# local\ngen/\n")
    excludes = "scratch_*.py\nkeep_*.py\n"
    if global_file == "default":
        (git_home / ".config" / "git" / "ignore").write_text(excludes)
    else:
        (git_home / "my-excludes").write_text(excludes)
        config = (
            git_home / ".gitconfig" if global_file == "core.excludesFile" else repo / ".git/config"
        )
        with config.open("a") as f:
            f.write('[core]\n\texcludesFile = "~/my-excludes"\n')
    # a .gitignore weighs more than both: it takes one file back
    (repo / "lib" / ".gitignore").write_text("!keep_scratch.py\n")
    found = discover([repo], settings(repo))
    assert rel(repo, found) == ["a.py", "lib/b.py", "lib/keep_scratch.py"]
    _agrees_with_git(repo, found)
    # a directory named explicitly is checked even when the repository excludes it
    assert rel(repo, discover([repo / "gen"], settings(repo))) == ["gen/g.py"]
    assert rel(repo, discover([repo], settings(repo, respect_gitignore=False))) == [
        "a.py",
        "gen/g.py",
        "lib/b.py",
        "lib/keep_scratch.py",
        "lib/scratch_1.py",
    ]


@needs_git
def test_git_excludes_of_a_worktree(tmp_path: Path, git_home: Path) -> None:
    main = tmp_path / "main"
    main.mkdir()
    _git(main, "init", "-q", ".")
    _git(
        main,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "0",
    )
    _git(main, "worktree", "add", "-q", str(tmp_path / "wt"))
    wt = tmp_path / "wt"
    touch(wt, "a.py", "gen/g.py")
    (main / ".git" / "info").mkdir(exist_ok=True)
    (main / ".git" / "info" / "exclude").write_text("gen/\n")  # shared by the worktrees
    found = discover([wt], settings(wt))
    assert rel(wt, found) == ["a.py"]
    _agrees_with_git(wt, found)


def test_no_repository_no_repository_excludes(tmp_path: Path, git_home: Path) -> None:
    (git_home / ".config" / "git" / "ignore").write_text("*.py\n")
    touch(tmp_path / "plain", "a.py")
    assert rel(tmp_path / "plain", discover([tmp_path / "plain"], settings(tmp_path))) == ["a.py"]
