"""Streams through the proxy plugin: asking for the billed usage, reading chunks, and putting
the realised decision and cost on the stream's end.

A stream's headers leave before its cost is known, so the plugin holds back the chunks from the
one that finishes the answer on, accounts the request, and attaches the ``adaptive_router`` key
to a chunk the client receives. Three stream shapes arrive here: chat completion chunks,
Responses API events and the raw Server-Sent Events of Anthropic's ``/v1/messages``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def ask_for_stream_usage(data: dict[str, Any]) -> bool:
    """Have the stream report its billed usage; LiteLLM drops that extra chunk before the client
    sees it when the client did not ask for it (its own ``_litellm_strip_stream_usage``).

    LiteLLM's stream wrapper reads ``stream_options`` from the request's logging object, which
    the proxy built before this hook ran: it is updated too. Returns whether usage was injected.
    """
    options = data.get("stream_options")
    if data.get("_litellm_strip_stream_usage") is True:
        # the proxy itself asked for usage on the client's behalf (its stream usage tracking,
        # before this hook) and will drop the usage-only chunk: the client did not ask for it,
        # so the key must ride on the finish chunk, which the client does receive
        return True
    if isinstance(options, dict) and options.get("include_usage") is True:
        return False
    data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    data["_litellm_strip_stream_usage"] = True
    logging_obj = data.get("litellm_logging_obj")
    if logging_obj is not None and getattr(logging_obj, "stream_options", None) is None:
        try:
            logging_obj.stream_options = dict(data["stream_options"])
        except Exception:  # an internal detail of LiteLLM: without it the plugin counts tokens
            pass
    return True


def attach_to_stream_end(held: list[Any], body: dict[str, Any], usage: Any, injected: bool) -> None:
    """Put the ``adaptive_router`` key on the stream's last chunks the client receives.

    When the plugin asked for usage (the client did not), LiteLLM drops the usage-only chunk, so
    the finish chunk carries both ``usage`` and the key; when the client asked, the usage chunk
    it receives carries the key. LiteLLM's fast chunk serializer writes only the standard fields,
    so the chosen chunk must hold ``usage`` (or ``provider_specific_fields``) to be serialized in
    full, extra key included.
    """
    usage_chunk = next((c for c in reversed(held) if getattr(c, "usage", None) is not None), None)
    if usage_chunk is not None and not injected:
        target = usage_chunk
    else:
        target = held[0]
        if usage is not None and getattr(target, "usage", None) is None:
            target.usage = usage
        elif usage is None:
            target.provider_specific_fields = {"adaptive_router": body}
    target.adaptive_router = body


def _anthropic_sse_text_and_usage(chunk: bytes | str) -> tuple[str, Any, bool]:
    """(text, usage, False) of the Server-Sent Events of an Anthropic ``/v1/messages`` stream.

    ``message_start`` carries the input tokens, ``message_delta`` the output tokens; text comes
    in ``content_block_delta`` events. Raw SSE bytes cannot carry an extra key, so nothing is
    held back for one (the answer never "ends" here)."""
    raw = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
    text: list[str] = []
    usage: dict[str, Any] = {}
    for line in raw.splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        kind = event.get("type")
        if kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            text.append(str(event["delta"].get("text") or ""))
        elif kind == "message_start" and isinstance(event.get("message"), dict):
            usage.update(event["message"].get("usage") or {})
        elif kind == "message_delta" and isinstance(event.get("usage"), dict):
            usage.update({k: v for k, v in event["usage"].items() if v is not None})
    return "".join(text), (usage or None), False


def chunk_text_and_usage(chunk: Any) -> tuple[str, Any, bool]:
    """(text delta, usage or None, whether the answer ends here) of a chat stream chunk, a
    Responses API stream event or a piece of an Anthropic messages event stream."""
    def get(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)

    if isinstance(chunk, bytes | str):
        return _anthropic_sse_text_and_usage(chunk)

    choices = get(chunk, "choices")
    if choices:
        delta = get(choices[0], "delta")
        text = get(delta, "content") if delta is not None else None
        return str(text or ""), get(chunk, "usage"), bool(get(choices[0], "finish_reason"))
    kind = get(chunk, "type")
    kind = str(getattr(kind, "value", kind) or "")
    if kind.endswith("output_text.delta"):
        return str(get(chunk, "delta") or ""), None, False
    if kind.endswith("response.completed"):
        return "", get(get(chunk, "response"), "usage"), True
    return "", get(chunk, "usage"), False
