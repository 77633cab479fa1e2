"""SDK overhead and send rate, measured in process.

    python sdk/python/bench/bench_sdk.py [--base-url URL --api-key KEY]

Prints p50/p99 of, per call: a plain function call (the baseline), a
function under ``@trace_agent``, ``span()`` open and close inside a run,
and ``record()``; then how many spans per second one process sends. By
default the sender talks to a local stub server that accepts every
request (so the SDK, not a server, is measured); give ``--base-url`` and
``--api-key`` to send to a real gateway (e.g. the one ``scripts/up``
starts: http://127.0.0.1:8080/api/v1).
"""

from __future__ import annotations

import argparse
import atexit
import gc
import subprocess
import sys
import gzip
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List

import agentvista


def stub_server() -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per answer (headers and body), as a real server does:
        # unbuffered, Nagle and delayed ACKs would stall each answer 40 ms.
        wbufsize = 1 << 16

        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            n = sum(len(e["spans"]) for e in json.loads(body)["traces"])
            reply = json.dumps({"accepted_traces": 1, "accepted_spans": n}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(httpd.server_address[1], flush=True)
    httpd.serve_forever()


def start_stub() -> str:
    """The stub in a process of its own, so that it does not share the
    measured process's interpreter lock."""
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    atexit.register(proc.terminate)
    port = int(proc.stdout.readline())
    return f"http://127.0.0.1:{port}/api/v1"


def timed(label: str, fn: Callable[[], object], n: int, baseline: List[float]) -> None:
    for _ in range(min(n, 1000)):
        fn()
    samples = []
    gc.disable()
    try:
        for _ in range(n):
            t = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - t)
    finally:
        gc.enable()
    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    if not baseline:
        baseline.append(p50)
    print(f"  {label:<44} {p50:>8.2f} {p99:>8.2f} {p50 / baseline[0]:>8.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url")
    ap.add_argument("--api-key", default="av_" + "0" * 64)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--send-spans", type=int, default=200_000)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        stub_server()
        return
    base = args.base_url or start_stub()
    agentvista.init(api_key=args.api_key, base_url=base, max_queue_spans=1_000_000)

    def plain() -> int:
        return 1

    traced = agentvista.trace_agent("bench-agent")(plain)

    print(f"per call, {args.calls} calls each (µs):")
    print(f"  {'':<44} {'p50':>8} {'p99':>8} {'p50/base':>9}")
    baseline: List[float] = []
    timed("baseline: a plain function call", plain, args.calls, baseline)
    timed("@trace_agent function (a whole run)", traced, args.calls, baseline)
    with agentvista.run("bench-spans"):

        def one_span() -> None:
            with agentvista.span("step", span_type="tool"):
                pass

        timed("span() open + close inside a run", one_span, min(args.calls, 8_000), baseline)

    def rec() -> None:
        agentvista.record("bench-record", model="gpt-4o", input_tokens=10, output_tokens=2, success=True)

    timed("record()", rec, args.calls, baseline)
    agentvista.flush(120)

    # Send rate: runs of 10 spans, as fast as one thread makes them.
    before = agentvista.stats()["sent_spans"]
    runs = args.send_spans // 10
    t = time.perf_counter()
    for _ in range(runs):
        with agentvista.run("bench-rate"):
            for _ in range(9):
                with agentvista.span("s"):
                    pass
    made = time.perf_counter() - t
    ok = agentvista.flush(300)
    total = time.perf_counter() - t
    sent = agentvista.stats()["sent_spans"] - before
    print(
        f"\nsend rate: {sent} spans ({runs} runs of 10) made in {made:.2f} s and sent in {total:.2f} s: "
        f"{sent / total:,.0f} spans/s end to end ({'all sent' if ok else 'flush timed out'}); "
        f"dropped {agentvista.stats()['dropped_spans']}"
    )
    agentvista.shutdown(10)


if __name__ == "__main__":
    main()
