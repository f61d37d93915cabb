"""Typed machine data: ``context:``, event ``payload:`` and ``jobs:`` (docs/language.md, Data).

Each declaration is a JSON Schema written in YAML. This module checks them where they are
written (a schema jsonschema refuses, a default its schema refuses, a name that cannot be a
Python field, a payload that is not an object: SMC080-SMC083) and turns a schema into the
Python type the generated module annotates with (:func:`annotation`), from a fixed vocabulary
(``int``, ``str``, ``list[...]``, ...) plus ``Literal[...]`` of string literals made by
``pystr``: no text of the schema becomes code.

Schemas never reach the network: a ``$ref`` must be local (``#...``), and a context field's
schema may not use one at all (the generated ``CONTEXT_SCHEMA`` gathers the fields under one
object, where a field's ``#`` would mean something else). Validation here and in the runtime
uses a ``referencing.Registry`` with no retrieval.
"""

from __future__ import annotations

import keyword
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from typing import Any

from smc.compiler import names
from smc.compiler.diagnostics import Diagnostic
from smc.compiler.expressions import RESERVED_NAMES as EXPRESSION_NAMES
from smc.compiler.loader import LoadedDocument, PathKey
from smc.compiler.model import Machine
from smc.compiler.pylayout import pystr

#: Names a context field or payload field cannot have: what the generated ``Context`` class
#: defines, and the names its class body and its methods' annotations use (a field named
#: ``int`` would shadow the type in the class body for the fields after it; one named
#: ``dataclasses`` the module its list and dict defaults are made by).
RESERVED_FIELD_NAMES = frozenset(
    {
        "to_dict",
        "from_dict",
        "Context",
        "dataclasses",
        "Mapping",
        "Any",
        "Literal",
        "NotRequired",
        "None",
        "int",
        "float",
        "str",
        "bool",
        "list",
        "dict",
    }
)

#: JSON Schema type -> the Python type the generated module writes.
_PYTHON_TYPES = {
    "integer": "int",
    "number": "float",
    "string": "str",
    "boolean": "bool",
    "null": "None",
    "object": "dict[str, Any]",
}

#: How deep ``items`` of arrays are followed for a typed list (``list[list[int]]``).
_MAX_TYPE_DEPTH = 3
#: A JSON Schema error message is cut to this length in a diagnostic (it may quote the value).
_MAX_MESSAGE = 200


def payload_class(event_name: str) -> str | None:
    """The ``TypedDict`` of an event's payload: ``failed`` -> ``FailedPayload``."""
    base = names.pascal(event_name)
    return None if base is None else f"{base}Payload"


# ---- types -------------------------------------------------------------------------------


def _literal_value(value: Any) -> str | None:
    """A value ``Literal[...]`` can hold, as code; None for one it cannot."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        # mypy takes only a 64-bit integer in Literal[...] ("cannot contain arbitrary
        # expressions"): a larger one makes the field Any
        return repr(value) if abs(value) < 2**63 else None
    if isinstance(value, str):
        return pystr(value)
    return None


def typed_default(value: Any, schema: Any) -> Any:
    """``value`` (a default that matches ``schema``) as :func:`annotation` types it: a
    whole float where the schema takes an integer and no other number (JSON Schema's
    ``integer`` takes ``1.0``) as that integer, so ``default: 1.0`` is written ``1``, which
    an ``int`` or ``Literal[1]`` field takes; lists and objects item by item."""
    if not isinstance(schema, Mapping):
        return value
    if isinstance(value, float) and value.is_integer():
        written = schema.get("type")
        types = [written] if isinstance(written, str) else written
        options = [schema["const"]] if "const" in schema else schema.get("enum")
        if isinstance(options, list):
            ints = any(isinstance(o, int) and not isinstance(o, bool) for o in options)
            whole = ints and not any(isinstance(o, float) for o in options)
        else:
            whole = isinstance(types, list) and "integer" in types and "number" not in types
        return int(value) if whole else value
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [typed_default(item, schema["items"]) for item in value]
    properties = schema.get("properties")
    if isinstance(value, dict) and isinstance(properties, Mapping):
        return {k: typed_default(v, properties.get(k)) for k, v in value.items()}
    return value


def annotation(schema: Any, depth: int = 0) -> str:
    """The Python type of values of ``schema`` (plain data): ``enum``/``const`` of strings,
    integers, booleans and null as ``Literal[...]``, else the JSON types (a list of them a
    union), arrays with simple ``items`` typed, anything else ``Any``."""
    if not isinstance(schema, Mapping):
        return "Any"
    options: list[Any] | None = None
    if "const" in schema:
        options = [schema["const"]]
    elif isinstance(schema.get("enum"), list) and schema["enum"]:
        options = list(schema["enum"])
    if options is not None:
        values = [option for option in options if option is not None]
        codes = [_literal_value(value) for value in values]
        if any(code is None for code in codes):
            return "Any"
        parts = [f"Literal[{', '.join(dict.fromkeys(str(c) for c in codes))}]"] if codes else []
        if len(values) < len(options):
            parts.append("None")
        return " | ".join(parts)
    written = schema.get("type")
    types = [written] if isinstance(written, str) else written
    if not isinstance(types, list) or not types:
        return "Any"
    parts = []
    for json_type in types:
        if json_type == "array":
            items = schema.get("items")
            inner = annotation(items, depth + 1) if depth < _MAX_TYPE_DEPTH else "Any"
            parts.append(f"list[{inner if isinstance(items, Mapping) else 'Any'}]")
        else:
            parts.append(_PYTHON_TYPES.get(str(json_type), "Any"))
    if "Any" in parts:
        return "Any"
    return " | ".join(dict.fromkeys(parts))


def json_types(schema: Any) -> tuple[str, ...]:
    """The JSON types ``schema`` names in ``type`` (empty: any), for the generated
    ``from_dict``'s check."""
    if not isinstance(schema, Mapping):
        return ()
    written = schema.get("type")
    types = [written] if isinstance(written, str) else written
    if not isinstance(types, list):
        return ()
    return tuple(str(t) for t in types if t in (*_PYTHON_TYPES, "array"))


