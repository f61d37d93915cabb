"""What a generated module holds, decided from the model: a frozen ``ModulePlan``.

The plan names everything the module binds: the class, each state's and event's enum member
and method (identifiers made by ``smc.compiler.names`` and checked with
``str.isidentifier()``), the transition table, actions as plain data, timers, groups and
context maps. It holds no Python text: how the module is written is the template's
(``templates/machine.py.jinja``) and ``smc.compiler.pylayout``'s. Being plain data, the plan
is also what a module's source hash is made from (``codegen.machine_context``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from smc.compiler import commands, names
from smc.compiler.data import context_schema, payload_class, typed_default
from smc.compiler.expressions import (
    Expression,
    Names,
    Scope,
    parse_expression,
    schema_type,
    to_python,
)
from smc.compiler.model import Machine

if TYPE_CHECKING:
    from smc.compiler.chartplan import ChartPlan


class CodegenError(Exception):
    """The model cannot be compiled (the checker should have reported why)."""


@dataclass(frozen=True)
class ModuleNames:
    module: str
    class_name: str


#: Names every generated module binds at the top level besides the machine class: a class
#: with one of these names gets the suffix ``Machine`` (machine ``state`` -> ``StateMachine``).
MODULE_LEVEL_NAMES = frozenset(
    {
        "Any",
        "Callable",
        "ClassVar",
        "Event",
        "EventName",
        "Final",
        "IllegalTransition",
        "Listener",
        "Literal",
        "Mapping",
        "Never",
        "State",
        "StateName",
        "TypeAlias",
    }
)


def module_names(machine: Machine) -> ModuleNames:
    module, class_name = names.module(machine.name), names.pascal(machine.name)
    if module is None or class_name is None:
        raise CodegenError(f"machine name {machine.name!r} cannot become a Python identifier")
    if class_name in MODULE_LEVEL_NAMES or class_name in data_names(machine):
        class_name += "Machine"
    return ModuleNames(module, class_name)


def data_names(machine: Machine) -> frozenset[str]:
    """The module-level names a machine's data adds: ``Context``, ``CONTEXT_SCHEMA``, the
    payload ``TypedDict``s and the typing names they use (a machine class named like one
    gets the suffix ``Machine``, as for ``MODULE_LEVEL_NAMES``)."""
    if not machine.has_data:
        return frozenset()
    found = {"NotRequired", "TypedDict", "Unpack"}
    if machine.context:
        found.add("Context")
    for event in machine.events:
        class_name = payload_class(event.name) if event.payload_schema is not None else None
        if class_name is not None:
            found.add(class_name)
    return frozenset(found)


def _ident(convert: Any, name: str) -> str:
    ident = convert(name)
    if ident is None or not ident.isidentifier():
        raise CodegenError(f"name {name!r} cannot become a Python identifier")
    return str(ident)


def plain_data(value: Any) -> Any:
    """YAML data reduced to what a Python literal (and JSON) can hold: dates, sets... become
    strings, tuples lists, mapping keys strings."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_data(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(str(v) for v in value)
    return str(value)


# The records are NamedTuples: immutable like frozen dataclasses, but a class costs a sixth
# as much to create (every ``smc`` run imports this module, a no-op build included), a large
# machine has hundreds of rows, and the plan is hashed as JSON natively (``codegen``).


class StatePlan(NamedTuple):
    name: str  # as written in YAML: the enum value
    member: str  # the enum member
    #: the actions run on entry, in order, as plain data (``commands.action_data``).
    actions: tuple[Any, ...]
    #: where each action was written: ``path:line:col``.
    action_sources: tuple[str, ...]


class EventPlan(NamedTuple):
    name: str  # as written in YAML: the enum value
    member: str  # the enum member
    method: str  # the method that fires it
    #: context key -> dotted path in the event payload, in the order written.
    context_map: Mapping[str, str]


class TransitionPlan(NamedTuple):
    """One row of ``TRANSITIONS``, as enum members."""

    source: str
    event: str
    target: str


class TimerPlan(NamedTuple):
    seconds: float
    event: str  # the event member fired after ``seconds``


class StateTimersPlan(NamedTuple):
    """A state's ``timeout(N)`` timers, started on entering it (``state`` is its member)."""

    state: str
    timers: tuple[TimerPlan, ...]


class GroupPlan(NamedTuple):
    name: str  # as written
    states: tuple[str, ...]  # members


class ContextFieldPlan(NamedTuple):
    name: str  # as written: an identifier (SMC082), the dataclass field
    schema: Any  # the field's JSON Schema, plain data
    has_default: bool
    default: Any
    #: a computed field's initial value (``expr:``): code over ``ctx`` (the fields before
    #: it) and ``session_id``, for ``_initial_context``; None for a field with a default.
    initial: str | None = None


