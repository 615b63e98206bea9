"""``linear-probe``: one logistic model per candidate on the frozen encoder's embeddings.

Cheap and already strong: the baseline every learned router is reported beside. Predicted
quality of candidate k is sigmoid(w_k . e + b_k) where e is the prompt's (normalised) embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_router.routers.embedding import EmbeddingRouter, sigmoid


class LinearProbeRouter(EmbeddingRouter):
    """Logistic probe per candidate: weights ``(K, d)`` and biases ``(K,)``."""

    name = "linear-probe"

    def __init__(
        self,
        candidate_keys: Sequence[str],
        encoder: str = "minilm",
        reference: str | None = None,
        embedding_cache: str | None = None,
        dim: int = 384,
    ) -> None:
        super().__init__(candidate_keys, encoder, reference, embedding_cache)
        self.dim = dim
        k = len(self.candidate_keys)
        self.weight = np.zeros((k, dim), dtype=np.float32)
        self.bias = np.zeros(k, dtype=np.float32)

    def _predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        return sigmoid(emb @ self.weight.T + self.bias)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dim": self.dim}

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {"weight": self.weight, "bias": self.bias}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        self.weight = np.asarray(tensors["weight"], np.float32)
        self.bias = np.asarray(tensors["bias"], np.float32)
