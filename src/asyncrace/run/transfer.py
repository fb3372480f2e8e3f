"""Extraction outcomes across processes in a flat encoding: a worker turns a chunk of outcomes
into columns of plain values (one list per dataclass field, the items of every nested list,
tuple or dict of dataclasses concatenated), and sends them as one :mod:`marshal` string; the
parent builds the objects again column by column.

Why: pickling the facts object by object cost about a third of the extraction itself in the
workers (a ``__reduce__`` call per event, a memo entry per string), and unpickling a
constructor call per object in the parent. Here every per-object step is a C loop (``map``
with an ``attrgetter``, a class or ``int``); Python runs once per column, not once per object.

The data comes from a worker of this very run, never from disk: nothing is validated (the
extraction cache, which reads what anyone may have written, has its own checked codec). The
codec is built once per type from the dataclass field annotations, as the cache's is; an
unsupported field type fails when it is built (in the tests), never on data.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import marshal
import operator
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, Union, cast

_Enc = Callable[[list[Any]], Any]
_Dec = Callable[[Any], list[Any]]


_F = TypeVar("_F", bound=Callable[..., Any])


def built(table: dict[object, _F], tp: object, build: Callable[[object], _F]) -> _F:
    """``table[tp]``, made by ``build(tp)`` the first time it is asked for. While it is being
    made, the entry forwards to what is made, so that a recursive type that asks for itself
    gets it (the codecs of the transfer encoding and of the cache's columns)."""
    fn = table.get(tp)
    if fn is None:
        cell: list[_F] = []
        table[tp] = cast(_F, lambda *args: cell[0](*args))
        fn = build(tp)
        cell.append(fn)
        table[tp] = fn
    return fn


_PLAIN = (int, str, bool, float, type(None))


def _is_union(tp: object) -> bool:
    return typing.get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _optional_arg(tp: object) -> object:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if len(args) != 1 or len(typing.get_args(tp)) != 2:
        raise TypeError(f"the transfer codec supports only `X | None` unions, not {tp!r}")
    return args[0]


def _plain(tp: object) -> bool:
    """Values of ``tp`` are marshalled as they are (no dataclass, no enum inside)."""
    if tp in _PLAIN:
        return True
    if _is_union(tp):
        return _plain(_optional_arg(tp))
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list, dict):
        return all(a is Ellipsis or _plain(a) for a in args)
    return False


def _split(values: list[Any], lengths: Sequence[int]) -> list[list[Any]]:
    it = iter(values)
    return [list(itertools.islice(it, k)) for k in lengths]


def init_fields(cls: type, codec: str) -> tuple[list[str], dict[str, object]]:
    """A dataclass's field names and their resolved annotations, for a codec (``codec``
    names it in the error) that rebuilds instances through ``__init__``."""
    fields = dataclasses.fields(cls)
    if any(not f.init for f in fields):
        raise TypeError(f"the {codec} codec needs every field of {cls!r} in __init__")
    module = sys.modules.get(cls.__module__)
    hints = typing.get_type_hints(cls, vars(module) if module else None)
    return [f.name for f in fields], hints


class _Codec:
    def __init__(self) -> None:
        self._enc: dict[object, _Enc] = {}
        self._dec: dict[object, _Dec] = {}

    def encoder(self, tp: object) -> _Enc:
        return built(self._enc, tp, self._build_encoder)

    def decoder(self, tp: object) -> _Dec:
        return built(self._dec, tp, self._build_decoder)

    # A column is a list of values of one type; its encoding is plain data.
    def _build_encoder(self, tp: object) -> _Enc:
        if _plain(tp):
            return _identity
        if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
            return lambda col: list(map(int, col))
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return lambda col: [m.value for m in col]
        if _is_union(tp):  # of something not plain: the positions of the values, the values
            inner = self.encoder(_optional_arg(tp))

            def enc_optional(col: list[Any]) -> Any:
                present = list(map(operator.is_not, col, itertools.repeat(None)))
                return present, inner(list(itertools.compress(col, present)))

            return enc_optional
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            names, hints = init_fields(tp, "transfer")
            parts = [(operator.attrgetter(n), self.encoder(hints[n])) for n in names]
            return lambda col: [enc(list(map(get, col))) for get, enc in parts]
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (tuple, list) and (origin is list or args[1:] == (Ellipsis,)):
            item = self.encoder(args[0])
            return lambda col: (
                list(map(len, col)),
                item(list(itertools.chain.from_iterable(col))),
            )
        if origin is dict:
            kenc, venc = self.encoder(args[0]), self.encoder(args[1])
            return lambda col: (
                list(map(len, col)),
                kenc(list(itertools.chain.from_iterable(col))),
                venc(list(itertools.chain.from_iterable(map(dict.values, col)))),
            )
        raise TypeError(f"the transfer codec does not support {tp!r}")

    def _build_decoder(self, tp: object) -> _Dec:
        if _plain(tp):
            return _identity
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            by_value = {m.value: m for m in tp}
            return lambda data: list(map(by_value.__getitem__, data))
        if _is_union(tp):
            inner = self.decoder(_optional_arg(tp))

            def dec_optional(data: Any) -> list[Any]:
                present, values = data
                it = iter(inner(values))
                return [next(it) if p else None for p in present]

            return dec_optional
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            cls = tp
            names, hints = init_fields(tp, "transfer")
            decs = [self.decoder(hints[n]) for n in names]
            return lambda data: list(map(cls, *[d(c) for d, c in zip(decs, data, strict=True)]))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (tuple, list) and (origin is list or args[1:] == (Ellipsis,)):
            item = self.decoder(args[0])
            if origin is list:
                return lambda data: _split(item(data[1]), data[0])
            return lambda data: list(map(tuple, _split(item(data[1]), data[0])))
        if origin is dict:
            kdec, vdec = self.decoder(args[0]), self.decoder(args[1])

            def dec_dict(data: Any) -> list[Any]:
                lengths, keys, values = data
                return list(
                    map(dict, map(zip, _split(kdec(keys), lengths), _split(vdec(values), lengths)))
                )

            return dec_dict
        raise TypeError(f"the transfer codec does not support {tp!r}")


def _identity(col: Any) -> Any:
    return col


_CODEC = _Codec()


def dumps(values: list[Any], tp: object) -> bytes:
    """The values (all of type ``tp``) as one flat string."""
    return marshal.dumps(_CODEC.encoder(tp)(values))


def loads(data: bytes, tp: object) -> list[Any]:
    """The values :func:`dumps` encoded, built again."""
    return _CODEC.decoder(tp)(marshal.loads(data))


__all__ = ["dumps", "loads"]
