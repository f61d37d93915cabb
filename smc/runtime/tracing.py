"""OpenTelemetry for the runtime, only when wanted and installed (the ``otel`` extra).

A worker emits a span per machine transition made while it holds a job whose data carries a
W3C ``traceparent`` (``workflow.traceparent``, put there by the workflow scheduler), as a
child of that task attempt's span: the spans of one workflow run, from the scheduler and
from every worker, form one trace. Tracing is on when ``$SMC_OTEL`` is ``1`` (or
``$SMC_OTEL_FILE`` is set) and ``opentelemetry`` can be imported; otherwise nothing here
imports it and :func:`job_tracer` returns None, so a worker pays one environment look-up.

``$SMC_OTEL_FILE``: with the SDK installed, spans are written to that file as JSON lines
(one per span: name, trace id, span id, parent span id, attributes, start and end), a
simple exporter for tests and for people without a collector. Otherwise spans go to
whatever tracer provider the process has (none set: the API's no-op).
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

_provider_lock = threading.Lock()
_configured: list[Any] = []


def enabled() -> bool:
    wanted = os.environ.get("SMC_OTEL") == "1" or bool(os.environ.get("SMC_OTEL_FILE"))
    return wanted and importlib.util.find_spec("opentelemetry") is not None


def configure_from_environment() -> Any:
    """A tracer provider writing to ``$SMC_OTEL_FILE`` (SDK installed), set as the global
    one; None when there is no file or no SDK (the global provider is then used as is)."""
    path = os.environ.get("SMC_OTEL_FILE")
    if not path or importlib.util.find_spec("opentelemetry.sdk") is None:
        return None
    with _provider_lock:
        if _configured:
            return _configured[0]
        from opentelemetry import trace
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class JsonLinesExporter(SpanExporter):
            def __init__(self, target: str) -> None:
                self._lock = threading.Lock()
                self._target = target

            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                lines = []
                for span in spans:
                    context = span.context
                    parent = span.parent
                    lines.append(
                        json.dumps(
                            {
                                "name": span.name,
                                "trace_id": f"{context.trace_id:032x}" if context else None,
                                "span_id": f"{context.span_id:016x}" if context else None,
                                "parent_span_id": (
                                    f"{parent.span_id:016x}" if parent is not None else None
                                ),
                                "attributes": dict(span.attributes or {}),
                                "start": span.start_time,
                                "end": span.end_time,
                                "pid": os.getpid(),
                            }
                        )
                    )
                with self._lock, open(self._target, "a", encoding="utf-8") as out:
                    out.write("".join(line + "\n" for line in lines))
                return SpanExportResult.SUCCESS

            def shutdown(self) -> None:
                return None

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(path)))
        trace.set_tracer_provider(provider)
        _configured.append(provider)
        return provider


def traceparent_of(job_data: Any) -> str | None:
    """The ``traceparent`` a job's data carries (``workflow.traceparent``), if any."""
    if not isinstance(job_data, Mapping):
        return None
    workflow = job_data.get("workflow")
    if not isinstance(workflow, Mapping):
        return None
    value = workflow.get("traceparent")
    return value if isinstance(value, str) and len(value) <= 128 else None


class JobTracer:
    """Spans of one worker's machine transitions under the current job's traceparent."""

    def __init__(self, machine: str) -> None:
        configure_from_environment()
        from opentelemetry import trace
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator,
        )

        self._tracer = trace.get_tracer("smc.runtime")
        self._propagator = TraceContextTextMapPropagator()
        self._machine = machine

    def transition(
        self, traceparent: str, job_id: str, source: str, event: str, target: str
    ) -> None:
        context = self._propagator.extract({"traceparent": traceparent})
        span = self._tracer.start_span(
            f"{self._machine} {source} -> {target}",
            context=context,
            attributes={
                "smc.machine": self._machine,
                "smc.job_id": job_id,
                "smc.from": source,
                "smc.event": event,
                "smc.to": target,
            },
        )
        span.end()


def job_tracer(machine: str) -> JobTracer | None:
    """A :class:`JobTracer` when tracing is on, else None (nothing imported)."""
    return JobTracer(machine) if enabled() else None
