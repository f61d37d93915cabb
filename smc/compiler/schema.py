"""Validate loaded documents against ``schemas/machine.schema.json``.

jsonschema finds the problems; this module turns each into a diagnostic at the right
line and column with a message a person can act on (``unknown key 'transtions' (did you
mean 'transitions'?)``) instead of a dump of the failing instance.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema import ValidationError

from smc.compiler.diagnostics import Diagnostic
from smc.compiler.loader import LoadedDocument


def _data_dir(name: str) -> Path:
    """``templates/`` or ``schemas/``: inside the wheel (``smc/_data``) or the source tree."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "_data" / name, package.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"smc data directory {name!r} is missing from the installation")


def schema_path() -> Path:
    return _data_dir("schemas") / "machine.schema.json"


@cache
def machine_schema() -> dict[str, Any]:
    with open(schema_path(), encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(machine_schema())


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


def _where(path: list[Any]) -> str:
    return "/".join(str(p) for p in path) or "the document"


def _allowed_keys(schema: dict[str, Any]) -> list[str]:
    return sorted(schema.get("properties", {}))


def _leaf(error: ValidationError) -> ValidationError:
    """For oneOf/anyOf, the most relevant sub-error (the one that got furthest)."""
    while error.context:
        # The alternative that got furthest into the instance; at equal depth, one whose type
        # matched (its error says what is wrong inside) beats a plain type mismatch.
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return error


def _message(error: ValidationError) -> tuple[str, str, bool]:
    """(message, hint, point at the key rather than the value)."""
    path = list(error.absolute_path)
    where = _where(path)
    value = error.instance
    kind = error.validator
    if kind == "additionalProperties" and isinstance(value, dict):
        allowed = _allowed_keys(error.schema)
        extra = sorted(str(k) for k in value if k not in error.schema.get("properties", {}))
        key = extra[0] if extra else "?"
        close = difflib.get_close_matches(key, allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "allowed keys: " + ", ".join(allowed)
        return f"unknown key {key!r} in {where}", hint, True
    if kind == "required":
        missing = str(error.message).split("'")[1] if "'" in error.message else "?"
        return f"{where} is missing the required key {missing!r}", "", False
    if kind == "type":
        expected = error.validator_value
        names = [expected] if isinstance(expected, str) else list(expected)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        hint = ""
        if isinstance(value, bool) and "string" in names:
            hint = "YAML reads on/off/yes/no/true/false as booleans: quote the name"
        elif isinstance(value, (int, float)) and "string" in names:
            hint = "quote the value to make it a string"
        elif value is None:
            hint = "a key with nothing after the colon is empty: give it a value"
        return f"{where} must be {wanted}, not {_describe(value)}", hint, False
    if kind == "minLength":
        return f"{where} must not be empty", "", False
    if kind == "pattern":
        return (
            f"{where} is {value!r}, which is not a valid name",
            f"use letters, digits, '_', '.', '-' (pattern {error.validator_value})",
            False,
        )
    if kind == "anyOf" and error.validator_value == [
        {"required": ["transitions"]},
        {"required": ["states"]},
    ]:
        return "the machine has neither `transitions` nor `states`", "add a transitions list", False
    return f"{where}: {error.message}", "", False


def validate(doc: LoadedDocument) -> list[Diagnostic]:
    diagnostics = []
    for error in _validator().iter_errors(doc.data):
        leaf = _leaf(error)
        message, hint, at_key = _message(leaf)
        path = tuple(leaf.absolute_path)
        if leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict):
            extra = [k for k in leaf.instance if k not in leaf.schema.get("properties", {})]
            if extra:
                path = (*path, str(extra[0]))
        pos = doc.pos(path, key=at_key)
        diagnostics.append(Diagnostic(doc.path, pos.line, pos.col, "SMC004", message, hint))
    return diagnostics
