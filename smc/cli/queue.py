"""``smc jobs``, ``smc send``, ``smc status``: the job queue and event store.

Every command takes ``--db`` (default ``$SMC_DB``, else ``./smc.db``; a ``postgresql://`` URL
works too). List-like commands take ``--format table|json``: tables are aligned plain text for
people, JSON has stable keys (times as epoch seconds) for scripts. A database problem is one
line on stderr (``smc jobs add: error: …``) and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from smc.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    MAX_INT64,
    UsageError,
    add_database_option,
    check_range,
    command_name,
    complete_from,
    name_argument,
    parse_json_argument,
    path_argument,
    report_error,
)

if TYPE_CHECKING:
    from smc.compiler.model import Machine
    from smc.runtime.store import Job, Store

Handler = Callable[[argparse.Namespace], int]


def register(subparsers: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_database_option(common)
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="a table for people or JSON for programs (default: table)",
    )

    jobs = subparsers.add_parser(
        "jobs",
        help="add, list, inspect, retry and cancel jobs",
        description="The job queue in the database (--db, $SMC_DB or ./smc.db): workers "
        "started with smc run claim pending jobs of their type. Exit 0 ok, 1 the database "
        "cannot be used (unreachable, locked, broken) or the job is not found, 2 usage "
        "error, and a --db that is not there (only jobs add makes one).",
    )
    jobs_commands = jobs.add_subparsers(dest="jobs_command", metavar="JOBS_COMMAND")
    jobs_commands.required = True

    add = jobs_commands.add_parser(
        "add",
        parents=[common],
        help="queue a job; prints its id",
        description="Queue a job for the workers of its type; prints the job's id.",
    )
    add.add_argument("--type", required=True, dest="job_type", type=name_argument, help="job type")
    add.add_argument(
        "--data", default=None, help="job data as JSON, @FILE or - for stdin (default {})"
    )
    add.add_argument("--id", default=None, dest="job_id", help="job id (default: generated)")
    add.add_argument("--priority", type=int, default=5, help="lower runs first (default 5)")
    add.add_argument(
        "--machine-type",
        default=None,
        type=name_argument,
        help="only workers of this machine type",
    )
    add.add_argument("--max-attempts", type=int, default=5, help="runs before failing (5)")
    add.add_argument("--dedupe-key", default=None, help="no second pending job with this key")
    add.add_argument(
        "--machine-file",
        default=None,
        metavar="FILE",
        type=path_argument,
        help="check --data against the schema FILE's `jobs:` gives the job type (a mismatch "
        "is a usage error: nothing is queued)",
    )
    add.set_defaults(handler=_guarded(_jobs_add))

    list_parser = jobs_commands.add_parser(
        "list",
        parents=[common, listing],
        help="list jobs, newest first",
        description="List jobs, newest first, optionally only those of one status and type.",
    )
    status = list_parser.add_argument(
        "--status", default=None, help="pending, processing, completed, failed or cancelled"
    )
    complete_from(status, _job_statuses)
    list_parser.add_argument(
        "--type", dest="job_type", default=None, metavar="TYPE", help="only jobs of this type"
    )
    list_parser.add_argument(
        "--limit", type=int, default=100, metavar="N", help="at most N jobs (default 100)"
    )
    list_parser.set_defaults(handler=_guarded(_jobs_list))

    show = jobs_commands.add_parser(
        "show",
        parents=[common, listing],
        help="show one job",
        description="Show one job: status, attempts, data, result and last error.",
    )
    show.add_argument("job_id", metavar="ID", help="the job's id (as jobs add printed it)")
    show.set_defaults(handler=_guarded(_jobs_show))

    retry = jobs_commands.add_parser(
        "retry",
        parents=[common],
        help="put a failed or cancelled job back in the queue",
        description="Put a failed or cancelled job back in the queue as pending.",
    )
    retry.add_argument("job_id", metavar="ID", help="the job's id")
    retry.set_defaults(handler=_guarded(_jobs_retry))

    cancel = jobs_commands.add_parser(
        "cancel",
        parents=[common],
        help="cancel a pending job",
        description="Cancel a pending job so that no worker claims it.",
    )
    cancel.add_argument("job_id", metavar="ID", help="the job's id")
    cancel.set_defaults(handler=_guarded(_jobs_cancel))

    send = subparsers.add_parser(
        "send",
        parents=[common],
        help="send an event to a machine (stored until it runs); prints the event id",
        description="Send EVENT to the machine named MACHINE: the event is stored in the "
        "database and delivered when the machine is idle, at once if it is running, else "
        "when it next runs. Prints the event's id. Exit 0 ok, 1 the database cannot be "
        "used, 2 usage error.",
    )
    send.add_argument(
        "machine", metavar="MACHINE", type=name_argument, help="the receiving machine's name"
    )
    send.add_argument("event", metavar="EVENT", type=name_argument, help="the event's name")
    send.add_argument("--payload", default=None, help="event payload as JSON, @FILE or - for stdin")
    send.add_argument("--source", default=None, help="sender name recorded with the event")
    send.add_argument(
        "--machine-file",
        default=None,
        metavar="FILE",
        type=path_argument,
        help="check --payload against the schema the machine file FILE gives EVENT (a "
        "mismatch is a usage error: nothing is sent); without it the receiving worker checks",
    )
    send.set_defaults(handler=_guarded(_send))

    status = subparsers.add_parser(
        "status",
        parents=[common, listing],
        help="machines and queue counts",
        description="Every machine known to the database (running, stopped or dead, with "
        "its state), the number of jobs in each status and the number of events in each "
        "status (dead: dead-lettered, never delivered).",
    )
    status.set_defaults(handler=_guarded(_status))


def _guarded(handler: Handler) -> Handler:
    """Report a StoreError as one line and exit 1, never as a traceback."""

    def run(args: argparse.Namespace) -> int:
        from smc.runtime.store import StoreError

        try:
            return handler(args)
        except StoreError as error:
            report_error(args, str(error))
            return EXIT_PROBLEMS

    return run


def _open(args: argparse.Namespace, *, create: bool = False) -> Store:
    """The store ``--db`` names. Only adding a job or sending an event makes a new database
    (``create``): a mistyped ``--db`` once made an empty file there and `smc status` said
    "no machines registered"."""
    from smc.runtime.store import NoDatabaseError, open_store

    try:
        return open_store(args.db, create=create)
    except NoDatabaseError as error:
        raise UsageError(f"--db: {error} (smc {command_name(args)} makes none)") from None


# --- formatting ---


def _format_time(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _format_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    from smc.safe_text import escape_controls

    # Cells hold untrusted text (job ids, types, errors, machine names): one line each, inert.
    rows = [[escape_controls(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    return "\n".join(line(row).rstrip() for row in [headers, *rows])


def _one_line(text: str | None, width: int = 60) -> str:
    if not text:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


# --- commands ---


def _machine_file(path: str) -> Machine:
    """The checked model of the machine file ``path`` (``--machine-file``); a file that does
    not pass ``smc check`` is a usage error naming its first error."""
    from smc.compiler.check import check_files

    if os.path.isdir(path):
        raise UsageError(f"--machine-file {path} is a directory: give one machine file")
    if not os.path.isfile(path):
        raise UsageError(f"--machine-file {path}: no such file")
    result = check_files([path])
    if result.errors:
        first = result.errors[0]
        raise UsageError(
            f"--machine-file {path}:{first.line}:{first.col}: {first.message} "
            f"({len(result.errors)} error(s); run smc check {path})"
        )
    (machine,) = result.machines
    return machine


def _check_data(value: Any, schema: Any, option: str, what: str, root: str) -> None:
    """A usage error when ``value`` does not match ``schema``."""
    from smc.runtime.validation import schema_error

    problem = schema_error(schema, {} if value is None else value, root)
    if problem is not None:
        raise UsageError(f"{option} does not match the schema of {what}: {problem}")


def _jobs_add(args: argparse.Namespace) -> int:
    from smc.runtime.store import DuplicateJobError, check_job_id, not_an_object

    data = parse_json_argument(args.data, "--data")
    problem = not_an_object(data)
    if problem is not None:
        raise UsageError(
            f"--data {problem}; a job's data is an object of named values, "
            """e.g. '{"message": "hello"}'"""
        )
    if args.machine_file is not None:
        machine = _machine_file(args.machine_file)
        schema = next((job.data_schema for job in machine.jobs if job.name == args.job_type), None)
        if schema is None:
            print(
                f"smc jobs add: note: {args.machine_file} declares no data schema for job type "
                f"{args.job_type!r}: --data not checked",
                file=sys.stderr,
            )
        else:
            _check_data(data, schema, "--data", f"job type {args.job_type!r}", "job data")
    check_range(args.priority, "--priority", -(2**31), 2**31 - 1)
    check_range(args.max_attempts, "--max-attempts", 1, 2**31 - 1)

    if args.job_id is not None:
        try:
            check_job_id(args.job_id)
        except ValueError as error:
            raise UsageError(f"--id: {error}; leave it out for a generated id") from None

    # Chosen here so a dedupe hit (another job returned) can be told apart from our new job.
    new_id = args.job_id if args.job_id is not None else uuid.uuid4().hex
    with _open(args, create=True) as store:
        try:
            job = store.add_job(
                args.job_type,
                data=data,
                job_id=new_id,
                priority=args.priority,
                machine_type=args.machine_type,
                max_attempts=args.max_attempts,
                dedupe_key=args.dedupe_key,
            )
        except DuplicateJobError as error:
            report_error(args, str(error))
            return EXIT_PROBLEMS
    if job.id != new_id:
        print(
            f"smc jobs add: note: dedupe key {args.dedupe_key!r} is held by {job.status} job "
            f"{job.id!r}; no new job added",
            file=sys.stderr,
        )
    print(job.id)
    return EXIT_OK


def _job_statuses() -> tuple[str, ...]:
    from smc.runtime.store.base import JOB_STATUSES

    return JOB_STATUSES


def _jobs_list(args: argparse.Namespace) -> int:
    # Validated here, not with argparse choices, so that `smc --help` and every other command
    # start without importing the store.
    from smc.runtime.store.base import JOB_STATUSES

    if args.status is not None and args.status not in JOB_STATUSES:
        raise UsageError(f"--status must be one of: {', '.join(JOB_STATUSES)}")
    check_range(args.limit, "--limit", 1, MAX_INT64)
    with _open(args) as store:
        jobs = store.list_jobs(status=args.status, limit=args.limit, job_type=args.job_type)
    if args.format == "json":
        _print_json([job.to_dict() for job in jobs])
        return EXIT_OK
    rows = [
        [
            job.id,
            job.job_type,
            job.status,
            str(job.priority),
            f"{job.attempts}/{job.max_attempts}",
            job.machine_type or "-",
            _format_time(job.created_at),
            _one_line(job.last_error, 40),
        ]
        for job in jobs
    ]
    headers = ["ID", "TYPE", "STATUS", "PRIORITY", "ATTEMPTS", "MACHINE_TYPE", "CREATED", "ERROR"]
    print(_table(headers, rows))
    return EXIT_OK


def _find_job(args: argparse.Namespace, store: Store) -> Job | None:
    job = store.get_job(args.job_id)
    if job is None:
        report_error(args, f"no job with id {args.job_id!r} in {store.location}")
    return job


#: A job's story that ``smc jobs show`` prints at most: its first and last half when longer.
STORY_ROWS = 10_000


def _jobs_show(args: argparse.Namespace) -> int:
    from smc.runtime.history import history_ends

    with _open(args) as store:
        job = _find_job(args, store)
        # The job's whole story: added, each claim, the transitions it drove, its outcome;
        # a story too long to print is its start and its end.
        if job is None:
            return EXIT_PROBLEMS
        story, cut = history_ends(store.history, STORY_ROWS, job_id=job.id)
    from smc.runtime.history import history_table
    from smc.safe_text import escape_controls

    if cut:
        print(
            f"smc jobs show: note: the job's story is longer than {STORY_ROWS} rows: its "
            f"first and last {STORY_ROWS // 2} are shown (smc history --job ID --after-id N "
            "for the rest)",
            file=sys.stderr,
        )
    fields = job.to_dict()
    if args.format == "json":
        _print_json({**fields, "history": [row.to_dict() for row in story], "history_cut": cut})
        return EXIT_OK
    times = {"run_after", "lease_expires_at", "created_at", "started_at", "finished_at"}
    width = max(len(key) for key in fields)
    for key, value in fields.items():
        if key in times:
            shown = _format_time(value)
        elif key in ("data", "result") and value is not None:
            shown = value if isinstance(value, str) else json.dumps(value)
        else:
            shown = "-" if value is None else str(value)
        print(f"{key.ljust(width)}  {escape_controls(shown)}")
    if story:
        print()
        lines = history_table(story).splitlines()
        if cut:
            lines.insert(1 + STORY_ROWS // 2, "…")  # after the header and the first half
        print("\n".join(lines))
    return EXIT_OK


def _jobs_retry(args: argparse.Namespace) -> int:
    from smc.safe_text import escape_controls

    with _open(args) as store:
        job = _find_job(args, store)
        if job is None:
            return EXIT_PROBLEMS
        if not store.retry_job(job.id):
            report_error(
                args, f"job {job.id!r} is {job.status}; only failed or cancelled jobs retry"
            )
            return EXIT_PROBLEMS
    print(f"job {escape_controls(job.id)} is pending again")
    return EXIT_OK


def _jobs_cancel(args: argparse.Namespace) -> int:
    from smc.safe_text import escape_controls

    with _open(args) as store:
        job = _find_job(args, store)
        if job is None:
            return EXIT_PROBLEMS
        if not store.cancel_job(job.id):
            current = store.get_job(job.id)
            status = current.status if current is not None else job.status
            report_error(args, f"job {job.id!r} is {status}; only pending jobs can be cancelled")
            return EXIT_PROBLEMS
    print(f"job {escape_controls(job.id)} cancelled")
    return EXIT_OK


def _send(args: argparse.Namespace) -> int:
    payload = parse_json_argument(args.payload, "--payload")
    if args.machine_file is not None:
        machine = _machine_file(args.machine_file)
        event = next((e for e in machine.events if e.name == args.event), None)
        if event is None:
            raise UsageError(
                f"machine {machine.name!r} ({args.machine_file}) has no event {args.event!r}"
            )
        if event.payload_schema is not None:
            _check_data(
                payload, event.payload_schema, "--payload", f"event {event.name!r}", "payload"
            )
    with _open(args, create=True) as store:
        event_id = store.send_event(args.machine, args.event, payload, source=args.source)
        known = any(machine.name == args.machine for machine in store.list_machines())
    print(event_id)
    if not known:
        from smc.safe_text import escape_controls

        # Not an error: the machine may start later and take it. But a misspelt name would
        # otherwise wait for ever with nothing said.
        print(
            f"smc send: note: no machine named '{escape_controls(args.machine)}' has run with "
            "this database; the event waits until one does (`smc status` lists the machines)",
            file=sys.stderr,
        )
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    with _open(args) as store:
        machines = store.list_machines()
        counts = store.queue_counts()
        event_counts = store.event_counts()
    if args.format == "json":
        _print_json(
            {
                "machines": [machine.to_dict() for machine in machines],
                "jobs": counts,
                "events": event_counts,
            }
        )
        return EXIT_OK
    if machines:
        rows = [
            [
                machine.name,
                machine.state or "-",
                machine.status,
                "-" if machine.pid is None else str(machine.pid),
                machine.host or "-",
                _format_age(machine.heartbeat_age),
            ]
            for machine in machines
        ]
        print(_table(["MACHINE", "STATE", "STATUS", "PID", "HOST", "HEARTBEAT"], rows))
    else:
        print("no machines registered")
    print()
    print(_table(["JOBS", "COUNT"], [[status, str(count)] for status, count in counts.items()]))
    print()
    print(
        _table(
            ["EVENTS", "COUNT"], [[status, str(count)] for status, count in event_counts.items()]
        )
    )
    return EXIT_OK
