"""Property tests: the checker never crashes, and valid machines round-trip into the model.

"Never crashes" means: whatever the input, ``check_texts`` returns (diagnostics or a model)
and every diagnostic has a known code and a position inside the file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smc.compiler.check import CheckResult, check_files, check_texts
from smc.compiler.diagnostics import CODES
from smc.compiler.loader import load_text
from smc.compiler.model import WILDCARD, Machine
from tests.support.corpus import CORPUS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Keys the checker gives meaning to, so random documents reach past the schema sometimes.
MACHINE_KEYS = [
    "initial_state", "states", "transitions", "events", "actions", "final_states", "groups",
    "metadata", "machine_name", "from", "to", "event", "type", "params", "success", "error",
    "name", "final", "allowed_transitions", "context_map", "target", "target_machine",
    "event_type", "command", "action_types", "error_mappings", "*", "when", "guard", "unless",
    "assign", "location", "expr", "context", "on",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([*MACHINE_KEYS, "waiting", "done", "timeout(1)", "{x|length}", "on"]),
    st.text(max_size=12),
)
keys = st.one_of(st.sampled_from(MACHINE_KEYS), st.text(max_size=8), st.integers(0, 5))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=40,
)


def assert_sane(result: CheckResult, texts: dict[str, str]) -> None:
    for diagnostic in result.diagnostics:
        assert diagnostic.code in CODES
        lines = texts[diagnostic.path].splitlines()
        assert 1 <= diagnostic.line <= max(len(lines), 1), diagnostic
        assert diagnostic.col >= 1
        assert diagnostic.message


def check_one(text: str) -> CheckResult:
    result = check_texts([("m.yaml", text)])
    assert_sane(result, {"m.yaml": text})
    return result


@SETTINGS
@given(documents)
def test_arbitrary_yaml_documents_never_crash(data: Any) -> None:
    check_one(yaml.safe_dump(data, allow_unicode=True))


@SETTINGS
@given(st.dictionaries(st.sampled_from(MACHINE_KEYS), documents, max_size=8))
def test_arbitrary_mappings_of_machine_keys_never_crash(data: dict[str, Any]) -> None:
    check_one(yaml.safe_dump(data, allow_unicode=True, default_flow_style=False))


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    check_one(text)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "m.yaml")
        Path(path).write_bytes(raw)
        result = check_files([path])
    assert all(d.code in CODES and d.line >= 1 and d.col >= 1 for d in result.diagnostics)


# ---- mutations of valid corpus machines -------------------------------------------------

#: Every corpus machine, the nested one included now that it reads as a statechart.
CORPUS_MACHINES = sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.yaml"))


def containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every mapping and list in ``node``."""
    found = []
    if isinstance(node, (dict, list)):
        found.append(path)
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            found.extend(containers(value, (*path, key)))
    return found


def at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated_machines(draw: st.DrawFn) -> str:
    relative = draw(st.sampled_from(CORPUS_MACHINES))
    data = yaml.safe_load((CORPUS / relative).read_text(encoding="utf-8"))
    for _ in range(draw(st.integers(1, 4))):
        target = at(data, draw(st.sampled_from(containers(data))))
        slots = list(target) if isinstance(target, dict) else list(range(len(target)))
        if not slots:
            continue
        slot = draw(st.sampled_from(slots))
        operation = draw(st.sampled_from(["delete", "rename", "retype", "swap"]))
        if operation == "delete":
            del target[slot]
        elif operation == "rename" and isinstance(target, dict):
            target[draw(keys)] = target.pop(slot)
        elif operation == "swap":
            other = draw(st.sampled_from(slots))
            target[slot], target[other] = target[other], target[slot]
        else:
            target[slot] = draw(documents)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


@SETTINGS
@given(text=mutated_machines())
def test_mutated_corpus_machines_never_crash(corpus: Path, text: str) -> None:
    # the session fixture `corpus` fails this test in one line when the corpus is missing
    check_one(text)


# ---- valid random machines round-trip ---------------------------------------------------

