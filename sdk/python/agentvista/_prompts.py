"""``get_prompt``: fetch a prompt version from AgentVista at run time, cache
it, and revalidate the cache by ``ETag`` (a 304 costs no body).

Within ``prompt_cache_ttl`` seconds of the last check a cached prompt is
returned without a request; after it, one conditional request refreshes
it. When AgentVista cannot be reached, a cached copy is returned (and the
failure logged); without one, ``fallback`` is used, and without a fallback
:class:`PromptUnavailable` is raised: the one error the SDK raises, because
the caller asked for data it does not have.

Fetched inside a run, the prompt links the run (its current span) to the
version, so the server's per-version analytics count it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from . import _core

logger = logging.getLogger("agentvista")
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")


class PromptUnavailable(Exception):
    """The prompt could not be fetched and there is no cached copy or
    fallback."""


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    template_text: str
    is_active: bool = True
    description: Optional[str] = None
    variables: List[str] = field(default_factory=list)
    #: False when this is the caller's fallback text, not a fetched version.
    fetched: bool = True

    def compile(self, **values: Any) -> str:
        """The template with each ``{{name}}`` replaced by ``values[name]``
        (placeholders without a value are left as they are)."""
        return _VARIABLE.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), self.template_text)


@dataclass
class _Cached:
    prompt: Prompt
    etag: Optional[str]
    checked: float


_cache: Dict[Tuple[str, str, Optional[int]], _Cached] = {}
_lock = threading.Lock()


def _fetch(name: str, version: Optional[int], etag: Optional[str]) -> Tuple[int, Optional[Prompt], Optional[str]]:
    cfg = _core._config
    query = f"?version={int(version)}" if version is not None else ""
    url = f"{cfg.base_url}/dashboard/prompts/{urllib.parse.quote(name, safe='')}{query}"
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {cfg.api_key}", "Accept": "application/json"})
    if etag:
        req.add_header("If-None-Match", etag)
    try:
        with urllib.request.urlopen(req, timeout=cfg.timeout) as resp:
            body = json.loads(resp.read())
            prompt = Prompt(
                name=body["name"],
                version=int(body["version"]),
                template_text=body["template_text"],
                is_active=bool(body.get("is_active", True)),
                description=body.get("description"),
                variables=list(body.get("variables") or []),
            )
            return resp.status, prompt, resp.headers.get("ETag")
    except urllib.error.HTTPError as e:
        if e.code == 304:
            return 304, None, e.headers.get("ETag") or etag
        raise


def get_prompt(
    name: str,
    version: Optional[int] = None,
    *,
    fallback: Optional[str] = None,
    link: bool = True,
) -> Prompt:
    """The active version of prompt ``name`` (or ``version``). Needs a key
    with the ``read`` scope."""
    cfg = _core._config
    key = (cfg.base_url, name, version)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
    prompt: Optional[Prompt] = None
    if cached is not None and now - cached.checked < cfg.prompt_cache_ttl:
        prompt = cached.prompt
    elif cfg.api_key:
        try:
            status, fetched, etag = _fetch(name, version, cached.etag if cached else None)
            if status == 304 and cached is not None:
                prompt = cached.prompt
                with _lock:
                    _cache[key] = _Cached(cached.prompt, etag, now)
            elif fetched is not None:
                prompt = fetched
                with _lock:
                    _cache[key] = _Cached(fetched, etag, now)
        except Exception as e:  # network, HTTP errors, bad JSON
            logger.warning("agentvista: fetching prompt %r failed: %s", name, e)
            if cached is not None:
                prompt = cached.prompt
    if prompt is None:
        if fallback is None:
            raise PromptUnavailable(f"prompt {name!r} could not be fetched and has no cached copy or fallback")
        return Prompt(name=name, version=version or 0, template_text=fallback, fetched=False)
    if link and prompt.fetched:
        _core._guard("link prompt", lambda: _link(prompt))
    return prompt


def _link(prompt: Prompt) -> None:
    span = _core.current_span()
    if span is not None:
        span.set_prompt(prompt.name, prompt.version)


def clear_cache() -> None:
    with _lock:
        _cache.clear()
