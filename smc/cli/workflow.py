"""``smc workflow run|status|cancel|diagram``: workflows on the job queue (docs/workflows.md).

``run`` checks the file (the compiler's workflow checks), then runs or resumes the run in
this process until it is finished: the tasks are jobs that ordinary ``smc run`` workers
execute. Exit codes: 0 the run completed; 1 it failed or was cancelled, the file has errors,
or the database cannot be used; 2 usage; 3 a bug in smc; 4 another scheduler holds the run.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smc.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    UsageError,
    add_database_option,
    path_argument,
    report_error,
    require_file,
)

if TYPE_CHECKING:
    from smc.runtime.store import Store

#: A run id given on the command line: a ULID or a name of the same characters, never a path.
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
#: Exit code: another scheduler, alive, holds the run (3 is an internal error, as everywhere).
EXIT_HELD = 4


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_database_option(common)
    workflow = subparsers.add_parser(
        "workflow",
        help="run, inspect, cancel and draw workflows (DAGs of tasks run as jobs)",
        description="Workflows: DAGs of tasks, each run as a job of its job_type by smc run "
        "workers, with retries, timeouts, a failure policy, checkpoints and a ledger.",
    )
    commands = workflow.add_subparsers(dest="workflow_command", metavar="WORKFLOW_COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run a workflow file, or resume a run (--run-id)",
        description="Check FILE, then run it until every task is finished. With --run-id of "
        "a run that exists, resume it (with the definition it started with). Exit 0 "
        "completed, 1 failed/cancelled or errors, 4 another scheduler holds the run.",
    )
    run.add_argument("file", metavar="FILE", type=path_argument, help="the workflow file")
    run.add_argument("--run-id", help="the run's id (default: a new ULID)")
    run.add_argument(
        "--runs-dir",
        default=".runs",
        metavar="DIR",
        type=path_argument,
        help="where run directories go (default: .runs)",
    )
    run.add_argument(
        "--checkpoint-repo",
        metavar="DIR",
        type=path_argument,
        help="the Git repository of checkpoint commits (default: the file's "
        "checkpoint_repository)",
    )
    run.add_argument(
        "--otel",
        action="store_true",
        help="emit OpenTelemetry spans (needs the otel extra); with $SMC_OTEL_FILE set and "
        "the SDK installed, they are written there as JSON lines",
    )
    run.add_argument("--poll-interval", type=float, default=0.02, help=argparse.SUPPRESS)
    run.set_defaults(handler=_guarded(_run))

    status = commands.add_parser(
        "status",
        parents=[common],
        help="a run's status and each task's state",
        description="A run's status and its tasks' states, attempts and jobs. With "
        "--history, its history too: the scheduler's moves of its tasks and the workers' "
        "rows for its jobs, in the order recorded. --format jsonl prints the run's ledger: "
        "one JSON object per task transition.",
    )
    status.add_argument("run_id", metavar="RUN", nargs="?", help="a run id (default: list runs)")
    status.add_argument(
        "--history",
        action="store_true",
        help="also the run's history (every row of its trace; in JSON, a history array)",
    )
    status.add_argument(
        "--format",
        choices=("table", "json", "jsonl"),
        default="table",
        help="a table for people, JSON for programs, or the run's ledger as JSON lines "
        "(default: table)",
    )
    status.set_defaults(handler=_guarded(_status))

    cancel = commands.add_parser(
        "cancel",
        parents=[common],
        help="ask a run's scheduler to cancel it",
        description="Mark the run to be cancelled: its scheduler cancels every unfinished "
        "task (queued jobs are cancelled; a job a worker holds runs out) and stops.",
    )
    cancel.add_argument("run_id", metavar="RUN", help="the run's id")
    cancel.set_defaults(handler=_guarded(_cancel))

    diagram = commands.add_parser(
        "diagram",
        parents=[common],
        help="draw a workflow as a Mermaid or DOT flowchart",
        description="Print FILE's tasks as a flowchart, grouped in waves; with --run-id, "
        "each task's state in that run.",
    )
    diagram.add_argument("file", metavar="FILE", type=path_argument, help="the workflow file")
    diagram.add_argument(
        "--format", choices=("mermaid", "dot"), default="mermaid", help="(default: mermaid)"
    )
    diagram.add_argument("--run-id", help="show each task's state in this run")
    diagram.set_defaults(handler=_guarded(_diagram))


def _guarded(handler: Any) -> Any:
    def run(args: argparse.Namespace) -> int:
        from smc.runtime.store import StoreError

        try:
            result: int = handler(args)
            return result
        except StoreError as error:
            report_error(args, str(error))
            return EXIT_PROBLEMS

    return run


def _open(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The store ``--db`` names. Only ``run`` makes a new database (``create``): status,
    cancel and diagram on a mistyped ``--db`` would make an empty one and report nothing."""
    from smc.runtime.store import NoDatabaseError, open_store

    try:
        return open_store(args.db, create=create)
    except NoDatabaseError as error:
        raise UsageError(
            f"--db: {error} (smc workflow {args.workflow_command} makes none)"
        ) from None


