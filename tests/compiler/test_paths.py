"""smc.compiler.paths and ``smc paths``: shortest event paths, coverage, determinism; for
statecharts over their situations (tests/support/machines/player.yaml, the corpus's nested
face processor)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from smc.compiler.charts import machine_table, written_transitions
from smc.compiler.check import check_paths, collect_files, follows_data
from smc.compiler.model import Machine
from smc.compiler.paths import (
    ChartPathPlan,
    EventPath,
    PathPlan,
    format_text,
    plan_paths,
    shortest_paths,
)
from smc.compiler.statechart import Interpreter
from tests.support.corpus import require_corpus
from tests.support.machines import PLAYER

ROOT = Path(__file__).resolve().parents[2]


def load(*paths: str | Path) -> list[Machine]:
    result = check_paths([str(p) for p in paths])
    assert not result.errors, [str(d.message) for d in result.errors]
    return result.machines


def example_machines() -> list[Machine]:
    """The flat examples (the statechart example's paths are tested with the charts')."""
    return [m for m in load(ROOT / "examples") if not m.is_chart]


def corpus_machines() -> list[Machine]:
    """Every flat corpus machine that compiles on its own (files with errors are left out;
    the nested file is a statechart, tested with the charts below)."""
    machines = []
    for path in collect_files([str(require_corpus())]):
        result = check_paths([path])
        if not result.errors:
            machines.extend(m for m in result.machines if not m.is_chart)
    return machines


def flat_plan(machine: Machine) -> PathPlan:
    plan = plan_paths(machine)
    assert isinstance(plan, PathPlan)
    return plan


def distances(machine: Machine) -> dict[str, int]:
    """Fewest events from the initial state to each state, by relaxation until nothing
    changes: independent of the BFS under test."""
    dist = {machine.initial_state: 0}
    changed = True
    while changed:
        changed = False
        for (source, _event), target in machine.lookup.items():
            if source in dist and dist[source] + 1 < dist.get(target, 1 << 30):
                dist[target] = dist[source] + 1
                changed = True
    return dist


def replay(machine: Machine, path: EventPath) -> str:
    """Follow the path's events through the table; each step must be the edge it names."""
    state = machine.initial_state
    for step in path.steps:
        assert step.source == state
        assert machine.lookup[(state, step.event)] == step.target
        state = step.target
    return state


def big_machine_yaml(states: int, unreachable: int) -> str:
    """A machine with ``states`` reachable states (five events each: a chain, jumps, a way
    back, a self-loop, and a wildcard reset) plus ``unreachable`` states nothing leads to."""
    names = [f"s{i:03d}" for i in range(states)]
    islands = [f"island{i}" for i in range(unreachable)]
    lines = ["initial_state: s000", "states:"]
    lines += [f"  - {name}" for name in names + islands + ["done"]]
    lines.append("transitions:")
    for i, name in enumerate(names):
        lines.append(f"  - {{from: {name}, to: {names[(i + 1) % states]}, event: next}}")
        lines.append(f"  - {{from: {name}, to: {names[(i * 7 + 3) % states]}, event: jump}}")
        lines.append(f"  - {{from: {name}, to: {names[i // 2]}, event: back}}")
        lines.append(f"  - {{from: {name}, to: {name}, event: stay}}")
    for i, name in enumerate(islands):
        lines.append(f"  - {{from: {name}, to: {islands[(i + 1) % unreachable]}, event: drift}}")
    lines.append("  - {from: s199, to: done, event: finish}")
    lines.append('  - {from: "*", to: s000, event: reset}')
    return "\n".join(lines) + "\n"


# ---- coverage -------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["examples", "corpus"])
def test_every_reachable_transition_is_covered(source: str) -> None:
    machines = example_machines() if source == "examples" else corpus_machines()
    assert len(machines) >= (7 if source == "examples" else 14)
    for machine in machines:
        plan = flat_plan(machine)
        all_edges = {(e.source, e.event) for e in machine.table}
        unreachable = {(e.source, e.event) for e in plan.unreachable_transitions}
        reachable = all_edges - unreachable
        assert plan.covered_transitions == reachable, machine.name
        assert len(plan.transition_paths) == len(reachable)
        if source == "examples":  # the examples have no dead parts
            assert not unreachable and not plan.unreachable_states, machine.name


