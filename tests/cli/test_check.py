"""`smc check` and `smc schema` as a user runs them: real subprocesses, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import PROJECT_ROOT

GOOD = "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n"
WARNS = GOOD + "events: [go, spare]\n"  # SMC023 at 4:14
# (Without `event:` a transition is a statechart's eventless one, without `to:` a targetless
# one if it has actions; without `from:` it is broken.)
BROKEN = "initial_state: a\ntransitions:\n  - {from: a, to: b, event: go}\n  - {to: x, event: go}\n"


def smc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "NO_COLOR": "1"},
        timeout=60,
    )


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "warns.yml").write_text(WARNS)
    nested = tmp_path / "nested" / "deeper"
    nested.mkdir(parents=True)
    (nested / "broken.yaml").write_text(BROKEN)
    (tmp_path / "notes.txt").write_text("not a machine")
    return tmp_path


def test_clean_file_exits_0(files: Path) -> None:
    proc = smc("check", "good.yaml", cwd=files)
    assert proc.returncode == 0
    assert proc.stdout == ""
    assert proc.stderr == "ok: 1 machine(s) checked, no problems\n"


def test_warnings_exit_0_unless_strict(files: Path) -> None:
    assert smc("check", "warns.yml", cwd=files).returncode == 0
    strict = smc("check", "--strict", "warns.yml", cwd=files)
    assert strict.returncode == 1
    assert "warns.yml:4:14: warning[SMC023]" in strict.stderr


def test_errors_exit_1_with_source_line_caret_and_hint(files: Path) -> None:
    proc = smc("check", "nested", cwd=files)
    assert proc.returncode == 1
    path = os.path.join("nested", "deeper", "broken.yaml")
    assert proc.stderr.splitlines() == [
        f"{path}:4:5: error[SMC004]: transitions[1] is missing the required key 'from'",
        "     4 |   - {to: x, event: go}",
        "       |     ^",
        "1 error(s), 0 warning(s) in 1 file(s)",
    ]


def test_directories_are_searched_recursively_and_problems_sorted(files: Path) -> None:
    proc = smc("check", "--format", "json", ".", cwd=files)
    assert proc.returncode == 1
    diagnostics = json.loads(proc.stdout)
    assert [(d["path"], d["line"], d["code"]) for d in diagnostics] == [
        (os.path.join("nested", "deeper", "broken.yaml"), 4, "SMC004"),
        ("warns.yml", 4, "SMC023"),
    ]


def test_json_format_is_stable(files: Path) -> None:
    first = smc("check", "--format", "json", "warns.yml", "nested", cwd=files)
    second = smc("check", "--format", "json", "nested", "warns.yml", cwd=files)
    assert first.stdout == second.stdout
    item, _ = json.loads(first.stdout)
    assert list(item) == ["code", "col", "hint", "line", "message", "path", "severity"]
    assert item["severity"] == "error"
    assert first.stderr == ""


def test_json_format_for_a_clean_run_is_an_empty_list(files: Path) -> None:
    proc = smc("check", "--format", "json", "good.yaml", cwd=files)
    assert (proc.returncode, json.loads(proc.stdout)) == (0, [])


def test_github_format(files: Path) -> None:
    proc = smc("check", "--format", "github", "warns.yml", "nested", cwd=files)
    path = os.path.join("nested", "deeper", "broken.yaml")
    assert proc.stdout.splitlines() == [
        f"::error file={path},line=4,col=5,title=SMC004::transitions[1] is missing the "
        "required key 'from'",
        "::warning file=warns.yml,line=4,col=14,title=SMC023::event 'spare' is declared but no "
        "transition or action uses it (hint: remove it, or add the transition it was meant for)",
    ]


def test_missing_path_is_a_usage_error(files: Path) -> None:
    proc = smc("check", "good.yaml", "missing.yaml", cwd=files)
    assert proc.returncode == 2
    assert proc.stderr == "smc check: error: missing.yaml: no such file or directory\n"


def test_directory_without_machines_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = smc("check", "empty", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no machine files" in proc.stderr


def test_missing_actions_dir_is_a_usage_error(files: Path) -> None:
    proc = smc("check", "--actions-dir", "nowhere", "good.yaml", cwd=files)
    assert proc.returncode == 2
    assert "--actions-dir nowhere: no such directory" in proc.stderr


def test_bad_option_is_a_usage_error(files: Path) -> None:
    assert smc("check", "--format", "xml", "good.yaml", cwd=files).returncode == 2


def test_actions_dir_makes_user_types_known(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        GOOD + "actions:\n  a:\n    - type: greet\n      success: go\n"
    )
    actions = tmp_path / "acts"
    actions.mkdir()
    assert smc("check", "--strict", "m.yaml", cwd=tmp_path).returncode == 1
    (actions / "greet_action.py").write_text("")
    assert smc("check", "--strict", "--actions-dir", "acts", "m.yaml", cwd=tmp_path).returncode == 0


def test_internal_failure_is_reported_as_a_bug_with_exit_3(files: Path) -> None:
    """Make one analysis check raise, then run the real CLI entry point."""
    script = (
        "import sys\n"
        "from smc.compiler import analysis\n"
        "def broken(machine, context):\n"
        "    raise RuntimeError('simulated failure in the analysis')\n"
        "analysis.CHECKS = (broken, *analysis.CHECKS[1:])\n"
        "from smc.cli import main\n"
        "sys.exit(main(['check', 'good.yaml']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=files,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=60,
    )
    assert proc.returncode == 3
    assert proc.stderr.startswith("smc check: internal error (this is a bug in smc")
    assert "RuntimeError: simulated failure in the analysis" in proc.stderr


def test_schema_command_prints_the_schema(tmp_path: Path) -> None:
    proc = smc("schema", cwd=tmp_path)
    assert proc.returncode == 0
    schema_file = PROJECT_ROOT / "schemas" / "machine.schema.json"
    assert proc.stdout == schema_file.read_text(encoding="utf-8")
    assert json.loads(proc.stdout)["$id"].endswith("/v1.json")


def test_non_utf8_and_empty_files_are_diagnosed_not_crashed(tmp_path: Path) -> None:
    (tmp_path / "latin.yaml").write_bytes(b"initial_state: caf\xe9\n")
    (tmp_path / "empty.yaml").write_bytes(b"")
    proc = smc("check", ".", cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "empty.yaml:1:1: error[SMC002]" in proc.stderr
    assert "latin.yaml:1:19: error[SMC007]" in proc.stderr


# ---- mistakes that used to pass the check and then hang or stop a worker (issue 11) -------

QUEUE_WORKER = (
    "initial_state: waiting\n"
    "events: [new_job, no_jobs, done, error]\n"
    "transitions:\n"
    "  - {from: waiting, to: working, event: new_jbo}\n"
    "  - {from: waiting, to: waiting, event: no_jobs}\n"
    "  - {from: working, to: waiting, event: done}\n"
    "  - {from: working, to: waiting, event: error}\n"
    "actions:\n"
    "  waiting:\n"
    "    - type: check_database_queue\n"
    "  working:\n"
    "    - {type: bash, command: 'true', success: done}\n"
)


def test_an_event_typo_fails_the_check(tmp_path: Path) -> None:
    """`event: new_jbo` in a machine that lists its events: `smc run` would claim a job and
    hold it for ever, so the check fails, at the typo and at the claim it strands."""
    (tmp_path / "m.yaml").write_text(QUEUE_WORKER)
    proc = smc("check", "m.yaml", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "m.yaml:4:41: error[SMC025]: event 'new_jbo' is not listed" in proc.stderr
    assert "m.yaml:10:13: error[SMC026]" in proc.stderr
    fixed = QUEUE_WORKER.replace("new_jbo", "new_job")
    (tmp_path / "m.yaml").write_text(fixed)
    clean = smc("check", "--strict", "m.yaml", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr


def run_refused(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`smc run` on a file it must refuse before it starts (no database is touched)."""
    return subprocess.run(
        [sys.executable, "-m", "smc", "run", *args, "--db", str(tmp_path / "never.db")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "SMC_CACHE_DIR": str(tmp_path / "cache"),
        },
        timeout=60,
    )


