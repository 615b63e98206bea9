"""The Verifier interface: how much to believe one cascade step's answer.

A cascade keeps a step's answer when its verifier score reaches the acceptance level and calls
the next (dearer) step otherwise. A verifier sees what the step produced, not only the prompt:
the step's samples and the one kept, the answers earlier steps kept, and the router's prior for
the step's candidate. A verifier that read only the prompt would be a pre-call router again.

One abstract method, :meth:`Verifier._score_batch`; scores are probabilities in [0, 1] that the
kept answer is correct (or acceptable), so one acceptance level means the same for every
verifier.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from adaptive_router.errors import ConfigError


@dataclass(frozen=True)
class Evidence:
    """What one cascade step produced, as a verifier sees it.

    ``samples``: the step's n sample texts; ``chosen``: the index of the kept one;
    ``earlier``: the answers kept by the steps before it (other models, cheapest first);
    ``prior``: the router's predicted quality of this step's candidate, when a router ran;
    ``model``: the step's model (a trained verifier keeps one head per model it was trained on).
    """

    prompt: str
    samples: tuple[str, ...]
    chosen: int = 0
    earlier: tuple[str, ...] = field(default_factory=tuple)
    prior: float | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        if not self.samples:
            raise ConfigError("a verifier needs at least one sample of the step")
        if not 0 <= self.chosen < len(self.samples):
            raise ConfigError(f"chosen index {self.chosen} is outside the {len(self.samples)} samples")

    @property
    def answer(self) -> str:
        """The kept sample's text."""
        return self.samples[self.chosen]


class Verifier(ABC):
    """Scores cascade steps: P(the kept answer is correct | what the step produced)."""

    #: Registry name, stored in a trained verifier's ``config.json``.
    name: ClassVar[str] = "verifier"

    @abstractmethod
    def _score_batch(self, evidence: Sequence[Evidence]) -> np.ndarray:
        """Scores of shape (len(evidence),) in [0, 1]."""

    def score_batch(self, evidence: Sequence[Evidence]) -> np.ndarray:
        """Scores of many steps, clipped to [0, 1]."""
        evidence = list(evidence)
        if not evidence:
            return np.zeros(0)
        scores = np.asarray(self._score_batch(evidence), dtype=np.float64)
        if scores.shape != (len(evidence),):
            raise ConfigError(f"verifier {self.name} returned shape {scores.shape} for "
                              f"{len(evidence)} steps")
        return np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0)

    def score(self, evidence: Evidence) -> float:
        """The score of one step."""
        return float(self.score_batch([evidence])[0])

    async def ascore(self, evidence: Evidence) -> float:
        """Async :meth:`score`, off the event loop (a trained or reward-model verifier is CPU-bound)."""
        return await asyncio.to_thread(self.score, evidence)

    def describe(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
