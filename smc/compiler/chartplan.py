"""What a statechart's generated module holds beyond a flat machine's: the dispatch table of
situations, the steps its hooks and the runtime follow, the hooks' names, on-exit actions
and timers scoped to compound states. Plain data (NamedTuples), like ``smc.compiler.plan``;
``templates/chart.py.jinja`` writes it.

The hierarchy is resolved here, once, by ``statechart.build_table``: the generated class
dispatches an event with one tuple index and one dict lookup, whatever the depth of the
chart. A *situation* is a stable configuration (plus the history memory that can still
matter); a *step* is what one entry of the table does, in order: states exited, events whose
transitions were taken, states entered (``("exit", state)``, ``("on", event)``,
``("entry", state)``). Steps are shared between entries that do the same thing.

Each situation also has a *state view*, what ``m.state`` answers: the deepest state that
holds every active leaf (the leaf itself in a chart without parallel states; the parallel
state, or an ancestor of it, while several regions are active). See docs/language.md.
"""

from __future__ import annotations

import ast
import io
import keyword
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any, NamedTuple, cast

from smc.compiler import commands, names
from smc.compiler.charts import (
    BranchCond,
    EventCase,
    Specialized,
    event_choices,
    machine_table,
    top_actions,
    written_transitions,
)
from smc.compiler.exprcheck import transition_scope, written_expressions
from smc.compiler.expressions import (
    STRING,
    Comparison,
    Const,
    ContextField,
    Expression,
    InState,
    Item,
    Length,
    Names,
    Root,
    Scope,
    Unary,
    ValueType,
    parse_expression,
    parse_guard,
    reads_context,
    reads_job,
    schema_type,
    to_python,
)
from smc.compiler.model import (
    ASSIGN,
    IF,
    LOG,
    RAISE,
    SEND,
    Action,
    Machine,
    nested_actions,
    parse_delay,
)
from smc.compiler.model import Transition as ModelTransition
from smc.compiler.pylayout import pystr
from smc.compiler.statechart import Chart, DispatchTable
from smc.compiler.statechart.tables import PlainAction, Program

#: The hook methods a chart class declares: ``on_enter_<state>``, ``on_exit_<state>`` and
#: ``on_<event>``, with the state's or event's snake-case name.
ENTER_HOOK, EXIT_HOOK, EVENT_HOOK = "on_enter_", "on_exit_", "on_"


class EntryPlan(NamedTuple):
    """One accepted event of a situation: ``(next situation, its state view, step)``."""

    event: str  # member
    next: int
    state: str  # member
    step: int


class SituationPlan(NamedTuple):
    configuration: tuple[str, ...]  # members, document order
    state: str  # member: the state view
    final: bool
    entries: tuple[EntryPlan, ...]


class MovePlan(NamedTuple):
    kind: str  # "exit", "on" or "entry"
    member: str  # a State member ("exit", "entry") or an Event member ("on")


class HookPlan(NamedTuple):
    kind: str  # "exit", "on" or "entry"
    member: str
    method: str  # on_enter_x / on_exit_x / on_e
    name: str  # the YAML name, for the docstring


class ExitActionsPlan(NamedTuple):
    member: str
    actions: tuple[Any, ...]
    action_sources: tuple[str, ...]


#: A program as the generated module holds it (``ProgramsPlan``).
CodeProgram = tuple[tuple[Any, ...], ...]


class CondPlan(NamedTuple):
    """``_cond_<n>``: a written transition's condition as one Python expression over
    ``self``, ``ctx`` (the context) and ``payload``."""

    source: str
    uses_context: bool
    #: whether it reads ``job`` (the class's ``job``: the claimed job's data).
    uses_job: bool = False
    #: whether ``source`` is a bool already (a comparison, ``not``, ``In()``, a named
    #: guard): the function returns it without ``bool()``, a call the hot path saves.
    is_bool: bool = False


class ActionPlan(NamedTuple):
    """``_action_<n>``: one pure action (``assign``, ``log``, ``send``, an ``if`` block the
    core leaves whole) as the lines of its function's body, over ``self``, ``ctx`` (the
    context, when ``uses_context``) and ``payload``."""

    lines: tuple[str, ...]
    uses_context: bool
    #: whether it reads ``job`` (the class's ``job``: the claimed job's data).
    uses_job: bool = False


#: How many distinct conditions ``fire()`` and each per-event method write inline, as a
#: chain of ``if slot == n`` (``InlinePlan``): a compare costs about a tenth of the call it
#: saves, so past eight the chain's tail would cost more than the call. The rest are called.
INLINE_CONDS = 8

