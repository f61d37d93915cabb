"""Validate loaded documents against ``schemas/machine.schema.json``.

jsonschema finds the problems; this module turns each into a diagnostic at the right
line and column with a message a person can act on (``unknown key 'transtions' (did you
mean 'transitions'?)``) instead of a dump of the failing instance.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import ValidationError

from smc.compiler.chartsyntax import name_mappings
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.loader import LoadedDocument, PathKey
from smc.compiler.resources import data_dir


def schema_path() -> Path:
    return data_dir("schemas") / "machine.schema.json"


@cache
def machine_schema() -> dict[str, Any]:
    with open(schema_path(), encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(machine_schema())


def workflow_schema_path() -> Path:
    return data_dir("schemas") / "workflow.schema.json"


@cache
def _workflow_validator() -> jsonschema.Draft202012Validator:
    with open(workflow_schema_path(), encoding="utf-8") as handle:
        return jsonschema.Draft202012Validator(json.load(handle))


_TYPE_NAMES = {
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
    "number": "a number",
    "integer": "an integer",
    "null": "empty",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _where(path: Sequence[Any]) -> str:
    """``("transitions", 0, "from")`` -> ``transitions[0].from``."""
    out = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        else:
            text = str(part).lower() if isinstance(part, bool) else str(part)
            out += f".{text}" if out else text
    return out or "the document"


def _allowed_keys(schema: dict[str, Any]) -> list[str]:
    return sorted(schema.get("properties", {}))


def _leaf(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, the most relevant sub-error (the one that got furthest)."""
    while error.context and not _is_transitions_or_states(error):
        # The alternative that got furthest into the instance; at equal depth, one whose type
        # matched (its error says what is wrong inside) beats a plain type mismatch.
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return error


def _is_transitions_or_states(error: ValidationError) -> bool:
    return error.validator == "anyOf" and error.validator_value == [
        {"required": ["transitions"]},
        {"required": ["states"]},
    ]


def _type_hint(value: Any, names: Sequence[str]) -> str:
    if isinstance(value, bool) and "string" in names:
        return "YAML reads on/off/yes/no/true/false as booleans: quote the name"
    if isinstance(value, (int, float)) and "string" in names:
        return "quote the value to make it a string"
    if value is None:
        return "a key with nothing after the colon is empty: give it a value"
    if isinstance(value, str) and "array" in names:
        return "write a list: `[a, b]`, or one `- item` per line"
    return ""


def _messages(error: ValidationError) -> Iterator[tuple[str, str, PathKey, bool]]:
    """(message, hint, where, point at the key rather than the value) for one error."""
    path: PathKey = tuple(error.absolute_path)
    where = _where(path)
    value = error.instance
    kind = error.validator
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = _allowed_keys(schema)
        known = schema.get("properties", {})
        for key in value:
            if key in known:
                continue
            if not isinstance(key, str):
                yield (
                    f"{where}: the key {_describe(key)} is not a name",
                    _type_hint(key, ["string"]) or "allowed keys: " + ", ".join(allowed),
                    (*path, key),
                    True,
                )
                continue
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "allowed keys: " + ", ".join(allowed)
            yield f"unknown key {key!r} in {where}", hint, (*path, key), True
        return
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        yield f"{where} is missing the required key {missing!r}", "", path, False
        return
    if kind == "type":
        expected: Any = error.validator_value
        names: list[str] = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        message = f"{where} must be {wanted}, not {_describe(value)}"
        yield message, _type_hint(value, names), path, False
        return
    if kind == "minLength":
        yield f"{where} must not be empty", "write a name, or remove the entry", path, False
        return
    if kind == "dependentRequired" and isinstance(value, dict):
        needs: Any = error.validator_value
        for key, required in needs.items():
            if key in value and any(other not in value for other in required):
                wanted = ", ".join(f"`{other}`" for other in required)
                yield (
                    f"`{key}` in {where} needs {wanted}",
                    "`to` is a history pseudo-state's default: add `history: shallow` (or "
                    "deep), or write the transition under `transitions:`",
                    (*path, key),
                    True,
                )
        return
    if kind == "enum":
        enum: Any = error.validator_value
        options = [str(option) for option in enum]
        close = difflib.get_close_matches(str(value), options, n=1)
        yield (
            f"{where} is {_describe(value)}, which is not one of: {', '.join(options)}",
            f"did you mean {close[0]!r}?" if close else "",
            path,
            False,
        )
        return
    if kind == "pattern":
        # A schema other than the machine's says what its pattern is for (x-smc-pattern).
        wording = schema.get("x-smc-pattern") or {}
        yield (
            f"{where} is {value!r}, which is not {wording.get('what', 'a valid machine name')}",
            wording.get(
                "hint", "start with a letter or '_', then letters, digits, '_', '.' or '-'"
            ),
            path,
            False,
        )
        return
    if _is_transitions_or_states(error):
        yield (
            "the machine has neither `transitions` nor `states`",
            "add `transitions:` (a list of {from, to, event})",
            path,
            False,
        )
        return
    yield f"{where}: {error.message}", "", path, False


