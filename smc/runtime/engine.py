"""The asyncio engine that runs one generated machine class as a long-lived worker.

The semantics are in ``docs/runtime.md``; in short:

- entering a state runs its actions in order; the first returned event that the state accepts
  fires its transition and ends the list (a self-transition re-enters the state);
- when the list ends without a transition the machine is idle: it sleeps — no tick — until an
  inbound event (a store row, announced by the waker, with a 1 s fallback poll), a timer
  (``timeout(N)``) or a stop request. Inbound events are taken one at a time, only while idle;
  one with no transition in the idle state is logged, published and dropped;
- a final state runs its actions and the process ends (exit 0);
- an inbound event is acknowledged only when the machine is ready for the next one (the work
  it started is finished); until then its lease is renewed, and a stop gives it back;
- SIGINT/SIGTERM cancel the action in progress, give the current job and event back, mark the
  machine stopped and remove its sockets (a second Ctrl-C exits at once, 130);
- a SQLite file deleted or replaced under the machine stops it (exit 1).

The engine never imports the compiler; it reads only the generated class's data
(``INITIAL_STATE``, ``FINAL_STATES``, ``STATE_ACTIONS``, ``ACTION_SOURCES``, ``TIMEOUTS``,
``EVENT_CONTEXT_MAPS``, ``MACHINE_NAME``) and drives an instance through ``fire``/``can_fire``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smc.machine import GeneratedMachine
from smc.runtime.actions.base import WaitResult
from smc.runtime.actions.registry import ActionLoadError, ActionRegistry, PreparedAction
from smc.runtime.context import (
    MISSING,
    RESERVED_KEYS,
    interpolate,
    job_to_dict,
    lookup,
    new_context,
)
from smc.runtime.signals import StopSignals
from smc.runtime.store import (
    DEFAULT_LEASE_SECONDS,
    JOBS_CHANNEL,
    DuplicateJobError,
    EventRow,
    Job,
    LoopWaker,
    Store,
    StoreError,
    is_postgres_url,
    machine_channel,
    open_store,
    open_worker_store,
    resolve_database,
)

#: How often an idle machine looks for inbound events when no wake-up arrives (wake-ups are
#: hints that can be lost; this bounds the delay then).
FALLBACK_POLL_SECONDS = 1.0
#: A database fault is logged at most this often while it lasts.
STORE_ERROR_LOG_INTERVAL = 30.0
#: An action that hit a database fault is run again after this pause (until it gets through).
STORE_FAULT_RETRY_SECONDS = 1.0
#: The registry heartbeat never waits longer than this (machines are reported dead after 60 s).
MAX_HEARTBEAT_INTERVAL = 10.0
#: A busy machine writes its state to the registry at most this often (a write per transition
#: would be three per job); it writes at once when it goes idle, and on stop.
REGISTRY_WRITE_INTERVAL = 0.5
#: How often the background thread checkpoints SQLite's write-ahead log (moves it into the
#: database file); see :data:`smc.runtime.store.sqlite.INLINE_CHECKPOINT_PAGES`.
CHECKPOINT_INTERVAL = 0.25
#: A machine whose actions never wait (a full queue, no-op work) still lets the event loop run
#: this often, so signals, timers and deferred registry writes are not held up until it idles.
YIELD_INTERVAL = 0.01
#: A stop whose database write was refused tries it again after this pause.
STOP_RETRY_SECONDS = 0.25
#: The exit code of a stop forced by a second SIGINT (Ctrl-C): 128 + SIGINT, as shells report.
EXIT_FORCED = 130
#: The exit code when the database file was deleted or replaced under the running machine.
EXIT_DATABASE_REPLACED = 1


#: What :meth:`Engine._run_action` returns for an action that raised, and for one that the
#: database refused.
_FAILED = object()
_FAULT = object()


class StartupError(Exception):
    """The machine cannot start; ``exit_code`` is 2 for a problem in the machine or its
    actions (nothing ran), 1 for an environment problem (database, socket in use)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class _Claim:
    """A job this machine claimed. ``current``: the machine's current job (completed or
    failed automatically); otherwise *held* (claimed by ``claim_job`` for someone else)."""

    job_id: str
    token: str
    current: bool
    failed: bool = False
    reason: str | None = None
    #: The heartbeat found the lease lost: the job is no longer ours (see ``finish_job``).
    lost: bool = False


def absolute_database(database: str | None) -> str:
    """The database as a child process in another directory would need it."""
    target = resolve_database(database)
    if is_postgres_url(target) or target.startswith("sqlite:"):
        return target
    return os.path.abspath(target)