#: What a condition written inline may not name: the locals of ``fire()`` and the per-event
#: methods where it is written, and the payload (a ``TypedDict``, or None, there: the
#: condition's function takes it as a mapping). Such a condition is called instead.
_INLINE_CLASHES = frozenset({"entry", "source", "view", "step", "test", "slot", "event", "payload"})


class TestPlan(NamedTuple):
    """A one-condition program: it tests one condition, then takes one step or none in each
    branch. ``fire()`` and the per-event methods take it themselves, the condition written
    inline (``slot``) or called, without ``_run`` and without building a list of steps."""

    situation: int
    event: str  # member
    cond: int  # the ``_cond_<n>`` it tests
    #: the index in ``ProgramsPlan.inline`` of its condition's code, -1 when it cannot be
    #: written inline (``_INLINE_CLASHES``): then ``_cond_<n>`` is called.
    slot: int
    yes: EntryPlan | None  # the entry taken when the condition holds (None: no transition)
    no: EntryPlan | None  # ... when it does not


class InlinePlan(NamedTuple):
    """How one place (``fire()``, or an event's method) decides its one-condition programs:
    the slots whose code it writes inline, at most ``INLINE_CONDS``, in a chain of
    ``if slot == n`` (none when there is one slot and nothing else), and whether some of its
    programs' conditions are called instead (the chain's ``else``)."""

    slots: tuple[int, ...]
    fallback: bool


class ProgramsPlan(NamedTuple):
    """What a chart with guards or pure actions adds (None in a chart without: its
    module is unchanged). Programs are the core's decision programs (``statechart.tables``)
    as nested tuples of ints (``CodeProgram``), each item's first int its kind:
    ``(0, action)``, ``(1, cond, then, else)``, ``(2, situation, step, microsteps)`` (goto),
    ``(3, point, step, microsteps)`` (resume), ``(4,)`` (reject), ``(5,)`` (unsettled): a
    goto's or resume's moves are a ``STEPS`` index, so hooks run. Only pure actions
    (``Action.pure``) are "act" items here: the other actions are the runtime's, which
    follows the steps."""

    conds: tuple[CondPlan, ...]
    actions: tuple[ActionPlan, ...]
    #: situation -> ((event member, program source), ...), in the chart's event order.
    programs: tuple[tuple[tuple[str, CodeProgram], ...], ...]
    points: tuple[CodeProgram, ...]
    initial: CodeProgram | None
    max_microsteps: int
    #: the ``guard:``/``unless:`` methods a subclass writes, sorted.
    named_guards: tuple[str, ...]
    #: the one-condition programs, in situation and then event order: test ``k`` is the
    #: ``k``-th (``_YES``, ``_NO``, ``_SLOT``, ``_TEST_COND`` in the module).
    tests: tuple[TestPlan, ...] = ()
    #: slot -> the condition whose code the slot writes (the first with that code: conditions
    #: written alike, on several transitions, share a slot).
    inline: tuple[int, ...] = ()
    #: how ``fire()`` decides the tests.
    fire_inline: InlinePlan = InlinePlan((), False)
    #: event member -> how its method decides its tests (events with tests only).
    event_inline: tuple[tuple[str, InlinePlan], ...] = ()

    def inline_of(self, event: str) -> InlinePlan | None:
        """How the method of ``event`` (a member) decides its tests; None: it has none."""
        return dict(self.event_inline).get(event)


class ChartPlan(NamedTuple):
    situations: tuple[SituationPlan, ...]
    steps: tuple[tuple[MovePlan, ...], ...]
    initial_step: int
    hooks: tuple[HookPlan, ...]
    exit_actions: tuple[ExitActionsPlan, ...]
    #: the state views' rows ``(state, event, state)``, deduplicated, for ``TRANSITIONS``.
    transitions: tuple[tuple[str, str, str], ...]
    programs: ProgramsPlan | None = None
    #: whether some ``send`` action exists (the class keeps what it sent for ``take_sent``)
    sends: bool = False
    #: whether some ``log`` logs an expression (the class has its ``on_log`` hook)
    logs: bool = False
    #: whether some ``send`` computes its event or delay (``_send_computed``)
    computed_sends: bool = False
    #: whether the class has ``session_id`` (an expression reads ``machine.session_id``)
    sessions: bool = False
    #: whether some ``send`` has ``id_location`` (the class draws send ids)
    send_ids: bool = False
    #: whether some ``raise`` has ``id_location``: its event carries the id drawn (the
    #: class queues the ids, ``_raised_ids``, and keeps the one of the raised event being
    #: handled, ``_event_send_id``: ``event.send_id``)
    raised_ids: bool = False
    #: whether an expression reads ``machine.processor_type`` (the module imports
    #: ``smc.ProcessorType``)
    processor_types: bool = False