class PayloadPlan(NamedTuple):
    """An event that declares a payload: its ``TypedDict`` and schema."""

    event: str  # the event member
    name: str  # the event's YAML name, for the docstring
    class_name: str  # the TypedDict: ``FailedPayload``
    schema: Any  # plain data
    #: ``(field, its schema, written NotRequired[...])``, in the order written (fields are
    #: identifiers, SMC082).
    fields: tuple[tuple[str, Any, bool], ...]
    #: False when no field is required (``total=False``: no ``NotRequired`` is written).
    total: bool

    @property
    def required(self) -> tuple[str, ...]:
        """The fields the payload must hold (``required:`` among ``properties``): the
        event's method requires them, and the class checks them before a guard or action
        of its own reads the payload."""
        return tuple(name for name, _, optional in self.fields if self.total and not optional)


class DataPlan(NamedTuple):
    """The machine's typed data (``context:``, ``payload:``, ``jobs:``); None in the plan of
    a machine that declares none, whose module stays as it was."""

    context: tuple[ContextFieldPlan, ...]
    #: ``CONTEXT_SCHEMA``: the fields as one object schema; None without ``context:``.
    context_schema: Any
    payloads: tuple[PayloadPlan, ...]
    #: job type -> the schema of its data, for the types that declare one.
    jobs: tuple[tuple[str, Any], ...]

    @property
    def required_context(self) -> tuple[str, ...]:
        """The context fields without a default: the machine needs them given."""
        return tuple(
            field.name for field in self.context if not field.has_default and field.initial is None
        )

    @property
    def computed(self) -> bool:
        """Whether some field is computed (``expr:``): ``_initial_context`` makes the
        context of a machine started without one."""
        return any(field.initial is not None for field in self.context)

    @property
    def payload_members(self) -> frozenset[str]:
        return frozenset(payload.event for payload in self.payloads)

    @property
    def required_payloads(self) -> tuple[PayloadPlan, ...]:
        """The payloads with fields that must be given."""
        return tuple(payload for payload in self.payloads if payload.required)

    def required_fields(self, member: str) -> tuple[str, ...]:
        """The fields the payload of the event ``member`` must hold (none without one)."""
        return next((p.required for p in self.payloads if p.event == member), ())

    def payload_class(self, member: str) -> str:
        """The ``TypedDict`` of the payload of the event ``member``."""
        return next(p.class_name for p in self.payloads if p.event == member)

    @property
    def needs_not_required(self) -> bool:
        """Whether a ``TypedDict`` writes ``NotRequired[...]`` (some fields of a payload
        are required and others not)."""
        return any(optional for p in self.payloads for *_, optional in p.fields)


class ModulePlan(NamedTuple):
    """Everything one machine's module holds. Names ``name`` are YAML names (strings in the
    module), ``member``/``method``/``states`` are identifiers."""

    machine_name: str
    class_name: str
    style: str
    #: the input file as the header and ``ACTION_SOURCES`` name it (relative to the root).
    source_path: str
    line_length: int
    states: tuple[StatePlan, ...]
    events: tuple[EventPlan, ...]
    initial_state: str  # member
    final_states: tuple[str, ...]  # members
    transitions: tuple[TransitionPlan, ...]
    groups: tuple[GroupPlan, ...]
    timeouts: tuple[StateTimersPlan, ...]
    #: ``__all__``, sorted.
    exports: tuple[str, ...]
    #: a statechart's dispatch table, steps and hooks (``smc.compiler.chartplan``); None
    #: for a flat machine.
    chart: ChartPlan | None = None
    #: the typed data (``smc.compiler.data``); None when the machine declares none.
    data: DataPlan | None = None

    # Views the template asks for (attribute lookups in Jinja are slow per item).

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(state.name for state in self.states)

    @property
    def event_names(self) -> tuple[str, ...]:
        return tuple(event.name for event in self.events)

    @property
    def states_with_actions(self) -> tuple[StatePlan, ...]:
        return tuple(state for state in self.states if state.actions)

    @property
    def events_with_context_maps(self) -> tuple[EventPlan, ...]:
        return tuple(event for event in self.events if event.context_map)


