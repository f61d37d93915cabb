"""The generated module: its behaviour against the model (a Hypothesis differential test over
random machines with hostile names), code-injection attempts, typing and lint of
``generated/``, and that it imports nothing but smc's runtime base."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from smc import IllegalTransition
from smc.compiler import names
from smc.compiler.check import check_paths
from smc.compiler.codegen import generate_machine, module_names
from smc.compiler.model import Machine
from tests.support.names import AWKWARD_NAMES

PROJECT_ROOT = Path(__file__).resolve().parents[2]

_counter = itertools.count()


def compile_and_import(path: Path, out_dir: Path) -> tuple[Machine, ModuleType]:
    """Check one machine file, generate its module into ``out_dir`` and import it from there
    under a fresh name (never through ``generated``, so each example is independent)."""
    result = check_paths([str(path)])
    assert not result.errors, [str(d) for d in result.errors]
    (machine,) = result.machines
    text = generate_machine(machine, path.name)
    module_path = out_dir / f"{module_names(machine).module}_{next(_counter)}.py"
    module_path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(module_path.stem, module_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_path.stem] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[module_path.stem]
    return machine, module


def machine_class(machine: Machine, module: ModuleType) -> Any:
    return getattr(module, module_names(machine).class_name)


# ---- random machines ----------------------------------------------------------------------

name_lists = st.lists(
    st.sampled_from(AWKWARD_NAMES) | st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True),
    min_size=1,
    max_size=6,
    unique_by=(names.member, functools.partial(names.method, chart=False)),
)


@st.composite
def machine_documents(draw: st.DrawFn) -> dict[str, Any]:
    states = draw(name_lists)
    events = draw(name_lists)
    # a name both a state and an event is legal, but "*" is the wildcard
    assume("*" not in states)
    sources = st.sampled_from([*states, "*"])
    transitions = draw(
        st.lists(
            st.tuples(sources, st.sampled_from(states), st.sampled_from(events)),
            min_size=1,
            max_size=14,
            # one transition per (source, event) as written; a wildcard and an explicit
            # transition on the same event still overlap, which tests the priority order
            unique_by=lambda t: (t[0], t[2]),
        )
    )
    initial = draw(st.sampled_from(states))
    return {
        "name": draw(st.sampled_from(AWKWARD_NAMES)),
        "initial_state": initial,
        "metadata": {"machine_name": "random_machine"},
        "states": states,
        "events": events,
        "transitions": [{"from": s, "to": t, "event": e} for s, t, e in transitions],
    }


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("codegen")


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(document=machine_documents(), data=st.data())
def test_generated_class_accepts_exactly_the_model_table(
    scratch: Path, document: dict[str, Any], data: st.DataObject
) -> None:
    path = scratch / f"machine_{next(_counter)}.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    result = check_paths([str(path)])
    assume(not result.errors)  # e.g. an initial state the checker rejects
    machine, module = compile_and_import(path, scratch)
    cls = machine_class(machine, module)
    lookup = machine.lookup

    # the class constants are the model
    assert [(str(s), str(e), str(t)) for s, e, t in cls.TRANSITIONS] == [
        (edge.source, edge.event, edge.target) for edge in machine.table
    ]
    assert [str(s) for s in cls.State] == list(machine.state_names)
    assert [str(e) for e in cls.Event] == list(machine.event_names)
    assert str(cls.INITIAL_STATE) == machine.initial_state
    assert {str(s) for s in cls.FINAL_STATES} == set(machine.final_states)

    methods = dict(cls.EVENT_METHODS)
    unknown = "no such event"
    assert names.member(unknown) not in {names.member(e) for e in machine.event_names}
    sequence = data.draw(
        st.lists(st.sampled_from([*machine.event_names, unknown]), max_size=25), label="events"
    )
    how = data.draw(
        st.lists(
            st.sampled_from(["str", "enum", "method"]),
            min_size=len(sequence),
            max_size=len(sequence),
        ),
        label="how",
    )
    instance = cls()
    state = machine.initial_state
    for event, way in zip(sequence, how, strict=True):
        expected = lookup.get((state, event))
        assert instance.can_fire(event) == (expected is not None)
        assert [str(e) for e in instance.allowed_events()] == machine.events_from(state)
        if event == unknown:
            way = "str"

        def fire(event: str = event, way: str = way) -> Any:
            if way == "str":
                return instance.fire(event)
            if way == "enum":
                return instance.fire(cls.Event(event))
            return getattr(instance, methods[cls.Event(event)])()

        if expected is None:
            with pytest.raises(IllegalTransition) as raised:
                fire()
            assert isinstance(raised.value, ValueError)
            assert raised.value.machine == machine.name
            assert raised.value.state == state and raised.value.event == event
            assert str(instance.state) == state  # unchanged
        else:
            returned = fire()
            assert returned == expected and str(instance.state) == expected
            assert type(instance.state) is cls.State
            state = expected
    # a machine can also start anywhere
    for name in machine.state_names:
        assert cls(state=name).state == name


def test_listeners_and_transition_api(tmp_path: Path) -> None:
    document = {
        "name": "contract",
        "initial_state": "PENDING",
        "metadata": {"machine_name": "contract_demo"},
        "states": {
            "PENDING": {"allowed_transitions": ["RUNNING"]},
            "RUNNING": {"allowed_transitions": ["DONE", "FAILED"]},
            "FAILED": {"allowed_transitions": ["PENDING"]},
            "DONE": {"allowed_transitions": []},
        },
    }
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(document))
    machine, module = compile_and_import(path, tmp_path)
    cls = machine_class(machine, module)
    seen: list[tuple[str, str, str]] = []
    instance = cls()
    instance.add_listener(lambda s, e, t: seen.append((str(s), str(e), str(t))))
    assert instance.can_transition("RUNNING") and not instance.can_transition("DONE")
    assert instance.transition("RUNNING") == "RUNNING"
    with pytest.raises(IllegalTransition):
        instance.transition("PENDING")
    assert instance.state == "RUNNING"
    instance.transition(cls.State.FAILED)
    instance.transition("PENDING")
    assert seen[0][0] == "PENDING" and seen[0][2] == "RUNNING"
    assert [t for _, _, t in seen] == ["RUNNING", "FAILED", "PENDING"]
    assert not instance.is_final
    instance.transition("RUNNING")
    instance.transition("DONE")
    assert instance.is_final and instance.allowed_events() == ()
    with pytest.raises(AttributeError):
        instance.extra = 1  # __slots__


# ---- injection ----------------------------------------------------------------------------


def payloads(marker: Path) -> Iterator[str]:
    """Texts that create ``marker`` if any of them is ever executed as code."""
    call = f"open({str(marker)!r}, 'w').close()"
    yield f"x'); {call}; ('"
    yield f'x"); {call}; ("'
    yield f'x"""\n{call}\n"""'
    yield f"x'''\n{call}\n'''"
    yield f"x\n{call}\n#"
    yield f"x\r{call}"
    yield f"x\\\n{call}"
    yield f"{{{{ {call} }}}}"
    yield f"{{% if {call} %}}{{% endif %}}"
    yield f"# {call}"
    yield f"x}}}}); {call}; ({{{{"


def test_crafted_names_produce_inert_modules(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    # a distinct first word each, so no two names become the same identifier (SMC051)
    evil = [f"s{i} {text}" for i, text in enumerate(payloads(marker))]
    document = {
        "name": evil[0],
        "description": evil[2],
        "initial_state": evil[0],
        "states": evil,
        "events": [f"e{i} {text}" for i, text in enumerate(evil)],
        "transitions": [
            {"from": evil[i], "to": evil[(i + 1) % len(evil)], "event": f"e{i} {text}"}
            for i, text in enumerate(evil)
        ],
        "actions": {
            evil[1]: [{"type": "log", "message": evil[3], "description": evil[4]}],
            evil[2]: [{"type": "bash", "command": evil[5], "success": f"e2 {evil[2]}"}],
        },
    }
    # the file name is hostile too: the header line names it
    path = tmp_path / f"hostile {evil[4]}.yaml".replace("/", "_")
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    machine, module = compile_and_import(path, tmp_path)
    assert not marker.exists(), "importing the generated module executed a name"
    cls = machine_class(machine, module)
    assert [str(s) for s in cls.State] == evil  # every name round-trips exactly
    assert cls.STATE_ACTIONS[cls.State(evil[1])][0]["message"] == evil[3]
    assert machine.name == cls.MACHINE_NAME
    instance = cls()
    for i, text in enumerate(evil):
        instance.fire(f"e{i} {text}")
    assert instance.state == evil[0]
    assert not marker.exists()
    # and the source is still valid, formatted Python whose header is one comment line
    source = (tmp_path / f"{module.__name__}.py").read_text()
    assert source.splitlines()[1] == "# @generated"
    compile(source, "generated", "exec")


# ---- the committed package ----------------------------------------------------------------


def test_generated_package_passes_mypy_strict(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from generated import SimpleWorker\n"
        "m = SimpleWorker()\n"
        "m.new_job()\n"
        "m.new_jbo()\n"  # a typo: mypy must catch it
        "s: SimpleWorker.State = m.fire(SimpleWorker.Event.STOP)\n"
        "reveal_type(m.state)\n"
    )
    command = [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache")]
    clean = subprocess.run(
        [*command, "generated"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600
    )
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Success: no issues found" in clean.stdout
    probed = subprocess.run(
        [*command, str(probe)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={"MYPYPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert probed.returncode == 1
    assert '"SimpleWorker" has no attribute "new_jbo"' in probed.stdout
    assert 'Revealed type is "generated.simple_worker.SimpleWorker.State"' in probed.stdout
    assert probed.stdout.count("error:") == 1, probed.stdout


def test_generated_package_passes_ruff() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "--no-cache",
            "--isolated",
            "--select",
            "E,F,W,I,B,UP,SIM,RUF",
            "--ignore",
            "RUF001,RUF002,RUF003",
            "--line-length",
            "100",
            "--target-version",
            "py311",
            "generated",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_imports_only_the_runtime_base() -> None:
    script = (
        "import sys\n"
        "import generated\n"
        "m = generated.SimpleWorker()\n"
        "m.initialized()\n"
        "heavy = sorted(n for n in sys.modules if n.split('.')[0] in "
        "{'jinja2', 'black', 'yaml', 'jsonschema', 'graphviz'} or n.startswith('smc.compiler') "
        "or n.startswith('smc.runtime'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_class_names_avoid_module_level_names(tmp_path: Path) -> None:
    document = {
        "initial_state": "a",
        "metadata": {"machine_name": "state"},
        "states": ["a", "b"],
        "events": ["go"],
        "transitions": [{"from": "a", "to": "b", "event": "go"}],
    }
    path = tmp_path / "state.yaml"
    path.write_text(yaml.safe_dump(document))
    machine, module = compile_and_import(path, tmp_path)
    assert module_names(machine).class_name == "StateMachine"
    assert module.StateMachine().go() == "b"
    assert module.State is module.StateMachine.State