def hook_names(machine: Machine) -> list[tuple[str, str, str]]:
    """``(kind, YAML name, hook method)`` for every state (enter, exit) and event of a
    chart; the checker (SMC051) makes sure they are distinct identifiers."""
    hooks: list[tuple[str, str, str]] = []
    for state in machine.states:
        if state.kind == "history":
            continue
        snake = names.snake(state.name)
        if snake is not None:
            hooks.append(("entry", state.name, ENTER_HOOK + snake))
            hooks.append(("exit", state.name, EXIT_HOOK + snake))
    for event in machine.events:
        snake = names.snake(event.name)
        if snake is not None:
            hooks.append(("on", event.name, EVENT_HOOK + snake))
    return hooks


def chart_plan(
    machine: Machine,
    state_member: Mapping[str, str],
    event_member: Mapping[str, str],
    source_path: str,
) -> ChartPlan:
    """The chart part of ``machine``'s module plan (``machine.is_chart``)."""
    chart, table = machine_table(machine)
    views = [state_view(chart, configuration) for configuration in table.configurations]

    steps: dict[tuple[MovePlan, ...], int] = {}

    def step_of(moves: Sequence[tuple[str, str | int]]) -> int:
        plan = _moves(chart, moves, state_member, event_member)
        return steps.setdefault(plan, len(steps))

    compiler = (
        _ProgramCompiler(machine, table, step_of, state_member, event_member)
        if _has_data_code(machine)
        else None
    )
    initial_step = step_of(table.initial_moves)
    situations = []
    rows: dict[tuple[str, str, str], None] = {}
    for index, configuration in enumerate(table.configurations):
        entries = []
        for event in table.events:  # the chart's order: deterministic
            found = table.dispatch[index].get(event)
            if found is None:
                if compiler is not None and event in table.programs[index]:
                    compiler.entry(index, event_member[event], table.programs[index][event])
                    for target in _targets(table.programs[index][event], table):
                        row = (
                            state_member[views[index]],
                            event_member[event],
                            state_member[views[target]],
                        )
                        rows[row] = None
                continue
            if compiler is not None and compiler.has_code(found[1]):
                # A plain entry with pure actions (an assignment, say): the class runs them,
                # so it is a program (its actions, then where it goes), not a DISPATCH entry.
                step = step_of(table.moves[index][event])
                program = _plain_program(found[1], found[0])
                compiler.entry(index, event_member[event], program, step=step)
                row = (
                    state_member[views[index]],
                    event_member[event],
                    state_member[views[found[0]]],
                )
                rows[row] = None
                continue
            target = found[0]
            step = step_of(table.moves[index][event])
            entries.append(
                EntryPlan(event_member[event], target, state_member[views[target]], step)
            )
            row = (state_member[views[index]], event_member[event], state_member[views[target]])
            rows[row] = None
        situations.append(
            SituationPlan(
                configuration=tuple(state_member[name] for name in configuration),
                state=state_member[views[index]],
                final=table.final[index],
                entries=tuple(entries),
            )
        )
    hooks = tuple(
        HookPlan(kind, (state_member if kind != "on" else event_member)[name], method, name)
        for kind, name, method in hook_names(machine)
    )
    exit_actions = tuple(
        ExitActionsPlan(
            member=state_member[state.name],
            actions=tuple(commands.action_data(a) for a in state.on_exit),
            action_sources=tuple(f"{source_path}:{a.pos.line}:{a.pos.col}" for a in state.on_exit),
        )
        for state in machine.states
        if state.on_exit
    )
    programs = None
    if compiler is not None:
        programs = compiler.plan(
            len(table.configurations), initial_step, [s.state for s in situations]
        )
    return ChartPlan(
        situations=tuple(situations),
        steps=tuple(steps),
        initial_step=initial_step,
        hooks=hooks,
        exit_actions=exit_actions,
        transitions=tuple(rows),
        programs=programs,
        sends=any(action.type == SEND for action, _ in machine.pure_actions),
        logs=any(action.type == LOG for action, _ in machine.pure_actions),
        sessions=_uses_session(machine),
        send_ids=any(
            action.type == SEND and "id_location" in action.params
            for action, _ in machine.pure_actions
        ),
        raised_ids=raises_ids(machine),
        processor_types=_uses_processor_type(machine, programs),
        computed_sends=any(
            action.type == SEND and ("event_expr" in action.params or "delay_expr" in action.params)
            for action, _ in machine.pure_actions
        ),
    )


