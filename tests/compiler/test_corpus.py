"""Every file of the compatibility corpus gets the result it deserves.

The corpus (../shared/corpus) is read unchanged. Each expectation is the exact set of
diagnostics, as (file, line, col, code): a new warning on a peer config, or a lost one, fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from smc.compiler.check import CheckResult, check_paths
from smc.compiler.model import Machine

ENGINE = "statemachine-engine/examples"
SEED = "seed-docs"

Found = set[tuple[str, int, int, str]]


def run(corpus: Path, *paths: str, action_dirs: tuple[str, ...] = ()) -> CheckResult:
    return check_paths([str(corpus / p) for p in paths], action_dirs)


def found(result: CheckResult, corpus: Path) -> Found:
    return {
        (Path(d.path).relative_to(corpus).as_posix(), d.line, d.col, d.code)
        for d in result.diagnostics
    }


def machine(result: CheckResult, name: str) -> Machine:
    return next(m for m in result.machines if m.name == name)


# ---- the peer's seven runnable configs --------------------------------------------------

CONTROLLER = f"{ENGINE}/controller_worker/config/controller.yaml"
WORKER = f"{ENGINE}/controller_worker/config/worker.yaml"
CONCURRENT = f"{ENGINE}/patient_records/config/concurrent-controller.yaml"
CUSTOM = f"{ENGINE}/custom_actions/config/worker.yaml"

#: A `bash` whose failure (a non-zero exit, a timeout) leaves the worker idle in a state it
#: cannot leave: no transition on `error`, no timer, no event expected from outside (SMC027).
PEER_BASH_HANGS: Found = {
    (CONTROLLER, 56, 13, "SMC027"),  # initializing
    (WORKER, 70, 13, "SMC027"),  # initializing
    (WORKER, 90, 13, "SMC027"),  # processing, holding the job
    (WORKER, 107, 13, "SMC027"),  # notifying
}

PEER_EXPECTATIONS: dict[str, Found] = {
    f"{ENGINE}/simple_worker": {
        (f"{ENGINE}/simple_worker/config/worker.yaml", line, 13, "SMC027")
        for line in (68, 88, 99)  # initializing, processing, completed
    },
    f"{ENGINE}/timeout_demo": {
        (f"{ENGINE}/timeout_demo/config/timeout_worker.yaml", line, 13, "SMC027")
        for line in (68, 101)  # initializing, timed_out
    },
    # check_events was removed from the peer; the controller calls it anyway. No user action
    # directory was given, so the checker cannot tell whether one provides it (SMC034).
    f"{ENGINE}/controller_worker": {(CONTROLLER, 66, 13, "SMC034"), *PEER_BASH_HANGS},
    # Checked alone, the worker sends to task_controller, which is not among the files.
    WORKER: {
        (WORKER, 102, 23, "SMC040"),
        *(found for found in PEER_BASH_HANGS if found[0] == WORKER),
    },
    # User action types that only --actions-dir (or action_types:) can make known.
    f"{ENGINE}/custom_actions": {(CUSTOM, 38, 13, "SMC034"), (CUSTOM, 48, 13, "SMC034")},
    f"{ENGINE}/patient_records": {
        # `{x|length}` and `{x|default:...}` filters are not supported.
        *((CONCURRENT, line, 16, "SMC033") for line in (89, 106, 120, 152, 157, 168, 178)),
        # wait_for_jobs returns no_jobs_tracked when every job of the batch was taken by
        # another controller; nothing handles it, so the controller polls forever.
        (CONCURRENT, 160, 13, "SMC022"),
        # error_handling's bash has no transition on error: if it fails, the controller idles.
        (CONCURRENT, 181, 13, "SMC027"),
    },
}


@pytest.mark.parametrize("path", sorted(PEER_EXPECTATIONS))
def test_peer_configs(corpus: Path, path: str) -> None:
    result = run(corpus, path)
    assert found(result, corpus) == PEER_EXPECTATIONS[path]
    assert not result.errors
    assert result.machines


def test_peer_configs_cover_the_seven_runnable_files(corpus: Path) -> None:
    files = {
        Path(f).relative_to(corpus).as_posix()
        for path in PEER_EXPECTATIONS
        for f in ([str(corpus / path)] if path.endswith(".yaml") else [])
    } | {
        p.relative_to(corpus).as_posix()
        for path in PEER_EXPECTATIONS
        if not path.endswith(".yaml")
        for p in (corpus / path).rglob("*.yaml")
    }
    assert len(files) == 7


def test_custom_actions_with_an_actions_dir_is_clean(corpus: Path, tmp_path: Path) -> None:
    actions = tmp_path / "actions"
    actions.mkdir()
    (actions / "greet_action.py").write_text("")
    (actions / "calculate.py").write_text("")
    result = run(corpus, f"{ENGINE}/custom_actions", action_dirs=(str(actions),))
    assert result.diagnostics == []


def test_removed_check_events_is_explained(corpus: Path) -> None:
    result = run(corpus, f"{ENGINE}/controller_worker")
    (diagnostic,) = [d for d in result.diagnostics if d.code == "SMC034"]
    assert diagnostic.severity == "warning"
    assert "check_events was removed" in diagnostic.hint


def test_removed_check_events_is_an_error_where_user_actions_are_known(
    corpus: Path, tmp_path: Path
) -> None:
    """Given the user action directories, the checker knows what `smc run` will find: a type
    none of them provides is refused by both (SMC030), explained all the same."""
    result = run(corpus, f"{ENGINE}/controller_worker", action_dirs=(str(tmp_path),))
    (diagnostic,) = [d for d in result.diagnostics if d.code.startswith("SMC03")]
    assert (diagnostic.code, diagnostic.line, diagnostic.col) == ("SMC030", 66, 13)
    assert diagnostic.is_error
    assert "check_events was removed" in diagnostic.hint


def test_peer_patterns_are_not_reported(corpus: Path) -> None:
    """An event written on an action followed by others, with no transition, continues the
    list: `pop_from_list success: has_job` then `claim_job` is the peer's loop body."""
    result = run(corpus, f"{ENGINE}/patient_records")
    messages = " ".join(d.message for d in result.diagnostics)
    for event in ("has_job", "job_claimed", "job_completed", "completion_failed"):
        assert event not in messages


