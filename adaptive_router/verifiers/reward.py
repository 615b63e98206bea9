"""A reward model as a verifier: believe an answer that the reward model scores high.

Any :class:`~adaptive_router.reward.RewardModel` the project loads (the proxy reward model that
``adaptive-router train-reward`` trains, or a Hugging Face sequence-classification reward model by
path) scores the kept sample; a logistic squashing ``sigmoid((score - center) / temperature)``
turns the unbounded score into [0, 1], so one acceptance level works across verifiers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptive_router.reward import RewardModel
from adaptive_router.verifiers.base import Evidence, Verifier


class RewardModelVerifier(Verifier):
    """``sigmoid((reward(prompt, kept answer) - center) / temperature)``."""

    name = "reward"

    def __init__(self, reward_model: RewardModel, center: float = 0.0, temperature: float = 1.0) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.reward_model = reward_model
        self.center = float(center)
        self.temperature = float(temperature)

    def _score_batch(self, evidence: Sequence[Evidence]) -> np.ndarray:
        raw = self.reward_model.score([ev.prompt for ev in evidence], [ev.answer for ev in evidence])
        return 1.0 / (1.0 + np.exp(-np.clip((raw - self.center) / self.temperature, -40, 40)))

    def describe(self) -> str:
        return f"reward({self.reward_model.name})"
