"""What may run at the same time: the concurrency model the rules ask before they call an
interleaving a hazard.

- Where a method runs in several tasks at once (:meth:`Concurrency.spawn_sites`): started by
  ``gather``/``wait``/``as_completed``, by ``create_task``/``start_soon``/``ensure_future``
  inside a loop or a comprehension, or handed to a framework as a callback; the table is built
  from one contribution per module (:func:`merge_sites`). :meth:`Concurrency.shared_evidence`
  says why a given method may run so: its own spawn site, an override's or base's, or that of
  a method of its class that calls it on ``self``.
- What runs in one task only: an async iterator's iteration path (``single_consumer``), a
  private function every caller starts once (``single_task``), an object made per call and
  owned by that call (``per_call_class``, with the fresh-object test of spawn sites), and the
  methods that set an object up or tear it down (:data:`DUNDER_LIFECYCLE`,
  :data:`DEFAULT_LIFECYCLE`, plus ``lifecycle-methods``).

It is built on the call-graph summaries (:mod:`asyncrace.analysis.summaries`), which know
nothing of it.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from asyncrace.analysis.facts import (
    Bind,
    Event,
    FunctionFacts,
    K,
    ModuleFacts,
    Pos,
    dynamic_names,
    dynamic_prefix,
    inside,
    reachable,
)
from asyncrace.analysis.index import (
    ATTR_TYPES_KEY,
    GLOBALS_KEY,
    MISS,
    ClassObj,
    Ctx,
    ExtName,
    Fn,
    FuncVal,
    Index,
    Inst,
    Memo,
    first_seg,
    is_kw,
    last_seg,
    split_ref,
)
from asyncrace.analysis.summaries import (
    ARG_KEY,
    CALL_KEY,
    REGISTER_METHODS,
    SPAWNERS,
    Step,
    Summaries,
    at,
    called_name,
    def_step,
    fn_step,
    short,
)
from asyncrace.settings import Settings

# special methods that set an object up or tear it down: never concurrent on one object
DUNDER_LIFECYCLE: frozenset[str] = frozenset(
    {"__init__", "__post_init__", "__aenter__", "__aexit__", "__enter__", "__exit__", "__del__"}
)
# methods where per-object state is born (ARC001 does not read their stores as per-call stashes)
DEFAULT_LIFECYCLE: frozenset[str] = DUNDER_LIFECYCLE | frozenset(
    {
        "setup",
        "asetup",
        "asyncSetUp",
        "asyncTearDown",
        "setUp",
        "tearDown",
        "connect",
        "reconnect",
        "disconnect",
        "start",
        "startup",
        "stop",
        "open",
        "close",
        "aclose",
        "initialize",
        "init",
        "login",
        "shutdown",
        "cleanup",
        "main",
    }
)

# awaited on an object before it is started again: its previous run has ended
RESTART_STOPS: frozenset[str] = frozenset(
    {"close", "aclose", "stop", "shutdown", "wait_closed", "join", "terminate"}
)
# the first word of a method that tears down a part of its object (``aclose_events``)
TEARDOWN_VERBS: frozenset[str] = frozenset(
    {"close", "aclose", "shutdown", "stop", "cleanup", "teardown", "dispose", "disconnect"}
)


# the first word of a method that sets its object, or a part of it, up (``init_database``,
# ``_connect_once``, ``setup_routes``): what it stores is the state it sets up
SETUP_VERBS: frozenset[str] = frozenset({"init", "initialize", "setup", "connect"})


def setup_name(name: str) -> bool:
    """Is ``name`` a method that sets its object, or a part of it, up (``init_database``,
    ``_connect_once``)?"""
    return name.lstrip("_").partition("_")[0].lower() in SETUP_VERBS


# the handler of the event that ends something (``spider_closed``, ``on_disconnect``,
# ``on_shutdown``): the last word said done, or ``on``/``handle`` and a tear-down verb
_ENDED_WORDS: frozenset[str] = frozenset({"closed", "stopped", "disconnected", "shutdown"})


def teardown_name(name: str) -> bool:
    """Is ``name`` a method that tears its object, or a part of it, down (``close``,
    ``aclose_events``, ``stop_listening``, ``__aexit__``, and private ones: ``_cleanup``), or
    the handler of the event that ends it (``spider_closed``, ``on_close``,
    ``handle_disconnect``)?"""
    if name in ("__aexit__", "__exit__", "__del__"):
        return True
    if not name.startswith("__") and name.lstrip("_").partition("_")[0] in TEARDOWN_VERBS:
        return True  # (a private one too: ``_cleanup``, ``_close_stream``)
    words = [w for w in name.lower().split("_") if w]
    return len(words) >= 2 and (
        words[-1] in _ENDED_WORDS
        or (
            words[0] in ("on", "handle")
            and (words[1] in TEARDOWN_VERBS or words[1] in _ENDED_WORDS)
        )
    )


# calls that take a callback off a list rather than register it (``deregister_callback``,
# ``remove_listener``, ``removeHandler``, ``off``)
_UNREGISTER = re.compile(
    r"(de|un)register|unsubscribe|unwatch|unbind|unhook|detach|remove|discard|delete|off($|_)",
    re.IGNORECASE,
)


def _restart(f: FunctionFacts, call: Event) -> bool:
    """``await worker.close()`` then ``create_task(worker.run())``: the object's previous run
    is stopped, and the stop awaited, before this start (a restart loop; the first start
    before the loop is then one run at a time too)."""
    segs = split_ref(call.ref)
    if len(segs) < 2:
        return False
    recv = ".".join(segs[:-1])
    return any(
        e.kind == K.CALL
        and e.bind == Bind.AWAITED
        and e.pos < call.pos
        and (e.repeated or not call.repeated)
        and e.ref.startswith(recv + ".")
        and e.ref[len(recv) + 1 :] in RESTART_STOPS
        for e in f.events
    )


def _called_at_once(f: FunctionFacts, call: Event) -> bool:
    """``await T(self.update)()``: what the call returns (a wrapper of the method) is called
    right here and awaited, not kept to be called later (``retry(on_backoff=self.cb)(fn)``
    builds a wrapper of ``fn`` that keeps ``self.cb``: not this)."""
    return any(
        e.kind == K.CALL
        and e.ref == call.ref + "()"
        and e.pos[:2] == call.pos[:2]
        and e.bind == Bind.AWAITED
        for e in f.events
    )


def _unregisters(ref: str) -> bool:
    return _UNREGISTER.match(ref.rpartition(".")[2]) is not None


# hooks a framework runs once per application life, not per request or event (aiohttp's
# ``app.on_startup.append(cb)``, Starlette's ``on_shutdown=[...]``, a ``lifespan=`` context)
_LIFE_HOOK = re.compile(
    r"(^|_)(startup|shutdown|lifespan|cleanup|teardown)($|_)|^on_(start|stop)$", re.IGNORECASE
)


# an exit stack's registrations: run once, when the stack is closed (``AsyncExitStack``); the
# first two are named for it, ``callback``/``push`` only on a receiver the code calls a stack
_EXIT_STACK_HOOKS = frozenset({"push_async_callback", "push_async_exit"})
EXIT_STACK_CALLBACKS: frozenset[str] = _EXIT_STACK_HOOKS | {"callback", "push"}


def _life_hook(call: Event, arg: str) -> bool:
    """Is ``arg`` handed to ``call`` as a hook of the application's start-up or shutdown, or
    of an exit stack's close (``stack.push_async_callback(rsd.close)``, ``stack.callback(...)``,
    ``stack.push(...)``): run once, not per event?"""
    segs = split_ref(call.ref)
    if any(_LIFE_HOOK.search(seg) for seg in segs):
        return True
    if segs and (
        segs[-1] in _EXIT_STACK_HOOKS
        or (segs[-1] in EXIT_STACK_CALLBACKS and len(segs) >= 2 and "stack" in segs[-2].lower())
    ):
        return True
    return is_kw(arg) and _LIFE_HOOK.search(arg.partition("=")[0]) is not None


def _life_hook_fn(f: FunctionFacts) -> bool:
    """Is ``f`` a hook of the application's start-up or shutdown: registered by a framework's
    decorator of that name (``@driver.on_startup``, ``@app.on_shutdown``), or a module
    function named for it (``async def on_startup():``)? A framework runs it once."""
    if any(_LIFE_HOOK.search(seg) for d in f.decorators for seg in split_ref(d)[1:]):
        return True
    return f.cls is None and f.parent is None and _LIFE_HOOK.search(f.name) is not None


# the first word of a module function that sets the program up (``init``, ``init_db``,
# ``start_proxy``, ``configure``, ``main``): called once, at start
_PROCESS_SETUP_WORDS = frozenset(
    {"init", "initialize", "setup", "start", "startup", "configure", "bootstrap", "main"}
)


def _process_setup_fn(f: FunctionFacts) -> bool:
    """Is ``f`` a module function named for setting the program up (``async def init():``,
    ``init_database``, ``start_persistent_proxy``)? Its being public says a program may call
    it, once, not that tasks run it at once."""
    return (
        f.cls is None
        and f.parent is None
        and f.name.lstrip("_").partition("_")[0].lower() in _PROCESS_SETUP_WORDS
    )


# ``async with`` scopes that cancel what runs inside them when their time is up
_TIMEOUT_SCOPES = frozenset(
    {"timeout", "timeout_at", "fail_after", "fail_at", "move_on_after", "move_on_at"}
)
# calls that wait for an awaitable and cancel it when their time is up
_TIMED_WAITS = frozenset({"wait_for"})
# the spawners that hand back the task (or future) they start, which can be cancelled
_TASK_STARTS = SPAWNERS & {"create_task", "ensure_future", "run_coroutine_threadsafe"}
# asyncio's servers, which run their client callback in a task per connection that they
# never cancel (not on a disconnect, not in ``Server.close()``)
_CLIENT_SERVERS = frozenset({"start_server", "start_unix_server"})
# what enters a task group: the tasks it starts are cancelled with the block's task
_GROUP_ENTRIES = frozenset({"TaskGroup", "create_task_group", "open_nursery"})
# the spawners whose task runs on when the caller that starts it is cancelled
_DETACHING = _TASK_STARTS | {"start_soon"}
# how many callers up :meth:`Concurrency.canceller` looks for what can cancel a function
CANCELLER_DEPTH = 3


def _spawn_around(caller: Fn, ev: Event, names: frozenset[str]) -> Event | None:
    """The call of a spawner named in ``names`` that ``caller``'s call ``ev`` is an argument
    of (``create_task(self._run())``), if any."""
    return next(
        (
            e
            for e in caller.facts.events
            if e is not ev
            and e.kind == K.CALL
            and inside(ev.pos, e.pos)
            and e.ref.rpartition(".")[2] in names
        ),
        None,
    )


def _detached(caller: Fn, ev: Event) -> bool:
    """Is ``caller``'s call ``ev`` the coroutine of a task it starts on its own
    (``create_task(self._run())``, ``ensure_future``, ``start_soon``, outside any task group
    ``caller`` enters)? Cancelling ``caller`` then does not cancel that task: a timeout
    around ``caller`` stops at the spawn."""
    spawn = _spawn_around(caller, ev, _DETACHING)
    # (a group the caller entered: its tasks end with the caller)
    return spawn is not None and not _in_task_group(caller.facts, spawn)


def _in_task_group(f: FunctionFacts, e: Event) -> bool:
    """Is ``e`` inside a task group that ``f`` enters (``async with TaskGroup() as tg``,
    anyio's ``create_task_group``, trio's ``open_nursery``)?"""
    regions = f.regions
    return any(
        regions[rid].ref.removesuffix("()").rpartition(".")[2] in _GROUP_ENTRIES
        for rid in e.regions
    )


def _calls_super(fn: Fn, name: str) -> bool:
    """Does ``fn`` (an override) call ``super().<name>()``?"""
    return any(e.kind == K.CALL and e.ref == f"super().{name}" for e in fn.facts.events)


# base classes that say nothing about who calls the class's callbacks
_NEUTRAL_BASES = (
    *("typing.", "typing_extensions.", "abc.", "dataclasses.", "builtins.", "enum."),
    # record classes of libraries: a model only keeps the fields it is given
    *("pydantic.BaseModel", "pydantic.main.BaseModel", "msgspec.Struct"),
)
# builtin functions: none of them is a framework that calls back what it is given
_BUILTINS: frozenset[str] = frozenset(n for n in dir(builtins) if not n.startswith("_"))
# spawners that start several awaitables at once by design
MANY_SPAWNERS: frozenset[str] = frozenset({"gather", "as_completed", "wait"})

# the keys a reader of a project-wide table notes (``index.Tracker``), besides modules: the
# spawn-site table for a method (``Concurrency.spawn_site``), and an async function's name
SPAWN_KEY = "\x00spawn:"
ASYNC_KEY = "\x00async:"  # the names of the project's async functions
# a search for the callers of a function found none in a module: ``NO_CALLERS_KEY`` + the
# function + ``"\x00"`` + the module stands for that module's read, so that an edit of the
# module leaves the answer standing while the module still has no caller of the function
# (``incremental``: :meth:`Concurrency.still_no_callers`)
NO_CALLERS_KEY = "\x00no-callers:"
NO_STORED_KEY = "\x00no-stored:"  # the same for the callables handed on (``_stored_in``)
# a callable handed to a function that calls its parameter itself: the ``via`` of such a call
# names the helper and the ref handed (``_stored_in``, ``_bound_callers``)
PASSED = "\x00passed:"
# a module's spawn sites, (function, method, site) in its functions' order, and the modules
# read to find them
Contribution = tuple[list[tuple[str, str, Step]], set[str]]


# -- the model's answers ------------------------------------------------------------------------
# how many nested functions of one function are looked through (a decorator's wrappers)
NESTED_LIMIT = 16
OBJECT = "object"  # two activations on one receiver object (``self`` state)
ANY = "any"  # two activations at all (module state, one for every task)
# two activations of one closure made by one call of the function named after the prefix (a
# variable of that function, shared by its closures: ``cell:<fq>``): the calls of that
# function itself make a new variable each, so evidence above them does not count
CELL = "cell:"
# how far the search goes up the callers, and how many functions it may visit in all
MAX_CALLER_DEPTH = 8
# how far down the calls of gathered coroutines a method both reach is sought, and how many
# functions the search may visit for one gather (``Concurrency._sibling_sites``)
SIBLING_DEPTH = 3
SIBLING_BUDGET = 60
SEARCH_BUDGET = 300


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the model says of "may this run at the same time as itself?": ``answer`` is True
    (with the evidence as ``steps``, root first), False (serialized; ``steps`` and ``why`` say
    how) or None (nothing in the project says either way)."""

    answer: bool | None
    steps: tuple[Step, ...] = ()
    why: str = ""


UNKNOWN = Verdict(None)

# the words of a web framework's route registration: its decorators (``@app.get("/x")``) and,
# with ``add_`` before the HTTP methods, its router's methods (``router.add_post("/x", h)``)
HTTP_METHODS: tuple[str, ...] = ("get", "post", "put", "patch", "delete", "head", "options")
WEB_ROUTE_VERBS: frozenset[str] = frozenset(
    {*HTTP_METHODS, "route", "api_route", "websocket", "websocket_route", "view"}
)
# decorators of a framework's objects that register a function to be run per request or event
REGISTRATION_VERBS: frozenset[str] = WEB_ROUTE_VERBS | frozenset(
    {
        "middleware",
        "on",
        "on_message",
        "message",
        "message_handler",
        "edited_message",
        "callback_query",
        "inline_query",
        "channel_post",
        "command",
        "event",
        "listen",
        "listener",
        "handler",
        "subscriber",
        "subscribe",
        "action",
        "shortcut",
        "tool",
        "call_tool",
    }
)
# annotations of the request object a web framework hands each handler
REQUEST_TYPES: frozenset[str] = frozenset({"Request", "WebSocket", "HTTPConnection", "BaseRequest"})
# the web servers whose request objects mark a handler (an HTTP client's ``httpx.Request``
# handed to an auth hook is no server's request)
SERVER_FRAMEWORKS: frozenset[str] = frozenset(
    {
        "starlette",
        "fastapi",
        "aiohttp",
        "sanic",
        "quart",
        "litestar",
        "django",
        "falcon",
        "tornado",
        "blacksheep",
        "channels",
        "robyn",
    }
)
# names of builtin and standard-library methods: a call of one on a receiver of unknown type is
# not taken for the project's only method of that name
COMMON_METHOD_NAMES: frozenset[str] = frozenset(
    {
        "get",
        "set",
        "pop",
        "add",
        "append",
        "extend",
        "update",
        "remove",
        "discard",
        "clear",
        "copy",
        "items",
        "keys",
        "values",
        "insert",
        "index",
        "count",
        "sort",
        "reverse",
        "close",
        "aclose",
        "open",
        "read",
        "write",
        "send",
        "recv",
        "start",
        "stop",
        "run",
        "join",
        "result",
        "cancel",
        "done",
        "wait",
        "put",
        "put_nowait",
        "get_nowait",
        "acquire",
        "release",
        "format",
        "split",
        "strip",
        "encode",
        "decode",
        "lower",
        "upper",
        "replace",
        "flush",
        "connect",
        "disconnect",
        "call",
        "execute",
        "fetch",
        "submit",
        "post",
        "delete",
        "head",
        "patch",
        "request",
        "json",
        "text",
        "load",
        "loads",
        "dump",
        "dumps",
        "emit",
        "notify",
        "setdefault",
        "exception",
        "debug",
        "info",
        "warning",
        "error",
        "handle",
        "process",
        "reset",
        "next",
        "list",
        "create",
        "exists",
    }
)


# a module's call of a name (``Concurrency._call_sites_of``): the caller, the event's index and
# the event, the caller's context, the refs of that name the call may run
_Site = tuple[Fn, int, Event, Ctx, tuple[str, ...]]


@dataclass(slots=True)
class _CallSites:
    """A module's calls of one name (:meth:`Concurrency._call_sites_of`): ``sites`` in the
    order of (caller, event); ``typed``: function -> the sites that run it (site -> the ref,
    and ``"typed"``), the first ref of the site that does; ``untargeted``: the sites whose
    call (of the name itself) has no known target."""

    sites: list[_Site]
    typed: dict[str, dict[int, tuple[str, str]]]
    untargeted: list[int]


# the end of the label of a callback handed to a registry that runs it per event, and the mark
# of a receiver found only by its method's name: evidence that holds for few of the places it
# reaches (most registries, event buses, stream and scheduler callbacks run their handlers one
# after another; a method name says little of who holds the object). A yes resting on either is
# a "likely" finding, reported with the setting ``strictness = "likely"`` only
CALLBACK_TAIL = "callers run it for concurrent events"
BY_NAME = "(found by its name"
# the head of the ``why`` of an unknown answer that keeps weak evidence for a likely finding
LIKELY = "likely: "
# the end of the label of a web route's registration (strong evidence)
ROUTE_TAIL = "the server runs it once per request, for concurrent requests at once"

