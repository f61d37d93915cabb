"""The built-in action types: their parameters and the events they return.

This is data shared by the checker (which reports unknown types, missing parameters, emitted
events that no transition handles, claimed jobs and failures that would strand a worker) and
the worker runtime (which implements the actions and takes their default event names from
here: ``default_event``, ``DEFAULT_SENT_EVENT``). It imports nothing from either side.

The parameter names and default events follow ``statemachine-engine`` so its configs run
unchanged; see ``docs/actions.md``. ``YAML_SUFFIXES``, what machine files are named, is here
for the same reason: the checker and ``smc run`` both need it, and this module is neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

#: The suffixes of machine files: what the checker collects from a directory, and what
#: ``smc run`` compiles before running (any other target is a generated class).
YAML_SUFFIXES = (".yaml", ".yml")
#: What ``smc run`` compiles before running: machine files, and SCXML documents (read by
#: ``smc import``'s importer; a directory is searched for machine files only).
COMPILED_SUFFIXES = (*YAML_SUFFIXES, ".scxml")

#: Keys any action may carry besides its own parameters.
COMMON_KEYS = frozenset({"type", "description", "params", "repeatable", "run_policy"})

#: Parameters whose value names an event (besides ``error_mappings``, a map of exit code to
#: event). A user action may use any of them too.
EVENT_PARAMS = (
    "success",
    "error",
    "failure",
    "empty",
    "already_claimed",
    "pending",
    "timeout_event",
)


@dataclass(frozen=True)
class ActionSpec:
    """What the checker and the runtime know about one built-in action type."""

    type: str
    summary: str
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    #: event parameter -> the event returned when the parameter is not given (None: none).
    events: Mapping[str, str | None] = field(default_factory=dict)
    #: events the action may return whatever its parameters say.
    fixed_events: tuple[str, ...] = ()
    #: alternative spellings accepted for a parameter (alias -> canonical name).
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: numeric parameters (seconds) -> True when the value must be more than 0, False when 0
    #: will do: a literal value the runtime cannot take is an error (SMC035), not a failure
    #: of every run (``sleep`` with ``duration: soon``) or a loop that spins (``poll_interval:
    #: 0``). A value with a ``{placeholder}`` is known only at run time.
    numbers: Mapping[str, bool] = field(default_factory=dict)
    #: for an action that claims a job: the event it returns when it has claimed one, as the
    #: name of an event parameter (``success``) or a fixed event (``new_job``).
    claims: str | None = None
    #: True when the action returns its error event for a condition met at run time (a
    #: command that fails, a job whose lease was lost, a child that cannot start), not only
    #: when it raises because of a bad parameter: a machine must expect that event.
    fails_at_run_time: bool = False

    @property
    def parameters(self) -> frozenset[str]:
        return frozenset(self.required) | frozenset(self.optional) | frozenset(self.events)


BUILTIN_ACTIONS: Mapping[str, ActionSpec] = {
    spec.type: spec
    for spec in (
        # With ``message`` the runtime's log; with ``label``/``expr`` a pure action the
        # generated chart class runs (its ``on_log`` hook); the checker refuses a mix.
        ActionSpec(
            "log",
            "Write a message to the machine's log (or, with label/expr, a value: statecharts).",
            optional=("message", "level", "label", "expr"),
        ),
        ActionSpec(
            "sleep",
            "Wait without blocking the machine, then return wake_up.",
            optional=("duration",),
            fixed_events=("wake_up",),
            numbers={"duration": False},
        ),
        ActionSpec(
            "activity_log",
            "Log a message and record it in the event store.",
            optional=("message", "level"),
            events={"success": None, "error": "error"},
        ),
        ActionSpec(
            "bash",
            "Run a shell command; placeholder values are passed to it as data, out of band.",
            required=("command",),
            optional=("timeout", "error_mappings", "cwd"),
            events={"success": "job_done", "error": "error"},
            numbers={"timeout": True},
            fails_at_run_time=True,
        ),
        ActionSpec(
            "check_database_queue",
            "Claim the next pending job, waiting briefly for one; new_job or no_jobs.",
            optional=("job_type", "machine_type", "wait", "poll_interval"),
            events={"error": "error"},
            numbers={"wait": False, "poll_interval": True},
            fixed_events=("new_job", "no_jobs"),
            claims="new_job",
        ),
        ActionSpec(
            "get_pending_jobs",
            "List pending jobs into the context without claiming them.",
            optional=("job_type", "machine_type", "limit", "store_as"),
            events={"success": "jobs_found", "empty": "no_jobs", "error": "error"},
        ),
        ActionSpec(
            "claim_job",
            "Claim one pending job by id.",
            required=("job_id",),
            events={"success": "claimed", "already_claimed": "already_claimed", "error": "error"},
            claims="success",
        ),
        ActionSpec(
            "complete_job",
            "Mark a job completed (default: the machine's current job).",
            optional=("job_id", "result"),
            events={"success": "success", "error": "error"},
            fails_at_run_time=True,
        ),
        ActionSpec(
            "fail_job",
            "Mark a job failed with a reason (default: the machine's current job).",
            optional=("job_id", "reason", "retry"),
            events={"success": "success", "error": "error"},
            fails_at_run_time=True,
        ),
        ActionSpec(
            "wait_for_jobs",
            "Check whether tracked jobs are finished.",
            optional=("tracked_jobs_key", "timeout", "poll_interval"),
            events={
                "success": "all_jobs_complete",
                "pending": None,
                "timeout_event": "timeout",
                "error": "error",
            },
            fixed_events=("no_jobs_tracked",),
            numbers={"timeout": False, "poll_interval": True},
        ),
        ActionSpec(
            "send_event",
            "Send an event to another machine through the event store.",
            required=("target_machine",),
            optional=("event_type", "payload", "fire_and_forget"),
            events={"success": "event_sent", "error": "error"},
            aliases={"target": "target_machine"},
        ),
        ActionSpec(
            "start_fsm",
            "Start another machine as a child process (smc run).",
            required=("yaml_path",),
            optional=("machine_name", "context_vars", "store_pid", "additional_args"),
            events={"success": "success", "error": "error"},
            fails_at_run_time=True,
        ),
        ActionSpec(
            "git_checkpoint",
            "Commit an empty Git checkpoint `<name>: <run id>` (once) in a repository.",
            required=("name",),
            optional=("repository", "run_id"),
            events={"success": "checkpointed", "error": "error"},
            fails_at_run_time=True,
        ),
        ActionSpec(
            "set_context",
            "Set a context key.",
            required=("key", "value"),
            events={"success": "success"},
        ),
        ActionSpec(
            "add_to_list",
            "Append a value to a list in the context.",
            optional=("list_key", "value"),
            events={"success": "success", "error": "error"},
            fails_at_run_time=True,
        ),
        ActionSpec(
            "pop_from_list",
            "Pop the first item of a context list.",
            optional=("list_key", "store_as"),
            events={"success": "item_popped", "empty": "list_empty"},
        ),
        # Statecharts: the event is handled before the next one from outside. The compiler
        # resolves it into the chart's dispatch table, so the runtime never runs it (the
        # action registry skips it: smc.runtime.actions.registry.COMPILED_ACTIONS).
        ActionSpec(
            "raise",
            "Queue an internal event, handled before the next event from outside (statecharts).",
            required=("event",),
            # id_location: the context field that gets a new id, which the event carries
            # (``event.send_id``; SCXML's sendid of the error a failed send raises)
            optional=("id_location",),
        ),
        # A pure action: the compiler checks its expression against the machine's data and
        # compiles it into the class (docs/language.md, Expressions); it returns no event.
        ActionSpec(
            "assign",
            "Set a context field to the value of an expression (statecharts).",
            required=("location", "expr"),
        ),
        # Pure actions too (docs/language.md, "Actions in the class").
        ActionSpec(
            "if",
            "Run the actions of the first branch whose condition holds (statecharts).",
            required=("when", "then"),
            optional=("elif", "else"),
        ),
        ActionSpec(
            "send",
            "Send an event to the machine itself, after the step or a delay (statecharts).",
            required=("event",),
            # event_expr/delay_expr: the event or the delay computed (stand for event/delay);
            # id_location: the context field that gets the send's id
            optional=("delay", "payload", "event_expr", "delay_expr", "id_location"),
        ),
    )
}

#: The event ``send_event`` sends when ``event_type`` is left out (as in statemachine-engine).
DEFAULT_SENT_EVENT = "generic_event"


def default_event(action_type: str, param: str) -> str | None:
    """The event built-in ``action_type`` returns for event parameter ``param`` when the YAML
    leaves it out (None: none). A KeyError for a type or parameter not listed above, so the
    runtime, which reads its defaults from here once when it is imported, cannot drift."""
    return BUILTIN_ACTIONS[action_type].events[param]


#: Types that existed in statemachine-engine but are gone; the checker explains them.
REMOVED_ACTIONS: Mapping[str, str] = {
    "check_events": (
        "check_events was removed from statemachine-engine: events sent by other machines are "
        "delivered to the machine by the runtime, so no action is needed to receive them "
        "(or register a user action of that name)"
    ),
}


def canonical_params(action_type: str, params: Mapping[str, object]) -> dict[str, object]:
    """Return ``params`` with aliased parameter names replaced by their canonical names."""
    spec = BUILTIN_ACTIONS.get(action_type)
    if spec is None or not spec.aliases:
        return dict(params)
    out: dict[str, object] = {}
    for key, value in params.items():
        canonical = spec.aliases.get(key, key)
        if canonical in out and canonical != key:
            continue  # the canonical spelling wins over an alias
        out[canonical] = value
    return out


EmitKind = Literal["explicit", "default", "fixed"]


def emitted_events(action_type: str, params: Mapping[str, object]) -> list[tuple[str, EmitKind]]:
    """The events an action may return, each with how it is known: written in the YAML
    (explicit), a built-in's default for an event parameter left out (default), or returned
    by the built-in whatever its parameters say (fixed). For user types only the event
    parameters written in the YAML are known."""
    spec = BUILTIN_ACTIONS.get(action_type)
    found: list[tuple[str, EmitKind]] = []
    names = spec.events if spec is not None else dict.fromkeys(EVENT_PARAMS)
    for param, default in names.items():
        value = params.get(param)
        if isinstance(value, str) and value:
            found.append((value, "explicit"))
        elif value is None and default is not None:
            found.append((default, "default"))
    mappings = params.get("error_mappings")
    if isinstance(mappings, Mapping):
        found.extend((v, "explicit") for v in mappings.values() if isinstance(v, str) and v)
    if spec is not None:
        found.extend((event, "fixed") for event in spec.fixed_events)
    unique: dict[str, EmitKind] = {}
    for event, kind in found:
        unique.setdefault(event, kind)
    return list(unique.items())


#: The ``bash`` parameter the compiler writes next to the rewritten ``command``: the paths of
#: its placeholders, in order; the runtime passes the n-th value (1-based) in the environment
#: variable ``bash_value_variable(n)`` (docs/actions.md, "Values in bash commands").
BASH_VALUES_PARAM = "command_values"


def bash_value_variable(number: int) -> str:
    """The environment variable that carries a ``bash`` command's ``number``-th value."""
    return f"SMC_VALUE_{number}"


