"""The RewardModel interface: score (prompt, response) pairs in batches.

Best-of-n keeps the argmax of these scores. Implementations: any Hugging Face
sequence-classification reward model by path, and the proxy reward model the project trains
(``adaptive-router train-reward``). One abstract method, :meth:`RewardModel._score`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from adaptive_router.errors import RewardModelError


class RewardModel(ABC):
    """Scores responses to prompts; higher is better."""

    name: ClassVar[str] = "reward"
    batch_size: int = 32
    #: Dollars per scored (prompt, response) pair, when the reward model is priced.
    cost_per_pair_usd: float = 0.0

    @abstractmethod
    def _score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Scores of shape (len(prompts),) for aligned prompts and responses."""

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Scores for aligned (prompt, response) pairs, in batches of ``batch_size``."""
        if len(prompts) != len(responses):
            raise RewardModelError(
                f"{len(prompts)} prompts but {len(responses)} responses; pass aligned pairs"
            )
        if not prompts:
            return np.zeros(0)
        out = [np.asarray(self._score(prompts[i:i + self.batch_size],
                                      responses[i:i + self.batch_size]), dtype=np.float64)
               for i in range(0, len(prompts), self.batch_size)]
        return np.concatenate(out)

    def score_samples(self, prompt: str, responses: Sequence[str]) -> np.ndarray:
        """Scores of n responses to one prompt."""
        return self.score([prompt] * len(responses), list(responses))

    async def ascore_samples(self, prompt: str, responses: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self.score_samples, prompt, responses)
