"""Translations between LangChain messages, OpenAI / LiteLLM payloads and stream chunks.

:class:`~adaptive_router.integrations.langchain_plugin.chat.ChatAdaptiveRouter` speaks LangChain to its
caller but may call a LiteLLM model, has a selector read the text of each sample, and emits a
chosen best-of-n sample as a stream chunk. These translations live here so that the chat model
itself reads as routing logic.
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk


def selection_text(message: AIMessage) -> str:
    """What a selector reads of a sample: its text, plus its tool calls when it made any."""
    text = message.text if isinstance(message.text, str) else str(message.content)
    if message.tool_calls:
        calls = [{"name": c["name"], "args": c["args"]} for c in message.tool_calls]
        text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False)
    return text


def openai_tool_choice(choice: Any) -> Any:
    """LangChain's ``tool_choice`` spellings in OpenAI's format (what LiteLLM expects)."""
    if choice in (None, "auto", "none", "required"):
        return choice
    if choice in ("any", True):
        return "required"
    if isinstance(choice, str):
        return {"type": "function", "function": {"name": choice}}
    return choice


def message_from_litellm_choice(choice: Any) -> AIMessage:
    """One choice of a LiteLLM chat completion as an ``AIMessage``, tool calls parsed the way
    LangChain's OpenAI models parse them (so selectors and callers see the same shape)."""
    from langchain_core.output_parsers.openai_tools import parse_tool_call

    tool_calls = []
    for tc in getattr(choice.message, "tool_calls", None) or []:
        d = tc.model_dump() if hasattr(tc, "model_dump") else dict(tc)
        parsed = parse_tool_call(d, return_id=True)
        if parsed:
            tool_calls.append(parsed)
    return AIMessage(content=choice.message.content or "", tool_calls=tool_calls)


def final_chunk(message: AIMessage) -> ChatGenerationChunk:
    """A chosen best-of-n sample as one (last) stream chunk."""
    tool_chunks = [{"name": c["name"], "args": json.dumps(c["args"], ensure_ascii=False),
                    "id": c.get("id"), "index": i, "type": "tool_call_chunk"}
                   for i, c in enumerate(message.tool_calls)]
    return ChatGenerationChunk(message=AIMessageChunk(
        content=message.content, tool_call_chunks=tool_chunks,
        usage_metadata=message.usage_metadata, response_metadata=message.response_metadata,
        chunk_position="last"))
