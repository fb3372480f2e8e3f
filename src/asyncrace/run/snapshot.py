"""The project snapshot: what an incremental run needs from the previous run of the same files
with the same settings (``docs/architecture.md``, "Incremental runs").

For every file it keeps the content digest the run saw and, for a file with facts:

* the module's *header*: its facts without function bodies (events and with-regions), which
  is all linking needs;
* its *interface* digest: the header without positions, what its bodies mention by name
  (:class:`~asyncrace.analysis.summaries.ModuleMentions`) and the attribute types linking
  inferred for its classes. An incremental run applies only while every changed file keeps its
  interface;
* the modules (and spawn-site keys) the rules read while checking it, and its findings after
  suppression;
* its contribution to the spawn-site table, with the modules read to compute it.

One JSON document per line: a first line that names the format, versions and key, then,
compressed together by zlib, the project's mention index and one line per file in display
order. A run that changes a few files writes the other lines back as
they were read. Like every cache of asyncrace, it is JSON validated field by field on reading
(it can come from anywhere, and reading it must not run code), written atomically, and any
surprise in it means "no snapshot": the run is then a full one, never a wrong one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from asyncrace import code_version
from asyncrace.analysis.concurrency import Verdict
from asyncrace.analysis.facts import ClassFacts, FunctionFacts, ModuleFacts
from asyncrace.analysis.summaries import Mentions, ModuleMentions, Step
from asyncrace.diagnostic import Diagnostic
from asyncrace.run import runcache
from asyncrace.run.cache import ZLIB_LEVEL, Invalid, inflate
from asyncrace.settings import Settings

FORMAT = "asyncrace-project-snapshot"
# 2: the concurrency model's verdicts per module; 3: reads noted as NO_CALLERS_KEY; 4: lines
# written by orjson (UTF-8, where 3 escaped every non-ASCII character); 5: the lines after the
# head compressed together (zlib), the file named ``<key>.snapshot``; 6: the attribute names
# each module reads off other objects in its mentions and the index
SCHEMA = 6
SUFFIX = ".snapshot"
MAX_SIZE = 1 << 31  # a snapshot that inflates beyond this is not read (no project needs it)
KEEP = 4  # snapshots kept per cache directory (one per set of files and settings)
DIR = "projects"


@dataclasses.dataclass
class Record:
    """One file of the snapshot."""

    display: str
    module: str | None  # the linked module name; None: the file has no facts
    digest: str
    interface: str = ""
    header: Any = None  # the encoded header (JSON value), decoded by :meth:`header_facts`
    mentions: ModuleMentions | None = None
    attr_types: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    deps: frozenset[str] = frozenset()  # what its check read
    contribution: list[tuple[str, str, Step]] | None = None  # None: never computed
    contribution_deps: frozenset[str] = frozenset()
    # the concurrency model's verdicts for its functions: (function, scope, verdict, reads)
    verdicts: list[tuple[str, str, Verdict, frozenset[str]]] = dataclasses.field(
        default_factory=list
    )
    # names linking its classes found missing elsewhere (``Index.link_reads``)
    link_reads: frozenset[str] = frozenset()
    reported: list[Diagnostic] = dataclasses.field(default_factory=list)
    suppressed: list[Diagnostic] = dataclasses.field(default_factory=list)
    raw: bytes = b""  # the line it was read from, written back when the record is unchanged

    def header_facts(self) -> ModuleFacts:
        facts = decode_header(self.header)
        if self.module is not None and facts.module != self.module:
            facts = dataclasses.replace(facts, module=self.module)
        return facts


def encode_header(m: ModuleFacts) -> list[Any]:
    """What linking reads of a module without handing out one of its functions: the module's
    names, imports and variables, its classes whole, and of each function its name, class,
    enclosing function and whether it is async. Everything else of a function (its body,
    parameters, decorators, positions) is read only through the function table, which loads
    the module's full facts from the extraction cache first (``index.Index.unloaded``)."""
    fns = [m.functions[q] for q in sorted(m.functions)]
    return [
        m.path,
        m.module,
        _flat(m.imports),
        _flat(m.global_types),
        list(m.global_vars),
        list(m.passed),
        [
            [
                c.qualname,
                c.name,
                list(c.bases),
                _flat(c.methods),
                _flat(c.attr_types),
                list(c.fields),
                list(c.decorators),
                c.abstract,
            ]
            for c in (m.classes[q] for q in sorted(m.classes))
        ],
        [f.qualname for f in fns],
        [f.name for f in fns],
        [f.cls for f in fns],
        [f.parent for f in fns],
        "".join("1" if f.is_async else "0" for f in fns),
    ]


