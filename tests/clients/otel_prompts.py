#!/usr/bin/env python3
"""Send agent runs whose LLM spans name the prompt version they used, with
the real OpenTelemetry Python SDK and its OTLP/HTTP protobuf exporter
(configured by OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_HEADERS).

usage: otel_prompts.py SERVICE_NAME PROMPT_NAME
Sends four runs: two whose chat span carries agentvista.prompt.name and
agentvista.prompt.version = 1 (one successful, one not), one that uses
Langfuse's langfuse.prompt.name / langfuse.prompt.version = 2 (an integer
attribute), and one without a prompt. Prints one JSON line: the runs'
trace ids (32 hex) under "v1", "v2" and "none". Exits 1 when the export
fails.
"""
import json
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def main() -> int:
    service, prompt = sys.argv[1], sys.argv[2]
    spans = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": service}))
    tp.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tp.get_tracer("agentvista-prompt-tests", "1.0")

    def run(success, outcome, prompt_attrs):
        with tracer.start_as_current_span("invoke_agent classifier") as root:
            root.set_attribute("gen_ai.operation.name", "invoke_agent")
            root.set_attribute("agentvista.success", success)
            root.set_attribute("agentvista.outcome", outcome)
            with tracer.start_as_current_span("chat gpt-4o-mini") as llm:
                llm.set_attribute("gen_ai.operation.name", "chat")
                llm.set_attribute("gen_ai.request.model", "gpt-4o-mini")
                llm.set_attribute("gen_ai.usage.input_tokens", 100)
                llm.set_attribute("gen_ai.usage.output_tokens", 20)
                for k, v in prompt_attrs.items():
                    llm.set_attribute(k, v)
            return format(root.get_span_context().trace_id, "032x")

    ours = {"agentvista.prompt.name": prompt, "agentvista.prompt.version": 1}
    v1 = [run(True, "resolved", ours), run(False, "escalated", ours)]
    v2 = [run(True, "resolved", {"langfuse.prompt.name": prompt, "langfuse.prompt.version": 2})]
    none = [run(True, "resolved", {})]
    if OTLPSpanExporter().export(spans.get_finished_spans()) != SpanExportResult.SUCCESS:
        print("trace export failed", file=sys.stderr)
        return 1
    print(json.dumps({"v1": v1, "v2": v2, "none": none}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
