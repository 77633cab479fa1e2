"""Runs, spans and their context: what the public API is made of.

A run is one trace: a header (agent, status, times, success, outcome) and
its spans. Every run has a root span (type ``agent``, named after the
agent) that the spans opened inside it nest under, through ``contextvars``:
asyncio tasks inherit the context, and so do threads started (or pool
tasks submitted) inside a run once ``init()`` has installed the thread
integration. A finished run is handed to the background transport as one
entry; nothing on the caller's path touches the network.

Every public entry point is guarded: an internal error is logged through
the ``agentvista`` logger and never raised into the host program (an
exception raised by the host's own code is always re-raised unchanged).
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import inspect
import logging
import os
import random
import threading
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union, overload

from . import _otel
from ._traceparent import format_traceparent, header_value, parse_traceparent
from ._transport import Transport

logger = logging.getLogger("agentvista")

DEFAULT_BASE_URL = "https://api.agentvista.dev/api/v1"
SPAN_TYPES = ("agent", "llm", "tool", "http", "db", "custom")
#: Spans kept per run; later ones are dropped and counted.
MAX_SPANS_PER_RUN = 10_000
_MAX_TEXT = 1_000_000

_current_run: contextvars.ContextVar[Optional["Run"]] = contextvars.ContextVar("agentvista_run", default=None)
_current_span: contextvars.ContextVar[Optional["Span"]] = contextvars.ContextVar("agentvista_span", default=None)

F = TypeVar("F", bound=Callable[..., Any])


def _guard(what: str, fn: Callable[[], Any], default: Any = None) -> Any:
    try:
        return fn()
    except Exception:  # the SDK never raises into the host program
        logger.exception("agentvista: internal error in %s (ignored)", what)
        return default


def _new_span_id() -> str:
    # Uniqueness, not secrecy: a Mersenne Twister draw is ten times cheaper
    # than a system call (the id of an all-zero draw is invalid in W3C).
    return "%016x" % (random.getrandbits(64) or 1)


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + (
        ".%06dZ" % ((ns // 1000) % 1_000_000)
    )


def _span_uuid(hex16: str) -> str:
    """A W3C span id as the UUID the server gives it (as for OTLP spans)."""
    return f"00000000-0000-0000-{hex16[:4]}-{hex16[4:]}"


def _trace_uuid(hex32: str) -> str:
    return str(uuid.UUID(hex32))


def _money(v: Any) -> Optional[str]:
    if v is None:
        return None
    try:
        d = Decimal(str(v))
    except (InvalidOperation, ValueError):
        logger.warning("agentvista: ignoring a cost that is not a number: %r", v)
        return None
    if not d.is_finite() or d < 0:
        logger.warning("agentvista: ignoring a negative or infinite cost: %r", v)
        return None
    return format(d.quantize(Decimal("0.000000001")), "f")


def _text(v: Any) -> Any:
    """Inputs and outputs as the batch takes them: strings, or JSON values."""
    if v is None or isinstance(v, (str, int, float, bool, list, dict)):
        if isinstance(v, str) and len(v) > _MAX_TEXT:
            return v[:_MAX_TEXT]
        return v
    return str(v)


class _Config:
    def __init__(self) -> None:
        self.transport: Optional[Transport] = None
        self.api_key: Optional[str] = None
        self.base_url = DEFAULT_BASE_URL
        self.prompt_cache_ttl = 60.0
        self.timeout = 10.0
        self.warned_uninitialized = False


_config = _Config()
_config_lock = threading.Lock()


class Span:
    """One step of a run. Use it as a context manager from
    :func:`agentvista.span`; the setters chain (they return the span)."""

    __slots__ = (
        "run", "span_id", "parent_id", "name", "span_type", "started_ns", "ended_ns",
        "status", "model", "input_tokens", "output_tokens", "total_tokens", "cost_usd",
        "input", "output", "error", "attributes", "prompt", "_tokens", "_otel_token",
    )

    def __init__(self, run: "Run", name: str, span_type: str, parent_id: Optional[str]) -> None:
        self.run = run
        self.span_id = _new_span_id()
        self.parent_id = parent_id
        self.name = name
        self.span_type = span_type if span_type in SPAN_TYPES else "custom"
        self.started_ns = time.time_ns()
        self.ended_ns: Optional[int] = None
        self.status = "completed"
        self.model: Optional[str] = None
        self.input_tokens: Optional[int] = None
        self.output_tokens: Optional[int] = None
        self.total_tokens: Optional[int] = None
        self.cost_usd: Optional[str] = None
        self.input: Any = None
        self.output: Any = None
        self.error: Optional[str] = None
        self.attributes: Dict[str, Any] = {}
        self.prompt: Optional[Tuple[str, int]] = None
        self._tokens: Optional[Tuple[contextvars.Token, contextvars.Token]] = None
        self._otel_token: Any = None

    # -- setters (LLM spans and any other) --------------------------------

    def set_model(self, model: str) -> "Span":
        self.model = str(model)
        return self

    def set_tokens(
        self, input: Optional[int] = None, output: Optional[int] = None, total: Optional[int] = None
    ) -> "Span":
        if input is not None:
            self.input_tokens = int(input)
        if output is not None:
            self.output_tokens = int(output)
        if total is not None:
            self.total_tokens = int(total)
        return self

    def set_cost(self, usd: Union[str, float, int, Decimal]) -> "Span":
        """The span's cost in US dollars (kept exact as a decimal string);
        without one the server prices the model's tokens."""
        self.cost_usd = _money(usd)
        return self

    def set_input(self, value: Any) -> "Span":
        self.input = _text(value)
        return self

    def set_output(self, value: Any) -> "Span":
        self.output = _text(value)
        return self

    def set_attribute(self, key: str, value: Any) -> "Span":
        self.attributes[str(key)] = value
        return self

    def set_attributes(self, attributes: Mapping[str, Any]) -> "Span":
        for k, v in attributes.items():
            self.attributes[str(k)] = v
        return self

    def set_error(self, error: Union[BaseException, str]) -> "Span":
        self.status = "failed"
        self.error = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return self

    def set_prompt(self, name: str, version: int) -> "Span":
        """Link the run to a prompt version (the server's prompt analytics)."""
        self.prompt = (str(name), int(version))
        return self

    # -- context ----------------------------------------------------------

    def __enter__(self) -> "Span":
        _guard("span.__enter__", self._activate)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _guard("span.__exit__", lambda: self._finish(exc))

    async def __aenter__(self) -> "Span":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def _activate(self) -> None:
        self._tokens = (_current_run.set(self.run), _current_span.set(self))
        self._otel_token = _otel.attach(self.run.trace_hex, self.span_id)

    def _finish(self, exc: Optional[BaseException]) -> None:
        if self.ended_ns is None:
            self.ended_ns = time.time_ns()
        if exc is not None and self.error is None:
            self.set_error(exc)
        _otel.detach(self._otel_token)
        self._otel_token = None
        if self._tokens is not None:
            run_token, span_token = self._tokens
            self._tokens = None
            for var, token in ((_current_span, span_token), (_current_run, run_token)):
                try:
                    var.reset(token)
                except ValueError:  # exited in another context (a generator moved)
                    var.set(None)
        self.run._span_done(self)

    def _wire(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {
            "span_id": _span_uuid(self.span_id),
            "trace_id": self.run.trace_id,
            "type": self.span_type,
            "name": self.name,
            "status": self.status,
            "started_at": _rfc3339(self.started_ns),
        }
        if self.parent_id is not None:
            d["parent_span_id"] = _span_uuid(self.parent_id)
        if self.ended_ns is not None:
            d["ended_at"] = _rfc3339(max(self.ended_ns, self.started_ns))
        for key in ("model", "input_tokens", "output_tokens", "total_tokens", "input", "output", "error"):
            v = getattr(self, key)
            if v is not None:
                d[key] = v
        if self.cost_usd is not None:
            d["cost_usd"] = self.cost_usd
        if self.attributes:
            d["attributes"] = {
                k: v if isinstance(v, (str, int, float, bool)) or v is None else str(v)
                for k, v in list(self.attributes.items())[:256]
            }
        if self.prompt is not None:
            d["prompt_name"], d["prompt_version"] = self.prompt
        return d


class _NoopSpan(Span):
    """What :func:`agentvista.span` gives outside a run: every call works,
    nothing is recorded."""

    def __init__(self) -> None:  # noqa: D401 - no run
        pass

    def __getattribute__(self, name: str) -> Any:
        if name in ("__enter__", "__exit__", "__aenter__", "__aexit__"):
            return object.__getattribute__(self, name)
        if name.startswith("set_"):
            return lambda *a, **k: self
        return None

    def __enter__(self) -> "Span":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        return None


class Run:
    """One run of an agent (one trace). ``trace_id`` is its UUID (the same
    16 bytes as the W3C trace id); ``set_outcome`` records the business
    result."""

    def __init__(
        self,
        agent_name: str,
        *,
        incoming_traceparent: Any = None,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.agent_name = str(agent_name) or "agent"
        parent_span: Optional[str] = None
        trace_hex: Optional[str] = None
        incoming = parse_traceparent(header_value(incoming_traceparent)) if incoming_traceparent else None
        if incoming is not None:
            trace_hex, parent_span = incoming
        else:
            active = _otel.active_ids()
            if active is not None:
                trace_hex, parent_span = active
        self.trace_hex = trace_hex or uuid.uuid4().hex
        self.trace_id = _trace_uuid(self.trace_hex)
        self.success: Optional[bool] = None
        self.outcome: Optional[str] = None
        self.metadata: Dict[str, Any] = dict(metadata or {})
        self.status = "completed"
        self.started_ns = time.time_ns()
        self.ended_ns: Optional[int] = None
        self.root = Span(self, self.agent_name, "agent", parent_span)
        self.root.started_ns = self.started_ns
        self._spans: List[Span] = []
        self._dropped = 0
        self._lock = threading.Lock()

    # -- the public surface -----------------------------------------------

    def set_outcome(self, success: Optional[bool] = None, outcome: Optional[str] = None) -> "Run":
        """Whether the run succeeded by your definition, and an optional
        label (``"resolved"``, ``"escalated"``, ...)."""
        if success is not None:
            self.success = bool(success)
        if outcome is not None:
            self.outcome = str(outcome)[:256]
        return self

    def set_metadata(self, key: str, value: Any) -> "Run":
        self.metadata[str(key)] = value
        return self

    def set_prompt(self, name: str, version: int) -> "Run":
        """Link this run to a prompt version."""
        self.root.set_prompt(name, version)
        return self

    @property
    def traceparent(self) -> str:
        span = _current_span.get()
        span_id = span.span_id if span is not None and span.run is self else self.root.span_id
        return format_traceparent(self.trace_hex, span_id)

    # -- context ----------------------------------------------------------

    def __enter__(self) -> "Run":
        _guard("run.__enter__", self.root._activate)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        _guard("run.__exit__", lambda: self._end(exc))

    async def __aenter__(self) -> "Run":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)

    def _end(self, exc: Optional[BaseException]) -> None:
        if exc is not None:
            self.status = "failed"
            self.root.set_error(exc)
        self.ended_ns = time.time_ns()
        self.root.ended_ns = self.ended_ns
        self.root._finish(None)

    def _span_done(self, span: Span) -> None:
        """A span ended: kept with the run, or (the root, or a straggler
        after the run ended) sent."""
        with self._lock:
            ended = self.ended_ns is not None and span is not self.root
            if not ended:
                if len(self._spans) < MAX_SPANS_PER_RUN:
                    self._spans.append(span)
                else:
                    self._dropped += 1
        if span is self.root:
            self._send(self._spans)
        elif ended:
            self._send([span])

    def _header(self) -> Dict[str, Any]:
        h: Dict[str, Any] = {
            "trace_id": self.trace_id,
            "agent": self.agent_name,
            "status": self.status,
            "started_at": _rfc3339(self.started_ns),
        }
        if self.ended_ns is not None:
            h["ended_at"] = _rfc3339(max(self.ended_ns, self.started_ns))
        if self.success is not None:
            h["success"] = self.success
        if self.outcome is not None:
            h["outcome"] = self.outcome
        if self.metadata:
            h["metadata"] = {k: v if isinstance(v, (str, int, float, bool)) else str(v) for k, v in self.metadata.items()}
        return h

    def _send(self, spans: List[Span]) -> None:
        if self._dropped:
            logger.warning("agentvista: run %s had more than %d spans; %d dropped", self.trace_id, MAX_SPANS_PER_RUN, self._dropped)
        transport = _config.transport
        if transport is None:
            if not _config.warned_uninitialized:
                _config.warned_uninitialized = True
                logger.warning("agentvista: init() has not been called (or no API key); runs are not sent")
            return
        # Serialized by the sender thread (`_transport.wire`), off the
        # caller's path.
        transport.enqueue({"run": self, "trace_id": self.trace_id, "spans": spans})


class _NestedRun:
    """What ``run()`` (or a decorated agent) gives inside another run: an
    ``agent`` span of the enclosing trace, with the same surface."""

    def __init__(self, parent: Run, agent_name: str) -> None:
        self._parent = parent
        self.agent_name = agent_name
        self.trace_id = parent.trace_id
        self.trace_hex = parent.trace_hex
        span = _current_span.get()
        self.root = Span(parent, agent_name, "agent", span.span_id if span is not None else parent.root.span_id)

    def set_outcome(self, success: Optional[bool] = None, outcome: Optional[str] = None) -> "_NestedRun":
        if success is not None:
            self.root.set_attribute("agentvista.success", bool(success))
        if outcome is not None:
            self.root.set_attribute("agentvista.outcome", str(outcome)[:256])
        return self

    def set_metadata(self, key: str, value: Any) -> "_NestedRun":
        self.root.set_attribute(key, value)
        return self

    def set_prompt(self, name: str, version: int) -> "_NestedRun":
        self.root.set_prompt(name, version)
        return self

    @property
    def traceparent(self) -> str:
        return self._parent.traceparent

    def __enter__(self) -> "_NestedRun":
        self.root.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.root.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> "_NestedRun":
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


# -- the public API ---------------------------------------------------------


def init(
    api_key: Optional[str] = None,
    base_url: Optional[str] = None,
    *,
    flush_interval: float = 1.0,
    max_queue_spans: int = 10_000,
    retry_budget: float = 120.0,
    timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
    propagate_threads: bool = True,
    prompt_cache_ttl: float = 60.0,
) -> None:
    """Configure the SDK. ``api_key`` defaults to ``AGENTVISTA_API_KEY``,
    ``base_url`` to ``AGENTVISTA_BASE_URL``, then the hosted API. Calling it
    again replaces the configuration (what was queued is flushed first)."""

    def go() -> None:
        key = api_key or os.environ.get("AGENTVISTA_API_KEY")
        url = (base_url or os.environ.get("AGENTVISTA_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        with _config_lock:
            old = _config.transport
            _config.transport = None
            if old is not None:
                old.shutdown(shutdown_timeout)
            _config.api_key = key
            _config.base_url = url
            _config.prompt_cache_ttl = prompt_cache_ttl
            _config.timeout = timeout
            if not key:
                logger.warning("agentvista: no API key (init(api_key=...) or AGENTVISTA_API_KEY); runs are not sent")
                return
            _config.transport = Transport(
                url,
                key,
                flush_interval=flush_interval,
                max_queue_spans=max_queue_spans,
                retry_budget=retry_budget,
                timeout=timeout,
            )
            _config.warned_uninitialized = False
        _install_exit_flush(shutdown_timeout)
        if propagate_threads:
            _install_thread_propagation()

    _guard("init", go)


_exit_timeout = [5.0]
_exit_installed = [False]


def _install_exit_flush(timeout: float) -> None:
    _exit_timeout[0] = timeout
    if not _exit_installed[0]:
        _exit_installed[0] = True
        atexit.register(lambda: _guard("exit flush", lambda: shutdown(_exit_timeout[0])))


_threads_installed = [False]


def _install_thread_propagation() -> None:
    """Threads started, and pool tasks submitted, inside a run keep the run
    (and the current span) as their parent."""
    if _threads_installed[0]:
        return
    _threads_installed[0] = True
    import concurrent.futures

    original_start = threading.Thread.start

    def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
        if _current_run.get() is not None and not getattr(self, "_agentvista_wrapped", False):
            ctx = contextvars.copy_context()
            inner = self.run
            self.run = lambda: ctx.run(inner)  # type: ignore[method-assign]
            self._agentvista_wrapped = True  # type: ignore[attr-defined]
        return original_start(self, *args, **kwargs)

    threading.Thread.start = start  # type: ignore[method-assign]

    original_submit = concurrent.futures.ThreadPoolExecutor.submit

    def submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        ctx = contextvars.copy_context()
        return original_submit(self, lambda: ctx.run(fn, *args, **kwargs))

    concurrent.futures.ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]


def flush(timeout: Optional[float] = 10.0) -> bool:
    """Send everything queued so far; ``False`` when ``timeout`` ran out."""
    t = _config.transport
    return bool(_guard("flush", lambda: t.flush(timeout), False)) if t is not None else True


def shutdown(timeout: Optional[float] = 5.0) -> bool:
    """Flush (bounded by ``timeout``) and stop the background sender."""
    with _config_lock:
        t = _config.transport
        _config.transport = None
    return bool(_guard("shutdown", lambda: t.shutdown(timeout), False)) if t is not None else True


def stats() -> Dict[str, int]:
    """What the transport sent, retried and dropped so far."""
    t = _config.transport
    return t.stats.as_dict() if t is not None else {}


def run(
    agent_name: str,
    incoming_traceparent: Any = None,
    *,
    metadata: Optional[Mapping[str, Any]] = None,
) -> Union[Run, _NestedRun]:
    """A run of ``agent_name`` as a context manager (``with`` or ``async
    with``). ``incoming_traceparent`` (a ``traceparent`` value or a headers
    mapping) continues a trace started upstream. Inside another run it is an
    ``agent`` span of that run."""
    try:
        parent = _current_run.get()
        if parent is not None and incoming_traceparent is None:
            return _NestedRun(parent, str(agent_name))
        return Run(agent_name, incoming_traceparent=incoming_traceparent, metadata=metadata)
    except Exception:
        logger.exception("agentvista: internal error in run() (ignored)")
        return Run("agent")


def current_run() -> Optional[Run]:
    return _current_run.get()


def span(
    name: str,
    span_type: str = "custom",
    *,
    model: Optional[str] = None,
    input: Any = None,
    attributes: Optional[Mapping[str, Any]] = None,
) -> Span:
    """A child span of the current span (or of the run) as a context manager;
    a no-op outside a run."""
    try:
        r = _current_run.get()
        if r is None:
            return _NoopSpan()
        parent = _current_span.get()
        s = Span(r, str(name), span_type, parent.span_id if parent is not None else r.root.span_id)
        if model is not None:
            s.set_model(model)
        if input is not None:
            s.set_input(input)
        if attributes:
            s.set_attributes(attributes)
        return s
    except Exception:
        logger.exception("agentvista: internal error in span() (ignored)")
        return _NoopSpan()


def current_span() -> Optional[Span]:
    return _current_span.get()


def inject_traceparent(headers: Any) -> Any:
    """Add a W3C ``traceparent`` for the current span to ``headers`` (mutated
    and returned); a no-op outside a run."""

    def go() -> None:
        r = _current_run.get()
        if r is None or not isinstance(headers, dict) and not hasattr(headers, "__setitem__"):
            return
        headers["traceparent"] = r.traceparent

    _guard("inject_traceparent", go)
    return headers


def extract_traceparent(headers: Any) -> Optional[Tuple[str, str]]:
    """``(trace_id, parent_span_id)`` of an incoming ``traceparent`` (a headers
    mapping or the header's value): the trace id as a UUID string and the
    span id as 16 hex characters; ``None`` when missing or malformed."""

    def go() -> Optional[Tuple[str, str]]:
        parsed = parse_traceparent(header_value(headers))
        if parsed is None:
            return None
        return _trace_uuid(parsed[0]), parsed[1]

    return _guard("extract_traceparent", go)


def record(
    agent_name: str,
    *,
    input: Any = None,
    output: Any = None,
    success: Optional[bool] = None,
    outcome: Optional[str] = None,
    model: Optional[str] = None,
    input_tokens: Optional[int] = None,
    output_tokens: Optional[int] = None,
    total_tokens: Optional[int] = None,
    cost_usd: Union[str, float, int, Decimal, None] = None,
    duration_ms: Optional[float] = None,
    error: Optional[Union[str, BaseException]] = None,
    name: Optional[str] = None,
    span_type: Optional[str] = None,
    metadata: Optional[Mapping[str, Any]] = None,
    prompt: Optional[Tuple[str, int]] = None,
) -> Optional[str]:
    """Record a finished single-span run (the "v1" API) and return its trace
    id. ``duration_ms`` dates the start that long before now. No network
    call happens here: the run is queued for the background sender."""

    def go() -> str:
        now = time.time_ns()
        r = Run(agent_name, metadata=metadata)
        start = now - int(duration_ms * 1_000_000) if duration_ms is not None and duration_ms >= 0 else now
        r.started_ns = start
        r.ended_ns = now
        r.set_outcome(success, outcome)
        s = Span(r, name or r.agent_name, span_type or ("llm" if model else "custom"), None)
        s.started_ns, s.ended_ns = start, now
        if model is not None:
            s.set_model(model)
        s.set_tokens(input_tokens, output_tokens, total_tokens)
        if cost_usd is not None:
            s.set_cost(cost_usd)
        if input is not None:
            s.set_input(input)
        if output is not None:
            s.set_output(output)
        if error is not None:
            s.set_error(error)
            r.status = "failed"
        if prompt is not None:
            s.set_prompt(*prompt)
        r._send([s])
        return r.trace_id

    return _guard("record", go)


# -- the decorator ----------------------------------------------------------


def _enter_step(r: Union[Run, _NestedRun]) -> Any:
    return (_current_run.set(r if isinstance(r, Run) else r._parent), _current_span.set(r.root))


def _exit_step(tokens: Any) -> None:
    if tokens is None:
        return
    run_token, span_token = tokens
    _current_span.reset(span_token)
    _current_run.reset(run_token)


@overload
def trace_agent(fn: F) -> F: ...


@overload
def trace_agent(fn: Optional[str] = None, *, name: Optional[str] = None) -> Callable[[F], F]: ...


def trace_agent(fn: Any = None, *, name: Optional[str] = None) -> Any:
    """Trace each call of a function as a run of an agent named after the
    function (or ``name``): ``@trace_agent``, ``@trace_agent("name")``,
    ``@trace_agent(name="name")``. Works on functions, coroutines and
    (async) generators; the signature and return value are unchanged. An
    exception marks the run ``failed``, records its message, and propagates."""
    if isinstance(fn, str):
        fn, name = None, fn
    if fn is None:
        return lambda f: _decorate(f, name)
    return _decorate(fn, name)


def _decorate(fn: Any, name: Optional[str]) -> Any:
    agent: str = name or str(getattr(fn, "__name__", "agent"))

    if inspect.isasyncgenfunction(fn):

        @functools.wraps(fn)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
            # Each step runs with the run current and restores the caller's
            # context before yielding, so nothing leaks between items.
            r = run(agent)
            gen = fn(*args, **kwargs)
            ok = True
            try:
                method: Any = gen.__anext__
                arg: Tuple[Any, ...] = ()
                while True:
                    tokens = _guard("run step", lambda: _enter_step(r))
                    try:
                        item = await method(*arg)
                    except StopAsyncIteration:
                        return
                    finally:
                        _guard("run step", lambda: _exit_step(tokens))
                    try:
                        sent = yield item
                        method, arg = (gen.asend, (sent,)) if sent is not None else (gen.__anext__, ())
                    except GeneratorExit:
                        await gen.aclose()
                        raise
                    except BaseException as e:
                        method, arg = gen.athrow, (e,)
            except GeneratorExit:
                raise
            except BaseException as e:
                ok = False
                _guard("run end", lambda: r._end(e) if isinstance(r, Run) else r.root._finish(e))
                raise
            finally:
                if ok:
                    _guard("run end", lambda: r._end(None) if isinstance(r, Run) else r.root._finish(None))

        return agen_wrapper

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
            # The generator's steps run in a context of their own, so the
            # run is current inside it and never leaks to the consumer.
            ctx = contextvars.copy_context()
            r = ctx.run(run, agent)
            ctx.run(r.__enter__)
            failed: Optional[BaseException] = None
            try:
                gen = ctx.run(fn, *args, **kwargs)
                method: Any = gen.send
                arg: Any = None
                while True:
                    try:
                        item = ctx.run(method, arg)
                    except StopIteration as stop:
                        return stop.value
                    try:
                        arg = yield item
                        method = gen.send
                    except GeneratorExit:
                        ctx.run(gen.close)
                        raise
                    except BaseException as e:
                        method, arg = gen.throw, e
            except GeneratorExit:
                raise
            except BaseException as e:
                failed = e
                raise
            finally:
                ctx.run(r.__exit__, type(failed) if failed else None, failed, None)

        return gen_wrapper

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with run(agent):
                return await fn(*args, **kwargs)

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with run(agent):
            return fn(*args, **kwargs)

    return wrapper