def decode_header(v: Any) -> ModuleFacts:
    """:func:`encode_header` back, every value checked; function facts are stubs."""
    if not isinstance(v, list) or len(v) != 12:
        raise Invalid("header")
    path, module, imports, gtypes, gvars, passed, classes, quals, names, clss, parents, asyn = v
    classes_out: dict[str, ClassFacts] = {}
    if not isinstance(classes, list):
        raise Invalid("classes")
    for c in classes:
        if not isinstance(c, list) or len(c) != 8 or type(c[7]) is not bool:
            raise Invalid("class")
        cq = _str(c[0])
        classes_out[cq] = ClassFacts(
            cq,
            _str(c[1]),
            tuple(_strs(c[2])),
            (0, 0, 0, 0),
            _unflat(c[3]),
            _unflat(c[4]),
            tuple(_strs(c[5])),
            tuple(_strs(c[6])),
            c[7],
        )
    quals = _strs(quals)
    names = _strs(names)
    n = len(quals)
    if len(names) != n or not isinstance(clss, list) or not isinstance(parents, list):
        raise Invalid("functions")
    if len(clss) != n or len(parents) != n or not isinstance(asyn, str) or len(asyn) != n:
        raise Invalid("functions")
    functions: dict[str, FunctionFacts] = {}
    for q, name, cls, parent, a in zip(quals, names, clss, parents, asyn, strict=True):
        if (cls is not None and type(cls) is not str) or (
            parent is not None and type(parent) is not str
        ):
            raise Invalid("function")
        functions[q] = FunctionFacts(
            q, name, cls, parent, a == "1", False, False, (), (), (0, 0, 0, 0), [], []
        )
    return ModuleFacts(
        _str(path),
        _str(module),
        _unflat(imports),
        classes_out,
        functions,
        _unflat(gtypes),
        tuple(_strs(gvars)),
        tuple(_strs(passed)),
    )


def fill(stub: ModuleFacts, full: ModuleFacts) -> None:
    """Complete the function stubs of a header (:func:`decode_header`) with ``full``'s facts,
    in place (the index holds the stubs)."""
    if set(full.functions) != set(stub.functions):
        raise Invalid("the header does not match the facts")
    for q, f in full.functions.items():
        s = stub.functions[q]
        for name in _FUNCTION_FIELDS:
            setattr(s, name, getattr(f, name))


_FUNCTION_FIELDS = tuple(f.name for f in dataclasses.fields(FunctionFacts))


def _flat(d: dict[str, str]) -> list[str]:
    return [x for kv in d.items() for x in kv]


def _unflat(v: Any) -> dict[str, str]:
    items = _strs(v)
    if len(items) % 2:
        raise Invalid("pairs")
    it = iter(items)
    return dict(zip(it, it, strict=True))


@dataclasses.dataclass(frozen=True)
class Interface:
    """What other modules may know of a module without reading its bodies or positions: its
    module-level names, imports and variables and the attribute types linking inferred for its
    classes (``module``), each class's header (``classes``), and of each function its name,
    class, enclosing function and whether it is async (``functions``, a multiset). A lambda's
    name holds its position (``<lambda@12:8>``): here it is only ``<lambda>``, so a line
    inserted above a lambda keeps the interface. A function's parameters, decorators and
    returns are not in it: only the function table hands them out, and each hit is a read."""

    module: str
    imports: dict[str, str]
    classes: dict[str, tuple[str, dict[str, str]]]  # class -> (its header, its methods)
    functions: Counter[tuple[str, str, str | None, str | None, bool]]
    # the names that refs resolved in the module's own scope for other modules start with
    # (class bases, module variables' types, refs passed in decorators and defaults)
    linked_names: frozenset[str]
    # module variables (names, types) and refs passed outside bodies (decorators, defaults):
    # read elsewhere only by project-wide scans, which note ``globals`` and ``arg:`` keys
    variables: str

    def digest(self) -> str:
        text = "\n".join(
            [
                self.module,
                self.variables,
                repr(sorted(self.imports.items())),
                *(f"{q} {c} {sorted(ms.items())}" for q, (c, ms) in sorted(self.classes.items())),
                *sorted(repr(f) for f in self.functions.elements()),
            ]
        )
        return runcache.digest_bytes(text.encode("utf-8", "surrogatepass"))


