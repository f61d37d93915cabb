"""How a running machine stops: its answer to stop signals, and what it gives back.

:class:`StopSignalHandler`: the first SIGINT/SIGTERM asks for a clean stop; later ones are
ignored while it is under way, except SIGINT, which forces the exit at once (a second Ctrl-C,
exit :data:`EXIT_FORCED`), leaving what the machine holds to its leases.

:func:`give_back`, the clean stop's database writes: the current job goes back to
``pending`` and the inbound events it holds are given back, their delivery not counted; then
the state it stopped in is written and the machine marked stopped (``docs/runtime.md``,
"Stopping"). A write the database refuses (a lock, a lost server) is tried again every
:data:`STOP_RETRY_SECONDS` until the job's lease would have ended anyway; past that, the lease
does the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.inbox import Inbox
from smc.runtime.ledger import Claim, JobLedger
from smc.runtime.monitor_feed import MonitorFeed
from smc.runtime.store import EventRow, Store, StoreError
from smc.runtime.wakeups import Wakeups

#: A stop whose database write was refused tries it again after this pause.
STOP_RETRY_SECONDS = 0.25
#: The exit code of a stop forced by a second SIGINT (Ctrl-C): 128 + SIGINT, as shells report.
EXIT_FORCED = 130


class StopSignalHandler:
    """The listener a running machine gives :class:`~smc.runtime.signals.StopSignals`: it runs
    in the signal handler, so it only sets flags, schedules work, or exits. ``seen``: how many
    signals came."""

    def __init__(
        self,
        logger: logging.Logger,
        loop: Callable[[], asyncio.AbstractEventLoop | None],
        request_stop: Callable[[], None],
        *,
        jobs: JobLedger,
        inbox: Inbox,
        feed: MonitorFeed,
        wakeups: Wakeups,
    ) -> None:
        """``loop``: the machine's event loop, if it runs (``request_stop`` is called there)."""
        self._logger = logger
        self._loop = loop
        self._request_stop = request_stop
        self._jobs = jobs
        self._inbox = inbox
        self._feed = feed
        self._wakeups = wakeups
        self.seen = 0

    def __call__(self, signum: int) -> None:
        """The first one stops the machine cleanly; later ones are ignored while the stop is
        under way, except SIGINT, which forces an exit at once (a second Ctrl-C)."""
        self.seen += 1
        if self.seen == 1:
            loop = self._loop()
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
                    loop.call_soon_threadsafe(self._request_stop)
            return
        if signum == signal.SIGINT:
            self.force_exit()
        self._logger.info("already stopping (signal %d ignored; Ctrl-C again forces)", signum)

    def force_exit(self) -> NoReturn:
        """A second Ctrl-C: exit now (130) without waiting for the action or the database.
        What the machine holds (its job, the event it was handling) is left to its lease;
        the sockets are closed and their files removed."""
        held = [f"job {claim.job_id}" for claim in self._jobs.claims.values() if claim.current]
        held += [f"event {row.id}" for row in (self._inbox.held, self._inbox.taken) if row]
        self._logger.warning(
            "interrupted again: exiting now%s",
            f" ({', '.join(held)} left to be re-queued when the lease expires)" if held else "",
        )
        # Only the files: the kernel closes the sockets at exit.
        self._feed.remove_file()
        self._wakeups.close(forced=True)
        logging.shutdown()
        os._exit(EXIT_FORCED)


def give_back(
    store: Store,
    *,
    machine_name: str,
    state: str,
    job: Claim | None,
    events: Iterable[EventRow | None],
    lease_seconds: float,
    logger: logging.Logger,
    clock: Clock = SYSTEM_CLOCK,
    sleep: Callable[[float], Any] = time.sleep,
) -> str | None:
    """Release ``job`` (unless its lease was lost) and ``events`` (None entries skipped),
    record ``state`` and mark the machine stopped; the id of the job released, if any.

    Blocking (``sleep`` between attempts): the engine runs it off the main thread, which must
    stay free to take a second Ctrl-C."""
    deadline = clock.monotonic() + lease_seconds
    logged: set[str] = set()

    def attempt(what: str, operation: Any) -> Any:
        while True:
            try:
                return operation()
            except StoreError as error:
                if clock.monotonic() >= deadline:
                    logger.error("cannot %s: %s (giving up: its lease ends meanwhile)", what, error)
                    return None
                if what not in logged:
                    logged.add(what)
                    logger.error(
                        "cannot %s yet: %s (retrying for up to %.0fs; Ctrl-C again to exit now)",
                        what,
                        error,
                        deadline - clock.monotonic(),
                    )
                sleep(STOP_RETRY_SECONDS)

    released = None
    if job is not None and not job.lost:
        release = functools.partial(store.release_job, job.job_id, job.token)
        if attempt(f"release job {job.job_id}", release):
            released = job.job_id
            logger.info("released job %s back to the queue", job.job_id)
    for row in events:
        if row is not None:
            what = f"give back event {row.id} ({row.event_type})"
            if attempt(what, lambda row=row: store.release_event(row.id, row.claim_token)):
                logger.info("gave back event %d (%s) unhandled", row.id, row.event_type)
    attempt("record the state it stopped in", lambda: store.update_machine(machine_name, state))
    attempt("mark the machine stopped", lambda: store.stop_machine(machine_name))
    return released


def give_back_off_main_thread(store: Store, **options: Any) -> str | None:
    """:func:`give_back` on a thread of its own (joined): while the database is locked or
    unreachable the main thread stays free to take a second Ctrl-C (a signal handler runs only
    between bytecodes, never during SQLite's wait for a lock)."""
    released: list[str | None] = []
    thread = threading.Thread(
        target=lambda: released.append(give_back(store, **options)), name="smc-stop"
    )
    thread.start()
    thread.join()
    return released[0] if released else None


__all__ = [
    "EXIT_FORCED",
    "STOP_RETRY_SECONDS",
    "StopSignalHandler",
    "give_back",
    "give_back_off_main_thread",
]
