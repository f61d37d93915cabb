"""The worker machines several test modules run, one canonical copy of each (no tests here).

Each is a machine file beside this module; these functions return its text with the name (and
for :func:`queue_worker` the command, the queue's wait and extra transitions) a test needs. A
test whose worker differs on purpose keeps its own machine text and says why next to it.
:data:`PLAYER` is a statechart file used as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

MACHINES = Path(__file__).resolve().parent
#: A statechart with every construct (nested, parallel, shallow and deep history, on_exit,
#: eventless, internal and multi-target transitions, raise, a wildcard): the tests of
#: ``smc.testing`` and ``smc paths`` over configurations.
PLAYER = MACHINES / "player.yaml"


def _load(file_name: str, machine_name: str) -> dict[str, Any]:
    machine: dict[str, Any] = yaml.safe_load((MACHINES / file_name).read_text(encoding="utf-8"))
    machine["metadata"]["machine_name"] = machine_name
    return machine


def _dump(machine: dict[str, Any]) -> str:
    return yaml.safe_dump(machine, sort_keys=False, allow_unicode=True, width=1000)


def queue_worker(
    name: str,
    command: str | None = None,
    *,
    wait: float | None = None,
    transitions: Iterable[tuple[str, str, str]] = (),
) -> str:
    """queue_worker.yaml named ``name``: takes any job, runs ``command`` (a shell command,
    placeholders and all; default ``echo {job_id} >> done.log``) for it. ``wait``: how long
    check_database_queue waits for a job before ``no_jobs`` (its own default otherwise).
    ``transitions``: more ``(from, to, event)`` triples, after the worker's own."""
    machine = _load("queue_worker.yaml", name)
    if command is not None:
        machine["actions"]["working"][0]["command"] = command
    if wait is not None:
        machine["actions"]["waiting"][0]["wait"] = wait
    machine["transitions"] += [{"from": f, "to": t, "event": e} for f, t, e in transitions]
    return _dump(machine)


def instant_worker(name: str) -> str:
    """instant_worker.yaml named ``name``: a simple_worker on ``task`` jobs whose job takes no
    time (no process spawned)."""
    return _dump(_load("instant_worker.yaml", name))


def one_command(name: str, command: str, *, cwd: str | None = None) -> str:
    """one_command.yaml named ``name``: runs the bash ``command`` (in ``cwd``, when given)
    once and ends in ``ok`` or, when it fails, ``failed``."""
    machine = _load("one_command.yaml", name)
    action = machine["actions"]["run"][0]
    action["command"] = command
    if cwd is not None:
        action["cwd"] = cwd
    return _dump(machine)