# ---- checks ------------------------------------------------------------------------------


@cache
def _jsonschema() -> Any:
    # Imported on first use: most machines declare no data.
    import jsonschema

    return jsonschema


def _validator(schema: Mapping[str, Any]) -> Any:
    from referencing import Registry

    return _jsonschema().Draft202012Validator(schema, registry=Registry())


def _short(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _refs(value: Any, path: PathKey) -> Iterator[tuple[PathKey, Any]]:
    """Every ``$ref``/``$dynamicRef`` in a schema, with its path."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef"):
                yield (*path, key), item
            else:
                yield from _refs(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _refs(item, (*path, index))


class _Checker:
    def __init__(self, doc: LoadedDocument) -> None:
        self.doc = doc
        self.found: list[Diagnostic] = []

    def report(
        self, path: PathKey, code: str, message: str, hint: str, *, key: bool = False
    ) -> None:
        pos = self.doc.pos(path, key=key)
        self.found.append(Diagnostic(self.doc.path, pos.line, pos.col, code, message, hint))

    def schema(
        self, schema: Mapping[str, Any], path: PathKey, what: str, *, refs: bool = True
    ) -> bool:
        """Whether ``schema`` (written at ``path``) is a valid JSON Schema; SMC080 if not."""
        for ref_path, ref in _refs(schema, path):
            if not refs:
                self.report(
                    ref_path,
                    "SMC080",
                    f"{what} uses `$ref`, which a context field cannot",
                    "write the field's schema out in full",
                    key=True,
                )
                return False
            if not isinstance(ref, str) or not ref.startswith("#"):
                self.report(
                    ref_path,
                    "SMC080",
                    f"{what} refers to {ref!r}: smc only follows references inside the "
                    "schema (`#/...`)",
                    "put the referenced schema under `$defs` and refer to `#/$defs/<name>`",
                )
                return False
        jsonschema = _jsonschema()
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as problem:
            error = problem
        else:
            error = None
        if error is None:
            return True
        self.report(
            (*path, *error.path),
            "SMC080",
            f"{what} is not a valid JSON Schema: {_short(error.message)}",
            "see https://json-schema.org/understanding-json-schema/ (draft 2020-12)",
        )
        return False

    def field_name(self, name: str, path: PathKey, what: str) -> None:
        """A context or payload field name the generated class can hold as written."""
        problem = None
        hint = "use letters, digits and '_', not first"
        if unicodedata.normalize("NFKC", name) != name or not name.isidentifier():
            problem = "is not a Python identifier"
        elif keyword.iskeyword(name):
            problem = "is a Python keyword"
        elif name.startswith("_"):
            problem = "starts with '_'"
        elif name in RESERVED_FIELD_NAMES:
            problem = "is a name the generated class uses itself"
            hint = "rename it; taken: " + ", ".join(sorted(RESERVED_FIELD_NAMES))
        elif what == "context field" and name in EXPRESSION_NAMES:
            # an expression's bare name is a context field, but these four mean something
            # else there (docs/language.md, Expressions): the field could never be read
            self.report(
                path,
                "SMC082",
                f"{what} {name!r} could never be read: in an expression, {name!r} means "
                "something else",
                "rename it; expressions read `payload`, `job`, `len` and `In` as themselves",
                key=True,
            )
        if problem is not None:
            self.report(
                path,
                "SMC082",
                f"{what} {name!r} {problem}: it is a field of the generated class as written",
                hint,
                key=True,
            )

    def context(self, machine: Machine) -> None:
        for field in machine.context:
            base: PathKey = ("context", field.name)
            what = f"context field {field.name!r}"
            self.field_name(field.name, base, "context field")
            if not self.schema(field.schema, base, what, refs=False) or not field.has_default:
                continue
            error = _jsonschema().exceptions.best_match(
                _validator(field.schema).iter_errors(field.default)
            )
            if error is not None:
                self.report(
                    (*base, "default", *error.path),
                    "SMC081",
                    f"the default of {what} does not match its schema: {_short(error.message)}",
                    "change the default or the schema",
                )

    def payloads(self, machine: Machine) -> None:
        classes: dict[str, str] = {}
        for event in machine.events:
            schema = event.payload_schema
            if schema is None:
                continue
            base: PathKey = ("events", event.name, "payload")
            what = f"the payload of event {event.name!r}"
            if not self.schema(schema, base, what):
                continue
            if schema.get("type") != "object":
                self.report(
                    (*base, "type") if "type" in schema else base,
                    "SMC083",
                    f"{what} must be `type: object`: its fields are the event's named " "arguments",
                    "write `type: object` with the fields under `properties:`",
                    key="type" not in schema,
                )
                continue
            properties = schema.get("properties")
            for name in properties if isinstance(properties, Mapping) else ():
                self.field_name(str(name), (*base, "properties", name), "payload field")
            class_name = payload_class(event.name)
            if class_name is None:
                continue  # SMC050: the event's name itself
            other = classes.get(class_name)
            if other is not None:
                self.report(
                    base,
                    "SMC051",
                    f"the payloads of events {event.name!r} and {other!r} both become "
                    f"{class_name!r} in Python",
                    "rename one of the events",
                    key=True,
                )
            classes.setdefault(class_name, event.name)

    def attributes(self, machine: Machine) -> None:
        """An event method named like the attribute the data adds (``context``,
        ``payload``) would replace it."""
        taken = {"context": bool(machine.context)}
        taken["payload"] = any(e.payload_schema is not None for e in machine.events)
        for event in machine.events:
            method = names.method(event.name, chart=machine.is_chart)
            if method is not None and taken.get(method):
                pos = event.pos
                self.found.append(
                    Diagnostic(
                        pos.path,
                        pos.line,
                        pos.col,
                        "SMC051",
                        f"event {event.name!r} becomes method {method!r}, which is the "
                        f"machine's {method} attribute",
                        "rename the event",
                    )
                )

    def jobs(self, machine: Machine) -> None:
        for job in machine.jobs:
            schema = job.data_schema
            if schema is None:
                continue
            base: PathKey = ("jobs", job.name, "data")
            what = f"the data schema of job type {job.name!r}"
            if not self.schema(schema, base, what):
                continue
            # A job's data is a JSON object (docs/queue.md): a schema of another type passed
            # the check, and no job of it could be added.
            kind = schema.get("type", "object")
            if kind != "object" and not (isinstance(kind, list) and "object" in kind):
                self.report(
                    (*base, "type"),
                    "SMC083",
                    f"{what} must be `type: object`: a job's data is an object, whose keys "
                    "the machine reads",
                    "write `type: object` with the fields under `properties:`",
                )


def check_data(doc: LoadedDocument, machine: Machine) -> list[Diagnostic]:
    """The problems of ``machine``'s data declarations, each where it is written."""
    if not machine.has_data:
        return []
    checker = _Checker(doc)
    checker.context(machine)
    checker.payloads(machine)
    checker.attributes(machine)
    checker.jobs(machine)
    return checker.found


def context_schema(machine: Machine) -> dict[str, Any]:
    """The JSON Schema of the whole context: an object of the fields, those without a
    default required, no others allowed (the generated ``CONTEXT_SCHEMA``)."""
    return {
        "type": "object",
        "properties": {field.name: dict(field.schema) for field in machine.context},
        "required": [field.name for field in machine.context if not field.has_default],
        "additionalProperties": False,
    }


def payload_fields(schema: Mapping[str, Any]) -> list[tuple[str, str, bool]]:
    """``(name, annotation, required)`` for each property of a payload schema, in order."""
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return []
    required = schema.get("required")
    needed: Sequence[Any] = required if isinstance(required, list) else ()
    return [(str(name), annotation(sub), name in needed) for name, sub in properties.items()]


__all__ = [
    "RESERVED_FIELD_NAMES",
    "annotation",
    "check_data",
    "context_schema",
    "json_types",
    "payload_class",
    "payload_fields",
]