def _checked(path: str, command: str) -> Any:
    """The workflow of ``path``, or diagnostics printed and None."""
    from smc.cli.compile import print_diagnostics
    from smc.compiler.check import InputError, check_paths

    require_file(path, f"smc workflow {command} takes one workflow file (WORKFLOW.yaml)")
    try:
        result = check_paths([path])
    except InputError as error:
        raise UsageError(str(error)) from None
    if result.diagnostics:
        print_diagnostics(result, "text")
    if result.errors:
        return None
    if not result.workflows:
        raise UsageError(f"{path} is not a workflow file (no top-level `workflow:` key)")
    return result.workflows[0]


def _run(args: argparse.Namespace) -> int:
    import ulid

    from smc.runtime.checkpoints import CheckpointError
    from smc.workflow.scheduler import RunHeld, RunLost, Scheduler, start_run
    from smc.workflow.tracing import make_tracer

    if args.run_id is not None and not _RUN_ID.match(args.run_id):
        raise UsageError(f"--run-id {args.run_id!r}: letters, digits, '_' and '-' only")
    if args.otel:
        from smc.workflow.tracing import otel_available

        if not otel_available():
            raise UsageError(
                "--otel: OpenTelemetry is not installed (pip install 'smc-compiler[otel]')"
            )
    workflow = _checked(args.file, args.workflow_command)
    if workflow is None:
        return EXIT_PROBLEMS
    run_id = args.run_id or str(ulid.ULID())
    if args.checkpoint_repo is not None:
        _require_repository(args.checkpoint_repo, "--checkpoint-repo")
    elif workflow.checkpoint_repository is not None:
        _require_repository(workflow.checkpoint_repository, f"{args.file}: checkpoint_repository")
    with _open(args, create=True) as store:
        given = workflow
        workflow, trace_id = start_run(store, workflow, run_id, str(ulid.ULID()))
        if workflow.to_data() != given.to_data():
            print(
                f"run {run_id} exists: resuming it with the definition it started with, "
                f"not {args.file}'s",
                file=sys.stderr,
            )
        repository = args.checkpoint_repo or workflow.checkpoint_repository
        provider = None
        if args.otel:
            from smc.runtime.tracing import configure_from_environment

            provider = configure_from_environment()
        tracer = make_tracer(
            args.otel, workflow.name, run_id, int(ulid.ULID.from_str(trace_id)), provider
        )
        print(f"run {run_id} (trace {trace_id})", file=sys.stderr, flush=True)
        # SIGTERM as Ctrl-C: the scheduler lets go of the run on its way out (any scheduler
        # may take it at once), instead of leaving it to be found dead.
        signal.signal(signal.SIGTERM, _interrupt)
        scheduler = Scheduler(
            store,
            workflow,
            run_id,
            trace_id,
            runs_dir=Path(args.runs_dir),
            checkpoint_repository=None if repository is None else Path(repository),
            tracer=tracer,
            poll_interval=args.poll_interval,
        )
        try:
            outcome = scheduler.run()
        except RunHeld as error:
            report_error(args, str(error))
            return EXIT_HELD
        except (RunLost, CheckpointError) as error:
            # The run stays in the store as it is: the same command resumes it.
            report_error(args, f"{error} (resume with --run-id {run_id})")
            return EXIT_PROBLEMS
        finally:
            if provider is not None:
                provider.shutdown()
    for task, state in outcome.states.items():
        print(f"{task}: {state}")
    print(f"run {run_id}: {outcome.status}", file=sys.stderr)
    return EXIT_OK if outcome.status == "completed" else EXIT_PROBLEMS


