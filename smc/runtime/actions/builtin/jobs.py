"""Built-in actions on the job queue: ``check_database_queue``, ``get_pending_jobs``,
``claim_job``, ``complete_job``, ``fail_job``, ``wait_for_jobs``."""

from __future__ import annotations

import time
from typing import Any

from smc.catalog import default_event
from smc.runtime.actions.base import BaseAction
from smc.runtime.actions.builtin.params import flag_param, number_param, whole_number_param
from smc.runtime.context import PLACEHOLDER, job_to_dict, to_text
from smc.runtime.store import StoreError

DEFAULT_QUEUE_WAIT = 5.0
DEFAULT_POLL_INTERVAL = 1.0


def _job_types(value: Any) -> list[str] | None:
    if value is None or value == "" or value == "*":
        return None
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return [str(value)]


class CheckDatabaseQueueAction(BaseAction):
    """``check_database_queue``: claim the next job (``job_type``, ``machine_type``) and return
    ``new_job``; with none, wait up to ``wait`` seconds (5) for one — woken at once when a job
    is added, polling every ``poll_interval`` (1 s) as a fallback — then return ``no_jobs``.

    It first finishes the machine's previous job (docs/runtime.md, "Job completion"). An
    inbound event with a transition, an expired timer or a stop request ends the wait early
    (the action returns None and the engine handles it). A job whose data does not match the
    machine's schema of its type (``jobs:``) is failed at once, never run, and the next one
    claimed.
    """

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        job_types = _job_types(self.params.get("job_type"))
        machine_type = self.params.get("machine_type") or None
        wait = max(number_param(self.params.get("wait"), DEFAULT_QUEUE_WAIT, "wait"), 0.0)
        poll = number_param(
            self.params.get("poll_interval"), DEFAULT_POLL_INTERVAL, "poll_interval"
        )
        poll = max(poll, 0.01)
        runtime.ensure_jobs_waker()
        deadline = time.monotonic() + wait
        while True:
            # The previous job is finished first; if the database refuses, no new job is
            # claimed until it accepts (nothing is lost, nothing runs twice meanwhile).
            job = None
            if await runtime.finish_current_job():
                try:
                    job = runtime.store.claim_job(
                        runtime.machine_name,
                        job_types,
                        None if machine_type is None else str(machine_type),
                        runtime.lease_seconds,
                    )
                except StoreError as error:
                    runtime.report_store_error("claim a job", error)
                else:
                    runtime.store_recovered("claim a job")
            if job is not None:
                if runtime.refuse_invalid_job(job):
                    continue  # failed, never run: the next job at once
                runtime.job_claimed(job, current=True)
                return "new_job"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                runtime.queue_empty()
                return "no_jobs"
            if await runtime.wait_for_work(min(remaining, poll)) == "interrupted":
                return None


class GetPendingJobsAction(BaseAction):
    """``get_pending_jobs``: the runnable pending jobs (not claimed) into ``store_as``."""

    _DEFAULT_SUCCESS = default_event("get_pending_jobs", "success")
    _DEFAULT_EMPTY = default_event("get_pending_jobs", "empty")

    async def execute(self, context: dict[str, Any]) -> str | None:
        store_as = str(self.params.get("store_as", "pending_jobs"))
        limit = self.params.get("limit")
        jobs = self.runtime.store.list_pending(
            self.params.get("job_type") or None,
            self.params.get("machine_type") or None,
            None if limit in (None, "") else whole_number_param(limit, "limit"),
        )
        context[store_as] = [job_to_dict(job) for job in jobs]
        if jobs:
            return self.event("success", self._DEFAULT_SUCCESS)
        return self.event("empty", self._DEFAULT_EMPTY)


def _resolved_job_id(value: Any) -> str | None:
    """``value`` as a job id; None when it is missing or still holds an unresolved
    ``{placeholder}`` (the context had no such key)."""
    if value is None or value == "" or (isinstance(value, str) and PLACEHOLDER.search(value)):
        return None
    return str(value)