# a framework's methods that register a function as an HTTP route (with a path: ``web.put("/x",
# handler)``, ``app.router.add_post("/x", handler)``): the server runs it once per request
ROUTE_VERBS: frozenset[str] = (
    WEB_ROUTE_VERBS
    | frozenset(f"add_{m}" for m in HTTP_METHODS)
    | frozenset(
        {
            "add_route",
            "add_api_route",
            "add_api_websocket_route",
            "add_websocket_route",
            "add_url_rule",
            "add_view",
        }
    )
)


# the end of the label of a call that starts its callee in a task of its own and does not wait
# for it: a handler run once per event, one event after another, still leaves the tasks of
# successive events running side by side (weak evidence above it becomes strong)
FRESH_CALLERS = "every caller calls it on an object it has just made"
# python-telegram-bot: an ``Application`` built without ``concurrent_updates`` awaits the
# handlers of each update before it takes the next one, and a handler class made without
# ``block=False`` is awaited there (``telegram.ext.CommandHandler``, ``MessageHandler``, ...)
SERIAL_HANDLERS = "python-telegram-bot runs its update handlers one update at a time"
# the why of a no whose callers serialize the function (a lock held around every call, a
# check-then-set guard before it): its calls never overlap, but each still runs in the
# caller's task, beside whatever else runs
CALLERS_SERIALIZE = "every caller holds a lock around the call or lets one call through"
# the words of the step of a caller that lets one call through a check-then-set guard
ONCE_GUARD = "goes on past here only while"
PER_UPDATE_TAIL = "the application runs the handlers of one update at a time"
_PTB_HANDLERS = "telegram.ext."
# the handler classes that take a callback, by the name a call of them goes by (a first, cheap
# look: a project that calls none of them registers no handler)
_PTB_HANDLER_NAMES: tuple[str, ...] = (
    "BusinessConnectionHandler",
    "BusinessMessagesDeletedHandler",
    "CallbackQueryHandler",
    "ChatBoostHandler",
    "ChatJoinRequestHandler",
    "ChatMemberHandler",
    "ChosenInlineResultHandler",
    "CommandHandler",
    "InlineQueryHandler",
    "MessageHandler",
    "MessageReactionHandler",
    "PaidMediaPurchasedHandler",
    "PollAnswerHandler",
    "PollHandler",
    "PreCheckoutQueryHandler",
    "PrefixHandler",
    "ShippingQueryHandler",
    "StringCommandHandler",
    "StringRegexHandler",
    "TypeHandler",
)
SPAWNED_EACH = "in a task of its own, not awaited: the tasks of successive calls overlap"


def _route_call(e: Event) -> bool:
    """Does the call register an HTTP route: a route verb (``ROUTE_VERBS``) with a constant
    among its arguments, the path?"""
    segs = split_ref(e.ref)  # (empty for a callee that is no name: ``handlers[k](...)``)
    return (
        bool(segs)
        and segs[-1] in ROUTE_VERBS
        and any(x == "const" or x.endswith("=const") for x in e.args)
    )


def weak_step(step: Step) -> bool:
    """Is this step evidence of the weak kinds (``CALLBACK_TAIL``, ``BY_NAME``)?"""
    return step.label.endswith(CALLBACK_TAIL) or BY_NAME in step.label


def per_update(v: Verdict) -> bool:
    """Is a no (serialized) one of a handler that runs once per update, one update at a time
    (:meth:`Concurrency._serial_handler`), or of code such a handler alone waits for?"""
    return bool(v.steps) and v.steps[0].label.endswith(PER_UPDATE_TAIL)


def weakness(v: Verdict) -> str:
    """Why a yes rests on weak evidence, for the message of a likely finding ("" when none of
    its steps is weak)."""
    why = ""
    for st in v.steps:
        if st.label.endswith(CALLBACK_TAIL):
            why = "a callback's registry may run its events one at a time"
        elif BY_NAME in st.label:
            why = why or "the receiver is known only by its method's name"
        elif st.label.endswith(SPAWNED_EACH) and why.startswith("a callback"):
            why = ""  # each event's own task: they overlap whatever the registry does
    return why


def merge_sites(contributions: Iterable[list[tuple[str, str, Step]]]) -> dict[str, Step]:
    """The spawn-site table made of the modules' contributions: for each method, the first site
    in the order of the functions' names (a function's own sites keep their order)."""
    everything = [e for entries in contributions for e in entries]
    everything.sort(key=lambda e: e[0])  # stable
    sites: dict[str, Step] = {}
    for _fn, target, step in everything:
        had = sites.get(target)
        if had is None or (weak_step(had) and not weak_step(step)):
            sites[target] = step  # a spawn or a route before a callback registration
    return sites


@dataclass(frozen=True, slots=True)
class Canceller:
    """What can cancel a function while it waits (:meth:`Concurrency.canceller`): the step
    that shows it, and whether it is only assumed (the function, or a caller on the way, is
    public: callers outside the project may cancel it) rather than found in the project (a
    timeout around a call that reaches it, a ``.cancel()`` of its task)."""

    step: Step
    assumed: bool