state_names = st.from_regex(r"[a-z][a-z0-9]{0,6}(_[a-z0-9]{1,4})?", fullmatch=True)
EVENTS = ["go", "next", "stop", "retry", "done", "timeout(1)", "timeout(0.25)"]


@st.composite
def valid_machines(draw: st.DrawFn) -> dict[str, Any]:
    states = draw(st.lists(state_names, min_size=1, max_size=8, unique_by=str.upper))
    transitions = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "from": st.sampled_from([*states, WILDCARD]),
                    "to": st.sampled_from(states),
                    "event": st.sampled_from(EVENTS),
                }
            ),
            min_size=1,
            max_size=20,
        )
    )
    machine: dict[str, Any] = {
        "initial_state": draw(st.sampled_from(states)),
        "states": states,
        "transitions": transitions,
    }
    finals = draw(st.lists(st.sampled_from(states), unique=True, max_size=2))
    if finals:
        machine["final_states"] = finals
    return machine


def expected_table(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    """The language's semantics, written independently: the first transition in file order
    matching (state, event) wins; `*` matches every non-final state."""
    transitions = data["transitions"]
    explicit_sources = {t["from"] for t in transitions if t["from"] != WILDCARD}
    wildcard_targets = {t["to"] for t in transitions if t["from"] == WILDCARD}
    finals = set(data.get("final_states", ())) | {
        s for s in data["states"] if s not in explicit_sources and wildcard_targets <= {s}
    }
    table: dict[tuple[str, str], str] = {}
    for t in transitions:
        sources = (
            [s for s in data["states"] if s not in finals] if t["from"] == WILDCARD else [t["from"]]
        )
        for source in sources:
            table.setdefault((source, t["event"]), t["to"])
    return table


@SETTINGS
@given(valid_machines())
def test_valid_machines_round_trip_into_the_model(data: dict[str, Any]) -> None:
    result = check_one(yaml.safe_dump(data, sort_keys=False))
    assert not [d for d in result.diagnostics if d.code < "SMC010"]  # schema-valid
    (machine,) = result.machines
    assert isinstance(machine, Machine)
    assert machine.style == "engine"
    assert machine.initial_state == data["initial_state"]
    assert list(machine.state_names) == data["states"]
    assert [(t.source, t.target, t.event) for t in machine.transitions] == [
        (t["from"], t["to"], t["event"]) for t in data["transitions"]
    ]
    assert machine.lookup == expected_table(data)
    assert {e.name for e in machine.timeout_events} == {
        t["event"] for t in data["transitions"] if t["event"].startswith("timeout(")
    }


# ---- the loader reads what yaml.safe_load reads -----------------------------------------

YAML_FEATURES = [
    "a: &x {b: 1, c: [1, 2]}\nd: *x\n",
    "base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n",
    "b1: &b1 {x: 1}\nb2: &b2 {x: 2, z: 0}\nm: {<<: [*b1, *b2], w: 4}\n",
    "s: !!set {a, b}\np: !!pairs [{a: 1}, {b: 2}]\no: !!omap [{a: 1}]\n",
    "t: 2001-12-14\nf: 1.5e3\nh: 0x1f\nn: ~\nb: [yes, No, on, OFF]\nq: '01'\n",
    "k: !!str 12\nl: !!int '7'\nbin: !!binary aGVsbG8=\n",
    "? complex\n: value\nempty:\nlist: [[], {}]\n",
    "%YAML 1.1\n---\na: 1\n...\n",
]


@pytest.mark.parametrize("text", YAML_FEATURES)
def test_loader_data_equals_safe_load(text: str) -> None:
    doc, problems = load_text("m.yaml", text)
    assert problems == []
    assert doc is not None
    assert doc.data == yaml.safe_load(text)


@SETTINGS
@given(st.dictionaries(keys, documents, max_size=6))
def test_loader_data_equals_safe_load_for_random_documents(data: dict[Any, Any]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True)
    doc, _problems = load_text("m.yaml", text)
    assert doc is not None
    assert doc.data == yaml.safe_load(text)
