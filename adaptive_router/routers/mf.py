"""RouteLLM's ``mf`` router: matrix factorisation of (model, prompt) quality.

Each candidate m has a learned vector v_m; the prompt's embedding e is projected by W; the
candidate's score is ``f(m, e) = w . (v_m * W e) + b_m`` (RouteLLM, Ong et al. 2024, section
4.2: a bilinear model scoring how well a model answers a query). With relative targets,
P(m at least as good as the reference) = sigmoid(f(m, e) - f(ref, e)) (a Bradley-Terry
comparison, as RouteLLM scores strong against weak); with absolute targets (K-model score
tables), the expected quality is sigmoid(f(m, e)). Any number of candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_router.routers.embedding import EmbeddingRouter, sigmoid


class MFRouter(EmbeddingRouter):
    """Bilinear scores of K candidate vectors against a projected prompt embedding."""

    name = "mf"

    def __init__(
        self,
        candidate_keys: Sequence[str],
        encoder: str = "minilm",
        reference: str | None = None,
        embedding_cache: str | None = None,
        dim: int = 384,
        factors: int = 128,
    ) -> None:
        super().__init__(candidate_keys, encoder, reference, embedding_cache)
        self.dim, self.factors = dim, factors
        k = len(self.candidate_keys)
        self.proj = np.zeros((factors, dim), np.float32)
        self.model_vectors = np.zeros((k, factors), np.float32)
        self.out = np.zeros(factors, np.float32)
        self.model_bias = np.zeros(k, np.float32)

    def scores(self, emb: np.ndarray) -> np.ndarray:
        """f(m, e) for every candidate: (n, K)."""
        z = emb @ self.proj.T  # (n, factors)
        return (z[:, None, :] * self.model_vectors[None, :, :]) @ self.out + self.model_bias

    def _predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        f = self.scores(emb)
        if self.reference is None:
            return sigmoid(f)
        ref = self.candidate_keys.index(self.reference)
        return sigmoid(f - f[:, [ref]])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "dim": self.dim, "factors": self.factors}

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {"proj": self.proj, "model_vectors": self.model_vectors, "out": self.out,
                "model_bias": self.model_bias}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        for k in ("proj", "model_vectors", "out", "model_bias"):
            setattr(self, k, np.asarray(tensors[k], np.float32))