def _uses_session(machine: Machine) -> bool:
    """Whether an expression of ``machine`` reads ``machine.session_id`` or
    ``machine.io_processors``, made of it (its text names it: a mention in a string literal
    only gives the class an attribute it does not read)."""
    texts = [f.expr for f in machine.context if f.expr is not None]
    texts += [text for text, _, _ in written_expressions(machine)]
    return any("session_id" in text or "io_processors" in text for text in texts)


def _uses_processor_type(machine: Machine, programs: ProgramsPlan | None) -> bool:
    """Whether the module's code reads ``machine.processor_type`` (it imports
    ``ProcessorType`` then): a compiled cond or action names it (tokens: a string literal
    names nothing; one folded away, ``machine.processor_type == 'scxml'`` where the event
    is known, leaves no code), or a computed field's expression reads it (never folded:
    no event is handled when the context is made; parsed over every field, the tree it
    checked as over the fields before it)."""
    code = []
    if programs is not None:
        code += [plan.source for plan in programs.conds]
        code += [line for plan in programs.actions for line in plan.lines]
    if any("ProcessorType" in text and _names(text, "ProcessorType") for text in code):
        return True
    everything = Scope.from_schemas(context={f.name: f.schema for f in machine.context})
    for field in machine.context:
        if field.expr and "processor_type" in field.expr:
            parsed = parse_expression(field.expr, scope=everything)
            if isinstance(parsed, Expression) and parsed.uses_processor_type:
                return True
    return False


def _names(code: str, name: str) -> bool:
    """Whether the Python ``code`` (a line or an expression) uses the name ``name``."""
    tokens = tokenize.generate_tokens(io.StringIO(code.strip()).readline)
    try:
        return any(t.type == tokenize.NAME and t.string == name for t in tokens)
    except (tokenize.TokenError, SyntaxError):  # a line of a block: what it holds counts
        return name in code


def raises_ids(machine: Machine) -> bool:
    """Whether some ``raise`` of ``machine`` has ``id_location`` (its event carries an id)."""
    return any(
        action.type == RAISE and "id_location" in action.params
        for action, _ in machine.pure_actions
    )


def _send_id_lines(params: Mapping[str, object]) -> tuple[list[str], bool]:
    """A ``send`` with ``id_location``: the lines that draw its id (a new one each time it
    runs, as SCXML's idlocation) and store it in the field; the send then carries it."""
    location = params.get("id_location")
    if not isinstance(location, str):
        return [], False
    return ["send_id = uuid.uuid4().hex", f"ctx.{_plain_name(location)} = send_id"], True


def _plain_name(name: str) -> str:
    """A context field's attribute (checked: a plain public identifier)."""
    if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _has_data_code(machine: Machine) -> bool:
    return machine.has_guards or bool(machine.pure_actions)


def _plain_program(actions: Sequence[PlainAction], target: int) -> Program:
    """A plain entry as a program: its actions, then where it goes (its step is known)."""
    return cast(Program, (*(("act", a) for a in actions), ("goto", target, (), 0)))


def _targets(program: Program, table: DispatchTable) -> list[int]:
    """The situations a program may end in (resume points followed), for ``TRANSITIONS``."""
    found: list[int] = []
    seen: set[int] = set()
    work = [program]
    while work:
        for item in work.pop():
            if item[0] == "test":
                work += [item[2], item[3]]
            elif item[0] == "goto" and item[1] not in found:
                found.append(item[1])
            elif item[0] == "resume" and item[1] not in seen:
                seen.add(item[1])
                work.append(table.points[item[1]])
    return sorted(found)


