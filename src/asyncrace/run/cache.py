"""The extraction cache: each file's extraction outcome (facts, ``noqa`` map, meta
diagnostics), stored as JSON under the cache directory (``.asyncrace_cache/`` by default).

Safety. A cache directory can come from anywhere (committed to a repository, copied from
another machine), so nothing in it is trusted:

* The format is JSON decoded by orjson (:func:`loads_json`) into lists, strings and numbers, then
  into the dataclasses of :mod:`asyncrace.analysis.facts` by a decoder that checks the type of
  every value against the dataclass fields. Nothing is imported, evaluated or unpickled:
  reading an entry cannot run code.
* Each entry records its format, schema version, asyncrace version, Python version, its key
  (which names the file's display path and module) and the hash of the file's bytes; all are
  checked on read. An entry that is missing, not a regular file, too big, truncated,
  corrupt, of another version, for another file or for other contents is ignored (a miss) and
  rebuilt, never fatal.
* Entries are written to a temporary file in the same directory and moved into place with
  :func:`os.replace`, so a reader (another run, at the same time) sees either the old entry or
  the new one, never a partial one. Failing to write is not an error either: the run goes on.

Layout: ``<cache dir>/CACHEDIR.TAG`` and ``.gitignore`` (``*``), as ruff does, and one file per
source file, ``<cache dir>/extract-v<SCHEMA>-<asyncrace version>/<key>.json``: a changed file
overwrites its own entry, so the directory does not grow with edits; and a directory per
asyncrace version (every code change, for an editable install), of which the
:data:`KEEP_VERSIONS` used last are kept, so it does not grow with upgrades either.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import hashlib
import itertools
import logging
import operator
import os
import re
import shutil
import stat
import sys
import threading
import types
import typing
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import orjson

from asyncrace import code_version
from asyncrace.analysis.facts import ModuleFacts
from asyncrace.diagnostic import Diagnostic
from asyncrace.run.transfer import built, init_fields
from asyncrace.suppress import NoqaMap

__all__ = [
    "SCHEMA",
    "Cache",
    "CacheEntry",
    "Invalid",
    "content_digest",
    "decode",
    "decode_columns",
    "decode_trusted",
    "encode",
    "encode_columns",
    "encode_json",
    "entry_name",
    "inflate",
    "join_columns",
    "join_entry",
    "loads_json",
    "relabel",
    "split_entry",
]

log = logging.getLogger("asyncrace.cache")

FORMAT = "asyncrace-extract-cache"
# bump when the facts dataclasses, the extractor's output or the entry layout change
# 9: the payload in columns, compressed, after a head line (``join_entry``)
# 10: no unmatched-exception exit from a ``try`` with a bare ``except:`` or ``except BaseException``
# 11: the attribute names each module reads off other objects (``ModuleFacts.attr_reads``)
SCHEMA = 11
SUFFIX = ".entry"
# zlib's fastest level, for the project snapshot (``snapshot.store``): it shrinks about 5x. Entries
# are not compressed: at this level they shrank 4-5x more, but writing them cost about 0.25 s more
# CPU for 1,066 files (docs/benchmarks.md, perf19), more than the cache-writing target leaves
ZLIB_LEVEL = 1
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by asyncrace.\n"
    "# For information about cache directory tags see https://bford.info/cachedir/\n"
)
# directories of other asyncrace versions kept (a pre-commit hook pinned to one release and an
# editor on another, taking turns, both keep their entries), the least recently used removed
KEEP_VERSIONS = 3
# what a version directory of this cache is called (``extract-v2-0.1.0-38e2d8984ff20619``,
# and ``extract-v1`` of the first releases); nothing else is ever pruned
_VERSION_DIR = re.compile(r"extract-v\d+(-[A-Za-z0-9._-]+)?")
# an entry bigger than this many times its source (plus a constant) is not read
MAX_ENTRY_RATIO = 64
MAX_ENTRY_BASE = 1 << 20


class Invalid(ValueError):
    """The data does not have the shape of the type it is decoded as."""


T = TypeVar("T")
_Enc = Callable[[Any], Any]
_Dec = Callable[[list[Any]], list[Any]]


# ------------------------------------------------------------------------------ the codec


def _is_union(tp: object) -> bool:
    return typing.get_origin(tp) is Union or isinstance(tp, types.UnionType)


class _Codec:
    """Encoders and decoders built once per type from the dataclass field annotations.

    Supported: ``int``, ``str``, ``bool``, ``float``, ``None``, enums (by value), ``X | None``,
    ``tuple[X, ...]``, fixed tuples, ``list[X]``, ``dict[K, V]`` (as a flat ``[k, v, ...]``
    list, so keys of any type keep their order) and dataclasses (as the list of their field
    values, in field order). Anything else is refused when the codec is built."""

    def __init__(self) -> None:
        self._enc: dict[object, _Enc] = {}
        self._dec: dict[object, _Dec] = {}
        self._row: dict[type, _Enc] = {}

    def encoder(self, tp: object) -> _Enc:
        return built(self._enc, tp, self._build_encoder)

    def decoder(self, tp: object) -> _Dec:
        return built(self._dec, tp, self._build_decoder)

    # -- encoding --------------------------------------------------------------------------
    def _build_encoder(self, tp: object) -> _Enc:
        if tp in (int, str, bool, float, type(None)):
            return _identity
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_value
        if _is_union(tp):
            inner = self._optional_arg(tp)
            enc_inner = self.encoder(inner)
            return lambda v: None if v is None else enc_inner(v)
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            # only the fields JSON does not take as they are (dataclasses, dicts) converted
            return self._dataclass_row(tp, _json_ready, self.encoder)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is tuple:
            if len(args) == 2 and args[1] is Ellipsis:
                item = self.encoder(args[0])
                return lambda v: [item(x) for x in v]
            items = [self.encoder(a) for a in args]
            return lambda v: [enc(x) for enc, x in zip(items, v, strict=True)]
        if origin is list:
            item = self.encoder(args[0])
            return lambda v: [item(x) for x in v]
        if origin is dict:
            kenc, venc = self.encoder(args[0]), self.encoder(args[1])
            return lambda v: [y for k, x in v.items() for y in (kenc(k), venc(x))]
        raise TypeError(f"the cache codec does not support {tp!r}")

    # -- rows for orjson -------------------------------------------------------------------
    # :func:`encode_json` lets orjson walk the value: lists, tuples, strings, numbers, None and
    # enums natively, and every dataclass through :meth:`row` (its field values as a list,
    # dicts flattened as :meth:`encoder` does). The bytes are those of ``encode`` then JSON.
    def row(self, cls: type) -> _Enc:
        enc = self._row.get(cls)
        if enc is None:
            enc = self._row[cls] = self._build_row(cls)
        return enc

    def _build_row(self, cls: type) -> _Enc:
        if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
            raise TypeError(f"the cache codec does not support {cls!r}")
        return self._dataclass_row(cls, _orjson_ready, self._native)

    def _dataclass_row(
        self, cls: type, ready: Callable[[object], bool], convert_as: Callable[[object], _Enc]
    ) -> _Enc:
        """A dataclass as the list of its field values, every field read at once (in C), the
        fields whose type is not ``ready`` as they are converted by ``convert_as``."""
        names, hints = init_fields(cls, "cache")
        convert = [(i, convert_as(hints[n])) for i, n in enumerate(names) if not ready(hints[n])]
        if len(names) == 1:
            one = convert[0][1] if convert else _identity
            return lambda v: [one(getattr(v, names[0]))]
        get = operator.attrgetter(*names)

        def row(v: Any) -> Any:
            out = list(get(v))
            for i, enc in convert:
                out[i] = enc(out[i])
            return out

        return row

    def _native(self, tp: object) -> _Enc:
        """What turns a value of ``tp`` into something orjson writes as :meth:`encoder`'s
        output: a dict of plain keys and of values orjson takes is flattened here, anything
        else holding a dict is encoded whole."""
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is dict and _json_ready(args[0]) and _orjson_ready(args[1]):
            return lambda v: [y for kv in v.items() for y in kv]
        return self.encoder(tp)

    # -- decoding --------------------------------------------------------------------------
    # Decoders work on columns: a list of encoded values of one type in, the list of decoded
    # values out, so that type checks and constructor calls run in C (``map``, ``set``) over
    # whole columns: the events of a function, the fields of all those events, and so on. A
    # decoder may return its input list when nothing needed converting.
    def _build_decoder(self, tp: object) -> _Dec:
        if tp in (bool, int, str):
            return _exact_column(typing.cast(type, tp))
        if tp is float:
            return _float_column
        if tp is type(None):
            return _none_column
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return _enum_column(tp)
        if _is_union(tp):
            return _optional_column(self.decoder(self._optional_arg(tp)))
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self._dataclass_column(tp)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return _sequence_column(self.decoder(args[0]), tuple)
        if origin is tuple:
            return _fixed_tuple_column([self.decoder(a) for a in args])
        if origin is list:
            return _sequence_column(self.decoder(args[0]), list)
        if origin is dict:
            return _dict_column(self.decoder(args[0]), self.decoder(args[1]))
        raise TypeError(f"the cache codec does not support {tp!r}")

    def _dataclass_column(self, cls: type) -> _Dec:
        names, hints = init_fields(cls, "cache")
        decs = [self.decoder(hints[n]) for n in names]
        n = len(decs)

        def dec(col: list[Any]) -> list[Any]:
            _rows(col, n)
            if not col:
                return []
            fields = [d(list(c)) for d, c in zip(decs, zip(*col, strict=True), strict=True)]
            return list(map(cls, *fields))

        return dec

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _optional_arg(tp: object) -> object:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(tp)) != 2:
            raise TypeError(f"the cache codec supports only `X | None` unions, not {tp!r}")
        return args[0]


def _identity(v: Any) -> Any:
    return v


def _json_ready(tp: object) -> bool:
    """Values of ``tp`` are encoded as they are: JSON writes them as the codec would (an int
    enum as its value, a tuple as a list); dicts and dataclasses are not."""
    if tp in (int, str, bool, float, type(None)):
        return True
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        return True
    if _is_union(tp):
        return all(_json_ready(a) for a in typing.get_args(tp))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list):
        return all(a is Ellipsis or _json_ready(a) for a in args)
    return False


def _orjson_ready(tp: object) -> bool:
    """orjson writes values of ``tp`` as the codec's encoder would, given :meth:`_Codec.row`
    for dataclasses: no dict anywhere in it (enums are written as their value)."""
    if tp in (int, str, bool, float, type(None)):
        return True
    if isinstance(tp, type) and (
        issubclass(tp, enum.Enum) or (dataclasses.is_dataclass(tp) and isinstance(tp, type))
    ):
        return True
    if _is_union(tp):
        return all(_orjson_ready(a) for a in typing.get_args(tp))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list):
        return all(a is Ellipsis or _orjson_ready(a) for a in args)
    return False


def _enum_value(v: Any) -> Any:
    return v.value


def _types(col: list[Any]) -> set[type]:
    return set(map(type, col))


def _exact_column(tp: type) -> _Dec:
    def dec(col: list[Any]) -> list[Any]:
        if _types(col) - {tp}:
            raise Invalid(f"expected {tp.__name__} values")
        return col

    return dec


def _float_column(col: list[Any]) -> list[Any]:
    if _types(col) - {int, float}:
        raise Invalid("expected float values")
    return list(map(float, col))


def _none_column(col: list[Any]) -> list[Any]:
    if col.count(None) != len(col):
        raise Invalid("expected null values")
    return col


def _enum_column(cls: type[enum.Enum]) -> _Dec:
    by_value = {m.value: m for m in cls}
    allowed = {type(v) for v in by_value}

    def dec(col: list[Any]) -> list[Any]:
        if _types(col) - allowed:
            raise Invalid(f"expected {cls.__name__} values")
        try:
            return list(map(by_value.__getitem__, col))
        except KeyError as exc:
            raise Invalid(f"{exc.args[0]!r} is not a {cls.__name__}") from None

    return dec


def _optional_column(inner: _Dec) -> _Dec:
    def dec(col: list[Any]) -> list[Any]:
        if None not in col:
            return inner(col)
        idx = [i for i, x in enumerate(col) if x is not None]
        if not idx:
            return col
        values = inner([col[i] for i in idx])
        out = [None] * len(col)
        for i, v in zip(idx, values, strict=True):
            out[i] = v
        return out

    return dec


def _rows(col: list[Any], n: int = -1) -> None:
    """Every item of ``col`` is a list (of ``n`` items when given)."""
    if _types(col) - {list}:
        raise Invalid("expected lists")
    if n >= 0 and col and set(map(len, col)) != {n}:
        raise Invalid(f"expected lists of {n} items")


def _split(values: list[Any], lengths: list[int]) -> Iterator[list[Any]]:
    it = iter(values)
    return (list(itertools.islice(it, k)) for k in lengths)


def _sequence_column(item: _Dec, make: type) -> _Dec:
    def dec(col: list[Any]) -> list[Any]:
        _rows(col)
        flat = list(itertools.chain.from_iterable(col))
        values = item(flat)
        if values is flat:  # nothing converted: the lists themselves will do
            return col if make is list else list(map(make, col))
        parts = _split(values, list(map(len, col)))
        return list(parts) if make is list else list(map(make, parts))

    return dec


def _fixed_tuple_column(items: list[_Dec]) -> _Dec:
    n = len(items)

    def dec(col: list[Any]) -> list[Any]:
        _rows(col, n)
        if not col:
            return []
        columns = [list(c) for c in zip(*col, strict=True)]
        values = [d(c) for d, c in zip(items, columns, strict=True)]
        if all(v is c for v, c in zip(values, columns, strict=True)):
            return list(map(tuple, col))
        return list(zip(*values, strict=True))

    return dec


def _dict_column(kdec: _Dec, vdec: _Dec) -> _Dec:
    def dec(col: list[Any]) -> list[Any]:
        _rows(col)
        if any(len(row) % 2 for row in col):
            raise Invalid("a mapping needs an even number of items")
        keys = kdec([k for row in col for k in row[0::2]])
        values = vdec([v for row in col for v in row[1::2]])
        halves = [len(row) // 2 for row in col]
        return [
            dict(zip(k, v, strict=True))
            for k, v in zip(_split(keys, halves), _split(values, halves), strict=True)
        ]

    return dec


_CODEC = _Codec()


def encode(value: Any, tp: object) -> Any:
    """``value`` (of type ``tp``) as plain JSON data."""
    return _CODEC.encoder(tp)(value)


def _row_default(v: Any) -> Any:
    row = _ROWS.get(type(v))
    if row is None:
        row = _ROWS[type(v)] = _CODEC.row(type(v))
    return row(v)


_ROWS: dict[type, _Enc] = {}


_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS


def encode_json(doc: Any) -> bytes | None:
    """``doc`` (plain JSON data in which dataclass instances may stand) as compact UTF-8 JSON,
    with each dataclass as :func:`encode` gives it: the bytes of ``json.dumps(...,
    ensure_ascii=False, separators=(",", ":"))`` at a fraction of the cost (orjson walks it).
    None when it cannot be encoded (a lone surrogate in a string, an integer beyond 64 bits):
    that file is not cached."""
    try:
        return orjson.dumps(doc, default=_row_default, option=_ORJSON_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError included
        return None


def decode(data: Any, tp: type[T] | object) -> Any:
    """The value of type ``tp`` encoded in ``data``; raises :class:`Invalid` when ``data``
    does not have its shape (also for a field of the wrong type, or a dataclass that
    rejects the values)."""
    try:
        return _CODEC.decoder(tp)([data])[0]
    except Invalid:
        raise
    except (TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
        raise Invalid(f"{type(exc).__name__}: {exc}") from None


# ------------------------------------------------------------------------------ columns
#
# Entries are written in columns: a value of type ``tp`` is encoded with all the values of the
# same place in the entry, as one column. A dataclass column is the list of its fields'
# columns; a column of lists, tuples or dicts of anything JSON does not take as it is, the
# lengths then the items of all of them as one column (keys and values apart for a dict); an
# optional column, which values are present then those values; bools, and which values are
# present, as a string of ``0`` and ``1``; positions (tuples of ints) as one flat list of ints;
# any other column (ints, strings, tuples of strings...) as it is. So the events of all the
# functions of a file are 14 columns, built by ``map`` with an ``attrgetter`` (a C loop)
# instead of one Python call per event, and like values stand side by side, which the
# compressor likes. Decoding checks every column against the declared types (the row
# decoders above, for what is written as it is) and every length against the count its
# parent column implies.

_Col = Callable[[list[Any]], Any]
_Uncol = Callable[[Any, int], list[Any]]


class _Columns:
    def __init__(self) -> None:
        self._enc: dict[object, _Col] = {}
        self._dec: dict[object, _Uncol] = {}
        self._trusted: dict[object, _Uncol] = {}
        self._join: dict[object, Callable[[list[Any]], Any]] = {}

    def encoder(self, tp: object) -> _Col:
        return built(self._enc, tp, self._build_encoder)

    def decoder(self, tp: object) -> _Uncol:
        return built(self._dec, tp, self._build_decoder)

    def trusted(self, tp: object) -> _Uncol:
        return built(self._trusted, tp, self._build_trusted)

    def _build_encoder(self, tp: object) -> _Col:
        if _int_tuple(tp):
            return lambda col: list(itertools.chain.from_iterable(col))
        if tp is bool:
            return _flags
        if _is_union(tp):  # which values are present (flags), then those values
            inner = self.encoder(_Codec._optional_arg(tp))

            def enc_optional(col: list[Any]) -> Any:
                present = list(map(operator.is_not, col, itertools.repeat(None)))
                return [_flags(present), inner(list(itertools.compress(col, present)))]

            return enc_optional
        if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
            return lambda col: list(map(int, col))  # (plain ints: marshal takes no enum)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return lambda col: [m.value for m in col]
        if _json_ready(tp):
            return _identity
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            names, hints = init_fields(tp, "cache")
            parts = [(operator.attrgetter(n), self.encoder(hints[n])) for n in names]
            return lambda col: [enc(list(map(get, col))) for get, enc in parts]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is list or (origin is tuple and args[1:] == (Ellipsis,)):
            item = self.encoder(args[0])
            chain = itertools.chain.from_iterable
            return lambda col: [list(map(len, col)), item(list(chain(col)))]
        if origin is dict:
            kenc, venc = self.encoder(args[0]), self.encoder(args[1])
            chain = itertools.chain.from_iterable
            return lambda col: [
                list(map(len, col)),
                kenc(list(chain(col))),
                venc(list(chain(map(dict.values, col)))),
            ]
        raise TypeError(f"the cache codec does not support {tp!r}")

    def _build_decoder(self, tp: object) -> _Uncol:
        if tp is bool:
            return _checked_flags
        if _int_tuple(tp):
            width = len(typing.get_args(tp))

            def dec_int_tuple(data: Any, n: int) -> list[Any]:
                if _types(_column(data, width * n)) - {int}:
                    raise Invalid("expected integers")
                return list(zip(*[iter(data)] * width, strict=True))

            return dec_int_tuple
        if _is_union(tp):
            inner = self.decoder(_Codec._optional_arg(tp))

            def dec_optional(data: Any, n: int) -> list[Any]:
                flags, values = _parts(data, 2)
                where = list(itertools.compress(range(n), _checked_flags(flags, n)))
                return _scatter(n, where, inner(values, len(where)))

            return dec_optional
        if _json_ready(tp):
            rows = _CODEC.decoder(tp)

            def dec_as_is(data: Any, n: int) -> list[Any]:
                return rows(_column(data, n))

            return dec_as_is
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            values = _CODEC.decoder(tp)
            return lambda data, n: values(_column(data, n))
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            cls = tp
            names, hints = init_fields(tp, "cache")
            decs = [self.decoder(hints[name]) for name in names]
            width = len(decs)

            def dec_dataclass(data: Any, n: int) -> list[Any]:
                fields = _parts(data, width)
                if not n:
                    return []
                return list(map(cls, *[d(c, n) for d, c in zip(decs, fields, strict=True)]))

            return dec_dataclass
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is list or (origin is tuple and args[1:] == (Ellipsis,)):
            item = self.decoder(args[0])
            make = list if origin is list else tuple

            def dec_sequence(data: Any, n: int) -> list[Any]:
                lengths, items = _parts(data, 2)
                total = _lengths(lengths, n)
                return _slices(_as(make, item(items, total)), lengths)

            return dec_sequence
        if origin is dict:
            kdec, vdec = self.decoder(args[0]), self.decoder(args[1])

            def dec_dict(data: Any, n: int) -> list[Any]:
                lengths, keys, values = _parts(data, 3)
                total = _lengths(lengths, n)
                ks, vs = kdec(keys, total), vdec(values, total)
                return list(map(dict, map(zip, _slices(ks, lengths), _slices(vs, lengths))))

            return dec_dict
        raise TypeError(f"the cache codec does not support {tp!r}")

    # -- columns of several values made one --------------------------------------------------
    # Every column holds its values' parts one after another (lengths, flags and items alike,
    # nothing refers to a position), so the columns of N values, each a column of one, are
    # made the column of all N by joining each leaf list: what a worker does with the entries
    # of a chunk before sending them, so that its parent decodes a chunk at once.
    def joiner(self, tp: object) -> Callable[[list[Any]], Any]:
        join = self._join.get(tp)
        if join is None:
            cell: list[Callable[[list[Any]], Any]] = []
            self._join[tp] = lambda parts: cell[0](parts)
            join = self._build_joiner(tp)
            cell.append(join)
            self._join[tp] = join
        return join

    def _build_joiner(self, tp: object) -> Callable[[list[Any]], Any]:
        # (in the order of :meth:`_build_encoder`'s cases)
        chain = itertools.chain.from_iterable
        if tp is bool:
            return "".join
        if _int_tuple(tp):
            return lambda parts: list(chain(parts))
        if _is_union(tp):
            inner = self.joiner(_Codec._optional_arg(tp))
            return lambda parts: ["".join([p[0] for p in parts]), inner([p[1] for p in parts])]
        if _json_ready(tp) or (isinstance(tp, type) and issubclass(tp, enum.Enum)):
            return lambda parts: list(chain(parts))
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            names, hints = init_fields(tp, "cache")
            joins = [self.joiner(hints[n]) for n in names]
            return lambda parts: [join([p[i] for p in parts]) for i, join in enumerate(joins)]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is list or (origin is tuple and args[1:] == (Ellipsis,)):
            item = self.joiner(args[0])
            return lambda parts: [list(chain(p[0] for p in parts)), item([p[1] for p in parts])]
        if origin is dict:
            kjoin, vjoin = self.joiner(args[0]), self.joiner(args[1])
            return lambda parts: [
                list(chain(p[0] for p in parts)),
                kjoin([p[1] for p in parts]),
                vjoin([p[2] for p in parts]),
            ]
        raise TypeError(f"the cache codec does not support {tp!r}")

    # -- what a worker of this run encoded, marshalled: not checked -------------------------
    # (tuples arrive as tuples, so what is written as it is needs nothing done)
    def _build_trusted(self, tp: object) -> _Uncol:
        if tp is bool:
            return lambda data, n: list(map(_FLAG_VALUES.__getitem__, data))
        if _int_tuple(tp):
            width = len(typing.get_args(tp))
            return lambda data, n: list(zip(*[iter(data)] * width, strict=True))
        if _is_union(tp):
            inner = self.trusted(_Codec._optional_arg(tp))

            def dec_optional(data: Any, n: int) -> list[Any]:
                flags, values = data
                where = list(itertools.compress(range(n), map(_FLAG_VALUES.__getitem__, flags)))
                return _scatter(n, where, inner(values, len(where)))

            return dec_optional
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            by_value = {m.value: m for m in tp}
            return lambda data, n: list(map(by_value.__getitem__, data))
        if _json_ready(tp):
            return _identity2
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            cls = tp
            names, hints = init_fields(tp, "cache")
            decs = [self.trusted(hints[name]) for name in names]

            def dec_dataclass(data: Any, n: int) -> list[Any]:
                if not n:
                    return []
                return list(map(cls, *[d(c, n) for d, c in zip(decs, data, strict=True)]))

            return dec_dataclass
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is list or (origin is tuple and args[1:] == (Ellipsis,)):
            item = self.trusted(args[0])
            make = list if origin is list else tuple

            def dec_sequence(data: Any, n: int) -> list[Any]:
                lengths, items = data
                total = sum(lengths)
                if not total:
                    return [make()] * n if make is tuple else [[] for _ in lengths]
                return _slices(_as(make, item(items, total)), lengths)

            return dec_sequence
        if origin is dict:
            kdec, vdec = self.trusted(args[0]), self.trusted(args[1])

            def dec_dict(data: Any, n: int) -> list[Any]:
                lengths, keys, values = data
                total = sum(lengths)
                if not total:
                    return [{} for _ in lengths]
                ks, vs = _slices(kdec(keys, total), lengths), _slices(vdec(values, total), lengths)
                return list(map(dict, map(zip, ks, vs)))

            return dec_dict
        raise TypeError(f"the cache codec does not support {tp!r}")


def _identity2(data: Any, n: int) -> Any:
    return data


def _slices(values: Sequence[Any], lengths: list[int]) -> list[Any]:
    """``values`` cut into consecutive parts of ``lengths`` items (lists of a list, tuples of
    a tuple), in C loops."""
    ends = list(itertools.accumulate(lengths))
    starts = [0, *ends[:-1]] if ends else []
    return list(map(values.__getitem__, map(slice, starts, ends)))


def _as(make: type, values: Any) -> Any:
    return values if type(values) is make else make(values)


def _scatter(n: int, where: list[int], values: list[Any]) -> list[Any]:
    """A list of ``n`` items, None but at the indices ``where``, which hold ``values``."""
    if len(where) != len(values):
        raise Invalid("as many values as indices expected")
    out: list[Any] = [None] * n
    collections.deque(map(out.__setitem__, where, values), maxlen=0)
    return out


_FLAG_CHARS = bytes.maketrans(b"\x00\x01", b"01")
_FLAG_VALUES = {"0": False, "1": True}


def _flags(col: list[bool]) -> str:
    """A column of bools as one string of ``0`` and ``1`` (a byte each, in JSON and marshal
    alike, where a list of bools takes six and a reference each)."""
    return bytes(col).translate(_FLAG_CHARS).decode("ascii")


def _checked_flags(data: Any, n: int) -> list[bool]:
    if type(data) is not str or len(data) != n:
        raise Invalid(f"expected {n} flags")
    try:
        return list(map(_FLAG_VALUES.__getitem__, data))
    except KeyError:
        raise Invalid("expected flags") from None


def _int_tuple(tp: object) -> bool:
    """A fixed tuple of ints (a position): written flat, all the tuples of a column as one
    list of ints."""
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and bool(args) and all(a is int for a in args)


def _column(data: Any, n: int) -> list[Any]:
    """``data`` is a list of ``n`` items."""
    if type(data) is not list or len(data) != n:
        raise Invalid(f"expected a column of {n} values")
    return data


def _parts(data: Any, n: int) -> list[Any]:
    if type(data) is not list or len(data) != n:
        raise Invalid(f"expected {n} columns")
    return data


def _lengths(lengths: Any, n: int) -> int:
    """``lengths`` is a column of ``n`` lengths; their sum."""
    if _types(_column(lengths, n)) - {int} or (lengths and min(lengths) < 0):
        raise Invalid("expected lengths")
    return sum(lengths)


_COLUMNS = _Columns()


def encode_columns(value: Any, tp: object) -> Any:
    """``value`` (of type ``tp``) as plain JSON data, in columns."""
    return _COLUMNS.encoder(tp)([value])


def join_columns(parts: list[Any], tp: object) -> Any:
    """The columns of several values of type ``tp`` (:func:`encode_columns` of each) as the
    columns of them all, in order."""
    return _COLUMNS.joiner(tp)(parts)


def decode_trusted(data: Any, tp: type[T] | object, n: int = 1) -> list[Any]:
    """:func:`decode_columns` of the ``n`` values in ``data`` (:func:`join_columns`), without
    a check: for what a worker of this very run encoded and sent through :mod:`marshal` (which
    keeps tuples), never for what was read from disk."""
    return _COLUMNS.trusted(tp)(data, n)


def decode_columns(data: Any, tp: type[T] | object) -> Any:
    """The value of type ``tp`` :func:`encode_columns` encoded in ``data``; raises
    :class:`Invalid` when ``data`` does not have its shape."""
    try:
        return _COLUMNS.decoder(tp)(data, 1)[0]
    except Invalid:
        raise
    except (TypeError, ValueError, KeyError, IndexError, RecursionError) as exc:
        raise Invalid(f"{type(exc).__name__}: {exc}") from None


# ------------------------------------------------------------------------------ the entries


@dataclasses.dataclass(slots=True)
class CacheEntry:
    """What is cached for one file."""

    facts: ModuleFacts | None
    meta: list[Diagnostic]
    noqa: NoqaMap


def entry_name(path: str, root: str) -> str:
    """What a file's entry is named after: its path relative to the project root ``root``
    (POSIX separators), or its absolute path outside it. Unlike the display path (relative to
    the working directory), it is the same from any working directory, so runs from the
    project root and from a subdirectory share the entries."""
    apath = os.path.abspath(path)
    prefix = root if root.endswith(os.sep) else root + os.sep
    if apath.startswith(prefix):
        rel = apath[len(prefix) :]
        return rel if os.sep == "/" else rel.replace(os.sep, "/")
    return apath if os.sep == "/" else apath.replace(os.sep, "/")


def relabel(entry: CacheEntry, path: str) -> CacheEntry:
    """``entry`` about the file ``path``: the display path the facts and meta diagnostics
    carry (cached under the :func:`entry_name`, shown under the display path)."""
    facts = entry.facts
    if (facts is None or facts.path == path) and all(d.span.path == path for d in entry.meta):
        return entry
    return CacheEntry(
        None if facts is None else dataclasses.replace(facts, path=path),
        [dataclasses.replace(d, span=dataclasses.replace(d.span, path=path)) for d in entry.meta],
        entry.noqa,
    )


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def _check_facts(facts: ModuleFacts) -> None:
    """The cross-references the analysis relies on: event successors, handlers and regions
    inside their function, methods and nested functions that exist."""
    chain = itertools.chain.from_iterable
    for fn in facts.functions.values():
        n = len(fn.events)
        succ = list(chain(ev.succ for ev in fn.events))
        handlers = [ev.handler for ev in fn.events]
        regions = list(chain(ev.regions for ev in fn.events))
        if (succ and not 0 <= min(succ) <= max(succ) < n) or (
            handlers and not -1 <= min(handlers) <= max(handlers) < n
        ):
            raise Invalid(f"event index out of range in {fn.qualname}")
        if regions and not 0 <= min(regions) <= max(regions) < len(fn.regions):
            raise Invalid(f"region index out of range in {fn.qualname}")
        if any(not 0 <= reg.first <= reg.last <= n for reg in fn.regions):
            raise Invalid(f"region bounds out of range in {fn.qualname}")
        if any(q not in facts.functions for q in fn.nested):
            raise Invalid(f"unknown nested function in {fn.qualname}")
    for cls in facts.classes.values():
        if any(q not in facts.functions for q in cls.methods.values()):
            raise Invalid(f"unknown method in {cls.qualname}")


class Cache:
    """One cache directory. Every method is safe to call on a broken directory: reads miss,
    writes are skipped (a warning is logged once)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        tag = "".join(c if c.isalnum() or c in "._" else "-" for c in code_version())
        self.dir = self.root / f"extract-v{SCHEMA}-{tag}"
        self._warned = False

    @classmethod
    def open(cls, root: Path) -> Cache | None:
        """The cache in ``root``, created with its ``CACHEDIR.TAG`` and ``.gitignore`` if
        needed; None (and a warning) when it cannot be created."""
        cache = cls(root)
        try:
            cache.dir.mkdir(parents=True, exist_ok=True)
            for name, content in ((".gitignore", "*\n"), ("CACHEDIR.TAG", CACHEDIR_TAG)):
                if not (cache.root / name).exists():
                    _atomic_write(cache.root / name, content.encode("ascii"))
        except OSError as exc:
            log.warning("asyncrace: warning: cache disabled, cannot use %s: %s", root, exc)
            return None
        cache._prune_versions()
        return cache

    def _prune_versions(self) -> None:
        """Mark this version's directory used, and remove those of other versions beyond the
        :data:`KEEP_VERSIONS` used last. Never fatal: a directory another run is using at the
        same moment just misses."""
        try:
            os.utime(self.dir)
            tag = self.root / "CACHEDIR.TAG"
            if not tag.is_file() or tag.read_text("ascii", "replace") != CACHEDIR_TAG:
                return  # not a directory asyncrace made: never delete anything in it
            dirs = [
                d
                for d in self.root.iterdir()
                if _VERSION_DIR.fullmatch(d.name) and d.is_dir() and not d.is_symlink()
            ]
            dirs.sort(key=lambda d: (d != self.dir, -d.stat().st_mtime, d.name))
            for old in dirs[KEEP_VERSIONS:]:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            return

    # -- keys ------------------------------------------------------------------------------
    @staticmethod
    def key(display: str, module: str, is_package: bool) -> str:
        """The entry's name: everything about the file but its contents (the path the facts
        embed, :func:`entry_name` through :meth:`get_as`, and the module name), and the
        versions of what produced it."""
        material = "\0".join(
            (FORMAT, str(SCHEMA), code_version(), PYTHON, display, module, str(int(is_package)))
        )
        return hashlib.blake2b(
            material.encode("utf-8", "surrogatepass"), digest_size=20
        ).hexdigest()

    def path(self, key: str) -> Path:
        return self.dir / f"{key}{SUFFIX}"

    # -- by project-relative name -----------------------------------------------------------
    def get_as(
        self, name: str, module: str, is_package: bool, digest: str, size: int, display: str
    ) -> CacheEntry | None:
        """The entry of the file named ``name`` (:func:`entry_name`) as :meth:`get` finds it,
        about ``display`` (its display path in this run)."""
        entry = self.get(Cache.key(name, module, is_package), digest, size, name)
        return None if entry is None else relabel(entry, display)

    def put_as(
        self, name: str, module: str, is_package: bool, digest: str, entry: CacheEntry
    ) -> Any:
        """Store ``entry`` (about any display path) under ``name`` (:func:`entry_name`). The
        entry about ``name`` in columns (:func:`encode_columns`), written or not: what a worker
        sends its parent (:func:`decode_trusted`, then :func:`relabel`)."""
        columns = encode_columns(relabel(entry, name), CacheEntry)
        self.put_columns(Cache.key(name, module, is_package), digest, columns)
        return columns

    # -- reading ---------------------------------------------------------------------------
    def get(
        self, key: str, digest: str, size: int, display: str | None = None
    ) -> CacheEntry | None:
        """The entry for ``key`` if it is valid and was made from contents with ``digest``
        (``size`` bytes long), and (when given) all it reports is about ``display``; None
        otherwise, whatever is on disk."""
        limit = MAX_ENTRY_BASE + MAX_ENTRY_RATIO * size
        data = _read_regular(self.path(key), limit)
        if data is None:
            return None
        try:
            head, body = split_entry(data)
            if head != [FORMAT, SCHEMA, code_version(), PYTHON, key, digest]:
                return None
            entry: CacheEntry = decode_columns(loads_json(body), CacheEntry)
            if entry.facts is not None:
                _check_facts(entry.facts)
            if display is not None and (
                (entry.facts is not None and entry.facts.path != display)
                or any(d.span.path != display for d in entry.meta)
            ):
                return None  # facts or diagnostics about another file
        except (ValueError, RecursionError, MemoryError):
            return None  # Invalid and JSON errors included
        return entry

    # -- writing ---------------------------------------------------------------------------
    def put(self, key: str, digest: str, entry: CacheEntry) -> bool:
        """Store ``entry`` atomically; False (and a warning, once) when it cannot be."""
        return self.put_columns(key, digest, encode_columns(entry, CacheEntry))

    def put_columns(self, key: str, digest: str, columns: Any) -> bool:
        """:meth:`put` of the entry whose :func:`encode_columns` is ``columns``."""
        data = join_entry([FORMAT, SCHEMA, code_version(), PYTHON, key, digest], columns)
        if data is None:
            return False  # e.g. a lone surrogate: not cached, extracted again next time
        try:
            _atomic_write(self.path(key), data)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("asyncrace: warning: cannot write the cache in %s: %s", self.root, exc)
            return False
        return True


