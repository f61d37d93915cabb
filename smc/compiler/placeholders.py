"""Placeholders checked against the machine's declared data (docs/language.md, "Placeholders:
what `{…}` can name").

A ``{a.b.c}`` placeholder is looked up in the worker's context when the action runs
(:mod:`smc.runtime.context`); a path that is missing is left as written. Most of that context
is open: ``--initial-context`` may hold any key, a job's data keys are copied to the top level,
and actions store keys of their own. Three parts of it have a shape the runtime alone writes,
and the schemas a machine declares can close them:

- ``payload`` and ``event_data.payload``: the payload of the last inbound event applied, and
  only an event with a transition is applied. When every event on a transition declares a
  payload schema, the payload is one of those schemas' values;
- ``current_job.data``: the data of the job last claimed. When the machine declares ``jobs:``
  with a ``data:`` schema for each, claims only with ``check_database_queue`` whose
  ``job_type`` names declared types, and has no user action (one may claim), the data is one
  of those schemas' values;
- ``current_job`` and ``event_data`` themselves: dicts of fixed keys.

A path one of those can never hold is SMC085 (an error), at the segment that cannot exist,
with the closest field. A schema says a field can never exist only when the object is closed
(``additionalProperties: false``, no ``patternProperties``) and does not list it, or the value
is of a type that has no fields (a ``string``); anything the checker cannot follow
(``$ref``, ``allOf``/``anyOf``/``oneOf``, an object without ``additionalProperties: false``,
a schema without ``type``) may hold anything, and the placeholder is not reported.

Top-level names stay open (``--initial-context`` may give any key), so a name that is no
declared context field, job data field, key an action or an event's ``context_map`` stores,
nor a key the runtime writes, yet is close to a context field's name, is only a warning
(SMC086). Machines that declare no data are not checked here at all.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from smc.catalog import BUILTIN_ACTIONS
from smc.compiler.commands import placeholder_position
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.model import ASSIGN, Action, Machine, Position
from smc.runtime.context import PLACEHOLDER, RESERVED_KEYS

#: The keys of ``current_job`` (:func:`smc.runtime.context.job_to_dict`).
JOB_KEYS: Final = frozenset(
    {
        "id",
        "job_id",
        "job_type",
        "machine_type",
        "data",
        "priority",
        "attempts",
        "status",
        "created_at",
    }
)
#: The keys of ``event_data`` (``smc.runtime.inbox``).
EVENT_KEYS: Final = frozenset({"type", "payload", "source", "job_id"})
#: Context keys built-in actions store (docs/language.md, Placeholders).
BUILTIN_KEYS: Final = frozenset(
    {
        "pending_jobs",
        "spawned_jobs",
        "last_error",
        "last_error_action",
        "last_error_command",
        "last_error_exit_code",
        "completed_jobs",
        "failed_jobs",
    }
)
#: Parameters whose value names a context key an action stores.
_STORING_PARAMS: Final = ("store_as", "key", "list_key")
#: Schema keywords the walk does not follow: a schema using one may hold anything.
_UNFOLLOWED: Final = frozenset(
    {
        "$ref",
        "$dynamicRef",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "if",
        "dependentSchemas",
        "patternProperties",
        "unevaluatedProperties",
        "unevaluatedItems",
    }
)

_PAYLOADS: Final = "the payload schema of any event the machine takes"
_JOBS: Final = "the data schema of any job type the machine claims"

#: Where a path stops in a schema: (index of the segment that cannot exist, the fields the
#: value there may have).
Miss = tuple[int, tuple[str, ...]]


def _types(schema: Mapping[str, Any]) -> frozenset[str] | None:
    written = schema.get("type")
    if isinstance(written, str):
        return frozenset({written})
    if isinstance(written, list) and all(isinstance(t, str) for t in written):
        return frozenset(written)
    return None


def schema_miss(schema: Any, segments: Sequence[str], first: int = 0) -> Miss | None:
    """Where ``segments`` (looked up as the runtime does: a mapping by key, a list by index)
    can never exist in a value of ``schema``, or None when it may (or the schema cannot tell).
    ``first`` is the index the first segment has in the whole placeholder."""
    for offset, segment in enumerate(segments):
        if not isinstance(schema, Mapping) or _UNFOLLOWED & schema.keys():
            return None
        types = _types(schema)
        if types is None:
            return None
        properties = schema.get("properties")
        fields = dict(properties) if isinstance(properties, Mapping) else {}
        if "object" in types and segment in fields:
            schema = fields[segment]
            continue
        if "array" in types and segment.lstrip("-").isdigit():
            items = schema.get("items")
            if "prefixItems" in schema or not isinstance(items, Mapping):
                return None
            schema = items
            continue
        if "object" in types and schema.get("additionalProperties") is not False:
            return None
        return first + offset, tuple(sorted(str(name) for name in fields))
    return None


def _union_miss(schemas: Sequence[Any], segments: Sequence[str], first: int) -> Miss | None:
    """A miss only if the path is missed in every schema: at the deepest segment reached, with
    the fields of the schemas that stop there."""
    misses: list[Miss] = []
    for schema in schemas:
        miss = schema_miss(schema, segments, first)
        if miss is None:
            return None
        misses.append(miss)
    if not misses:
        return None
    deepest = max(index for index, _ in misses)
    fields = sorted({name for index, names in misses if index == deepest for name in names})
    return deepest, tuple(fields)


class _Scope:
    """What the machine's declarations say about its context."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        actions = [a for state in machine.states for a in (*state.actions, *state.on_exit)]
        actions += [a for t in machine.transitions for a in t.actions]
        self.actions = actions
        events = {event.name: event for event in machine.events}
        fired = {t.event for t in machine.transitions if t.event is not None}
        schemas = [events[name].payload_schema if name in events else None for name in fired]
        #: the payload schemas of every event that can be applied (None: some payload is open).
        self.payloads: list[Any] | None = (
            None if not schemas or any(s is None for s in schemas) else schemas
        )
        self.jobs: list[Any] | None = self._job_schemas()
        self.context = [field.name for field in machine.context]
        known = set(self.context) | RESERVED_KEYS | BUILTIN_KEYS
        for action in actions:
            for param in _STORING_PARAMS:
                value = action.params.get(param)
                if isinstance(value, str):
                    known.add(value.split(".")[0])
        for event in machine.events:
            known.update(key for key, _ in event.context_map)
        for job in machine.jobs:
            properties = (job.data_schema or {}).get("properties")
            if isinstance(properties, Mapping):
                known.update(str(name) for name in properties)
        self.known = frozenset(known)

    def _job_schemas(self) -> list[Any] | None:
        machine = self.machine
        declared = {job.name: job.data_schema for job in machine.jobs}
        if not declared or any(schema is None for schema in declared.values()):
            return None
        claimed: set[str] = set()
        for action in self.actions:
            if action.type == ASSIGN:
                continue
            if action.type not in BUILTIN_ACTIONS or action.type == "claim_job":
                return None  # a user action or a claim by id may claim any type
            if action.type != "check_database_queue":
                continue
            written = action.params.get("job_type")
            names = [written] if isinstance(written, str) else written
            if not isinstance(names, list) or not names:
                return None  # any type
            for name in names:
                if not isinstance(name, str) or name not in declared:
                    return None  # a placeholder, or a type without a declared schema
                claimed.add(name)
        return [declared[name] for name in sorted(claimed)] or None


