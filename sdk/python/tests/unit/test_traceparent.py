import agentvista

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_extract_returns_the_trace_uuid_and_the_parent_span():
    assert agentvista.extract_traceparent({"traceparent": VALID}) == (
        "4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
        "00f067aa0ba902b7",
    )
    # Any header case, bytes values, or the value itself.
    assert agentvista.extract_traceparent({"TraceParent": VALID.encode()}) is not None
    assert agentvista.extract_traceparent(VALID) is not None
    # A future version may carry more fields.
    assert agentvista.extract_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra") is not None


def test_malformed_or_missing_headers_are_none():
    for bad in [
        None,
        {},
        {"traceparent": ""},
        {"traceparent": 7},
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ]:
        assert agentvista.extract_traceparent(bad) is None, bad


def test_inject_is_a_noop_outside_a_run_and_round_trips_inside(sent):
    headers = {"x": "1"}
    assert agentvista.inject_traceparent(headers) is headers
    assert headers == {"x": "1"}
    with agentvista.run("upstream") as r:
        with agentvista.span("call downstream", span_type="http") as s:
            out = agentvista.inject_traceparent({})
            assert out["traceparent"] == f"00-{r.trace_id.replace('-', '')}-{s.span_id}-01"
            trace_id, parent = agentvista.extract_traceparent(out)
            assert trace_id == r.trace_id and parent == s.span_id
    # Downstream continues the same trace under the calling span.
    with agentvista.run("downstream", incoming_traceparent=out) as d:
        assert d.trace_id == r.trace_id
    root = [x for x in sent.spans() if x["name"] == "downstream"][0]
    assert root["parent_span_id"].endswith(s.span_id[4:])
    assert root["trace_id"] == r.trace_id
