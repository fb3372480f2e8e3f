"""Very large files: what keeps one file's analysis under about 300 MB.

CPython's parser holds every token, its memo and the C syntax tree at once, and then builds a
Python object for every node: about 500-600 bytes per token at the peak (measured on Python
3.11: 822 MB for a 6 MB one-line list of 1.5 million tokens, 1.6 GB for 2.7 million tokens of
``a0=f(b0,c);a1=...``). Real source files stay far below that (the largest of the benchmark
corpus, 1.1 MB, has 118,000 tokens and parses in 69 MB); the files above it are generated.

Two measures, applied only to a text that may have more than :data:`TOKEN_LIMIT` tokens (an
upper bound counted in C decides, in about 8 ms per megabyte, and only for texts longer than
75,000 characters; ordinary files are not tokenized twice):

* **Data literals are elided.** A list, tuple, set or dict display of at least
  :data:`ELIDE_MIN_TOKENS` tokens made only of literals (numbers, strings, ``True``,
  ``False``, ``None``, nested displays of those) keeps its first element and loses the rest,
  replaced by spaces (line breaks kept): ``DATA = [1, 2, 3, ...]`` is analyzed as
  ``DATA = [1,          ]``. Every position outside the display is unchanged, and nothing in
  a literal is a fact the rules use (no call, no name, no await).
* **What is still too large is not parsed.** A text with more than :data:`TOKEN_LIMIT`
  tokens after elision gets an ARC900 ("too large to analyze"), like a file nested too
  deeply for the parser: the run goes on with the other files.
"""

from __future__ import annotations

import io
import keyword
import re
import tokenize
from dataclasses import dataclass, field

__all__ = ["ELIDE_MIN_TOKENS", "TOKEN_LIMIT", "TooLarge", "prepare"]

TOKEN_LIMIT = 300_000
"""Tokens (comments and blank lines not counted) above which a text is not parsed: about
185 MB at the parser's peak, 2.5 times the largest file of the benchmark corpus."""

ELIDE_MIN_TOKENS = 1_000
"""A literal display with fewer tokens than this is left as it is."""

_LINES = re.compile(r"\r\n|\r|\n")
# the bytes of UTF-8 text by class: "a" a word character (non-ASCII bytes too: outside strings
# and comments they only occur in names), " " white space, "." anything else
_CLASSES = bytes(
    ord("a")
    if chr(b).isalnum() or b == ord("_") or b >= 0x80
    else ord(" ")
    if chr(b).isspace()
    else ord(".")
    for b in range(256)
)

_LITERAL_NAMES = frozenset({"True", "False", "None"})
_LITERAL_OPS = frozenset({",", ":", "-", "+"})
_OPEN = {"(": ")", "[": "]", "{": "}"}
_NOT_COUNTED = frozenset({tokenize.COMMENT, tokenize.NL, tokenize.ENCODING})


class TooLarge(Exception):
    """The text has more tokens than :data:`TOKEN_LIMIT` even with its literals elided."""

    def __init__(self, tokens: int) -> None:
        super().__init__(
            f"too large to analyze: {tokens:,} tokens (the limit is {TOKEN_LIMIT:,}); "
            "exclude this file (a generated one?) or split it"
        )
        self.tokens = tokens


def estimate(text: str) -> int:
    """An upper bound of the parser's tokens, counted in C (a few milliseconds per megabyte):
    every token but NEWLINE, INDENT, DEDENT (as many of each as lines, at most) and ENDMARKER
    starts a run of word characters or holds at least one other character that is not a
    space."""
    classes = text.encode("utf-8", "surrogatepass").translate(_CLASSES)
    words = classes.count(b" a") + classes.count(b".a") + classes.startswith(b"a")
    lines = text.count("\n") + text.count("\r") + 1
    return words + classes.count(b".") + 3 * lines + 1


@dataclass
class _Frame:
    display: bool  # a list, tuple, set or dict display (not a call's or a subscript's brackets)
    pure: bool = True
    tokens: int = 0
    first_comma: tuple[int, int] | None = None  # just after the first comma at this depth
    kept: int = 0  # tokens up to the first comma, which stay


