"""The generated code of typed data (docs/generated-code.md, "Typed data"): the ``Context``
dataclass, a ``TypedDict`` per event payload taken as keyword arguments, and the schemas as
class constants, in flat and statechart modules.

The modules are generated from YAML here, written to a temporary directory and imported;
their typing (mypy and pyright on user code) is in test_codegen_typing.py.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from smc.compiler import codegen
from smc.compiler.data import context_schema
from smc.compiler.pylayout import format_python
from tests.compiler.test_codegen import payloads
from tests.support.statecharts import checked
from tests.support.statecharts import compiled as compile_machine

DATA_FLAT = """\
initial_state: pending
metadata: {machine_name: retry_worker}
context:
  attempts: {type: integer, default: 0}
  max_attempts: {type: integer, minimum: 1, default: 3}
  last_error: {type: [string, "null"], default: null}
  tags: {type: array, items: {type: string}, default: [a, b]}
  limits: {type: object, default: {cpu: 2}}
  mode: {enum: [fast, slow], default: fast}
events:
  start: null
  failed:
    payload:
      type: object
      properties: {error: {type: string}, code: {type: integer}}
      required: [error]
  retry:
    payload: {type: object, properties: {reason: {type: string}}}
jobs:
  task: {data: {type: object, properties: {path: {type: string}}, required: [path]}}
  untyped: {description: no schema}
transitions:
  - {from: pending, to: running, event: start}
  - {from: running, to: failed, event: failed}
  - {from: failed, to: pending, event: retry}
  - {from: running, to: done, event: start}
"""

#: The same data on a statechart, with a field that has no default.
DATA_CHART = """\
initial_state: work
metadata: {machine_name: retry_chart}
context:
  attempts: {type: integer, default: 0}
  owner: {type: string}
events:
  start: null
  failed:
    payload: {type: object, properties: {error: {type: string}}, required: [error]}
  retry: null
  stop: null
states:
  - name: work
    states: [pending, running, failed]
  - {name: done, final: true}
transitions:
  - {from: pending, to: running, event: start}
  - {from: running, to: failed, event: failed}
  - {from: failed, to: pending, event: retry}
  - {from: work, to: done, event: stop}