class Concurrency:
    """Who may run at the same time: spawn sites, shared-task evidence, single consumers and
    single tasks, per-call objects. Memoized like the summaries it is built on."""

    def __init__(self, index: Index, settings: Settings, summaries: Summaries) -> None:
        self.index = index
        self.summaries = summaries
        self.lifecycle = DEFAULT_LIFECYCLE | frozenset(settings.lifecycle_methods)
        self.setup_dunders = DUNDER_LIFECYCLE | frozenset(settings.lifecycle_methods)
        t = self.tracker = index.tracker
        self._evidence: Memo[tuple[str, int], Step | None] = Memo(t)
        self._per_call: Memo[str, bool] = Memo(t)
        self._kept: Memo[str, frozenset[str]] = Memo(t)
        self._verdicts: Memo[tuple[str, str], Verdict] = Memo(t)
        self._own: Memo[tuple[str, str], Verdict | None] = Memo(t)
        self._args_by_module: dict[
            str, tuple[ModuleFacts, dict[str, list[tuple[Fn, Event, int, str, str]]]]
        ] = {}
        self._edges: Memo[tuple[str, Pos], tuple[Step | None, Step | None]] = Memo(t)
        self._locking: Memo[str, Step | None] = Memo(t)
        self._caller_memo: Memo[tuple[str, str], list[tuple[Fn, Event, str, str]]] = Memo(t)
        self._setup_memo: Memo[str, bool] = Memo(t)
        self._canceller_memo: Memo[str, Canceller | None] = Memo(t)
        self._site_memo: Memo[tuple[str, str], _CallSites] = Memo(t)
        self._stored_memo: Memo[tuple[str, str], list[tuple[Fn, int, str]]] = Memo(t)
        self._arg_memo: Memo[tuple[str, str], dict[str, list[tuple[Fn, Event, int, str, str]]]] = (
            Memo(t)
        )
        self._target_memo: Memo[tuple[str, int], tuple[str, ...]] = Memo(t)
        self._covers: Memo[tuple[str, str], bool] = Memo(t)
        self._attr_call_memo: Memo[tuple[str, str], list[tuple[Fn, int, str]]] = Memo(t)
        # functions that test an ASGI scope for ``"lifespan"`` (their own facts only)
        self._lifespan_tests: dict[str, bool] = {}
        # each module's contribution to the spawn-site table, with the modules it read; an
        # incremental run fills in those of the modules it need not compute again
        self.contributions: dict[str, Contribution] = {}
        self._spawns: dict[str, Step] | None = None
        self._spawners: tuple[dict[str, Step], dict[Step, str]] | None = None
        self._async: frozenset[str] | None = None
        # record the modules each contribution reads (a run that keeps a project snapshot)
        self.track = False

    def _lifespan_only(self, caller: Fn, ev: Event) -> bool:
        """:func:`_lifespan_only`, asked only of async functions that test an ASGI scope for
        ``"lifespan"`` at all (known once per function)."""
        f = caller.facts
        if not f.is_async:
            return False
        tests = self._lifespan_tests.get(caller.fq)
        if tests is None:
            tests = any(e.kind == K.BRANCH and e.name == "if:lifespan" for e in f.events)
            self._lifespan_tests[caller.fq] = tests
        return tests and _lifespan_only(caller, ev)

    # -- evidence that a method runs in several tasks at once ------------------------------
    def spawn_site(self, fq: str) -> Step | None:
        """One place that runs the method ``fq`` in several tasks at once (``spawn_sites``);
        the lookup of ``fq`` is a read of its own, a change of its answer dirties the reader."""
        self.tracker.note(SPAWN_KEY + fq)
        return self.spawn_sites().get(fq)

    def spawner(self, step: Step) -> Fn | None:
        """The function that makes the spawn site ``step`` (one of :meth:`spawn_sites`): where
        the tasks it starts begin, which the rules read for what holds before they start."""
        sites = self.spawn_sites()
        held = self._spawners
        if held is None or held[0] is not sites:
            by_step: dict[Step, str] = {}
            for entries, _d in self.contributions.values():
                for fq, _target, site in entries:
                    by_step.setdefault(site, fq)
            held = self._spawners = (sites, by_step)
        maker = held[1].get(step)
        return dict.get(self.index.functions, maker) if maker is not None else None

    def spawn_sites(self) -> dict[str, Step]:
        """Method (fully qualified) -> one place that runs it in several tasks at once:
        started by ``gather``/``wait``/``as_completed``, by ``create_task``/``start_soon``/
        ``ensure_future`` inside a loop or a comprehension, or handed to a framework as a
        callback (a route, a handler, a subscriber), which runs it per event.

        Built from each module's contribution (the sites its functions make), each computed
        apart with the modules it read (:attr:`contributions`); the first site in the order of
        the functions' names wins."""
        if self._spawns is None:
            self.contribute(sorted(self.index.modules.values(), key=lambda m: m.module))
            self._spawns = merge_sites(entries for entries, _d in self.contributions.values())
        return self._spawns

    def contribute(self, modules: Iterable[ModuleFacts]) -> dict[str, Contribution]:
        """Compute the contributions of these modules to the spawn-site table (those not in
        :attr:`contributions` yet), each apart with the modules it read, and keep them there;
        return those computed here. A module's contribution does not depend on which others
        are computed, or where: two processes can share the table's work out
        (``run.link``)."""
        made: dict[str, Contribution] = {}
        tracker = self.tracker
        saved, tracker.frames = tracker.frames, []
        try:
            for m in modules:
                if m.module in self.contributions:
                    continue
                if self.track:
                    tracker.start()
                entries = self._contribution(m)
                self.contributions[m.module] = made[m.module] = (entries, tracker.stop())
        finally:
            tracker.frames = saved
        return made

    def _async_names(self) -> frozenset[str]:
        # a callback target is an async function that is no nested one (_callback_sites),
        # reached by its own name: an argument ending in another name cannot be one
        if self._async is None:
            self._async = frozenset(
                f.facts.name
                for f in dict.values(self.index.functions)
                if f.facts.is_async and f.facts.parent is None
            )
        return self._async

    def _async_name(self, name: str, async_names: frozenset[str]) -> bool:
        self.tracker.note(ASYNC_KEY + name)
        return name in async_names

    def _contribution(self, m: ModuleFacts) -> list[tuple[str, str, Step]]:
        """The spawn sites the functions of module ``m`` make: (function, method, site). A
        test module makes none: what a test runs at once says how it tests the code, not how
        the code is run."""
        out: list[tuple[str, str, Step]] = []
        if test_module(m):
            return out
        call = K.CALL
        async_names = self._async_names()
        for q in sorted(m.functions):
            fn = self.index.functions.get(f"{m.module}.{q}")
            if fn is None or fn.module is not m:
                continue
            sites: dict[str, Step] = {}
            calls = [e for e in fn.facts.events if e.kind == call]
            if not any(e.args for e in calls):
                continue
            ctx = self.summaries.ctx(fn)
            # a callable the function was handed (a class, a factory): the caller's, whatever
            # it is; no sign of a framework
            param_names = {p.name for p in fn.facts.params}
            for e in calls:
                # a registration stores the callback for later events; an awaited call
                # (``await app(scope, receive, send)``) drives it within its own extent; a
                # task started once is no callback
                if not e.args or e.bind in _DRIVEN or _is_spawner(e.ref):
                    continue
                if (
                    any(
                        _bound_method_ref(a) and self._async_name(a.rpartition(".")[2], async_names)
                        for a in e.args
                    )
                    and not _unregisters(e.ref)
                    and not _called_at_once(fn.facts, e)
                    and e.ref not in param_names  # ``tx_cls(conn, self.on_closed)``
                    and e.ref not in _BUILTINS  # ``setattr(obj, "orig", obj.run)``: a store
                    and not self.index.callable_targets(ctx, e.ref)
                    and not self._project_class(ctx, e.ref)
                    and not self._partial_of_project(ctx, e)
                    and not self._private_of_project(ctx, e.ref)
                    and _applied_to(fn.facts, e) is None  # a hook of a wrapper
                    and not (e.ref.endswith("()") and e.bind == Bind.ATTR)  # a wrapped method
                ):
                    # handed to a framework (a route, a handler); the project's own
                    # helpers (a supervisor starting one task, a service loop that awaits
                    # its workload, bound by ``partial``) are followed, not trusted
                    self._callback_sites(ctx, fn, e, sites)
                elif any(a.endswith("()") and "(" not in a[:-2] for a in e.args):
                    # the factories first: most calls hand on no factory's closure, and the
                    # call's own targets cost more to find
                    found: dict[str, Step] = {}
                    self._factory_sites(ctx, fn, e, found)
                    if (
                        found
                        and not self.index.callable_targets(ctx, e.ref)
                        and not self._project_class(ctx, e.ref)
                    ):
                        for fq, step in found.items():
                            sites.setdefault(fq, step)
            # one entry per start (a start dispatched to several receiver classes is one), by
            # the target and the receiver's ref: two starts on two receivers
            # (``gather(black.prepare(), white.prepare())``) run it once on each object
            # (module state: the callers' search finds the spawns, ``Concurrency._node``)
            spawned_once: dict[tuple[str, str], dict[Pos, Step]] = {}
            spawner_at: dict[Pos, Event] = {}  # (the spawner call of each start)
            for s in calls:
                what = s.ref.rpartition(".")[2]
                if what not in SPAWNERS:
                    continue
                many = what in MANY_SPAWNERS or s.repeated
                if what not in MANY_SPAWNERS and _joined_each_pass(fn.facts, s):
                    continue  # each pass of the loop awaits its task: one at a time
                if what not in MANY_SPAWNERS and _single_slot(fn.facts, s):
                    continue  # one task at a time in its slot (module state: the callers'
                    # search finds the spawn)
                started = [e for e in calls if e is not s and inside(e.pos, s.pos)]
                if what in MANY_SPAWNERS:
                    started += _gathered_from_locals(fn.facts, s)
                for e in started:
                    # one object, one method, several tasks: in a loop or comprehension,
                    # or twice in one gather (``gather(c.a(1), c.a(2))``); a gather of two
                    # different methods (``gather(c.a(), c.b())``) runs each once
                    again = e.repeated or (many and sum(x.ref == e.ref for x in started) > 1)
                    if self._fresh_receiver(ctx, fn, e, again) or _restart(fn.facts, e):
                        continue
                    if _per_element(fn.facts, e):
                        continue  # one task per element: once per object (module state:
                        # the callers' search finds the spawn, ``Concurrency._node``)
                    for tfn, tctx in self.summaries.targets(ctx, e):
                        if tctx.recv is None or not tfn.facts.is_async:
                            continue
                        label = f"`{short(tfn)}` runs in several tasks at once here (`{what}`)"
                        if again or s.repeated:
                            sites.setdefault(tfn.fq, fn_step(fn, at(e), label))
                        else:  # started once here; a second start elsewhere in fn counts
                            recv = e.ref.rpartition(".")[0]
                            starts = spawned_once.setdefault((tfn.fq, recv), {})
                            starts.setdefault(e.pos, fn_step(fn, at(e), label))
                            spawner_at.setdefault(e.pos, s)
                if what in MANY_SPAWNERS and not s.repeated:
                    one_by_one = _gathered_from_locals(fn.facts, s, once=True)
                    started += [x for x in one_by_one if not any(x is y for y in started)]
                    self._sibling_sites(ctx, fn, s, what, started, sites)
            for (fq, _recv), once in spawned_once.items():
                # two starts count when one call makes both: the second reachable from the
                # first (not two branches that each start one)
                if len(once) >= 2:
                    second = _second_start(fn.facts, list(once), spawner_at)
                    if second is not None:
                        sites.setdefault(fq, once[second])
            out.extend((fn.fq, target, step) for target, step in sites.items())
        return out

    def _sibling_sites(
        self, ctx: Ctx, fn: Fn, s: Event, what: str, started: list[Event], sites: dict[str, Step]
    ) -> None:
        """``gather(self.update_a(), self.update_b())``, both awaiting ``self._api.request``:
        the two coroutines run at once, so what both reach on one object runs in two tasks at
        once (RacerD's parallel composition). Followed down awaited calls on the receiver's own
        object and the objects it holds, outside lock regions; a method is shared when two
        different started calls reach it on the same path from the gathering function."""
        once = [e for e in started if not e.repeated and not _per_element(fn.facts, e)]
        if len({e.ref for e in once}) < 2:
            return
        reach: dict[tuple[str, str], dict[int, str]] = {}
        for k, e in enumerate(once):
            recv = ".".join(split_ref(e.ref)[:-1])
            if not recv or "(" in recv:
                continue
            for tfn, tctx in self.summaries.targets(ctx, e):
                if tctx.recv is None or not tfn.facts.is_async:
                    continue
                self._reach(tfn, tctx, recv, 0, k, short(tfn), reach, [SIBLING_BUDGET])
        both: dict[tuple[int, int], bool] = {}  # (k1, k2): can one call start both?
        for (path, fq), by in sorted(reach.items()):
            if len(by) < 2 or fq in sites:
                continue
            target = self.index.functions.get(fq)
            if target is None:
                continue
            ks = sorted(by)
            # two starts on exclusive branches (``if load: tasks.append(...) elif not
            # tasks: tasks.append(...)``) never run together: a pair counts when one start
            # is reachable from the other
            pair = next(
                (
                    (k1, k2)
                    for i, k1 in enumerate(ks)
                    for k2 in ks[i + 1 :]
                    if both.setdefault(
                        (k1, k2),
                        _second_start(fn.facts, [once[k1].pos, once[k2].pos]) is not None,
                    )
                ),
                None,
            )
            if pair is None:
                continue
            a, b = by[pair[0]], by[pair[1]]
            label = (
                f"`{short(target)}` runs in several tasks at once here: `{what}` starts "
                f"`{a}` and `{b}` together, and both call it on `{path}`"
            )
            sites[fq] = fn_step(fn, at(s), label)

    def _reach(
        self,
        f: Fn,
        ctx: Ctx,
        path: str,
        depth: int,
        k: int,
        root: str,
        reach: dict[tuple[str, str], dict[int, str]],
        budget: list[int],
    ) -> None:
        """Note that started call ``k`` (of ``root``) runs ``f`` on the object at ``path``,
        and go down the calls ``f`` awaits on ``self`` or an object ``self`` holds."""
        budget[0] -= 1
        by = reach.setdefault((path, f.fq), {})
        if k in by or budget[0] < 0:
            return
        by[k] = root
        if depth >= SIBLING_DEPTH:
            return
        for ev in f.facts.events:
            if ev.kind != K.CALL or ev.bind != Bind.AWAITED or not ev.ref.startswith("self."):
                continue
            if any(self.summaries.region_lock(ctx, rid) is not None for rid in ev.regions):
                continue  # calls under a lock wait for each other
            recv = ".".join(split_ref(ev.ref)[:-1])
            if "(" in recv or "[" in recv:
                continue
            sub = path + recv[len("self") :]
            for tfn, tctx in self.summaries.targets(ctx, ev):
                if tctx.recv is not None and tfn.facts.is_async:
                    self._reach(tfn, tctx, sub, depth + 1, k, root, reach, budget)

    def _partial_of_project(self, ctx: Ctx, e: Event) -> bool:
        """``partial(critical_service_loop, workload=self.sync)``: the bound method is handed
        to a function of the project (its arguments bound ahead of the call), which the
        callers' search follows like any call of it, not to a framework."""
        if e.ref.rpartition(".")[2] != "partial" or not e.args or is_kw(e.args[0]):
            return False
        head = e.args[0]
        return bool(self.index.callable_targets(ctx, head)) or self._project_class(ctx, head)

    def _private_of_project(self, ctx: Ctx, ref: str) -> bool:
        """``self.scan._acatch(context=self._worker)``: a private method (``_name``) of a
        receiver of unknown type, of a name some class of the project defines. No framework
        registers handlers through a private method; the call is the project's own (here an
        error-catching context that only names the worker in its messages)."""
        segs = split_ref(ref)
        name = segs[-1] if len(segs) >= 2 else ""
        if not name.startswith("_") or name.startswith("__"):
            return False
        if self.index.eval(ctx, ".".join(segs[:-1])) is not None:
            return False  # a receiver of known type: its own answer
        return bool(self.index.method_owners(name))

    def _project_class(self, ctx: Ctx, ref: str) -> bool:
        """Does ``ref`` name a class of the project (or an instance of one, which the call
        runs the ``__call__`` of), all of whose bases are the project's too
        (a dataclass without ``__init__`` has no call target, but it is no framework either:
        it only keeps what it is given)? A subclass of a framework's class
        (``class AuthRoute(framework.Route)``) is still the framework's. Bases from
        ``typing``, ``abc``, ``dataclasses`` and the builtins do not count, nor the record
        classes of ``pydantic`` and ``msgspec`` (``class Callbacks(BaseModel): on_message:
        Callable[...]``: a model keeps what it is given)."""
        val = self.index.eval(ctx, ref)
        if not isinstance(val, (ClassObj, Inst)) or val.fq not in self.index.classes:
            return False  # (an instance: its ``__call__``, ``DeepCrawlDecorator(self)(fn)``)
        todo, seen = [val.fq], set()
        while todo:
            fq = todo.pop()
            if fq in seen:
                continue
            seen.add(fq)
            ci = self.index.classes.get(fq)
            if ci is None:
                if not fq.startswith(_NEUTRAL_BASES) and fq not in ("object", "Exception"):
                    return False
                continue
            for b in ci.bases:  # ``Generic[T]`` is kept as written: resolve it without ``[]``
                base = b.split("[", 1)[0]
                todo.append(self.index.resolve(ci.module, base) if "[" in b else base)
        return True

    def _fresh_receiver(self, ctx: Ctx, fn: Fn, call: Event, again: bool) -> bool:
        """``create_task(Cycle(...).run())`` or ``self.cycle = Cycle(...)`` then
        ``create_task(self.cycle.run())``: each spawn gets an object of its own. Not when one
        object made once has the method run several times at once (``again``: ``c = Cycle()``
        then a loop of spawns of ``c.run()``, or ``gather(c.run(1), c.run(2))``)."""
        segs = split_ref(call.ref)
        if len(segs) < 2:
            return False
        recv = ".".join(segs[:-1])
        if recv.endswith("()"):
            return isinstance(self.index.eval(ctx, recv[:-2]), ClassObj)
        for e in fn.facts.events:
            if e.kind in (K.LOCAL, K.WRITE) and e.ref == recv and e.value is not None:
                v = e.value
                if v.kind == "call" and isinstance(self.index.eval(ctx, v.ref), ClassObj):
                    # made anew for each spawn (in the same loop), or its method run once
                    return e.repeated or not again
        return False

    def _callback_sites(self, ctx: Ctx, fn: Fn, e: Event, sites: dict[str, Step]) -> None:
        for a in e.args:
            if _life_hook(e, a):
                continue  # run once per application life
            ref = a.partition("=")[2] if is_kw(a) else a
            if not ref or "(" in ref or ref.startswith(("lambda:", "partial:", "*", "const")):
                continue
            segs = split_ref(ref)
            if len(segs) < 2 or not isinstance(self.index.eval(ctx, ".".join(segs[:-1])), Inst):
                continue  # a bound method of an object, not ``Class.method`` (introspection)
            val = self.index.eval(ctx, ref)
            if not (isinstance(val, FuncVal) and val.recv):
                continue
            target = self.index.functions.get(val.fq)
            if target is None or not target.facts.is_async or target.facts.parent:
                continue
            route = _route_call(e)
            if route:
                label = f"`{short(target)}` is registered as a web route here: {ROUTE_TAIL}"
            else:
                label = f"`{short(target)}` is registered as a callback here; {CALLBACK_TAIL}"
            had = sites.get(target.fq)
            if had is None or (weak_step(had) and route):
                sites[target.fq] = fn_step(fn, at(e), label)

    def _factory_sites(self, ctx: Ctx, fn: Fn, e: Event, sites: dict[str, Step]) -> None:
        """``app.add_route("/x", make_handler(store))``: a function of the project that returns
        an async closure it defines (``return handler``), its result handed to a framework:
        the closure is registered, and runs once per request, several at once."""
        for a in e.args:
            ref = a.partition("=")[2] if is_kw(a) else a
            if not ref.endswith("()") or "(" in ref[:-2] or _life_hook(e, a):
                continue
            val = self.index.eval(ctx, ref[:-2])
            if not isinstance(val, FuncVal):
                continue
            factory = self.index.functions.get(val.fq)
            if factory is None:
                continue
            for r in factory.facts.returns_refs:
                closure = self.index.nested_named(factory, r) if r.isidentifier() else None
                if closure is None or not closure.facts.is_async:
                    continue
                if _route_call(e):
                    label = (
                        f"`{short(factory)}` returns the closure `{closure.facts.name}`, "
                        f"registered here as a web route: {ROUTE_TAIL}"
                    )
                else:
                    label = (
                        f"`{short(factory)}` returns the closure `{closure.facts.name}`, "
                        f"registered here; {CALLBACK_TAIL}"
                    )
                sites.setdefault(closure.fq, fn_step(fn, at(e), label))

    def shared_evidence(self, fn: Fn, depth: int = 0) -> Step | None:
        """Why ``fn`` may run in several tasks at once: a spawn site of it (or of an override or
        a base implementation), or of a method of its class that calls it on ``self``."""
        key = (fn.fq, depth)
        found = self._evidence.get(key)
        if found is MISS:
            self._evidence.start(key, None)  # recursion guard
            found = self._evidence.finish(key, self._shared_evidence(fn, depth))
        return found  # type: ignore[no-any-return]

    def _shared_evidence(self, fn: Fn, depth: int) -> Step | None:
        site = self.spawn_site(fn.fq)
        if site is not None:
            return site
        cls = self.index.method_fn(fn)
        if cls is None or fn.facts.parent is not None:
            return None
        name = fn.facts.name
        related = [cls, *[c.fq for c in self.index.mro(cls)], *self.index.subclasses(cls)]
        for c in related:
            other = self.index.find_method(c, name)
            if other is not None:
                site = self.spawn_site(other.fq)
                if site is not None:
                    return site
        if depth >= 3:
            return None
        for caller in self.summaries.self_callers(cls).get(name, []):
            if caller.fq == fn.fq:
                continue
            found = self.shared_evidence(caller, depth + 1)
            if found is not None:
                return found
        return None

    # -- the model: may this run at the same time as itself? --------------------------------
    def concurrent(self, fn: Fn, scope: str = OBJECT) -> Verdict:
        """May two activations of ``fn`` run at the same time, on one receiver object
        (``scope=OBJECT``: what a race on ``self`` state needs) or at all (``scope=ANY``: what
        a race on module state needs)? A yes carries its evidence as steps, from the root (a
        spawn, a framework's callback, an entry point, a class that locks its state) down the
        calls that reach ``fn``; a no says why the calls are serialized.

        Computed by a bounded, deterministic search from ``fn`` up its callers; only the answer
        for ``fn`` itself is kept, so it does not depend on what was asked before (incremental
        runs check a few modules with fresh memos and must get the full run's answer)."""
        key = (fn.fq, scope)
        found = self._verdicts.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._verdicts.start(key, UNKNOWN)
        verdict = self._node(fn, scope, 0, (fn.fq,), [SEARCH_BUDGET])
        if verdict.answer is True and (weak := weakness(verdict)):
            # evidence that holds for most code of its kind but not for most of what it
            # reaches: a "likely" finding, its steps kept for the report
            verdict = Verdict(None, verdict.steps, LIKELY + weak)
        return self._verdicts.finish(key, verdict)

    def kept_verdicts(self) -> dict[str, list[tuple[str, str, Verdict, set[str]]]]:
        """The verdicts computed so far, by the module of their function, with the reads each
        made (what an incremental run checks before it uses one again)."""
        out: dict[str, list[tuple[str, str, Verdict, set[str]]]] = {}
        memo = self._verdicts
        for (fq, scope), verdict in sorted(memo.values.items()):
            fn = dict.get(self.index.functions, fq)
            if fn is None:
                continue
            deps = memo.deps.get((fq, scope), set())
            out.setdefault(fn.module.module, []).append((fq, scope, verdict, set(deps)))
        return out

    def keep_verdicts(self, kept: Iterable[tuple[str, str, Verdict, set[str]]]) -> None:
        """Take verdicts of an earlier run that read nothing changed since: they are answered
        again as computed then, their reads noted by whoever asks."""
        memo = self._verdicts
        for fq, scope, verdict, deps in kept:
            memo.values[(fq, scope)] = verdict
            if deps:
                memo.deps[(fq, scope)] = set(deps)

    def _node(
        self,
        fn: Fn,
        scope: str,
        depth: int,
        stack: tuple[str, ...],
        budget: list[int],
        low: str | None = None,
    ) -> Verdict:
        """``concurrent``'s search at ``fn``; ``low``: the class the object ``fn`` runs on is
        known to be (or to derive from), from the calls on ``self`` below it on the way
        (``CloudService.service``, reached from ``ManagedService.start``'s ``self.service()``:
        ``start`` runs on a ``CloudService`` there), None for ``fn``'s own class."""
        budget[0] -= 1
        if budget[0] < 0:
            return UNKNOWN
        cell = scope[len(CELL) :] if scope.startswith(CELL) else ""
        if cell and fn.fq == cell:
            return UNKNOWN  # each call of the owner makes the variable anew: what runs it
            # concurrently, or calls it, is no evidence for one closure's variable
        own = self._own_verdict(fn, ANY if cell else scope)
        weak: Verdict | None = None  # a yes on weak evidence: kept while a strong one is sought
        if own is not None:
            if own.answer is not True or not weakness(own):
                return own
            weak = own
        if depth >= MAX_CALLER_DEPTH:
            return weak or UNKNOWN
        serialized: Step | None = None
        mine = low or self.index.method_fn(fn)
        for caller, ev, relation, label in self._iter_callers(fn):
            if relation in ("local", "fresh"):
                continue
            if relation == "self" and self.overridden(fn, caller):
                continue  # the caller's code never runs on an object of fn's class
            up: str | None = None  # what the caller's object is known to be
            if relation == "self" and mine is not None:
                up = self._same_object(mine, caller, fn, ev)
                if up == "":
                    continue  # the caller runs on objects of another branch of the classes
            if self._lifespan_only(caller, ev):
                continue  # the server's one lifespan call, not a request's
            lock_step, many = self._edge(caller, ev)
            if lock_step is not None:
                serialized = serialized or lock_step
                continue
            if many is not None and scope == OBJECT and _per_element(caller.facts, ev):
                many = None  # one task per element of a collection: one per object
            if scope == OBJECT:
                spawn = _spawn_around(caller, ev, SPAWNERS)
                if spawn is not None and _single_slot(caller.facts, spawn):
                    if relation == "self":
                        # one task at a time in the object's own slot, however many run the
                        # caller (``if self._task is None or self._task.done(): self._task =
                        # create_task(self._refresh())``): nothing above it runs fn twice
                        continue
                    many = None  # one task per slot of each caller's object
            step = fn_step(caller, at(ev), label)
            if many is not None:
                found = Verdict(True, (many, step), "spawned")
            elif caller.fq in stack:
                continue
            else:
                need = (
                    scope
                    if cell
                    else (OBJECT if scope == OBJECT and relation in ("self", "attr") else ANY)
                )
                if relation == "cell" and scope == OBJECT and not cell:
                    # one object for the closures of one call of its owner: two runs of them
                    owner = _cell_owner_of(caller, ev, self.index)
                    need = CELL + owner.fq if owner is not None else ANY
                v = self._node(caller, need, depth + 1, (*stack, caller.fq), budget, up)
                if v.answer is False and per_update(v) and self._spawned_call(caller, ev):
                    # a handler run once per update (one update at a time) starts a task it
                    # does not await: the tasks of successive updates overlap
                    step = fn_step(caller, at(ev), f"{label}, {SPAWNED_EACH}")
                    found = Verdict(True, (*v.steps, step), "spawned")
                elif not v.answer:
                    continue
                else:
                    if weakness(v) and self._spawned_call(caller, ev):
                        step = fn_step(caller, at(ev), f"{label}, {SPAWNED_EACH}")
                    found = Verdict(True, (*v.steps, step), v.why)
            if not weakness(found):
                return found
            weak = weak or found
        if weak is not None:
            return weak
        callers = self._callers(fn)  # (all read by now: the search found no evidence)
        if serialized is not None and all(
            r in ("local", "fresh") or self._edge(c, e)[0] is not None for c, e, r, _l in callers
        ):
            return Verdict(
                False,
                (serialized,),
                CALLERS_SERIALIZE,
            )
        if callers and all(r == "fresh" for _c, _e, r, _l in callers):
            return Verdict(False, (), FRESH_CALLERS)
        return self._one_serial_caller(fn, callers, depth, stack, budget)

    def _one_serial_caller(
        self,
        fn: Fn,
        callers: list[tuple[Fn, Event, str, str]],
        depth: int,
        stack: tuple[str, ...],
        budget: list[int],
    ) -> Verdict:
        """``fn`` is called by one function only (on any object but one it has just made),
        which waits for it (no task started, no gather) and itself runs one call at a time
        (``refresh()`` holds ``self._lock`` around ``self._do_refresh()``, and only
        ``_do_refresh`` calls ``client.fetch()``): every run of ``fn`` lies within a run of that
        caller, one after the other."""
        sites = [(c, e, label) for c, e, r, label in callers if r != "fresh"]
        if not sites or len({c.fq for c, _e, _l in sites}) != 1:
            return UNKNOWN
        caller = sites[0][0]
        if caller.fq in stack or any(
            self._spawned_call(caller, e) or self._edge(caller, e)[1] is not None
            for _c, e, _l in sites
        ):
            return UNKNOWN
        v = self._node(caller, ANY, depth + 1, (*stack, caller.fq), budget)
        if v.answer is not False or v.why == FRESH_CALLERS:
            return UNKNOWN  # (a caller run on objects just made says nothing of what they
            # hold: two fresh views may share one store)
        _c, e, label = sites[0]
        return Verdict(
            False,
            (*v.steps, fn_step(caller, at(e), label)),
            "its one caller runs one call at a time and waits for it",
        )

    @staticmethod
    def _spawned_call(caller: Fn, ev: Event) -> bool:
        """Is the call ``ev`` the coroutine of a task ``caller`` starts and does not await
        (``task = asyncio.create_task(self._process(event))``)?"""
        events = caller.facts.events
        for s in events:
            if (
                s is not ev
                and s.kind == K.CALL
                and _is_spawner(s.ref)
                and s.bind not in (Bind.AWAITED, Bind.RETURNED)
                and inside(ev.pos, s.pos)
            ):
                # ``t = create_task(...)`` then ``await t``: the call waits for its task
                return not (
                    s.bind == Bind.LOCAL
                    and any(e.kind == K.AWAIT and e.ref == s.name for e in events)
                )
        return False

    def _own_verdict(self, fn: Fn, scope: str) -> Verdict | None:
        """What ``fn`` itself says, before its callers are asked: a lock decorator, a spawn
        site, an entry point, a single consumer or task, a class that locks its state; None
        when it says nothing. A function of ``fn`` and the project only: memoized."""
        key = (fn.fq, scope)
        found = self._own.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._own.start(key, None)
        out: Verdict | None = None
        deco = self._lock_decorator(fn)
        flight = self._flight_decorator(fn) if deco is None and scope == OBJECT else None
        if deco is not None:
            out = Verdict(False, (deco,), "every call runs under a lock held by its decorator")
        elif flight is not None:
            out = Verdict(
                False, (flight,), "its decorator lets one call at a time run on an object"
            )
        elif (claim := _claimed_flag(fn, scope)) is not None:
            out = Verdict(False, (claim,), "it turns back while a run is in progress")
        elif (handler := self._serial_handler(fn)) is not None:
            out = Verdict(False, (handler,), SERIAL_HANDLERS)
        elif (site := self.spawn_site(fn.fq)) is not None:
            out = Verdict(True, (site,), "spawned")
        elif (entry := self._entry_point(fn)) is not None:
            out = entry
        elif self.single_consumer(fn):
            out = Verdict(False, (), "it runs on an async iterator's one consumer")
        elif self.single_task(fn):
            out = Verdict(False, (), "every caller starts it once, in one task")
        elif scope == OBJECT:
            out = self._locking_class(fn)
        return self._own.finish(key, out)

    def _serial_handler(self, fn: Fn) -> Step | None:
        """A coroutine handed only to python-telegram-bot's handler classes
        (``app.add_handler(CommandHandler("start", self.cmd_start))``), none made with a
        ``block=`` argument (or a constant after the callback, in its place), in a project that
        never calls ``concurrent_updates(...)`` (on its ``ApplicationBuilder``), and called by
        nothing in the project: the application awaits
        the handlers of each update before it takes the next update (its default), so two runs
        never overlap. Not for a coroutine also handed to anything else (a job queue's
        ``run_repeating``, a task), nor one the project calls itself."""
        f = fn.facts
        if not f.is_async or f.parent is not None:
            return None
        calls = self.summaries.mentions().calls
        for h in _PTB_HANDLER_NAMES:
            self.tracker.note(CALL_KEY + h)
        if not any(h in calls for h in _PTB_HANDLER_NAMES):
            return None  # no handler class is called in the project
        name = f.name
        self.tracker.note(ARG_KEY + name)
        found: Step | None = None
        for mod in self.summaries.mentions().args.get(name, ()):
            m = self.index.modules.get(mod)
            if m is None or test_module(m):
                continue
            for g, e, pos_i, _kw, _r in self._arg_sites_of(name, m).get(fn.fq, ()):
                val = self.index.eval(self.summaries.ctx(g), e.ref)
                if not (
                    isinstance(val, (ExtName, ClassObj))
                    and val.fq.startswith(_PTB_HANDLERS)
                    and val.fq.endswith("Handler")
                ):
                    return None  # handed to something else too
                if any(a.startswith("block=") for a in e.args) or "const" in e.args[pos_i + 1 :]:
                    return None  # (``block=False``, or a constant given in its place after the
                    # callback: run as a task of its own)
                found = found or fn_step(
                    g,
                    at(e),
                    f"`{short(fn)}` is registered here as a python-telegram-bot handler: "
                    f"{PER_UPDATE_TAIL}",
                )
        if found is None:
            return None
        self.tracker.note(CALL_KEY + "concurrent_updates")
        if self.summaries.mentions().calls.get("concurrent_updates") or self._callers(fn):
            return None
        return found

    def _edge(self, caller: Fn, ev: Event) -> tuple[Step | None, Step | None]:
        """For a call of a caller: the lock held around it, and the spawn that runs it many
        times at once (memoized per call)."""
        key = (caller.fq, ev.pos)
        found = self._edges.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._edges.start(key, (None, None))
        if ev.kind != K.CALL:  # a hook run within the caller's calls (``_hook_callers``)
            return self._edges.finish(key, (None, None))
        lock_step = self._call_locked(caller, ev) or _once_guarded(caller, ev)
        many = None if lock_step is not None else self._many_spawn(caller, ev)
        return self._edges.finish(key, (lock_step, many))

    def api_entry(self, fn: Fn, runs: bool = True, above: bool = True) -> Verdict | None:
        """A public coroutine of the project's API (a module function, or a method of a public
        class) that nothing serializes: callers outside the project may run it in several tasks
        at once. Evidence enough for state that every task shares (module variables), not for
        one object's state."""
        f = fn.facts
        if not f.is_async or f.name.startswith("_") or not self._public_function(fn):
            return None
        if self._lock_decorator(fn) is not None or self.single_consumer(fn):
            return None
        if _claimed_flag(fn, ANY) is not None:
            return None  # ``if _running: return`` ... ``_running = True``: one run at a time
        if _life_hook_fn(f):
            return None  # a start-up or shutdown hook (``async def on_startup(app):``, handed
            # to ``app.on_startup.append``): the framework runs it once, not in several tasks
        if runs and _process_setup_fn(f):
            # ``async def init(...)``, ``start_proxy(...)`` of a module: a program calls its
            # set-up once (what can cancel it is another question: ``runs=False``); a public
            # coroutine of another name that calls it (``ensure_db(request)``) is evidence
            return self.entry_above(fn) if above else None
        label = (
            f"`{short(fn)}` is a public coroutine: any number of tasks may run it at once, "
            "and module state is one for all of them"
        )
        return Verdict(True, (def_step(fn, label),), "public API")

    def _same_object(self, mine: str, caller: Fn, fn: Fn, ev: Event) -> str | None:
        """``caller``'s call ``ev`` runs ``fn`` on the caller's own ``self``, an instance of
        ``mine``: the class that object is then known to be (``mine``, or the caller's class
        when that derives from ``mine``, or a project class deriving from both), or "" when no
        object is both (sibling subclasses of one base: ``RconService.start``'s
        ``self.restart()`` never runs on a ``CloudService``), or when ``mine`` overrides the
        caller's method without calling it through ``super()`` (the caller's code never runs
        on such an object). None when the call is no method call of the caller's class
        (``self._on_start()``, a callable another object handed it): nothing is known."""
        index = self.index
        theirs = index.method_fn(caller)
        name = fn.facts.name
        if theirs is None or theirs == mine:
            return mine
        if ev.ref not in (f"self.{name}", f"super().{name}") or (
            index.find_method(theirs, name) is None
        ):
            return None
        if index.inherits(theirs, mine):
            return theirs
        if index.inherits(mine, theirs):
            f = caller.facts
            if f.parent is None:
                over = index.find_method(mine, f.name)
                if over is not None and over.fq != caller.fq and not _calls_super(over, f.name):
                    return ""
            return mine
        return next((c for c in index.subclasses(mine) if index.inherits(c, theirs)), "")

    def overridden(self, fn: Fn, caller: Fn) -> bool:
        """``fn`` is a method of class C, ``caller`` one of a base B of C (``self.fn()`` in B,
        or a token made in B's ``__enter__`` and released in C's ``reset``); C overrides
        ``caller``'s method and the override does not call ``super()``'s: then ``caller`` never
        runs on a C object, and nothing it says is about C's objects (a sibling subclass's loop
        over the base method says nothing of an override's class)."""
        c_fq = self.index.method_fn(fn)
        b_fq = self.index.method_fn(caller)
        if c_fq is None or b_fq is None or c_fq == b_fq or caller.facts.parent is not None:
            return False
        if not self.index.inherits(c_fq, b_fq):
            return False  # B is no base of C
        name = caller.facts.name
        over = self.index.find_method(c_fq, name)
        if over is None or over.fq == caller.fq:
            return False
        return not _calls_super(over, name)

    # -- roots ---------------------------------------------------------------------------------
    def _entry_point(self, fn: Fn) -> Verdict | None:
        """Code a framework runs once per request or event, concurrently by contract: an ASGI
        application's ``__call__(scope, receive, send)``, a function registered by a
        framework's decorator (``@app.get(...)``, ``@router.message()``, ``@bot.command()``),
        a gRPC servicer's method, a handler taking the framework's request object."""
        f = fn.facts
        if not f.is_async:
            return None
        params = [p.name for p in f.params]
        if (
            f.cls is not None
            and f.name == "__call__"
            and params[1:4] == ["scope", "receive", "send"]
        ):
            label = (
                f"`{short(fn)}` is an ASGI application: the server calls it once per request, "
                "for concurrent requests at once"
            )
            return Verdict(True, (def_step(fn, label),), "entry point")
        ctx = self.summaries.ctx(fn)
        for d in f.decorators:
            ref = d[:-2] if d.endswith("()") else d
            segs = split_ref(ref)
            if len(segs) < 2 or segs[-1] not in REGISTRATION_VERBS:
                continue
            owner = self.index.eval(ctx, ".".join(segs[:-1]))
            if isinstance(owner, (Inst, ClassObj, ExtName)) and owner.fq not in self.index.classes:
                label = (
                    f"`{short(fn)}` is registered with `@{ref}`: the framework runs it once per "
                    "request or event, for several at once"
                )
                return Verdict(True, (def_step(fn, label),), "entry point")
        if f.cls is not None and f.parent is None:
            ci = self.index.classes.get(f"{fn.module.module}.{f.cls}")
            if ci is not None and not f.name.startswith("_"):
                for b in ci.bases:
                    base = b.split("[", 1)[0]
                    if base not in self.index.classes and base.rsplit(".", 1)[-1].endswith(
                        "Servicer"
                    ):
                        label = (
                            f"`{short(fn)}` is a method of a gRPC servicer: the server runs it "
                            "once per call, for concurrent calls at once"
                        )
                        return Verdict(True, (def_step(fn, label),), "entry point")
        if f.cls is not None and self.per_call_class(f"{fn.module.module}.{f.cls}", public=True):
            # a view made for each request (``handler = Handler(repo)`` then ``await
            # handler.handle(request)``): every request runs on its own object
            return None
        for p in f.params:
            last = p.annotation.rsplit(".", 1)[-1]
            if last in REQUEST_TYPES:
                fq = self.index.resolve(fn.module, p.annotation)
                if fq not in self.index.classes and fq.split(".", 1)[0] in SERVER_FRAMEWORKS:
                    label = (
                        f"`{short(fn)}` handles a `{last}`: the framework runs it once per "
                        "request, for concurrent requests at once"
                    )
                    return Verdict(True, (def_step(fn, label),), "entry point")
        return None

    def _locking_class(self, fn: Fn) -> Verdict | None:
        """A public method of a class that guards some of its state with an asyncio lock: the
        class is written for several tasks at once (the inference RacerD draws from
        ``synchronized``), so its API may be called by several at once. Private methods are
        reached from those through their callers; set-up and tear-down methods (``start``,
        ``run``'s kin in ``lifecycle``) run once per object."""
        f = fn.facts
        if not f.is_async or f.cls is None or f.parent is not None or f.is_generator:
            return None  # (an async generator is iterated by the task that asked for it)
        if f.name.startswith("_") or self._once_per_object(f.name):
            return None
        cls_fq = self.index.method_fn(fn)
        if cls_fq is None:
            return None
        step = self.locking_site(cls_fq)
        if step is None or self._own_worker(fn) or self._setup_only(fn):
            return None
        if self._serialized_by_callers(fn):
            return None  # the class serialises it itself: its callers' answer (no)
        return Verdict(True, (step,), "lock-protected class")

    def _serialized_by_callers(self, fn: Fn) -> bool:
        """Does every call of ``fn`` the project makes on a shared object hold a lock around
        it (``async with self.request_lock: await self.refresh_status()``), or let one call
        through (a check-then-set guard before any await)? Then the lock its class takes is
        how the class runs it one call at a time, no sign that several run at once."""
        callers = [c for c in self._callers(fn) if c[2] not in ("local", "fresh")]
        return bool(callers) and all(self._edge(c, e)[0] is not None for c, e, _r, _l in callers)

    def _setup_only(self, fn: Fn, depth: int = 0) -> bool:
        """Does the project call ``fn`` only from set-up or tear-down methods (``initialize``
        -> ``self.repo.restore_state()``), directly or through helpers called only so? Such a
        method runs once per object, as the set-up it serves does (the callers of a public
        method are the project's own: a library's users may call it too, but a lock around
        other calls of the class says nothing of them)."""
        found = self._setup_memo.get(fn.fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._setup_memo.start(fn.fq, False)  # (a cycle: not known to be set-up only)
        callers = self._callers(fn) if depth < 3 else []
        out = bool(callers) and all(
            self._once_per_object(c.facts.name)
            or c.facts.name in ("__init__", "__post_init__")
            or _life_hook_fn(c.facts)
            or (c.fq != fn.fq and self._setup_only(c, depth + 1))
            for c, _e, _rel, _label in callers
        )
        return self._setup_memo.finish(fn.fq, out)

    # -- who cancels ---------------------------------------------------------------------------
    def canceller(self, fn: Fn) -> Canceller | None:
        """What can cancel ``fn`` while it waits, found in the project (for the evidence of a
        cancellation finding): a timeout around a call that reaches it (``wait_for(...)``,
        ``async with asyncio.timeout(...)``, anyio's ``fail_after``/``move_on_after``), or
        ``.cancel()`` of the task it is started in (``self._task = create_task(self._run())``
        ... ``self._task.cancel()``), up to three callers up; else, when it or a caller on the
        way is a public coroutine, that coroutine's callers (their timeouts, their task
        groups), unless the project calls it itself and every such call was followed to the
        top of its chain: then the project's calls are all there is to know of how it runs.
        None when nothing is found: the finding then rests on what every await is, a point
        where a cancellation can land."""
        found = self._canceller_memo.get(fn.fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._canceller_memo.start(fn.fq, None)
        seen = {fn.fq}
        order = [fn]
        frontier = [fn]
        found_step: Step | None = None
        # those the project calls, each call followed up or a task started apart; and those
        # the project also hands elsewhere (a plain function's ``asyncio.run(self.start())``)
        called: set[str] = set()
        handed: set[str] = set()
        for _depth in range(CANCELLER_DEPTH):
            nxt: list[Fn] = []
            for g in frontier:
                for c, ev, _rel, _label in self._callers(g):
                    called.add(g.fq)
                    found_step = self._cancels_call(c, ev, g)
                    if found_step is not None:
                        return self._canceller_memo.finish(fn.fq, Canceller(found_step, False))
                    # (a plain function that returns the coroutine, ``return
                    # self.do_release(token)``: its callers await it)
                    if _detached(c, ev) or self._helper_spawned(c, ev):
                        continue
                    if not (c.facts.is_async or ev.bind == Bind.RETURNED):
                        handed.add(g.fq)
                    elif c.fq not in seen:
                        seen.add(c.fq)
                        order.append(c)
                        nxt.append(c)
            frontier = nxt
        if any(self._callers(g) for g in frontier):
            called.clear()  # the search stopped short of some callers: nothing is ruled out
        for g in order:
            if g.fq in called and g.fq not in handed:
                # every call the project makes of it was followed, and none can cancel it:
                # it is the project's own step, whatever its name says
                continue
            if g.facts.is_async and self.api_entry(g, runs=False) is not None:
                what = "a public coroutine"
            elif not g.facts.is_async and self._public_function(g):
                what = "a public function that returns the coroutine"
            elif g.facts.name in ("__aenter__", "__aexit__") and self._public_function(g):
                what = "run by its callers' `async with`"
            else:
                continue
            if self._served_only(g):
                continue  # asyncio runs it for each connection, and cancels none of them
            step = def_step(
                g,
                f"`{short(g)}` is {what}: a caller's timeout or task group can cancel it "
                "while it waits",
            )
            return self._canceller_memo.finish(fn.fq, Canceller(step, True))
        return self._canceller_memo.finish(fn.fq, None)

    def _served_only(self, fn: Fn) -> bool:
        """Is ``fn`` a coroutine the project only hands to ``asyncio.start_server`` (or
        ``start_unix_server``) as the callback for each client, and never calls itself? asyncio
        runs it in a task of its own for each connection, and neither a disconnect nor
        ``Server.close()`` cancels that task: being public says nothing of who can cancel it."""
        f = fn.facts
        if not f.is_async or self._callers(fn):
            return False
        name = f.name
        self.tracker.note(ARG_KEY + name)
        served = False
        for mod in self.summaries.mentions().args.get(name, ()):
            m = self.index.modules.get(mod)
            if m is None or test_module(m):
                continue
            for site in self._arg_sites_of(name, m).get(fn.fq, ()):
                if site[1].ref.rpartition(".")[2] not in _CLIENT_SERVERS:
                    return False  # handed to something else too
                served = True
        return served

    def _public_function(self, fn: Fn) -> bool:
        """A module function or method of a public class, itself public (or an ``async with``
        dunder), outside a program's own module (a CLI's command is no API for others to
        call), that the project does not run only at set-up (``init_db()`` from a start-up
        hook: that is how it is meant to be called): its callers are not all in the
        project."""
        f = fn.facts
        if f.parent is not None:
            return False
        if f.name.startswith("_") and f.name not in ("__aenter__", "__aexit__"):
            return False
        if f.cls is not None and f.cls.rsplit(".", 1)[-1].startswith("_"):
            return False
        self.tracker.note(fn.module.module)  # its other functions and its imports
        return not _runs_its_own_loop(fn.module) and not self._setup_only(fn)

    def _helper_spawned(self, caller: Fn, ev: Event) -> bool:
        """Is ``caller``'s call ``ev`` the coroutine it hands to a helper of the project that
        starts it as a task of its own (``self.create_async_task(self.show(text))``, where
        ``def create_async_task(self, coro): task = asyncio.create_task(self._run(coro))``)?
        A timeout around ``caller`` then stops at the helper's spawn, as at ``create_task``."""
        f = caller.facts
        for e in f.events:
            if e is ev or e.kind != K.CALL or not inside(ev.pos, e.pos) or "(" in e.ref:
                continue
            recv, _, name = e.ref.rpartition(".")
            helper: Fn | None = None
            if recv == "self" and f.cls is not None:
                cls = self.index.method_fn(caller)
                helper = self.index.find_method(cls, name) if cls else None
            elif not recv:
                helper = self.index.functions.get(f"{caller.module.module}.{name}")
            if helper is not None and self._spawn_helper(helper):
                return True
        return False

    def _spawn_helper(self, fn: Fn) -> bool:
        """Does the plain function ``fn`` start one of its parameters as a task of its own: the
        parameter handed to ``create_task``/``ensure_future``/``start_soon``, directly or as an
        argument of the coroutine call handed there, outside any task group it enters?"""
        f = fn.facts
        self.tracker.note(fn.module.module)
        if f.is_async:
            return False
        params = {p.name for p in f.params if p.kind == "pos"} - {"self", "cls"}
        if not params:
            return False
        events = f.events
        for e in events:
            if e.kind != K.CALL or e.ref.rpartition(".")[2] not in _DETACHING:
                continue
            if _in_task_group(f, e):
                continue  # a group it enters: its tasks end with it
            if params.intersection(e.args) or any(
                x.kind == K.CALL
                and x is not e
                and inside(x.pos, e.pos)
                and params.intersection(x.args)
                for x in events
            ):
                return True
        return False

    def _cancels_call(self, caller: Fn, ev: Event, fn: Fn) -> Step | None:
        """Does ``caller``'s call ``ev`` of ``fn`` run under a timeout, or in a task that
        ``caller``'s object (or ``caller`` itself) cancels?"""
        f = caller.facts
        for rid in ev.regions:
            region = f.regions[rid]
            if region.ref.removesuffix("()").rpartition(".")[2] in _TIMEOUT_SCOPES:
                return fn_step(
                    caller,
                    region.pos,
                    f"`{short(caller)}` calls `{short(fn)}` under `{region.ref}`: the timeout "
                    "cancels it there",
                )
        for e in f.events:
            if e is ev or e.kind != K.CALL or not inside(ev.pos, e.pos):
                continue
            last = e.ref.rpartition(".")[2]
            if last in _TIMED_WAITS:
                return fn_step(
                    caller,
                    at(e),
                    f"`{short(caller)}` waits for `{short(fn)}` under `{last}`: the timeout "
                    "cancels it there",
                )
            if last in _TASK_STARTS and e.bind in (Bind.ATTR, Bind.LOCAL) and e.name:
                handle = e.name
                for m, i in self._cancels_of(caller, handle)[:1]:
                    return fn_step(
                        m,
                        at(m.facts.events[i]),
                        f"`{short(m)}` cancels the task that runs `{short(fn)}` "
                        f"(`{handle}`, started in `{short(caller)}`)",
                    )
        return None

    def _cancels_of(self, caller: Fn, handle: str) -> list[tuple[Fn, int]]:
        """The ``<handle>.cancel()`` calls of the task ``caller`` keeps in ``handle``: in the
        methods of its class for an attribute (``self._task``), in ``caller`` for a local."""
        if handle.startswith("self.") and caller.facts.cls is not None:
            cls = self.index.method_fn(caller)
            methods = list(self.index.methods_of(self.index.mro(cls))) if cls else []
        else:
            methods = [caller]
        return [
            (m, i)
            for m in methods
            for i, c in enumerate(m.facts.events)
            if c.kind == K.CALL and c.ref == f"{handle}.cancel"
        ]

    def canceller_restores(self, fn: Fn, state: str, depth: int = 0) -> bool:
        """Is ``fn`` a private method run only as a task kept on its object (``self._task =
        create_task(self._run_loop())``), or awaited only by private methods of the object
        that are (``_read_loop`` awaits ``self._handle(msg)``, up to two calls deep), and does
        every method that cancels those tasks write ``state`` (``self.ws = None``, or
        ``self._pending.clear()``, itself or in a method of the object it calls) after the
        cancel, or before it with no await between? Then whatever a cancellation leaves in
        ``state`` its canceller sets anew: nothing stays changed for good (the task is
        suspended, its change made, whenever the canceller runs)."""
        f = fn.facts
        if not state.startswith("self.") or f.cls is None or not f.name.startswith("_"):
            return False
        callers = self._callers(fn)
        if not callers:
            return False
        for caller, ev, rel, _label in callers:
            spawn = _spawn_around(caller, ev, _TASK_STARTS)
            if spawn is None:
                # awaited by another private coroutine of the object: cancelled with it
                if not (
                    depth < 2
                    and rel == "self"
                    and ev.bind == Bind.AWAITED
                    and caller.facts.is_async
                    and self.canceller_restores(caller, state, depth + 1)
                ):
                    return False
                continue
            if spawn.bind != Bind.ATTR or not spawn.name.startswith("self."):
                return False  # a task nothing keeps: other cancellers
            cancels = self._cancels_of(caller, spawn.name)
            if not cancels:
                return False
            for m, i in cancels:
                if not self._rewrites_around(m, i, state):
                    return False
        return True

    def _rewrites_around(self, m: Fn, i: int, state: str) -> bool:
        """Does ``m`` write ``state`` after its cancel at event ``i``, or before it with no await
        between (itself, or in a method of the object it calls there: a plain method, or an
        awaited coroutine after the cancel)?"""
        mf = m.facts
        events = mf.events
        after = reachable(mf, [i])
        # the events before the cancel with no await between them and it
        last_await = max((k for k in range(i) if events[k].kind == K.AWAIT), default=-1)
        cls = self.index.method_fn(m)
        for j, e in enumerate(events):
            if not (j in after or last_await < j < i):
                continue
            if self._writes_state(e, state):
                return True
            if e.kind == K.CALL and e.ref.startswith("self.") and e.ref.count(".") == 1:
                callee = self.index.find_method(cls, e.ref[5:]) if cls else None
                if callee is None or (
                    # a coroutine runs only where it is awaited, and an await before the
                    # cancel lets the task change the state again
                    callee.facts.is_async
                    and not (
                        j in after
                        and j + 1 < len(events)
                        and events[j + 1].kind == K.AWAIT
                        and e.bind == Bind.AWAITED
                    )
                ):
                    continue
                if any(self._writes_state(x, state) for x in callee.facts.events):
                    return True
        return False

    @staticmethod
    def _writes_state(e: Event, state: str) -> bool:
        """``self.x = ...`` or ``self.x.clear()``."""
        return (e.kind == K.WRITE and e.ref == state) or (
            e.kind == K.CALL and e.ref == state + ".clear" and not e.args
        )

    def _once_per_object(self, name: str) -> bool:
        """A set-up or tear-down method (``lifecycle``), or one that tears down a part of the
        object, named for it (``aclose_events``, ``close_stream``, ``stop_listening``)."""
        return name in self.lifecycle or name.partition("_")[0] in TEARDOWN_VERBS

    def lock_covers(self, fn: Fn, ref: str, binding: bool = False) -> bool:
        """Is the state ``ref`` (``self.<attr>``) of ``fn``'s class read or written somewhere
        in the class (or a base) under an asyncio lock? A class that locks *that* state is
        written for concurrent callers of the code that touches it; a lock around other state
        (a socket's writes) says nothing of this one (RacerD reports a field only where some
        access of it is synchronised). ``binding``: only an assignment of the attribute itself
        counts (a check whether it is set races on its binding; a lock around calls of the
        object it holds, ``self._writer.write(...)``, orders the uses of that object)."""
        segs = split_ref(ref)
        if len(segs) < 2 or segs[0] != "self":
            return True  # (module state: not the class's)
        attr = f"self.{segs[1]}"
        cls_fq = self.index.method_fn(fn)
        if cls_fq is None:
            return True
        key = (cls_fq, attr + ("\x00binding" if binding else ""))
        found = self._covers.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._covers.start(key, False)
        out = False
        for ci in self.index.mro(cls_fq):
            for q in sorted(ci.facts.methods.values()):
                m = self.index.functions.get(f"{ci.module.module}.{q}")
                if m is None or not m.facts.regions:
                    continue
                ctx = Ctx(m, cls_fq)
                for e in m.facts.events:
                    if not e.regions or not (
                        e.ref == attr or e.ref.startswith((attr + ".", attr + "["))
                    ):
                        continue
                    if binding and not (e.kind == K.WRITE and e.ref == attr):
                        continue  # a use of the object it holds, not its binding
                    if not (
                        e.kind in (K.WRITE, K.SETITEM, K.DELITEM)
                        or (e.kind == K.CALL and e.ref.count(".") == 2)
                    ):
                        continue  # a read under the lock: the lock orders something else
                    if any(
                        (lock := self.summaries.region_lock(ctx, r)) is not None
                        and lock.kind == "async"
                        for r in e.regions
                    ):
                        out = True
                        break
                if out:
                    break
            if out:
                break
        return self._covers.finish(key, out)

    def _own_worker(self, fn: Fn) -> bool:
        """Is ``fn`` started as a task by a method of its own class, once
        (``self._task = asyncio.create_task(self.run(config))``)? Then it is the object's
        worker, not an operation of its API that callers run side by side."""
        for caller, _ev, single in self._call_sites(fn):
            if single and caller.facts.cls == fn.facts.cls and caller.module is fn.module:
                return True
        return False

    def locking_site(self, cls_fq: str) -> Step | None:
        """Where a public coroutine of the class itself (not a base: a lock a subclass inherits
        says how the base is used) takes an asyncio lock it holds on ``self`` (``async with
        self._lock:``): the first such place, in method order. A lock taken only in set-up or
        tear-down methods (``close``, ``__aexit__``) orders the object's own life, not the
        calls of its API."""
        found = self._locking.get(cls_fq)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._locking.start(cls_fq, None)
        out: Step | None = None
        own = self.index.classes.get(cls_fq)
        for ci in [own] if own is not None else []:
            for name in sorted(ci.facts.methods):
                if name.startswith("_") or self._once_per_object(name):
                    continue
                m = self.index.functions.get(f"{ci.module.module}.{ci.facts.methods[name]}")
                if m is None or not m.facts.is_async:
                    continue
                ctx = Ctx(m, cls_fq)
                for rid, region in enumerate(m.facts.regions):
                    if not region.is_async or not region.ref.startswith("self."):
                        continue
                    lock = self.summaries.locks.lock_of(ctx, region.ref)
                    if lock is None or lock.kind != "async":
                        continue
                    cls_name = cls_fq.rsplit(".", 1)[-1]
                    out = fn_step(
                        m,
                        region.pos,
                        f"`{cls_name}` guards its state with `{region.ref}` here: its methods "
                        "are written to be called by several tasks at once",
                    )
                    del rid
                    break
                if out is not None:
                    break
            if out is not None:
                break
        return self._locking.finish(cls_fq, out)

    # -- serialization -------------------------------------------------------------------------
    def _decorator_wrappers(self, fn: Fn) -> Iterator[tuple[str, Fn, Fn, Ctx]]:
        """(decorator ref, decorator, async wrapper, the wrapper's context) for each decorator
        of the project on ``fn`` and each async function nested in it (a decorator factory's
        decorator's wrapper included)."""
        f = fn.facts
        if not f.decorators:
            return
        ctx = self.summaries.ctx(fn)
        for d in f.decorators:
            ref = d[:-2] if d.endswith("()") else d
            val = self.index.eval(ctx, ref)
            if not isinstance(val, FuncVal):
                continue
            deco = self.index.functions.get(val.fq)
            if deco is None:
                continue
            for q in self.index.nested_qualnames(deco, NESTED_LIMIT):
                inner = self.index.functions.get(f"{deco.module.module}.{q}")
                if inner is not None and inner.facts.is_async:
                    yield ref, deco, inner, Ctx(inner, ctx.recv)

    def _lock_decorator(self, fn: Fn) -> Step | None:
        """A decorator of the project that runs the function inside ``async with <lock>``:
        every call waits for the previous one. The call of the wrapped function (a parameter
        of the decorator, called by its plain name) is inside the lock's block; a lock taken
        for something else before or after it (``async with lock: await audit(...)``, then
        ``return await fn(...)``) serializes nothing of the function."""
        for ref, deco, inner, ictx in self._decorator_wrappers(fn):
            wrapped = self._wrapped_names(deco, inner)
            events = inner.facts.events
            for region in inner.facts.regions:
                if not region.is_async:
                    continue
                lock = self.summaries.locks.lock_of(ictx, region.ref)
                if lock is None or lock.kind == "thread":
                    continue
                if any(
                    e.kind == K.CALL and e.ref in wrapped and region.first <= i < region.last
                    for i, e in enumerate(events)
                ):
                    return def_step(
                        fn,
                        f"`@{ref}` runs every call of `{short(fn)}` under "
                        f"`{region.ref}`: calls wait for each other",
                    )
        return None

    def _wrapped_names(self, deco: Fn, inner: Fn) -> set[str]:
        """The names by which the wrapper ``inner`` may call the function it wraps: the
        parameters of the decorator and of the functions nested in it (a decorator factory's
        decorator), not bound by the wrapper itself."""
        names = {p.name for p in deco.facts.params}
        for q in self.index.nested_qualnames(deco, NESTED_LIMIT):
            g = self.index.functions.get(f"{deco.module.module}.{q}")
            if g is not None and g is not inner:
                names.update(p.name for p in g.facts.params)
        own = inner.facts
        return (
            names - {p.name for p in own.params} - {e.ref for e in own.events if e.kind == K.LOCAL}
        )

    def _flight_decorator(self, fn: Fn) -> Step | None:
        """A decorator of the project whose wrapper runs the function only past a check-then-
        claim of its receiver (:func:`flight_wrapper`: ``if self in being_called: return await
        futures[self]``, then ``being_called.add(self)`` before any await): while one call runs
        on an object, every other call on it turns back (or joins the running one). Calls on
        one object never overlap; calls on two objects may."""
        if fn.facts.cls is None or not fn.facts.params:
            return None
        for ref, deco, inner, _ictx in self._decorator_wrappers(fn):
            found = flight_wrapper(inner.facts, self._wrapped_names(deco, inner))
            if found is None:
                continue
            box, claim = found
            line = inner.facts.events[claim].pos[0]
            return def_step(
                fn,
                f"`@{ref}` runs `{short(fn)}` only past `{box}`: its wrapper turns back while a "
                f"call on the object is running and claims the object before it awaits "
                f"({inner.module.path}, line {line}): one call at a time on each object",
            )
        return None

    def _call_locked(self, caller: Fn, ev: Event) -> Step | None:
        """The lock a caller holds around a call (``async with self._lock: await h(e)``)."""
        if not ev.regions:
            return None
        ctx = self.summaries.ctx(caller)
        for rid in ev.regions:
            lock = self.summaries.region_lock(ctx, rid)
            if lock is not None:
                region = caller.facts.regions[rid]
                return fn_step(
                    caller,
                    region.pos,
                    f"`{short(caller)}` holds `{region.ref}` around the call: calls wait "
                    "for each other",
                )
        return None

    def _many_spawn(self, caller: Fn, ev: Event) -> Step | None:
        """The call ``ev`` is the coroutine of a spawn that runs many at once (a
        ``create_task`` in a loop, a ``gather`` over a comprehension)."""
        events = caller.facts.events
        for s in events:
            if s.kind != K.CALL or s is ev or not _is_spawner(s.ref):
                continue
            what = last_seg(s.ref)
            if not inside(ev.pos, s.pos):
                if what in MANY_SPAWNERS and any(
                    x is ev for x in _gathered_from_locals(caller.facts, s)
                ):
                    return fn_step(
                        caller,
                        at(s),
                        f"`{short(caller)}` starts it in several tasks at once here (`{what}`), "
                        "one per element of the list it gathers",
                    )
                continue
            if what not in MANY_SPAWNERS and _joined_each_pass(caller.facts, s):
                continue
            if what not in MANY_SPAWNERS and not (ev.repeated or s.repeated):
                # ``create_task(drain(out)); create_task(drain(err))``: a second start of the
                # same function on a path from this one (the contribution's rule for methods,
                # ``_second_start``), here for what has no receiver: a closure, a function
                twin = _twin_start(caller.facts, s, ev)
                if twin is not None:
                    return fn_step(
                        caller,
                        at(twin),
                        f"`{short(caller)}` starts it in several tasks at once here "
                        f"(`{last_seg(twin.ref)}`, a second time)",
                    )
            if (
                ev.repeated
                or s.repeated
                or (
                    what in MANY_SPAWNERS
                    and sum(
                        x.ref == ev.ref and inside(x.pos, s.pos) for x in events if x.kind == K.CALL
                    )
                    > 1
                )
            ):
                return fn_step(
                    caller,
                    at(s),
                    f"`{short(caller)}` starts it in several tasks at once here (`{what}`)",
                )
        return None

    # -- callers -------------------------------------------------------------------------------
    def called_in_project(self, fn: Fn) -> bool:
        """Does any call of the project (outside its tests) reach ``fn``, directly, through a
        callable stored for later, or as a task it starts?"""
        return next(self._iter_callers(fn), None) is not None

    def entry_above(self, fn: Fn) -> Verdict | None:
        """A public coroutine that nothing in the project calls (:meth:`api_entry`, its
        callers all outside) from which the project's calls reach ``fn``, up to three callers
        up: its callers may run it in several tasks at once, and ``fn`` with it. The evidence
        is that coroutine, then the calls down to ``fn``."""
        seen = {fn.fq}
        frontier: list[tuple[Fn, tuple[Step, ...]]] = [(fn, ())]
        for _depth in range(3):
            nxt: list[tuple[Fn, tuple[Step, ...]]] = []
            for g, below in frontier:
                for c, ev, _rel, label in self._callers(g):
                    if c.fq in seen or not c.facts.is_async:
                        continue
                    seen.add(c.fq)
                    steps = (fn_step(c, at(ev), label), *below)
                    api = self.api_entry(c, above=False)
                    if api is not None and not self.called_in_project(c):
                        return Verdict(True, (*api.steps, *steps), "public API")
                    nxt.append((c, steps))
            frontier = nxt
        return None

    def _callers(self, fn: Fn) -> list[tuple[Fn, Event, str, str]]:
        """Every call that reaches ``fn`` that the project makes (:meth:`_iter_callers`), all
        of them."""
        return list(self._iter_callers(fn))

    def _iter_callers(self, fn: Fn) -> Iterator[tuple[Fn, Event, str, str]]:
        """The calls that reach ``fn``: (caller, call event, how the receiver relates to the
        caller's, the label of the step), module by module in the order of their names (a
        module's bodies are read only when the search gets there: a search that finds its
        evidence early reads few), then the calls through callables stored for later.
        Relations: ``self`` (the caller's own object, or a closure of it), ``attr`` (an object
        the caller's object holds), ``global`` (a module-level object, a class attribute, a
        module function), ``bound`` (through a callable stored for later: the stored object is
        one for every caller), ``local`` (an object the caller got from elsewhere: no shared
        receiver), ``fresh`` (an object the caller has just made)."""
        name = fn.facts.name
        self.tracker.note(CALL_KEY + name)
        seen: set[tuple[str, Pos]] = set()
        for mod in self.summaries.mentions().calls.get(name, ()):
            for c in self._callers_in(fn, mod):
                key = (c[0].fq, c[1].pos)
                if key not in seen:
                    seen.add(key)
                    yield c
        for alias in self.summaries.stored_names(fn):
            # ``self.request = retry(...)(self._request)``: calls of ``request`` run it
            self.tracker.note(CALL_KEY + alias)
            for mod in self.summaries.mentions().calls.get(alias, ()):
                for c in self._callers_in(fn, mod, alias):
                    key = (c[0].fq, c[1].pos)
                    if key not in seen:
                        seen.add(key)
                        yield c
        for c in self._bound_callers(fn):
            key = (c[0].fq, c[1].pos)
            if key not in seen:
                seen.add(key)
                yield c

    def _callers_in(self, fn: Fn, mod: str, alias: str = "") -> list[tuple[Fn, Event, str, str]]:
        """The calls of ``fn`` (by its name, checked by what the call reaches) in one module:
        looked up in the module's call sites of the name (:meth:`_call_sites_of`), which are
        evaluated once for every function of that name. ``alias``: the calls by the name of
        an attribute that holds ``fn`` (``Summaries.stored_names``) instead."""
        key = (f"{fn.fq}\x00{alias}" if alias else fn.fq, mod)
        found = self._caller_memo.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._caller_memo.start(key, [])
        out: list[tuple[Fn, Event, str, str]] = []
        m = self.index.modules.get(mod)
        name = alias or fn.facts.name
        if m is not None and not test_module(m):  # tests do not run the code concurrently
            table = self._call_sites_of(name, m)
            hits: dict[int, tuple[str, str]] = dict(table.typed.get(fn.fq, {}))
            if (
                not alias
                and table.untargeted
                and fn.facts.cls is not None
                and fn.facts.parent is None
                and not name.startswith("__")
                and name not in COMMON_METHOD_NAMES
            ):
                for j in table.untargeted:
                    unique = self._unique_reach(table.sites[j], fn)
                    if unique is not None:
                        hits[j] = unique
            for j in sorted(hits):
                caller, _i, e, ctx, _refs = table.sites[j]
                r, how = hits[j]
                relation = _relation(caller, r, self.index)
                if (relation == "local" and self._fresh_local(ctx, caller, r)) or (
                    relation in ("attr", "global") and self._fresh_attr(ctx, caller, r, _i)
                ):
                    relation = "fresh"  # an object the caller has just made
                label = self._call_label(caller, fn, r, relation, how)
                if relation == "cell" and (
                    (owner := cell_owner(caller, first_seg(r), self.index)) is not None
                ):
                    label = (
                        f"`{short(caller)}` calls `{short(fn)}` on `{first_seg(r)}` here: "
                        f"one object, made by `{short(owner)}` for every run of the closure"
                    )
                if alias:
                    label += f" (through `{alias}`, the attribute that holds it)"
                out.append((caller, e, relation, label))
        out.sort(key=lambda c: (c[0].fq, c[1].pos))
        if not out and m is not None and not alias:
            return self._caller_memo.finish_as(key, out, mod, f"{NO_CALLERS_KEY}{fn.fq}\x00{mod}")
        return self._caller_memo.finish(key, out)

    def _call_sites_of(self, name: str, m: ModuleFacts) -> _CallSites:
        """The module's calls of ``name`` (``Summaries.module_calls``: by the callee's last name,
        or a spawner's argument of that name), each once, in the order of (caller, event), with
        the refs that may reach a function of that name, and what they reach: the functions a
        call runs (``ref`` the call's own: :meth:`_call_targets`) or the function an argument
        of a spawner names (``Index.eval``). The calls whose targets are not known are listed
        apart: the unique method of the name may be what they reach (:meth:`_unique_reach`)."""
        key = (name, m.module)
        found = self._site_memo.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        table = _CallSites([], {}, [])
        self._site_memo.start(key, table)
        sites, typed, untargeted = table.sites, table.typed, table.untargeted
        last: tuple[str, int] | None = None
        last_caller: Fn | None = None
        ctx: Ctx | None = None
        for caller, i in sorted(
            self.summaries.module_calls(m).get(name, ()), key=lambda c: (c[0].fq, c[1])
        ):
            if last == (caller.fq, i):
                continue  # (a spawner handed two refs of that name)
            last = (caller.fq, i)
            e = caller.facts.events[i]
            if caller is not last_caller or ctx is None:  # (one context per caller)
                ctx = self.summaries.ctx(caller)
                last_caller = caller
            refs: list[str] = []
            if e.ref.rpartition(".")[2] == name:  # (the last of ``split_ref``)
                refs.append(e.ref)
            elif "." not in e.ref and name in dynamic_names(caller.module, caller.facts, e):
                refs.append(e.ref)  # ``getattr(self, f"_tool_{k}")(...)``: by its prefix
            elif _is_spawner(e.ref):
                for a in e.args:
                    r = a.partition("=")[2] if is_kw(a) else a
                    if r and "(" not in r and last_seg(r) == name:
                        refs.append(r)
            j = len(sites)
            sites.append((caller, i, e, ctx, tuple(refs)))
            for r in refs:
                if r == e.ref:
                    targets = self._call_targets(ctx, e, (caller.fq, i))
                    for fq in targets:
                        typed.setdefault(fq, {}).setdefault(j, (r, "typed"))
                    if not targets and len(split_ref(r)) >= 2:
                        untargeted.append(j)
                else:
                    val = self.index.eval(ctx, r)
                    if isinstance(val, FuncVal):
                        typed.setdefault(val.fq, {}).setdefault(j, (r, "typed"))
        return self._site_memo.finish(key, table)

    def _unique_reach(self, site: _Site, fn: Fn) -> tuple[str, str] | None:
        """Does the call ``site``, whose targets are not known, run the method ``fn`` by its
        name alone? Nothing is known of the receiver, and only one class of the project has a
        method of that name (``fn``'s, which may be found so: :meth:`_callers_in`)."""
        _caller, _i, _e, ctx, refs = site
        r = refs[0]
        recv = ".".join(split_ref(r)[:-1])
        if self.index.eval(ctx, recv) is not None:
            return None  # the receiver is known to be something else
        if "(" in recv:
            return None  # what a call returned (``self.rpc(addr).call_stack()``: a proxy of a
            # remote object) is nothing the name can tell
        owners = self.index.method_owners(fn.facts.name)
        if len(owners) == 1 and owners[0] == self.index.method_fn(fn):
            return r, "unique"
        return None

    def still_no_callers(self, key: str) -> bool:
        """Is a read noted as ``NO_CALLERS_KEY`` (a module with no caller of a function) or
        ``NO_STORED_KEY`` (none that hands it on to be called later) still one? The function
        may be gone, or the module may call it now."""
        stored = key.startswith(NO_STORED_KEY)
        fq, _, mod = key[len(NO_STORED_KEY if stored else NO_CALLERS_KEY) :].rpartition("\x00")
        fn = self.index.functions.get(fq)
        if fn is None or mod not in self.index.modules:
            return False
        frames = self.tracker.frames
        frames.append(set())  # memoized on the way: their reads are kept
        try:
            return not (self._stored_in(fn, mod) if stored else self._callers_in(fn, mod))
        finally:
            frames.pop()

    def _bound_callers(self, fn: Fn) -> list[tuple[Fn, Event, str, str]]:
        """The calls of ``fn`` through callables stored for later (:meth:`_stored_calls`)."""
        key = (fn.fq, "\x00bound")
        found = self._caller_memo.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._caller_memo.start(key, [])
        out: list[tuple[Fn, Event, str, str]] = []
        done: set[tuple[str, int]] = set()
        for caller, i, via in self._stored_calls(fn):
            if (caller.fq, i) in done:
                continue
            done.add((caller.fq, i))
            e = caller.facts.events[i]
            if via.startswith(PASSED):
                helper, _, ref = via[len(PASSED) :].partition("\x00")
                relation = _relation(caller, ref, self.index)
                label = (
                    f"`{short(caller)}` hands `{short(fn)}` to `{helper}` here, which calls it "
                    "within this call"
                )
                out.append((caller, e, relation, label))
                continue
            label = (
                f"`{short(caller)}` calls `{short(fn)}` here through `{via}`, where it was "
                "stored: one object for every caller"
            )
            out.append((caller, e, "bound", label))
        out.extend(self._hook_callers(fn))
        out.sort(key=lambda c: (c[0].fq, c[1].pos))
        return self._caller_memo.finish(key, out)

    def _hook_callers(self, fn: Fn) -> list[tuple[Fn, Event, str, str]]:
        """``backoff.on_exception(..., on_backoff=self._on_retry)(self._request)``: a hook
        handed to a decorator factory whose decorator wraps a function of the project runs
        within that function's calls (the wrapper calls both). The wrapped function is a
        caller, its entry the call."""
        name = fn.facts.name
        out: list[tuple[Fn, Event, str, str]] = []
        for mod in self.summaries.mentions().args.get(name, ()):
            m = self.index.modules.get(mod)
            if m is None or test_module(m):
                continue
            for g, e, _i, _kw, r in self._arg_sites_of(name, m).get(fn.fq, ()):
                outer = _applied_to(g.facts, e)
                if outer is None:
                    continue
                ctx = self.summaries.ctx(g)
                if self.index.callable_targets(ctx, e.ref):
                    continue  # a function of the project: followed as a call
                val = self.index.eval(ctx, outer.args[0])
                wrapped = self.index.functions.get(val.fq) if isinstance(val, FuncVal) else None
                if wrapped is None or wrapped is fn or not wrapped.facts.is_async:
                    continue
                same = r.startswith("self.") and outer.args[0].startswith("self.")
                label = (
                    f"`{short(wrapped)}` runs `{short(fn)}` within its calls: the hook is handed "
                    f"to its wrapper (`{e.ref}`, line {e.pos[0]})"
                )
                # the wrapped function's entry, shown at its ``def`` line (``def_step``)
                entry = dataclasses.replace(
                    wrapped.facts.events[0], show=def_step(wrapped, "").pos, succ=[]
                )
                out.append((wrapped, entry, "self" if same else "bound", label))
        return out

    def _call_targets(self, ctx: Ctx, ev: Event, key: tuple[str, int]) -> tuple[str, ...]:
        """The functions a call event of a caller runs (``Summaries.targets``), kept per event:
        the search for the callers of every method of one name asks the same calls."""
        found = self._target_memo.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._target_memo.start(key, ())
        return self._target_memo.finish(key, self.summaries.target_fqs(ctx, ev))

    def _fresh_local(self, ctx: Ctx, caller: Fn, ref: str) -> bool:
        """The receiver of ``ref`` is a local the caller made with a constructor
        (``job = Job()``, ``self = cls(...)`` in a classmethod factory): one per call."""
        head = first_seg(ref)
        for e in caller.facts.events:
            if e.kind == K.LOCAL and e.ref == head and e.value is not None:
                v = e.value
                if v.kind != "call" or not isinstance(self.index.eval(ctx, v.ref), ClassObj):
                    return False
                return not _kept(caller, head)  # returned is fine: published after the call
        return False

    def _fresh_attr(self, ctx: Ctx, caller: Fn, ref: str, call: int) -> bool:
        """The receiver of ``ref`` is an attribute of the caller's object that the caller sets
        to a new object (a constructor) on every path before the call (``self.transport =
        Transport(host); self.transport.connect()``): each run of the caller calls it on an
        object of its own, as with a local it made. The same for a module object's attribute
        or a module variable (``current_valley.dock = Dock(...)`` then ``await
        current_valley.dock.start_gateway()``), when no await comes between the new object and
        the call (another run could put its own there meanwhile). Other writes (``= None`` on
        an error path) count only if they can reach the call."""
        segs = split_ref(ref)
        recv = ".".join(segs[:-1])
        own = len(segs) == 3 and segs[0] == "self"
        if not own and (len(segs) < 2 or segs[0] in ("self", "cls")):
            return False
        events = caller.facts.events
        writes = [i for i, e in enumerate(events) if e.kind == K.WRITE and e.ref == recv]
        made = [
            i
            for i in writes
            if (v := events[i].value) is not None
            and v.kind == "call"
            and isinstance(self.index.eval(ctx, v.ref), ClassObj)
        ]
        if not made or (own and len(made) != len(writes)):
            return False
        f = caller.facts
        if call in reachable(f, [0], avoid=made):
            return False
        other = [i for i in writes if i not in made]
        if other and call in reachable(f, other, avoid=made):
            return False
        if own:
            return True
        after = reachable(f, made)
        waits = [i for i in after if events[i].kind == K.AWAIT and i != call]
        return not (waits and call in reachable(f, waits, avoid=made))

    @staticmethod
    def _call_label(caller: Fn, fn: Fn, ref: str, relation: str, how: str) -> str:
        recv = ".".join(split_ref(ref)[:-1]).removeprefix("global:")
        by_name = (
            " (found by its name: no other class has a method of that name)"
            if how == "unique"
            else ""
        )
        if relation == "attr":
            return (
                f"`{short(caller)}` calls `{short(fn)}` on `{recv}` here{by_name}: one object, "
                "held by the caller's, for all its tasks"
            )
        if relation == "global":
            where = f"on `{recv}`, " if recv else ""
            return (
                f"`{short(caller)}` calls `{short(fn)}` {where}here{by_name}: one for the "
                "whole process"
            )
        return f"`{short(caller)}` calls `{short(fn)}` here{by_name}"

    def _stored_calls(self, fn: Fn) -> list[tuple[Fn, int, str]]:
        """Calls of ``fn`` through a callable stored for later: ``fn`` is handed to a project
        function (``conn.set_handler(self.on_message)``), which keeps it in an attribute
        (``self._handler = handler``, ``self._handlers.append(handler)``); the calls of that
        attribute (``self._handler(msg)``, ``for h in self._handlers: await h(e)``) call it."""
        name = fn.facts.name
        self.tracker.note(ARG_KEY + name)
        out: list[tuple[Fn, int, str]] = []
        for mod in self.summaries.mentions().args.get(name, ()):
            out.extend(self._stored_in(fn, mod))
        return out

    def _stored_in(self, fn: Fn, mod: str) -> list[tuple[Fn, int, str]]:
        """:meth:`_stored_calls` of the callables ``fn`` handed on in one module."""
        key = (fn.fq, mod)
        found = self._stored_memo.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._stored_memo.start(key, [])
        out: list[tuple[Fn, int, str]] = []
        m = self.index.modules.get(mod)
        if m is not None and not test_module(m):
            for g, e, pos_i, kw, r in self._arg_sites_of(fn.facts.name, m).get(fn.fq, ()):
                ctx = self.summaries.ctx(g)
                for t, _tctx in self.summaries.targets(ctx, e):
                    param = param_for(t, pos_i, kw, e.args)
                    if not param:
                        continue
                    for c, i, via in self._param_calls(t, param):
                        if c is t and via == param:
                            # ``self.sync(self._gather)``, and ``sync`` calls its ``func``: the
                            # call runs within this one, on this caller's object, not on
                            # whatever other callers of ``sync`` hand it
                            gi = next(j for j, x in enumerate(g.facts.events) if x is e)
                            out.append((g, gi, f"{PASSED}{short(t)}\x00{r}"))
                        else:
                            out.append((c, i, via))
        if not out and m is not None:
            return self._stored_memo.finish_as(key, out, mod, f"{NO_STORED_KEY}{fn.fq}\x00{mod}")
        return self._stored_memo.finish(key, out)

    def _arg_sites_of(
        self, name: str, m: ModuleFacts
    ) -> dict[str, list[tuple[Fn, Event, int, str, str]]]:
        """The module's call arguments that are a plain ref of the last name ``name``
        (:meth:`_module_args`), by the function each names (``Index.eval``): evaluated once
        for every function of that name :meth:`_stored_in` is asked about."""
        key = (name, m.module)
        found = self._arg_memo.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        out: dict[str, list[tuple[Fn, Event, int, str, str]]] = {}
        self._arg_memo.start(key, out)
        for site in self._module_args(m).get(name, ()):
            val = self.index.eval(self.summaries.ctx(site[0]), site[4])
            if isinstance(val, FuncVal):
                out.setdefault(val.fq, []).append(site)
        return self._arg_memo.finish(key, out)

    def _module_args(self, m: ModuleFacts) -> dict[str, list[tuple[Fn, Event, int, str, str]]]:
        """Name -> the module's call arguments that are a plain ref of that last name
        (function, call event, argument index, keyword, ref), in the order of the functions'
        names: one pass over the module's bodies, kept; every use notes the module."""
        found = self._args_by_module.get(m.module)
        if found is not None and found[0] is m:
            self.tracker.note(m.module)
            return found[1]
        table: dict[str, list[tuple[Fn, Event, int, str, str]]] = {}
        call = K.CALL
        not_kw = ("lambda:", "partial:")
        for q in sorted(m.functions):
            g = self.index.functions.get(f"{m.module}.{q}")
            if g is None or g.module is not m:
                continue
            for e in g.facts.events:
                if e.kind != call or not e.args:
                    continue
                for pos_i, a in enumerate(e.args):
                    kw, eq, r = a.partition("=")
                    # (``is_kw``, written out: this runs for every argument of the project)
                    if not (eq and (kw.isidentifier() or kw == "**") and not a.startswith(not_kw)):
                        kw, r = "", a
                    if not r or "(" in r:
                        continue
                    table.setdefault(r.rpartition(".")[2], []).append((g, e, pos_i, kw, r))
        self.tracker.note(m.module)
        self._args_by_module[m.module] = (m, table)
        return table

    def _param_calls(self, t: Fn, param: str) -> list[tuple[Fn, int, str]]:
        """Where the callable passed as ``param`` of ``t`` is called: in ``t`` itself, or, if
        ``t`` stores it on ``self``, wherever the class calls that attribute."""
        out: list[tuple[Fn, int, str]] = []
        for i, e in enumerate(t.facts.events):
            if e.kind == K.CALL and e.ref == param:
                out.append((t, i, param))
        cls_fq = self.index.method_fn(t)
        if cls_fq is None:
            return out
        for e in t.facts.events:
            attr = ""
            if e.kind == K.WRITE and e.value is not None and e.value.kind == "name":
                if e.value.ref == param and e.ref.startswith("self.") and e.ref.count(".") == 1:
                    attr = e.ref
            elif e.kind == K.CALL and e.ref.startswith("self.") and e.ref.count(".") == 2:
                if last_seg(e.ref) in REGISTER_METHODS and any(
                    (a.partition("=")[2] if is_kw(a) else a) == param for a in e.args
                ):
                    attr = e.ref.rsplit(".", 1)[0]
            elif (
                e.kind == K.SETITEM
                and e.value is not None
                and e.value.ref == param
                and e.ref.startswith("self.")
                and e.ref.count(".") == 1
            ):
                attr = e.ref
            if attr:
                out.extend(self._attr_calls(cls_fq, attr))
        return out

    def _attr_calls(self, cls_fq: str, attr: str) -> list[tuple[Fn, int, str]]:
        """Calls, in the methods of the class and its subclasses, of what ``self.<attr>``
        holds: ``self.x(...)``, ``self.x[k](...)``, or a local taken from it
        (``h = self.x.get(k)``, ``for h in self.x:``) then called. Memoized: the search for
        strong evidence asks the same attribute again for every caller it goes on to."""
        key = (cls_fq, attr)
        found = self._attr_call_memo.get(key)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._attr_call_memo.start(key, [])
        return self._attr_call_memo.finish(key, self._find_attr_calls(cls_fq, attr))

    def _find_attr_calls(self, cls_fq: str, attr: str) -> list[tuple[Fn, int, str]]:
        out: list[tuple[Fn, int, str]] = []
        classes = [cls_fq, *self.index.subclasses(cls_fq)]
        prefix = (attr + ".", attr + "[")
        for c in classes:
            ci = self.index.classes.get(c)
            if ci is None:
                continue
            for q in sorted(ci.facts.methods.values()):
                m = self.index.functions.get(f"{ci.module.module}.{q}")
                if m is None:
                    continue
                for fnq in [m.facts.qualname, *self.index.nested_qualnames(m, NESTED_LIMIT)]:
                    g = (
                        m
                        if fnq == m.facts.qualname
                        else self.index.functions.get(f"{m.module.module}.{fnq}")
                    )
                    if g is None:
                        continue
                    holders = {attr}
                    for e in g.facts.events:
                        if (
                            e.kind == K.LOCAL
                            and e.value is not None
                            and (e.value.ref == attr or e.value.ref.startswith(prefix))
                        ):
                            holders.add(e.ref)
                    for i, e in enumerate(g.facts.events):
                        if e.kind != K.CALL:
                            continue
                        r = e.ref
                        if r in holders or (r.startswith(attr + "[]") and r.count(".") == 1):
                            out.append((g, i, attr))
        return out

    # -- what runs in one task only ------------------------------------------------------
    def single_consumer(self, fn: Fn) -> bool:
        """Is ``fn`` on an async iterator's iteration path (``__anext__`` and what it calls on
        ``self``)? That path belongs to the one ``async for`` driving the iterator. (Other
        methods of an iterable class, a connection's ``send`` say, are called from anywhere.)"""
        cls_fq = self.index.method_fn(fn)
        if cls_fq is None:
            return False
        starts = [
            m
            for m in (
                self.index.find_method(cls_fq, "__anext__"),
                self.index.find_method(cls_fq, "__aiter__"),
            )
            if m is not None and m.facts.is_async
        ]
        seen = {m.fq for m in starts}
        todo = list(starts)
        while todo:
            cur = todo.pop()
            if cur.fq == fn.fq:
                return True
            for e in cur.facts.events:
                if e.kind == K.CALL and e.ref.startswith("self.") and e.ref.count(".") == 1:
                    nxt = self.index.find_method(cls_fq, e.ref[5:])
                    if nxt is not None and nxt.fq not in seen:
                        seen.add(nxt.fq)
                        todo.append(nxt)
        return False

    def single_task(self, fn: Fn, depth: int = 0) -> bool:
        """Does ``fn`` only ever run in one task at a time? True when every call of it in the
        project is a single start (``self._t = create_task(self._watch())``, not in a loop or a
        ``gather``) or a call from a method that itself runs in one task only (a dispatch loop
        started once). A function nobody in the project calls may be called by anyone: False."""
        name = fn.facts.name
        if not name.startswith("_") or name.startswith("__"):
            return False  # public: callers outside the project are not in view
        key = (fn.fq, -1 - depth)
        found = self._evidence.get(key)
        if found is not MISS:
            return found is not None
        self._evidence.start(key, None)  # recursion guard: a cycle proves nothing
        sites = self._call_sites(fn)
        ok = bool(sites) and depth < 3
        for caller, ev, single_spawn in sites if ok else []:
            if single_spawn and (
                not caller.facts.is_async
                or caller.facts.name in self.lifecycle
                or _replaces_previous(caller, ev)
            ):
                # started once, by set-up code (``start``, ``__init__``, ...), or after the
                # previous task was cancelled and awaited: one at a time
                continue
            if caller.fq == fn.fq or not self.single_task(caller, depth + 1):
                ok = False
                break
        self._evidence.finish(
            key, Step(fn.module.path, fn.facts.pos, "single task") if ok else None
        )
        return ok

    def _call_sites(self, fn: Fn) -> list[tuple[Fn, Event, bool]]:
        """(caller, call event, is a single start of a task) for every call that reaches ``fn``."""
        name = fn.facts.name
        out: list[tuple[Fn, Event, bool]] = []
        for caller, i in self.summaries.calls_by_name(name):
            events = caller.facts.events
            e = events[i]
            ctx = self.summaries.ctx(caller)
            if last_seg(e.ref) == name and any(
                t.fq == fn.fq for t, _c in self.summaries.targets(ctx, e)
            ):
                spawns = [
                    s
                    for s in events
                    if s.kind == K.CALL
                    and s is not e
                    and _is_spawner(s.ref)
                    and inside(e.pos, s.pos)
                ]
                single = (
                    bool(spawns)
                    and all(last_seg(s.ref) not in MANY_SPAWNERS and not s.repeated for s in spawns)
                    and not e.repeated
                )
                if spawns and not single:
                    return [(caller, e, False), (caller, e, False)]  # started many times
                out.append((caller, e, single))
            elif _is_spawner(e.ref):  # started by reference: ``tg.start_soon(self._loop)``
                for a in e.args:
                    ref = a.partition("=")[2] if is_kw(a) else a
                    if not ref or "(" in ref or last_seg(ref) != name:
                        continue
                    val = self.index.eval(ctx, ref)
                    if isinstance(val, FuncVal) and val.fq == fn.fq:
                        once = last_seg(e.ref) not in MANY_SPAWNERS and not e.repeated
                        if not once:
                            return [(caller, e, False), (caller, e, False)]
                        out.append((caller, e, True))
        return out

    def per_call_class(self, cls_fq: str, public: bool = False) -> bool:
        """Is every instance of the class made per call and owned by that call? True for a
        private class (``_RunResources``: nobody outside the project makes one) without
        subclasses, never instantiated at module level, and instantiated at least once, each
        time into a local that the function never stores into ``self``/``cls``/module state.
        Such an object belongs to the task that made it; only evidence of concurrent use
        (``gather(res.enter(a), res.enter(b))``) shares it. ``public``: a public class too,
        whose every instance the project makes that way (what the project's own code does
        with it; a user of a library may keep one)."""
        key = ("+" if public else "") + cls_fq
        found = self._per_call.get(key)
        if found is MISS:
            self._per_call.start(key, False)
            found = self._per_call.finish(key, self._per_call_class(cls_fq, public))
        return found  # type: ignore[no-any-return]

    def _kept_types(self, which: str) -> frozenset[str]:
        """The classes whose instances live beyond a call, once for the project (a scan per
        class asked grew with the product of classes and modules): ``"globals"``, the types of
        module variables (every module's variables read); ``"attrs"``, the types of the
        attributes classes keep, declared dataclass fields aside (a class added that holds
        one changes the answer). Memoized, so a hit replays the reads."""
        found = self._kept.get(which)
        if found is not MISS:
            return found  # type: ignore[no-any-return]
        self._kept.start(which, frozenset())
        if which == "globals":
            self.tracker.note(GLOBALS_KEY)
            out = frozenset(
                self.index.resolve(m, t)
                for m in self.index.modules.values()
                for t in m.global_types.values()
            )
        else:
            self.tracker.note(ATTR_TYPES_KEY)
            out = frozenset(
                t
                for ci in self.index.classes.values()
                for attr, t in ci.attr_types.items()
                if attr not in ci.facts.fields
            )
        return self._kept.finish(which, out)

    def _per_call_class(self, cls_fq: str, public: bool) -> bool:
        name = cls_fq.rsplit(".", 1)[-1]
        if (
            not (public or name.startswith("_"))
            or name.startswith("__")
            or self.index.subclasses(cls_fq)
        ):
            return False
        if cls_fq in self._kept_types("globals"):
            return False  # a module-level instance: shared by every importer
        if cls_fq in self._kept_types("attrs"):
            # an attribute of another class holds one: a class attribute made once
            # (``streams = _Streams()``), or ``self.x = transport`` kept by a longer-lived
            # object (an annotated dataclass field is only a declaration: its instances
            # are made, and checked, where they are made)
            return False
        made = False
        for caller, i in self.summaries.calls_by_name(name):
            e = caller.facts.events[i]
            if called_name(e.ref) != name:
                continue  # passed to a spawner by that name, not called
            if self.index.eval(self.summaries.ctx(caller), e.ref) != ClassObj(cls_fq):
                continue
            local = e.name
            if e.bind != Bind.LOCAL or not local.isidentifier():
                return False  # stored in an attribute, passed or returned as it is made
            if local in caller.facts.returns_refs or _kept(caller, local):
                return False
            made = True
        return made


def _once_guarded(caller: Fn, ev: Event) -> Step | None:
    """``if self._protocol: return`` / ``self._protocol = proto`` before any await, then the
    call: a check-then-set guard done right lets one activation of the caller through to the
    call while the attribute stays set (a ``connect`` that returns at once when connected),
    so calls that pass the guard do not overlap."""
    f = caller.facts
    ci = _index_of(f, ev)
    if ci is None or not f.is_async:
        return None
    sets: dict[str, set[int]] = {}
    clears: dict[str, set[int]] = {}
    for i, e in enumerate(f.events):
        if e.kind == K.WRITE and e.ref.startswith("self.") and e.value is not None:
            falsy = e.value.kind == "const" and e.value.ref == "falsy"
            (clears if falsy else sets).setdefault(e.ref, set()).add(i)
    for br in f.events:
        if br.kind != K.BRANCH or len(br.succ) < 2:
            continue
        for g in br.guards:
            ref, absent_s, kind, key = g.split("|")
            if kind in ("eq", "ne"):
                step = _value_once_guarded(caller, br, ref, int(absent_s), kind, key, ci)
                if step is not None:
                    return step
                continue
            if kind not in ("none", "truthy"):
                continue
            present, absent = br.succ[1 - int(absent_s)], br.succ[int(absent_s)]
            # ``if self._busy: return; self._busy = True`` (goes on while unset, sets it), or
            # ``if not self._connected: return; self._connected = False`` (goes on while set,
            # clears it): either way the first activation through flips what the check sees
            if not (ci == present or ci in reachable(f, [present])):
                start, writes, how = absent, sets.get(ref), "unset, and sets"
            elif not (ci == absent or ci in reachable(f, [absent])):
                start, writes, how = present, clears.get(ref), "set, and clears"
            else:
                continue  # the call is made either way
            if not writes or not _flipped_first(f, start, writes, ci):
                continue
            return fn_step(
                caller,
                br.pos,
                f"`{short(caller)}` {ONCE_GUARD} `{ref}` is {how} "
                "it before any await: one call at a time gets through to the call",
            )
    return None


def _flipped_first(f: FunctionFacts, start: int, writes: set[int], ci: int) -> bool:
    """From the guard's branch ``start``, does every path to the call ``ci`` pass one of
    ``writes`` (what changes what the check sees), with no await before it? Then the first
    activation through flips the state before any other task runs."""
    region = set() if start in writes else {start} | reachable(f, [start], writes)
    if ci in region:
        return False  # reached without the write first
    # (an await before the write: other tasks pass the check too)
    return not any(
        f.events[a].kind == K.AWAIT and writes & ({a} | reachable(f, [a])) for a in region
    )


def _value_once_guarded(
    caller: Fn, br: Event, ref: str, absent: int, kind: str, lit: str, ci: int
) -> Step | None:
    """A value guard done right before the call: ``if self._state == State.IDLE:`` then
    ``self._state = State.STREAMING`` before any await, then the call (``ne``: the call is
    made where the state holds the value, and leaving it answers the check); or ``if
    self._state == "connected": return``, then ``self._state = "connected"`` (``eq``: made
    where it differs, and storing the value answers it). The first activation through
    changes what the check sees, so calls that pass it do not overlap."""
    f = caller.facts
    events = f.events
    through, other = br.succ[absent], br.succ[1 - absent]
    if ci == other or ci in reachable(f, [other]):
        return None  # the call is made either way
    writes = {
        i
        for i, e in enumerate(events)
        if e.kind == K.WRITE
        and e.ref == ref
        and e.value is not None
        and e.value.literal
        and (e.value.literal == lit) == (kind == "eq")
    }
    if not writes or not _flipped_first(f, through, writes, ci):
        return None
    how = f"is not `{lit}`, and stores it" if kind == "eq" else f"is `{lit}`, and changes it"
    return fn_step(
        caller,
        br.pos,
        f"`{short(caller)}` {ONCE_GUARD} `{ref}` {how} before any await: "
        "one call at a time gets through to the call",
    )


# awaiting one of these on a task waits for that task (``shield``: unless the waiter is
# cancelled, which the waiter's own handler then deals with)
AWAIT_WRAPPERS: frozenset[str] = frozenset({"shield", "wait_for"})


def _joined_each_pass(f: FunctionFacts, spawn: Event) -> bool:
    """``while True: t = create_task(self.receive()); ...; msg = await t``: a task started in
    a loop and kept in a local that every pass awaits (itself, or through ``asyncio.shield`` or
    ``wait_for``) before the loop comes round again (or leaves it): the tasks run one after
    another. So does a pass that waits for it with others and ends what is left: ``done,
    pending = await asyncio.wait({task, guard}, return_when=FIRST_COMPLETED)``, then ``for t in
    pending: t.cancel()`` and ``await asyncio.wait(pending)`` (a stream raced against its
    watchdog, once per retry); or that waits for all of them (``await asyncio.gather(task,
    guard)``, ``asyncio.wait`` without ``return_when`` or ``timeout``). A pass that only cancels
    it, or only waits for the first of several, does not end it."""
    if not spawn.repeated or spawn.bind != Bind.LOCAL or not spawn.name:
        return False
    local = spawn.name
    idx = _index_of(f, spawn)
    if idx is None:
        return False
    events = f.events
    joins = [
        i
        for i, e in enumerate(events)
        if e.kind == K.AWAIT
        and (
            e.ref == local
            or (  # ``await asyncio.shield(task)``, ``await asyncio.wait_for(task, 5)``
                e.ref.rpartition(".")[2] in AWAIT_WRAPPERS
                and i > 0
                and events[i - 1].kind == K.CALL
                and events[i - 1].ref == e.ref
                and events[i - 1].args[:1] == (local,)
            )
            or _waits_out(f, i, local)
        )
    ]
    avoid = set(joins)
    for j in joins:
        # the join first in a ``try`` (``try: await asyncio.shield(task)``): only the await
        # raises there, not the entry or the call that wraps the task
        start = j - 1 if events[j].ref != local else j
        for t in f.tries:
            if t.first < start and all(events[k].kind == K.NOP for k in range(t.first, start)):
                avoid.update(range(t.first, j))
    if not joins:
        return False
    # from the start round to it again without a join; a test of whether the local holds a
    # task (``if gap is not None:`` around the join) is passed only on its present side while
    # the local still holds the one started (no other binding of it on the way)
    present = f"local:{local}|"
    # the ways out by an exception that do not leave the task unjoined: from the start itself
    # (a start that raises started nothing), from a binding of a name, and from a ``try``
    # whose ``finally`` joins it, up to that join (the graph sends a raise in there to the
    # handlers around it directly, but the ``finally`` runs first: ``try: await
    # self._watch() finally: gap.cancel(); await asyncio.gather(gap, ...)``)
    joined_by_raise: set[int] = {idx}
    for t in f.tries:
        if t.final_first < 0:
            continue
        inner = [j for j in joins if t.final_first <= j < t.final_last]
        if inner:
            joined_by_raise.update(range(t.first, max(inner)))
    seen: set[tuple[int, bool]] = set()
    todo = [(n, True) for n in events[idx].succ if n != events[idx].handler]
    while todo:
        node = todo.pop()
        i, held = node
        if node in seen or i in avoid:
            continue
        if i == idx:
            return False
        seen.add(node)
        e = events[i]
        if e.kind == K.LOCAL and e.ref == local:
            held = e.value is not None and e.value.kind == "call" and e.value.ref == spawn.ref
        succ = list(e.succ)
        if e.handler >= 0 and (i in joined_by_raise or e.kind == K.LOCAL):
            succ = [n for n in succ if n != e.handler]
        if held and e.kind == K.BRANCH and e.name.startswith(present) and len(succ) == 2:
            succ = [succ[1 - int(e.name[len(present) :])]]
        todo.extend((n, held) for n in succ)
    return True


def _waits_out(f: FunctionFacts, i: int, local: str) -> bool:
    """Is the await at ``i`` one of ``asyncio.gather``/``asyncio.wait`` given the task in
    ``local`` among others (``gather(task, guard)``, ``wait({task, guard})``) that ends it: a
    ``gather``, a ``wait`` for all of them (no ``return_when``, no ``timeout``), or a ``wait``
    whose pending set the function then cancels (``for t in pending: t.cancel()``) and waits
    for (``await asyncio.wait(pending)``, ``gather(*pending)``)?"""
    events = f.events
    call = events[i - 1] if i > 0 else None
    what = f.events[i].ref.rpartition(".")[2]
    if (
        call is None
        or what not in ("gather", "wait")
        or call.kind != K.CALL
        or call.ref != f.events[i].ref
        or not (
            local in call.args
            or "*" + local in call.args
            or (call.value is not None and local in call.value.names)
        )
    ):
        return False
    kws = {a.partition("=")[0] for a in call.args if is_kw(a)}
    if what == "gather" or not kws & {"return_when", "timeout"}:
        return True
    # ``done, pending = await asyncio.wait(...)``: the locals bound from it, then a cancel of
    # each pending task and an await of the set
    results = {
        e.ref
        for e in events[i + 1 : i + 4]
        if e.kind == K.LOCAL and e.value is not None and e.value.ref == call.ref
    }
    each = {  # loop variable -> what it iterates
        e.ref: e.value.ref
        for e in events
        if e.kind == K.LOCAL and e.value is not None and e.value.kind == "iter"
    }
    cancelled = {
        each[c.ref[: -len(".cancel")]]
        for c in events
        if c.kind == K.CALL and c.ref.endswith(".cancel") and c.ref[: -len(".cancel")] in each
    } & results
    return any(
        e.kind == K.CALL
        and e.bind == Bind.AWAITED
        and e.ref.rpartition(".")[2] in ("gather", "wait")
        and bool({p, "*" + p} & set(e.args))
        for e in events[i + 1 :]
        for p in cancelled
    )


def _gathered_from_locals(f: FunctionFacts, spawn: Event, once: bool = False) -> list[Event]:
    """The calls a ``gather(*futures)`` (``wait``, ``as_completed``) starts through a local
    list built before it: ``futures = [fetch(x) for x in xs]`` (the calls of the
    comprehension, made once per element) or ``futures.append(fetch(x))`` in a loop. Each is
    made again per element (``repeated``): the same coroutine function run in several tasks.
    ``once``: also the calls appended one by one (``tasks.append(self.update_a())``)."""
    names = {a.lstrip("*") for a in spawn.args if not is_kw(a)}
    names = {n for n in names if n.isidentifier()}
    if not names:
        return []
    events = f.events
    out: list[Event] = []
    for i, e in enumerate(events):
        if e is spawn:
            break
        if e.kind == K.LOCAL and e.ref in names:
            if e.value is not None and e.value.kind == "call" and _is_spawner(e.value.ref):
                continue  # a task already started (``gap = create_task(self._fill())``),
                # judged at its start; gathering it starts nothing
            j = i - 1  # the calls of the comprehension come right before its assignment
            while j >= 0 and events[j].kind == K.CALL:
                if events[j].repeated and events[j].bind in (Bind.NONE, Bind.ARG):
                    out.append(events[j])
                j -= 1
        elif e.kind == K.CALL and (e.repeated or once):
            recv, _, method = e.ref.rpartition(".")
            if recv in names and method in ("append", "extend", "add"):
                out.extend(
                    x
                    for x in events[max(0, i - 8) : i]
                    if x.kind == K.CALL and x.bind == Bind.ARG and inside(x.pos, e.pos)
                )
    return out


def _applied_to(f: FunctionFacts, e: Event) -> Event | None:
    """The call that applies what the call ``e`` returns to one function (``deco(...)(fn)``:
    a decorator factory's decorator), if ``e`` is such a factory call."""
    for x in f.events:
        if (
            x.kind == K.CALL
            and x.ref == e.ref + "()"
            and x.pos[:2] == e.pos[:2]
            and len(x.args) == 1
            and not is_kw(x.args[0])
            and "(" not in x.args[0]
        ):
            return x
    return None


def _per_element(f: FunctionFacts, call: Event) -> bool:
    """Is the receiver of ``call`` (``shard.start()``) a ``for`` loop's variable, bound nowhere
    else in ``f``: each spawn of the loop runs the method on another element, once per object."""
    segs = split_ref(call.ref)
    if len(segs) != 2 or not segs[0].isidentifier():
        return False
    binds = [e for e in f.events if e.kind == K.LOCAL and e.ref == segs[0]]
    if not binds:
        return False
    if all(e.value is not None and e.value.kind in ("iter", "comp") for e in binds):
        return True
    # a comprehension's own variable, whatever the name is bound to elsewhere in ``f``
    # (``gather(*[sub.stop() for sub in subs])`` after ``sub = self.subs.pop(i)``): its
    # ``for`` lies within the call that holds ``call``
    outer = [
        e.pos for e in f.events if e.kind == K.CALL and e is not call and inside(call.pos, e.pos)
    ]
    return any(
        b.value is not None and b.value.kind == "comp" and any(inside(b.pos, o) for o in outer)
        for b in binds
    )


def _index_of(f: FunctionFacts, ev: Event) -> int | None:
    """The index of the event ``ev`` (this very object) among ``f``'s events."""
    return next((i for i, e in enumerate(f.events) if e is ev), None)


def single_flight(f: FunctionFacts) -> tuple[int, int] | None:
    """(check, claim): ``if self._running: return`` (or ``raise``), then ``self._running =
    True`` on every path before the function's first await. The check and the claim run with
    no suspension between them, so while one run is in progress every other run turns back
    at the check: at most one run at a time (until something clears the flag)."""
    events = f.events
    if any(e.kind == K.CALL and called_name(e.ref) in SPAWNERS for e in events):
        return None  # a task it starts may outlive its run, and overlap the next run's
    for b, br in enumerate(events):
        if br.kind != K.BRANCH or len(br.succ) != 2 or len(br.guards) != 1:
            continue
        ref, absent, kind = [*br.guards[0].split("|"), "", ""][:3]
        if kind != "truthy" or not ref.startswith(("self.", "global:")) or "[" in ref:
            continue
        present, other = (br.succ[0], br.succ[1]) if absent == "1" else (br.succ[1], br.succ[0])
        turned = {present} | reachable(f, [present])
        if any(events[i].kind in (K.AWAIT, K.YIELD, K.WRITE) for i in turned):
            continue  # the flag's branch goes on into the work (or changes state first)
        claims = {
            i
            for i, e in enumerate(events)
            if e.kind == K.WRITE
            and e.ref == ref
            and e.value is not None
            and e.value.kind == "const"
            and e.value.ref == "truthy"
        }
        if not claims:
            continue
        ahead = {other} | reachable(f, [other], avoid=claims)
        if any(events[i].kind in (K.AWAIT, K.YIELD) for i in ahead):
            continue  # a path reaches an await before it claims the flag
        made = sorted(claims & ({other} | reachable(f, [other])))
        if not made:
            continue  # the flag is set elsewhere (before the check), not claimed past it
        after = reachable(f, made)
        if not any(events[i].kind in (K.AWAIT, K.YIELD) for i in after):
            continue  # it never suspends holding the flag: nothing to serialize
        return b, made[0]
    return None


def flight_wrapper(f: FunctionFacts, wrapped: set[str]) -> tuple[str, int] | None:
    """(container, claim) when the wrapper ``f`` calls the function it wraps (a plain name
    among ``wrapped``: a parameter of the decorator) only past ``if <first param> in
    <container>:`` whose branch where it is present never reaches that call (``return await
    futures[self]``), and on every path from the other branch adds the parameter to the
    container (``being_called.add(self)``, ``being_called[self] = ...``) before any await or
    the call. The check and the claim run with no suspension between them: while one call on
    an object runs, every other call on it turns back. None otherwise."""
    events = f.events
    if not f.params or f.params[0].kind != "pos":
        return None
    key = f.params[0].name
    bound = {p.name for p in f.params} | {e.ref for e in events if e.kind == K.LOCAL}
    calls = {
        i
        for i, e in enumerate(events)
        if e.kind == K.CALL and e.ref in wrapped and e.ref not in bound
    }
    if not calls:
        return None
    for b, br in enumerate(events):
        if br.kind != K.BRANCH or len(br.succ) != 2 or not br.name.startswith("member:"):
            continue
        box, param, absent = br.name.removeprefix("member:").split("|")
        if param != key:
            continue
        other = br.succ[int(absent)]
        present = br.succ[1 - int(absent)]
        if calls & ({present} | reachable(f, [present])):
            continue  # the branch where a call is running goes on into the wrapped call
        if calls & reachable(f, [0], avoid={b}):
            continue  # a path to the call passes no check
        claims = {
            i
            for i, e in enumerate(events)
            if (e.kind == K.CALL and e.ref == f"{box}.add" and e.args[:1] == (key,))
            or (e.kind == K.SETITEM and e.ref == box and e.args[:1] == (key,))
        }
        ahead = {other} | reachable(f, [other], avoid=claims)
        if calls & ahead or any(events[i].kind in (K.AWAIT, K.YIELD) for i in ahead):
            continue  # a path reaches an await or the call before it claims the object
        made = sorted(claims & ({other} | reachable(f, [other])))
        if made:
            return box, made[0]
    return None


def _claimed_flag(fn: Fn, scope: str) -> Step | None:
    """The step that shows ``fn`` runs once at a time (:func:`single_flight`), on one object
    for a flag on ``self``, in the whole process for a module variable."""
    f = fn.facts
    if not f.is_async:
        return None
    found = single_flight(f)
    if found is None:
        return None
    b, claim = found
    ref = f.events[b].guards[0].split("|", 1)[0]
    if ref.startswith("self.") and scope != OBJECT:
        return None  # another object's run has its own flag
    name = ref.removeprefix("global:")
    line = f.events[claim].pos[0]
    return fn_step(
        fn,
        at(f.events[b]),
        f"`{short(fn)}` turns back here while `{name}` is set, and sets it (line {line}) "
        "before its first await: one run at a time",
    )


def _lifespan_only(caller: Fn, ev: Event) -> bool:
    """Does ``caller`` (an ASGI application's ``__call__``, or the method it dispatches a scope
    to) make the call ``ev`` only past ``if scope["type"] == "lifespan":`` (or ``case
    "lifespan":`` of a ``match`` on it)? A server sends one lifespan scope per application
    (start-up, then shut-down), not one per request: the call is made once, not for
    concurrent requests."""
    f = caller.facts
    events = f.events
    ci = _index_of(f, ev)
    if ci is None:
        return False
    for br in events:
        if br.kind == K.BRANCH and br.name == "if:lifespan" and len(br.succ) == 2:
            inside_ = br.succ[0]
            if ci != inside_ and ci not in reachable(f, [inside_]):
                continue
            if ci not in reachable(f, [0], avoid=(inside_,)):
                return True
    return False


def _single_slot(f: FunctionFacts, spawn: Event) -> bool:
    """``if self._task is None or self._task.done(): self._task = create_task(self._run())``:
    a task kept in an attribute of the object and started only past a check that the
    attribute holds none, with no await between the check and the start (the store follows
    the start at once, before the new task first runs). The slot holds one task at a time, so
    this start never adds a second one beside a live one: on one object, no several tasks at
    once, even in a loop (a watchdog that restarts a crashed task)."""
    if spawn.bind != Bind.ATTR or not spawn.name.startswith("self."):
        return False
    events = f.events
    si = _index_of(f, spawn)
    if si is None:
        return False
    slot = spawn.name
    for b, br in enumerate(events):
        if br.kind != K.BRANCH or len(br.succ) < 2:
            continue
        for g in br.guards:
            ref, absent_s, kind, _key = g.split("|")
            if ref != slot or kind not in ("none", "truthy"):
                continue
            entry = br.succ[int(absent_s)]
            # every way to the start passes the branch's empty side...
            if si in reachable(f, [0], avoid=(entry,)):
                continue
            # ...and no await lies between it and the start
            region = {entry} | reachable(f, [entry], avoid=(b,))
            if any(
                events[a].kind == K.AWAIT and si in reachable(f, [a], avoid=(b,)) for a in region
            ):
                continue
            return True
    return False


# a call so bound runs what it is handed within its own extent (``_contribution``)
_DRIVEN = (Bind.AWAITED, Bind.RETURNED)


def _is_spawner(ref: str) -> bool:
    return bool(ref) and last_seg(ref) in SPAWNERS


def _bound_method_ref(arg: str) -> bool:
    """``obj.method`` as an argument (possibly ``name=obj.method``): a callback candidate."""
    ref = arg.partition("=")[2] if is_kw(arg) else arg
    return (
        bool(ref)
        and "." in ref
        and "(" not in ref
        and not ref.startswith(("lambda:", "partial:", "*", "global:"))
    )


def _relation(caller: Fn, ref: str, index: Index) -> str:
    """How the receiver of a call ``ref`` made in ``caller`` relates to the caller's own
    (:meth:`Concurrency._callers`)."""
    segs = split_ref(ref)
    head = segs[0] if segs else ""
    if len(segs) == 1:
        # a closure of the caller (it shares the caller's object), a method of the caller's
        # object got by name (``getattr(self, f"_tool_{k}")``), or a module function
        if index.nested_named(caller, head) is not None or dynamic_prefix(caller.facts, head):
            return "self"
        return "global"
    if head == "self" and _instance_method(caller, index):
        return "self" if len(segs) == 2 else "attr"
    if head == "cls" or head.startswith("global:"):
        return "global"
    m = caller.module
    if (head in m.imports or head in m.global_vars or head in m.classes) and (
        head in caller.facts.globals_declared or not _binds(caller.facts, head)
    ):
        # (a name the function binds itself is its own local, whatever the module holds
        # under that name: ``agent = SpeechToSpeechAgent(...)`` beside ``from .agent import
        # agent``)
        return "global"
    if cell_owner(caller, head, index) is not None:
        return "cell"
    return "local"


def _cell_owner_of(caller: Fn, ev: Event, index: Index) -> Fn | None:
    """:func:`cell_owner` of the receiver of a call (or of a spawner's argument)."""
    for r in (ev.ref, *(a.partition("=")[2] if is_kw(a) else a for a in ev.args)):
        segs = split_ref(r)
        if len(segs) >= 2 and (owner := cell_owner(caller, segs[0], index)) is not None:
            return owner
    return None


def _binds(f: FunctionFacts, name: str) -> bool:
    """Does the function bind ``name`` itself: a parameter, or a local it assigns?"""
    return any(p.name == name for p in f.params) or any(
        e.kind == K.LOCAL and e.ref == name for e in f.events
    )


def cell_owner(fn: Fn, name: str, index: Index) -> Fn | None:
    """The enclosing function whose variable ``name`` a closure ``fn`` uses without binding it
    (``dispatcher = Dispatcher(runtime)`` in ``build_server``, then ``await
    dispatcher.dispatch(...)`` in the handler it registers): one object for every run of the
    closures one call of the owner makes. None for a name ``fn`` binds, or no enclosing
    function binds."""
    f = fn.facts
    if f.parent is None or _binds(f, name):
        return None
    cur = index.functions.get(f"{fn.module.module}.{f.parent}")
    while cur is not None:
        if _binds(cur.facts, name):
            return cur
        parent = cur.facts.parent
        cur = index.functions.get(f"{cur.module.module}.{parent}") if parent else None
    return None


def param_for(t: Fn, arg_index: int, kw: str, args: tuple[str, ...]) -> str:
    """The parameter of ``t`` that argument ``arg_index`` of a call (keyword ``kw``) binds."""
    params = t.facts.params
    if kw:
        return kw if any(p.name == kw for p in params) else ""
    positional = [p for p in params if p.kind == "pos"]
    if t.facts.cls is not None and t.facts.parent is None:
        decos = {d.rsplit(".", 1)[-1] for d in t.facts.decorators}
        if "staticmethod" not in decos and positional:
            positional = positional[1:]
    idx = sum(1 for a in args[:arg_index] if not is_kw(a))
    return positional[idx].name if idx < len(positional) else ""


def _instance_method(fn: Fn, index: Index) -> bool:
    """Is ``self`` in ``fn`` the receiver (an instance method, or a function nested in one)?
    In a classmethod factory ``self = cls(...)`` is a local."""
    cur: Fn | None = fn
    while cur is not None and cur.facts.parent is not None:
        cur = index.functions.get(f"{cur.module.module}.{cur.facts.parent}")
    if cur is None or cur.facts.cls is None:
        return False
    decos = {d.rsplit(".", 1)[-1] for d in cur.facts.decorators}
    return not decos & {"classmethod", "staticmethod"}


def _kept(fn: Fn, local: str) -> bool:
    """Does ``fn`` keep what its local ``local`` holds in long-lived state: stored into
    ``self``/``cls``/module state, or handed to a method of such an object
    (``self._live.append(res)``)?"""
    for w in fn.facts.events:
        if (
            w.kind in (K.WRITE, K.SETITEM)
            and w.value is not None
            and local in w.value.names
            and w.ref.startswith(("self.", "cls.", "global:"))
        ):
            return True
        if (
            w.kind == K.CALL
            and w.ref.startswith(("self.", "cls.", "global:"))
            and any(a.partition("=")[2 if is_kw(a) else 0] == local for a in w.args)
        ):
            return True
    return False


def _replaces_previous(fn: Fn, ev: Event) -> bool:
    """The task started by the spawn around ``ev`` is kept in an attribute
    (``self._task = create_task(...)``) whose previous task ``fn`` cancels and awaits first
    (``self._task.cancel()``, ``await self._task``): a chain of tasks, one at a time."""
    events = fn.facts.events
    spawn = next(
        (
            s
            for s in events
            if s.kind == K.CALL and s is not ev and _is_spawner(s.ref) and inside(ev.pos, s.pos)
        ),
        None,
    )
    if spawn is None or spawn.bind != Bind.ATTR or not spawn.name.startswith("self."):
        return False
    attr = spawn.name
    cancelled = any(e.kind == K.CALL and e.ref == f"{attr}.cancel" for e in events)
    awaited = any(
        (e.kind == K.AWAIT and e.ref == attr)
        or (e.kind == K.CALL and _is_spawner(e.ref) and attr in e.args)
        or (e.kind == K.CALL and e.ref.endswith("wait_for") and attr in e.args)
        for e in events
    )
    return cancelled and awaited


def test_module(m: ModuleFacts) -> bool:
    """A module of a test suite, by the names pytest and unittest collect: ``test_*.py``,
    ``*_test.py``, ``conftest.py`` (a directory's name says less: helpers of a test suite and
    fixtures of an analyzer live in ``tests/`` too)."""
    return _test_path(m.path)


@functools.lru_cache(maxsize=65536)
def _test_path(path: str) -> bool:
    # (asked for every module a search by name goes through, again for each function)
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def _twin_start(f: FunctionFacts, s: Event, ev: Event) -> Event | None:
    """The spawner call that starts ``ev``'s function a second time on a path from ``s`` (or
    ``s``'s start on a path from it): another ``create_task``-like call, itself run once,
    around a call of the same ref (:func:`_second_start`); the later spawner, or None."""
    events = f.events
    for s2 in events:
        if (
            s2 is s
            or s2.kind != K.CALL
            or not _is_spawner(s2.ref)
            or last_seg(s2.ref) in MANY_SPAWNERS
            or s2.repeated
        ):
            continue
        other = next(
            (
                x
                for x in events
                if x is not ev and x.kind == K.CALL and x.ref == ev.ref and inside(x.pos, s2.pos)
            ),
            None,
        )
        if other is None or other.repeated:
            continue
        second = _second_start(f, [ev.pos, other.pos])
        if second is None:
            continue
        first, later = (s, s2) if second == other.pos else (s2, s)
        if not _joined_before(f, first, later):
            return later
    return None


def _joined_before(f: FunctionFacts, first: Event, later: Event) -> bool:
    """Is the task the spawner call ``first`` starts awaited on every path to ``later``
    (``await create_task(...)``; ``t = create_task(...)`` ... ``await t`` or ``await
    gather(t, ...)``)? Then the two never run at once."""
    if first.bind == Bind.AWAITED:
        return True
    if first.bind != Bind.LOCAL or not first.name.isidentifier():
        return False
    events = f.events
    i, j = _index_of(f, first), _index_of(f, later)
    if i is None or j is None:
        return False
    name = first.name
    joins = {
        k
        for k, e in enumerate(events)
        if (e.kind == K.AWAIT and e.ref == name)
        or (e.kind == K.CALL and e.bind == Bind.AWAITED and name in e.args)
    }
    return bool(joins) and j not in reachable(f, [i], avoid=joins)


def _second_start(
    f: FunctionFacts, starts: list[Pos], spawners: dict[Pos, Event] | None = None
) -> Pos | None:
    """Of the start events at ``starts`` (positions of the spawned calls), one reachable from
    another on a path of the function: the later start, or None. With ``spawners`` (the
    spawner call of each start), not one whose earlier task is awaited on the way
    (:func:`_joined_before`)."""
    index = {e.pos: i for i, e in enumerate(f.events) if e.kind == K.CALL and e.pos in starts}
    for a in starts:
        i = index.get(a)
        if i is None:
            continue
        seen: set[int] = set()
        todo = list(f.events[i].succ)
        while todo:
            j = todo.pop()
            if j in seen:
                continue
            seen.add(j)
            e = f.events[j]
            if (
                e.kind == K.CALL
                and e.pos in starts
                and e.pos != a
                and (spawners is None or not _joined_before(f, spawners[a], spawners[e.pos]))
            ):
                return e.pos
            todo.extend(e.succ)
    return None


# what runs an event loop to the end of a coroutine: a program's ``main``
_LOOP_RUNNERS = frozenset({"asyncio.run", "anyio.run", "trio.run", "uvloop.run"})


def _runs_its_own_loop(module: ModuleFacts) -> bool:
    """Is the module a program: one of its module-level functions runs an event loop
    (``asyncio.run(async_main())``, ``loop.run_until_complete(...)``)? Its public coroutines
    are then the program's parts (a CLI's commands, run one per process), not an API that
    callers elsewhere may run in several tasks at once. (A method that runs the loop, a
    client's ``run()``, does not make its module a program.)"""
    for f in module.functions.values():
        if f.cls is not None or f.parent is not None or f.is_async:
            continue
        for ev in f.events:
            if ev.kind != K.CALL or not ev.ref:
                continue
            head, dot, rest = ev.ref.partition(".")
            full = module.imports.get(head, head) + dot + rest
            if full in _LOOP_RUNNERS or full.endswith(".run_until_complete"):
                return True
    return False