def interface(m: ModuleFacts, attr_types: dict[str, dict[str, str]]) -> Interface:
    def plain(v: object) -> str:
        return _LAMBDA.sub("<lambda>", repr(v))

    module = plain(
        (m.module, m.path, sorted((c, sorted(t.items())) for c, t in attr_types.items()))
    )
    variables = plain((sorted(m.global_types.items()), m.global_vars, m.passed))
    classes = {
        q: (
            plain(
                (
                    c.name,
                    c.bases,
                    sorted(c.attr_types.items()),
                    c.fields,
                    c.decorators,
                    c.abstract,
                )
            ),
            {k: _LAMBDA.sub("<lambda>", v) for k, v in c.methods.items()},
        )
        for q, c in m.classes.items()
    }
    functions: Counter[tuple[str, str, str | None, str | None, bool]] = Counter(
        (
            _LAMBDA.sub("<lambda>", f.qualname),
            f.name,
            f.cls,
            None if f.parent is None else _LAMBDA.sub("<lambda>", f.parent),
            f.is_async,
        )
        for f in m.functions.values()
    )
    linked = {
        r.split(".", 1)[0].split("[", 1)[0]
        for r in (
            *(b for c in m.classes.values() for b in c.bases),
            *m.global_types.values(),
            *m.passed,
        )
    }
    return Interface(module, dict(m.imports), classes, functions, frozenset(linked), variables)


def interface_digest(m: ModuleFacts, attr_types: dict[str, dict[str, str]]) -> str:
    return interface(m, attr_types).digest()


@dataclasses.dataclass(frozen=True)
class Growth:
    """What a module's interface gained, when it only grew."""

    functions: list[tuple[str, str, str | None, str | None, bool]]  # functions and methods
    imports: list[str]  # local names newly imported
    classes: list[str]  # classes added (qualnames)
    variables: bool  # module variables or refs passed outside bodies changed


def growth(old: Interface, new: Interface) -> Growth | None:
    """The functions (and methods), classes and imports ``new`` adds to ``old``; None when the
    interface changed in any other way (a name removed or changed, a base, a module
    variable...), or when a new import could change how one of the module's class bases,
    variable types or passed refs link (its name starts one of them)."""
    if old.module != new.module or not old.classes.keys() <= new.classes.keys():
        return None
    if any(new.imports.get(k) != v for k, v in old.imports.items()):
        return None
    imported = sorted(new.imports.keys() - old.imports.keys())
    if not old.linked_names.isdisjoint(imported):  # (a new class may use a new import)
        return None
    for q, (header, methods) in old.classes.items():
        # only new methods: the class header is the same, and every old method still there
        now_header, now_methods = new.classes[q]
        if header != now_header or any(now_methods.get(k) != v for k, v in methods.items()):
            return None
    if old.functions - new.functions:
        return None
    return Growth(
        sorted((new.functions - old.functions).elements()),
        imported,
        sorted(new.classes.keys() - old.classes.keys()),
        old.variables != new.variables,
    )


_LAMBDA = re.compile(r"<lambda@\d+:\d+>")


def project_key(files: Sequence[tuple[str, str, bool]], settings: Settings) -> str:
    """The snapshot's name: which files (not their contents), the settings, the versions."""
    return runcache.run_key(
        [(display, module, pkg, "") for display, module, pkg in files],
        f"{FORMAT} {SCHEMA}",
        settings,
    )


# -- encoding -------------------------------------------------------------------------------


def _step(s: Step) -> list[Any]:
    return [s.path, *s.pos, s.label]


def _load_step(v: Any) -> Step:
    if not (isinstance(v, list) and len(v) == 6 and isinstance(v[0], str)):
        raise Invalid("step")
    pos = tuple(v[1:5])
    if not all(type(x) is int for x in pos) or not isinstance(v[5], str):
        raise Invalid("step")
    return Step(v[0], (pos[0], pos[1], pos[2], pos[3]), v[5])


def _strs(v: Any) -> list[str]:
    # (the type test runs in C: this is most of what reading the snapshot checks)
    if type(v) is not list or (v and set(map(type, v)) != _STR):
        raise Invalid("strings")
    return v


_STR = {str}


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise Invalid("string")
    return v