class _ProgramCompiler:
    """Compiles a table's programs, conds and pure actions into a ``ProgramsPlan``."""

    def __init__(
        self,
        machine: Machine,
        table: DispatchTable,
        step_of: Callable[[Sequence[tuple[str, str | int]]], int],
        state_member: Mapping[str, str],
        event_member: Mapping[str, str],
    ) -> None:
        self.machine = machine
        self.table = table
        self.step_of = step_of
        self.event_member = event_member
        self.written = written_transitions(machine)
        self.by_index = {t.index: t for t in machine.transitions}
        self.names = Names(
            context={f.name: f.name for f in machine.context},
            states=state_member,
            carries=raises_ids(machine),
        )
        # BranchCond -> (its branch's condition, the transition it is written on)
        self.branches: dict[BranchCond, tuple[str, ModelTransition | None]] = {
            BranchCond(action.pos, number): (branch.when, owner)
            for top, owner in top_actions(machine)
            for action in nested_actions((top,))
            for number, branch in enumerate(action.branches)
            if branch.when is not None
        }
        self.conds: dict[object, int] = {}
        self.cond_plans: list[CondPlan] = []
        self.actions: dict[tuple[int, bool, EventCase], int] = {}
        self.takes: dict[tuple[str, bool], int] = {}
        self.action_plans: list[ActionPlan] = []
        self._reads_job = False
        self.programs: dict[int, list[tuple[str, CodeProgram]]] = {}

    def action(self, plain: tuple[Any, ...]) -> tuple[Action, ModelTransition | None] | None:
        """The model's pure action a table action is, with its transition (None: a state's);
        None for any other action (the runtime's)."""
        found = self.located(plain)
        return None if found is None else (found[0], found[1])

    def located(
        self, plain: tuple[Any, ...]
    ) -> tuple[Action, ModelTransition | None, bool, EventCase] | None:
        """``action``, and whether the event it runs for is known and which it is (and how
        it came, where ``event.type`` is read): an action that reads ``event.name`` is
        wrapped in one branch per event (``charts.core_action``), and the branch the core
        took says which."""
        kind, owner, position = plain
        path = (position,) if isinstance(position, int) else tuple(position)
        transition: ModelTransition | None = None
        if kind == "transition":
            transition = self.written[owner]
            actions = transition.actions
        else:
            state = self.machine.state(owner)
            actions = {
                "exit": state.on_exit,
                "initial": state.initial_actions,
                "default": state.default_actions,
            }.get(kind, state.on_entry)
        action = actions[path[0]]
        event_known, event = False, EventCase(None, None)
        for level in range(1, len(path), 2):  # into an opened if block: (branch, position)
            if action.type != IF:  # the wrapper of an action reading event.name
                event_known, event = True, event_choices(self.machine)[path[level]]
                break
            action = action.branches[path[level]].actions[path[level + 1]]
        return (action, transition, event_known, event) if action.pure else None

    def has_code(self, actions: Sequence[tuple[Any, ...]]) -> bool:
        return any(a[0] == "take" or self.action(a) is not None for a in actions)

    def act(self, plain: tuple[Any, ...]) -> int | None:
        """The ``_action_<n>`` of a table action; None for one the class does not run."""
        if plain[0] == "take":
            return self.take(bool(plain[2]))
        found = self.located(plain)
        if found is None:
            return None
        action, transition, event_known, event = found
        key = (id(action), event_known, event)
        if key not in self.actions:
            self._reads_job = False  # set by expression() while the code is written
            saved = self.names
            if event_known:
                self.names = replace(
                    saved, event=event.name, event_known=True, event_internal=event.internal
                )
            try:
                lines, uses_context = self.code(action, transition_scope(self.machine, transition))
            finally:
                self.names = saved
            self.actions[key] = len(self.action_plans)
            self.action_plans.append(ActionPlan(tuple(lines), uses_context, self._reads_job))
        return self.actions[key]

    def take(self, carried: bool) -> int:
        """The action where a raised event is taken from the internal queue (the chart
        core's ``take``, in a machine whose raises carry ids): the event handled now
        carries the first id queued (its raise drew it: the queue is first in, first
        out), or none."""
        key = ("take", carried)
        if key not in self.takes:
            line = "self._raised_ids.popleft()" if carried else "None"
            self.takes[key] = len(self.action_plans)
            self.action_plans.append(ActionPlan((f"self._event_send_id = {line}",), False, False))
        return self.takes[key]

    def expression(
        self, text: str, scope: Scope, expect: ValueType | None = None, *, guard: bool = False
    ) -> tuple[str, bool]:
        """An expression's code and whether it reads the context (checked: no errors)."""
        parsed = (
            parse_guard(text, scope=scope)
            if guard
            else parse_expression(text, scope=scope, expect=expect)
        )
        assert isinstance(parsed, Expression), "checked without errors"
        self._reads_job = self._reads_job or reads_job(parsed, self.names)
        source = to_python(parsed, self.names)
        return source, reads_context(parsed, self.names)

    def code(self, action: Action, scope: Scope) -> tuple[list[str], bool]:
        """A pure action as statements (indented four spaces a level) and whether they read
        the context."""
        params = action.params
        if action.type == ASSIGN:
            location = str(params["location"])
            source, _ = self.expression(str(params["expr"]), scope, scope.context[location])
            return [f"ctx.{location} = {source}"], True
        if action.type == LOG:
            label = params.get("label")
            source, uses = ("None", False)
            if isinstance(params.get("expr"), str):
                source, uses = self.expression(params["expr"], scope)
            text = pystr("" if label is None else str(label))
            return [f"self.on_log({text}, {source})"], uses
        if action.type == SEND and ("event_expr" in params or "delay_expr" in params):
            # computed: _send_computed checks the name and the delay at run time
            uses = False
            if "event_expr" in params:
                event_source, uses = self.expression(str(params["event_expr"]), scope, STRING)
            else:
                event_source = f"Event.{self.event_member[str(params['event'])]}"
            delay_source = repr(parse_delay(params.get("delay", 0)))
            if "delay_expr" in params:
                delay_source, reads = self.expression(str(params["delay_expr"]), scope)
                uses = uses or reads
            drawn, send_id = _send_id_lines(params)
            arguments = f"{event_source}, {delay_source}" + (", send_id" if send_id else "")
            return [*drawn, f"_send_computed(self, {arguments})"], uses or send_id
        if action.type == SEND:
            event = str(params["event"])
            delay = parse_delay(params.get("delay", 0))
            assert delay is not None, "checked without errors"
            payload = params.get("payload")
            uses = False
            value = "None"
            if isinstance(payload, Mapping):
                schema = self.machine_event_schema(event)
                fields = schema.fields if schema is not None else None
                items = []
                for key, text in payload.items():
                    expect = None if fields is None else fields[str(key)].type
                    source, reads = self.expression(str(text), scope, expect)
                    uses = uses or reads
                    items.append(f"{pystr(str(key))}: {source}")
                value = "{" + ", ".join(items) + "}"
            member = self.event_member[event]
            drawn, send_id = _send_id_lines(params)
            arguments = f"Event.{member}, {delay!r}, {value}" + (", send_id" if send_id else "")
            return [*drawn, f"self._sent.append(Sent({arguments}))"], uses or send_id
        if action.type == RAISE:
            # the chart core queues the event; the class queues the id it carries, which
            # the event's "take" hands over (``take``)
            drawn, _ = _send_id_lines(params)
            return [*drawn, "self._raised_ids.append(send_id)"], True
        assert action.type == IF, f"not a pure action: {action.type}"
        lines: list[str] = []
        uses = False
        for number, branch in enumerate(action.branches):
            if branch.when is None:
                lines.append("else:")
            else:
                source, reads = self.expression(branch.when, scope, guard=True)
                uses = uses or reads
                lines.append(f"{'if' if number == 0 else 'elif'} {source}:")
            body: list[str] = []
            for inner in branch.actions:
                inner_lines, reads = self.code(inner, scope)
                uses = uses or reads
                body += inner_lines
            lines += ["    " + line for line in body or ["pass"]]
        return lines, uses

    def machine_event_schema(self, event: str) -> ValueType | None:
        for found in self.machine.events:
            if found.name == event and found.payload_schema is not None:
                return schema_type(found.payload_schema)
        return None

    def cond(self, cond: object) -> int:
        """``cond`` is a written transition's index or an ``if`` branch's ``BranchCond``, or
        ``(either, active states)`` for a condition reading ``In()``
        (``charts._specialize``), or a ``Specialized`` cond: one read where the active
        states or the event being handled are known (``charts._specialize``)."""
        key = cond
        if key not in self.conds:
            active: frozenset[str] | None = None
            names = self.names
            if isinstance(cond, Specialized):
                special = cond
                if special.event_known:
                    names = replace(
                        names,
                        event=special.event,
                        event_known=True,
                        event_internal=special.internal,
                    )
                cond, active = special.cond, special.active
            if isinstance(cond, BranchCond):
                when, owner = self.branches[cond]
                scope = transition_scope(self.machine, owner)
                parsed = parse_guard(when, scope=scope)
                assert isinstance(parsed, Expression), "checked without errors"
                if active is not None:
                    parsed = replace(parsed, node=_in_states(parsed.node, active))
                self.conds[key] = len(self.cond_plans)
                source = to_python(parsed, names)
                self.cond_plans.append(
                    CondPlan(
                        source,
                        reads_context(parsed, names),
                        reads_job(parsed, names),
                        is_bool(parsed.node, scope),
                    )
                )
                return self.conds[key]
            assert isinstance(cond, int)
            transition = self.by_index[cond]
            parts: list[str] = []
            uses_context = uses_job = False
            bools: list[bool] = []
            if transition.when is not None:
                scope = transition_scope(self.machine, transition)
                expr = parse_guard(transition.when, scope=scope)
                assert isinstance(expr, Expression), "checked without errors"
                if active is not None:
                    expr = replace(expr, node=_in_states(expr.node, active))
                source = to_python(expr, names)
                uses_context = reads_context(expr, names)
                uses_job = reads_job(expr, names)
                parts.append(f"({source})" if transition.guard or transition.unless else source)
                bools.append(is_bool(expr.node, scope))
            if transition.guard is not None:
                parts.append(f"self.{names_identifier(transition.guard)}()")
                bools.append(True)  # declared -> bool in the base
            if transition.unless is not None:
                parts.append(f"not self.{names_identifier(transition.unless)}()")
                bools.append(True)
            # "a and b" is a or b, not a bool: only a single part may skip bool().
            plain = len(parts) == 1 and bools[0]
            self.conds[key] = len(self.cond_plans)
            self.cond_plans.append(CondPlan(" and ".join(parts), uses_context, uses_job, plain))
        return self.conds[key]

    def program(self, program: Program, step: int | None = None) -> CodeProgram:
        """The program as nested tuples of ints (``ProgramsPlan``)."""
        items: list[tuple[Any, ...]] = []
        for item in program:
            if item[0] == "act":
                index = self.act(item[1])
                if index is not None:
                    items.append((0, index))
            elif item[0] == "test":
                then, otherwise = self.program(item[2], step), self.program(item[3], step)
                items.append((1, self.cond(item[1]), then, otherwise))
            elif item[0] in ("goto", "resume"):
                kind = 2 if item[0] == "goto" else 3
                at = step if step is not None else self.step_of(item[2])
                items.append((kind, int(item[1]), at, int(item[3])))
            elif item[0] == "reject":
                items.append((4,))
            else:
                items.append((5,))
        return tuple(items)

    def entry(self, situation: int, event: str, program: Program, step: int | None = None) -> None:
        self.programs.setdefault(situation, []).append((event, self.program(program, step)))

    def plan(self, situations: int, initial_step: int, views: Sequence[str]) -> ProgramsPlan | None:
        """The plan; ``views`` is each situation's state view (a member)."""
        table = self.table
        initial: CodeProgram | None = None
        if table.initial_program is not None:
            initial = self.program(table.initial_program)
        elif self.has_code(table.initial_actions):
            program = _plain_program(table.initial_actions, table.initial)
            initial = self.program(program, initial_step)
        points = tuple(self.program(p) for p in table.points)
        if not self.programs and initial is None:
            return None
        guards = sorted(
            {name for t in self.machine.transitions for name in (t.guard, t.unless) if name}
        )
        programs = tuple(tuple(self.programs.get(i, ())) for i in range(situations))
        tests, inline = one_condition_tests(programs, self.cond_plans, views, table.max_microsteps)
        by_event: dict[str, list[TestPlan]] = {}
        for test in tests:
            by_event.setdefault(test.event, []).append(test)
        return ProgramsPlan(
            conds=tuple(self.cond_plans),
            actions=tuple(self.action_plans),
            programs=programs,
            points=points,
            initial=initial,
            max_microsteps=table.max_microsteps,
            named_guards=tuple(guards),
            tests=tests,
            inline=inline,
            fire_inline=inline_plan(tests),
            event_inline=tuple((event, inline_plan(found)) for event, found in by_event.items()),
        )


