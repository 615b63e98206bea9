"""Hybrid LLM's router (Ding et al., ICLR 2024): a small classifier per non-reference candidate
predicting P(q(small) >= q(large) - t).

The paper fine-tunes DeBERTa; we train a two-layer MLP on the frozen encoder's embeddings (no
DeBERTa checkpoint is available offline, and a frozen encoder trains in seconds on a CPU; the
``bert`` router is the fine-tuned alternative). What makes it Hybrid LLM is the training target,
stored in the config: ``deterministic`` (1[q_s >= q_l]), ``probabilistic`` (the share of sample
pairs with q_s >= q_l) or ``transformed`` (probabilistic with a relaxation t > 0, t chosen on
validation data by the paper's label-spread criterion). With K candidates there is one head per
candidate, all measured against the reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_router.routers.embedding import EmbeddingRouter, sigmoid


class HybridRouter(EmbeddingRouter):
    """MLP ``d -> hidden -> K`` (ReLU) with sigmoid outputs."""

    name = "hybrid"

    def __init__(
        self,
        candidate_keys: Sequence[str],
        encoder: str = "minilm",
        reference: str | None = None,
        embedding_cache: str | None = None,
        dim: int = 384,
        hidden: int = 256,
        target: str = "probabilistic",
        relaxation: float = 0.0,
    ) -> None:
        super().__init__(candidate_keys, encoder, reference, embedding_cache)
        self.dim, self.hidden = dim, hidden
        self.target, self.relaxation = target, float(relaxation)
        k = len(self.candidate_keys)
        self.w1 = np.zeros((hidden, dim), np.float32)
        self.b1 = np.zeros(hidden, np.float32)
        self.w2 = np.zeros((k, hidden), np.float32)
        self.b2 = np.zeros(k, np.float32)

    def _predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        h = np.maximum(emb @ self.w1.T + self.b1, 0.0)
        return sigmoid(h @ self.w2.T + self.b2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dim": self.dim, "hidden": self.hidden,
                "target": self.target, "relaxation": self.relaxation}

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {"w1": self.w1, "b1": self.b1, "w2": self.w2, "b2": self.b2}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        for k in ("w1", "b1", "w2", "b2"):
            setattr(self, k, np.asarray(tensors[k], np.float32))
