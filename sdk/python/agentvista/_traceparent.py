"""W3C Trace Context (`traceparent`) parsing and formatting.

A traceparent is ``00-<32 hex trace id>-<16 hex parent span id>-<2 hex
flags>``. AgentVista's trace id is the UUID of the same 16 bytes, and an
SDK span id is 8 random bytes, so a service instrumented with OpenTelemetry
(or this SDK) downstream continues the same trace.
"""

from __future__ import annotations

import re
from typing import Mapping, Optional, Tuple

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def format_traceparent(trace_id_hex: str, span_id_hex: str, sampled: bool = True) -> str:
    return f"00-{trace_id_hex}-{span_id_hex}-{'01' if sampled else '00'}"


def parse_traceparent(value: object) -> Optional[Tuple[str, str]]:
    """``(trace_id_hex, parent_span_id_hex)`` of a header value, or ``None``
    when it is missing or malformed (wrong lengths, upper case, the invalid
    all-zero ids, version ``ff``, or extra fields on version 00)."""
    if not isinstance(value, str):
        return None
    m = _TRACEPARENT.match(value.strip())
    if not m:
        return None
    version, trace_id, span_id, _flags, rest = m.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id


def header_value(headers: object) -> Optional[str]:
    """The ``traceparent`` of a headers mapping (any key case), or the value
    itself when a string is given."""
    if isinstance(headers, str):
        return headers
    if isinstance(headers, Mapping):
        for key in headers:
            if isinstance(key, str) and key.lower() == "traceparent":
                v = headers[key]
                if isinstance(v, bytes):
                    try:
                        v = v.decode("ascii")
                    except UnicodeDecodeError:
                        return None
                return v if isinstance(v, str) else None
    return None
