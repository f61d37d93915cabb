"""A workflow as the scheduler runs it: frozen data, read from a workflow file's checked data
(``smc.compiler.workflows`` checks the file first) or from the JSON a run keeps in the store.

The store keeps each run's definition (:meth:`Workflow.to_data`), so a resumed run goes on
with the workflow it started with even when the file has changed since.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FailurePolicy = Literal["skip_dependents", "fail_fast", "continue"]
FAILURE_POLICIES: tuple[FailurePolicy, ...] = ("skip_dependents", "fail_fast", "continue")

_DURATION = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>ms|s|m|h)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from a number or ``"500ms"``, ``"2s"``, ``"10m"``, ``"1h"``; ``ValueError``
    for anything else (the schema refuses those first)."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match["number"]) * _UNIT_SECONDS[match["unit"]]
    else:
        raise ValueError(f"not a duration: {value!r}")
    if seconds <= 0:
        raise ValueError(f"not a positive duration: {value!r}")
    return seconds


@dataclass(frozen=True)
class Retry:
    """Attempts in all (the first included) and the waits between them: ``backoff`` before
    the second attempt, doubled before each later one, at most ``max_backoff``."""

    max_attempts: int = 1
    backoff: float = 1.0
    max_backoff: float = 3600.0

    def delay(self, failed_attempt: int) -> float:
        """The wait after attempt ``failed_attempt`` (1-based) failed."""
        return float(min(self.max_backoff, self.backoff * 2 ** (failed_attempt - 1)))


@dataclass(frozen=True)
class Task:
    name: str
    job_type: str
    needs: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)
    machine_type: str | None = None
    priority: int = 5
    retry: Retry = Retry()
    #: Seconds one attempt may run once claimed; None: no limit.
    timeout: float | None = None
    checkpoint: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Workflow:
    name: str
    #: In file order: the order that breaks ties.
    tasks: tuple[Task, ...]
    on_failure: FailurePolicy = "skip_dependents"
    checkpoint_repository: str | None = None
    description: str = ""
    path: str = ""
    #: name -> task (the scheduler looks tasks up on every step).
    _by_name: Mapping[str, Task] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {task.name: task for task in self.tasks})

    def task(self, name: str) -> Task:
        return self._by_name[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(task.name for task in self.tasks)

    @classmethod
    def from_data(cls, data: Mapping[str, Any], path: str = "") -> Workflow:
        """The workflow of schema-valid data (a checked file, or :meth:`to_data`'s output)."""
        tasks = []
        for name, spec in data["tasks"].items():
            retry = spec.get("retry") or {}
            timeout = spec.get("timeout")
            tasks.append(
                Task(
                    name=name,
                    job_type=spec["job_type"],
                    needs=tuple(spec.get("needs") or ()),
                    data=dict(spec.get("data") or {}),
                    machine_type=spec.get("machine_type"),
                    priority=int(spec.get("priority", 5)),
                    retry=Retry(
                        max_attempts=int(retry.get("max_attempts", 1)),
                        backoff=parse_duration(retry.get("backoff", 1.0)),
                        max_backoff=parse_duration(retry.get("max_backoff", 3600.0)),
                    ),
                    timeout=None if timeout is None else parse_duration(timeout),
                    checkpoint=spec.get("checkpoint"),
                    description=spec.get("description", ""),
                )
            )
        policy = data.get("on_failure", "skip_dependents")
        if policy not in FAILURE_POLICIES:
            raise ValueError(f"unknown on_failure policy {policy!r}")
        return cls(
            name=data["workflow"],
            tasks=tuple(tasks),
            on_failure=policy,
            checkpoint_repository=data.get("checkpoint_repository"),
            description=data.get("description", ""),
            path=path,
        )

    def to_data(self) -> dict[str, Any]:
        """Schema-valid data that :meth:`from_data` reads back as this workflow (durations in
        seconds): what a run stores."""
        tasks: dict[str, Any] = {}
        for task in self.tasks:
            spec: dict[str, Any] = {"job_type": task.job_type}
            if task.needs:
                spec["needs"] = list(task.needs)
            if task.data:
                spec["data"] = dict(task.data)
            if task.machine_type is not None:
                spec["machine_type"] = task.machine_type
            spec["priority"] = task.priority
            spec["retry"] = {
                "max_attempts": task.retry.max_attempts,
                "backoff": task.retry.backoff,
                "max_backoff": task.retry.max_backoff,
            }
            if task.timeout is not None:
                spec["timeout"] = task.timeout
            if task.checkpoint is not None:
                spec["checkpoint"] = task.checkpoint
            if task.description:
                spec["description"] = task.description
            tasks[task.name] = spec
        data: dict[str, Any] = {
            "workflow": self.name,
            "on_failure": self.on_failure,
            "tasks": tasks,
        }
        if self.checkpoint_repository is not None:
            data["checkpoint_repository"] = self.checkpoint_repository
        if self.description:
            data["description"] = self.description
        return data
