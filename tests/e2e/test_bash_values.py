"""Job data and event payloads in ``bash`` commands, through real ``smc run`` processes: each
shell form that used to run a value as code (issue 10) either runs the value as one literal
string or is refused before anything runs; an unresolved placeholder fails the job (issue 11).
"""

from __future__ import annotations

import json

import pytest

from tests.support.harness import Runner, wait_until
from tests.support.machines import queue_worker

RECEIVER = """
initial_state: idle
metadata: {{machine_name: {name}}}
transitions:
  - {{from: idle, to: done, event: go}}
actions:
  done:
    - type: bash
      command: {command}
"""


def _job(runner: Runner, data: dict[str, object], *options: str) -> str:
    return runner.run(
        "jobs", "add", "--type", "t", "--data", json.dumps(data), *options
    ).stdout.strip()


def _wait_status(runner: Runner, job: str, status: str, output: object) -> None:
    wait_until(
        lambda: runner.job_statuses().get(job) == status,
        20,
        lambda: f"{job}: {runner.job_statuses().get(job)}\n{output()}",  # type: ignore[operator]
    )


RUN_AS_DATA = [
    pytest.param(
        "# don't forget the output\necho {message} > out.txt",
        {"message": "x; touch PWNED"},
        "x; touch PWNED\n",
        id="apostrophe-in-comment-before-placeholder",
    ),
    pytest.param(
        "cat > out.txt <<EOF\nvalue: {message}\nEOF",
        {"message": "$(touch PWNED) `touch PWNED` 'q' \"d\" \\"},
        "value: $(touch PWNED) `touch PWNED` 'q' \"d\" \\\n",
        id="unquoted-heredoc",
    ),
    pytest.param(
        # ${m} is the shell's own variable m (unset here), never the job's key m.
        'echo "Price: ${m}" > out.txt',
        {"m": "(touch PWNED)"},
        "Price: \n",
        id="dollar-brace-is-the-shells",
    ),
]


@pytest.mark.parametrize(("command", "data", "expected"), RUN_AS_DATA)
def test_job_data_runs_as_one_literal_value(
    runner: Runner, command: str, data: dict[str, object], expected: str
) -> None:
    (runner.cwd / "w.yaml").write_text(queue_worker("w", command, wait=0.2))
    proc = runner.start("run", "w.yaml")
    runner.wait_running(proc, "w")
    job = _job(runner, data)
    _wait_status(runner, job, "completed", proc.output)
    assert (runner.cwd / "out.txt").read_text() == expected
    assert not (runner.cwd / "PWNED").exists()


REFUSED = [
    pytest.param('echo hi > out.txt # log "{m}"', "x\ntouch PWNED", id="newline-after-hash"),
    pytest.param("echo $(( {m} + 1 )) > out.txt", "a[$(touch PWNED)]", id="arithmetic"),
]


@pytest.mark.parametrize(("command", "value"), REFUSED)
def test_a_command_that_would_evaluate_job_data_is_refused_before_it_runs(
    runner: Runner, command: str, value: str
) -> None:
    (runner.cwd / "w.yaml").write_text(queue_worker("w", command, wait=0.2))
    job = _job(runner, {"m": value})
    proc = runner.start("run", "w.yaml")
    assert proc.wait(30) == 1, proc.output()
    assert "error[SMC060]" in proc.output()
    assert runner.job_statuses()[job] == "pending"
    assert not (runner.cwd / "PWNED").exists()


def test_event_payloads_run_as_one_literal_value(runner: Runner) -> None:
    command = "# don't forget\nprintf '%s|' {payload.x} \"{payload.x}\" '{payload.x}' > out.txt"
    (runner.cwd / "r.yaml").write_text(RECEIVER.format(name="r", command=json.dumps(command)))
    proc = runner.start("run", "r.yaml")
    runner.wait_running(proc, "r")
    value = "x; touch PWNED; $(touch PWNED) '\" \n*"
    runner.run("send", "r", "go", "--payload", json.dumps({"x": value}))
    assert proc.wait(20) == 0, proc.output()
    assert (runner.cwd / "out.txt").read_text() == f"{value}|" * 3
    assert not (runner.cwd / "PWNED").exists()


def test_a_payload_in_a_refused_place_never_reaches_the_shell(runner: Runner) -> None:
    command = "echo hi > out.txt # from {payload.x}"
    (runner.cwd / "r.yaml").write_text(RECEIVER.format(name="r", command=json.dumps(command)))
    proc = runner.start("run", "r.yaml")
    assert proc.wait(30) == 1, proc.output()
    assert "error[SMC060]" in proc.output()
    assert not (runner.cwd / "out.txt").exists()


def test_an_unresolved_placeholder_fails_the_job_and_names_itself(runner: Runner) -> None:
    # The job's data keys sit at the top level of the context: {data.text} does not resolve.
    command = "echo {data.text} > out.txt"
    (runner.cwd / "w.yaml").write_text(queue_worker("w", command, wait=0.2))
    proc = runner.start("run", "w.yaml")
    runner.wait_running(proc, "w")
    job = _job(runner, {"text": "hello"}, "--max-attempts", "1")
    _wait_status(runner, job, "failed", proc.output)
    assert not (runner.cwd / "out.txt").exists()
    assert any(
        "{data.text}" in line and "ERROR" in line for line in proc.output().splitlines()
    ), proc.output()
    with runner.store() as store:
        failed = store.get_job(job)
    assert failed is not None and "{data.text}" in (failed.last_error or "")