def test_an_unknown_action_type_fails_check_as_it_fails_run(tmp_path: Path) -> None:
    machine = GOOD + "actions:\n  a:\n    - type: {type}\n      success: go\n"
    (tmp_path / "acts").mkdir()
    (tmp_path / "acts" / "greet.py").write_text(
        "class GreetAction:\n    async def execute(self, context):\n        return 'go'\n"
    )
    # A misspelt built-in: an error with the did-you-mean, with or without action directories.
    (tmp_path / "typo.yaml").write_text(machine.replace("{type}", "bsah"))
    check = smc("check", "typo.yaml", cwd=tmp_path)
    assert check.returncode == 1
    assert "typo.yaml:6:13: error[SMC030]" in check.stderr
    assert "did you mean 'bash'?" in check.stderr
    assert run_refused(tmp_path, "typo.yaml").returncode == 2
    assert not (tmp_path / "never.db").exists()
    # A type the given action directories do not provide: both refuse it.
    (tmp_path / "calc.yaml").write_text(machine.replace("{type}", "calculate"))
    check = smc("check", "--actions-dir", "acts", "calc.yaml", cwd=tmp_path)
    assert check.returncode == 1
    assert "calc.yaml:6:13: error[SMC030]" in check.stderr
    assert run_refused(tmp_path, "calc.yaml", "--actions-dir", "acts").returncode == 2
    # ... `smc run` also when it finds no action directory at all (its ./actions default).
    assert run_refused(tmp_path, "calc.yaml").returncode == 2
    # With no action directory the checker cannot tell: a warning that says so.
    check = smc("check", "calc.yaml", cwd=tmp_path)
    assert check.returncode == 0
    assert "calc.yaml:6:13: warning[SMC034]" in check.stderr
    # A type the directory provides: accepted by both (run is not started here).
    (tmp_path / "greet.yaml").write_text(machine.replace("{type}", "greet"))
    assert (
        smc("check", "--strict", "--actions-dir", "acts", "greet.yaml", cwd=tmp_path).returncode
        == 0
    )
    assert not (tmp_path / "never.db").exists()
    # Without --actions-dir both read ./actions when it exists: `smc check` knew only what
    # `--actions-dir` named, and warned (SMC034) of a type `smc run` would load.
    (tmp_path / "acts").rename(tmp_path / "actions")
    assert smc("check", "--strict", "greet.yaml", cwd=tmp_path).returncode == 0
    check = smc("check", "calc.yaml", cwd=tmp_path)
    assert check.returncode == 1 and "calc.yaml:6:13: error[SMC030]" in check.stderr


