"""Reading source files the way Python does (BOM, coding cookie), and a store of texts that
the output formats use to show source lines."""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import tokenize
from pathlib import Path


class DecodeFailure(Exception):
    """The bytes could not be decoded as Python source; ``row``/``column`` where known."""

    def __init__(self, message: str, row: int = 1, column: int = 1) -> None:
        super().__init__(message)
        self.row = row
        self.column = column


def decode_source(data: bytes) -> str:
    """Decode Python source bytes: a UTF-8 BOM, a PEP 263 coding cookie, else UTF-8.
    Newlines are kept as they are (the parser accepts CRLF and lone CR)."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:  # unknown codec in the cookie, or BOM + conflicting cookie
        raise DecodeFailure(str(exc), getattr(exc, "lineno", None) or 1) from None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        row = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        raise DecodeFailure(
            f"cannot decode as {encoding}: {exc.reason} (byte 0x{data[exc.start]:02x})",
            row,
            exc.start - line_start + 1,
        ) from None
    except (LookupError, UnicodeError, ValueError) as exc:
        # a cookie may name a codec that cannot decode at all (``undefined``) or fails in its
        # own way (``punycode``): still this file's problem, not the run's
        raise DecodeFailure(f"cannot decode as {encoding}: {exc}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    return text


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a special file"


def read_source_bytes(path: Path | str) -> bytes:
    """The bytes of the regular file ``path``. Never blocks: a FIFO, socket or device raises
    ``OSError`` (``strerror``: "not a regular file (a FIFO), skipped") without being read
    (a FIFO would wait for a writer forever, a device may never end), checked before opening
    it and again on the opened file."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(st.st_mode):
        raise OSError(errno.EINVAL, f"not a regular file ({_kind(st.st_mode)}), skipped")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between the two looks
            raise OSError(errno.EINVAL, f"not a regular file ({_kind(st.st_mode)}), skipped")
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, max(st.st_size + 1, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


_NEWLINE = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Lines as the Python tokenizer counts them: only \\r\\n, \\r and \\n end a line (a form
    feed or U+2028 inside a line does not, unlike ``str.splitlines``)."""
    if not text:
        return []
    lines = _NEWLINE.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


class SourceStore:
    """Source texts by display path, read lazily from disk unless given (stdin, editors)."""

    def __init__(self) -> None:
        self._texts: dict[str, str] = {}
        self._real: dict[str, Path] = {}
        self._lines: dict[str, list[str]] = {}

    def add_text(self, display: str, text: str) -> None:
        self._texts[display] = text
        self._lines.pop(display, None)

    def add_path(self, display: str, path: Path) -> None:
        self._real[display] = path

    def path(self, display: str) -> Path | None:
        """The file on disk shown as ``display`` (None: a text given directly, or unknown)."""
        return self._real.get(display)

    def text(self, display: str) -> str | None:
        if display in self._texts:
            return self._texts[display]
        path = self._real.get(display, Path(display))
        try:
            text = decode_source(read_source_bytes(path))
        except (OSError, DecodeFailure):
            return None
        self._texts[display] = text
        return text

    def lines(self, display: str) -> list[str]:
        if display not in self._lines:
            text = self.text(display)
            self._lines[display] = split_lines(text) if text is not None else []
        return self._lines[display]