def _strings(value: Any) -> Iterator[str]:
    """The strings of a parameter's value in the order they are written."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _fields_hint(name: str, fields: Sequence[str], what: str) -> str:
    close = difflib.get_close_matches(name, sorted(fields), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    if fields:
        return f"{what} has: " + ", ".join(sorted(fields))
    return f"{what} has no fields"


class _Checker:
    def __init__(self, machine: Machine, lines: Sequence[str]) -> None:
        self.scope = _Scope(machine)
        self.lines = lines
        self.found: list[Diagnostic] = []

    def action(self, action: Action) -> None:
        for param, value in action.params.items():
            start = action.param_pos.get(param, action.pos)
            index = 0  # the placeholder's rank among those of the parameter
            for text in _strings(value):
                for match in PLACEHOLDER.finditer(text):
                    self.placeholder(match.group(1), start, index)
                    index += 1

    def placeholder(self, path: str, start: Position, index: int) -> None:
        segments = path.split(".")
        found = self.problem(segments)
        if found is None:
            return
        at, code, message, hint = found
        where = placeholder_position(start, list(self.lines), index)
        if where != start:  # the `{` was found: point at the segment
            col = where.col + 1 + sum(len(s) + 1 for s in segments[:at])
            where = Position(where.path, where.line, col)
        self.found.append(Diagnostic(where.path, where.line, where.col, code, message, hint))

    def problem(self, segments: list[str]) -> tuple[int, str, str, str] | None:
        """(segment index, code, message, hint) for a path that cannot resolve, or None."""
        scope = self.scope
        root = segments[0]
        written = "{" + ".".join(segments) + "}"
        if root == "payload" and len(segments) > 1:
            return self.data_miss(scope.payloads, segments, 1, written, _PAYLOADS)
        if root == "event_data" and len(segments) > 1:
            if segments[1] not in EVENT_KEYS:
                return self.key_miss(segments, 1, written, EVENT_KEYS, "`event_data`")
            if segments[1] == "payload" and len(segments) > 2:
                return self.data_miss(scope.payloads, segments, 2, written, _PAYLOADS)
            return None
        if root == "current_job" and len(segments) > 1:
            if segments[1] not in JOB_KEYS:
                return self.key_miss(segments, 1, written, JOB_KEYS, "`current_job`")
            if segments[1] == "data" and len(segments) > 2:
                return self.data_miss(scope.jobs, segments, 2, written, _JOBS)
            return None
        if root in scope.known or not scope.context:
            return None
        close = difflib.get_close_matches(root, sorted(scope.context), n=1, cutoff=0.6)
        if not close:
            return None
        return (
            0,
            "SMC086",
            f"placeholder {written} names no context field, job data field or key the "
            f"machine stores; it is left as written unless --initial-context gives "
            f"{root!r}",
            f"did you mean the context field {close[0]!r}?",
        )

    @staticmethod
    def key_miss(
        segments: list[str], at: int, written: str, keys: frozenset[str], what: str
    ) -> tuple[int, str, str, str]:
        return (
            at,
            "SMC085",
            f"placeholder {written} can never resolve: {what} has no key {segments[at]!r}",
            _fields_hint(segments[at], sorted(keys), what),
        )

    @staticmethod
    def data_miss(
        schemas: list[Any] | None, segments: list[str], first: int, written: str, what: str
    ) -> tuple[int, str, str, str] | None:
        if schemas is None:
            return None
        miss = _union_miss(schemas, segments[first:], first)
        if miss is None:
            return None
        at, fields = miss
        owner = "`" + ".".join(segments[:at]) + "`"
        return (
            at,
            "SMC085",
            f"placeholder {written} can never resolve: {owner} has no field "
            f"{segments[at]!r} in {what}",
            _fields_hint(segments[at], fields, owner),
        )


def check_placeholders(machine: Machine, lines: Sequence[str]) -> list[Diagnostic]:
    """SMC085 and SMC086 for the placeholders in ``machine``'s action parameters; ``lines``
    are its file's lines (to place each at its character). A machine that declares no data
    (``context:``, payload schemas, ``jobs:``) is not checked."""
    if not machine.has_data:
        return []
    checker = _Checker(machine, lines)
    for action in checker.scope.actions:
        if action.type != ASSIGN:  # an expression, not a template
            checker.action(action)
    return checker.found


__all__ = ["EVENT_KEYS", "JOB_KEYS", "check_placeholders", "schema_miss"]