def one_condition_tests(
    programs: Sequence[Sequence[tuple[str, CodeProgram]]],
    conds: Sequence[CondPlan],
    views: Sequence[str],
    max_microsteps: int,
) -> tuple[tuple[TestPlan, ...], tuple[int, ...]]:
    """The one-condition programs among ``programs`` (situation -> (event, program)), in
    order, and the slots their conditions' code takes (``ProgramsPlan.inline``).

    A one-condition program is one test whose branches each go somewhere in one step
    (a goto within ``max_microsteps``: ``_run`` refuses more) or reject; ``_run`` would
    take the same step, so taking it directly is the same transition."""
    tests: list[TestPlan] = []
    slots: dict[tuple[str, bool, bool], int] = {}
    for situation, row in enumerate(programs):
        for event, program in row:
            if len(program) != 1 or program[0][0] != 1:
                continue
            _kind, cond, then, otherwise = program[0]
            entries: list[EntryPlan | None] = []
            for branch in (then, otherwise):
                if branch == ((4,),):
                    entries.append(None)
                elif len(branch) == 1 and branch[0][0] == 2 and branch[0][3] <= max_microsteps:
                    target, step = int(branch[0][1]), int(branch[0][2])
                    entries.append(EntryPlan(event, target, views[target], step))
                else:
                    break
            if len(entries) != 2:
                continue
            plan = conds[cond]
            slot = -1
            if _inlinable(plan.source):
                key = (plan.source, plan.uses_context, plan.uses_job)
                slot = slots.setdefault(key, len(slots))
            tests.append(TestPlan(situation, event, int(cond), slot, entries[0], entries[1]))
    # slot -> the first condition with its code
    inline: dict[int, int] = {}
    for test in tests:
        if test.slot >= 0:
            inline.setdefault(test.slot, test.cond)
    return tuple(tests), tuple(inline[slot] for slot in range(len(inline)))