def test_a_200_state_machine_is_fully_covered(tmp_path: Path) -> None:
    file = tmp_path / "big.yaml"
    file.write_text(big_machine_yaml(200, 5))
    [machine] = load(file)
    assert len(machine.states) == 206
    plan = flat_plan(machine)
    all_edges = {(e.source, e.event) for e in machine.table}
    unreachable = {(e.source, e.event) for e in plan.unreachable_transitions}
    # 200 states x (next, jump, back, stay, reset), finish, done's reset (the wildcard leads
    # out of done, so it is not final); the islands' drift and reset edges are the
    # unreachable ones, reported separately.
    assert len(all_edges) == 200 * 5 + 1 + 1 + 5 * 2
    assert len(unreachable) == 5 * 2
    assert plan.unreachable_states == tuple(f"island{i}" for i in range(5))
    assert plan.covered_transitions == all_edges - unreachable
    assert len(plan.state_paths) == 201


@pytest.mark.parametrize("source", ["examples", "corpus", "big"])
def test_paths_are_valid_and_shortest(source: str, tmp_path: Path) -> None:
    if source == "big":
        (tmp_path / "big.yaml").write_text(big_machine_yaml(200, 5))
        machines = load(tmp_path / "big.yaml")
    else:
        machines = example_machines() if source == "examples" else corpus_machines()
    for machine in machines:
        dist = distances(machine)
        plan = flat_plan(machine)
        assert {p.target for p in plan.state_paths} == set(dist)
        for path in plan.state_paths:
            assert replay(machine, path) == path.target
            assert len(path.steps) == dist[path.target]
        for path in plan.transition_paths:
            assert replay(machine, path) == path.target
            assert path.edge is not None
            assert len(path.steps) == dist[path.edge.source] + 1


# ---- order and wording ----------------------------------------------------------------


def test_ties_go_to_the_first_edge_in_the_table(tmp_path: Path) -> None:
    file = tmp_path / "diamond.yaml"
    file.write_text(
        "initial_state: a\n"
        "transitions:\n"
        "  - {from: a, to: c, event: right}\n"
        "  - {from: a, to: b, event: left}\n"
        "  - {from: b, to: d, event: down}\n"
        "  - {from: c, to: d, event: down}\n"
    )
    [machine] = load(file)
    routes = shortest_paths(machine)
    assert [e.event for e in routes["d"]] == ["right", "down"]
    assert list(routes) == ["a", "c", "b", "d"]  # discovery order: table order per state


def test_descriptions_read_like_xstate() -> None:
    [worker] = load(ROOT / "examples" / "simple_worker")
    plan = flat_plan(worker)
    assert [p.description for p in plan.state_paths] == [
        "reaches initializing: (initial state)",
        "reaches waiting: initialized",
        "reaches processing: initialized -> new_job",
        "reaches finishing: initialized -> new_job -> job_done",
        "reaches stopped: stop",
    ]
    assert plan.transition_paths[3].description == (
        "takes job_done from processing to finishing: initialized -> new_job -> job_done"
    )
    descriptions = [p.description for p in plan.paths]
    assert len(set(descriptions)) == len(descriptions)  # usable as test ids


def test_the_same_machine_gives_the_same_text() -> None:
    first = format_text(plan_paths(m) for m in example_machines())
    second = format_text(plan_paths(m) for m in example_machines())
    assert first == second
    assert "simple_worker (" in first and "12/12 transitions reachable" in first