def test_peer_models(corpus: Path) -> None:
    result = run(corpus, f"{ENGINE}/simple_worker", f"{ENGINE}/timeout_demo", CUSTOM)
    worker = machine(result, "simple_worker")
    assert worker.style == "engine"
    assert [(g.name, g.id, g.states) for g in worker.groups] == [
        ("INITIALIZATION", "INITIALIZATION", ("initializing",)),
        ("MAIN LOOP", "MAINLOOP", ("waiting", "processing")),
        ("COMPLETION", "COMPLETION", ("completed",)),
    ]
    # completed has an explicit way out (continue_work): no hard-coded terminal names.
    assert worker.final_states == ()
    assert worker.lookup[("processing", "stop")] == "completed"
    timeouts = machine(result, "timeout_worker")
    assert [e.timeout for e in timeouts.timeout_events] == [5.0, 10.0]
    # completed: no explicit way out and the only wildcard leads back to it.
    assert timeouts.final_states == ("completed",)
    custom = machine(result, "custom_worker")
    assert [s.name for s in custom.states] == [
        "waiting",
        "greeting",
        "calculating",
        "completed",
    ]
    assert all(not s.declared for s in custom.states)
    greet = custom.state("greeting").actions[1]
    assert (greet.type, dict(greet.params)) == ("greet", {"success": "greeted"})


# ---- tools/test_face_processor.yaml -----------------------------------------------------

FACE = "statemachine-engine/tools/test_face_processor.yaml"


