"""The asyncio engine that runs one generated machine class as a long-lived worker.

The semantics are in ``docs/runtime.md``; in short:

- entering a state runs its actions in order; the first returned event that the state accepts
  fires its transition and ends the list (a self-transition re-enters the state). A statechart
  runs, per step, the on-exit and on-entry actions of the states it left and entered in SCXML
  order (``smc.runtime.steps``), under the same rule;
- when the list ends without a transition the machine is idle: it sleeps — no tick — until an
  inbound event (a store row, announced by the waker, with a 1 s fallback poll), a timer
  (``timeout(N)``) or a stop request. Inbound events are taken one at a time, only while idle;
  one with no transition in the idle state is logged, published and dropped;
- a final state (``is_final``) runs its actions and the process ends (exit 0);
- an inbound event is acknowledged only when the machine is ready for the next one (the work
  it started is finished); until then its lease is renewed, and a stop gives it back;
- SIGINT/SIGTERM cancel the action in progress, give the current job and event back, mark the
  machine stopped and remove its sockets (a second Ctrl-C exits at once, 130);
- a SQLite file deleted or replaced under the machine stops it (exit 1).

:class:`Engine` runs the flow (actions, transitions, sleeps) and the machine's start and stop;
the rest is done by parts with one job each, one module each under ``smc.runtime``: ``ledger``
(claimed jobs), ``inbox`` (inbound events), ``action_runner``, ``timers``, ``wakeups``,
``registry_writer``, ``faults`` (database faults), ``heartbeat`` (the lease thread),
``monitor_feed``, ``children`` and ``stopping`` (stop signals, the stop's give-back). They read
time from the engine's :class:`~smc.runtime.clock.Clock`. (Over 500 lines because the flow and
the start/stop sequence read best as one piece; the services actions call are one-line
hand-overs to the parts.)

The engine never imports the compiler; it reads only the generated class's data
(``STATE_ACTIONS``, ``ACTION_SOURCES``, ``TIMEOUTS``, ``EVENT_CONTEXT_MAPS``, ``MACHINE_NAME``;
a statechart's ``EXIT_ACTIONS``, ``DISPATCH`` and ``STEPS`` through ``smc.runtime.steps``) and
drives an instance through ``fire``/``can_fire``/``is_final``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from smc.machine import GeneratedMachine, IllegalTransition, Sent
from smc.runtime.action_runner import ActionRunner
from smc.runtime.actions.base import WaitResult
from smc.runtime.actions.registry import ActionLoadError, ActionRegistry, PreparedAction
from smc.runtime.children import ChildProcesses
from smc.runtime.clock import SYSTEM_CLOCK, Clock
from smc.runtime.context import new_context
from smc.runtime.faults import FaultReporter
from smc.runtime.guards import GuardLoadError, with_named_guards
from smc.runtime.heartbeat import Heartbeat
from smc.runtime.inbox import Inbox
from smc.runtime.ledger import Claim, JobLedger
from smc.runtime.monitor import MonitorError, monitor_dir, monitor_socket_path
from smc.runtime.monitor.start_lock import let_go_of_start_lock, start_lock_path
from smc.runtime.monitor_feed import MonitorFeed
from smc.runtime.registry_writer import RegistryWriter
from smc.runtime.signals import StopSignals
from smc.runtime.steps import machine_steps
from smc.runtime.stopping import EXIT_FORCED, StopSignalHandler, give_back_off_main_thread
from smc.runtime.store import (
    DEFAULT_LEASE_SECONDS,
    EventRow,
    Job,
    Store,
    StoreError,
    is_postgres_url,
    machine_channel,
    open_worker_store,
    resolve_database,
)
from smc.runtime.timers import Cancellable, StateTimers
from smc.runtime.tracing import job_tracer, traceparent_of
from smc.runtime.validation import DataChecks, schema_error
from smc.runtime.wakeups import Wakeups

#: How often an idle machine looks for inbound events when no wake-up arrives (wake-ups are
#: hints that can be lost; this bounds the delay then).
FALLBACK_POLL_SECONDS = 1.0
#: A machine whose actions never wait (a full queue, no-op work) still lets the event loop run
#: this often, so signals, timers and deferred registry writes are not held up until it idles.
#: (Measured on the event loop's own clock: it is about when the real loop gets a turn.)
YIELD_INTERVAL = 0.01
#: The exit code when the database file was deleted or replaced under the running machine.
EXIT_DATABASE_REPLACED = 1


class StartupError(Exception):
    """The machine cannot start; ``exit_code`` is 2 for a problem in the machine or its
    actions (nothing ran), 1 for an environment problem (database, socket in use)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def absolute_database(database: str | None) -> str:
    """The database as a child process in another directory would need it."""
    target = resolve_database(database)
    if is_postgres_url(target) or target.startswith("sqlite:"):
        return target
    return os.path.abspath(target)


