"""Each snippet of the contract's SDK pages (sdk-tracing.md,
concepts-outcomes.md, concepts-agents-and-runs.md, sdk-opentelemetry.md),
as a user would paste it, produces the documented trace, read back through
the API."""

import uuid

import pytest

import agentvista


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def spans_by_name(trace):
    return {s["name"]: s for s in trace["spans"]}


def test_decorator_with_child_spans(api):
    agent = unique("lead-qualifier")
    seen = {}

    def fetch_from_crm(lead_id):
        return {"id": lead_id, "tier": "gold"}

    def call_llm(lead, crm_data):
        return {"score": 0.9}

    @agentvista.trace_agent(agent)
    def qualify_lead(lead: dict) -> dict:
        seen["trace_id"] = agentvista.current_run().trace_id
        with agentvista.span("fetch-crm-data", span_type="tool"):
            crm_data = fetch_from_crm(lead["id"])

        with agentvista.span("score-lead", span_type="llm") as s:
            score = call_llm(lead, crm_data)
            s.set_model("gpt-4o").set_tokens(input=800, output=120)

        return score

    assert qualify_lead({"id": 7}) == {"score": 0.9}
    assert agentvista.flush(30)
    trace = api.trace(seen["trace_id"], 3)
    assert trace["trace"]["agent_name"] == agent
    assert trace["trace"]["status"] == "completed"
    spans = spans_by_name(trace)
    root = spans[agent]
    assert root["type"] == "agent" and root["parent_span_id"] is None
    assert spans["fetch-crm-data"]["type"] == "tool"
    assert spans["fetch-crm-data"]["parent_span_id"] == root["span_id"]
    llm = spans["score-lead"]
    assert (llm["type"], llm["model"], llm["input_tokens"]) == ("llm", "gpt-4o", 800)
    assert llm["cost_usd"] is not None, "priced by the server from the model's tokens"


def test_the_function_name_is_the_agent_and_an_exception_fails_the_run(api):
    seen = {}

    @agentvista.trace_agent
    def qualify_lead_failing(lead: dict) -> dict:
        seen["trace_id"] = agentvista.current_run().trace_id
        raise TimeoutError("CRM did not answer")

    with pytest.raises(TimeoutError):
        qualify_lead_failing({})
    assert agentvista.flush(30)
    trace = api.trace(seen["trace_id"], 1)
    assert trace["trace"]["agent_name"] == "qualify_lead_failing"
    assert trace["trace"]["status"] == "failed"
    assert "CRM did not answer" in trace["spans"][0]["error"]


def test_context_manager_outcomes(api):
    agent = unique("support-bot")
    ids = {}
    for label, success in [("resolved", True), ("escalated", False)]:
        with agentvista.run(agent) as r:
            r.set_outcome(success=success, outcome=label)
        ids[label] = r.trace_id
    with agentvista.run(agent) as r:
        r.set_outcome(success=True)
    ids["bare"] = r.trace_id
    assert agentvista.flush(30)
    assert api.trace(ids["resolved"], 1)["trace"]["outcome"] == "resolved"
    escalated = api.trace(ids["escalated"], 1)["trace"]
    assert (escalated["success"], escalated["outcome"]) == (False, "escalated")
    bare = api.trace(ids["bare"], 1)["trace"]
    assert (bare["success"], bare["outcome"]) == (True, None)


def test_record_v1(api):
    agent = unique("classifier")
    trace_id = agentvista.record(
        agent, input="Is ACME a lead?", output="qualified", model="gpt-4o-mini",
        input_tokens=100, output_tokens=3, cost_usd="0.000150", duration_ms=420,
        success=True, outcome="qualified",
    )
    assert agentvista.flush(30)
    trace = api.trace(trace_id, 1)
    assert (trace["trace"]["success"], trace["trace"]["outcome"]) == (True, "qualified")
    span = trace["spans"][0]
    assert (span["type"], span["cost_usd"]) == ("llm", "0.000150")
    assert 400 <= trace["trace"]["duration_ms"] <= 500


def test_distributed_tracing_continues_the_trace_downstream(api):
    upstream, downstream = unique("orchestrator"), unique("billing-service")
    with agentvista.run(upstream) as r:
        with agentvista.span("call billing", span_type="http"):
            headers = agentvista.inject_traceparent({"Content-Type": "application/json"})
            # ... the downstream service receives `headers` ...
            trace_id, parent = agentvista.extract_traceparent(headers)
            assert trace_id == r.trace_id
            with agentvista.run(downstream, incoming_traceparent=headers["traceparent"]):
                with agentvista.span("charge", span_type="db"):
                    pass
    assert agentvista.flush(30)
    trace = api.trace(r.trace_id, 4)
    spans = spans_by_name(trace)
    assert trace["trace"]["agent_name"] == upstream, "the enclosing run's header is the last sent"
    assert spans[downstream]["parent_span_id"] == spans["call billing"]["span_id"]
    assert spans["charge"]["parent_span_id"] == spans[downstream]["span_id"]


def test_get_prompt_links_the_run_to_the_version(api):
    name = unique("support-classifier")
    status, _ = api.call("POST", "/dashboard/prompts/", {"name": name, "template_text": "Categorize: {{ticket_text}}"})
    assert status == 201
    with agentvista.run(unique("prompted")) as r:
        with agentvista.span("classify", span_type="llm"):
            p = agentvista.get_prompt(name)
            assert p.compile(ticket_text="refund please") == "Categorize: refund please"
    assert agentvista.flush(30)
    compare = api.wait(f"/dashboard/prompts/{name}/compare", lambda c: c["versions"][0]["runs"] == 1)
    assert compare["versions"][0]["version"] == 1
    api.trace(r.trace_id, 2)
