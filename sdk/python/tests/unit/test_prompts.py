"""get_prompt: the cache, revalidation by ETag, fallbacks, and the link to
the current run."""

import json

import pytest

import agentvista
from agentvista import _core, _prompts

PROMPT = {
    "id": "b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
    "name": "classify-intent",
    "version": 3,
    "template_text": "Classify {{ inquiry }} for {{tier}}",
    "description": None,
    "is_active": True,
    "created_at": "2026-11-30T00:00:00Z",
    "variables": ["inquiry", "tier"],
}


@pytest.fixture(autouse=True)
def fresh_cache():
    _prompts.clear_cache()
    yield
    _prompts.clear_cache()


def prompt_server(server, state):
    def script(n):
        if state.get("down"):
            return 503, {}, b'{"detail": "down"}'
        etag = '"v3"'
        if server_ref[0].headers[n].get("if-none-match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag, "Content-Type": "application/json"}, json.dumps(PROMPT).encode()

    server_ref = [None]
    s = server(script)
    server_ref[0] = s
    return s


def test_fetches_caches_and_revalidates_by_etag(server):
    state = {}
    s = prompt_server(server, state)
    agentvista.init(api_key="av_x", base_url=s.url, prompt_cache_ttl=0)
    p = agentvista.get_prompt("classify-intent")
    assert (p.version, p.variables) == (3, ["inquiry", "tier"])
    assert p.compile(inquiry="a refund", tier="gold") == "Classify a refund for gold"
    assert p.compile(inquiry="x") == "Classify x for {{tier}}"
    again = agentvista.get_prompt("classify-intent")
    assert again == p
    assert s.headers[1]["if-none-match"] == '"v3"', "the second fetch revalidates"
    assert s.requests[0]["path"] == "/api/v1/dashboard/prompts/classify-intent"
    agentvista.get_prompt("classify-intent", version=3)
    assert s.requests[2]["path"].endswith("?version=3")


def test_within_the_ttl_no_request_is_made(server):
    s = prompt_server(server, {})
    agentvista.init(api_key="av_x", base_url=s.url, prompt_cache_ttl=60)
    agentvista.get_prompt("classify-intent")
    agentvista.get_prompt("classify-intent")
    assert len(s.requests) == 1


def test_an_outage_serves_the_cached_copy_then_the_fallback_then_raises(server):
    state = {}
    s = prompt_server(server, state)
    agentvista.init(api_key="av_x", base_url=s.url, prompt_cache_ttl=0)
    cached = agentvista.get_prompt("classify-intent")
    state["down"] = True
    assert agentvista.get_prompt("classify-intent") == cached
    fb = agentvista.get_prompt("other", fallback="Plain {{x}}")
    assert (fb.fetched, fb.template_text) == (False, "Plain {{x}}")
    with pytest.raises(agentvista.PromptUnavailable):
        agentvista.get_prompt("other")


def test_fetched_inside_a_run_it_links_the_current_span(server, sent):
    s = prompt_server(server, {})
    _core._config.base_url, _core._config.api_key = s.url, "av_x"
    with agentvista.run("classifier"):
        with agentvista.span("classify", span_type="llm"):
            agentvista.get_prompt("classify-intent")
    span = [x for x in sent.spans() if x["name"] == "classify"][0]
    assert (span["prompt_name"], span["prompt_version"]) == ("classify-intent", 3)
