"""The full view: a header per diagnostic, then the source of every step of the hazard with
line numbers and an underline, the fix hint and the rule's page (rustc's and ruff's shape).

::

    app/service.py:20:25: ARC001 [state-clobbered-across-await] `self.user` is read after ...
       |
    20 |         return {"name": self.user.name}
       |                         ^^^^^^^^^ read here after the await
       |
    18 |         self.user = await self.db.load(user_id)
       |         ^^^^^^^^^ written here
       |
      --> app/audit.py:9:9
       |
     9 |         await asyncio.sleep(0)
       |         ^^^^^^^^^^^^^^^^^^^^^^ await: other tasks run here
       |
       = help: keep the value in a local variable
       = rule: https://...

Columns are counted in characters; the excerpt expands tabs to stops of ``TAB_SIZE`` cells,
counts wide (East Asian, emoji) characters as two cells and shows control characters as
one-cell symbols, so the underline sits under the right characters whatever the line holds.
A line wider than ``width`` is cut to a window around its underline, marked with ``...``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from asyncrace.diagnostic import Diagnostic
from asyncrace.output._common import Step, ordered, printable, rule_name, rule_url, steps
from asyncrace.sources import SourceStore

TAB_SIZE = 4
MAX_SPAN_ROWS = 4  # a longer span shows its first two rows, "...", and its last row
ELLIPSIS = "..."
MIN_EXCERPT_WIDTH = 20
# a line longer than this many characters is laid out only around its underline (a 6 MB
# minified line would otherwise cost hundreds of megabytes of pieces and offsets)
LONG_LINE = 4096

STYLE_PATH = "bold"
STYLE_CODE = "bold red"
STYLE_NAME = "dim"
STYLE_GUTTER = "bold blue"
STYLE_PRIMARY = "bold red"
STYLE_RELATED = "bold cyan"
STYLE_NOTE = "bold"


@dataclass(frozen=True, slots=True)
class _Laid:
    """A source line as displayed: ``pieces[i]`` shows character ``first + i`` and starts at
    cell ``offsets[i]``; ``offsets[-1]`` is where the laid-out characters end. A very long
    line is laid out only around the part shown (:data:`LONG_LINE`): the ``first``
    characters before it and the ``tail`` after it count one cell each."""

    pieces: tuple[str, ...]
    offsets: tuple[int, ...]
    first: int = 0
    tail: int = 0

    @property
    def width(self) -> int:
        return self.offsets[-1] + self.tail

    def cell(self, index: int) -> int:
        """The cell where character ``index`` starts (outside the laid-out characters: one
        cell per column)."""
        if index < self.first:
            return index
        i = index - self.first
        if i < len(self.offsets):
            return self.offsets[i]
        return self.offsets[-1] + i - (len(self.offsets) - 1)

    def window(self, left: int, right: int) -> str:
        """The text between cells ``left`` and ``right``; a wide character cut by the left
        edge is replaced by spaces so later cells stay aligned."""
        out = []
        for piece, start, end in zip(self.pieces, self.offsets[:-1], self.offsets[1:], strict=True):
            if end <= left or end > right:
                continue
            out.append(piece if start >= left else " " * (end - left))
        return "".join(out)


def _lay_out(line: str, lo: int = 0, hi: int | None = None) -> _Laid:
    """``line[lo:hi]`` laid out (characters before ``lo``: one cell each)."""
    hi = len(line) if hi is None else min(hi, len(line))
    pieces = []
    offsets = [lo]
    cell = lo
    for ch in line[lo:hi]:
        piece = " " * (TAB_SIZE - cell % TAB_SIZE) if ch == "\t" else printable(ch)
        cell += cell_len(piece)
        pieces.append(piece)
        offsets.append(cell)
    return _Laid(tuple(pieces), tuple(offsets), lo, len(line) - hi)


def _window(total: int, start: int, end: int, avail: int, indent: int) -> tuple[int, int]:
    """Cells ``[left, right)`` of a line ``total`` cells wide to show in ``avail`` cells,
    keeping the start of the underline ``[start, end)`` in view (room is left for the
    ellipses). The line is never cut inside its indentation (``indent`` cells)."""
    if total <= avail:
        return 0, total
    if end <= avail - len(ELLIPSIS):
        return 0, avail - len(ELLIPSIS)
    if total - start <= avail - len(ELLIPSIS):
        return total - (avail - len(ELLIPSIS)), total
    room = avail - 2 * len(ELLIPSIS)
    left = start - max(0, (room - (end - start)) // 2)
    if left <= 0 or (left <= indent and start < avail - len(ELLIPSIS)):
        return 0, avail - len(ELLIPSIS)
    return left, left + room


class _Writer:
    def __init__(self, d: Diagnostic, sources: SourceStore, width: int) -> None:
        self.d = d
        self.sources = sources
        self.steps = steps(d)
        self.gw = max(
            len(str(row)) for step in self.steps for row in self._rows(step) if row is not None
        )
        self.avail = max(width - self.gw - 3, MIN_EXCERPT_WIDTH)
        self.out: list[Text] = []
        self.blank_last = False

    def _lines(self, step: Step) -> list[str] | None:
        lines = self.sources.lines(step.span.path)
        return lines if 1 <= step.span.start.row <= len(lines) else None

    def _rows(self, step: Step) -> list[int | None]:
        """The rows to show (None: an elided run of rows)."""
        start = step.span.start.row
        lines = self._lines(step)
        if lines is None:
            return [start]
        last = min(max(step.span.end.row, start), len(lines))
        rows: list[int | None] = list(range(start, last + 1))
        if len(rows) > MAX_SPAN_ROWS:
            rows = [*rows[:2], None, rows[-1]]
        return rows

    def emit(self, text: Text) -> None:
        self.out.append(text)
        self.blank_last = False

    def gutter(self, row: int | None = None) -> Text:
        label = "" if row is None else str(row)
        return Text.assemble((f"{label:>{self.gw}} |", STYLE_GUTTER))

    def blank(self) -> None:
        if not self.blank_last:
            self.emit(self.gutter())
            self.blank_last = True

    def arrow(self, path: str, step: Step) -> Text:
        s = step.span.start
        return Text.assemble(
            (" " * self.gw + "-->", STYLE_GUTTER), f" {printable(path)}:{s.row}:{s.column}"
        )

    def header(self) -> None:
        d = self.d
        s = d.span.start
        self.emit(
            Text.assemble(
                (printable(d.path), STYLE_PATH),
                f":{s.row}:{s.column}: ",
                (d.code, STYLE_CODE),
                " ",
                (f"[{printable(rule_name(d))}]", STYLE_NAME),
                " ",
                printable(d.message),
            )
        )

    def label(self, step: Step) -> str:
        return printable(step.label if step.label is not None else rule_name(self.d))

    def snippet(self, step: Step, lines: list[str]) -> None:
        span = step.span
        style = STYLE_PRIMARY if step.primary else STYLE_RELATED
        mark = "^"
        rows = self._rows(step)
        for row in rows:
            if row is None:
                self.emit(Text(ELLIPSIS, style=STYLE_GUTTER))
                continue
            raw = lines[row - 1].rstrip()
            first, last = row == span.start.row, row == rows[-1]
            a = max(span.start.column - 1, 0) if first else len(raw) - len(raw.lstrip())
            b = max(span.end.column - 1, 0) if row == span.end.row else len(raw)
            if len(raw) > LONG_LINE:  # a minified or generated line: only around the span
                lo = max(0, min(a, len(raw)) - 2 * self.avail)
                laid = _lay_out(raw, lo, max(a, lo) + 2 * self.avail)
            else:
                laid = _lay_out(raw)
            start, end = laid.cell(a), laid.cell(b)
            end = max(end, start + 1)
            indent = laid.cell(len(raw) - len(raw.lstrip()))
            left, right = _window(laid.width, start, end, self.avail, indent)
            shift = len(ELLIPSIS) if left > 0 else 0
            shown = (ELLIPSIS if left > 0 else "") + laid.window(left, right)
            if right < laid.width:
                shown += ELLIPSIS
            source = self.gutter(row)
            if shown:
                source.append(" " + shown)
            self.emit(source)
            if not (first or last) and a >= len(raw):
                continue  # a blank row inside the span
            under_start = max(start, left) - left + shift
            under_end = min(end, right) - left + shift
            under = mark * max(under_end - under_start, 1)
            if last:
                under += " " + self.label(step)
            self.emit(Text.assemble(self.gutter(), " " * (under_start + 1), (under, style)))

    def render(self) -> list[Text]:
        self.header()
        current = self.d.path
        for step in self.steps:
            lines = self._lines(step)
            if lines is None:  # the file is gone or shorter than the span: no excerpt
                arrow = self.arrow(step.span.path, step)
                style = STYLE_PRIMARY if step.primary else STYLE_RELATED
                arrow.append(": ").append(self.label(step), style=style)
                self.emit(arrow)
            else:
                if step.span.path != current:
                    self.blank()
                    self.emit(self.arrow(step.span.path, step))
                self.blank()
                self.snippet(step, lines)
                self.blank()
            current = step.span.path
        pad = " " * self.gw + " = "
        if self.d.fix:
            self.emit(Text.assemble(pad, ("help", STYLE_NOTE), ": ", printable(self.d.fix)))
        url = rule_url(self.d)
        if url:
            self.emit(Text.assemble(pad, ("rule", STYLE_NOTE), ": ", printable(url)))
        return self.out


def make_console(file: io.StringIO, *, color: bool, width: int) -> Console:
    """A console whose output depends on its arguments only (not on the environment)."""
    return Console(
        file=file,
        force_terminal=color,
        force_jupyter=False,
        force_interactive=False,
        color_system="standard" if color else None,
        no_color=not color,
        width=width,
        height=25,
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=True,
        legacy_windows=False,
        tab_size=TAB_SIZE,
        _environ={},
    )


def render_full(
    diagnostics: Sequence[Diagnostic], sources: SourceStore, *, color: bool, width: int
) -> str:
    buf = io.StringIO()
    console = make_console(buf, color=color, width=width)
    for i, d in enumerate(ordered(diagnostics)):
        if i:
            console.print()
        for line in _Writer(d, sources, width).render():
            console.print(line, soft_wrap=True)
    return buf.getvalue()
