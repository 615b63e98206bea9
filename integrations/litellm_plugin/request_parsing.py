"""Reading a routed request before any model work: its prompt, its knob and its stream flag.

The knob is built from the most general to the most specific: the caller's team's defaults,
then its key's (LiteLLM's key and team tables, or the plugin's ``api_keys`` setting through the
database-free ``custom_auth``), then the alias's knob, then the request's own
``metadata.adaptive_router``. Everything malformed is an HTTP 400 naming the field; a malformed
team or key default is the operator's mistake, answered as a misconfiguration (HTTP 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adaptive_router.integrations.litellm_plugin.api_adapters import (
    CHAT_CALLS,
    SINGLE_OUTPUT_CALLS,
    request_messages,
)
from adaptive_router.integrations.litellm_plugin.proxy_errors import PluginMisconfigured
from adaptive_router.integrations.litellm_plugin.request_state import RoutedRequest
from adaptive_router.integrations.plugin_settings import PluginSettings, defaults_knob, validate_knob

from adaptive_router.errors import InvalidRequestError
from adaptive_router.policy import merge_knob
from adaptive_router.prompts import prompt_from_messages


def parse_request(data: dict[str, Any], call: str, settings: PluginSettings, user_api_key_dict: Any,
                  t0: float) -> RoutedRequest:
    """The request's prompt, knob and stream flag, checked: an HTTP 400 naming the field for
    anything malformed, before any model work."""
    alias = data["model"]
    messages = request_messages(data, call, alias)
    if call in CHAT_CALLS and data.get("n") not in (None, 1):
        raise InvalidRequestError(
            f"n={data['n']!r}: with model {alias!r} the router chooses how many samples to draw; "
            "leave n out (or send a plain model name to choose n yourself)")
    prompt_from_messages(messages)  # a clear 400 (no user turn, empty prompt) before any model work
    defaults, sources = caller_defaults(user_api_key_dict)
    knob = merge_knob(defaults, settings.knob_for_alias(alias) or {})
    own = request_knob(data, call)
    if own is not None:
        knob = merge_knob(knob, own)
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):  # "false" would be truthy
        raise InvalidRequestError(f"stream must be true or false, got {type(stream).__name__} "
                                  f"{stream!r}")
    return RoutedRequest(alias=alias, call=call, messages=messages, knob=knob,
                         stream=bool(stream), defaults_from=sources, t0=t0)


def caller_defaults(user_api_key_dict: Any) -> tuple[dict[str, float], list[str]]:
    """The caller's team's, then key's, ``adaptive_router`` metadata as one knob (the key's
    wins over its team's), and where it came from.

    ``user_api_key_dict`` is LiteLLM's ``UserAPIKeyAuth``: its ``team_metadata`` and
    ``metadata`` come from LiteLLM's key and team tables, or from the plugin's ``api_keys``
    setting through the database-free ``custom_auth``. A malformed default is the operator's
    mistake, not the caller's: it is answered as a misconfiguration (HTTP 500)."""
    knob: dict[str, float] = {}
    sources: list[str] = []
    for field, label in (("team_metadata", "team"), ("metadata", "key")):
        md = getattr(user_api_key_dict, field, None)
        if not isinstance(md, Mapping) or md.get("adaptive_router") is None:
            continue
        try:
            found = defaults_knob(md["adaptive_router"], where=f"{field}.adaptive_router")
        except InvalidRequestError as exc:
            raise PluginMisconfigured(f"the caller's {label} defaults are invalid: {exc}") from exc
        if found:
            knob = merge_knob(knob, found)
            sources.append(label)
    return knob, sources


def request_knob(data: dict[str, Any], call: str) -> dict[str, float] | None:
    """The request's own ``metadata.adaptive_router`` knob, checked. The Responses and
    Anthropic APIs forward ``metadata`` to the provider: ours is taken out of it."""
    for name in ("metadata", "litellm_metadata"):
        md = data.get(name)
        if isinstance(md, dict) and "adaptive_router" in md:
            raw = md.pop("adaptive_router") if call in SINGLE_OUTPUT_CALLS else md["adaptive_router"]
            return validate_knob(raw, where="metadata.adaptive_router")
    return None
