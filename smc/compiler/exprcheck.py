"""The expressions of a machine file, checked where they are written: ``when:`` conditions,
``assign`` actions and the other pure actions the generated class runs, ``if`` blocks, ``log``
expressions and ``send`` payloads (docs/language.md, Guards and assignments, Actions in the
class).

Each expression is checked by :mod:`~smc.compiler.expressions` against the scope of the
place it is written in, and each problem becomes a diagnostic at the character it is about,
inside the YAML scalar (:mod:`~smc.compiler.loader.scalars` follows the quoting):

- SMC090: not an expression, or a construct outside the language;
- SMC091: an unknown context field, payload or job field, or state;
- SMC092: a type mismatch, a ``when:`` that is not true or false, or an ``expr:`` whose value
  its location cannot hold;
- SMC093: an ``assign`` whose ``location`` (a ``send``'s ``id_location``) is not a context
  field (SMC092 when ``id_location``'s field cannot hold a string);
- SMC095: a ``send`` of an event the machine does not have;
- SMC096: a ``send`` whose ``delay`` is no duration or whose payload does not fit the event's
  payload schema (an unknown or missing field; each value is an expression of its field's type),
  or with both ``event`` and ``event_expr`` (``delay`` and ``delay_expr``), or a payload with
  ``event_expr``; ``event_expr`` (a string) and ``delay_expr`` (seconds or a duration string)
  are checked as expressions (SMC090-092);
- SMC097: an ``if`` branch holding an action the class cannot run, or a ``log`` mixing
  ``message`` with ``label``/``expr``.

The scope (:func:`transition_scope`): the context fields; the payload of the transition's
event (none for an eventless transition, an event without a payload schema, or a state's
actions, which run for whichever transition enters or leaves the state); the job's data
(:func:`job_type`); the states of the chart, for ``In()``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import NamedTuple

from smc.compiler.diagnostics import Diagnostic
from smc.compiler.expressions import (
    ANY,
    STRING,
    Field,
    Problem,
    ProblemKind,
    Scope,
    ValueType,
    did_you_mean,
    fits,
    parse_expression,
    parse_guard,
    schema_type,
    union,
)
from smc.compiler.loader.document import Pos
from smc.compiler.loader.scalars import scalar_positions
from smc.compiler.model import (
    ASSIGN,
    BRANCH_ACTIONS,
    IF,
    LOG,
    RAISE,
    SEND,
    Action,
    Machine,
    Position,
    Transition,
    nested_actions,
    parse_delay,
)

_CODES: Mapping[ProblemKind, str] = {
    "syntax": "SMC090",
    "construct": "SMC090",
    "name": "SMC091",
    "type": "SMC092",
}
_NO_PAYLOAD = "there is no payload here"


def job_type(machine: Machine) -> ValueType | None:
    """What ``job`` is in the machine's expressions: None when no job type declares a data
    schema (``job`` is then refused); else the fields every job type's data has (with one
    job type, its own), each with the union of its types and required only where every
    schema requires it. A job type without a ``data:`` schema has data of any shape, so
    then no field can be checked."""
    if not any(job.data_schema is not None for job in machine.jobs):
        return None
    types = [
        schema_type(job.data_schema) if job.data_schema is not None else ANY for job in machine.jobs
    ]
    if len(types) == 1:
        return types[0]
    kinds = frozenset(kind for value in types for kind in value.kinds)
    if any(not value.known for value in types):
        return ValueType(frozenset({"object"}))  # fields unknown: `job.x` is refused
    field_maps = [value.fields for value in types]
    if any(fields is None for fields in field_maps):
        return ValueType(kinds)
    known = [fields for fields in field_maps if fields is not None]
    common: dict[str, Field] = {}
    for name in known[0]:
        if all(name in fields for fields in known):
            merged = known[0][name].type
            for fields in known[1:]:
                merged = union(merged, fields[name].type)
            common[name] = Field(merged, all(fields[name].required for fields in known))
    return ValueType(kinds, MappingProxyType(common))


class _Checker:
    def __init__(self, machine: Machine, lines: Sequence[str]) -> None:
        self.machine = machine
        self.lines = lines
        self.found: list[Diagnostic] = []
        self.context = {field.name: field.schema for field in machine.context}
        self.events = {event.name: event for event in machine.events}
        self.base = Scope.from_schemas(context=self.context, states=machine.state_names)
        self.base = replace(self.base, job=job_type(machine))

    def scope(self, transition: Transition | None) -> Scope:
        """The scope of a transition's expressions (None: a state's actions)."""
        if transition is None or transition.event is None:
            return self.base
        event = self.events.get(transition.event)
        schema = None if event is None else event.payload_schema
        payload = None if schema is None else schema_type(schema)
        return replace(self.base, payload=payload, event=transition.event)

    def computed_fields(self) -> None:
        """``context: {f: {expr: ...}}``: each an expression over the fields before it (in
        document order: they are computed in that order), of the field's type, without a
        ``default`` beside it (SMC081)."""
        earlier: dict[str, object] = {}
        for context_field in self.machine.context:
            text = context_field.expr
            where = context_field.expr_pos or context_field.pos
            if "expr" in context_field.schema and text is None:
                self.report(where, "SMC081", "a context field's `expr:` must be a string")
            if text is not None:
                if context_field.has_default:
                    self.report(
                        where,
                        "SMC081",
                        f"context field {context_field.name!r} has both `default:` and " "`expr:`",
                        "its initial value is one or the other: drop one",
                    )
                scope = Scope.from_schemas(context=earlier)
                expect = schema_type(context_field.schema)
                result = parse_expression(text, scope=scope, expect=expect)
                if isinstance(result, list):
                    later = {f.name for f in self.machine.context} - set(earlier)
                    result = [_later_field(problem, later) for problem in result]
                    self.problems(where, text, result, in_state=True)
            earlier[context_field.name] = context_field.schema

    def report(self, pos: Position, code: str, message: str, hint: str = "") -> None:
        self.found.append(Diagnostic(pos.path, pos.line, pos.col, code, message, hint))

    def problems(
        self, start: Position, text: str, problems: list[Problem], *, in_state: bool
    ) -> None:
        """Each problem at its character in the scalar written at ``start``."""
        positions = scalar_positions(self.lines, Pos(start.line, start.col), text)
        for problem in problems:
            message, hint = problem.message, problem.hint
            if in_state and problem.kind == "name" and message.startswith(_NO_PAYLOAD):
                message = (
                    f"{_NO_PAYLOAD}: a state's actions run for whichever transition enters "
                    "or leaves the state"
                )
                hint = (
                    "write the `assign` in the `actions:` of the transition whose payload it reads"
                )
            at = start
            if positions is not None:
                placed = positions[max(0, min(problem.start, len(text)))]
                # The end of a block scalar with no content (`when: |` on the last line)
                # lies past the file: the diagnostic stays at the scalar then.
                if placed.line <= len(self.lines):
                    at = Position(start.path, placed.line, placed.col)
            self.report(at, _CODES[problem.kind], message, hint)

    def when(self, transition: Transition) -> None:
        if transition.when is None:
            return
        result = parse_guard(transition.when, scope=self.scope(transition))
        if isinstance(result, list):
            where = transition.when_pos or transition.pos
            self.problems(where, transition.when, result, in_state=False)

    def assign(self, action: Action, transition: Transition | None, at_start: bool) -> None:
        """``at_start``: an action the machine runs as it starts (:func:`started`), checked as
        the class writes it for the start too."""
        scope = self.scope(transition)
        expect: ValueType | None = None
        if "location" in action.params:
            location = action.params["location"]
            where = action.param_pos.get("location", action.pos)
            problem = self.location(location, scope)
            if problem is None:
                expect = scope.context[str(location)]
            else:
                self.report(where, "SMC093", *problem)
        expr = action.params.get("expr")
        if isinstance(expr, str):  # else the schema (or SMC031, when missing) said so
            result = parse_expression(expr, scope=scope, expect=expect)
            if not isinstance(result, list) and at_start:
                result = parse_expression(expr, scope=replace(scope, at_start=True), expect=expect)
                if isinstance(result, list):
                    when = (
                        "the machine starts in this state"
                        if transition is None
                        else "the machine may take this transition as it starts"
                    )
                    hint = (
                        f"{when}, where no event is handled yet and `event.name` and "
                        "`event.type` are null: test them first "
                        "(`seen + [event.type] if event.type is not None else seen`)"
                    )
                    result = [problem._replace(hint=problem.hint or hint) for problem in result]
            if isinstance(result, list):
                where = action.param_pos.get("expr", action.pos)
                self.problems(where, expr, result, in_state=transition is None)

    def location(self, location: object, scope: Scope) -> tuple[str, str] | None:
        """Why ``location`` is not a context field to assign to, as (message, hint)."""
        fields = sorted(scope.context)
        if not isinstance(location, str):
            return "`location` must name a context field", "write the field's name"
        if location in scope.context:
            return None
        root = location.split(".")[0].split("[")[0]
        if root in ("payload", "job"):
            what = "the event's payload" if root == "payload" else "the job's data"
            return (
                f"`location` {location!r} is part of {what}, which cannot be assigned to",
                "assign to a context field (declare one under `context:`)",
            )
        if root != location and root in scope.context:
            return (
                f"`location` {location!r} is a part of context field {root!r}: an "
                "assignment sets a whole field",
                f"assign the whole field: `location: {root}`",
            )
        hint = did_you_mean(location, fields)
        if not hint:
            hint = (
                "declare it under `context:`"
                if fields
                else "the machine declares no `context:` fields: declare it there"
            )
        return f"unknown context field {location!r}", hint

    # ---- the pure actions: if, log, send (docs/language.md, "Actions in the class") -----

    def action(
        self, action: Action, transition: Transition | None, depth: int, at_start: bool = False
    ) -> None:
        """Check ``action`` (``depth`` > 0: inside an ``if`` block's branch) and what it
        holds; ``at_start``: as :meth:`assign`."""
        if depth and action.type not in BRANCH_ACTIONS:
            self.report(
                action.pos,
                "SMC097",
                f"an `if` block cannot hold a {action.type!r} action: its branches run inside "
                "the generated class",
                "inside `if`, use assign, raise, log (with `expr`), send and if; run other "
                "actions on entry to a state the branch moves to",
            )
            return
        if action.type == ASSIGN:
            self.assign(action, transition, at_start)
        elif action.type == IF:
            # A branch runs at the start as the block does: the class compiles every branch
            # for the start, one whose condition reads the event too (that condition is
            # written as the constant it is there, the branch's actions are not left out).
            for branch in action.branches:
                if branch.when is not None:
                    result = parse_guard(branch.when, scope=self.scope(transition))
                    if isinstance(result, list):
                        where = branch.when_pos or branch.pos
                        self.problems(where, branch.when, result, in_state=transition is None)
                for inner in branch.actions:
                    self.action(inner, transition, depth + 1, at_start)
        elif action.type == SEND:
            self.send(action, transition)
        elif action.type == RAISE:
            self.send_id_location(action, transition)
        elif action.type == LOG:
            self.log(action, transition, depth)

    def log(self, action: Action, transition: Transition | None, depth: int) -> None:
        runtime_keys = [key for key in ("message", "level") if key in action.params]
        if action.pure and runtime_keys:
            key = runtime_keys[0]
            self.report(
                action.param_key_pos.get(key, action.pos),
                "SMC097",
                f"a `log` with `label`/`expr` is run by the generated class and has no `{key}`",
                "write either `message:` (the runtime's log) or `label:`/`expr:` (a value the "
                "class logs), not both",
            )
        elif depth and not action.pure:
            self.report(
                action.pos,
                "SMC097",
                "a `log` inside an `if` block must log an expression (`label:`, `expr:`)",
                'write `{type: log, label: "...", expr: "..."}`',
            )
        expr = action.params.get("expr")
        if isinstance(expr, str):
            result = parse_expression(expr, scope=self.scope(transition))
            if isinstance(result, list):
                where = action.param_pos.get("expr", action.pos)
                self.problems(where, expr, result, in_state=transition is None)

    def send_id_location(self, action: Action, transition: Transition | None) -> None:
        """``id_location`` (of a ``send`` or a ``raise``): a context field (SMC093) that can
        hold the id drawn, a string (SMC092)."""
        if "id_location" not in action.params:
            return
        location = action.params["id_location"]
        where = action.param_pos.get("id_location", action.pos)
        scope = self.scope(transition)
        problem = self.location(location, scope)
        if problem is not None:
            message, hint = problem
            self.report(where, "SMC093", message.replace("`location`", "`id_location`"), hint)
            return
        target = scope.context[str(location)]
        if not fits(STRING, target):
            self.report(
                where,
                "SMC092",
                f"`id_location` {location!r} is {target.describe_exactly()}, and the id "
                "drawn is a string",
                'give the field a type that holds a string (`type: [string, "null"]`)',
            )

    def computed_send(self, action: Action, transition: Transition | None) -> bool:
        """``event_expr``/``delay_expr``: each an expression (a string; seconds or a
        duration string), each instead of its plain key, and no payload with a computed
        event (its schema is not known). Whether the plain checks are left to do."""
        params = action.params
        scope = self.scope(transition)
        for key, plain, expect in (
            ("event_expr", "event", STRING),
            ("delay_expr", "delay", _DURATION_VALUE),
        ):
            if key not in params:
                continue
            where = action.param_pos.get(key, action.pos)
            if plain in params:
                self.report(
                    where,
                    "SMC096",
                    f"`send` has both `{plain}` and `{key}`",
                    f"write `{plain}` (a fixed value) or `{key}` (an expression), not both",
                )
            text = params[key]
            if isinstance(text, str):
                result = parse_expression(text, scope=scope, expect=expect)
                if isinstance(result, list):
                    self.problems(where, text, result, in_state=transition is None)
        if "event_expr" in params and "payload" in params:
            self.report(
                action.param_key_pos.get("payload", action.pos),
                "SMC096",
                "a `send` with `event_expr` gives no payload: which event's schema it "
                "must fit is known only at run time",
                "send a fixed `event:` to give it a payload",
            )
        return "event_expr" not in params

    def send(self, action: Action, transition: Transition | None) -> None:
        self.send_id_location(action, transition)
        if not self.computed_send(action, transition):
            return
        name = action.params.get("event")
        event = self.events.get(name) if isinstance(name, str) else None
        if isinstance(name, str) and event is None:
            self.report(
                action.param_pos.get("event", action.pos),
                "SMC095",
                f"`send` names event {name!r}, which the machine does not have",
                did_you_mean(name, sorted(self.events))
                or "a machine sends only its own events: declare it under `events:` and give "
                "it a transition",
            )
        if "delay" in action.params and parse_delay(action.params["delay"]) is None:
            self.report(
                action.param_pos.get("delay", action.pos),
                "SMC096",
                f"`delay` {action.params['delay']!r} is not a duration",
                'write seconds as a number (`delay: 1.5`) or a string (`"1.5s"`, `"500ms"`)',
            )
        payload = action.params.get("payload")
        written = payload if isinstance(payload, Mapping) else {}
        schema = None if event is None else event.payload_schema
        if event is None:
            fields: Mapping[str, Field] | None = None
        elif schema is None:
            if written:
                self.report(
                    action.param_key_pos.get("payload", action.pos),
                    "SMC096",
                    f"event {event.name!r} declares no payload, and this `send` gives one",
                    f"declare a `payload:` schema under `events: {{{event.name}: ...}}`, or "
                    "leave the payload out",
                )
            return
        else:
            fields = schema_type(schema).fields
            required = schema.get("required")
            missing = [
                str(f) for f in (required if isinstance(required, list) else []) if f not in written
            ]
            if missing:
                self.report(
                    action.param_key_pos.get("payload", action.pos),
                    "SMC096",
                    f"the payload of {event.name!r} requires "
                    + ", ".join(repr(f) for f in missing)
                    + ", which this `send` does not give",
                    'add each under `payload:` as `field: "<expression>"`',
                )
        scope = self.scope(transition)
        for key, text in written.items():
            key_pos, value_pos = action.payload_pos.get(str(key), (action.pos, action.pos))
            expect: ValueType | None = None
            if fields is not None:
                found = fields.get(str(key))
                if found is None:
                    assert event is not None
                    self.report(
                        key_pos,
                        "SMC096",
                        f"the payload of {event.name!r} has no field {str(key)!r}",
                        did_you_mean(str(key), sorted(fields))
                        or "fields: " + ", ".join(sorted(fields)),
                    )
                    continue
                expect = found.type
            if isinstance(text, str):
                result = parse_expression(text, scope=scope, expect=expect)
                if isinstance(result, list):
                    self.problems(value_pos, text, result, in_state=transition is None)


def _later_field(problem: Problem, later: set[str]) -> Problem:
    """An unknown name that is a field after this one: say so."""
    for name in later:
        if problem.kind == "name" and problem.message == f"unknown name '{name}'":
            hint = f"'{name}' comes after this field: fields are computed in document order"
            return problem._replace(hint=hint)
    return problem


#: What a computed delay may be: seconds, or a duration string (``"1.5s"``).
_DURATION_VALUE = ValueType(frozenset({"integer", "number", "string"}))


def _written_actions(machine: Machine) -> Iterator[tuple[Action, Transition | None]]:
    """The actions written in states and the transitions' own, with their transition."""
    for state in machine.states:
        for action in (*state.actions, *state.on_exit):
            yield action, None
    for transition in machine.transitions:
        for action in transition.actions:
            yield action, transition


def written_expressions(machine: Machine) -> Iterator[tuple[str, Position, Transition | None]]:
    """Every expression of ``machine`` that is a string (``when:``, an ``if`` branch's
    ``when``, ``assign`` and ``log`` ``expr``, ``send`` payload values), with where it is
    written and the transition whose scope it is read in (None: a state's actions)."""
    for transition in machine.transitions:
        if transition.when is not None:
            yield transition.when, transition.when_pos or transition.pos, transition
    for top, owner in _written_actions(machine):
        for action in nested_actions((top,)):
            expr = action.params.get("expr")
            if action.type in (ASSIGN, LOG) and isinstance(expr, str):
                yield expr, action.param_pos.get("expr", action.pos), owner
            for branch in action.branches:
                if branch.when is not None:
                    yield branch.when, branch.when_pos or branch.pos, owner
            for key in ("event_expr", "delay_expr"):
                text = action.params.get(key)
                if action.type == SEND and isinstance(text, str):
                    yield text, action.param_pos.get(key, action.pos), owner
            payload = action.params.get("payload")
            if action.type == SEND and isinstance(payload, Mapping):
                for key, text in payload.items():
                    if isinstance(text, str):
                        yield text, action.payload_pos.get(str(key), (action.pos,) * 2)[1], owner


def transition_scope(machine: Machine, transition: Transition | None) -> Scope:
    """The scope the checker checked ``transition``'s expressions in (None: a state's
    actions), for code generation to parse them again."""
    return _Checker(machine, ()).scope(transition)


def check_expressions(
    machine: Machine, lines: Sequence[str], at_start: Collection[int] | None = None
) -> list[Diagnostic]:
    """SMC090-SMC093 for every ``when:`` and ``assign`` of ``machine``; ``lines`` are its
    file's lines (to place each problem inside its scalar). ``at_start``: the ids of the
    actions it runs as it starts (default: :func:`start_actions` of ``machine``; a view of
    a machine is given its machine's)."""
    computed = any(f.expr is not None for f in machine.context)
    if not machine.has_guards and not machine.pure_actions and not computed:
        return []
    checker = _Checker(machine, lines)
    checker.computed_fields()
    for transition in machine.transitions:
        checker.when(transition)
    if at_start is None:
        at_start = start_actions(machine)
    for action, owner in _written_actions(machine):
        checker.action(action, owner, 0, at_start=id(action) in at_start)
    return checker.found


def start_actions(machine: Machine) -> frozenset[int]:
    """The ids of the actions (at the top of their lists) that ``machine`` may run as it
    starts (:func:`started`): the on-entry actions of the states it enters, the
    ``initial_actions`` of those it enters by default, the ``default_actions`` of the
    history states whose default it takes, and the actions of the eventless transitions
    it may take."""
    start = started(machine)
    found = {id(action) for name in start.states for action in machine.state(name).actions}
    for name in start.defaults:
        found.update(id(action) for action in machine.state(name).initial_actions)
    for name in start.histories:
        found.update(id(action) for action in machine.state(name).default_actions)
    found.update(id(action) for t in start.transitions for action in t.actions)
    return frozenset(found)


class Started(NamedTuple):
    """What the machine runs when it starts, with no event handled (:func:`started`)."""

    #: the states it enters, whose on-entry actions then run
    states: frozenset[str]
    #: the eventless transitions it may take, whose actions then run
    transitions: tuple[Transition, ...]
    #: the compound states of ``states`` it enters by default, whose ``initial_actions``
    #: then run
    defaults: frozenset[str] = frozenset()
    #: the history states whose default it takes, whose ``default_actions`` then run
    histories: frozenset[str] = frozenset()


def started(machine: Machine) -> Started:
    """What the machine may run when it starts, before any event: it enters its initial
    states as SCXML enters a transition's targets (``statechart.semantics``): their
    ancestors, the other regions of each parallel ancestor, and what each state entered
    enters by default (a compound state's initial states, a parallel state's regions, a
    history state's default), at any depth; then the eventless transitions from any of
    those may be taken, entering their targets the same way below the transition's domain,
    and so on. A ``when:`` does not stop one: the class compiles a transition it tests at
    the start with its actions and entries, even where the condition reads ``event`` and is
    false there (it writes that condition as a constant, not the actions away)."""
    found: set[str] = set()
    defaults: set[str] = set()
    histories: set[str] = set()
    calls: set[tuple[tuple[str, ...], str | None]] = set()

    def entered(name: str) -> tuple[str, ...]:
        """``name``, or a history state's default (nothing is remembered at the start)."""
        if not machine.has_state(name):
            return ()
        state = machine.state(name)
        if state.kind != "history":
            return (name,)
        histories.add(name)
        if state.history_default:
            return state.history_default
        if state.parent is None or not machine.has_state(state.parent):
            return ()
        parent = machine.state(state.parent)
        if parent.kind == "parallel":
            return tuple(c for c in parent.children if c != name)
        return tuple(target for target, _ in parent.initial_targets)

    def enter(targets: tuple[str, ...], domain: str | None) -> None:
        """Enter ``targets`` from ``domain`` (None: the top): each with its ancestors below
        ``domain`` and what they enter by default."""
        if (targets, domain) in calls:
            return
        calls.add((targets, domain))
        spine: list[str] = []
        for target in targets:
            for name in entered(target):
                if name != target:
                    enter((name,), domain)
                    continue
                spine.append(name)
                for ancestor in machine.ancestors(name):
                    if ancestor == domain:
                        break
                    spine.append(ancestor)
        found.update(spine)
        inside = set(spine)
        for name in dict.fromkeys(spine):
            state = machine.state(name)
            if state.kind == "parallel":
                for region in state.children:
                    if region not in inside:
                        enter((region,), name)
            elif state.kind == "compound" and not any(c in inside for c in state.children):
                defaults.add(name)
                enter(tuple(target for target, _ in state.initial_targets), name)

    enter(tuple(target for target, _ in machine.initial_targets), None)
    taken: list[Transition] = []
    while True:
        more = [
            t
            for t in machine.transitions
            if t.event is None and t.source in found and all(t is not seen for seen in taken)
        ]
        if not more:
            return Started(
                frozenset(found), tuple(taken), frozenset(defaults), frozenset(histories)
            )
        taken += more
        for t in more:
            if not t.targetless:
                targets = t.targets or (t.target,)
                enter(targets, _domain(machine, t, targets))


def _domain(machine: Machine, transition: Transition, targets: tuple[str, ...]) -> str | None:
    """The state a transition exits and enters below (SCXML's transition domain): its
    source, for an internal one to its descendants; else the innermost compound state that
    holds its source and every target (None: the top)."""
    source = transition.source
    if not machine.has_state(source):
        return None
    if (
        transition.internal
        and machine.state(source).kind == "compound"
        and all(machine.has_state(t) and machine.is_descendant(t, source) for t in targets)
    ):
        return source
    for ancestor in machine.ancestors(source):
        if machine.state(ancestor).kind == "compound" and all(
            machine.has_state(t) and machine.is_descendant(t, ancestor) for t in targets
        ):
            return ancestor
    return None


__all__ = [
    "Started",
    "check_expressions",
    "job_type",
    "start_actions",
    "started",
    "transition_scope",
    "written_expressions",
]
