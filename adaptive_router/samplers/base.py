"""The Sampler interface: draw n responses to one chat, with real token counts.

One abstract method, :meth:`Sampler._sample`; :meth:`Sampler.sample` validates the request and
times it, and :meth:`Sampler.asample` runs it off the event loop (backends with a native async
client override it).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adaptive_router.errors import InvalidRequestError

Messages = list[dict[str, Any]]


@dataclass
class SampleBatch:
    """n samples of one prompt: texts, the prompt's token count (paid once) and each sample's
    output token count (each paid)."""

    texts: list[str]
    prompt_tokens: int
    output_tokens: list[int]
    model: str
    finish_reasons: list[str] = field(default_factory=list)
    latency_s: float = 0.0
    calls: int = 1
    estimated_tokens: bool = False

    def __post_init__(self) -> None:
        if len(self.texts) != len(self.output_tokens):
            raise ValueError(f"{len(self.texts)} texts but {len(self.output_tokens)} token counts")

    @property
    def n(self) -> int:
        return len(self.texts)


def as_messages(prompt: str | Sequence[Mapping[str, Any]]) -> Messages:
    """A chat from a prompt string (one user turn) or a list of messages (copied)."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidRequestError("the prompt is empty; send some text to sample from")
        return [{"role": "user", "content": prompt}]
    msgs = [dict(m) for m in prompt]
    if not msgs:
        raise InvalidRequestError("messages is empty; send at least one {'role': 'user', ...} turn")
    return msgs


class Sampler(ABC):
    """Draws n samples from one model."""

    #: The model name reported in :class:`SampleBatch` and used for pricing.
    model: str = "model"

    @abstractmethod
    def _sample(self, messages: Messages, n: int, **gen: Any) -> SampleBatch:
        """Draw ``n`` samples for ``messages``; ``gen`` holds generation settings."""

    def sample(self, prompt: str | Sequence[Mapping[str, Any]], n: int = 1, **gen: Any) -> SampleBatch:
        """``n`` samples for a prompt string or a chat, timed."""
        if int(n) < 1:
            raise InvalidRequestError(f"n must be >= 1, got {n}")
        t0 = time.perf_counter()
        batch = self._sample(as_messages(prompt), int(n), **gen)
        batch.latency_s = time.perf_counter() - t0
        return batch

    async def asample(self, prompt: str | Sequence[Mapping[str, Any]], n: int = 1,
                      **gen: Any) -> SampleBatch:
        return await asyncio.to_thread(self.sample, prompt, n, **gen)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"
