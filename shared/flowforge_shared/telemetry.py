"""OpenTelemetry: one tracer for FlowForge, and the carrier that takes a trace across a
Celery message (W3C ``traceparent`` in the task's headers), an HTTP request (the same
header, read by the API's request span) or a thread hand-off in the embedded default.

The exporter is off by default; ``FLOWFORGE_TELEMETRY_EXPORTER=console|otlp`` turns it on.
A test may install its own provider (an in-memory exporter) before anything here runs.
"""

from __future__ import annotations

from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from flowforge_shared.settings import Settings

tracer = trace.get_tracer("flowforge")
_configured = False


def setup_tracing(settings: Settings, service_name: str | None = None) -> None:
    """Install a tracer provider with the configured exporter (once per process)."""
    global _configured
    if _configured or settings.telemetry_exporter == "none":
        return
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        _configured = True  # someone (a test, an agent) installed a provider already
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(
        resource=Resource.create({"service.name": service_name or settings.service_name})
    )
    if settings.telemetry_exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = (
            OTLPSpanExporter(endpoint=settings.otlp_endpoint)
            if settings.otlp_endpoint
            else OTLPSpanExporter()
        )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True


def current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return f"{span_context.trace_id:032x}" if span_context.is_valid else None


def carrier() -> dict[str, str]:
    """The current trace context as message headers (W3C traceparent)."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextmanager
def continued(headers: dict[str, str] | None):
    """Make the trace in ``headers`` the current context for the block."""
    token = otel_context.attach(propagate.extract(headers or {}))
    try:
        yield
    finally:
        otel_context.detach(token)


def task_headers(request) -> dict[str, str]:
    """The W3C trace headers a Celery task message carried (Celery exposes custom headers on
    the request itself, or under ``request.headers`` depending on the protocol)."""
    found = {}
    for key in ("traceparent", "tracestate"):
        value = request.get(key) or (getattr(request, "headers", None) or {}).get(key)
        if value:
            found[key] = value
    return found
