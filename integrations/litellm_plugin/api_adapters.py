"""The three APIs the proxy plugin routes, read as one thing: chat messages.

Chat completions (``/v1/chat/completions``) carry ``messages``; the Responses API
(``/v1/responses``) carries ``instructions`` + ``input``; Anthropic's ``/v1/messages`` carries
``system`` + ``messages`` made of content blocks. The router reads a prompt, so each is turned
into chat messages here, with a 400 naming the field when the shape is wrong. The Responses and
Anthropic calls return one output (no ``n``): the router then picks a model with n = 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adaptive_router.errors import InvalidRequestError
from adaptive_router.prompts import content_text, validate_messages

CHAT_CALLS = frozenset({"completion", "acompletion"})
RESPONSES_CALLS = frozenset({"responses", "aresponses"})
ANTHROPIC_CALLS = frozenset({"anthropic_messages"})
#: Calls that return one output (no ``n``): the router picks a model with n = 1.
SINGLE_OUTPUT_CALLS = RESPONSES_CALLS | ANTHROPIC_CALLS


def request_messages(data: Mapping[str, Any], call: str, alias: str = "adaptive-router") -> list[dict[str, Any]]:
    """The request's prompt as chat messages, whichever of the three APIs it came through."""
    if call in CHAT_CALLS:
        return validate_messages(data.get("messages"))
    if call in RESPONSES_CALLS:
        return responses_input_messages(data)
    if call in ANTHROPIC_CALLS:
        return anthropic_input_messages(data)
    raise InvalidRequestError(
        f"{alias!r} routes chat completions (/v1/chat/completions), the Responses API "
        f"(/v1/responses) and Anthropic messages (/v1/messages); this endpoint ({call}) is "
        "not supported")


def metadata_bucket(data: dict[str, Any], call: str | None = None) -> dict[str, Any]:
    """The metadata dict LiteLLM keeps for this request (where the plugin's per-request state
    lives). The Responses and Anthropic routes keep it in ``litellm_metadata``: their
    ``metadata`` is the client's, forwarded to the provider (which would reject our keys)."""
    name = "litellm_metadata" if (call in SINGLE_OUTPUT_CALLS or
                                  ("litellm_metadata" in data and "messages" not in data)) else "metadata"
    md = data.get(name)
    if not isinstance(md, dict):
        md = {}
        data[name] = md
    return md


def responses_input_messages(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A Responses API request's ``instructions`` + ``input`` as chat messages."""
    msgs: list[dict[str, Any]] = []
    if isinstance(data.get("instructions"), str) and data["instructions"].strip():
        msgs.append({"role": "system", "content": data["instructions"]})
    inp = data.get("input")
    if isinstance(inp, str):
        msgs.append({"role": "user", "content": inp})
    elif isinstance(inp, list):
        for i, item in enumerate(inp):
            if isinstance(item, Mapping) and "role" in item:
                content = item.get("content")
                if content is not None and not isinstance(content, str | list):
                    raise InvalidRequestError(f"input[{i}].content must be a string or a list of content "
                                              f"parts, got {type(content).__name__}")
                msgs.append({"role": item["role"], "content": content_text(content)})
    elif inp is not None:
        raise InvalidRequestError(f"input must be a string or a list of input items, got {type(inp).__name__}")
    if not msgs:
        raise InvalidRequestError("the Responses API request has no input; send input: \"...\"")
    return msgs


def _anthropic_block_text(block: Any) -> str:
    """The routable text of one Anthropic content block: text, a tool result's text, or a short
    marker for a tool call (an agent's turn is often tool results only, and is still routed)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, Mapping):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text") or "")
    if kind == "tool_result":
        inner = block.get("content")
        return inner if isinstance(inner, str) else content_text(inner)
    if kind == "tool_use":
        return f"[tool call: {block.get('name', '?')}]"
    return ""


def _anthropic_text(content: Any) -> str:
    """A ``system`` or message ``content``: a string, or its blocks' routable texts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_anthropic_block_text(b) for b in content) if t)
    return ""


def anthropic_input_messages(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An Anthropic ``/v1/messages`` request's ``system`` + ``messages`` as chat messages."""
    msgs: list[dict[str, Any]] = []
    system_text = _anthropic_text(data.get("system"))
    if system_text.strip():
        msgs.append({"role": "system", "content": system_text})
    raw = data.get("messages")
    if not isinstance(raw, list) or not raw:
        raise InvalidRequestError("messages must be a non-empty list of {role, content} objects")
    for i, m in enumerate(raw):
        if not isinstance(m, Mapping) or "role" not in m:
            raise InvalidRequestError("each message must be an object with 'role' and 'content'")
        if not isinstance(m.get("content"), str | list):
            raise InvalidRequestError(f"messages[{i}].content must be a string or a list of content "
                                      f"blocks, got {type(m.get('content')).__name__}")
        msgs.append({"role": m["role"], "content": _anthropic_text(m.get("content"))})
    return msgs
