"""The background sender against a local HTTP server: size and time
flushes, gzip, retry with Retry-After, giving up, splitting a refused
request, and the bounded queue."""

import time

import agentvista
from agentvista._transport import chunk, retry_after

from conftest import ok


def runs_sent(server):
    return [e for r in server.requests if "traces" in r for e in r["traces"]]


def test_requests_hold_at_most_100_spans_and_a_run_of_250_is_split(server):
    s = server()
    agentvista.init(api_key="av_" + "0" * 64, base_url=s.url, flush_interval=0.05)
    with agentvista.run("big") as r:
        for i in range(249):
            with agentvista.span(f"s{i}"):
                pass
    assert agentvista.flush(10)
    sizes = [sum(len(e["spans"]) for e in req["traces"]) for req in s.requests]
    assert all(n <= 100 for n in sizes) and sum(sizes) == 250, sizes
    # Every part carries the run's header.
    assert {e["trace"]["trace_id"] for e in runs_sent(s)} == {r.trace_id}
    assert s.headers[0]["content-encoding"] == "gzip"
    assert s.headers[0]["authorization"].startswith("Bearer av_")


def test_a_quiet_sender_flushes_on_its_interval(server):
    s = server()
    agentvista.init(api_key="av_x", base_url=s.url, flush_interval=0.2)
    agentvista.record("one")
    deadline = time.monotonic() + 5
    while not s.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(runs_sent(s)) == 1, "sent without an explicit flush"


def test_503_with_retry_after_is_retried_and_nothing_is_lost(server):
    def script(n):
        if n < 2:
            return 503, {"Retry-After": "1"}, b'{"detail": "The gateway is at capacity; retry shortly."}'
        return ok(n)

    s = server(script)
    agentvista.init(api_key="av_x", base_url=s.url, flush_interval=0.05)
    started = time.monotonic()
    ids = {agentvista.record(f"r{i}") for i in range(5)}
    assert agentvista.flush(20)
    assert time.monotonic() - started >= 1.9, "honoured Retry-After twice"
    assert agentvista.stats()["retries"] == 2
    delivered = [e["trace"]["trace_id"] for e in s.requests[-1]["traces"]]
    assert set(delivered) == ids
    assert agentvista.stats()["dropped_spans"] == 0


def test_retries_stop_at_the_budget_and_the_loss_is_counted(server):
    s = server(lambda n: (500, {"Retry-After": "0.2"}, b"{}"))
    agentvista.init(api_key="av_x", base_url=s.url, flush_interval=0.05, retry_budget=1.0)
    agentvista.record("doomed")
    assert agentvista.flush(10)
    st = agentvista.stats()
    assert st["dropped_runs"] == 1 and st["sent_requests"] == 0 and st["retries"] >= 3


def test_a_refused_request_is_split_to_isolate_the_bad_run(server):
    s = server()

    def refuse_bad(n):
        # The server refuses any request holding the bad run.
        body = s.requests[n]
        if any(e["trace"]["agent"] == "bad" for e in body.get("traces", [])):
            return 400, {}, b'{"detail": "traces[0].trace.agent: bad"}'
        return ok(n)

    s.script = refuse_bad
    agentvista.init(api_key="av_x", base_url=s.url, flush_interval=0.5)
    for name in ["a", "b", "bad", "c"]:
        agentvista.record(name)
    assert agentvista.flush(10)
    accepted = set()
    for i, req in enumerate(s.requests):
        if refuse_bad(i)[0] == 200:
            accepted |= {e["trace"]["agent"] for e in req["traces"]}
    assert accepted == {"a", "b", "c"}
    assert agentvista.stats()["dropped_runs"] == 1


def test_the_queue_is_bounded_and_counts_what_it_drops(server):
    import threading

    release = threading.Event()

    def slow(n):
        release.wait(10)
        return ok(n)

    s = server(slow)
    agentvista.init(api_key="av_x", base_url=s.url, flush_interval=0.01, max_queue_spans=10)
    for i in range(40):
        agentvista.record(f"r{i}")
    st = agentvista.stats()
    assert st["dropped_runs"] >= 20, st
    release.set()
    assert agentvista.flush(10)


def test_network_errors_are_retried(server):
    agentvista.init(api_key="av_x", base_url="http://127.0.0.1:9/api/v1", flush_interval=0.01, retry_budget=0.5)
    agentvista.record("unreachable")
    assert agentvista.flush(10)
    assert agentvista.stats()["dropped_runs"] == 1


def test_chunking_and_retry_after_parsing():
    entries = [{"trace_id": str(i), "spans": [{}] * n} for i, n in enumerate([60, 60, 0, 130])]
    requests = chunk(entries)
    assert all(sum(len(e["spans"]) for e in r) <= 100 for r in requests)
    assert sum(len(e["spans"]) for r in requests for e in r) == 250
    for r in requests:
        ids = [e["trace_id"] for e in r]
        assert len(ids) == len(set(ids)), "a trace once per request"
    assert retry_after("3", 0) == 3.0
    assert retry_after(None, 0) is None
    assert retry_after("garbage", 0) is None
    assert 0 <= retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480.0) <= 1
