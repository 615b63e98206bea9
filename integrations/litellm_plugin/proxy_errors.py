"""How the proxy plugin's failures reach a client: an OpenAI-style JSON error with our status.

A request the plugin cannot route is the client's mistake (HTTP 400, the field named); a plugin
that cannot load its settings, fleet or router is the server's (HTTP 500 "misconfigured", the
reason in the proxy's log). Either way the client never learns the server's file layout.
"""

from __future__ import annotations

import re

from adaptive_router.errors import AdaptiveRouterError


class PluginMisconfigured(AdaptiveRouterError):
    """The plugin's settings, fleet, router or reward model cannot be loaded: a server problem
    (HTTP 500), reported on each routed request until fixed; other model names keep working."""

    http_status = 500


#: An absolute POSIX path in a message (not a URL's path, not a relative ``../x``): what a
#: client must not learn about the server's file system.
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s'\"`:,;()\[\]{}<>/]+/)*[^\s'\"`:,;()\[\]{}<>/]*")


def scrub_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last two parts (``…/router/config.json``):
    enough for an operator to know which file, nothing of the server's layout. The proxy's own
    log keeps the full message."""
    def short(m: re.Match[str]) -> str:
        parts = [p for p in m.group(0).split("/") if p]
        return "…/" + "/".join(parts[-2:]) if parts else m.group(0)

    return _ABSOLUTE_PATH.sub(short, text)


def proxy_error(exc: Exception) -> Exception:
    """The exception LiteLLM's proxy turns into an OpenAI-style JSON error with our status.

    A ``ProxyException`` is passed to the client as is (status = its ``code``); anything else
    without a ``status_code`` would become a 500. Absolute server paths are cut from the message.
    """
    from litellm.proxy._types import ProxyException

    status = exc.http_status if isinstance(exc, AdaptiveRouterError) else 500
    kind = "invalid_request_error" if 400 <= status < 500 else "internal_server_error"
    message = str(exc) if isinstance(exc, AdaptiveRouterError) else (
        f"adaptive_router could not route the request: {type(exc).__name__}: {exc}")
    return ProxyException(message=scrub_paths(f"adaptive_router: {message}"), type=kind, param=None,
                          code=status)
