"""The inbound events of a running machine: taken one at a time, held while handled.

An event is claimed from the store only while the machine is ready for it; one with no
transition in the current state is logged, published as ``unhandled_event`` and acknowledged
(dropped); one whose payload does not match the event's schema (the class's
``EVENT_PAYLOAD_SCHEMAS``) is dead-lettered with the schema's message, logged, published as
``invalid_event`` and never applied, and the next one is taken. The one the machine acts on
is *taken*, then *held* once applied: it is acknowledged only when the work it started is
finished (the machine is ready for the next one); until then the heartbeat renews its lease
and a stop gives it back (``docs/runtime.md``, "When is an event done?").
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from smc.machine import GeneratedMachine
from smc.runtime.context import MISSING, lookup
from smc.runtime.faults import FaultReporter
from smc.runtime.store import EventRow, Store, StoreError
from smc.runtime.validation import DataChecks


@contextlib.contextmanager
def _in_trace_of(store: Store, row: EventRow) -> Iterator[None]:
    """What is recorded of an event the machine does not take up (dropped, refused) is in the
    event's trace; the machine stays in its own."""
    kept = store.trace_id
    if row.trace_id is not None:
        store.trace_id = row.trace_id
    try:
        yield
    finally:
        store.trace_id = kept


class Inbox:
    """``taken``: an event claimed with a transition in the current state, not yet applied;
    ``held``: the event being handled (applied, not yet acknowledged)."""

    def __init__(
        self,
        machine: GeneratedMachine,
        machine_name: str,
        lease_seconds: float,
        context: dict[str, Any],
        context_maps: Mapping[Any, Mapping[str, str]],
        logger: logging.Logger,
        publish: Callable[..., None],
        faults: FaultReporter,
        checks: DataChecks | None = None,
    ) -> None:
        """``context_maps``: the machine class's ``EVENT_CONTEXT_MAPS``; ``checks``: its
        payload schemas (None: none)."""
        self._machine = machine
        self._machine_name = machine_name
        self._lease_seconds = lease_seconds
        self._context = context
        self._context_maps = context_maps
        self._logger = logger
        self._publish = publish
        self._faults = faults
        self._checks = checks
        self.taken: EventRow | None = None
        self.held: EventRow | None = None
        #: The context keys an event's ``context_map`` set, each with the value it hid
        #: (``MISSING``: none), given back when a later event's map finds no value for it.
        self._hidden: dict[str, Any] = {}

    def take(self, store: Store) -> bool:
        """Claim inbound events until one has a transition here (kept in ``taken``; True) or
        none is left (False). Events without a transition are logged and dropped."""
        if not self.done(store):
            return False  # the last one is not acknowledged yet: no next one before it
        machine = self._machine
        while True:
            try:
                rows = store.claim_events(self._machine_name, 1, self._lease_seconds)
            except StoreError as error:
                self._faults.report("read events", error)
                return False
            self._faults.recovered("read events")
            if not rows:
                return False
            row = rows[0]
            if machine.can_fire(row.event_type):
                problem = self._payload_problem(row)
                if problem is None:
                    self.taken = row
                    return True
                with _in_trace_of(store, row):
                    refused = self._refuse(store, row, problem)
                if not refused:
                    return False
                continue
            self._logger.warning(
                "event %r from %s has no transition in state %s: dropped",
                row.event_type,
                row.source or "(no source)",
                machine.state,
            )
            with _in_trace_of(store, row):
                self._publish(
                    "unhandled_event",
                    event=row.event_type,
                    **{"from": str(machine.state)},
                    source=row.source,
                )
            self._ack(store, row)

    def _payload_problem(self, row: EventRow) -> str | None:
        """Why ``row``'s payload does not match its event's schema, or None."""
        checks = self._checks
        if checks is None:
            return None
        try:
            payload: Any = row.payload
        except ValueError:  # the store dead-letters undecodable payloads before this
            payload = row.payload_json
        return checks.payload_error(row.event_type, payload)

    def _refuse(self, store: Store, row: EventRow, problem: str) -> bool:
        """Dead-letter ``row`` (its payload is invalid): it is never applied nor delivered
        again. False when the database refused (its lease runs out and it comes back, to be
        refused again)."""
        reason = f"invalid payload for event {row.event_type!r}: {problem}"
        try:
            store.dead_letter_event(row.id, row.claim_token or "", reason)
        except StoreError as error:
            self._faults.report("dead-letter an event", error)
            return False
        self._faults.recovered("dead-letter an event")
        self._logger.error(
            "event %r from %s refused (dead-lettered): %s",
            row.event_type,
            row.source or "(no source)",
            reason,
        )
        self._publish(
            "invalid_event",
            event=row.event_type,
            **{"from": str(self._machine.state)},
            source=row.source,
            reason=reason,
        )
        return True

    def apply(self, store: Store, row: EventRow) -> Any:
        """Put ``row`` into the context (``event_data``, ``payload``, its context map) and hold
        it; the caller fires its transition. Returns the payload (decoded)."""
        try:
            payload: Any = row.payload
        except ValueError:
            payload = row.payload_json
        context = self._context
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
            hidden = self._hidden
            if value is not MISSING:
                if key not in hidden:
                    hidden[key] = context.get(key, MISSING)
                context[key] = value
            elif key in hidden:
                # Not in this event: the value an earlier event's map put there is not this
                # event's (its `who` was the last sender's name). What it hid comes back (an
                # --initial-context default), or the key goes.
                previous = hidden.pop(key)
                if previous is MISSING:
                    context.pop(key, None)
                else:
                    context[key] = previous
        self._logger.debug("event %s from %s", row.event_type, row.source or "(no source)")
        self.done(store)
        # Held, not acknowledged: an event is done only once the work it starts is finished
        # (docs/queue.md, "Events between machines"); a stop gives it back, a crash lets its
        # lease expire, and either way it is delivered again.
        self.held = row
        return payload

    def done(self, store: Store) -> bool:
        """Acknowledge the event being handled, if any: the machine is ready for the next one.
        False when the database refused (it stays held, its lease renewed, and is acknowledged
        at the next chance)."""
        row = self.held
        if row is None:
            return True
        if not self._ack(store, row):
            return False
        self.held = None
        return True

    def _ack(self, store: Store, row: EventRow) -> bool:
        try:
            store.ack_event(row.id, row.claim_token or "")
        except StoreError as error:
            self._faults.report("acknowledge an event", error)
            return False
        self._faults.recovered("acknowledge an event")
        return True


__all__ = ["Inbox"]