def encode_record(r: Record) -> bytes:
    doc: dict[str, Any] = {
        "display": r.display,
        "module": r.module,
        "digest": r.digest,
        "interface": r.interface,
        "header": r.header,
        # names joined by line breaks (no name holds one): a string is quick to skip
        "mentions": None
        if r.mentions is None
        else [
            "\n".join(r.mentions.calls),
            "\n".join(r.mentions.args),
            r.mentions.releases,
            "\n".join(r.mentions.attrs),
        ],
        "attr_types": r.attr_types,
        "deps": sorted(r.deps),
        "contribution": None
        if r.contribution is None
        else [[fn, target, _step(s)] for fn, target, s in r.contribution],
        "contribution_deps": sorted(r.contribution_deps),
        "verdicts": [
            [fq, scope, v.answer, [_step(x) for x in v.steps], v.why, sorted(deps)]
            for fq, scope, v, deps in r.verdicts
        ],
        "link_reads": sorted(r.link_reads),
        "reported": [runcache.dump_diag(d) for d in r.reported],
        "suppressed": [runcache.dump_diag(d) for d in r.suppressed],
    }
    return _dumps(doc)


def _dumps(doc: Any) -> bytes:
    """One line of the snapshot: compact JSON by orjson (UTF-8, whose bytes never hold a line
    break; JSON escapes those in strings); what orjson refuses (a path that is not UTF-8,
    held as surrogates) by :mod:`json` with ASCII escapes, so that it still round-trips."""
    try:
        return orjson.dumps(doc)
    except TypeError:  # orjson.JSONEncodeError included
        return json.dumps(doc, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _loads(raw: bytes) -> Any:
    """A line :func:`_dumps` wrote (orjson; an escaped lone surrogate, by :mod:`json`)."""
    try:
        return orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError included
        return json.loads(raw)


def decode_record(raw: bytes) -> Record:
    doc = _loads(raw)
    if not isinstance(doc, dict):
        raise Invalid("record")
    module = doc["module"]
    if module is not None and not isinstance(module, str):
        raise Invalid("module")
    attr_types = doc["attr_types"]
    if not isinstance(attr_types, dict) or not all(
        isinstance(t, dict) and all(isinstance(a, str) and isinstance(f, str) for a, f in t.items())
        for t in attr_types.values()
    ):
        raise Invalid("attr_types")
    contribution = None
    if doc["contribution"] is not None:
        contribution = []
        for fn, target, step in doc["contribution"]:
            contribution.append((_str(fn), _str(target), _load_step(step)))
    verdicts: list[tuple[str, str, Verdict, frozenset[str]]] = []
    for v in doc["verdicts"]:
        if not (isinstance(v, list) and len(v) == 6 and v[2] in (True, False, None)):
            raise Invalid("verdict")
        steps = tuple(_load_step(x) for x in v[3]) if isinstance(v[3], list) else None
        if steps is None:
            raise Invalid("verdict steps")
        verdict = Verdict(v[2], steps, _str(v[4]))
        verdicts.append((_str(v[0]), _str(v[1]), verdict, frozenset(_strs(v[5]))))
    return Record(
        display=_str(doc["display"]),
        module=module,
        digest=_str(doc["digest"]),
        interface=_str(doc["interface"]),
        header=doc["header"],
        mentions=_load_mentions(doc["mentions"]),
        attr_types=attr_types,
        deps=frozenset(_strs(doc["deps"])),
        contribution=contribution,
        contribution_deps=frozenset(_strs(doc["contribution_deps"])),
        verdicts=verdicts,
        link_reads=frozenset(_strs(doc["link_reads"])),
        reported=[runcache.load_diag(d) for d in doc["reported"]],
        suppressed=[runcache.load_diag(d) for d in doc["suppressed"]],
        raw=raw,
    )


def _load_mentions(v: Any) -> ModuleMentions | None:
    if v is None:
        return None
    if not (isinstance(v, list) and len(v) == 4 and isinstance(v[2], bool)):
        raise Invalid("mentions")
    calls, args, attrs = _str(v[0]), _str(v[1]), _str(v[3])
    return ModuleMentions(
        tuple(calls.split("\n")) if calls else (),
        tuple(args.split("\n")) if args else (),
        v[2],
        tuple(attrs.split("\n")) if attrs else (),
    )


def make_record(
    display: str,
    digest: str,
    facts: ModuleFacts | None,
    *,
    mentions: ModuleMentions | None = None,
    attr_types: dict[str, dict[str, str]] | None = None,
    deps: frozenset[str] = frozenset(),
    contribution: tuple[list[tuple[str, str, Step]], set[str]] | None = None,
    verdicts: list[tuple[str, str, Verdict, set[str]]] | None = None,
    link_reads: frozenset[str] = frozenset(),
    reported: list[Diagnostic] | None = None,
    suppressed: list[Diagnostic] | None = None,
) -> Record:
    if facts is None:
        return Record(display, None, digest, reported=reported or [], suppressed=suppressed or [])
    mentions = mentions or ModuleMentions.of(facts)
    attr_types = attr_types or {}
    return Record(
        display,
        facts.module,
        digest,
        interface=interface_digest(facts, attr_types),
        header=encode_header(facts),
        mentions=mentions,
        attr_types=attr_types,
        deps=deps,
        contribution=None if contribution is None else contribution[0],
        contribution_deps=frozenset() if contribution is None else frozenset(contribution[1]),
        verdicts=[(fq, sc, v, frozenset(d)) for fq, sc, v, d in verdicts or ()],
        link_reads=link_reads,
        reported=reported or [],
        suppressed=suppressed or [],
    )


# -- files ----------------------------------------------------------------------------------


def path_of(cache_dir: Path, key: str) -> Path:
    return cache_dir / DIR / f"{key}{SUFFIX}"


@dataclasses.dataclass
class Snapshot:
    records: list[Record]
    mentions_raw: bytes  # the project's mention index (``encode_mentions``), parsed on demand

    def mentions(self) -> Mentions:
        """The mention index (``summaries.Mentions``), or :class:`Invalid`."""
        try:
            doc = _loads(self.mentions_raw)
            names = [r.module for r in self.records]

            def modules(v: Any) -> list[str]:
                if not isinstance(v, list):
                    raise Invalid("mentions")
                out: list[str] = []
                for i in v:
                    if type(i) is not int or not 0 <= i < len(names) or names[i] is None:
                        raise Invalid("mentions")
                    out.append(names[i])  # type: ignore[arg-type]
                return out

            calls, args, releases = doc["calls"], doc["args"], doc["releases"]
            attrs = doc["attrs"]
            if not all(isinstance(t, dict) for t in (calls, args, attrs)):
                raise Invalid("mentions")
            return Mentions(
                {k: modules(v) for k, v in calls.items()},
                {k: modules(v) for k, v in args.items()},
                modules(releases),
                {},
                {k: modules(v) for k, v in attrs.items()},
            )
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise Invalid(f"mentions: {exc}") from exc


def encode_mentions(mentions: Mentions, records: Sequence[Record]) -> bytes:
    number = {r.module: i for i, r in enumerate(records) if r.module is not None}
    doc = {
        "calls": {k: [number[m] for m in v] for k, v in mentions.calls.items()},
        "args": {k: [number[m] for m in v] for k, v in mentions.args.items()},
        "releases": [number[m] for m in mentions.releases],
        "attrs": {k: [number[m] for m in v] for k, v in mentions.attrs.items()},
    }
    return _dumps(doc)


def load(cache_dir: Path, key: str) -> Snapshot | None:
    """The snapshot ``key``, or None (missing, stale, or anything unexpected)."""
    try:
        data = path_of(cache_dir, key).read_bytes()
        top, _, body = data.partition(b"\n")
        head = _loads(top)
        if (
            not isinstance(head, dict)
            or head.get("format") != FORMAT
            or head.get("schema") != SCHEMA
            or head.get("asyncrace") != code_version()
            or head.get("key") != key
        ):
            return None
        lines = inflate(body, MAX_SIZE).split(b"\n")
        if head.get("records") != len(lines) - 1:
            return None
        return Snapshot([decode_record(raw) for raw in lines[1:]], lines[0])
    except (OSError, ValueError, KeyError, TypeError, RecursionError, MemoryError, zlib.error):
        return None  # Invalid and JSON errors included


def store(cache_dir: Path, key: str, records: Sequence[Record], mentions_raw: bytes) -> None:
    """Best effort, atomic; keeps the :data:`KEEP` snapshots used last."""
    head = json.dumps(
        {
            "format": FORMAT,
            "schema": SCHEMA,
            "asyncrace": code_version(),
            "key": key,
            "records": len(records),
        }
    ).encode("ascii")
    try:
        lines = [mentions_raw] + [r.raw or encode_record(r) for r in records]
    except (ValueError, RecursionError, UnicodeError):
        return
    folder = cache_dir / DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        import tempfile  # (not needed by a run that writes nothing)

        fd, tmp = tempfile.mkstemp(prefix=".project-", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(head + b"\n" + zlib.compress(b"\n".join(lines), ZLIB_LEVEL))
            os.replace(tmp, path_of(cache_dir, key))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        entries = sorted(folder.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:] + list(folder.glob("*.jsonl")):  # and those of schema 4
            with contextlib.suppress(OSError):
                old.unlink()
    except OSError:
        return
