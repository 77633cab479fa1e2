#!/usr/bin/env python3
"""Send traces, metrics and logs to AgentVista with the real OpenTelemetry
Python SDK and its OTLP/HTTP protobuf exporters, configured the way the
README tells users to: OTEL_EXPORTER_OTLP_ENDPOINT (the base URL) and
OTEL_EXPORTER_OTLP_HEADERS (the API key); OTEL_EXPORTER_OTLP_COMPRESSION
picks gzip or none.

With AV_EXPLICIT_ENDPOINT set, every exporter is instead built as the
contract's "OpenTelemetry SDK (Python)" page shows:
OTLPSpanExporter(endpoint=<that URL>, headers={"Authorization": "Bearer
<AV_API_KEY>"}), the metric and log exporters "with the same endpoint and
headers"; such an exporter posts to the URL verbatim.

usage: otel_python.py SERVICE_NAME
Prints one JSON line: the ids it sent. Exits 1 when any export fails.
"""
import json
import logging
import os
import sys

from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.metrics.export import MetricExportResult
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.trace import Status, StatusCode


def exporter(cls):
    """An exporter configured from the environment, or as the contract's
    page shows when AV_EXPLICIT_ENDPOINT is set."""
    explicit = os.environ.get("AV_EXPLICIT_ENDPOINT")
    if explicit:
        return cls(endpoint=explicit, headers={"Authorization": f"Bearer {os.environ['AV_API_KEY']}"})
    return cls()


def main() -> int:
    service = sys.argv[1]
    resource = Resource.create({"service.name": service, "deployment.environment": "test"})

    # Traces: an agent run with an LLM call and a failing tool call.
    spans = InMemorySpanExporter()
    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tp.get_tracer("agentvista-tests", "1.0")
    with tracer.start_as_current_span("invoke_agent planner") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("agentvista.outcome", "resolved")
        with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
            llm.set_attribute("gen_ai.operation.name", "chat")
            llm.set_attribute("gen_ai.request.model", "gpt-4o-mini")
            llm.set_attribute("gen_ai.provider.name", "openai")
            llm.set_attribute("gen_ai.usage.input_tokens", 1000)
            llm.set_attribute("gen_ai.usage.output_tokens", 200)
            llm.set_attribute("custom.flag", True)
        with tracer.start_as_current_span("execute_tool search") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "search")
            try:
                raise ValueError("search backend down")
            except ValueError as e:
                tool.record_exception(e)
                tool.set_status(Status(StatusCode.ERROR, "search backend down"))
        trace_id = format(root.get_span_context().trace_id, "032x")
        root_span_id = format(root.get_span_context().span_id, "016x")
    if exporter(OTLPSpanExporter).export(spans.get_finished_spans()) != SpanExportResult.SUCCESS:
        print("trace export failed", file=sys.stderr)
        return 1

    # Metrics: a counter and a histogram.
    reader = InMemoryMetricReader()
    mp = MeterProvider(resource=resource, metric_readers=[reader])
    meter = mp.get_meter("agentvista-tests")
    counter = meter.create_counter("agent.requests", unit="1", description="Requests handled")
    counter.add(3, {"route": "/chat"})
    counter.add(2, {"route": "/chat"})
    hist = meter.create_histogram("agent.latency", unit="ms", description="Request latency")
    for v in (5, 15, 30, 700):
        hist.record(v, {"route": "/chat"})
    if exporter(OTLPMetricExporter).export(reader.get_metrics_data()) != MetricExportResult.SUCCESS:
        print("metric export failed", file=sys.stderr)
        return 1

    # Logs: through the logging bridge, one inside the trace.
    logs = InMemoryLogExporter()
    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    logger = logging.getLogger("agentvista-tests")
    logger.propagate = False
    logger.addHandler(LoggingHandler(logger_provider=lp))
    logger.setLevel(logging.DEBUG)
    with tracer.start_as_current_span("log-holder") as holder:
        logger.error("Payment FAILED for order %s", "A-17")
        log_span_id = format(holder.get_span_context().span_id, "016x")
        log_trace_id = format(holder.get_span_context().trace_id, "032x")
    logger.info("warm-up complete")
    records = logs.get_finished_logs()
    if exporter(OTLPLogExporter).export(list(records)).name != "SUCCESS":
        print("log export failed", file=sys.stderr)
        return 1

    print(json.dumps({
        "trace_id": trace_id,
        "root_span_id": root_span_id,
        "log_trace_id": log_trace_id,
        "log_span_id": log_span_id,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