#: Mappings whose keys are names (states, events, ...): a key YAML reads as a boolean or a
#: number would silently become "True" or "1", so it is refused where it was written.
_NAME_MAPPINGS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("states",), "state"),
    (("events",), "event"),
    (("actions",), "state"),
    (("groups",), "group"),
    (("context",), "context field"),
    (("jobs",), "job type"),
)


def _name_key_problems(doc: LoadedDocument) -> Iterator[Diagnostic]:
    data = doc.data
    places: list[tuple[PathKey, Any, str]] = [
        (path, data.get(path[0]), what) for path, what in _NAME_MAPPINGS
    ]
    events = data.get("events")
    if isinstance(events, dict):
        for name, options in events.items():
            if isinstance(options, dict) and isinstance(options.get("context_map"), dict):
                places.append((("events", name, "context_map"), options["context_map"], "key"))
            payload = options.get("payload") if isinstance(options, dict) else None
            if isinstance(payload, dict) and isinstance(payload.get("properties"), dict):
                places.append(
                    (("events", name, "payload", "properties"), payload["properties"], "field")
                )
    places.extend((path, action, "parameter") for path, action in _actions(data))
    places.extend(name_mappings(data))
    for path, mapping, what in places:
        if not isinstance(mapping, dict):
            continue
        for key in mapping:
            if isinstance(key, str):
                continue
            pos = doc.pos((*path, key), key=True)
            yield Diagnostic(
                doc.path,
                pos.line,
                pos.col,
                "SMC004",
                f"the {what} name here is read as {_describe(key)}, not as a name",
                _type_hint(key, ["string"]) or "write the name as a string",
            )


def _actions(data: dict[str, Any]) -> Iterator[tuple[PathKey, Any]]:
    """Every action mapping and its ``params:``, with their paths."""
    lists: list[tuple[PathKey, Any]] = []
    actions = data.get("actions")
    if isinstance(actions, dict):
        lists.extend((("actions", state), items) for state, items in actions.items())
    transitions = data.get("transitions")
    if isinstance(transitions, list):
        lists.extend(
            (("transitions", index, "actions"), t.get("actions"))
            for index, t in enumerate(transitions)
            if isinstance(t, dict)
        )
    for path, items in lists:
        for index, action in enumerate(items if isinstance(items, list) else ()):
            yield (*path, index), action
            if isinstance(action, dict) and isinstance(action.get("params"), dict):
                yield (*path, index, "params"), action["params"]


def validate(doc: LoadedDocument) -> list[Diagnostic]:
    """Every schema problem of ``doc``, each at the key or value it is about."""
    diagnostics = list(_name_key_problems(doc))
    for error in _validator().iter_errors(doc.data):
        for message, hint, path, at_key in _messages(_leaf(error)):
            pos = doc.pos(path, key=at_key)
            diagnostics.append(Diagnostic(doc.path, pos.line, pos.col, "SMC004", message, hint))
    return diagnostics


#: Validators whose failure is about one value alone (its spelling, its range), not about the
#: shape of the document: the value can be set aside and the rest still checked.
_VALUE_VALIDATORS = frozenset(
    {
        "enum",
        "const",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "multipleOf",
    }
)


def without_refused_values(doc: LoadedDocument) -> Any | None:
    """A copy of ``doc``'s data without the values the schema refuses, when every problem is
    such a value (``history: medium``, a name that breaks a pattern: a key of a mapping) and
    the copy then passes the schema; None otherwise. The checks after the schema run on it,
    so one misspelt value does not hide every other problem of the file (SMC004 is still
    reported, and the file still fails). A wrong shape (an unknown key, a list for a
    mapping) is not set aside: what follows from it would be guesses."""
    if any(True for _ in _name_key_problems(doc)):
        return None
    paths: list[tuple[Any, ...]] = []
    for error in _validator().iter_errors(doc.data):
        leaf = _leaf(error)
        path = tuple(leaf.absolute_path)
        if leaf.validator not in _VALUE_VALIDATORS or not path or not isinstance(path[-1], str):
            return None
        paths.append(path)
    if not paths:
        return None
    data = copy.deepcopy(doc.data)
    for path in paths:
        parent = data
        for step in path[:-1]:
            parent = parent[step]
        if not isinstance(parent, dict):
            return None
        parent.pop(path[-1], None)
    if any(True for _ in _validator().iter_errors(data)):
        return None
    return data


def validate_workflow(doc: LoadedDocument) -> list[Diagnostic]:
    """Every problem of a workflow file against ``schemas/workflow.schema.json`` (SMC120),
    worded and placed as the machine schema's are."""
    diagnostics = []
    for error in _workflow_validator().iter_errors(doc.data):
        for message, hint, path, at_key in _messages(_leaf(error)):
            pos = doc.pos(path, key=at_key)
            diagnostics.append(Diagnostic(doc.path, pos.line, pos.col, "SMC120", message, hint))
    return diagnostics