def module_plan(machine: Machine, source_path: str, line_length: int) -> ModulePlan:
    """The plan of ``machine``'s module; ``source_path`` names the input in it."""
    state_member = {s.name: _ident(names.member, s.name) for s in machine.states}
    event_member = {e.name: _ident(names.member, e.name) for e in machine.events}
    timeout_of = {e.name: e.timeout for e in machine.events}
    timers: dict[str, list[TimerPlan]] = {}
    for edge in machine.table:
        seconds = timeout_of[edge.event]
        if seconds is not None:
            timers.setdefault(state_member[edge.source], []).append(
                TimerPlan(seconds, event_member[edge.event])
            )
    class_name = module_names(machine).class_name
    chart = None
    states = machine.states
    final_states = machine.final_states
    initial_state = state_member[machine.initial_state]
    transitions = tuple(
        TransitionPlan(
            state_member[edge.source], event_member[edge.event], state_member[edge.target]
        )
        for edge in machine.table
    )
    data = data_plan(machine, event_member)
    if machine.is_chart:
        # Imported here: a flat build never pays for the statechart core.
        from smc.compiler.chartplan import chart_plan

        chart = chart_plan(machine, state_member, event_member, source_path)
        # history pseudo-states are no State: never active, never in a configuration
        states = tuple(s for s in machine.states if s.kind != "history")
        final_states = tuple(
            s.name for s in machine.states if s.parent is None and s.name in final_states
        )
        initial_state = chart.situations[0].state
        transitions = tuple(TransitionPlan(*row) for row in chart.transitions)
    return ModulePlan(
        machine_name=machine.name,
        class_name=class_name,
        style=machine.style,
        source_path=source_path,
        line_length=line_length,
        states=tuple(
            StatePlan(
                name=s.name,
                member=state_member[s.name],
                actions=tuple(plain_data(commands.action_data(a)) for a in s.actions),
                action_sources=tuple(f"{source_path}:{a.pos.line}:{a.pos.col}" for a in s.actions),
            )
            for s in states
        ),
        events=tuple(
            EventPlan(
                name=e.name,
                member=event_member[e.name],
                method=_ident(functools.partial(names.method, chart=machine.is_chart), e.name),
                context_map=plain_data(dict(e.context_map)),
            )
            for e in machine.events
        ),
        initial_state=initial_state,
        final_states=tuple(state_member[name] for name in final_states),
        transitions=transitions,
        groups=tuple(
            GroupPlan(g.name, tuple(state_member[s] for s in g.states if s in state_member))
            for g in (() if chart else machine.groups)
        ),
        timeouts=tuple(StateTimersPlan(state, tuple(items)) for state, items in timers.items()),
        exports=tuple(
            sorted(
                [class_name, "Event", "EventName", "State", "StateName"]
                + (list(_data_exports(data)) if data else [])
            )
        ),
        chart=chart,
        data=data,
    )


def data_plan(machine: Machine, event_member: Mapping[str, str]) -> DataPlan | None:
    """The typed data of ``machine``'s module; None when it declares none."""
    if not machine.has_data:
        return None
    payloads = []
    for event in machine.events:
        schema = event.payload_schema
        if schema is None:
            continue
        properties = schema.get("properties")
        required = schema.get("required")
        needed = required if isinstance(required, list) else []
        items = list(properties.items()) if isinstance(properties, Mapping) else []
        total = not items or any(name in needed for name, _ in items)
        payloads.append(
            PayloadPlan(
                event=event_member[event.name],
                name=event.name,
                class_name=_ident(payload_class, event.name),
                schema=plain_data(schema),
                fields=tuple(
                    (str(name), plain_data(sub), total and name not in needed)
                    for name, sub in items
                ),
                total=total,
            )
        )
    return DataPlan(
        context=tuple(
            ContextFieldPlan(
                f.name,
                plain_data(f.schema),
                f.has_default,
                typed_default(plain_data(f.default), f.schema),
                _initial_code(machine, f.name),
            )
            for f in machine.context
        ),
        context_schema=plain_data(context_schema(machine)) if machine.context else None,
        payloads=tuple(payloads),
        jobs=tuple(
            (job.name, plain_data(job.data_schema))
            for job in machine.jobs
            if job.data_schema is not None
        ),
    )


def _initial_code(machine: Machine, name: str) -> str | None:
    """The code of the computed field ``name``'s ``expr:`` (checked: no errors), over the
    fields before it as ``ctx.<field>``; None for a field without one."""
    earlier: dict[str, Any] = {}
    for context_field in machine.context:
        if context_field.name == name:
            if context_field.expr is None:
                return None
            parsed = parse_expression(
                context_field.expr,
                scope=Scope.from_schemas(context=earlier),
                expect=schema_type(context_field.schema),
            )
            assert isinstance(parsed, Expression), "checked without errors"
            names = Names(context={f: f for f in earlier}, session="session_id")
            return to_python(parsed, names)
        earlier[context_field.name] = context_field.schema
    return None


def _data_exports(data: DataPlan) -> tuple[str, ...]:
    return (("Context",) if data.context else ()) + tuple(p.class_name for p in data.payloads)