def test_unreachable_parts_are_listed_in_the_text(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text(big_machine_yaml(200, 5))
    text = format_text([plan_paths(m) for m in load(tmp_path / "big.yaml")])
    assert "201/206 states and 1002/1012 transitions reachable" in text
    assert "  unreachable states: island0, island1, island2, island3, island4\n" in text
    assert "    drift from island0 to island1\n" in text


# ---- the command ----------------------------------------------------------------------


def smc(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smc", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_smc_paths_text() -> None:
    done = smc("paths", "examples/simple_worker")
    assert done.returncode == 0, done.stderr
    assert done.stdout == format_text([plan_paths(m) for m in load("examples/simple_worker")])
    assert (
        "    takes stop from finishing to stopped: initialized -> new_job -> job_done -> stop\n"
        in (done.stdout)
    )


def test_smc_paths_pytest_module_runs(tmp_path: Path) -> None:
    from smc.compiler.codegen import generate_init, generate_machine, module_names

    package = tmp_path / "pathpkg"
    package.mkdir()
    machines = load(ROOT / "examples")
    for machine in machines:
        text = generate_machine(machine, machine.path)
        (package / f"{module_names(machine).module}.py").write_text(text)
    (package / "__init__.py").write_text(generate_init(machines, "examples"))
    out = tmp_path / "test_example_paths.py"
    done = smc("paths", "examples", "--format", "pytest", "--package", "pathpkg", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    text = out.read_text()
    assert text.startswith("# Code generated by smc from examples/")
    assert "MachineTest" not in text  # path tests only; random walks come with --emit-tests
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # A machine with guards gets no paths (SMC079): the others, a coverage test each.
    walked = [m for m in machines if not follows_data(m)]
    assert len(walked) == len(machines) - 1
    paths = sum(len(plan_paths(m).paths) for m in walked)
    assert f"{paths + len(walked)} passed" in run.stdout


def test_smc_paths_reports_errors_and_bad_usage(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("initial_state: nowhere\ntransitions:\n  - {from: a, to: b, event: go}\n")
    done = smc("paths", str(broken))
    assert done.returncode == 1
    assert "error[SMC010]" in done.stderr and done.stdout == ""
    done = smc("paths", "examples", "--format", "pytest", "--package", "not-a-name")
    assert done.returncode == 2
    assert "--package 'not-a-name' is not a dotted Python name" in done.stderr
    done = smc("paths", str(tmp_path / "missing.yaml"))
    assert done.returncode == 2


# ---- the emitted form: routes, expanded at test time by smc.testing.path_cases -------------


@pytest.mark.parametrize("source", ["examples", "corpus", "big"])
def test_path_cases_expand_routes_to_the_compiler_paths(source: str, tmp_path: Path) -> None:
    """Emitted tests carry only the BFS tree; ``path_cases`` must rebuild from it exactly
    the paths and ids ``plan_paths`` computed."""
    import importlib

    from smc.compiler.codegen import generate_machine, module_names
    from smc.testing import path_cases

    if source == "big":
        (tmp_path / "big.yaml").write_text(big_machine_yaml(200, 5))
        machines = load(tmp_path / "big.yaml")
    else:
        machines = example_machines() if source == "examples" else corpus_machines()
    package = tmp_path / f"routes_{source}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        for number, machine in enumerate(machines):
            module_file = package / f"m{number}_{module_names(machine).module}.py"
            module_file.write_text(generate_machine(machine, machine.path))
            module = importlib.import_module(f"{package.name}.{module_file.stem}")
            cls = getattr(module, module_names(machine).class_name)
            routes = {
                state: (route[-1].source, route[-1].event)
                for state, route in shortest_paths(machine).items()
                if route
            }
            plan = flat_plan(machine)
            expected = [
                (path.description, tuple((s.event, s.target) for s in path.steps))
                for path in plan.paths
            ]
            assert path_cases(cls, routes) == expected, machine.name
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith(f"routes_{source}")]:
            del sys.modules[name]


# ---- statecharts: breadth first over situations ---------------------------------------------


def face_processor() -> Path:
    return require_corpus() / "statemachine-engine" / "tools" / "test_face_processor.yaml"


def chart_plan(path: Path) -> ChartPathPlan:
    [machine] = load(path)
    assert machine.is_chart
    plan = plan_paths(machine)
    assert isinstance(plan, ChartPathPlan)
    return plan


def chart_truth(machine: Machine) -> tuple[dict[str, int], dict[int, int], set[str]]:
    """From the dispatch table, not from the plan: fewest events until each state is active
    and until each written transition (by index) is taken, by relaxation; and every state
    entered at all (passed through within a step included)."""
    chart, table = machine_table(machine)
    origin = [t.index for t in written_transitions(machine)]
    depth = {0: 0}
    changed = True
    while changed:
        changed = False
        for situation, row in enumerate(table.dispatch):
            for target, _actions in row.values():
                if situation in depth and depth[situation] + 1 < depth.get(target, 1 << 30):
                    depth[target] = depth[situation] + 1
                    changed = True
    states: dict[str, int] = {}
    for situation, level in depth.items():
        for name in table.configurations[situation]:
            states[name] = min(states.get(name, level), level)
    transitions: dict[int, int] = {}
    entered = {str(what) for kind, what in table.initial_moves if kind == "entry"}
    for kind, what in table.initial_moves:
        if kind == "transition":
            transitions[origin[int(what)]] = 0
    for situation, level in depth.items():
        for moves in table.moves[situation].values():
            for kind, what in moves:
                if kind == "transition":
                    index = origin[int(what)]
                    transitions[index] = min(transitions.get(index, level + 1), level + 1)
                elif kind == "entry":
                    entered.add(str(what))
    assert chart.name == machine.name
    return states, transitions, entered


def replay_chart(machine: Machine, plan: ChartPathPlan) -> tuple[set[str], set[int]]:
    """Every path through the reference interpreter: the states active after starting or
    after any step, and the written transitions taken. Each path must end where it says."""
    chart, _table = machine_table(machine)
    origin = [t.index for t in written_transitions(machine)]
    active: set[str] = set()
    taken: set[int] = set()
    for path in plan.paths:
        interpreter = Interpreter(chart)
        macrosteps = [interpreter.start()]
        for event in path.events:
            macrosteps.append(interpreter.send(event))
            assert macrosteps[-1].accepted, (path.description, event)
        for step in macrosteps:
            active |= step.configuration
            taken |= {origin[order] for order in step.transitions}
        if path.transition is None:
            assert path.target in interpreter.configuration, path.description
        else:
            assert path.transition.index in {origin[o] for o in macrosteps[-1].transitions}
    return active, taken


@pytest.mark.parametrize("source", ["player", "corpus"])
def test_chart_paths_cover_every_reachable_state_and_transition(source: str) -> None:
    path = PLAYER if source == "player" else face_processor()
    plan = chart_plan(path)
    machine = plan.machine
    states, transitions, entered = chart_truth(machine)
    active, taken = replay_chart(machine, plan)
    assert active == set(states) == {p.target for p in plan.state_paths}
    covering = {p.transition.index for p in plan.transition_paths if p.transition is not None}
    assert taken == set(transitions) == covering
    assert plan.covered_states == active and plan.covered_transitions == taken
    every = {s.name for s in machine.states if s.kind != "history"}
    assert set(plan.transient_states) == entered - active
    assert set(plan.unreachable_states) == every - entered
    written = {t.index for t in machine.transitions}
    assert {t.index for t in plan.unreachable_transitions} == written - taken
    # shortest: as few events as the table allows
    for state_path in plan.state_paths:
        assert len(state_path.steps) == states[state_path.target], state_path.description
    for transition_path in plan.transition_paths:
        assert transition_path.transition is not None
        assert len(transition_path.steps) == transitions[transition_path.transition.index]
    if source == "player":
        assert plan.transient_states == ("dimmed", "rewinding")
        assert not plan.unreachable_states and not plan.unreachable_transitions
        assert len(plan.transition_paths) == len(machine.transitions) == 16
    else:
        assert [p.target for p in plan.state_paths] == [
            "INPAINTING_PHASE",
            "running_inpainting",
            "POST_PROCESSING",
            "resizing_images",
            "COMPLETION_PHASE",
            "finalizing",
            "FINISHED",
        ]
        assert len(plan.transition_paths) == 3
        assert not (plan.transient_states or plan.unreachable_states)
        assert not plan.unreachable_transitions


def test_chart_path_descriptions_and_checks() -> None:
    plan = chart_plan(PLAYER)
    described = {p.description: p.checks for p in plan.paths}
    assert described["reaches muted: power -> jump"] == (("power", "stopped"), ("jump", "muted"))
    assert described["takes jump from stopped to fast and muted: power -> jump"] == (
        ("power", "stopped"),
        ("jump", "playing"),
    )
    # the raised event is taken inside the step of wait; the wildcard is one written transition
    assert "takes dim_done from dimmed to stopped: power -> play -> pause -> wait" in described
    assert "takes (eventless) from rewinding to stopped: power -> play -> rewind" in described
    assert "takes smash from * to broken: smash" in described
    assert len(set(described)) == len(plan.paths)


def test_an_unreachable_part_of_a_chart_is_listed(tmp_path: Path) -> None:
    file = tmp_path / "island.yaml"
    file.write_text(
        "initial_state: a\n"
        "states:\n"
        "  - name: a\n"
        "    states: [a1, a2]\n"
        "  - name: island\n"
        "    states: [i1]\n"
        "transitions:\n"
        "  - {from: a1, to: a2, event: go}\n"
        "  - {from: a, to: a1, event: go}\n"  # from a2: a1's own go comes first in a1
        "  - {from: i1, to: a, event: back}\n"
    )
    plan = chart_plan(file)
    assert plan.unreachable_states == ("island", "i1")
    assert [t.event for t in plan.unreachable_transitions] == ["back"]
    text = format_text([plan])
    assert "3/5 states and 2/3 transitions reachable" in text
    assert "  unreachable states: island, i1\n" in text
    assert "  transitions no step takes:\n    back from i1 to a\n" in text


def test_smc_paths_on_a_statechart() -> None:
    done = smc("paths", str(PLAYER))
    assert done.returncode == 0, done.stderr
    assert "SMC076" not in done.stderr
    assert done.stdout == format_text([plan_paths(m) for m in load(PLAYER)])
    assert ": 13/15 states and 16/16 transitions reachable (" in done.stdout
    assert "  states entered and left within one step: dimmed, rewinding\n" in done.stdout


@pytest.mark.parametrize("source", ["player", "corpus"])
def test_path_cases_expand_chart_routes_to_the_compiler_paths(source: str, tmp_path: Path) -> None:
    """The emitted form of a chart (situation tree, reaches, takes): ``path_cases`` must
    rebuild from it exactly the paths, ids and checks ``plan_paths`` computed."""
    import importlib

    from smc.compiler.codegen import generate_machine, module_names
    from smc.testing import path_cases, run_path

    plan = chart_plan(PLAYER if source == "player" else face_processor())
    machine = plan.machine
    package = tmp_path / f"chart_routes_{source}"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "chart.py").write_text(generate_machine(machine, machine.path))
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(f"{package.name}.chart")
        cls = getattr(module, module_names(machine).class_name)
        routes = {situation: (previous, event) for situation, previous, event in plan.routes}
        reaches = {p.target: p.steps[-1].target if p.steps else 0 for p in plan.state_paths}
        takes = []
        for p in plan.transition_paths:
            assert p.transition is not None
            label = p.description.split(": ")[0].removeprefix("takes ")
            last = p.steps[-1] if p.steps else None
            takes.append(
                (label, last.source, last.event, last.target) if last else (label, 0, None, 0)
            )
        expected = [(p.description, p.checks) for p in plan.paths]
        assert path_cases(cls, routes, reaches=reaches, takes=takes) == expected
        for _name, steps in expected:
            run_path(cls, steps)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n.startswith(package.name)]:
            del sys.modules[name]