def new_machine(
    machine_cls: type[GeneratedMachine], initial_context: Mapping[str, Any] | None
) -> GeneratedMachine:
    """An instance of ``machine_cls``; a class with typed data (``CONTEXT_TYPE``) gets its
    ``context`` from the initial context's keys that are its fields, checked against its
    ``CONTEXT_SCHEMA`` (a field without a default must be given: ``StartupError``)."""
    context_type = getattr(machine_cls, "CONTEXT_TYPE", None)
    if context_type is None:
        return machine_cls()
    schema: Mapping[str, Any] = getattr(machine_cls, "CONTEXT_SCHEMA", {})
    fields = schema.get("properties", {})
    given = {key: value for key, value in (initial_context or {}).items() if key in fields}
    if not given:
        # The class makes its own context: the defaults, and the computed fields (``expr:``)
        # in document order. What it made is checked as a given one would be.
        try:
            made: GeneratedMachine = machine_cls()
        except ValueError as error:  # a field without a default
            raise StartupError(f"--initial-context: {error}", exit_code=2) from None
        problem = schema_error(schema, cast(Any, made).context.to_dict(), "context")
        if problem is not None:
            raise StartupError(f"context: {problem}", exit_code=2)
        return made
    defaults = {
        name: field["default"]
        for name, field in fields.items()
        if name not in given and isinstance(field, Mapping) and "default" in field
    }
    problem = schema_error(schema, {**defaults, **given}, "context")
    if problem is not None:
        raise StartupError(f"--initial-context: {problem}", exit_code=2)
    try:
        context = context_type.from_dict(given)
    except ValueError as error:
        raise StartupError(f"--initial-context: {error}", exit_code=2) from None
    machine: GeneratedMachine = cast(Any, machine_cls)(context=context)
    return machine


