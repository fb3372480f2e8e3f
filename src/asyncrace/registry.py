"""Every code asyncrace can emit, with its kebab-case name. The single source of truth for
selection (``--select``), ``asyncrace rule`` and the output formats."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from asyncrace.diagnostic import DOCS_URL


@dataclass(frozen=True, slots=True)
class RuleInfo:
    code: str
    name: str
    summary: str
    default: bool = True  # enabled without --select
    # meta codes describe the run itself (unparsable file, internal error); they cannot be
    # deselected, because hiding them would hide that a file was not checked.
    meta: bool = False

    @property
    def url(self) -> str:
        return DOCS_URL.format(code=self.code)


RULES: tuple[RuleInfo, ...] = (
    RuleInfo(
        "ARC001",
        "state-clobbered-across-await",
        "A per-call value stored on shared state is read back after an await",
    ),
    RuleInfo(
        "ARC002",
        "context-token-crosses-handler",
        "A context token is released in a different handler or context than the one that made it",
    ),
    RuleInfo(
        "ARC003",
        "guard-before-registration",
        "A check of shared state is separated by an await from the registration it guards",
    ),
    RuleInfo(
        "ARC004",
        "executor-under-lock",
        "A lock is held across a hand-off to a thread whose code takes the same lock",
    ),
    RuleInfo(
        "ARC005",
        "thread-lock-held-across-await",
        "A non-reentrant thread lock is held across an await",
    ),
    RuleInfo(
        "ARC006",
        "state-broken-by-cancellation",
        "Shared state changed before an await is left broken when the await is cancelled",
    ),
    RuleInfo(
        "ARC100",
        "unused-noqa",
        "A `# noqa` comment names an asyncrace code that reported nothing on that line",
        default=False,
    ),
    RuleInfo("ARC900", "syntax-error", "The file could not be parsed", meta=True),
    RuleInfo("ARC901", "unreadable-file", "The file could not be read or decoded", meta=True),
    RuleInfo("ARC902", "internal-error", "asyncrace failed while analyzing the file", meta=True),
    RuleInfo("ARC903", "analysis-limit", "A rule ran past its time limit on the file", meta=True),
)

BY_CODE: dict[str, RuleInfo] = {r.code: r for r in RULES}
CODES: tuple[str, ...] = tuple(r.code for r in RULES)
META_CODES: frozenset[str] = frozenset(r.code for r in RULES if r.meta)


def info(code: str) -> RuleInfo:
    return BY_CODE[code]


class SelectionError(ValueError):
    """An unknown code or prefix in --select/--ignore/config."""


def expand(selector: str) -> set[str]:
    """Expand a code, a prefix (``ARC0``) or ``ALL`` into the set of known codes it names."""
    sel = selector.strip().upper()
    if sel == "ALL":
        return set(CODES)
    matched = {c for c in CODES if c.startswith(sel)}
    if not sel or not matched:
        raise SelectionError(
            f"unknown rule selector {selector!r} (known codes: {', '.join(CODES)})"
        )
    return matched


def resolve_selection(
    select: list[str] | None,
    ignore: list[str] | None = None,
    extend_select: list[str] | None = None,
) -> frozenset[str]:
    """ruff's semantics: ``select`` replaces the default set, ``extend_select`` adds to it,
    ``ignore`` removes from it; the most specific selector wins is not modelled (ignore wins).
    Meta codes are always on."""
    if select is None:
        enabled = {r.code for r in RULES if r.default}
    else:
        enabled = set()
        for s in select:
            enabled |= expand(s)
    for s in extend_select or []:
        enabled |= expand(s)
    for s in ignore or []:
        enabled -= expand(s)
    return frozenset(enabled | META_CODES)


@cache
def rule_page(code: str) -> str | None:
    """The Markdown page of a rule: ``asyncrace/rule_docs/<CODE>.md`` in an installed wheel,
    else ``rules/<CODE>.md`` of the source tree (editable installs); None when there is none."""
    try:
        page = resources.files("asyncrace") / "rule_docs" / f"{code}.md"
        if page.is_file():
            return page.read_text(encoding="utf-8")
    except (OSError, ModuleNotFoundError):
        pass
    repo_page = Path(__file__).resolve().parents[2] / "rules" / f"{code}.md"
    try:
        if repo_page.is_file():
            return repo_page.read_text(encoding="utf-8")
    except OSError:
        pass
    return None


def page_body(code: str) -> str | None:
    """The rule page without its ``# CODE: name`` title line (what SARIF and editors show
    under the rule's name)."""
    page = rule_page(code)
    if page is None:
        return None
    lines = page.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip() + "\n"


def page_section(code: str, *titles: str) -> str | None:
    """The text of the first ``## title`` section of a rule page with one of ``titles``;
    None when the page or the section is missing."""
    page = rule_page(code)
    if page is None:
        return None
    out: list[str] = []
    inside = False
    wanted = {t.lower() for t in titles}
    for line in page.splitlines():
        if line.startswith("## "):
            if inside:
                break
            inside = line[3:].strip().lower() in wanted
            continue
        if inside:
            out.append(line)
    text = "\n".join(out).strip()
    return text or None