@dataclass
class _Scan:
    tokens: int = 0
    spans: list[tuple[tuple[int, int], tuple[int, int], int]] = field(default_factory=list)


def _follows_a_value(kind: int, string: str) -> bool:
    """Whether a bracket after this token calls or subscripts it (``f(``, ``x[``, ``)(``)."""
    if kind == tokenize.NAME:
        return not keyword.iskeyword(string) or string in _LITERAL_NAMES
    if kind in (tokenize.NUMBER, tokenize.STRING):
        return True
    return kind == tokenize.OP and string in (")", "]", "}")


def _scan(text: str, out: _Scan) -> None:
    """Count every token into ``out`` and note the spans of the literal displays to elide:
    (from, to, tokens inside), positions as (row, column) of the tokenizer."""
    stack: list[_Frame] = []
    prev_kind, prev = tokenize.NEWLINE, ""
    for tok in tokenize.generate_tokens(io.StringIO(text, newline="").readline):
        kind = tok.type
        if kind in _NOT_COUNTED:
            continue
        out.tokens += 1
        after = (prev_kind, prev)
        prev_kind, prev = kind, tok.string
        if kind == tokenize.OP and tok.string in _OPEN:
            display = tok.string == "{" or not _follows_a_value(*after)
            if stack:
                stack[-1].tokens += 1
            stack.append(_Frame(display))
            continue
        if kind == tokenize.OP and tok.string in (")", "]", "}") and stack:
            frame = stack.pop()
            if (
                frame.display
                and frame.pure
                and frame.tokens >= ELIDE_MIN_TOKENS
                and frame.first_comma
            ):
                begin = frame.first_comma
                while out.spans and out.spans[-1][0] >= begin:  # inside this one
                    out.spans.pop()
                out.spans.append((begin, tok.start, frame.tokens - frame.kept))
            if stack:
                parent = stack[-1]
                parent.tokens += frame.tokens + 1
                parent.pure = parent.pure and frame.pure and frame.display
            continue
        if not stack:
            continue
        frame = stack[-1]
        frame.tokens += 1
        if kind == tokenize.OP and tok.string == "," and frame.first_comma is None:
            frame.first_comma = tok.end
            frame.kept = frame.tokens
        literal = (
            kind in (tokenize.NUMBER, tokenize.STRING)
            or (kind == tokenize.NAME and tok.string in _LITERAL_NAMES)
            or (kind == tokenize.OP and tok.string in _LITERAL_OPS)
        )
        if not literal:
            frame.pure = False


def _elide(text: str, spans: list[tuple[tuple[int, int], tuple[int, int], int]]) -> str:
    starts = [0] + [m.end() for m in _LINES.finditer(text)]
    pieces: list[str] = []
    at = 0
    for (srow, scol), (erow, ecol), _ in spans:
        begin, end = starts[srow - 1] + scol, starts[erow - 1] + ecol
        pieces.append(text[at:begin])
        gap = text[begin:end]
        pieces.append(_LINES.sub(lambda m: m.group(), re.sub(r"[^\r\n]", " ", gap)))
        at = end
    pieces.append(text[at:])
    return "".join(pieces)


def prepare(text: str) -> str:
    """``text`` ready to parse: itself when it cannot have more than :data:`TOKEN_LIMIT`
    tokens; else with its large data literals elided. Raises :class:`TooLarge` when that is
    still more than :data:`TOKEN_LIMIT` tokens. A text that does not tokenize is returned as
    it is (the parser reports the error) unless it has more tokens than that before it."""
    if 4 * len(text) + 1 <= TOKEN_LIMIT or estimate(text) <= TOKEN_LIMIT:
        return text  # (the estimate is at most four per character)
    scan = _Scan()
    try:
        _scan(text, scan)
    except (tokenize.TokenError, SyntaxError, ValueError, IndexError):
        # the parser stops at the same error: as many tokens as were read until then
        if scan.tokens > TOKEN_LIMIT:
            raise TooLarge(scan.tokens) from None
        return text
    tokens = scan.tokens - sum(n for _, _, n in scan.spans)
    if tokens > TOKEN_LIMIT:
        raise TooLarge(tokens)
    return _elide(text, scan.spans) if scan.spans else text
