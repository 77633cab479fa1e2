"""The integration tests run against the real local stack: a gateway, a
writer and a query API (started by the Rust test that runs this suite,
`query-api/tests/api/sdk_python.rs`), which passes their addresses and a
fresh organization's key:

- AGENTVISTA_BASE_URL: the API base (``.../api/v1``) of a router in front
  of both services, as in a deployment
- AV_GATEWAY_URL: the gateway's own root (the fault test's proxy target)
- AGENTVISTA_API_KEY: a key with ``read`` and ``write``
- AV_QUERY_URL: the query API's base (``.../api/v1``)
- AV_INGEST_URL: the gateway's root (for OTLP)
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Optional

import pytest

import agentvista

REQUIRED = ("AGENTVISTA_BASE_URL", "AGENTVISTA_API_KEY", "AV_QUERY_URL", "AV_INGEST_URL", "AV_GATEWAY_URL")


def pytest_collection_modifyitems(config, items):
    missing = [v for v in REQUIRED if not os.environ.get(v)]
    if missing:
        skip = pytest.mark.skip(reason=f"needs the stack: {', '.join(missing)} unset")
        for item in items:
            item.add_marker(skip)


class Api:
    def __init__(self) -> None:
        self.query = os.environ["AV_QUERY_URL"].rstrip("/")
        self.key = os.environ["AGENTVISTA_API_KEY"]

    def call(self, method: str, path: str, body: Any = None) -> tuple:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.query}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            return e.code, json.loads(raw) if raw else None

    def wait(self, path: str, pred: Callable[[Any], bool], within: float = 30.0) -> Any:
        deadline = time.monotonic() + within
        last: Optional[tuple] = None
        while time.monotonic() < deadline:
            last = self.call("GET", path)
            if last[0] == 200 and pred(last[1]):
                return last[1]
            time.sleep(0.2)
        raise AssertionError(f"timed out on {path}: last answer {last}")

    def trace(self, trace_id: str, spans: int) -> Any:
        """The trace once its run and `spans` spans are stored. (A trace
        whose spans are stored but not yet its run reads as a summary of
        the spans; the run list holds stored runs only.)"""
        first = self.wait(f"/dashboard/traces/{trace_id}", lambda t: t["span_count"] >= spans)
        agent = urllib.parse.quote(first["trace"]["agent_name"])
        self.wait(
            f"/dashboard/traces?agent={agent}&page_size=100",
            lambda page: any(t["trace_id"] == trace_id for t in page["traces"]),
        )
        return self.wait(f"/dashboard/traces/{trace_id}", lambda t: t["span_count"] >= spans)


@pytest.fixture
def api() -> Api:
    return Api()


@pytest.fixture(autouse=True)
def sdk():
    agentvista.init(flush_interval=0.1)
    yield
    agentvista.shutdown(30)
