"""An LLM judge as a verifier, through LiteLLM: ask a model whether the answer is correct.

AutoMix's few-shot self-verification in its simplest form: the judge model (any model
``litellm.completion`` reaches: a cheap hosted model, a proxy alias, or the local
``local/smollm2-135m-instruct``) is asked ``votes`` times whether the kept answer answers the
question correctly, and the score is the share of "yes" replies. The judge's calls are paid for
and reported through :attr:`JudgeVerifier.last_cost_usd`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_router.errors import ConfigError
from adaptive_router.verifiers.base import Evidence, Verifier

JUDGE_PROMPT = (
    "You check answers. Question:\n{prompt}\n\nProposed answer:\n{answer}\n\n"
    "Is the proposed answer correct? Reply with one word: yes or no."
)
_YES = re.compile(r"^\W*(yes|correct|true)\b", re.IGNORECASE)


class JudgeVerifier(Verifier):
    """The share of ``votes`` judge replies that say the answer is correct."""

    name = "judge"

    def __init__(self, model: str, votes: int = 3, api_base: str | None = None,
                 temperature: float = 0.7, max_tokens: int = 4, **completion_kwargs: Any) -> None:
        if not model:
            raise ConfigError("the judge verifier needs a model, e.g. judge:gpt-4o-mini")
        if votes < 1:
            raise ConfigError(f"votes must be >= 1, got {votes}")
        self.model = model
        self.votes = int(votes)
        self.api_base = api_base
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.completion_kwargs = completion_kwargs
        self.last_cost_usd = 0.0

    def _messages(self, ev: Evidence) -> list[dict[str, str]]:
        return [{"role": "user", "content": JUDGE_PROMPT.format(prompt=ev.prompt, answer=ev.answer)}]

    def _kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"model": self.model, "temperature": self.temperature,
                              "max_tokens": self.max_tokens, **self.completion_kwargs}
        if self.api_base:
            kw["api_base"] = self.api_base
        return kw

    def _share(self, response: Any) -> float:
        texts = [str(getattr(c.message, "content", "") or "") for c in response.choices]
        if not texts:
            return 0.0
        try:
            import litellm

            self.last_cost_usd = float(litellm.completion_cost(completion_response=response) or 0.0)
        except Exception:  # an unpriced judge (a local model) costs nothing we can report
            self.last_cost_usd = 0.0
        return sum(1 for t in texts if _YES.match(t)) / len(texts)

    def _score_batch(self, evidence: Sequence[Evidence]) -> np.ndarray:
        import litellm

        out = []
        for ev in evidence:
            response = litellm.completion(messages=self._messages(ev), n=self.votes, **self._kwargs())
            out.append(self._share(response))
        return np.array(out)

    async def ascore(self, evidence: Evidence) -> float:
        import litellm

        response = await litellm.acompletion(messages=self._messages(evidence), n=self.votes,
                                             **self._kwargs())
        return float(np.clip(self._share(response), 0.0, 1.0))

    def describe(self) -> str:
        return f"judge({self.model})"
