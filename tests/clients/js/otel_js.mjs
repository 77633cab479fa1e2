// Send traces, metrics and logs to AgentVista with the real OpenTelemetry
// JavaScript SDK and its OTLP/HTTP JSON exporters, configured the way the
// README tells users to: OTEL_EXPORTER_OTLP_ENDPOINT and
// OTEL_EXPORTER_OTLP_HEADERS.
//
// usage: node otel_js.mjs SERVICE_NAME
// Prints one JSON line with the ids it sent; exits 1 when an export fails.
import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';

const service = process.argv[2];
const resource = resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'test' });

function exportWith(exporter, items) {
  return new Promise((resolve) => exporter.export(items, (result) => resolve(result)));
}

function fail(what, result) {
  console.error(`${what} export failed: ${JSON.stringify(result)} ${result.error ?? ''}`);
  process.exit(1);
}

// Traces: an agent run with an LLM call and a failing tool call.
const spans = new InMemorySpanExporter();
const tp = new BasicTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(spans)] });
const tracer = tp.getTracer('agentvista-tests-js', '2.0');
const root = tracer.startSpan('invoke_agent planner', { attributes: { 'gen_ai.operation.name': 'invoke_agent' } });
const parent = trace.setSpan(ROOT_CONTEXT, root);
const llm = tracer.startSpan('chat claude', {
  attributes: {
    'gen_ai.operation.name': 'chat',
    'gen_ai.request.model': 'claude-3-5-sonnet-20241022',
    'gen_ai.system': 'anthropic',
    'gen_ai.usage.prompt_tokens': 2000,
    'gen_ai.usage.completion_tokens': 100,
    'gen_ai.usage.cost': '0.123456',
  },
}, parent);
llm.end();
const tool = tracer.startSpan('execute_tool fetch', { attributes: { 'gen_ai.operation.name': 'execute_tool' } }, parent);
tool.recordException(new Error('fetch timed out'));
tool.setStatus({ code: SpanStatusCode.ERROR, message: 'fetch timed out' });
tool.end();
root.end();
let result = await exportWith(new OTLPTraceExporter(), spans.getFinishedSpans());
if (result.code !== 0) fail('trace', result);

// Metrics: a counter and a histogram, collected once and exported.
class OnceReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}
const reader = new OnceReader();
const mp = new MeterProvider({ resource, readers: [reader] });
const meter = mp.getMeter('agentvista-tests-js');
const counter = meter.createCounter('js.requests', { unit: '1', description: 'Requests handled' });
counter.add(4, { route: '/js' });
counter.add(3, { route: '/js' });
const hist = meter.createHistogram('js.latency', { unit: 'ms' });
for (const v of [1, 2, 300]) hist.record(v, { route: '/js' });
const { resourceMetrics } = await reader.collect();
result = await exportWith(new OTLPMetricExporter(), resourceMetrics);
if (result.code !== 0) fail('metric', result);

// Logs: one inside the trace.
const logs = new InMemoryLogRecordExporter();
const lp = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: logs })] });
const logger = lp.getLogger('agentvista-tests-js');
logger.emit({
  severityNumber: SeverityNumber.WARN,
  severityText: 'WARN',
  body: 'Disk almost FULL on node-3',
  attributes: { node: 'node-3' },
  context: parent,
});
logger.emit({ severityNumber: SeverityNumber.FATAL, body: { event: 'crash', code: 42 } });
result = await exportWith(new OTLPLogExporter(), logs.getFinishedLogRecords());
if (result.code !== 0) fail('log', result);

const ctx = root.spanContext();
console.log(JSON.stringify({ trace_id: ctx.traceId, root_span_id: ctx.spanId }));