def test_nested_format_is_read_as_a_statechart(corpus: Path) -> None:
    """Once refused (SMC005 on each composite), the xstate-like file now reads with its
    evident meaning: three compound phases in a row, each with one child whose `on:` leads
    to the next phase, and a final state (whose `on: {}` YAML reads with the key true)."""
    result = run(corpus, FACE)
    assert found(result, corpus) == set()
    face = machine(result, "test_face_processor")
    assert face.is_chart
    assert [(s.name, s.kind, s.parent, s.initial) for s in face.states] == [
        ("INPAINTING_PHASE", "compound", None, "running_inpainting"),
        ("running_inpainting", "atomic", "INPAINTING_PHASE", None),
        ("POST_PROCESSING", "compound", None, "resizing_images"),
        ("resizing_images", "atomic", "POST_PROCESSING", None),
        ("COMPLETION_PHASE", "compound", None, "finalizing"),
        ("finalizing", "atomic", "COMPLETION_PHASE", None),
        ("FINISHED", "final", None, None),
    ]
    assert [(t.source, t.event, t.target, t.pos.line) for t in face.transitions] == [
        ("running_inpainting", "inpainting_complete", "POST_PROCESSING", 14),
        ("resizing_images", "resize_complete", "COMPLETION_PHASE", 22),
        ("finalizing", "job_complete", "FINISHED", 30),
    ]
    assert face.final_states == ("FINISHED",)
    # and it is compiled as it is: no diagnostic at all
    assert check_paths([str(corpus / FACE)]).diagnostics == []


def test_nested_format_through_the_cli_has_no_traceback(corpus: Path, tmp_path: Path) -> None:
    def smc(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "smc", *args],
            cwd=corpus,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )

    checked = smc("check", FACE)
    assert checked.returncode == 0, checked.stderr
    assert "Traceback" not in checked.stderr
    out = tmp_path / "face"
    built = smc("build", "-o", str(out), FACE)
    assert built.returncode == 0, built.stderr
    walked = subprocess.run(
        [
            sys.executable,
            "-c",
            "from face import TestFaceProcessor as M; m = M(); "
            "print(sorted(map(str, m.configuration))); m.inpainting_complete(); print(m.state)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert walked.stdout.split("\n")[:2] == [
        "['INPAINTING_PHASE', 'running_inpainting']",
        "resizing_images",
    ], walked.stderr


# ---- seed-docs --------------------------------------------------------------------------

GENERATOR = f"{SEED}/pipeline/config/generator.yaml"
PROCESSOR = f"{SEED}/pipeline/config/processor.yaml"
ANALYZER = f"{SEED}/pipeline/config/analyzer.yaml"
SEED_WORKER = f"{SEED}/controller_worker/config/worker.yaml"
SEED_CONTROLLER = f"{SEED}/controller_worker/config/controller.yaml"
QUICKSTART = f"{SEED}/quickstart/config/workflow.yaml"

SEED_EXPECTATIONS: dict[str, Found] = {
    f"{SEED}/pipeline": {
        # Fragment: the initial state has no transition, and no `states:` lists it.
        (GENERATOR, 2, 16, "SMC010"),
        # The targets are named after their titles, not their machine names (file stems).
        (GENERATOR, 20, 19, "SMC040"),
        (PROCESSOR, 28, 19, "SMC040"),
        (ANALYZER, 9, 15, "SMC034"),
        (PROCESSOR, 9, 15, "SMC034"),
        # Each stage's bash has no transition on error: a failing command hangs the stage.
        (GENERATOR, 9, 15, "SMC027"),
        (PROCESSOR, 17, 15, "SMC027"),
        (ANALYZER, 17, 15, "SMC027"),
    },
    f"{SEED}/execution/config/task_execution.yaml": set(),
    f"{SEED}/simple_worker": {
        (f"{SEED}/simple_worker/config/worker.yaml", line, 15, "SMC027")
        for line in (30, 53)  # initializing, processing
    },
    # check_database_queue returns no_jobs when the queue is empty; with no transition on
    # it the machine never polls again. A failing bash in processing hangs it, job held.
    f"{SEED}/quickstart": {(QUICKSTART, 19, 15, "SMC022"), (QUICKSTART, 27, 15, "SMC027")},
    f"{SEED}/controller_worker": {
        (SEED_CONTROLLER, 24, 15, "SMC034"),
        (SEED_CONTROLLER, 33, 15, "SMC027"),
        (SEED_WORKER, 27, 15, "SMC022"),
        (SEED_WORKER, 35, 15, "SMC027"),
    },
}


@pytest.mark.parametrize("path", sorted(SEED_EXPECTATIONS))
def test_seed_docs(corpus: Path, path: str) -> None:
    result = run(corpus, path)
    assert found(result, corpus) == SEED_EXPECTATIONS[path]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            GENERATOR,
            {
                (GENERATOR, 2, 16, "SMC010"),
                (GENERATOR, 9, 15, "SMC027"),
                (GENERATOR, 20, 19, "SMC040"),
            },
        ),
        (
            PROCESSOR,
            {
                (PROCESSOR, 9, 15, "SMC034"),
                (PROCESSOR, 17, 15, "SMC027"),
                (PROCESSOR, 28, 19, "SMC040"),
            },
        ),
        (ANALYZER, {(ANALYZER, 9, 15, "SMC034"), (ANALYZER, 17, 15, "SMC027")}),
    ],
)
def test_pipeline_fragments_alone(corpus: Path, path: str, expected: Found) -> None:
    assert found(run(corpus, path), corpus) == expected


