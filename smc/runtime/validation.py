"""Data checked where it enters a machine, against the schemas of its generated class.

A class generated from a machine that declares typed data (docs/language.md, "Data") carries
``EVENT_PAYLOAD_SCHEMAS`` (event -> the JSON Schema of its payload) and ``JOB_DATA_SCHEMAS``
(job type -> the JSON Schema of its data); other classes have neither, and nothing is
checked for them. The worker checks an inbound event's payload before applying it (an
invalid one is dead-lettered with the schema's message, never applied) and a claimed job's
data before running it (an invalid one is failed, not retried, never half-processed); the
CLI checks what it adds or sends when it knows the receiving machine.

jsonschema (draft 2020-12) does the checking, imported on first use: a worker whose class
declares no schema never loads it. References are never fetched: the registry holds nothing
and retrieves nothing, so only ``#...`` references inside a schema resolve (the checker,
SMC080, refuses any other).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smc.machine import GeneratedMachine

#: A schema's message is cut to this length (it may quote a large value).
MAX_MESSAGE = 300


def _where(root: str, path: Any) -> str:
    """``payload`` + ``("files", 0)`` -> ``payload.files[0]``."""
    text = root
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def validator(schema: Mapping[str, Any]) -> Any:
    """A draft 2020-12 validator of ``schema`` that follows only references inside it."""
    # Imported here: most machines declare no schema, and jsonschema takes tens of ms to load.
    import jsonschema
    from referencing import Registry

    return jsonschema.Draft202012Validator(schema, registry=Registry())


def schema_error(
    schema: Mapping[str, Any], value: Any, root: str, checker: Any = None
) -> str | None:
    """Why ``value`` does not match ``schema`` (one line: where, and jsonschema's reason for
    the error it ranks most relevant), or None when it matches. ``root`` names the value
    (``payload``, ``job data``); ``checker``: ``validator(schema)``, made once by a caller
    that checks many values."""
    import jsonschema
    from referencing.exceptions import Unresolvable

    try:
        checker = validator(schema) if checker is None else checker
        error = jsonschema.exceptions.best_match(checker.iter_errors(value))
    except (Unresolvable, jsonschema.SchemaError) as unusable:
        # Only a hand-written class can hold such a schema (the checker refuses it, SMC080):
        # the value is refused, with why, rather than the worker stopping.
        return f"{root}: the schema cannot be used: {type(unusable).__name__}: {unusable}"[
            :MAX_MESSAGE
        ]
    if error is None:
        return None
    message = " ".join(f"{_where(root, error.absolute_path)}: {error.message}".split())
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def _as_payload(payload: Any) -> Any:
    # An event sent without a payload has an empty one: it matches a schema whose fields
    # are all optional, and is refused by one that requires some.
    return {} if payload is None else payload


def payload_error(machine_cls: type[GeneratedMachine], event: str, payload: Any) -> str | None:
    """Why ``payload`` is not a valid payload of ``event`` for ``machine_cls``, or None (also
    when the class declares no schema for it)."""
    schemas: Mapping[str, Mapping[str, Any]] = getattr(machine_cls, "EVENT_PAYLOAD_SCHEMAS", {})
    schema = schemas.get(event)
    if schema is None:
        return None
    return schema_error(schema, _as_payload(payload), "payload")


def job_data_error(machine_cls: type[GeneratedMachine], job_type: str, data: Any) -> str | None:
    """Why ``data`` is not valid data of a ``job_type`` job for ``machine_cls``, or None (also
    when the class declares no schema for that type)."""
    schemas: Mapping[str, Mapping[str, Any]] = getattr(machine_cls, "JOB_DATA_SCHEMAS", {})
    schema = schemas.get(job_type)
    if schema is None:
        return None
    return schema_error(schema, {} if data is None else data, "job data")


class DataChecks:
    """The checks of one machine class, for the worker: a class without schemas costs one
    test per event or job; a validator is made once per schema."""

    def __init__(self, machine_cls: type[GeneratedMachine]) -> None:
        self._payloads: Mapping[str, Any] = getattr(machine_cls, "EVENT_PAYLOAD_SCHEMAS", {})
        self._jobs: Mapping[str, Any] = getattr(machine_cls, "JOB_DATA_SCHEMAS", {})
        self._validators: dict[tuple[str, str], Any] = {}

    def _error(self, kind: str, key: str, schema: Mapping[str, Any], value: Any) -> str | None:
        checker = self._validators.get((kind, key))
        if checker is None:
            checker = self._validators[(kind, key)] = validator(schema)
        return schema_error(schema, value, kind, checker)

    def payload_error(self, event: str, payload: Any) -> str | None:
        schema = self._payloads.get(event) if self._payloads else None
        return (
            None if schema is None else self._error("payload", event, schema, _as_payload(payload))
        )

    def job_data_error(self, job_type: str, data: Any) -> str | None:
        schema = self._jobs.get(job_type) if self._jobs else None
        if schema is None:
            return None
        return self._error("job data", job_type, schema, {} if data is None else data)


__all__ = ["MAX_MESSAGE", "DataChecks", "job_data_error", "payload_error", "schema_error"]
