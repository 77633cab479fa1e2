"""Runs, spans and their nesting: decorator forms, context managers,
threads, asyncio tasks, generators, failures, the manual record."""

import asyncio
import concurrent.futures
import threading

import pytest

import agentvista


def by_name(sent):
    return {s["name"]: s for s in sent.spans()}


def test_the_decorator_names_the_agent_after_the_function_and_keeps_its_contract(sent):
    @agentvista.trace_agent
    def qualify_lead(lead: dict) -> dict:
        """Doc kept."""
        with agentvista.span("fetch-crm-data", span_type="tool"):
            pass
        with agentvista.span("score-lead", span_type="llm") as s:
            s.set_model("gpt-4o").set_tokens(input=800, output=120).set_cost("0.0032")
        return {"score": lead["id"] * 2}

    assert qualify_lead({"id": 21}) == {"score": 42}
    assert qualify_lead.__name__ == "qualify_lead" and qualify_lead.__doc__ == "Doc kept."
    (entry,) = sent.entries
    assert entry["trace"]["agent"] == "qualify_lead"
    assert entry["trace"]["status"] == "completed"
    spans = by_name(sent)
    root = spans["qualify_lead"]
    assert root["type"] == "agent" and "parent_span_id" not in root
    for child in ("fetch-crm-data", "score-lead"):
        assert spans[child]["parent_span_id"] == root["span_id"]
        assert spans[child]["trace_id"] == entry["trace"]["trace_id"]
    llm = spans["score-lead"]
    assert (llm["type"], llm["model"], llm["input_tokens"], llm["output_tokens"]) == ("llm", "gpt-4o", 800, 120)
    assert llm["cost_usd"] == "0.003200000"


def test_named_decorators_and_an_exception_fails_the_run_and_propagates(sent):
    @agentvista.trace_agent("lead-qualifier")
    def a():
        return 1

    @agentvista.trace_agent(name="other")
    def b():
        raise ValueError("CRM timed out")

    assert a() == 1
    with pytest.raises(ValueError, match="CRM timed out"):
        b()
    runs = {e["trace"]["agent"]: e for e in sent.entries}
    assert runs["lead-qualifier"]["trace"]["status"] == "completed"
    failed = runs["other"]
    assert failed["trace"]["status"] == "failed"
    assert failed["spans"][0]["error"] == "ValueError: CRM timed out"


def test_async_functions_and_tasks_keep_their_run(sent):
    @agentvista.trace_agent("async-bot")
    async def agent():
        async def step(i):
            await asyncio.sleep(0.01 * (3 - i))
            with agentvista.span(f"step-{i}"):
                await asyncio.sleep(0)

        with agentvista.span("fan-out"):
            await asyncio.gather(*(step(i) for i in range(3)))
        return "done"

    async def main():
        # Two runs at once in one loop stay apart.
        return await asyncio.gather(agent(), agent())

    assert asyncio.run(main()) == ["done", "done"]
    assert len(sent.entries) == 2
    for entry in sent.entries:
        names = {s["span_id"]: s for s in entry["spans"]}
        fan = [s for s in entry["spans"] if s["name"] == "fan-out"][0]
        steps = [s for s in entry["spans"] if s["name"].startswith("step-")]
        assert len(steps) == 3
        assert all(s["parent_span_id"] == fan["span_id"] for s in steps)
        assert all(s["trace_id"] == entry["trace"]["trace_id"] for s in entry["spans"])
        assert len(names) == 5


def test_threads_and_pools_started_inside_a_run_keep_their_parent(sent):
    results = []

    def work(i):
        with agentvista.span(f"thread-{i}", span_type="tool") as s:
            results.append(s.run.trace_id)

    with agentvista.run("threaded") as r:
        with agentvista.span("parallel") as p:
            t = threading.Thread(target=work, args=(0,))
            t.start()
            t.join()
            with concurrent.futures.ThreadPoolExecutor(2) as pool:
                list(pool.map(work, [1, 2]))
    assert results == [r.trace_id] * 3
    spans = by_name(sent)
    for i in range(3):
        assert spans[f"thread-{i}"]["parent_span_id"] == spans["parallel"]["span_id"]
    # A pool task submitted outside any run is outside it.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(agentvista.current_run).result() is None