def _inlinable(source: str) -> bool:
    """Whether a condition's code can be written inside ``fire()`` and the per-event
    methods: it names none of their locals, nor the payload (``_INLINE_CLASHES``)."""
    tree = ast.parse(source, mode="eval")
    return not any(
        isinstance(node, ast.Name) and node.id in _INLINE_CLASHES for node in ast.walk(tree)
    )


def inline_plan(tests: Sequence[TestPlan]) -> InlinePlan:
    """How a place deciding ``tests`` writes them: the first ``INLINE_CONDS`` of their
    slots inline, and the chain's ``else`` when another test is left to call."""
    slots = tuple(sorted({test.slot for test in tests if test.slot >= 0})[:INLINE_CONDS])
    return InlinePlan(slots, any(test.slot not in slots for test in tests))


_SCALARS = frozenset({"integer", "number", "string", "boolean", "null"})


def is_bool(node: Any, scope: Scope) -> bool:
    """Whether the code of ``node`` is a bool whatever the data, for the type checker too:
    a comparison of typed values, a ``not``, ``In()`` or a boolean constant (``and``/``or``
    return an operand; the payload, job data and untyped fields are ``Any`` to mypy)."""
    if isinstance(node, InState):
        return True
    if isinstance(node, Unary) and node.op == "not":
        return True
    if isinstance(node, Const):
        return isinstance(node.value, bool)
    return isinstance(node, Comparison) and _typed(node, scope)