class Engine:
    """Runs one machine. Construct (resolves every action: unknown types raise
    :class:`StartupError` before anything runs), then ``await engine.run()`` for the exit code.
    """

    def __init__(
        self,
        machine_cls: type[GeneratedMachine],
        *,
        database: str | None = None,
        machine_name: str | None = None,
        actions_dirs: Iterable[str] = (),
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        initial_context: Mapping[str, Any] | None = None,
        log_dir: str | os.PathLike[str] = "logs",
        log_level: str = "INFO",
        config_path: str | None = None,
        monitor: bool = True,
        monitor_readers: int | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise StartupError("--lease-seconds must be positive", exit_code=2)
        self.machine_cls = machine_cls
        self.machine_name: str = machine_name or str(machine_cls.MACHINE_NAME)
        self.actions_dirs = tuple(actions_dirs)
        try:
            self._actions: dict[str, tuple[PreparedAction, ...]] = ActionRegistry(
                self.actions_dirs
            ).prepare(machine_cls)
        except ActionLoadError as error:
            raise StartupError(str(error), exit_code=2) from None
        self.database = absolute_database(database)
        self.lease_seconds = float(lease_seconds)
        self.log_dir = Path(os.path.abspath(log_dir))
        self.log_level = log_level.upper()
        self.config_path = config_path
        self.logger = logging.getLogger(f"smc.machine.{self.machine_name}")
        self.machine = machine_cls()
        self._finals = frozenset(str(state) for state in machine_cls.FINAL_STATES)
        self._timeouts: Mapping[Any, tuple[tuple[float, Any], ...]] = getattr(
            machine_cls, "TIMEOUTS", {}
        )
        self._context_maps: Mapping[Any, Mapping[str, str]] = getattr(
            machine_cls, "EVENT_CONTEXT_MAPS", {}
        )
        self.context: dict[str, Any] = new_context(
            self.machine_name, str(self.machine.state), initial_context
        )
        self._want_monitor = monitor
        self._monitor_readers = monitor_readers  # None: $SMC_MONITOR_MAX_READERS, else 64
        self._publisher: Any = None
        self._store: Store | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._event_waker: LoopWaker | None = None
        self._jobs_waker: LoopWaker | None = None
        self._jobs_rung = False
        self._stopping = False
        self._signals_seen = 0
        #: The exit code of a stop: 0, or 1 when the database file was deleted or replaced.
        self._exit_code = 0
        self._flow_task: asyncio.Task[int] | None = None
        # the machine registry: the state last written, when the next write may happen (loop
        # time), and the pending deferred write
        self._registry_state: str | None = None
        self._registry_due = float("-inf")
        self._registry_timer: asyncio.TimerHandle | None = None
        # whether a job was current when the machine entered its state (for log levels)
        self._entered_with_job = False
        # timers of the current state entry
        self._entry = 0
        self._timer_handles: list[asyncio.TimerHandle] = []
        self._expired: list[str] = []
        # an inbound event taken during check_database_queue's wait, applied after the action
        self._inbound: EventRow | None = None
        # the inbound event being handled: acknowledged once the machine is ready for the next
        # one (idle, waiting for a job, final), its lease renewed by the heartbeat meanwhile
        self._held_event: EventRow | None = None
        # jobs
        self._claims: dict[str, _Claim] = {}
        self._claims_snapshot: tuple[_Claim, ...] = ()
        self._current: _Claim | None = None
        self._job_keys: tuple[str, ...] = ()
        # database faults
        self._fault_since: float | None = None
        self._fault_what = ""
        self._fault_logged = float("-inf")
        # heartbeat thread and children
        self._heartbeat_stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._children: list[Any] = []
        self._children_lock = threading.Lock()

    # --- ActionRuntime ----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the engine is not running")
        return self._store

    @property
    def current_job_id(self) -> str | None:
        return None if self._current is None else self._current.job_id

    def publish(self, kind: str, **fields: Any) -> None:
        publisher = self._publisher
        if publisher is None:
            return
        record: dict[str, Any] = {
            "kind": kind,
            "machine": self.machine_name,
            "from": None,
            "event": None,
            "to": None,
            "job_id": self.current_job_id,
            "ts": time.time(),
        }
        record.update(fields)
        publisher.publish(record)

    def job_claimed(self, job: Job, *, current: bool) -> dict[str, Any]:
        job_dict = job_to_dict(job)
        claim = _Claim(job.id, job.claim_token or "", current)
        context = self.context
        if current:
            self._drop_job_keys()
            keys: list[str] = []
            data = job_dict["data"]
            if isinstance(data, Mapping):
                for key, value in data.items():
                    if isinstance(key, str) and key not in RESERVED_KEYS:
                        context[key] = value
                        keys.append(key)
            self._job_keys = tuple(keys)
            self._current = claim
        context["current_job"] = job_dict
        context["id"] = job.id
        context["job_id"] = job.id
        context["job_type"] = job.job_type
        self._claims[job.id] = claim
        self._claims_snapshot = tuple(self._claims.values())
        self.logger.debug("claimed job %s (%s, attempt %d)", job.id, job.job_type, job.attempts)
        self.publish("job_claimed", job_id=job.id, job_type=job.job_type, attempts=job.attempts)
        return job_dict

    def claim_token(self, job_id: str) -> str | None:
        claim = self._claims.get(job_id)
        return None if claim is None else claim.token

    def job_finished(self, job_id: str) -> None:
        claim = self._claims.pop(job_id, None)
        if claim is not None:
            self._claims_snapshot = tuple(self._claims.values())
        if self._current is not None and self._current.job_id == job_id:
            self._current = None

    def finish_job(
        self,
        job_id: str,
        *,
        reason: str | None = None,
        retry: bool = False,
        result: Any = None,
    ) -> bool:
        # Fenced by the claim token when this machine holds the job: a job whose lease was
        # lost (and perhaps claimed again elsewhere) is left alone.
        claim = self._claims.get(job_id)
        token = None if claim is None else claim.token
        if claim is not None and claim.lost:
            done = False
        elif reason is None:
            done = self.store.complete_job(job_id, token, result)
        else:
            done = self.store.fail_job(job_id, reason, token, retry=retry)
        self.job_finished(job_id)
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
            self.logger.debug("job %s completed", job_id)
            self.publish("job_completed", job_id=job_id)
        else:
            self.logger.info("job %s failed: %s", job_id, reason)
            self.publish("job_failed", job_id=job_id, reason=reason, retry=retry)
        return True

    async def finish_current_job(self) -> bool:
        claim = self._current
        if claim is None:
            return True
        # A failed job goes back to pending while attempts remain: the failure may be passing.
        reason = (claim.reason or "an action failed") if claim.failed else None
        try:
            done = self.finish_job(claim.job_id, reason=reason, retry=True)
        except StoreError as error:
            self.report_store_error(f"finish job {claim.job_id}", error)
            return False
        self.store_recovered(f"finish job {claim.job_id}")
        # Only the automatic finish drops the job's data keys: an explicit complete_job or
        # fail_job leaves them for the states that follow, until the next claim replaces them.
        self._drop_job_keys()
        return done  # True also when the job was no longer ours (its lease was lost)

    def ensure_jobs_waker(self) -> None:
        if self._jobs_waker is not None or self._loop is None:
            return
        try:
            waker = self.store.open_waker([JOBS_CHANNEL])
        except StoreError as error:
            self.logger.warning("no wake-ups for new jobs (polling instead): %s", error)
            return
        self._jobs_waker = LoopWaker(self._loop, waker, self._on_jobs_bell)

    def _rearm_wakers(self) -> None:
        """Listen again on a waker whose connection was lost (see ``LoopWaker``); called
        from the polling loops, so a failed attempt is retried a second later."""
        for loop_waker, what in ((self._event_waker, "events"), (self._jobs_waker, "new jobs")):
            if loop_waker is None or loop_waker.armed:
                continue
            try:
                if loop_waker.rearm():
                    self.logger.info("wake-ups for %s restored", what)
            except StoreError as error:
                self.logger.warning("no wake-ups for %s yet (polling): %s", what, error)

    async def wait_for_work(self, timeout: float) -> WaitResult:
        wake = self._wake
        assert wake is not None
        self._event_done()  # ready for the next event: the last one's work is finished
        deadline = time.monotonic() + timeout
        while True:
            wake.clear()
            if self._stopping or self._expired or self._inbound is not None:
                return "interrupted"
            if self._take_inbound():
                return "interrupted"
            if self._jobs_rung:
                self._jobs_rung = False
                return "rung"
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            self._rearm_wakers()
            self._write_registry()  # about to sleep: the registry shows where it waits
            if not await _wait_event(wake, remaining):
                return "timeout"

    def track_child(self, process: Any) -> None:
        with self._children_lock:
            self._children.append(process)

    def report_store_error(self, what: str, error: Exception) -> None:
        now = time.monotonic()
        if self._fault_since is None:
            self._fault_since = now
            self._fault_what = what
        if now - self._fault_logged >= STORE_ERROR_LOG_INTERVAL:
            self._fault_logged = now
            self.logger.error("cannot %s: %s (will retry)", what, error)
            self.publish("error", error=f"cannot {what}: {error}")

    def store_recovered(self, what: str | None = None) -> None:
        """The database did ``what`` (None: anything). The fault is over when the operation
        that first failed gets through: on a full disk, writes that need no new page still
        work, and they must not announce a recovery (nor restart the error log's clock)."""
        if self._fault_since is None or (what is not None and what != self._fault_what):
            return
        self.logger.warning(
            "database usable again after %.1fs", time.monotonic() - self._fault_since
        )
        self._fault_since = None
        self._fault_logged = float("-inf")

    # --- running ----------------------------------------------------------------------------

    def request_stop(self, reason: str = "signal received") -> None:
        """Stop soon: cancel the action in progress and shut down cleanly."""
        if self._stopping:
            return
        self._stopping = True
        self.logger.info("stopping (%s)", reason)
        if self._flow_task is not None:
            self._flow_task.cancel()

    def _on_signal(self, signum: int) -> None:
        """A stop signal (called from the signal handler: only flags, scheduling, or exit).
        The first one stops the machine cleanly; later ones are ignored while the stop is
        under way, except SIGINT, which forces an exit at once (a second Ctrl-C)."""
        self._signals_seen += 1
        if self._signals_seen == 1:
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to stop
                    loop.call_soon_threadsafe(self.request_stop)
            return
        if signum == signal.SIGINT:
            self._force_exit()
        self.logger.info("already stopping (signal %d ignored; Ctrl-C again forces)", signum)

    def _force_exit(self) -> None:
        """A second Ctrl-C: exit now (130) without waiting for the action or the database.
        What the machine holds (its job, the event it was handling) is left to its lease;
        the sockets are closed and their files removed."""
        held = [f"job {claim.job_id}" for claim in self._claims.values() if claim.current]
        held += [f"event {row.id}" for row in (self._held_event, self._inbound) if row]
        self.logger.warning(
            "interrupted again: exiting now%s",
            f" ({', '.join(held)} left to be re-queued when the lease expires)" if held else "",
        )
        # Only the files: the kernel closes the sockets at exit, and a full close would take
        # the publisher's lock, which the interrupted main thread may hold (or may be closing
        # it halfway, past the point where a second close returns early).
        if self._publisher is not None:
            self._publisher.remove_file()
        with contextlib.suppress(Exception):
            for loop_waker in (self._event_waker, self._jobs_waker):
                if loop_waker is not None:
                    loop_waker.close()
        logging.shutdown()
        os._exit(EXIT_FORCED)

    async def run(self, signals: StopSignals | None = None) -> int:
        """Run until a final state is reached (0) or a stop is requested (0; 1 when the
        database file was deleted or replaced). ``signals``: the process's stop signals, as
        ``smc run`` installed them at start-up (a stop requested before the engine ran is
        honoured); by default the engine handles SIGINT/SIGTERM itself while it runs."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        own_signals = signals is None
        if signals is None:
            signals = StopSignals()
            if not signals.install():
                signals = None
        if signals is not None:
            signals.listen(self._on_signal)
        try:
            try:
                self._open()
            except BaseException:
                self._close()
                raise
            code = 0
            try:
                self._flow_task = loop.create_task(self._flow())
                if signals is not None and signals.requested and not self._signals_seen:
                    self._on_signal(signals.received[0])  # came before the engine listened
                try:
                    code = await self._flow_task
                except asyncio.CancelledError:
                    if not self._stopping:
                        raise
                    code = self._exit_code
            finally:
                self._shutdown()
        finally:
            if signals is not None:
                signals.listen(None)
                if own_signals:
                    signals.restore()
        return code

    def _open(self) -> None:
        try:
            store = open_worker_store(self.database)
        except StoreError as error:
            raise StartupError(str(error)) from None
        self._store = store
        if self._want_monitor:
            from smc.runtime.monitor import MonitorError, MonitorPublisher, monitor_dir

            try:
                self._publisher = MonitorPublisher.open(
                    monitor_dir(store), self.machine_name, max_readers=self._monitor_readers
                )
            except MonitorError as error:
                raise StartupError(str(error)) from None
        try:
            store.release_events(self.machine_name)
            store.register_machine(
                self.machine_name, str(self.machine.state), config_path=self.config_path
            )
            self._registry_state = str(self.machine.state)
            event_waker = store.open_waker([machine_channel(self.machine_name)])
        except StoreError as error:
            raise StartupError(str(error)) from None
        assert self._loop is not None
        self._event_waker = LoopWaker(self._loop, event_waker, self._on_event_bell)
        interval = min(self.lease_seconds / 3.0, MAX_HEARTBEAT_INTERVAL)
        self._heartbeat_thread = threading.Thread(
            target=self._heartbeat_main,
            args=(interval,),
            name=f"smc-heartbeat-{self.machine_name}",
            daemon=True,
        )
        self._heartbeat_thread.start()
        self.logger.info(
            "started %s in state %s (pid %d, database %s)",
            self.machine_name,
            self.machine.state,
            os.getpid(),
            store.location,
        )
        self.publish("machine_started", to=str(self.machine.state), pid=os.getpid())

    async def _flow(self) -> int:
        self._start_timers()
        loop = asyncio.get_running_loop()
        next_yield = loop.time() + YIELD_INTERVAL
        while True:
            state = str(self.machine.state)
            if state in self._finals:
                await self._run_actions(state, final=True)
                self._event_done()
                await self.finish_current_job()
                self.logger.info("reached final state %s", state)
                return 0
            if await self._run_actions(state, final=False):
                # Actions that return at once never give the loop a turn: give it one now
                # and then (a SIGTERM would otherwise wait until the queue runs dry).
                now = loop.time()
                if now >= next_yield:
                    await asyncio.sleep(0)
                    next_yield = now + YIELD_INTERVAL
                continue
            await self._idle()

    async def _run_actions(self, state: str, *, final: bool) -> bool:
        """Run ``state``'s actions; True when one of them (or an interrupt) fired a transition."""
        for prepared in self._actions.get(state, ()):
            event = await self._execute(prepared)
            if final:
                continue
            if event is not None:
                if self.machine.can_fire(event):
                    self._fire(event)
                    return True
                self.logger.debug(
                    "%s returned %r: no transition from %s, next action",
                    prepared.type,
                    event,
                    state,
                )
            if self._stopping:
                raise asyncio.CancelledError
            if self._take_interrupt():
                return True
        return False

    async def _execute(self, prepared: PreparedAction) -> str | None:
        context = self.context
        config: Mapping[str, Any] = prepared.config
        if prepared.interpolated:
            config = dict(config)
            for key in prepared.interpolated:
                config[key] = interpolate(config[key], context)
        result = await self._run_action(prepared, config)
        while result is _FAULT:
            # A database fault is not the action's failure (nor its job's: failing the job would
            # spend its attempts on the fault): run it again once the database lets it through.
            # Timers wait meanwhile, as for any running action; a stop cancels the pause.
            await asyncio.sleep(STORE_FAULT_RETRY_SECONDS)
            result = await self._run_action(prepared, config)
        if result is _FAILED:
            result = prepared.error_event
        else:
            self.store_recovered(f"run {prepared.type}")
        if result is None:
            return None
        event = str(result)
        if event == prepared.error_event and self._current is not None:
            self._current.failed = True
            self._current.reason = str(
                context.get("last_error") or f"action {prepared.type} returned {event}"
            )
        return event

    async def _run_action(self, prepared: PreparedAction, config: Mapping[str, Any]) -> Any:
        """The action's result; ``_FAILED`` when it raised (logged, recorded in the context,
        published); ``_FAULT`` when the database refused (a :class:`StoreError`, reported)."""
        try:
            action = prepared.cls(config)
            with contextlib.suppress(AttributeError):
                action.runtime = self
            return await action.execute(self.context)
        except asyncio.CancelledError:
            raise
        except DuplicateJobError as error:  # the action's mistake, not a database fault
            return self._action_raised(prepared, error)
        except StoreError as error:
            self.report_store_error(f"run {prepared.type}", error)
            return _FAULT
        except Exception as error:
            return self._action_raised(prepared, error)

    def _action_raised(self, prepared: PreparedAction, error: Exception) -> object:
        context = self.context
        self.logger.error(
            "%s: action %s failed: %s: %s",
            prepared.source,
            prepared.type,
            type(error).__name__,
            error,
            exc_info=error if self.logger.isEnabledFor(logging.DEBUG) else None,
        )
        context["last_error"] = f"{type(error).__name__}: {error}"
        context["last_error_action"] = prepared.type
        self.publish(
            "error", action=prepared.type, source=prepared.source, error=context["last_error"]
        )
        return _FAILED

    def _take_interrupt(self) -> bool:
        """Apply an inbound event taken while an action waited, or an expired timer."""
        inbound = self._inbound
        if inbound is not None:
            self._inbound = None
            self._apply_inbound(inbound)
            return True
        while self._expired:
            event = self._expired.pop(0)
            if self.machine.can_fire(event):
                self.logger.info("timer %s expired in %s", event, self.machine.state)
                self._fire(event, external=True)
                return True
        return False

    async def _idle(self) -> None:
        """Sleep until an inbound event, a timer or a stop request moves the machine."""
        wake = self._wake
        assert wake is not None
        self._event_done()  # idle: the work the last inbound event started is finished
        while True:
            if self._stopping:
                raise asyncio.CancelledError
            wake.clear()
            if self._take_interrupt():
                return
            event = self._take_inbound()
            if event:
                inbound, self._inbound = self._inbound, None
                assert inbound is not None
                self._apply_inbound(inbound)
                return
            self._rearm_wakers()
            self._write_registry()  # idle: the registry shows the state it waits in
            await _wait_event(wake, FALLBACK_POLL_SECONDS)

    def _take_inbound(self) -> bool:
        """Claim inbound events until one has a transition here (kept in ``_inbound``; True)
        or none is left (False). Events without a transition are logged and dropped."""
        if not self._event_done():
            return False  # the last one is not acknowledged yet: no next one before it
        store = self.store
        while True:
            try:
                rows = store.claim_events(self.machine_name, 1, self.lease_seconds)
            except StoreError as error:
                self.report_store_error("read events", error)
                return False
            self.store_recovered("read events")
            if not rows:
                return False
            row = rows[0]
            if self.machine.can_fire(row.event_type):
                self._inbound = row
                return True
            self.logger.warning(
                "event %r from %s has no transition in state %s: dropped",
                row.event_type,
                row.source or "?",
                self.machine.state,
            )
            self.publish(
                "unhandled_event",
                event=row.event_type,
                **{"from": str(self.machine.state)},
                source=row.source,
            )
            self._ack(row)

    def _apply_inbound(self, row: EventRow) -> None:
        try:
            payload: Any = row.payload
        except ValueError:
            payload = row.payload_json
        context = self.context
        event_data = {
            "type": row.event_type,
            "payload": payload,
            "source": row.source,
            "job_id": row.job_id,
        }
        context["event_data"] = event_data
        context["payload"] = payload
        for key, path in self._context_maps.get(row.event_type, {}).items():
            value = lookup(event_data, path)
            if value is MISSING and isinstance(payload, Mapping):
                value = lookup(payload, path)
            if value is not MISSING:
                context[key] = value
        self.logger.debug("event %s from %s", row.event_type, row.source or "?")
        self._event_done()
        # Held, not acknowledged: an event is done only once the work it starts is finished
        # (docs/queue.md, "Events between machines"); a stop gives it back, a crash lets its
        # lease expire, and either way it is delivered again.
        self._held_event = row
        self._fire(row.event_type, external=True, source=row.source)

    def _event_done(self) -> bool:
        """Acknowledge the event being handled, if any: the machine is ready for the next one.
        False when the database refused (it stays held, its lease renewed, and is acknowledged
        at the next chance)."""
        row = self._held_event
        if row is None:
            return True
        if not self._ack(row):
            return False
        self._held_event = None
        return True

    def _ack(self, row: EventRow) -> bool:
        try:
            self.store.ack_event(row.id, row.claim_token or "")
        except StoreError as error:
            self.report_store_error("acknowledge an event", error)
            return False
        self.store_recovered("acknowledge an event")
        return True

    def _fire(self, event: str, *, external: bool = False, **extra: Any) -> None:
        """Fire ``event`` (``external``: an inbound event or a timer caused it).

        Logged at INFO, except the routine of every job, which is DEBUG (the monitor carries
        every transition, with its job id): self-transitions, and transitions an action's
        result causes while a job is being processed (one was current when the state was
        entered or is current now)."""
        source = self.machine.state
        self._cancel_timers()
        target = self.machine.fire(event)
        self.context["current_state"] = str(target)
        with_job = self._current is not None
        routine = source == target or (not external and (with_job or self._entered_with_job))
        self._entered_with_job = with_job
        self.logger.log(
            logging.DEBUG if routine else logging.INFO, "%s --%s--> %s", source, event, target
        )
        self._state_changed()
        self.publish(
            "transition", **{"from": str(source), "event": str(event), "to": str(target)}, **extra
        )
        self._start_timers()

    # --- machine registry -------------------------------------------------------------------

    def _state_changed(self) -> None:
        """Write the new state now, or — if the last write was under
        ``REGISTRY_WRITE_INTERVAL`` ago — when that interval is up (a timer, which runs as soon
        as the loop gets a turn), whichever state the machine is in by then."""
        loop = self._loop
        assert loop is not None
        if loop.time() >= self._registry_due:
            self._write_registry()
        elif self._registry_timer is None:
            self._registry_timer = loop.call_at(self._registry_due, self._write_registry)

    def _write_registry(self) -> None:
        """Write the current state to the registry if it differs from the one written last."""
        if self._registry_timer is not None:
            self._registry_timer.cancel()
            self._registry_timer = None
        state = str(self.machine.state)
        if state == self._registry_state:
            return
        loop = self._loop
        assert loop is not None
        self._registry_due = loop.time() + REGISTRY_WRITE_INTERVAL
        try:
            self.store.update_machine(self.machine_name, state)
        except StoreError as error:
            self.report_store_error("update the machine registry", error)
            return  # still differs: written at the next chance
        self._registry_state = state
        self.store_recovered("update the machine registry")

    # --- timers -----------------------------------------------------------------------------

    def _start_timers(self) -> None:
        self._entry += 1
        timers = self._timeouts.get(self.machine.state, ())
        if not timers:
            return
        loop = self._loop
        assert loop is not None
        entry = self._entry
        for seconds, event in timers:
            self._timer_handles.append(
                loop.call_later(float(seconds), self._timer_expired, entry, str(event))
            )

    def _cancel_timers(self) -> None:
        for handle in self._timer_handles:
            handle.cancel()
        self._timer_handles.clear()
        self._expired.clear()

    def _timer_expired(self, entry: int, event: str) -> None:
        if entry != self._entry:
            return  # left that state entry already
        self._expired.append(event)
        if self._wake is not None:
            self._wake.set()

    # --- wake-ups, heartbeat, shutdown ------------------------------------------------------

    def _on_event_bell(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _on_jobs_bell(self) -> None:
        self._jobs_rung = True
        if self._wake is not None:
            self._wake.set()

    def _heartbeat_main(self, interval: float) -> None:
        """Every ``interval``, renew the leases of claimed jobs and the registry heartbeat; every
        ``CHECKPOINT_INTERVAL``, checkpoint the store. On its own connection: a long action on
        the loop must not let a live machine's job expire, and the loop's commits must not wait
        for a checkpoint's ``fsync``."""
        store: Store | None = None
        logged = float("-inf")
        next_beat = time.monotonic() + interval
        while not self._heartbeat_stop.wait(min(interval, CHECKPOINT_INTERVAL)):
            what = "checkpoint"
            try:
                if store is None:
                    store = open_store(self.database)
                if time.monotonic() >= next_beat:
                    what = "heartbeat"
                    next_beat = time.monotonic() + interval
                    self._reap_children()
                    for claim in self._claims_snapshot:
                        if claim.lost:
                            continue
                        if not store.heartbeat(claim.job_id, claim.token, self.lease_seconds):
                            loop = self._loop
                            if loop is not None:
                                loop.call_soon_threadsafe(self._lease_lost, claim)
                    event = self._held_event
                    if event is not None and not store.heartbeat_event(
                        event.id, event.claim_token or "", self.lease_seconds
                    ):
                        self.logger.warning(
                            "lost the lease of event %d (%s): it may be delivered again",
                            event.id,
                            event.event_type,
                        )
                    store.heartbeat_machine(self.machine_name)
                    what = "checkpoint"
                self._check_database_file()
                store.checkpoint()
            except Exception as error:  # this thread must outlive any fault: leases ride on it
                if time.monotonic() - logged >= STORE_ERROR_LOG_INTERVAL:
                    logged = time.monotonic()
                    text = str(error) if isinstance(error, StoreError) else repr(error)
                    self.logger.error("%s failed: %s (will retry)", what, text)
        if store is not None:
            store.close()

    def _check_database_file(self) -> None:
        """Stop (exit 1) once the database file was deleted or replaced: the machine would go
        on with the unlinked file and never see another job. (A ``stat``, off the loop.)"""
        main = self._store
        loop = self._loop
        if main is None or loop is None or self._exit_code:
            return
        reason = main.replaced()
        if reason is not None:
            self._exit_code = EXIT_DATABASE_REPLACED
            loop.call_soon_threadsafe(self._database_replaced, reason)

    def _database_replaced(self, reason: str) -> None:
        self.logger.error("%s while the machine ran: stopping (exit 1)", reason)
        self.publish("error", error=reason)
        self.request_stop("database file gone")

    def _lease_lost(self, claim: _Claim) -> None:
        if self._claims.get(claim.job_id) is not claim or claim.lost:
            return  # finished meanwhile
        if claim.current:
            # Still the current job (its actions may be running), but no longer ours: its
            # completion is not attempted, and is not the action's failure (``finish_job``).
            claim.lost = True
            self._report_lease_lost(claim.job_id)
        else:
            self.job_finished(claim.job_id)
            self.logger.debug("held job %s is finished or no longer ours", claim.job_id)

    def _report_lease_lost(self, job_id: str) -> None:
        self.logger.warning(
            "lost the lease of job %s (the machine was paused or the database unreachable past "
            "it; another worker may run it): its outcome is discarded",
            job_id,
        )
        self.publish("error", job_id=job_id, error="lease lost; job dropped")

    def _close_sockets(self) -> None:
        for loop_waker in (self._event_waker, self._jobs_waker):
            if loop_waker is not None:
                loop_waker.close()
        self._event_waker = self._jobs_waker = None
        if self._publisher is not None:
            with contextlib.suppress(Exception):
                self._publisher.close()
            self._publisher = None

    def _reap_children(self) -> None:
        with self._children_lock:
            self._children = [child for child in self._children if child.poll() is None]

    def _drop_job_keys(self) -> None:
        for key in self._job_keys:
            self.context.pop(key, None)
        self._job_keys = ()

    def _shutdown(self) -> None:
        self._cancel_timers()
        self._heartbeat_stop.set()
        released: list[str] = []
        if self._store is not None:
            # In a thread: while the database is locked or unreachable the main thread stays
            # free to take a second Ctrl-C (a signal handler runs only between bytecodes, never
            # during SQLite's wait for a lock).
            giver = threading.Thread(
                target=self._give_back, args=(self._store, released), name="smc-stop"
            )
            giver.start()
            giver.join()
            self._current = None
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(timeout=1.0)
        self.publish(
            "machine_stopped",
            **{"from": str(self.machine.state)},
            job_id=released[0] if released else None,
        )
        self._reap_children()
        self._close()
        self.logger.info("stopped in state %s", self.machine.state)

    def _give_back(self, store: Store, released: list[str]) -> None:
        """Release the current job and the inbound events this machine holds (back to
        pending, their delivery not counted), write the state it stopped in and mark it
        stopped. A refused write (a lock, a lost server) is tried again until the job's lease
        would have ended anyway (``lease_seconds``); past that, the lease does the work."""
        deadline = time.monotonic() + self.lease_seconds
        logged: set[str] = set()

        def attempt(what: str, operation: Any) -> Any:
            while True:
                try:
                    return operation()
                except StoreError as error:
                    if time.monotonic() >= deadline:
                        self.logger.error(
                            "cannot %s: %s (giving up: its lease ends meanwhile)", what, error
                        )
                        return None
                    if what not in logged:
                        logged.add(what)
                        self.logger.error(
                            "cannot %s yet: %s (retrying for up to %.0fs; Ctrl-C again to exit "
                            "now)",
                            what,
                            error,
                            deadline - time.monotonic(),
                        )
                    time.sleep(STOP_RETRY_SECONDS)

        claim = self._current
        if claim is not None and not claim.lost:
            what = f"release job {claim.job_id}"
            if attempt(what, lambda: store.release_job(claim.job_id, claim.token)):
                released.append(claim.job_id)
                self.logger.info("released job %s back to the queue", claim.job_id)
        for row in (self._held_event, self._inbound):
            if row is not None:
                what = f"give back event {row.id} ({row.event_type})"
                if attempt(what, lambda row=row: store.release_event(row.id, row.claim_token)):
                    self.logger.info("gave back event %d (%s) unhandled", row.id, row.event_type)
        self._held_event = self._inbound = None
        state = str(self.machine.state)
        attempt(
            "record the state it stopped in", lambda: store.update_machine(self.machine_name, state)
        )
        attempt("mark the machine stopped", lambda: store.stop_machine(self.machine_name))

    def _close(self) -> None:
        self._close_sockets()
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` up to ``timeout`` seconds; True when it is set. (``asyncio.timeout``
    rather than ``wait_for``: on Python 3.11 ``wait_for`` can swallow a cancellation that
    arrives as the event is set, and it costs a task per call.)"""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