def test_pipeline_messages_say_what_to_do(corpus: Path) -> None:
    result = run(corpus, f"{SEED}/pipeline")
    by_place = {(Path(d.path).name, d.line): d for d in result.diagnostics}
    initial = by_place[("generator.yaml", 2)]
    assert initial.message == "initial state 'waiting' is not a state of machine 'generator'"
    assert "no transition names it" in initial.hint
    assert by_place[("generator.yaml", 20)].hint == "did you mean 'processor'?"
    assert by_place[("processor.yaml", 28)].hint == "did you mean 'analyzer'?"


def test_seed_complete_machines_have_no_errors(corpus: Path) -> None:
    for name in ("quickstart", "simple_worker", "controller_worker"):
        assert run(corpus, f"{SEED}/{name}").errors == []


def test_execution_contract_model(corpus: Path) -> None:
    result = run(corpus, f"{SEED}/execution")
    contract = machine(result, "task_execution")
    assert contract.style == "contract"
    assert contract.initial_state == "PENDING"
    assert contract.state("RUNNING").description == "Task executing"
    assert contract.lookup == {
        ("PENDING", "to_RUNNING"): "RUNNING",
        ("PENDING", "to_SKIPPED"): "SKIPPED",
        ("PENDING", "to_CANCELLED"): "CANCELLED",
        ("RUNNING", "to_COMPLETED"): "COMPLETED",
        ("RUNNING", "to_FAILED"): "FAILED",
        ("RUNNING", "to_CANCELLED"): "CANCELLED",
        ("FAILED", "to_PENDING"): "PENDING",
    }
    assert contract.final_states == ("COMPLETED", "SKIPPED", "CANCELLED")
    assert all(t.synthesized for t in contract.transitions)


def test_design_style_actions_join_the_from_state(corpus: Path) -> None:
    result = run(corpus, f"{SEED}/simple_worker", f"{SEED}/pipeline/config/generator.yaml")
    worker = machine(result, "worker")
    assert worker.style == "design"
    init = worker.state("initializing").actions
    assert [(a.type, a.origin, dict(a.params)) for a in init] == [
        ("bash", "transition", {"command": "mkdir -p data/output", "success": "initialized"})
    ]
    generator = machine(result, "generator")
    # `success` defaults to the transition's event; `target` is an alias of target_machine.
    (send,) = generator.state("notifying_processor").actions
    assert send.params["target_machine"] == "data_processor"
    assert "target" not in send.params
    assert send.params["success"] == "notification_sent"


def test_whole_corpus_in_one_run(corpus: Path) -> None:
    """All files together: the expectations above, plus the machine names the seed docs and
    the peer both use (task_controller, task_worker), reported where they are written."""
    result = run(corpus, ".")
    everything = found(result, corpus)
    assert (f"{ENGINE}/controller_worker/config/controller.yaml", 10, 17, "SMC042") in everything
    assert (f"{ENGINE}/controller_worker/config/worker.yaml", 10, 17, "SMC042") in everything
    assert {code for *_, code in everything if code.startswith("SMC00")} == set()
    assert len(result.sources) == 16
