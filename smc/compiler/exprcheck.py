"""The expressions of a machine file, checked where they are written: ``when:`` conditions and
``assign`` actions (docs/language.md, Guards and assignments).

Each expression is checked by :mod:`~smc.compiler.expressions` against the scope of the
place it is written in, and each problem becomes a diagnostic at the character it is about,
inside the YAML scalar (:mod:`~smc.compiler.loader.scalars` follows the quoting):

- SMC090: not an expression, or a construct outside the language;
- SMC091: an unknown context field, payload or job field, or state;
- SMC092: a type mismatch, a ``when:`` that is not true or false, or an ``expr:`` whose value
  its location cannot hold;
- SMC093: an ``assign`` whose ``location`` is not a context field.

The scope (:func:`transition_scope`): the context fields; the payload of the transition's
event (none for an eventless transition, an event without a payload schema, or a state's
actions, which run for whichever transition enters or leaves the state); the job's data
(:func:`job_type`); the states of the chart, for ``In()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from smc.compiler.diagnostics import Diagnostic
from smc.compiler.expressions import (
    ANY,
    Field,
    Problem,
    ProblemKind,
    Scope,
    ValueType,
    did_you_mean,
    parse_expression,
    parse_guard,
    schema_type,
)
from smc.compiler.loader.document import Pos
from smc.compiler.loader.scalars import scalar_positions
from smc.compiler.model import ASSIGN, Action, Machine, Position, Transition

_CODES: Mapping[ProblemKind, str] = {
    "syntax": "SMC090",
    "construct": "SMC090",
    "name": "SMC091",
    "type": "SMC092",
}
_NO_PAYLOAD = "there is no payload here"


def _union(a: ValueType, b: ValueType) -> ValueType:
    if not a.known or not b.known:
        return ANY
    fields = a.fields if a.fields is not None else b.fields
    items = a.items if a.items is not None else b.items
    return ValueType(a.kinds | b.kinds, fields, items)


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
                merged = _union(merged, fields[name].type)
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

    def assign(self, action: Action, transition: Transition | None) -> None:
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


def _assignments(machine: Machine) -> Iterator[tuple[Action, Transition | None]]:
    for state in machine.states:
        for action in (*state.actions, *state.on_exit):
            if action.type == ASSIGN:
                yield action, None
    for transition in machine.transitions:
        for action in transition.actions:
            if action.type == ASSIGN:
                yield action, transition


def transition_scope(machine: Machine, transition: Transition | None) -> Scope:
    """The scope the checker checked ``transition``'s expressions in (None: a state's
    actions), for code generation to parse them again."""
    return _Checker(machine, ()).scope(transition)


def check_expressions(machine: Machine, lines: Sequence[str]) -> list[Diagnostic]:
    """SMC090-SMC093 for every ``when:`` and ``assign`` of ``machine``; ``lines`` are its
    file's lines (to place each problem inside its scalar)."""
    if not machine.has_guards and not machine.assignments:
        return []
    checker = _Checker(machine, lines)
    for transition in machine.transitions:
        checker.when(transition)
    for action, owner in _assignments(machine):
        checker.assign(action, owner)
    return checker.found


__all__ = ["check_expressions", "job_type", "transition_scope"]