def test_generators_are_traced_across_their_items_without_leaking(sent):
    @agentvista.trace_agent("streamer")
    def stream(n):
        for i in range(n):
            with agentvista.span(f"chunk-{i}"):
                pass
            yield i
        return "end"

    got = []
    for item in stream(3):
        assert agentvista.current_run() is None, "the run must not leak to the consumer"
        got.append(item)
    assert got == [0, 1, 2]
    (entry,) = sent.entries
    assert entry["trace"]["agent"] == "streamer"
    root = [s for s in entry["spans"] if s["name"] == "streamer"][0]
    chunks = [s for s in entry["spans"] if s["name"].startswith("chunk-")]
    assert len(chunks) == 3 and all(c["parent_span_id"] == root["span_id"] for c in chunks)

    @agentvista.trace_agent("broken-stream")
    def broken():
        yield 1
        raise RuntimeError("stream broke")

    with pytest.raises(RuntimeError):
        list(broken())
    assert sent.entries[-1]["trace"]["status"] == "failed"


def test_async_generators_are_traced(sent):
    @agentvista.trace_agent("async-streamer")
    async def stream():
        for i in range(2):
            with agentvista.span(f"part-{i}"):
                await asyncio.sleep(0)
            yield i

    async def consume():
        out = []
        async for x in stream():
            assert agentvista.current_run() is None
            out.append(x)
        return out

    assert asyncio.run(consume()) == [0, 1]
    (entry,) = sent.entries
    root = [s for s in entry["spans"] if s["name"] == "async-streamer"][0]
    parts = [s for s in entry["spans"] if s["name"].startswith("part-")]
    assert len(parts) == 2 and all(p["parent_span_id"] == root["span_id"] for p in parts)


def test_the_context_manager_sets_the_outcome_and_async_with_works(sent):
    with agentvista.run("support-bot") as r:
        r.set_outcome(success=False, outcome="escalated")
    with agentvista.run("support-bot") as r2:
        r2.set_outcome(success=True)

    async def main():
        async with agentvista.run("async-support") as r3:
            r3.set_outcome(success=True, outcome="resolved")
        return r3

    r3 = asyncio.run(main())
    headers = {e["trace"]["trace_id"]: e["trace"] for e in sent.entries}
    assert (headers[r.trace_id]["success"], headers[r.trace_id]["outcome"]) == (False, "escalated")
    assert headers[r2.trace_id]["success"] is True and "outcome" not in headers[r2.trace_id]
    assert headers[r3.trace_id]["agent"] == "async-support"


def test_a_run_inside_a_run_is_an_agent_span_of_it(sent):
    @agentvista.trace_agent("sub-agent")
    def sub():
        with agentvista.span("inner"):
            pass

    with agentvista.run("orchestrator") as r:
        sub()
    (entry,) = sent.entries
    spans = {s["name"]: s for s in entry["spans"]}
    assert spans["sub-agent"]["type"] == "agent"
    assert spans["sub-agent"]["parent_span_id"] == spans["orchestrator"]["span_id"]
    assert spans["inner"]["parent_span_id"] == spans["sub-agent"]["span_id"]
    assert entry["trace"]["trace_id"] == r.trace_id


def test_span_is_a_noop_outside_a_run_and_before_init():
    with agentvista.span("nothing", span_type="llm") as s:
        s.set_model("gpt-4o").set_tokens(input=1).set_cost(1)
    assert agentvista.current_span() is None


def test_record_is_a_single_span_run(sent):
    trace_id = agentvista.record(
        "classifier",
        input="Is this a lead?",
        output={"label": "qualified"},
        model="gpt-4o",
        input_tokens=50,
        output_tokens=5,
        cost_usd=0.0001,
        duration_ms=250,
        success=True,
        outcome="qualified",
    )
    (entry,) = sent.entries
    assert entry["trace"]["trace_id"] == trace_id
    assert (entry["trace"]["success"], entry["trace"]["outcome"]) == (True, "qualified")
    (span,) = entry["spans"]
    assert span["type"] == "llm" and span["output"] == {"label": "qualified"}
    assert span["cost_usd"] == "0.000100000"
    assert span["started_at"] < span["ended_at"]


def test_internal_errors_never_reach_the_host(sent, caplog):
    class Weird:
        def __str__(self):
            raise RuntimeError("no str")

    with agentvista.run("robust") as r:
        with agentvista.span("s") as s:
            s.set_cost("not a number")
            s.set_attribute("odd", Weird())
        r.set_metadata("odd", Weird())
    assert agentvista.record("x", cost_usd=float("nan")) is not None