"""


def compiled(text: str, directory: Path) -> ModuleType:
    """The generated module of ``text``, imported under a fresh name (in ``sys.modules``,
    so its classes pickle)."""
    return compile_machine(checked(text), directory, "m.yaml")


@pytest.fixture
def flat(tmp_path: Path) -> ModuleType:
    return compiled(DATA_FLAT, tmp_path)


@pytest.fixture
def chart(tmp_path: Path) -> ModuleType:
    return compiled(DATA_CHART, tmp_path)


# ---- the context -------------------------------------------------------------------------


def test_the_context_is_a_slotted_dataclass_with_the_defaults(flat: ModuleType) -> None:
    machine = flat.RetryWorker()
    context = machine.context
    assert isinstance(context, flat.Context)
    assert [f.name for f in dataclasses.fields(context)] == [
        "attempts",
        "max_attempts",
        "last_error",
        "tags",
        "limits",
        "mode",
    ]
    assert context.to_dict() == {
        "attempts": 0,
        "max_attempts": 3,
        "last_error": None,
        "tags": ["a", "b"],
        "limits": {"cpu": 2},
        "mode": "fast",
    }
    with pytest.raises(AttributeError):
        context.atempts = 1  # slots: a misspelt field is no new attribute
    # mutable defaults are per instance
    context.tags.append("c")
    assert flat.RetryWorker().context.tags == ["a", "b"]


def test_a_context_can_be_given(flat: ModuleType) -> None:
    context = flat.Context(attempts=2, mode="slow")
    machine = flat.RetryWorker("failed", context=context)
    assert machine.context is context and machine.state == "failed"


def test_to_dict_from_dict_and_pickle_round_trip(flat: ModuleType) -> None:
    context = flat.Context(attempts=5, last_error="disk full", tags=["x"])
    data = context.to_dict()
    assert flat.Context.from_dict(data) == context
    data["tags"].append("y")  # a copy: the context is untouched
    assert context.tags == ["x"]
    assert pickle.loads(pickle.dumps(context)) == context
    machine = flat.RetryWorker(context=context)
    machine.start()
    restored = pickle.loads(pickle.dumps(machine))
    assert restored.state == "running" and restored.context == context


@pytest.mark.parametrize(
    "data",
    [
        {"attempts": "3"},
        {"attempts": True},
        {"last_error": 3},
        {"tags": "a"},
        {"attempt": 1},
        ["attempts"],
    ],
)
def test_from_dict_refuses_what_the_dataclass_would_take(flat: ModuleType, data: Any) -> None:
    with pytest.raises(ValueError):
        flat.Context.from_dict(data)


def test_from_dict_takes_an_integer_for_a_number(tmp_path: Path) -> None:
    module = compiled(
        "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n"
        "context:\n  ratio: {type: number, default: 0.5}\n",
        tmp_path,
    )
    assert module.Context.from_dict({"ratio": 1}).ratio == 1


def test_a_field_without_default_must_be_given(chart: ModuleType) -> None:
    with pytest.raises(ValueError, match="owner"):
        chart.RetryChart()
    with pytest.raises(ValueError, match="owner"):
        chart.Context.from_dict({"attempts": 1})
    machine = chart.RetryChart(context=chart.Context(owner="me"))
    assert machine.context.owner == "me" and machine.context.attempts == 0


def test_the_schemas_are_class_constants(flat: ModuleType) -> None:
    cls = flat.RetryWorker
    assert cls.CONTEXT_SCHEMA == context_schema(checked(DATA_FLAT)) == flat.CONTEXT_SCHEMA
    assert cls.CONTEXT_SCHEMA["required"] == []
    assert set(cls.EVENT_PAYLOAD_SCHEMAS) == {cls.Event.FAILED, cls.Event.RETRY}
    assert cls.EVENT_PAYLOAD_SCHEMAS["failed"]["required"] == ["error"]
    # only the job types that declare a data schema
    assert list(cls.JOB_DATA_SCHEMAS) == ["task"]


# ---- payloads ----------------------------------------------------------------------------


def test_payload_typed_dicts_say_which_fields_are_required(flat: ModuleType) -> None:
    """(``NotRequired[...]`` is for the type checkers: with the module's postponed
    annotations Python 3.11 cannot see it at run time, where the JSON Schema is checked.)"""
    source = Path(flat.__file__ or "").read_text()
    assert "    error: str\n    code: NotRequired[int]\n" in source
    assert flat.RetryPayload.__total__ is False
    assert flat.RetryPayload.__optional_keys__ == frozenset({"reason"})
    assert {"Context", "FailedPayload", "RetryPayload"} <= set(flat.__all__)


def test_event_methods_take_the_payload_as_keywords(flat: ModuleType) -> None:
    machine = flat.RetryWorker()
    assert machine.payload is None
    machine.start()
    assert machine.failed(error="disk full", code=28) == "failed"
    assert machine.payload == {"error": "disk full", "code": 28}
    machine.retry()
    assert machine.payload == {}
    machine.start()  # an event without a payload clears it
    assert machine.payload is None
    machine.fire("failed", {"error": "again"})
    assert machine.payload == {"error": "again"}
    machine.fire(flat.Event.RETRY)
    assert machine.payload is None


def test_chart_event_methods_take_the_payload_and_hooks_see_the_context(
    chart: ModuleType,
) -> None:
    seen: list[tuple[str, Any]] = []

    class Traced(chart.RetryChart):  # type: ignore[name-defined,misc]
        def on_enter_pending(self) -> None:
            seen.append(("pending", self.context.attempts))

        def on_enter_failed(self) -> None:
            self.context.attempts += 1
            seen.append(("failed", self.payload))

    machine = Traced(context=chart.Context(owner="me", attempts=7))
    machine.start()
    machine.failed(error="disk full")
    machine.retry()
    assert seen == [("pending", 7), ("failed", {"error": "disk full"}), ("pending", 8)]
    assert machine.payload is None
    assert machine.state == "pending"


# ---- names and layout --------------------------------------------------------------------


def test_a_machine_class_named_like_a_data_name_gets_a_suffix(tmp_path: Path) -> None:
    module = compiled(
        "initial_state: a\nmetadata: {machine_name: context}\n"
        "transitions:\n  - {from: a, to: b, event: go}\n"
        "context:\n  n: {type: integer, default: 0}\n",
        tmp_path,
    )
    assert module.ContextMachine().context == module.Context()
    module = compiled(
        "initial_state: a\nmetadata: {machine_name: go_payload}\n"
        "transitions:\n  - {from: a, to: b, event: go}\n"
        "events:\n  go: {payload: {type: object}}\n",
        tmp_path,
    )
    assert module.GoPayloadMachine().go() == "b"


def test_a_machine_without_data_has_none_of_it(tmp_path: Path) -> None:
    module = compiled("initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n", tmp_path)
    source = Path(module.__file__ or "").read_text()
    for name in ("Context", "self.payload", "Unpack", "PAYLOAD_SCHEMAS", "JOB_DATA", "dataclass"):
        assert name not in source


@pytest.mark.parametrize("text", [DATA_FLAT, DATA_CHART])
@pytest.mark.parametrize("width", [60, 79, 88, 100, 120])
def test_data_modules_are_in_black_style(text: str, width: int) -> None:
    source = codegen.generate_machine(checked(text), "m.yaml", width)
    assert format_python(source, width) == source


def test_crafted_data_produces_inert_modules(tmp_path: Path) -> None:
    """Enum values, defaults, descriptions, job types and schema keys crafted as code stay
    data: importing the module and using the context runs none of them."""
    marker = tmp_path / "PWNED"
    evil = list(payloads(marker))
    document = {
        "initial_state": "a",
        "transitions": [{"from": "a", "to": "b", "event": "go"}],
        "context": {
            "mode": {"enum": evil, "default": evil[0], "description": evil[1]},
            "note": {"type": "string", "default": evil[2], "title": evil[3]},
            "bag": {"type": "object", "default": {text: text for text in evil}},
        },
        "events": {
            "go": {
                "payload": {
                    "type": "object",
                    "properties": {"x": {"enum": evil, "description": evil[4]}},
                    "required": ["x"],
                }
            }
        },
        "jobs": {text: {"data": {"type": "object", "title": text}} for text in evil},
    }
    module = compiled(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), tmp_path)
    assert not marker.exists()
    (cls,) = [v for v in vars(module).values() if isinstance(v, type) and hasattr(v, "Event")]
    machine = cls()
    assert machine.context.mode == evil[0] and machine.context.note == evil[2]
    assert machine.context.bag == {text: text for text in evil}
    assert list(cls.JOB_DATA_SCHEMAS) == evil
    machine.go(x=evil[5])
    assert module.Context.from_dict(machine.context.to_dict()) == machine.context
    assert not marker.exists()


def test_snapshot_and_restore_carry_the_configuration_and_the_context(
    flat: ModuleType, chart: ModuleType
) -> None:
    """A machine saved as plain JSON and made again (``Cls.restore(**m.snapshot())``)."""
    import json

    machine = flat.RetryWorker(context=flat.Context(attempts=2, tags=["x"]))
    machine.start()
    saved = json.loads(json.dumps(machine.snapshot()))
    assert saved["configuration"] == ["running"] and saved["context"]["attempts"] == 2
    again = flat.RetryWorker.restore(**saved)
    assert again.state == "running" and again.context == machine.context
    assert again.context is not machine.context  # made from the data, not shared
    with pytest.raises(ValueError):
        flat.RetryWorker.restore(["running", "failed"])
    with pytest.raises(ValueError):
        flat.RetryWorker.restore(["running"], context={"attempts": "two"})
    charted = chart.RetryChart(context=chart.Context(owner="me"))
    snapshot = json.loads(json.dumps(charted.snapshot()))
    restored = chart.RetryChart.restore(**snapshot)
    assert restored.configuration == charted.configuration
    assert restored.context == charted.context and restored.context.owner == "me"
