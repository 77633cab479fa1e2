"""The background sender: a bounded queue of finished runs, drained by one
daemon thread into ``POST /traces/batch`` requests of at most 100 spans,
gzip-compressed, over one kept-alive connection.

Retries 408, 429, 5xx and network errors with exponential backoff that
honours ``Retry-After``, for up to ``retry_budget`` seconds per request;
splits a request the server refuses as a whole (400, 413) to isolate the
entry it refuses. Nothing here ever raises into the host program: failures
are logged through the ``agentvista`` logger and counted.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

logger = logging.getLogger("agentvista")

#: The contract's limit: spans per request (and traces per request).
MAX_SPANS_PER_REQUEST = 100
MAX_TRACES_PER_REQUEST = 100
_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}

#: A finished run (or late spans of one) as queued by the caller, not yet
#: serialized: ``{"run": Run, "trace_id": str, "spans": [Span, ...]}``;
#: :func:`wire` turns it into the batch's ``{"trace": ..., "spans": ...}``.
Entry = Dict[str, Any]


def wire(entry: Entry) -> Dict[str, Any]:
    """The ``/traces/batch`` entry of a queued one (done by the sender)."""
    return {"trace": entry["run"]._header(), "spans": [s._wire() for s in entry["spans"]]}


class Stats:
    """What the transport did (read with ``agentvista.stats()``)."""

    __slots__ = ("sent_spans", "sent_requests", "dropped_spans", "dropped_runs", "retries")

    def __init__(self) -> None:
        self.sent_spans = 0
        self.sent_requests = 0
        #: Spans (and runs) given up: the queue was full, the server refused
        #: them for good, or the retry budget ran out.
        self.dropped_spans = 0
        self.dropped_runs = 0
        self.retries = 0

    def as_dict(self) -> Dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}


def chunk(entries: List[Entry]) -> List[List[Entry]]:
    """Split entries into requests of at most 100 spans and 100 traces; an
    entry with more spans is split, its trace header repeated in each part
    (the server replaces a trace header by the newest copy: idempotent)."""
    requests: List[List[Entry]] = []
    current: List[Entry] = []
    spans = 0
    for entry in entries:
        parts = entry["spans"]
        pieces = [parts[i : i + MAX_SPANS_PER_REQUEST] for i in range(0, len(parts), MAX_SPANS_PER_REQUEST)] or [[]]
        for piece in pieces:
            if current and (
                spans + len(piece) > MAX_SPANS_PER_REQUEST
                or len(current) >= MAX_TRACES_PER_REQUEST
                or any(e["trace_id"] == entry["trace_id"] for e in current)
            ):
                requests.append(current)
                current, spans = [], 0
            current.append({**entry, "spans": piece})
            spans += len(piece)
    if current:
        requests.append(current)
    return requests


def retry_after(value: Optional[str], now: float) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an
    HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


class Transport:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        flush_interval: float = 1.0,
        max_queue_spans: int = 10_000,
        retry_budget: float = 120.0,
        timeout: float = 10.0,
        compress: bool = True,
        user_agent: str = "agentvista-python",
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "") + "/traces/batch"
        self._api_key = api_key
        self.flush_interval = flush_interval
        self.max_queue_spans = max_queue_spans
        self.retry_budget = retry_budget
        self.timeout = timeout
        self.compress = compress
        self._user_agent = user_agent
        self.stats = Stats()
        self._queue: Deque[Entry] = deque()
        self._queued_spans = 0
        self._busy = 0  # entries taken by the sender, not yet settled
        self._cond = threading.Condition(threading.Lock())
        self._stopping = False
        self._flush_requested = False
        self._conn: Optional[http.client.HTTPConnection] = None
        self._thread: Optional[threading.Thread] = None

    # -- the caller's side: O(1), no I/O ---------------------------------

    def enqueue(self, entry: Entry) -> bool:
        """Queue a finished run (or late spans of one); ``False`` when the
        queue is full (the entry is dropped and counted)."""
        n = len(entry["spans"])
        with self._cond:
            if self._stopping:
                self.stats.dropped_spans += n
                self.stats.dropped_runs += 1
                return False
            if self._queued_spans + n > self.max_queue_spans and self._queue:
                self.stats.dropped_spans += n
                self.stats.dropped_runs += 1
                if self.stats.dropped_runs == 1 or self.stats.dropped_runs % 1000 == 0:
                    logger.warning(
                        "agentvista: the send queue is full (%d spans); dropped %d runs so far",
                        self.max_queue_spans,
                        self.stats.dropped_runs,
                    )
                return False
            self._queue.append(entry)
            self._queued_spans += n
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agentvista-sender", daemon=True)
                self._thread.start()
            if self._queued_spans >= MAX_SPANS_PER_REQUEST:
                self._cond.notify_all()
        return True

    def flush(self, timeout: Optional[float] = None) -> bool:
        """Wait until everything queued so far is sent (or given up);
        ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                if self._thread is None or not self._thread.is_alive():
                    return not self._queue
                self._flush_requested = True
                self._cond.notify_all()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(timeout=min(left, 0.1) if left is not None else 0.1)
        return True

    def shutdown(self, timeout: Optional[float] = 5.0) -> bool:
        """Flush (bounded by ``timeout``), then stop the sender."""
        done = self.flush(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if not done:
            with self._cond:
                left = self._queued_spans
            logger.warning("agentvista: shut down with %d spans not sent", left)
        return done

    # -- the sender thread ------------------------------------------------

    def _take(self) -> List[Entry]:
        """Up to one request's worth of entries (caller holds the lock)."""
        taken: List[Entry] = []
        spans = 0
        while self._queue:
            n = len(self._queue[0]["spans"])
            if taken and (spans + n > MAX_SPANS_PER_REQUEST or len(taken) >= MAX_TRACES_PER_REQUEST):
                break
            entry = self._queue.popleft()
            self._queued_spans -= n
            taken.append(entry)
            spans += n
        self._busy += len(taken)
        return taken

    def _run(self) -> None:
        while True:
            with self._cond:
                # Send when a request is full, a flush asks, or the interval
                # since the last send has passed with something queued.
                deadline = time.monotonic() + self.flush_interval
                while (
                    not self._stopping
                    and not self._flush_requested
                    and self._queued_spans < MAX_SPANS_PER_REQUEST
                ):
                    left = deadline - time.monotonic()
                    if left <= 0 and self._queue:
                        break
                    if left <= 0:
                        deadline = time.monotonic() + self.flush_interval
                        left = self.flush_interval
                    self._cond.wait(timeout=left)
                if self._stopping and not self._queue:
                    break
                if not self._queue:
                    self._flush_requested = False
                    continue
                batch = self._take()
                if not self._queue:
                    self._flush_requested = False
            try:
                for request in chunk(batch):
                    self._deliver(request)
            except Exception:  # never let the sender die
                logger.exception("agentvista: unexpected error while sending")
            finally:
                with self._cond:
                    self._busy -= len(batch)
                    self._cond.notify_all()
        self._close()

    def _deliver(self, request: List[Entry]) -> None:
        spans = sum(len(e["spans"]) for e in request)
        status, detail = self._send_with_retries(request)
        if status is not None and 200 <= status < 300:
            self.stats.sent_spans += spans
            self.stats.sent_requests += 1
            return
        if status in (400, 413) and len(request) > 1:
            half = len(request) // 2
            self._deliver(request[:half])
            self._deliver(request[half:])
            return
        if status in (400, 413) and len(request[0]["spans"]) > 1:
            e = request[0]
            half = len(e["spans"]) // 2
            self._deliver([{**e, "spans": e["spans"][:half]}])
            self._deliver([{**e, "spans": e["spans"][half:]}])
            return
        self.stats.dropped_spans += spans
        self.stats.dropped_runs += len(request)
        logger.error(
            "agentvista: dropped %d runs (%d spans): %s",
            len(request),
            spans,
            f"HTTP {status}: {detail}" if status is not None else detail,
        )

    def _send_with_retries(self, request: List[Entry]) -> Tuple[Optional[int], str]:
        try:
            body = json.dumps({"traces": [wire(e) for e in request]}, separators=(",", ":")).encode()
        except Exception as e:  # a value the host set that cannot be encoded
            return None, f"could not encode the runs: {e!r}"
        if self.compress:
            body = gzip.compress(body, compresslevel=5)
        started = time.monotonic()
        backoff = 0.5
        while True:
            status: Optional[int]
            try:
                status, headers, detail = self._post(body)
            except (OSError, http.client.HTTPException) as e:
                self._close()
                status, headers, detail = None, {}, f"network error: {e}"
            if status is not None and status not in _RETRYABLE:
                return status, detail
            wait = retry_after(headers.get("retry-after"), time.time())
            if wait is None:
                wait = backoff * (0.5 + random.random())
                backoff = min(backoff * 2, 30.0)
            wait = min(wait, 60.0)
            elapsed = time.monotonic() - started
            if elapsed + wait > self.retry_budget:
                return status, f"gave up after {elapsed:.0f} s of retries ({detail})"
            with self._cond:
                stopping = self._stopping
            if stopping:
                return status, f"shutting down ({detail})"
            self.stats.retries += 1
            logger.debug("agentvista: retrying in %.1f s (%s)", wait, detail)
            time.sleep(wait)

    def _post(self, body: bytes) -> Tuple[int, Dict[str, str], str]:
        if self._conn is None:
            if self._https:
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
            self._conn.connect()
            # Requests are written whole; never wait on Nagle.
            self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
        }
        if self.compress:
            headers["Content-Encoding"] = "gzip"
        self._conn.request("POST", self._path, body=body, headers=headers)
        resp = self._conn.getresponse()
        raw = resp.read(64 * 1024)
        lower = {k.lower(): v for k, v in resp.getheaders()}
        if resp.will_close:
            self._close()
        detail = ""
        if resp.status >= 300:
            try:
                detail = str(json.loads(raw).get("detail", ""))
            except (ValueError, AttributeError):
                detail = raw[:200].decode("utf-8", "replace")
        return resp.status, lower, detail

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