def join_entry(head: list[Any], payload: Any) -> bytes | None:
    """An entry file: its head (format, schema, versions, key, content digest) as one line of
    JSON, then the payload (plain JSON data) as JSON. None when either
    cannot be encoded (:func:`encode_json`)."""
    top, body = encode_json(head), encode_json(payload)
    if top is None or body is None:
        return None
    return top + b"\n" + body


def split_entry(data: bytes) -> tuple[Any, bytes]:
    """:func:`join_entry` undone halfway: the head decoded, the payload not yet (a stale entry
    is told by its head alone). ValueError when ``data`` is not an entry."""
    top, sep, body = data.partition(b"\n")
    if not sep:
        raise Invalid("not an entry")
    return loads_json(top), body


def inflate(body: bytes, limit: int) -> bytes:
    """``body`` compressed by zlib (the project snapshot), of at most ``limit`` bytes once
    inflated (a small file that inflates to gigabytes is refused, not inflated); ValueError
    otherwise."""
    inflater = zlib.decompressobj()
    data = inflater.decompress(body, limit)
    if not inflater.eof or inflater.unconsumed_tail or inflater.unused_data:
        raise Invalid("a truncated or oversized entry")
    return data


def loads_json(data: bytes) -> Any:
    """The JSON document ``data``, by orjson; ValueError when it is not one (or holds what
    :func:`encode_json` never writes: an escaped lone surrogate, NaN)."""
    return orjson.loads(data)


def _read_regular(path: Path, limit: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a symbolic link, FIFO or device) of
    at most ``limit`` bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """``data`` into ``path`` through a temporary file moved into place. The temporary file is
    named after the entry and this process and thread (made with ``O_EXCL``, mode 0644), which
    costs less than :func:`tempfile.mkstemp`'s random names and ``fchmod``; should that name be
    taken (a leftover of a killed run), a random one."""
    tmp = str(path.parent / f".tmp-{path.name}-{os.getpid()}-{threading.get_ident()}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o644)
    except FileExistsError:
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".part", dir=path.parent)
        if hasattr(os, "fchmod"):  # mkstemp makes it 0600; a cache is not a secret
            os.fchmod(fd, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
