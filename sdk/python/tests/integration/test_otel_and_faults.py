"""A mixed SDK + OpenTelemetry program forms one trace; faults: a gateway
answering 503 for 20 s loses nothing; a process that exits right after a
run still stores it."""

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import agentvista


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def otel_tracer():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=os.environ["AV_INGEST_URL"].rstrip("/") + "/v1/traces",
        headers={"Authorization": f"Bearer {os.environ['AGENTVISTA_API_KEY']}"},
    )
    provider = TracerProvider(resource=Resource.create({"service.name": unique("otel-svc")}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("instrumentation"), provider


def test_sdk_runs_and_opentelemetry_spans_form_one_trace(api):
    tracer, provider = otel_tracer()
    agent = unique("mixed-agent")
    # OpenTelemetry spans created inside an SDK span (as an OpenAI or HTTP
    # instrumentation would) are its children in the same trace.
    with agentvista.run(agent) as r:
        with agentvista.span("plan", span_type="llm"):
            with tracer.start_as_current_span("chat gpt-4o") as llm:
                llm.set_attribute("gen_ai.operation.name", "chat")
                llm.set_attribute("gen_ai.request.model", "gpt-4o")
    # An SDK run started inside an OpenTelemetry span joins its trace.
    with tracer.start_as_current_span("http request") as outer:
        with agentvista.run(unique("inner-agent")) as inner:
            pass
        outer_ids = (format(outer.get_span_context().trace_id, "032x"), format(outer.get_span_context().span_id, "016x"))
    provider.force_flush()
    assert agentvista.flush(30)

    trace = api.trace(r.trace_id, 3)
    spans = {s["name"]: s for s in trace["spans"]}
    assert spans["chat gpt-4o"]["source"] == "otlp"
    assert spans["chat gpt-4o"]["parent_span_id"] == spans["plan"]["span_id"]
    assert spans["chat gpt-4o"]["type"] == "llm"
    assert spans["plan"]["parent_span_id"] == spans[agent]["span_id"]

    assert inner.trace_id == str(uuid.UUID(outer_ids[0]))
    joined = api.trace(inner.trace_id, 2)
    by_name = {s["name"]: s for s in joined["spans"]}
    assert by_name[inner.agent_name]["parent_span_id"].endswith(outer_ids[1][4:])


class FlakyProxy:
    """Answers 503 (with Retry-After) for `outage` seconds, then forwards to
    the real gateway."""

    def __init__(self, target: str, outage: float) -> None:
        self.until = time.monotonic() + outage
        self.refused = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if time.monotonic() < proxy.until:
                    proxy.refused += 1
                    reply, status, headers = b'{"detail": "The gateway is at capacity; retry shortly."}', 503, {"Retry-After": "2"}
                else:
                    req = urllib.request.Request(target.rstrip("/") + self.path.replace("/proxy", "", 1), data=body, method="POST")
                    for k in ("Authorization", "Content-Type", "Content-Encoding"):
                        if self.headers.get(k):
                            req.add_header(k, self.headers[k])
                    try:
                        with urllib.request.urlopen(req, timeout=30) as r:
                            reply, status, headers = r.read(), r.status, {}
                    except urllib.error.HTTPError as e:
                        reply, status, headers = e.read(), e.code, {}
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/proxy"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_a_20_second_503_storm_loses_nothing(api):
    proxy = FlakyProxy(os.environ["AV_GATEWAY_URL"], outage=20)
    agentvista.init(base_url=proxy.url + "/api/v1", flush_interval=0.1)
    agent = unique("storm")
    ids = []
    for i in range(30):
        with agentvista.run(agent) as r:
            with agentvista.span(f"step-{i}"):
                pass
        ids.append(r.trace_id)
    assert agentvista.flush(90), "sent once the storm ended"
    assert proxy.refused >= 5
    stats = agentvista.stats()
    assert stats["dropped_spans"] == 0 and stats["retries"] >= 5, stats
    for trace_id in ids:
        assert api.trace(trace_id, 2)["trace"]["agent_name"] == agent


def test_a_process_exiting_right_after_a_run_stores_it(api):
    agent = unique("short-lived")
    program = (
        "import agentvista\n"
        "agentvista.init()\n"
        f"with agentvista.run({agent!r}) as r:\n"
        "    with agentvista.span('only step'):\n"
        "        pass\n"
        "print(r.trace_id)\n"
    )
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60, env=os.environ)
    assert out.returncode == 0, out.stderr
    trace = api.trace(out.stdout.strip(), 2)
    assert trace["trace"]["agent_name"] == agent
