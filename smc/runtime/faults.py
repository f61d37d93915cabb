"""Database-fault reporting for a running machine: a fault is logged (and published) once, then
at most every :data:`STORE_ERROR_LOG_INTERVAL` seconds while it lasts, and its end is logged
once when the operation that failed first gets through.

A worker retries what the database refused (an action, an acknowledgement, a registry write)
for as long as the fault lasts; one line per attempt would flood the log, one line in all would
hide that it is still going on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from smc.runtime.clock import SYSTEM_CLOCK, Clock

#: A database fault is logged at most this often while it lasts.
STORE_ERROR_LOG_INTERVAL = 30.0


class LogLimiter:
    """Says whether a recurring message is due: the first time, then once ``interval`` seconds
    (by ``clock``) have passed since it was last let through."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK, interval: float = STORE_ERROR_LOG_INTERVAL):
        self._clock = clock
        self._interval = interval
        self._last = float("-inf")

    def due(self) -> bool:
        """True (and the interval starts again) when the message may be logged now."""
        now = self._clock.monotonic()
        if now - self._last < self._interval:
            return False
        self._last = now
        return True

    def reset(self) -> None:
        """The next message is due at once."""
        self._last = float("-inf")


class FaultReporter:
    """The database fault a machine is in, if any: what first failed and since when.

    ``report`` logs ``cannot <what>: <error> (will retry)`` (rate-limited) and publishes it;
    ``recovered`` ends the fault when the operation that first failed works again."""

    def __init__(
        self,
        logger: logging.Logger,
        publish: Callable[..., None],
        clock: Clock = SYSTEM_CLOCK,
        interval: float = STORE_ERROR_LOG_INTERVAL,
    ) -> None:
        self._logger = logger
        self._publish = publish
        self._clock = clock
        self._limiter = LogLimiter(clock, interval)
        #: When the fault started (clock's monotonic reading); None: no fault.
        self.since: float | None = None
        #: The operation that failed first (``report``'s ``what``).
        self.what = ""

    def report(self, what: str, error: Exception) -> None:
        """The database refused ``what`` (e.g. ``"read events"``)."""
        if self.since is None:
            self.since = self._clock.monotonic()
            self.what = what
        if self._limiter.due():
            self._logger.error("cannot %s: %s (will retry)", what, error)
            self._publish("error", error=f"cannot {what}: {error}")

    def recovered(self, what: str | None = None) -> None:
        """The database did ``what`` (None: anything). The fault is over when the operation
        that first failed gets through: on a full disk, writes that need no new page still
        work, and they must not announce a recovery (nor restart the error log's clock)."""
        if self.since is None or (what is not None and what != self.what):
            return
        self._logger.warning(
            "database usable again after %.1fs", self._clock.monotonic() - self.since
        )
        self.since = None
        self._limiter.reset()


__all__ = ["STORE_ERROR_LOG_INTERVAL", "FaultReporter", "LogLimiter"]