def test_entry_point_action_types_are_known_to_the_check(tmp_path: Path) -> None:
    """The runtime finds user actions in the `smc.actions` entry-point group; so does the
    checker (a real installed distribution: a package and its .dist-info)."""
    site = tmp_path / "site"
    (site / "stampers").mkdir(parents=True)
    (site / "stampers" / "__init__.py").write_text(
        "class Stamper:\n    async def execute(self, context):\n        return 'go'\n"
    )
    info = site / "stampers-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: stampers\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[smc.actions]\nstamp_ep = stampers:Stamper\n")
    (tmp_path / "m.yaml").write_text(GOOD + "actions:\n  a:\n    - type: stamp_ep\n")
    proc = subprocess.run(
        [sys.executable, "-m", "smc", "check", "--strict", "--actions-dir", "site", "m.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": f"{site}:{PROJECT_ROOT}"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


SENDER = """
initial_state: a
metadata: {machine_name: task_worker}
states: [a, {name: b, final: true}]
transitions:
  - {from: a, to: b, event: event_sent}
actions:
  a:
    - {type: send_event, target_machine: task_controller, event_type: done}
"""


def test_a_machine_run_alone_is_not_warned_of_the_peers_it_sends_to(tmp_path: Path) -> None:
    """`smc run` checks the one file it runs: each machine it sends to is "not among the
    checked files" (SMC040), and a correct two-process set-up warned on every start, with
    the worker's own name as the "did you mean" for its controller's."""
    (tmp_path / "worker.yaml").write_text(SENDER)
    check = smc("check", "worker.yaml", cwd=tmp_path)
    assert "warning[SMC040]" in check.stderr
    assert "did you mean" not in check.stderr and "check it together" in check.stderr
    run = subprocess.run(
        [sys.executable, "-m", "smc", "run", "worker.yaml", "--db", str(tmp_path / "w.db")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "SMC_CACHE_DIR": str(tmp_path)},
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "SMC040" not in run.stderr and "reached final state b" in run.stderr
