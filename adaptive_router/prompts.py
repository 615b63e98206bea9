"""Turning chat messages into the text a router reads.

Routers read the *last user turn* (what the user is asking now) and cost estimates count the
whole conversation. Multimodal content parts contribute their text parts only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adaptive_router.errors import InvalidRequestError


def content_text(content: Any) -> str:
    """The text of one message's ``content``: a string, or the text parts of a part list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") in ("text", "input_text"):
                parts.append(str(part.get("text", "")))
        return "\n".join(parts)
    return str(content)


def validate_messages(messages: Any, where: str = "messages") -> list[Mapping[str, Any]]:
    """Chat messages whose every field has the type the OpenAI schema gives it.

    Checked before any routing or provider call: a ``content`` that is a number would otherwise
    be routed as its string form and fail seconds later inside the provider with a 500 and a
    traceback. Raises :class:`InvalidRequestError` (an HTTP 400) naming the first bad field,
    e.g. ``messages[0].content``.
    """
    if not isinstance(messages, list):
        raise InvalidRequestError(f"{where} must be a list of {{role, content}} objects, "
                                  f"got {type(messages).__name__}")
    for i, m in enumerate(messages):
        at = f"{where}[{i}]"
        if not isinstance(m, Mapping):
            raise InvalidRequestError(f"{at} must be an object with 'role' and 'content', "
                                      f"got {type(m).__name__}")
        role = m.get("role")
        if not isinstance(role, str):
            raise InvalidRequestError(f"{at}.role must be a string such as \"user\", "
                                      f"got {type(role).__name__}")
        content = m.get("content")
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise InvalidRequestError(
                f"{at}.content must be a string or a list of content parts, got "
                f"{type(content).__name__} {str(content)[:40]!r}")
        for j, part in enumerate(content):
            if isinstance(part, str):
                continue
            if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                raise InvalidRequestError(
                    f"{at}.content[{j}] must be an object with a string 'type' such as "
                    f"{{\"type\": \"text\", \"text\": \"...\"}}, got {type(part).__name__}")
            if part["type"] in ("text", "input_text") and not isinstance(part.get("text"), str):
                raise InvalidRequestError(f"{at}.content[{j}].text must be a string, "
                                          f"got {type(part.get('text')).__name__}")
    return messages


def messages_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """All messages as one text (for token counting when no chat template is known)."""
    return "\n".join(f"{m.get('role', 'user')}: {content_text(m.get('content'))}" for m in messages)


def prompt_from_messages(messages: Sequence[Mapping[str, Any]]) -> str:
    """The router's input: the text of the last user message.

    Raises :class:`InvalidRequestError` when there is no user turn or its text is empty,
    saying what to send instead.
    """
    if not messages:
        raise InvalidRequestError("messages is empty; send at least one {'role': 'user', ...} turn")
    for m in reversed(messages):
        if not isinstance(m, Mapping):
            raise InvalidRequestError(
                f"each message must be an object with 'role' and 'content', got {type(m).__name__}"
            )
        if m.get("role") == "user":
            text = content_text(m.get("content"))
            return validate_prompt(text)
    raise InvalidRequestError(
        "the messages have no user turn; adaptive routing reads the last {'role': 'user'} message"
    )


def validate_prompt(text: Any) -> str:
    """A routable prompt: a non-blank string with no lone surrogates (invalid UTF-8)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(f"the prompt is not valid UTF-8 ({exc}); send UTF-8 text") from None
    if not isinstance(text, str):
        raise InvalidRequestError(f"the prompt must be text, got {type(text).__name__}")
    if not text.strip():
        raise InvalidRequestError(
            "the prompt is empty or whitespace only; send the question as the user message's text"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequestError(
            "the prompt contains invalid UTF-8 (unpaired surrogates); send valid UTF-8 text"
        ) from None
    return text
