"""AgentVista: trace AI agents.

    import agentvista
    agentvista.init(api_key="av_...")          # or AGENTVISTA_API_KEY

    @agentvista.trace_agent("lead-qualifier")
    def qualify_lead(lead):
        with agentvista.span("score-lead", span_type="llm") as s:
            s.set_model("gpt-4o").set_tokens(input=800, output=120)
            ...

    with agentvista.run("support-bot") as r:
        ...
        r.set_outcome(success=True, outcome="resolved")

Runs are sent in the background (``POST /traces/batch``); nothing on the
caller's path touches the network, and the SDK never raises into the host
program. See README.md.
"""

from ._core import (
    DEFAULT_BASE_URL,
    Run,
    Span,
    current_run,
    current_span,
    extract_traceparent,
    flush,
    init,
    inject_traceparent,
    record,
    run,
    shutdown,
    span,
    stats,
    trace_agent,
)
from ._prompts import Prompt, PromptUnavailable, get_prompt

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_BASE_URL",
    "Prompt",
    "PromptUnavailable",
    "Run",
    "Span",
    "current_run",
    "current_span",
    "extract_traceparent",
    "flush",
    "get_prompt",
    "init",
    "inject_traceparent",
    "record",
    "run",
    "shutdown",
    "span",
    "stats",
    "trace_agent",
]