class ClaimJobAction(BaseAction):
    """``claim_job``: claim one pending job by ``job_id`` (the controller pattern). The job is
    *held*: its lease is renewed while this machine runs, until someone finishes it."""

    _DEFAULT_ALREADY_CLAIMED = default_event("claim_job", "already_claimed")
    _DEFAULT_ERROR = default_event("claim_job", "error")
    _DEFAULT_SUCCESS = default_event("claim_job", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        job_id = _resolved_job_id(self.params.get("job_id"))
        if job_id is None:
            raise ValueError(f"claim_job needs a job_id (got {self.params.get('job_id')!r})")
        runtime = self.runtime
        job = runtime.store.claim_job_by_id(job_id, runtime.machine_name, runtime.lease_seconds)
        if job is None:
            runtime.logger.info("job %s already claimed or not pending", job_id)
            return self.event("already_claimed", self._DEFAULT_ALREADY_CLAIMED)
        if runtime.refuse_invalid_job(job):  # its data does not match its type's schema
            return self.event("error", self._DEFAULT_ERROR)
        runtime.job_claimed(job, current=False)  # sets context["current_job"]
        return self.event("success", self._DEFAULT_SUCCESS)


class CompleteJobAction(BaseAction):
    """``complete_job``: mark ``job_id`` (default: the current job) completed."""

    _DEFAULT_ERROR = default_event("complete_job", "error")
    _DEFAULT_SUCCESS = default_event("complete_job", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        given = self.params.get("job_id") or runtime.current_job_id
        job_id = _resolved_job_id(given)
        if job_id is None:
            runtime.logger.warning("complete_job: no job to complete (job_id %r)", given)
            return self.event("error", self._DEFAULT_ERROR)
        if not runtime.finish_job(job_id, result=self.params.get("result")):
            runtime.logger.warning(
                "complete_job: job %s is not processing (or no longer ours)", job_id
            )
            return self.event("error", self._DEFAULT_ERROR)
        return self.event("success", self._DEFAULT_SUCCESS)


class FailJobAction(BaseAction):
    """``fail_job``: mark ``job_id`` (default: the current job) failed with ``reason``;
    ``retry: true`` puts it back to pending with backoff while attempts remain."""

    _DEFAULT_ERROR = default_event("fail_job", "error")
    _DEFAULT_SUCCESS = default_event("fail_job", "success")

    async def execute(self, context: dict[str, Any]) -> str | None:
        runtime = self.runtime
        given = self.params.get("job_id") or runtime.current_job_id
        job_id = _resolved_job_id(given)
        if job_id is None:
            runtime.logger.warning("fail_job: no job to fail (job_id %r)", given)
            return self.event("error", self._DEFAULT_ERROR)
        reason = to_text(
            self.params.get("reason") or context.get("last_error") or "failed by the machine"
        )
        retry = flag_param(self.params.get("retry"), False, "fail_job retry")
        if not runtime.finish_job(job_id, reason=reason, retry=retry):
            runtime.logger.warning("fail_job: job %s is not processing (or no longer ours)", job_id)
            return self.event("error", self._DEFAULT_ERROR)
        return self.event("success", self._DEFAULT_SUCCESS)


class WaitForJobsAction(BaseAction):
    """``wait_for_jobs``: are the jobs listed in ``tracked_jobs_key`` (``spawned_jobs``)
    finished? Sets ``completed_jobs``, ``failed_jobs`` (failed or cancelled) and
    ``pending_jobs``; returns ``success`` (``all_jobs_complete``) when none is pending,
    ``timeout_event`` (``timeout``) after ``timeout`` seconds (300) of waiting, otherwise
    ``pending`` (None: a ``timeout(N)`` transition paces the next check)."""

    _DEFAULT_SUCCESS = default_event("wait_for_jobs", "success")
    _DEFAULT_TIMEOUT_EVENT = default_event("wait_for_jobs", "timeout_event")
    _DEFAULT_PENDING = default_event("wait_for_jobs", "pending")

    async def execute(self, context: dict[str, Any]) -> str | None:
        key = str(self.params.get("tracked_jobs_key", "spawned_jobs"))
        tracked = context.get(key)
        if not isinstance(tracked, list) or not tracked:
            self.runtime.logger.warning("wait_for_jobs: no jobs tracked in %r", key)
            return "no_jobs_tracked"
        job_ids = [str(item) for item in tracked]
        started = context.setdefault("wait_start_time", time.time())
        statuses = self.runtime.store.wait_job_statuses(job_ids)
        completed = [j for j in job_ids if statuses.get(j) == "completed"]
        failed = [j for j in job_ids if statuses.get(j) in ("failed", "cancelled")]
        pending = [
            j for j in job_ids if statuses.get(j) not in ("completed", "failed", "cancelled")
        ]
        context["completed_jobs"] = completed
        context["failed_jobs"] = failed
        context["pending_jobs"] = pending
        if not pending:
            context.pop("wait_start_time", None)
            return self.event("success", self._DEFAULT_SUCCESS)
        timeout = number_param(self.params.get("timeout"), 300.0, "timeout")
        if time.time() - float(started) > timeout:
            context.pop("wait_start_time", None)
            self.runtime.logger.warning(
                "wait_for_jobs: %d job(s) still pending after %gs", len(pending), timeout
            )
            return self.event("timeout_event", self._DEFAULT_TIMEOUT_EVENT)
        return self.event("pending", self._DEFAULT_PENDING)
