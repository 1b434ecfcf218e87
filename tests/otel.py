"""An OpenTelemetry SDK tracer provider that tests switch on and off again.

OpenTelemetry lets a process set its global tracer provider once, and a provider left set would
make every later test's jobs record spans (about 25 us a job). So the tests that need spans put
one SDK provider in place for their duration and take it away afterwards, through the global
OpenTelemetry's own test utilities reset (`trace._TRACER_PROVIDER`). It is one provider for the
whole process: a tracer fetched while it was set (actors/tracing.py caches one) stays bound to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Spans are recorded into the returned exporter (cleared) until the block ends."""
    if trace._TRACER_PROVIDER not in (None, _PROVIDER):
        pytest.skip("another tracer provider is set in this process")
    trace._TRACER_PROVIDER = _PROVIDER
    _EXPORTER.clear()
    try:
        yield _EXPORTER
    finally:
        trace._TRACER_PROVIDER = None
        _EXPORTER.clear()