def _require_repository(repository: str, given_as: str) -> None:
    """A checkpoint repository that is no Git work tree is a usage error before the run is
    made: git said so only when the first checkpoint was due, after the tasks before it had
    run, and the scheduler stopped there with the run unfinished."""
    import subprocess

    if not Path(repository).is_dir():
        what = "is not a directory" if Path(repository).exists() else "no such directory"
        raise UsageError(f"{given_as} {repository}: {what}")
    try:
        probe = subprocess.run(
            ["git", "-C", repository, "rev-parse", "--is-inside-work-tree"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as error:
        raise UsageError(f"{given_as}: cannot run git: {error.strerror}") from None
    if probe.returncode != 0 or probe.stdout.strip() != "true":
        raise UsageError(
            f"{given_as} {repository} is not a Git working tree (git init it, or name one)"
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _status(args: argparse.Namespace) -> int:
    from smc.runtime.history import history_table
    from smc.safe_text import escape_controls
    from smc.workflow.ledger import ledger_entries, run_history

    if args.run_id is None and (args.history or args.format == "jsonl"):
        raise UsageError("--history and --format jsonl need a RUN")
    with _open(args) as store:
        if args.run_id is None:
            runs = store.list_workflow_runs()
            if args.format == "json":
                print(json.dumps([_run_json(r) for r in runs], indent=2))
            else:
                for row in runs:
                    print(f"{row.run_id}  {row.workflow}  {row.status}")
            return EXIT_OK
        run = store.get_workflow_run(args.run_id)
        if run is None:
            report_error(args, f"no run {args.run_id!r}")
            return EXIT_PROBLEMS
        tasks = store.list_workflow_tasks(args.run_id)
        history = run_history(store, run) if args.history or args.format == "jsonl" else []
    if args.format == "jsonl":
        for entry in ledger_entries(history, run):
            print(json.dumps(entry))
        return EXIT_OK
    if args.format == "json":
        data = _run_json(run)
        data["tasks"] = [
            {
                "task": t.task,
                "state": t.state,
                "attempt": t.attempt,
                "job_id": t.job_id,
                "last_error": t.last_error,
            }
            for t in tasks
        ]
        if args.history:
            data["history"] = [row.to_dict() for row in history]
        print(json.dumps(data, indent=2))
        return EXIT_OK
    cancel = " (cancel requested)" if run.cancel_requested and run.status == "running" else ""
    print(f"run {run.run_id} of {run.workflow}: {run.status}{cancel}  trace {run.trace_id}")
    width = max((len(t.task) for t in tasks), default=4)
    for t in tasks:
        # The error is a worker's text (untrusted): no control character reaches the terminal.
        error = f"  {escape_controls(t.last_error)}" if t.last_error else ""
        print(f"  {t.task:<{width}}  {t.state:<9}  attempt {t.attempt}{error}")
    if history:
        print()
        print(history_table(history))
    return EXIT_OK


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "status": run.status,
        "trace_id": run.trace_id,
        "cancel_requested": run.cancel_requested,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }


def _cancel(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if store.cancel_workflow_run(args.run_id):
            print(f"run {args.run_id}: cancel requested")
            return EXIT_OK
        run = store.get_workflow_run(args.run_id)
    what = "no such run" if run is None else f"the run is {run.status}"
    report_error(args, f"cannot cancel {args.run_id!r}: {what}")
    return EXIT_PROBLEMS


def _diagram(args: argparse.Namespace) -> int:
    from smc.workflow.diagram import dot, mermaid

    workflow = _checked(args.file, args.workflow_command)
    if workflow is None:
        return EXIT_PROBLEMS
    states: dict[str, str] = {}
    if args.run_id is not None:
        with _open(args) as store:
            if store.get_workflow_run(args.run_id) is None:
                report_error(args, f"no run {args.run_id!r}")
                return EXIT_PROBLEMS
            states = {t.task: t.state for t in store.list_workflow_tasks(args.run_id)}
    print(mermaid(workflow, states) if args.format == "mermaid" else dot(workflow, states))
    return EXIT_OK
