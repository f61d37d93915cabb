"""Every built-in action, run by the real engine against a real SQLite store."""

from __future__ import annotations

from pathlib import Path

from smc.runtime.store import open_store
from tests.support.harness import compile_machine, run_engine

MACHINE = """
initial_state: start
metadata: {machine_name: actions_demo}
transitions:
  - {from: start, to: lists, event: go}
  - {from: lists, to: shell, event: popped}
  - {from: shell, to: mapped, event: failed_as_expected}
  - {from: mapped, to: timed, event: exit_three}
  - {from: timed, to: queue, event: timed_out}
  - {from: queue, to: work, event: new_job}
  - {from: work, to: pending, event: success}
  - {from: pending, to: claim, event: jobs_found}
  - {from: claim, to: held, event: claimed}
  - {from: held, to: done, event: all_jobs_complete}
actions:
  start:
    - {type: set_context, key: greeting, value: hello}
    - {type: log, message: "{greeting} from {machine_name}", level: success}
    - {type: activity_log, message: "activity {greeting}"}
    - {type: sleep, duration: 0.01}
    - {type: set_context, key: nums, value: [1]}
    - {type: add_to_list, list_key: nums, value: "{count}"}
    - {type: set_context, key: unused, value: x, success: go}
  lists:
    - {type: pop_from_list, list_key: nums, store_as: first, success: popped}
  shell:
    - {type: bash, command: "echo out; echo err >&2; exit 1", error: failed_as_expected}
  mapped:
    - {type: bash, command: "exit 3", error_mappings: {"3": exit_three}}
  timed:
    - {type: bash, command: "sleep 5", timeout: 0.2, error: timed_out}
  queue:
    - {type: check_database_queue, job_type: t1, wait: 2}
  work:
    - type: send_event
      target_machine: other
      event_type: hello
      payload: {job: "{id}", value: "{value}", missing: "{nope}", text: "v={value}"}
    - {type: complete_job, result: {ok: true}}
  pending:
    - {type: get_pending_jobs, job_type: t2, store_as: pend}
  claim:
    - {type: pop_from_list, list_key: pend, store_as: picked}
    - {type: claim_job, job_id: "{picked.job_id}"}
  held:
    - {type: fail_job, job_id: "{picked.job_id}", reason: given up}
    - {type: set_context, key: tracked, value: ["{picked.job_id}"]}
    - {type: wait_for_jobs, tracked_jobs_key: tracked}
  done:
    - {type: log, message: finished}
"""


def test_builtin_actions_against_a_real_store(tmp_path: Path) -> None:
    database = tmp_path / "smc.db"
    with open_store(database) as store:
        first = store.add_job("t1", {"value": 7}, job_id="one")
        second = store.add_job("t2", {"n": 2}, job_id="two")
    machine = compile_machine(MACHINE, tmp_path)
    engine = run_engine(machine, database, initial_context={"count": 3})
    context = engine.context

    # set_context / add_to_list (a single placeholder keeps its type) / pop_from_list
    assert context["greeting"] == "hello"
    assert context["first"] == 1 and context["nums"] == [3]
    # bash: error event, exit-code mapping, timeout, failure details in the context
    assert context["last_error_action"] == "bash"
    assert "timed out" in context["last_error"]
    with open_store(database) as store:
        # check_database_queue claimed `one`; complete_job stored the result
        done = store.get_job(first.id)
        assert done is not None and done.status == "completed" and done.result == {"ok": True}
        # send_event: payload interpolated, an unresolved lone placeholder becomes None
        (event,) = store.list_events(target="other")
        assert event.event_type == "hello" and event.source == "actions_demo"
        assert event.payload == {"job": "one", "value": 7, "missing": None, "text": "v=7"}
        assert event.job_id == "one"
        # get_pending_jobs + claim_job + fail_job
        failed = store.get_job(second.id)
        assert failed is not None and failed.status == "failed"
        assert failed.last_error == "given up"
        machine_row = store.get_machine("actions_demo")
        assert machine_row is not None and machine_row.status == "stopped"
        assert machine_row.state == "done"
    # wait_for_jobs sorted the tracked job
    assert context["failed_jobs"] == ["two"] and context["completed_jobs"] == []
    assert context["pending_jobs"] == []
    assert context["current_state"] == "done"
