"""Very large files (``asyncrace.large``): data literals elided, what is still too large
reported as ARC900, positions unchanged. The limits are lowered here so that the inputs stay
small; ``tests/test_memory.py`` runs a real 6 MB file, ``bench/memory.py`` measures."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from asyncrace import large
from asyncrace.run.engine import check
from asyncrace.settings import Settings

FINDING = """
import asyncio


class Cache:
    async def load(self, key):
        self.current = key
        await asyncio.sleep(0)
        return self.current

    async def load_all(self, keys):
        return await asyncio.gather(*(self.load(k) for k in keys))
"""


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(large, "TOKEN_LIMIT", 2_000)
    monkeypatch.setattr(large, "ELIDE_MIN_TOKENS", 100)


def test_small_texts_are_left_alone() -> None:
    text = "x = [" + ", ".join(map(str, range(5000))) + "]\n"
    assert large.prepare(text) is text  # far below the real limit


def test_estimate_is_an_upper_bound() -> None:
    import io
    import tokenize

    for text in [
        "if a:\n if b:\n  if c:\n   d\ne\n",
        'x = 1.5e10; y = \'é\' + """a\nb"""  # comment\n',
        "λ = [1, -2, +3]\r\nμ = {λ: (1,)}\r",
        FINDING,
    ]:
        real = sum(
            1
            for tok in tokenize.generate_tokens(io.StringIO(text, newline="").readline)
            if tok.type not in (tokenize.COMMENT, tokenize.NL)
        )
        assert large.estimate(text) >= real


def test_literals_are_elided_in_place(small_limits: None) -> None:
    data = ", ".join(f'"k{i}": [{i}, -{i}.5, None, True]' for i in range(600))
    text = f"DATA = {{{data}}}\n{FINDING}"
    out = large.prepare(text)
    assert out != text
    assert len(out) == len(text)
    assert out.splitlines()[1:] == text.splitlines()[1:]  # every other line as it was
    assert out.startswith('DATA = {"k0": [0, -0.5, None, True],')
    tree = ast.parse(out)
    assert isinstance(tree.body[0], ast.Assign)
    assert isinstance(tree.body[0].value, ast.Dict) and len(tree.body[0].value.keys) == 1


def test_elided_file_keeps_its_findings_at_their_places(
    small_limits: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    numbers = ",\n    ".join(str(i) for i in range(3000))
    text = f"TABLE = [\n    {numbers}\n]\n{FINDING}"
    (tmp_path / "gen.py").write_text(text)
    assert large.prepare(text) != text
    result = check([tmp_path / "gen.py"], Settings(project_root=tmp_path))
    row = text.splitlines().index("        self.current = key") + 1
    assert [(d.code, d.span.start.row, d.span.start.column) for d in result.diagnostics] == [
        ("ARC001", row, 9)
    ]


def test_code_is_not_elided(small_limits: None) -> None:
    # a call's arguments, subscripts and displays holding names stay: they are facts
    calls = "x = f(" + ", ".join(map(str, range(600))) + ")\n"
    names = "y = [" + ", ".join(f"n{i}" for i in range(600)) + "]\n"
    sub = "z = t[" + ", ".join(map(str, range(600))) + "]\n"
    for text in (calls, names, sub):
        with pytest.raises(large.TooLarge):
            large.prepare(text * 2)


def test_too_large(small_limits: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    body = "".join(f"a{i} = f(b{i}, c)\n" for i in range(400))
    (tmp_path / "big.py").write_text(body)
    (tmp_path / "ok.py").write_text(FINDING)
    result = check([tmp_path / "big.py", tmp_path / "ok.py"], Settings(project_root=tmp_path))
    assert [(d.path, d.code, d.message) for d in result.diagnostics] == [
        (
            "big.py",
            "ARC900",
            "too large to analyze: 3,601 tokens (the limit is 2,000); exclude this file "
            "(a generated one?) or split it",
        ),
        ("ok.py", "ARC001", result.diagnostics[1].message),
    ]


def test_a_text_that_does_not_tokenize(small_limits: None) -> None:
    short = "x = [" + ", ".join(map(str, range(10))) + "\n" * 800  # never closed
    assert large.prepare(short) is short  # the parser says what is wrong
    long = "x = (" + " + ".join(map(str, range(3000)))  # more than the limit before the end
    with pytest.raises(large.TooLarge):
        large.prepare(long)
