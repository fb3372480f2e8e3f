"""The flat encoding extraction outcomes cross processes in (``run/transfer.py``): every
outcome comes back equal, field by field, whatever it holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncrace.analysis.facts import Event
from asyncrace.run import transfer
from asyncrace.run.jobs import FileJob
from asyncrace.run.pipeline import FileOutcome, analyze_bytes, analyze_text

FIXTURES = Path(__file__).parent / "fixtures"


def outcomes() -> list[FileOutcome]:
    out = [
        analyze_bytes(FileJob(str(p), p.name, p.stem, False), p.read_bytes())
        for p in sorted(FIXTURES.rglob("*.py"))
    ]
    job = FileJob("", "odd.py", "odd", False)
    out += [
        analyze_text(job, "def f(:\n    pass  # noqa: ARC001\n"),  # a syntax error
        analyze_text(job, "x = '\\udcff'  # noqa: ARC001, E501\n# asyncrace: noqa\n"),
        analyze_text(job, ""),
        FileOutcome("gone.py", None, cacheable=False),
    ]
    return out


def test_outcomes_come_back_equal() -> None:
    sent = outcomes()
    assert any(o.facts is None for o in sent) and any(o.meta for o in sent)
    assert any(o.noqa for o in sent)
    events = [e for o in sent if o.facts for f in o.facts.functions.values() for e in f.events]
    assert any(e.value is not None for e in events) and any(e.show is not None for e in events)
    got = transfer.loads(transfer.dumps(sent, FileOutcome), FileOutcome)
    assert got == sent
    assert [type(o.facts) for o in got] == [type(o.facts) for o in sent]
    # the containers are the dataclasses' own: tuples stay tuples, lists lists
    first = next(o.facts for o in got if o.facts and o.facts.functions)
    fn = next(iter(first.functions.values()))
    assert type(fn.params) is tuple and type(fn.events) is list
    assert all(type(e) is Event for e in fn.events)


def test_empty_chunk() -> None:
    assert transfer.loads(transfer.dumps([], FileOutcome), FileOutcome) == []


def test_unsupported_types_are_refused_when_the_codec_is_built() -> None:
    with pytest.raises(TypeError):
        transfer.dumps([{1, 2}], set[int])
