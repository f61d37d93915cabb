"""OpenTelemetry spans of a workflow run, only when wanted and installed.

The run's trace id *is* its ULID trace id (a ULID is 128 bits, a trace id too), so every
span of a run — from the first scheduler, a restarted one, and every worker — lands in one
trace without any of them having to hand the others a parent span: the scheduler's spans
hang under a remote parent whose span id is derived from the run id, and each task
attempt's span context travels to the worker in the job's data as a W3C ``traceparent``
(``workflow.traceparent``), under which the worker's runtime emits a span per machine
transition (``smc.runtime.tracing``).

Without the ``otel`` extra nothing here imports ``opentelemetry``: :func:`make_tracer`
returns :class:`NoTracer`, whose methods do nothing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import secrets
from typing import Any, Protocol


class TaskTracer(Protocol):
    def start_attempt(self, task: str, attempt: int, job_id: str) -> str | None:
        """Open the span of one attempt; the ``traceparent`` the job carries (None: no
        tracing)."""
        ...

    def transition(self, task: str, source: str, event: str, target: str, attempt: int) -> None:
        """Record a contract transition of ``task`` (an event on its attempt's span, or a
        span of its own when no attempt is open)."""
        ...

    def end_attempt(self, task: str, state: str, error: str | None = None) -> None: ...

    def close(self) -> None: ...


class NoTracer:
    """Tracing off: nothing imported, nothing recorded."""

    def start_attempt(self, task: str, attempt: int, job_id: str) -> str | None:
        return None

    def transition(self, task: str, source: str, event: str, target: str, attempt: int) -> None:
        return None

    def end_attempt(self, task: str, state: str, error: str | None = None) -> None:
        return None

    def close(self) -> None:
        return None


def otel_available() -> bool:
    return importlib.util.find_spec("opentelemetry") is not None


def traceparent(trace_id: int, span_id: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-01"


def run_span_id(run_id: str) -> int:
    """The span id every scheduler of ``run_id`` hangs its spans under (never 0)."""
    digest = hashlib.sha256(run_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") or 1


class OtelTracer:
    """Spans through ``opentelemetry-api`` (whatever tracer provider the process set up)."""

    def __init__(self, workflow: str, run_id: str, trace_id: int, provider: Any = None) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

        self._trace = trace
        self._tracer = (provider or trace.get_tracer_provider()).get_tracer("smc.workflow")
        self._run_id = run_id
        self._workflow = workflow
        parent = SpanContext(
            trace_id=trace_id,
            span_id=run_span_id(run_id),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        self._context = trace.set_span_in_context(NonRecordingSpan(parent))
        self._spans: dict[str, Any] = {}

    def start_attempt(self, task: str, attempt: int, job_id: str) -> str | None:
        span = self._tracer.start_span(
            f"task {task}",
            context=self._context,
            attributes={
                "smc.workflow": self._workflow,
                "smc.run_id": self._run_id,
                "smc.task": task,
                "smc.attempt": attempt,
                "smc.job_id": job_id,
            },
        )
        self._spans[task] = span
        context = span.get_span_context()
        return traceparent(context.trace_id, context.span_id)

    def transition(self, task: str, source: str, event: str, target: str, attempt: int) -> None:
        attributes = {"smc.from": source, "smc.event": event, "smc.to": target}
        span = self._spans.get(task)
        if span is not None:
            span.add_event(f"{source} -> {target}", attributes=attributes)
            return
        with self._tracer.start_as_current_span(
            f"task {task} {source} -> {target}",
            context=self._context,
            attributes={**attributes, "smc.task": task, "smc.attempt": attempt},
        ):
            pass

    def end_attempt(self, task: str, state: str, error: str | None = None) -> None:
        span = self._spans.pop(task, None)
        if span is None:
            return
        span.set_attribute("smc.state", state)
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, error))
        span.end()

    def close(self) -> None:
        for task in list(self._spans):
            self.end_attempt(task, "INTERRUPTED")


def make_tracer(
    enabled: bool, workflow: str, run_id: str, trace_id: int, provider: Any = None
) -> TaskTracer:
    if not enabled or not otel_available():
        return NoTracer()
    return OtelTracer(workflow, run_id, trace_id, provider)


def new_span_id() -> int:
    return secrets.randbits(64) or 1