def claim_event(action_type: str, params: Mapping[str, object]) -> str | None:
    """The event a built-in that claims a job returns when it has claimed one (None for an
    action that claims nothing, or whose claim event is switched off with an empty value)."""
    spec = BUILTIN_ACTIONS.get(action_type)
    if spec is None or spec.claims is None:
        return None
    if spec.claims in spec.fixed_events:
        return spec.claims
    value = params.get(spec.claims)
    if isinstance(value, str):
        return value or None
    return spec.events.get(spec.claims)


def failure_events(action_type: str, params: Mapping[str, object]) -> list[str]:
    """The events a built-in returns when it fails: its ``error`` event (written, else its
    default; the runtime also returns it when the action raises) and, for ``bash``, the events
    of ``error_mappings``. Empty for a user type, whose events the checker does not know."""
    spec = BUILTIN_ACTIONS.get(action_type)
    if spec is None:
        return []
    found: list[str] = []
    if "error" in params:
        value = params["error"]
        if isinstance(value, str) and value:
            found.append(value)
    elif spec.events.get("error"):
        found.append(str(spec.events["error"]))
    mappings = params.get("error_mappings")
    if isinstance(mappings, Mapping):
        found.extend(v for v in mappings.values() if isinstance(v, str) and v)
    return list(dict.fromkeys(found))
