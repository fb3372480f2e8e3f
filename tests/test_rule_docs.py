"""The rule pages in ``rules/`` stay true to the code.

Every code of the registry has a page titled ``# CODE: name``; ``asyncrace rule CODE`` prints
it. Each rule page's **Example** is a complete module that the real engine flags exactly on the
lines marked with a trailing ``# ARC00N: ...`` comment, and its **Use instead** is a complete
module with no finding at all. The messages quoted in the pages, the suppression they describe,
and the lists of names the "How it decides" sections spell out are checked against the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from asyncrace.analysis import concurrency, locks, summaries
from asyncrace.cli import main
from asyncrace.config import KNOWN_KEYS
from asyncrace.diagnostic import Diagnostic
from asyncrace.registry import BY_CODE, RULES
from asyncrace.run.engine import check
from asyncrace.settings import Settings

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"
# the rules proper (not ARC100 and the meta codes): full pages with tested examples
RULE_CODES = tuple(r.code for r in RULES if r.default and not r.meta)
SKELETON = (
    "What it does",
    "Why is this bad?",
    "Example",
    "Use instead",
    "How it decides",
    "Fix safety",
    "Options",
    "How to suppress",
    "References",
)
# a trailing comment naming the code a line must be reported with: ``# ARC001: why``
MARK = re.compile(r"#\s*(ARC\d{3}):")
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w-]*)")


@dataclass
class Block:
    lang: str
    text: str


@dataclass
class Page:
    title: str
    sections: dict[str, str]  # "## heading" -> raw text under it, up to the next "## "
    blocks: dict[str, list[Block]]  # "## heading" -> fenced code blocks under it, in order


def parse(markdown: str) -> Page:
    title = ""
    section = ""
    sections: dict[str, list[str]] = {}
    blocks: dict[str, list[Block]] = {}
    fence: str | None = None
    lang = ""
    code: list[str] = []
    for line in markdown.splitlines():
        if fence is not None:
            if line.strip() == fence:
                blocks.setdefault(section, []).append(Block(lang, "".join(code)))
                fence = None
            else:
                code.append(line + "\n")
            sections.setdefault(section, []).append(line)
            continue
        m = FENCE.match(line)
        if m:
            fence, lang, code = m.group(1), m.group(2), []
        elif line.startswith("# ") and not title:
            title = line[2:].strip()
            continue
        elif line.startswith("## "):
            section = line[3:].strip()
            sections.setdefault(section, [])
            continue
        sections.setdefault(section, []).append(line)
    assert fence is None, "unclosed code fence"
    return Page(title, {k: "\n".join(v) for k, v in sections.items()}, blocks)


def page_text(code: str) -> str:
    return (RULES_DIR / f"{code}.md").read_text(encoding="utf-8")


def page(code: str) -> Page:
    return parse(page_text(code))


def first_python(p: Page, section: str) -> str:
    found = [b.text for b in p.blocks.get(section, []) if b.lang == "python"]
    assert found, f"no ```python block under '## {section}'"
    return found[0]


def run(tmp_path: Path, name: str, source: str) -> list[Diagnostic]:
    path = tmp_path / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    return check([path], Settings()).diagnostics


def marked(source: str) -> set[tuple[int, str]]:
    return {
        (row, m.group(1))
        for row, line in enumerate(source.splitlines(), 1)
        for m in MARK.finditer(line)
    }


# --------------------------------------------------------------------------- every code


def test_every_code_has_a_page_and_every_page_a_code() -> None:
    pages = {p.stem for p in RULES_DIR.glob("*.md")}
    codes = {r.code for r in RULES}
    assert codes - pages == set(), "codes without a page"
    assert pages - codes == set(), "pages without a code in the registry"


@pytest.mark.parametrize("code", [r.code for r in RULES])
def test_title_matches_registry(code: str) -> None:
    first = page_text(code).splitlines()[0]
    assert first == f"# {code}: {BY_CODE[code].name}"


@pytest.mark.parametrize("code", [r.code for r in RULES])
def test_rule_command_prints_the_page(code: str) -> None:
    result = CliRunner().invoke(main, ["rule", code.lower()])
    assert result.exit_code == 0, result.output
    assert result.output == page_text(code).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- rule pages


@pytest.mark.parametrize("code", RULE_CODES)
def test_rule_page_follows_the_skeleton(code: str) -> None:
    headings = [s for s in page(code).sections if s]
    assert headings == list(SKELETON)


@pytest.mark.parametrize("code", RULE_CODES)
def test_example_is_flagged_on_the_marked_line(code: str, tmp_path: Path) -> None:
    source = first_python(page(code), "Example")
    want = marked(source)
    assert {c for _, c in want} == {code}, f"the Example must mark its {code} line(s)"
    got = {(d.span.start.row, d.code) for d in run(tmp_path, f"{code.lower()}_example", source)}
    assert got == want, (
        f"\nmissing (marked, not reported): {sorted(want - got)}"
        f"\nunexpected (reported, not marked): {sorted(got - want)}"
    )


@pytest.mark.parametrize("code", RULE_CODES)
def test_use_instead_is_clean(code: str, tmp_path: Path) -> None:
    source = first_python(page(code), "Use instead")
    assert not marked(source)
    found = run(tmp_path, f"{code.lower()}_use_instead", source)
    assert found == [], [f"{d.span.start.row}: {d.code} {d.message}" for d in found]


@pytest.mark.parametrize("code", RULE_CODES)
def test_quoted_message_is_the_real_one(code: str, tmp_path: Path) -> None:
    """The ``console`` block of the Example quotes the finding as ``check`` prints it."""
    p = page(code)
    source = first_python(p, "Example")
    consoles = [b.text for b in p.blocks["Example"] if b.lang == "console"]
    assert consoles, "the Example shows the finding in a ```console block"
    for d in run(tmp_path, f"{code.lower()}_example", source):
        tail = f":{d.span.start.row}:{d.span.start.column}: {d.code} {d.message}\n"
        assert any(line.endswith(tail) for line in consoles[0].splitlines(keepends=True)), tail


@pytest.mark.parametrize("code", RULE_CODES)
def test_noqa_on_the_reported_line_silences_it(code: str, tmp_path: Path) -> None:
    """What "How to suppress" says: ``# noqa: CODE`` on the reported line; a bare ``# noqa``
    does not."""
    source = first_python(page(code), "Example")
    noqa = MARK.sub(f"# noqa: {code}  #", source)
    assert run(tmp_path, f"{code.lower()}_noqa", noqa) == []
    bare = MARK.sub("# noqa  #", source)
    assert {d.code for d in run(tmp_path, f"{code.lower()}_bare", bare)} == {code}
    text = page(code).sections["How to suppress"]
    assert f"# noqa: {code}" in text and "per-file-ignores" in text and "bare" in text


@pytest.mark.parametrize("code", RULE_CODES)
def test_options_name_real_keys(code: str) -> None:
    text = page(code).sections["Options"]
    keys = set(re.findall(r"`([a-z]+(?:-[a-z]+)+)`", text))
    assert keys <= set(KNOWN_KEYS), keys - set(KNOWN_KEYS)


# ----------------------------------------------------------- lists spelled out in the pages


def how(code: str) -> str:
    return page(code).sections["How it decides"]


def test_arc001_lists_every_lifecycle_method() -> None:
    text = how("ARC001")
    missing = [m for m in sorted(concurrency.DEFAULT_LIFECYCLE) if f"`{m}`" not in text]
    assert not missing


def test_arc001_lists_every_spawner() -> None:
    text = how("ARC001")
    missing = [s for s in sorted(summaries.SPAWNERS) if s not in text]
    assert not missing


def test_arc003_lists_the_setup_dunders_and_register_methods() -> None:
    text = how("ARC003")
    missing = [m for m in sorted(concurrency.DUNDER_LIFECYCLE) if f"`{m}`" not in text]
    missing += [
        m
        for m in sorted(summaries.REGISTER_METHODS - {"__setitem__"})
        if f"`{m}`" not in text and f".{m}(" not in text
    ]
    assert not missing


def test_arc004_names_every_handoff_function() -> None:
    text = how("ARC004")
    missing = [f for f in sorted(locks.HANDOFF_FUNCTIONS) if f.rsplit(".", 1)[-1] not in text]
    assert not missing


def test_arc004_names_every_shared_pool_and_generic_context_manager() -> None:
    text = how("ARC004")
    pools = [f for f in sorted(locks.SHARED_POOL_FUNCTIONS) if f.rsplit(".", 1)[-1] not in text]
    generic = [t for t in sorted(locks.GENERIC_CONTEXT_MANAGERS) if t.split(".", 1)[1] not in text]
    assert not pools and not generic, (pools, generic)


def test_arc005_names_the_context_manager_and_coroutine_decorators() -> None:
    from asyncrace.rules import arc005_thread_lock_await as arc005

    text = how("ARC005")
    names = {d.rsplit(".", 1)[-1] for d in locks.CONTEXT_MANAGER_DECORATORS}
    names |= {d for d in arc005.GENERATOR_COROUTINE_DECORATORS if d != "asyncio.coroutine"}
    assert not [n for n in sorted(names) if n not in text]


def test_arc005_names_every_non_reentrant_thread_lock() -> None:
    text = how("ARC005")
    names = {
        fq.rsplit(".", 1)[-1]
        for fq, (kind, reentrant) in locks.KNOWN_LOCKS.items()
        if kind == "thread" and not reentrant and not fq.endswith("LockType")
    }
    assert not [n for n in sorted(names) if n not in text]


def test_concurrency_doc_names_every_registration_verb_and_request_type() -> None:
    text = (Path(__file__).parent.parent / "docs" / "concurrency.md").read_text()
    missing = [v for v in sorted(concurrency.REGISTRATION_VERBS) if f"`{v}`" not in text]
    missing += [t for t in sorted(concurrency.REQUEST_TYPES) if f"`{t}`" not in text]
    assert not missing


def test_arc006_names_its_release_words_cancel_types_and_state_methods() -> None:
    from asyncrace.rules import arc006_cancel_state as arc006

    text = how("ARC006")
    missing = [w for w in sorted(arc006._RELEASE_WORDS) if f"`{w}`" not in text]
    missing += [
        t.rstrip("()") for t in sorted(summaries.CANCEL_TYPES) if t.rstrip("()") not in text
    ]
    missing += [
        m for m in sorted(arc006._PUT_METHODS | arc006._TAKE_METHODS) if f"`{m}`" not in text
    ]
    assert not missing
