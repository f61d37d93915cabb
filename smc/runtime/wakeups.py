"""What wakes a sleeping machine: one :class:`asyncio.Event` that its wakers and timers set.

A machine sleeps when idle and while ``check_database_queue`` waits for a job. It wakes when
its event channel rings (an inbound event), when the jobs channel rings (a new job; listened
to once an action asks, see :meth:`Wakeups.listen_jobs`), when a timer expires or a stop is
requested. Wake-ups are hints that can be lost, so every sleep also has a timeout after which
the machine looks anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from smc.runtime.faults import LogLimiter
from smc.runtime.store import JOBS_CHANNEL, LoopWaker, Store, StoreError, Waker


class Wakeups:
    """``wake``: set by every wake-up (cleared by the sleeper before it looks); ``jobs_rung``:
    the jobs channel rang since the sleeper last took it; ``events_rung``: the machine's
    event channel rang since the sleeper last looked in its inbox (see :meth:`events_due`).

    Both channels are read through one waker (on PostgreSQL, one ``LISTEN`` connection): the
    jobs channel is added to the events waker when an action first asks for it."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self.wake = asyncio.Event()
        self.jobs_rung = False
        self.events_rung = True  # nothing has looked yet
        self._waker: LoopWaker | None = None
        self._events_channel: str | None = None
        self._jobs = False
        self._last_look = float("-inf")
        # A failed attempt to listen again is retried every second for as long as the
        # database is away: said once, then at most every 30 s (a line a second, for hours).
        self._rearm_log = LogLimiter()

    def listen_events(self, loop: asyncio.AbstractEventLoop, waker: Waker) -> None:
        """Wake on ``waker`` (the machine's event channel, opened by the caller)."""
        self._events_channel = waker.channels[0]
        self._waker = LoopWaker(loop, waker, self._rang)

    def _rang(self, channels: frozenset[str]) -> None:
        if JOBS_CHANNEL in channels:
            self.jobs_rung = True
        if self._events_channel in channels:
            self.events_rung = True
        self.wake.set()

    def events_due(self, now: float, every: float) -> bool:
        """Whether a sleeper should look in its inbox now (``now``: a monotonic reading); if
        so, the look is taken as made. Yes when the event channel rang since the last look,
        when nothing listens on it (not opened, or its connection lost), and at least every
        ``every`` seconds (rings are hints: a lost one, or an event whose lease ran out,
        which nothing rings for). Otherwise no: a machine that a timer wakes dozens of times
        a second does not read the store each time for events nobody sent (a read was a
        sixth of what a timer's transition cost)."""
        waker = self._waker
        if (
            self.events_rung
            or self._events_channel is None
            or waker is None
            or not waker.armed
            or now - self._last_look >= every
        ):
            self.events_rung = False
            self._last_look = now
            return True
        return False

    def listen_jobs(self, loop: asyncio.AbstractEventLoop, store: Store) -> None:
        """Wake on the jobs channel from now on (once; without it, the waits poll)."""
        if self._jobs:
            return
        try:
            if self._waker is None:
                self._waker = LoopWaker(loop, store.open_waker([JOBS_CHANNEL]), self._rang)
            else:
                self._waker.add_channel(JOBS_CHANNEL)
        except StoreError as error:
            self._logger.warning("no wake-ups for new jobs (polling instead): %s", error)
            return
        self._jobs = True

    def rearm(self) -> None:
        """Listen again on a waker whose connection was lost (see ``LoopWaker``); called
        from the polling loops, so a failed attempt is retried a second later."""
        waker = self._waker
        if waker is None or waker.armed:
            return
        what = " and ".join(
            name
            for name, listened in (
                ("events", self._events_channel is not None),
                ("new jobs", self._jobs),
            )
            if listened
        )
        try:
            if waker.rearm():
                self._rearm_log.reset()
                self._logger.info("wake-ups for %s restored", what)
        except StoreError as error:
            if self._rearm_log.due():
                self._logger.warning("no wake-ups for %s yet (polling): %s", what, error)

    async def sleep(self, timeout: float) -> bool:
        """Wait for a wake-up up to ``timeout`` seconds; True when one came. (``asyncio.timeout``
        rather than ``wait_for``: on Python 3.11 ``wait_for`` can swallow a cancellation that
        arrives as the event is set, and it costs a task per call.)"""
        try:
            async with asyncio.timeout(timeout):
                await self.wake.wait()
        except TimeoutError:
            return False
        return True

    def close(self, *, forced: bool = False) -> None:
        """Close the waker's socket. ``forced`` (a second Ctrl-C, in a signal handler):
        ignore every error, keep nothing else consistent — the process exits next.

        The waker is forgotten only once closed: the signal handler runs in the main thread,
        between two steps of whatever it interrupted, which may be this very method on the
        normal way out; closing again then removes the socket files that close had not
        reached yet (a waker's close may run twice)."""
        waker = self._waker
        if waker is None:
            return
        if forced:
            with contextlib.suppress(Exception):
                waker.close()
            return
        waker.close()
        self._waker = None


__all__ = ["Wakeups"]