class Engine:
    """Runs one machine. Construct (resolves every action: unknown types raise
    :class:`StartupError` before anything runs), then ``await engine.run()`` for the exit code.

    Its public methods are the services actions use (:class:`~smc.runtime.actions.base.
    ActionRuntime`); most hand over to one of its parts. ``clock``: what the parts read time
    from (a test's :class:`~smc.runtime.clock.ManualClock`)."""

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
        clock: Clock = SYSTEM_CLOCK,
        trace_id: str | None = None,
        history_retention: float | None = None,
        start_lock: int | None = None,
    ) -> None:
        if lease_seconds <= 0:
            raise StartupError("--lease-seconds must be positive", exit_code=2)
        self.actions_dirs = tuple(actions_dirs)
        try:
            # A class whose named guards are not written gets them from the actions dirs.
            machine_cls = with_named_guards(machine_cls, self.actions_dirs)
        except GuardLoadError as error:
            raise StartupError(str(error), exit_code=2) from None
        self.machine_cls = machine_cls
        self.machine_name: str = machine_name or str(machine_cls.MACHINE_NAME)
        try:
            prepared = ActionRegistry(self.actions_dirs).prepare_actions(machine_cls)
        except ActionLoadError as error:
            raise StartupError(str(error), exit_code=2) from None
        # Flat or statechart, the flow below sees steps: states left, states entered, the
        # actions to run.
        self._steps = machine_steps(machine_cls, prepared.entry, prepared.exit)
        #: The actions of the step last taken, which the flow runs next.
        self._next: tuple[PreparedAction, ...] = ()
        self.database = absolute_database(database)
        self.lease_seconds = float(lease_seconds)
        self.log_dir = Path(os.path.abspath(log_dir))
        self.log_level = log_level.upper()
        self.config_path = config_path
        self.logger = logging.getLogger(f"smc.machine.{self.machine_name}")
        self.machine = new_machine(machine_cls, initial_context)
        #: The class's ``take_sent`` (a chart's: what its ``send`` actions sent), or None.
        self._take_sent: Callable[[], tuple[Sent, ...]] | None = getattr(
            self.machine, "take_sent", None
        )
        #: Whether the class's guards read ``job`` (the current job's data, set before firing).
        self._reads_job = hasattr(self.machine, "job")
        self._clock = clock
        self.context: dict[str, Any] = new_context(
            self.machine_name, str(self.machine.state), initial_context
        )
        #: Whether the class has typed data (``context:``), whose fields placeholders read.
        self._typed_context = getattr(machine_cls, "CONTEXT_TYPE", None) is not None
        self._show_typed_context()
        self._want_monitor = monitor
        #: The start lock of this machine's name that the parent's ``start_fsm`` handed over,
        #: let go of once the name is taken or refused (smc/runtime/monitor/start_lock.py).
        self._start_lock = start_lock
        #: The trace the machine starts in (``start_fsm`` passes its own: docs/history.md).
        self._start_trace = trace_id
        #: Prune the history (and finished jobs, delivered events) older than this (seconds).
        self._history_retention = history_retention
        self._monitor_readers = monitor_readers  # None: $SMC_MONITOR_MAX_READERS, else 64
        self._store: Store | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeups = Wakeups(self.logger)
        self._stopping = False
        #: The exit code of a stop: 0, or 1 when the database file was deleted or replaced.
        self._exit_code = 0
        self._flow_task: asyncio.Task[int] | None = None
        # whether a job was current when the machine entered its state (for log levels)
        self._entered_with_job = False
        #: Why ``_fire`` moved nothing when a guard or assignment raised; reset before each
        #: action result is fired (``_run_actions``), the one place it is read.
        self._guard_failure: str | None = None
        #: Spans of the transitions made for a traced job (a workflow task's): None unless
        #: tracing is on (smc/runtime/tracing.py), so nothing of OpenTelemetry is imported.
        self._job_tracer = job_tracer(self.machine_name)
        self._faults = FaultReporter(self.logger, self.publish, clock)
        self._jobs = JobLedger(self.context, self.logger, self.publish, self._faults)
        #: The class's payload and job-data schemas, checked where events and jobs enter.
        self._checks = DataChecks(machine_cls)
        #: Whether the class keeps the payload of the event it fires (``machine.payload``).
        self._takes_payload = hasattr(machine_cls, "EVENT_PAYLOAD_SCHEMAS")
        self._feed = MonitorFeed(self.machine_name, self._jobs, clock)
        self._inbox = Inbox(
            self.machine,
            self.machine_name,
            self.lease_seconds,
            self.context,
            getattr(machine_cls, "EVENT_CONTEXT_MAPS", {}),
            self.logger,
            self.publish,
            self._faults,
            self._checks,
        )
        self._timers = StateTimers(
            getattr(machine_cls, "TIMEOUTS", {}), self._call_later, self._wakeups.wake.set
        )
        self._registry = RegistryWriter(
            self.machine_name, self._state_name, self._faults, self._call_later, clock
        )
        self._children = ChildProcesses()
        self._heartbeat: Heartbeat | None = None
        self._on_signal = StopSignalHandler(
            self.logger,
            lambda: self._loop,
            self.request_stop,
            jobs=self._jobs,
            inbox=self._inbox,
            feed=self._feed,
            wakeups=self._wakeups,
        )
        self._runner = ActionRunner(
            self, self.context, self._jobs, self._faults, self.logger, self.publish
        )

    # --- ActionRuntime ----------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the engine is not running")
        return self._store

    @property
    def current_job_id(self) -> str | None:
        current = self._jobs.current
        return None if current is None else current.job_id

    def publish(self, kind: str, **fields: Any) -> None:
        self._feed.publish(kind, **fields)

    def job_claimed(self, job: Job, *, current: bool) -> dict[str, Any]:
        if current and job.trace_id is not None:
            # The machine now works in the job's trace: what it adds or sends carries it.
            self.store.trace_id = job.trace_id
        return self._jobs.claimed(job, current=current)

    def queue_empty(self) -> None:
        # Idle polls are caused by no job: recorded in its trace, they filled the job's
        # trace view with "waiting --no_jobs--> waiting" every few seconds until the next.
        self.store.trace_id = None

    def refuse_invalid_job(self, job: Job) -> bool:
        problem = self._checks.job_data_error(job.job_type, job.data)
        if problem is None:
            return False
        reason = f"invalid data for job type {job.job_type!r}: {problem}"
        try:
            self.store.fail_job(job.id, reason, claim_token=job.claim_token, retry=False)
        except StoreError as error:
            # Not failed: its lease runs out, it is claimed again and refused again.
            self._faults.report("fail a job", error)
        else:
            self._faults.recovered("fail a job")
        self.logger.error("job %s refused (failed, not retried): %s", job.id, reason)
        self.publish("job_failed", job_id=job.id, reason=reason, retry=False)
        return True

    def claim_token(self, job_id: str) -> str | None:
        return self._jobs.token(job_id)

    def job_finished(self, job_id: str) -> None:
        self._jobs.forget(job_id)

    def finish_job(
        self,
        job_id: str,
        *,
        reason: str | None = None,
        retry: bool = False,
        result: Any = None,
    ) -> bool:
        return self._jobs.finish(self.store, job_id, reason=reason, retry=retry, result=result)

    async def finish_current_job(self) -> bool:
        # Asking for the next job, the machine is ready for the next event too: the held one's
        # work is finished. (Acknowledged only when it waited, an event was held through the
        # next job when one was there at once, and a stop gave it back to be run again.)
        self._inbox.done(self.store)
        return self._jobs.finish_current(self.store)

    def ensure_jobs_waker(self) -> None:
        if self._loop is not None:
            self._wakeups.listen_jobs(self._loop, self.store)

    async def wait_for_work(self, timeout: float) -> WaitResult:
        wakeups = self._wakeups
        wake = wakeups.wake
        store = self.store
        inbox = self._inbox
        inbox.done(store)  # ready for the next event: the last one's work is finished
        deadline = self._clock.monotonic() + timeout
        while True:
            wake.clear()
            if self._stopping or self._timers.has_expired or inbox.taken is not None:
                return "interrupted"
            if self._take_inbound():
                return "interrupted"
            if wakeups.jobs_rung:
                wakeups.jobs_rung = False
                return "rung"
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return "timeout"
            wakeups.rearm()
            self._registry.idle()  # about to sleep: the registry shows where it waits
            if not await wakeups.sleep(remaining):
                return "timeout"

    def track_child(self, process: Any) -> None:
        self._children.track(process)

    def report_store_error(self, what: str, error: Exception) -> None:
        self._faults.report(what, error)

    def store_recovered(self, what: str | None = None) -> None:
        """The database did ``what`` (None: anything); see :meth:`FaultReporter.recovered`."""
        self._faults.recovered(what)

    # --- running ----------------------------------------------------------------------------

    def request_stop(self, reason: str = "signal received") -> None:
        """Stop soon: cancel the action in progress and shut down cleanly."""
        if self._stopping:
            return
        self._stopping = True
        self.logger.info("stopping (%s)", reason)
        if self._flow_task is not None:
            self._flow_task.cancel()

    async def run(self, signals: StopSignals | None = None) -> int:
        """Run until a final state is reached (0) or a stop is requested (0; 1 when the
        database file was deleted or replaced). ``signals``: the process's stop signals, as
        ``smc run`` installed them at start-up (a stop requested before the engine ran is
        honoured); by default the engine handles SIGINT/SIGTERM itself while it runs."""
        loop = asyncio.get_running_loop()
        self._loop = loop
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
                if signals is not None and signals.requested and not self._on_signal.seen:
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

    def _refuse_a_namesake(self, store: Store, refused: bool = False) -> None:
        """A machine of this name that runs on another host (its heartbeat fresh) refuses
        this one. On this host its monitor socket refuses it; on PostgreSQL a second one on
        another host took over the first one's held event (``release_events``) and ran it
        alongside. A namesake killed on another host holds its name until its heartbeat is
        stale (``DEFAULT_MACHINE_STALE_AFTER``). Read first, for the message; the registration
        itself refuses too, in one statement (``refused``: it did, one having started on
        another host since the read, which may have ended again by this one)."""
        row = store.get_machine(self.machine_name)
        if row is None or row.status != "running" or row.host == socket.gethostname():
            if not refused:
                return
            raise StartupError(
                f"machine {self.machine_name!r} is already running on another host; stop it "
                "first, or give this one another --machine-name"
            )
        age = "" if row.heartbeat_age is None else f", heard from {row.heartbeat_age:.0f} s ago"
        raise StartupError(
            f"machine {self.machine_name!r} is already running (pid {row.pid} on "
            f"{row.host}{age}); stop it first, or give this one another --machine-name"
        )

    def _open(self) -> None:
        try:
            store = open_worker_store(self.database)
        except StoreError as error:
            raise StartupError(str(error)) from None
        self._store = store
        store.trace_id = self._start_trace
        store.actor = self.machine_name
        self._feed.record_to(store)
        try:
            if self._want_monitor:
                try:
                    self._feed.open(store, self._monitor_readers)
                except MonitorError as error:
                    raise StartupError(str(error)) from None
        finally:
            # The name is this machine's now (its socket listens) or it refused it: a start
            # of the same name waiting on the lock finds which.
            handle, self._start_lock = self._start_lock, None
            if handle is not None:
                let_go_of_start_lock(
                    handle,
                    start_lock_path(monitor_socket_path(monitor_dir(store), self.machine_name)),
                )
        try:
            self._refuse_a_namesake(store)
            # Registered before its predecessor's held events are released: a namesake that
            # started on another host meanwhile keeps them.
            if not self._registry.register(
                store, self.config_path, self._steps.configuration(self.machine)
            ):
                self._refuse_a_namesake(store, refused=True)
            store.release_events(self.machine_name)
            event_waker = store.open_waker([machine_channel(self.machine_name)])
        except StoreError as error:
            raise StartupError(str(error)) from None
        loop = self._loop
        assert loop is not None
        self._wakeups.listen_events(loop, event_waker)
        jobs, inbox = self._jobs, self._inbox
        self._heartbeat = Heartbeat(
            database=self.database,
            main_store=store,
            machine_name=self.machine_name,
            lease_seconds=self.lease_seconds,
            claims=lambda: jobs.snapshot,
            held_event=lambda: inbox.held,
            reap_children=self._children.reap,
            on_lease_lost=self._on_lease_lost,
            on_database_replaced=self._on_database_replaced,
            logger=self.logger,
            clock=self._clock,
            history_retention=self._history_retention,
        )
        self._heartbeat.start()
        self.logger.info(
            "started %s in state %s (pid %d, database %s)",
            self.machine_name,
            self.machine.state,
            os.getpid(),
            store.location,
        )
        self._feed.publish(
            "machine_started", to=str(self.machine.state), pid=os.getpid(), **self._configuration()
        )

    async def _flow(self) -> int:
        machine = self.machine
        initial = self._steps.initial(machine)
        self._deliver_sent()
        self._timers.step(initial.exited, initial.entered)
        self._next = initial.actions
        loop = asyncio.get_running_loop()
        next_yield = loop.time() + YIELD_INTERVAL
        while True:
            if machine.is_final:
                await self._run_actions(self._next, final=True)
                await self.finish_current_job()
                self.logger.info("reached final state %s", machine.state)
                return 0
            if await self._run_actions(self._next, final=False):
                # Actions that return at once never give the loop a turn: give it one now
                # and then (a SIGTERM would otherwise wait until the queue runs dry).
                now = loop.time()
                if now >= next_yield:
                    await asyncio.sleep(0)
                    next_yield = now + YIELD_INTERVAL
                continue
            await self._idle()

    async def _run_actions(self, actions: tuple[PreparedAction, ...], *, final: bool) -> bool:
        """Run the actions of the step last taken (a flat machine's: its state's); True when
        one of them (or an interrupt) fired a transition, which ends the list. An action that
        claimed a job whose result the machine cannot take runs again when the job is failed
        (:meth:`_refuse_claimed_job`), to take the next one."""
        for prepared in actions:
            again = True
            while again:
                held = self._jobs.current
                event = await self._runner.execute(prepared)
                if final:
                    break
                again = False
                if event is not None:
                    self._guard_failure = None
                    if self.machine.can_fire(event) and self._fire(event):
                        return True
                    again = self._refuse_claimed_job(held, event)
                    self.logger.debug(
                        "%s returned %r: no transition from %s, %s",
                        prepared.type,
                        event,
                        self.machine.state,
                        "again" if again else "next action",
                    )
                if self._stopping:
                    raise asyncio.CancelledError
                if self._take_interrupt():
                    return True
        return False

    def _refuse_claimed_job(self, held: Claim | None, event: str) -> bool:
        """The action's result ``event`` moved nothing. When the action claimed the current
        job (``check_database_queue``), the machine cannot work on it, and holding it would
        stop the worker for good (its lease renewed, nothing to move the machine on). The job
        is failed, as a failed action's job is (retried, with backoff, until its
        ``max_attempts``: a guard that raised may read what the job holds, and one that held
        for no transition may hold later), and True has the action run again, which finishes
        it and claims the next one. (Giving the job back unfailed stopped every worker in turn:
        each claimed it, gave it back and waited for good.)"""
        claim = self._jobs.current
        if claim is None or claim is held:
            return False
        state = self.machine.state
        why = self._guard_failure or "no guard holds for this job, or the state takes none"
        self._jobs.current_failed(f"{event} in {state} takes no transition: {why}")
        return True

    def _take_interrupt(self) -> bool:
        """Apply an inbound event taken while an action waited, or an expired timer."""
        inbox = self._inbox
        inbound = inbox.taken
        if inbound is not None:
            inbox.taken = None
            if self._apply_inbound(inbound):
                return True
        timers = self._timers
        while timers.has_expired:
            event = timers.take()
            if event is not None and self.machine.can_fire(event):
                # DEBUG: the transition's own line names the timer's event.
                self.logger.debug("timer %s expired in %s", event, self.machine.state)
                if self._fire(event, external=True, timer=True):
                    return True
        return False

    def _take_inbound(self) -> bool:
        """Take the next inbound event into ``inbox.taken`` (True), looking in the store only
        when one may be there (``Wakeups.events_due``); after one is taken, the next look
        comes at the next chance, since more may wait behind it."""
        wakeups = self._wakeups
        if not wakeups.events_due(self._clock.monotonic(), FALLBACK_POLL_SECONDS):
            return False
        if self._inbox.take(self.store):
            wakeups.events_rung = True
            return True
        return False

    async def _idle(self) -> None:
        """Sleep until an inbound event, a timer or a stop request moves the machine."""
        wakeups = self._wakeups
        store = self.store
        inbox = self._inbox
        inbox.done(store)  # idle: the work the last inbound event started is finished
        while True:
            if self._stopping:
                raise asyncio.CancelledError
            wakeups.wake.clear()
            if self._take_interrupt():
                return
            if self._take_inbound():
                inbound, inbox.taken = inbox.taken, None
                assert inbound is not None
                if self._apply_inbound(inbound):
                    return
                continue  # its guards held for no transition: nothing moved, wait on
            wakeups.rearm()
            self._registry.idle()  # idle: the registry shows the state it waits in
            await wakeups.sleep(FALLBACK_POLL_SECONDS)

    def _apply_inbound(self, row: EventRow) -> bool:
        if row.trace_id is not None:
            # Handling the event puts the machine in its trace (its transitions, what it sends).
            self.store.trace_id = row.trace_id
        payload = self._inbox.apply(self.store, row)
        return self._fire(
            row.event_type,
            external=True,
            payload=payload if self._takes_payload else None,
            traced=self._event_trace(row),
            source=row.source,
        )

    def _event_trace(self, row: EventRow) -> tuple[str, str] | None:
        """With tracing on: the trace an inbound event belongs to, through the job it was
        sent for (``job_id``, the sender's current job): its ``traceparent`` and id. The
        event carries no trace context of its own, so its payload stays the sender's."""
        if self._job_tracer is None or not row.job_id:
            return None
        try:
            job = self.store.get_job(row.job_id)
        except StoreError:
            return None
        parent = None if job is None else traceparent_of(job.data)
        return None if parent is None else (parent, row.job_id)

    def _fire(
        self,
        event: str,
        *,
        external: bool = False,
        payload: Any = None,
        traced: tuple[str, str] | None = None,
        timer: bool = False,
        **extra: Any,
    ) -> bool:
        """Fire ``event`` (``external``: an inbound event or a timer caused it; ``timer``: a
        timer did); False when it moved nothing: the machine accepts it, but the guards held
        for none of its transitions (or a guard failed: reported), so it is dropped as SCXML
        drops an event no transition takes.

        Logged at INFO, except the routine of every job, which is DEBUG (the monitor carries
        every transition, with its job id): self-transitions, and transitions an action's
        result causes while a job is being processed (one was current when the state was
        entered or is current now).

        The step's timers change (those of the states it left stop, those of the states it
        entered start) and its actions are what the flow runs next."""
        machine = self.machine
        steps = self._steps
        source = machine.state
        before = steps.position(machine)
        traced_job = self._jobs.current if self._job_tracer is not None else None
        if self._reads_job:
            current = self._jobs.current
            job_data = None if current is None else current.data
            cast(Any, machine).job = job_data if isinstance(job_data, Mapping) else {}
        try:
            step = steps.fire(machine, event, payload)
        except IllegalTransition:
            self.logger.info("%s in %s: no guard holds, dropped", event, source)
            self._feed.publish("event_dropped", event=str(event), state=str(source))
            return False
        except Exception as error:
            # A guard or an assignment raised (a user's method, a job without the field):
            # the event is dropped, the machine stays where it was.
            self.logger.error("%s in %s: a guard or assignment failed: %r", event, source, error)
            self._guard_failure = f"a guard or assignment failed: {type(error).__name__}: {error}"
            self.publish("error", error=f"{event} in {source}: {type(error).__name__}: {error}")
            return False
        target = machine.state
        with_job = self._jobs.current is not None
        looped = before == steps.position(machine)
        if timer and looped and not with_job:
            # A timer's loop with no job in hand is a poll, as an idle worker's no_jobs is:
            # caused by no job or event, it ends the trace the machine worked in (whose event
            # it would otherwise fill with a tick for ever).
            self.store.trace_id = None
        self._show_typed_context()
        self._deliver_sent()
        self._timers.step(step.exited, step.entered)
        self._next = step.actions
        self.context["current_state"] = str(target)
        routine = looped or (not external and (with_job or self._entered_with_job))
        self._entered_with_job = with_job
        self.logger.log(
            logging.DEBUG if routine else logging.INFO, "%s --%s--> %s", source, event, target
        )
        configuration = steps.configuration(machine)
        if configuration is not None:
            extra["configuration"] = configuration
        # Published (and staged for the history) before the registry write, which carries the
        # staged history: the registry never shows a state the history has not reached.
        self._feed.publish(
            "transition", **{"from": str(source), "event": str(event), "to": str(target)}, **extra
        )
        if self._job_tracer is not None:
            # The trace of the job being worked on, else of the job an inbound event was sent
            # for (docs/runtime.md, Tracing).
            if traced_job is not None and (parent := traceparent_of(traced_job.data)):
                traced = (parent, traced_job.job_id)
            if traced is not None:
                self._job_tracer.transition(
                    traced[0], traced[1], str(source), str(event), str(target)
                )
        self._registry.state_changed()
        return True

    def _deliver_sent(self) -> None:
        """Deliver what the step's ``send`` actions sent (the class's ``take_sent()``): to
        this machine, as an event in the event store (so it queues behind the events
        already there, SCXML's external queue), at once or after its delay. A delayed send
        lives in this process only: a stop before its time drops it."""
        take_sent = self._take_sent
        if take_sent is None:
            return
        for sent in take_sent():
            if sent.delay > 0:
                self._call_later(sent.delay, functools.partial(self._send_to_self, sent))
            else:
                self._send_to_self(sent)

    def _send_to_self(self, sent: Sent) -> None:
        what = f"send {sent.event} to itself"
        try:
            self.store.send_event(
                self.machine_name, str(sent.event), sent.payload, source=self.machine_name
            )
        except StoreError as error:
            self._faults.report(what, error)
            return
        self._faults.recovered(what)
        wakeups = self._wakeups
        wakeups.events_rung = True  # its own bell rings too, later: no need to wait for it
        wakeups.wake.set()

    def _show_typed_context(self) -> None:
        """Copy the typed context's fields (``machine.context``) into the context that
        placeholders read, after each step: ``{attempts}`` is the field's value as the
        step left it. A declared field wins over an action's key of the same name."""
        if self._typed_context:
            self.context.update(cast(Any, self.machine).context.to_dict())

    # --- wake-ups, parts' callbacks, shutdown -----------------------------------------------

    def _state_name(self) -> str:
        return str(self.machine.state)

    def _configuration(self) -> dict[str, list[str]]:
        """A statechart's monitor records carry ``configuration``: every active state,
        sorted (``to`` is only the state view). Nothing for a flat machine."""
        configuration = self._steps.configuration(self.machine)
        return {} if configuration is None else {"configuration": configuration}

    def _call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        """Run ``callback`` on the event loop in ``delay`` seconds (timers, registry writes)."""
        loop = self._loop
        assert loop is not None
        return loop.call_later(delay, callback)

    def _on_lease_lost(self, claim: Claim) -> None:
        """The heartbeat could not renew ``claim``'s lease (on its thread)."""
        loop = self._loop
        assert loop is not None
        loop.call_soon_threadsafe(self._jobs.lease_lost, claim)

    def _on_database_replaced(self, reason: str) -> None:
        """The heartbeat found the database file deleted or replaced (on its thread)."""
        self._exit_code = EXIT_DATABASE_REPLACED
        loop = self._loop
        assert loop is not None
        loop.call_soon_threadsafe(self._database_replaced, reason)

    def _database_replaced(self, reason: str) -> None:
        self.logger.error("%s while the machine ran: stopping (exit 1)", reason)
        self.publish("error", error=reason)
        self.request_stop("database file gone")

    def _shutdown(self) -> None:
        self._timers.cancel()
        heartbeat = self._heartbeat
        if heartbeat is not None:
            heartbeat.stop()
        released = None
        store = self._store
        if store is not None:
            inbox = self._inbox
            released = give_back_off_main_thread(
                store,
                machine_name=self.machine_name,
                state=str(self.machine.state),
                job=self._jobs.current,
                events=(inbox.held, inbox.taken),
                lease_seconds=self.lease_seconds,
                logger=self.logger,
                clock=self._clock,
            )
            inbox.held = inbox.taken = None
            self._jobs.current = None
        if heartbeat is not None:
            heartbeat.join(timeout=1.0)
        self._feed.publish(
            "machine_stopped",
            **{"from": str(self.machine.state)},
            job_id=released,
        )
        self._children.reap()
        self._close()
        self.logger.info("stopped in state %s", self.machine.state)

    def _close(self) -> None:
        self._feed.record_to(None)
        self._wakeups.close()
        self._feed.close()
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.close()


__all__ = [
    "EXIT_DATABASE_REPLACED",
    "EXIT_FORCED",
    "FALLBACK_POLL_SECONDS",
    "YIELD_INTERVAL",
    "Engine",
    "StartupError",
    "absolute_database",
]
