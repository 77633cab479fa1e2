"""OpenTelemetry interplay, when ``opentelemetry-api`` is installed.

- A run started while an OpenTelemetry span is active joins its trace: the
  run's trace id is that span's, and the run's root span its child.
- While an SDK span is current, it is also OpenTelemetry's current span (a
  non-recording span with the SDK's ids), so spans that OpenTelemetry
  instrumentations (OpenAI, LangChain through OpenInference, HTTP clients)
  create inside it become its children in the same trace, and propagators
  inject the SDK span as the parent.

The server stitches SDK and OTLP spans into one trace by trace id.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

try:  # optional dependency
    from opentelemetry import context as _context
    from opentelemetry import trace as _trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised without the package
    AVAILABLE = False


def active_ids() -> Optional[Tuple[str, str]]:
    """(trace id, span id) in hex of OpenTelemetry's current span, if valid."""
    if not AVAILABLE:
        return None
    sc = _trace.get_current_span().get_span_context()
    if not sc.is_valid:
        return None
    return format(sc.trace_id, "032x"), format(sc.span_id, "016x")


def attach(trace_hex: str, span_hex: str) -> Any:
    """Make the SDK span OpenTelemetry's current span; returns the token."""
    if not AVAILABLE:
        return None
    sc = SpanContext(
        trace_id=int(trace_hex, 16),
        span_id=int(span_hex, 16),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    return _context.attach(_trace.set_span_in_context(NonRecordingSpan(sc)))


def detach(token: Any) -> None:
    if token is None or not AVAILABLE:
        return
    try:
        _context.detach(token)
    except Exception:  # a context exited elsewhere: nothing to undo
        pass
