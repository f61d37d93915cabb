"""The jobs a running machine has claimed: its *current* job and the jobs it *holds*.

The current job is the one its actions work on (``check_database_queue`` claimed it): its data
is copied into the context, and it is completed — or failed, after an action failed — when
the machine is ready for the next one (``docs/runtime.md``, "Jobs"). Held jobs were claimed by
``claim_job`` for someone else and are only kept alive until an action finishes them. Every
claim carries its claim token, which fences what this machine writes to the job: once the
heartbeat finds a lease lost, the job is no longer ours and its outcome is discarded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smc.runtime.context import RESERVED_KEYS, job_to_dict
from smc.runtime.faults import FaultReporter
from smc.runtime.store import Job, Store, StoreError


@dataclass
class Claim:
    """A job this machine claimed. ``current``: the machine's current job (completed or
    failed automatically); otherwise *held* (claimed by ``claim_job`` for someone else)."""

    job_id: str
    token: str
    current: bool
    failed: bool = False
    reason: str | None = None
    #: The heartbeat found the lease lost: the job is no longer ours (see ``finish``).
    lost: bool = False
    #: The job's data (what a guard's ``job.<field>`` reads).
    data: Any = None
    #: Which run of the job this is (1 for the first), for the history.
    attempt: int | None = None


class JobLedger:
    """The claims of one machine, and the keys its current job's data put into the context.

    ``claims`` and ``current`` change on the event loop only; ``snapshot`` is a copy of the
    claims that the heartbeat thread reads (a tuple, replaced whole on each change)."""

    def __init__(
        self,
        context: dict[str, Any],
        logger: logging.Logger,
        publish: Callable[..., None],
        faults: FaultReporter,
    ) -> None:
        self._context = context
        self._logger = logger
        self._publish = publish
        self._faults = faults
        self.claims: dict[str, Claim] = {}
        self.snapshot: tuple[Claim, ...] = ()
        self.current: Claim | None = None
        self._job_keys: tuple[str, ...] = ()
        #: The values the current job's keys hid, given back when they are dropped.
        self._shadowed: dict[str, Any] = {}

    def claimed(self, job: Job, *, current: bool) -> dict[str, Any]:
        """Record a claim (``current``: it becomes the current job, its data keys go into the
        context); returns the job as the context's ``current_job`` dict."""
        job_dict = job_to_dict(job)
        claim = Claim(job.id, job.claim_token or "", current, data=job.data, attempt=job.attempts)
        context = self._context
        if current:
            self.drop_job_keys()
            keys: list[str] = []
            data = job_dict["data"]
            if isinstance(data, Mapping):
                shadowed = self._shadowed
                for key, value in data.items():
                    if isinstance(key, str) and key not in RESERVED_KEYS:
                        if key in context:
                            shadowed[key] = context[key]
                        context[key] = value
                        keys.append(key)
            self._job_keys = tuple(keys)
            self.current = claim
        context["current_job"] = job_dict
        context["id"] = job.id
        context["job_id"] = job.id
        context["job_type"] = job.job_type
        self.claims[job.id] = claim
        self.snapshot = tuple(self.claims.values())
        self._logger.debug("claimed job %s (%s, attempt %d)", job.id, job.job_type, job.attempts)
        self._publish("job_claimed", job_id=job.id, job_type=job.job_type, attempts=job.attempts)
        return job_dict

    def token(self, job_id: str) -> str | None:
        """The claim token of ``job_id`` when this machine claimed it."""
        claim = self.claims.get(job_id)
        return None if claim is None else claim.token

    def forget(self, job_id: str) -> None:
        """Stop tracking ``job_id`` (finished, or no longer ours)."""
        claim = self.claims.pop(job_id, None)
        if claim is not None:
            self.snapshot = tuple(self.claims.values())
        if self.current is not None and self.current.job_id == job_id:
            self.current = None

    def finish(
        self,
        store: Store,
        job_id: str,
        *,
        reason: str | None = None,
        retry: bool = False,
        result: Any = None,
    ) -> bool:
        """Complete or fail ``job_id`` (``ActionRuntime.finish_job``)."""
        # Fenced by the claim token when this machine holds the job: a job whose lease was
        # lost (and perhaps claimed again elsewhere) is left alone.
        claim = self.claims.get(job_id)
        token = None if claim is None else claim.token
        if claim is not None and claim.lost:
            done = False
        elif reason is None:
            done = store.complete_job(job_id, token, result)
        else:
            done = store.fail_job(job_id, reason, token, retry=retry)
        self.forget(job_id)
        if not done:
            if claim is None:
                return False
            # A job this machine claimed and no longer holds (its lease expired: a pause, a
            # database outage; the reaper re-queued it): not the action's failure. The job is
            # simply not ours any more; the machine goes on (docs/runtime.md, "Leases").
            if not claim.lost:
                self._report_lease_lost(job_id)
            return True
        if reason is None:
            self._logger.debug("job %s completed", job_id)
            self._publish("job_completed", job_id=job_id)
        else:
            self._logger.info("job %s failed: %s", job_id, reason)
            self._publish("job_failed", job_id=job_id, reason=reason, retry=retry)
        return True

    def finish_current(self, store: Store) -> bool:
        """Complete the current job, if any (or, after a failed action, fail it with retry).
        False when the database refused (reported; the job stays current)."""
        claim = self.current
        if claim is None:
            return True
        # A failed job goes back to pending while attempts remain: the failure may be passing.
        reason = (claim.reason or "an action failed") if claim.failed else None
        try:
            done = self.finish(store, claim.job_id, reason=reason, retry=True)
        except StoreError as error:
            self._faults.report(f"finish job {claim.job_id}", error)
            return False
        self._faults.recovered(f"finish job {claim.job_id}")
        # Only the automatic finish drops the job's data keys: an explicit complete_job or
        # fail_job leaves them for the states that follow, until the next claim replaces them.
        self.drop_job_keys()
        return done  # True also when the job was no longer ours (its lease was lost)

    def current_failed(self, reason: str) -> None:
        """An action on the current job (if any) failed: the job is failed when finished."""
        claim = self.current
        if claim is not None:
            claim.failed = True
            claim.reason = reason

    def lease_lost(self, claim: Claim) -> None:
        """The heartbeat could not renew ``claim``'s lease (called on the event loop)."""
        if self.claims.get(claim.job_id) is not claim or claim.lost:
            return  # finished meanwhile
        if claim.current:
            # Still the current job (its actions may be running), but no longer ours: its
            # completion is not attempted, and is not the action's failure (``finish``).
            claim.lost = True
            self._report_lease_lost(claim.job_id)
        else:
            self.forget(claim.job_id)
            self._logger.debug("held job %s is finished or no longer ours", claim.job_id)

    def drop_job_keys(self) -> None:
        """Remove the current job's data keys from the context, giving back the values they
        hid (an ``--initial-context`` key one job's data overrode was gone for every later
        job)."""
        context = self._context
        shadowed = self._shadowed
        for key in self._job_keys:
            if key in shadowed:
                context[key] = shadowed.pop(key)
            else:
                context.pop(key, None)
        self._job_keys = ()

    def _report_lease_lost(self, job_id: str) -> None:
        self._logger.warning(
            "lost the lease of job %s (the machine was paused or the database unreachable past "
            "it; another worker may run it): its outcome is discarded",
            job_id,
        )
        self._publish("error", job_id=job_id, error="lease lost; job dropped")


__all__ = ["Claim", "JobLedger"]
