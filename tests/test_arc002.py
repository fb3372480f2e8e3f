"""ARC002 beyond the lines of its fixtures (``test_fixtures.py``): the opt-in setting
``context-managers-closed-elsewhere`` (a public ``@contextmanager``/``@asynccontextmanager`` that
holds a context token across its ``yield`` is reported with it on, a reset inside ``except
ValueError`` included, a private one is not, and without it the fixture is clean), and the
evidence a finding names for tokens kept on a shared object (an ASGI app, a decorator
instance)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from asyncrace.run.engine import check
from asyncrace.settings import Settings

ARC002 = Path(__file__).parent / "fixtures" / "arc002"
FIXTURE = ARC002 / "arc002_good_public_contextmanager.py"
MARK = "# reported with context-managers-closed-elsewhere"


def _rows(settings: Settings) -> list[tuple[int, str]]:
    result = check([FIXTURE], settings)
    return sorted((d.span.start.row, d.code) for d in result.diagnostics)


def test_public_context_manager_reported_only_with_the_setting() -> None:
    marked = [n for n, line in enumerate(FIXTURE.read_text().splitlines(), 1) if MARK in line]
    assert len(marked) == 1
    assert _rows(Settings()) == []
    assert _rows(Settings(context_managers_closed_elsewhere=True)) == [(marked[0], "ARC002")]


def test_the_setting_names_itself_and_shows_yield_and_reset() -> None:
    result = check([FIXTURE], Settings(context_managers_closed_elsewhere=True))
    (d,) = result.diagnostics
    assert "context-managers-closed-elsewhere" in d.message
    labels = [r.message for r in d.related]
    assert any("suspends" in x for x in labels) and any("reset here" in x for x in labels)


def test_the_setting_is_part_of_the_rule_knobs_key() -> None:
    on = replace(Settings(), context_managers_closed_elsewhere=True)
    assert on.rule_knobs_key() != Settings().rule_knobs_key()


def test_a_token_on_an_asgi_app_names_the_app() -> None:
    project = ARC002.parent / "projects" / "arc002_event_bus_bad"
    files = sorted(project.rglob("*.py"))
    (d,) = check(files, Settings()).diagnostics
    assert "overlapping calls on one shared object" in d.message
    assert any("is an ASGI application" in r.message for r in d.related)


def test_a_token_on_a_decorator_instance_names_the_decorated_app() -> None:
    (d,) = check([ARC002 / "arc002_bad_decorator_instance_asgi.py"], Settings()).diagnostics
    assert "overlapping calls on one shared object" in d.message
    labels = [r.message for r in d.related]
    assert any("instance decorates `SettingsMiddleware.__call__`" in x for x in labels)
    assert any("ASGI application" in x for x in labels)


def test_without_evidence_it_is_a_likely_finding_that_says_why() -> None:
    path = ARC002 / "arc002_bad_start_end_methods.py"
    assert check([path], Settings()).diagnostics == []
    (d,) = check([path], Settings(strictness="likely")).diagnostics
    assert "LIFO breaks even in one task" in d.message
    assert "(likely: nothing shows the two handlers run for separate events" in d.message


def test_a_dispatcher_of_both_handlers_is_the_evidence() -> None:
    (d,) = check([ARC002 / "arc002_bad_handlers_of_one_dispatcher.py"], Settings()).diagnostics
    (step,) = [r for r in d.related if "not both in each run" in r.message]
    assert step.message.startswith("`SpanObserver.__call__` makes the token through this call")
    assert step.span.start.row == 31


def test_a_token_on_a_request_handler_cites_the_concurrency_model() -> None:
    (d,) = check([ARC002 / "arc002_bad_token_on_self.py"], Settings()).diagnostics
    assert "overlapping calls on one shared object" in d.message
    assert any("once per request" in r.message for r in d.related)


CM = """from contextlib import contextmanager
from contextvars import ContextVar

var: ContextVar[int] = ContextVar("var", default=0)


@contextmanager
def scoped(value: int):
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)
"""


def test_a_manager_in_a_private_module_is_public_only_when_re_exported(tmp_path: Path) -> None:
    pkg = tmp_path / "lib"
    (pkg / "_impl").mkdir(parents=True)
    (pkg / "_impl" / "__init__.py").write_text("")
    (pkg / "_impl" / "scopes.py").write_text(CM)
    (pkg / "__init__.py").write_text("")
    on = Settings(context_managers_closed_elsewhere=True)
    files = sorted(pkg.rglob("*.py"))
    assert check(files, on).diagnostics == []
    (pkg / "__init__.py").write_text("from lib._impl.scopes import scoped\n")
    assert [d.span.start.row for d in check(files, on).diagnostics] == [9]