def _typed(node: Any, scope: Scope) -> bool:
    """Whether every value ``node`` reads has a static type (no payload, job data, part of
    an object, or field of unknown type)."""
    if isinstance(node, Root | Item):
        return False
    if isinstance(node, ContextField):
        kinds = scope.context[node.name].kinds
        return bool(kinds) and kinds <= _SCALARS
    if isinstance(node, Length | InState | Const):
        return True
    if not is_dataclass(node) or isinstance(node, type):
        return True
    for item in fields(node):
        value = getattr(node, item.name)
        children = value if isinstance(value, tuple) else (value,)
        if not all(_typed(child, scope) for child in children if is_dataclass(child)):
            return False
    return True


def _in_states(node: Any, active: frozenset[str]) -> Any:
    """``node`` with each ``In('s')`` replaced by whether ``s`` is in ``active``."""
    if isinstance(node, InState):
        return Const(node.state in active)
    if not is_dataclass(node) or isinstance(node, type):
        return node
    changes: dict[str, Any] = {}
    for item in fields(node):
        value = getattr(node, item.name)
        if isinstance(value, tuple):
            changes[item.name] = tuple(_in_states(v, active) for v in value)
        elif is_dataclass(value):
            changes[item.name] = _in_states(value, active)
    return replace(node, **changes)


def names_identifier(name: str) -> str:
    """A named guard's method: the checker made it a plain identifier (SMC050/051)."""
    if not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _moves(
    chart: Chart,
    moves: Sequence[tuple[str, str | int]],
    state_member: Mapping[str, str],
    event_member: Mapping[str, str],
) -> tuple[MovePlan, ...]:
    """The table's moves as the generated code holds them: a taken transition becomes its
    event's ``on`` move (once for the transitions of one microstep on the same event);
    eventless transitions and ``done.state.*`` events have no hook and no move."""
    plan: list[MovePlan] = []
    for kind, what in moves:
        if kind == "transition":
            assert isinstance(what, int)
            event = chart.transitions[what].event
            if event is None or event not in event_member:
                continue
            move = MovePlan("on", event_member[event])
            if plan and plan[-1] == move:
                continue
            plan.append(move)
        else:
            assert isinstance(what, str)
            plan.append(MovePlan(kind, state_member[what]))
    return tuple(plan)


def state_view(chart: Chart, configuration: Sequence[str]) -> str:
    """The deepest state holding every active leaf (see the module docstring)."""
    active = set(configuration)
    leaves = [name for name in configuration if not (set(chart.child_states(name)) & active)]
    if len(leaves) == 1:
        return leaves[0]
    line = [leaves[0], *chart.ancestors(leaves[0])]
    for candidate in line:
        if all(leaf == candidate or chart.is_descendant(leaf, candidate) for leaf in leaves):
            return candidate
    # leaves in several top-level states cannot happen: the root is compound
    raise AssertionError(f"no state holds {leaves!r}")
