"""``smc build --emit-tests``: the generated test modules pass, for the examples and the corpus.

Each case builds real machine files with the real command into a temporary package, then runs
the emitted tests with pytest in a subprocess that sees only that package and smc.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from smc.compiler.check import check_paths, collect_files, follows_data
from smc.compiler.codegen import module_names
from smc.compiler.model import Machine
from smc.compiler.paths import plan_paths
from smc.compiler.testgen import emit_tests
from tests.support.corpus import CORPUS, corpus_present, require_corpus
from tests.support.machines import PLAYER

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "pkg"
#: What a project's conftest.py would hold for CI: a fixed, shorter search (the emitted
#: random walks use the loaded profile's settings).
CONFTEST = """\
from hypothesis import settings

settings.register_profile("ci", max_examples=25, derandomize=True, database=None, deadline=None)
settings.load_profile("ci")
"""


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )


def pytest_env(tmp_path: Path) -> dict[str, str]:
    """The emitted tests' environment: the generated package and the smc under test (this
    checkout, not whichever one is installed), nothing else."""
    path = os.pathsep.join([str(tmp_path), str(ROOT)])
    return {"PYTHONPATH": path, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def build_and_test(sources: list[str], tmp_path: Path) -> tuple[list[Machine], str]:
    """``smc build SOURCES -o tmp/pkg --emit-tests tmp/tests``, then pytest on tmp/tests."""
    built = run(
        "smc",
        "build",
        *sources,
        "-o",
        str(tmp_path / PACKAGE),
        "--emit-tests",
        str(tmp_path / "tests"),
        "--no-diagrams",
        cwd=ROOT,
    )
    assert built.returncode == 0, built.stderr
    result = check_paths(sources)
    expected = sorted(f"test_{module_names(m).module}.py" for m in result.machines)
    assert sorted(p.name for p in (tmp_path / "tests").glob("test_*.py")) == expected
    (tmp_path / "tests" / "conftest.py").write_text(CONFTEST)
    env = pytest_env(tmp_path)
    tested = run(
        "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "tests", cwd=tmp_path, env=env
    )
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    return result.machines, tested.stdout


def expected_test_count(machines: list[Machine]) -> int:
    # per machine: one random-walk TestCase, one test per path, one coverage test; a machine
    # with guards has its random walk only (SMC079)
    return sum(1 if follows_data(m) else len(plan_paths(m).paths) + 2 for m in machines)


@pytest.mark.slow
def test_emitted_tests_pass_for_the_examples(tmp_path: Path) -> None:
    machines, output = build_and_test([str(ROOT / "examples")], tmp_path)
    assert len(machines) == 10  # examples/workflows/release_worker.yaml is the tenth
    assert re.search(rf"\b{expected_test_count(machines)} passed\b", output), output


def test_emitted_tests_pass_for_a_statechart(tmp_path: Path) -> None:
    """The player chart (nested, parallel, history): random walks over DISPATCH, one test per
    state and per written transition, and the state coverage test, all passing."""
    machines, output = build_and_test([str(PLAYER)], tmp_path)
    [machine] = machines
    assert machine.is_chart
    assert re.search(rf"\b{expected_test_count(machines)} passed\b", output), output
    text = (tmp_path / "tests" / "test_player.py").read_text()
    assert "PLAYER_REACHES: dict[str, int] = {" in text
    assert "def test_player_paths_cover_every_state() -> None:" in text
    listed = run(
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        "--collect-only",
        "tests",
        cwd=tmp_path,
        env=pytest_env(tmp_path),
    )
    assert "test_player_path[reaches muted: power -> jump]" in listed.stdout
    assert "test_player_path[takes smash from * to broken: smash]" in listed.stdout


def corpus_groups() -> list[str]:
    """Corpus directories holding machines that compile, each built on its own (the two
    controller_worker folders define machines of the same names)."""
    groups = []
    for path in collect_files([str(require_corpus())]):
        if not check_paths([path]).errors:
            groups.append(str(Path(path).parent))
    return sorted(set(groups))


def test_the_corpus_has_machines_that_compile() -> None:
    groups = corpus_groups()
    assert len(groups) >= 9
    compiling = sum(len(check_paths([g]).machines) for g in groups)
    assert compiling >= 14


@pytest.mark.slow
@pytest.mark.parametrize(
    # without the corpus: one case, which fails saying where the corpus was looked for
    "group",
    corpus_groups() if corpus_present() else [str(CORPUS / "missing")],
    ids=lambda g: str(Path(g).relative_to(CORPUS).parent),
)
def test_emitted_tests_pass_for_the_corpus(group: str, tmp_path: Path) -> None:
    require_corpus()
    result = check_paths([group])
    if result.errors:  # a folder with one broken fragment: build the good files only
        files = [f for f in collect_files([group]) if not check_paths([f]).errors]
    else:
        files = [group]
    machines, output = build_and_test(files, tmp_path)
    assert re.search(rf"\b{expected_test_count(machines)} passed\b", output), output


def test_emitted_tests_are_deterministic() -> None:
    machines = check_paths([str(ROOT / "examples")]).machines
    first = emit_tests(machines, "generated")
    second = emit_tests(list(reversed(machines)), "generated")
    assert first == second
    assert list(first) == sorted(first)


@pytest.mark.slow
def test_emitted_tests_catch_a_hand_edited_machine(tmp_path: Path) -> None:
    """Edit one transition in the built module: the emitted tests must fail on it."""
    build_and_test([str(ROOT / "examples" / "simple_worker")], tmp_path)
    module = tmp_path / PACKAGE / "simple_worker.py"
    text = module.read_text()
    # error in processing now stops the worker; TRANSITIONS (the model) still says waiting
    edited = text.replace(
        "target = _ON_ERROR.get(source)\n",
        "target = State.STOPPED if source == State.PROCESSING else _ON_ERROR.get(source)\n",
    )
    assert edited != text
    module.write_text(edited)
    env = pytest_env(tmp_path)
    tested = run(
        "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "tests", cwd=tmp_path, env=env
    )
    assert tested.returncode == 1
    assert "state.send_error()" in tested.stdout  # the random walk's reproducer
    assert (
        "FAILED tests/test_simple_worker.py::test_simple_worker_path[takes error from "
        "processing to waiting: initialized -> new_job -> error]"
    ) in tested.stdout
