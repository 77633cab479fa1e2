"""Fixtures of the unit tests: a capturing transport (what the SDK would
send), and a scriptable local HTTP server standing in for the gateway."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

import agentvista
from agentvista import _core
from agentvista._transport import wire


class Capture:
    """Stands in for the transport: keeps every queued entry."""

    def __init__(self) -> None:
        self.entries: List[Dict[str, Any]] = []
        self.lock = threading.Lock()

    def enqueue(self, entry: Dict[str, Any]) -> bool:
        with self.lock:
            self.entries.append(wire(entry))
        return True

    def spans(self) -> List[Dict[str, Any]]:
        return [s for e in self.entries for s in e["spans"]]

    def flush(self, timeout: Optional[float] = None) -> bool:
        return True

    def shutdown(self, timeout: Optional[float] = None) -> bool:
        return True


@pytest.fixture
def sent():
    cap = Capture()
    old = _core._config.transport
    _core._config.transport = cap  # type: ignore[assignment]
    _core._install_thread_propagation()
    yield cap
    _core._config.transport = old


Reply = Tuple[int, Dict[str, str], bytes]


class Server:
    """A local HTTP server; ``script(request_number) -> (status, headers,
    body)`` decides each answer. Records the decoded JSON bodies."""

    def __init__(self, script: Callable[[int], Reply]) -> None:
        self.script = script
        self.requests: List[Dict[str, Any]] = []
        self.headers: List[Dict[str, str]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, body_in: bytes) -> None:
                with server.lock:
                    n = len(server.requests)
                    if body_in:
                        if self.headers.get("Content-Encoding") == "gzip":
                            body_in = gzip.decompress(body_in)
                        server.requests.append(json.loads(body_in))
                    else:
                        server.requests.append({"path": self.path})
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, headers, body = server.script(n)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self._answer(self.rfile.read(length))

            def do_GET(self) -> None:
                self._answer(b"")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


def ok(n: int) -> Reply:
    return 200, {"Content-Type": "application/json"}, b'{"accepted_traces": 1, "accepted_spans": 1}'


@pytest.fixture
def server():
    servers: List[Server] = []

    def start(script: Callable[[int], Reply] = ok) -> Server:
        s = Server(script)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()
    agentvista.shutdown(1)
