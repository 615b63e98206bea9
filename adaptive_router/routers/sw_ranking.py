"""``sw-ranking`` (RouteLLM's ``sw_ranking``): similarity-weighted Bradley-Terry over stored
comparisons.

For a new prompt with embedding e, every training prompt i gets the weight
``w_i = gamma ** (1 + s_i / max_j s_j)`` with s_i the cosine similarity of e and e_i (RouteLLM,
Ong et al. 2024, section 4.2, eq. 4; gamma = 10 there). The weighted comparisons of the
candidates on those prompts are then summarised per prompt:

- relative targets: a Bradley-Terry model fitted on the weighted pairwise outcomes of *all K*
  candidates (ties count half a win each, as in RouteLLM's Elo with ties). The predicted quality
  of candidate m is P(m at least as good as the reference) = P_BT(m beats ref) + 1/2 P(tie),
  where P(tie) is the weighted tie rate of m against the reference; for two candidates this is
  exactly the weighted share of prompts where m held up.
- absolute targets (score tables): the similarity-weighted mean quality of each candidate.

The router stores the training embeddings (float16) and the candidates' qualities; there are no
gradient-trained weights, only ``gamma`` (chosen on validation data by the trainer).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_router.routers.embedding import EmbeddingRouter


def bradley_terry(wins: np.ndarray, iters: int = 50, prior: float = 0.5) -> np.ndarray:
    """Log-strengths (B, K) from weighted win matrices ``wins[b, i, j]`` (i beat j), by the
    minorisation-maximisation algorithm (Hunter 2004); ``prior`` pseudo-wins each way keep the
    estimate finite when a candidate never loses."""
    w = wins + prior * (1 - np.eye(wins.shape[-1]))[None]
    games = w + np.transpose(w, (0, 2, 1))
    total_wins = w.sum(axis=2)
    p = np.ones(wins.shape[:2])
    for _ in range(iters):
        denom = (games / (p[:, :, None] + p[:, None, :])).sum(axis=2)
        p = total_wins / np.maximum(denom, 1e-12)
        p = p / p.sum(axis=1, keepdims=True)
    return np.log(np.maximum(p, 1e-12))


class SWRankingRouter(EmbeddingRouter):
    """Similarity-weighted ranking over the stored training prompts."""

    name = "sw-ranking"
    batch_size = 256

    def __init__(
        self,
        candidate_keys: Sequence[str],
        encoder: str = "minilm",
        reference: str | None = None,
        embedding_cache: str | None = None,
        gamma: float = 10.0,
        bt_iters: int = 50,
    ) -> None:
        super().__init__(candidate_keys, encoder, reference, embedding_cache)
        self.gamma = float(gamma)
        self.bt_iters = bt_iters
        self.train_embeddings = np.zeros((0, 384), np.float16)
        self.train_quality = np.zeros((0, len(self.candidate_keys)), np.float32)

    def fit_memory(self, embeddings: np.ndarray, quality: np.ndarray) -> SWRankingRouter:
        """Store the training comparisons (embeddings and each candidate's quality)."""
        self.train_embeddings = np.asarray(embeddings, np.float16)
        self.train_quality = np.asarray(quality, np.float32)
        return self

    def weights(self, emb: np.ndarray) -> np.ndarray:
        """RouteLLM's similarity weights (n, N), normalised to sum 1 per prompt."""
        sims = emb.astype(np.float32) @ self.train_embeddings.astype(np.float32).T
        top = np.maximum(sims.max(axis=1, keepdims=True), 1e-6)
        logw = (1.0 + sims / top) * np.log(self.gamma)
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        return w / w.sum(axis=1, keepdims=True)

    def _predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        w = self.weights(emb)
        q = self.train_quality
        if self.reference is None:
            return w @ q
        k = q.shape[1]
        beats = (q[:, :, None] > q[:, None, :]).astype(np.float32)  # (N, K, K)
        ties = (q[:, :, None] == q[:, None, :]).astype(np.float32)
        win_w = (w @ beats.reshape(len(q), -1)).reshape(-1, k, k)
        tie_w = (w @ ties.reshape(len(q), -1)).reshape(-1, k, k)
        # the weights sum to 1 per prompt, so the prior is 0.1% of the evidence: it only keeps
        # the strengths finite when a candidate never loses
        strength = bradley_terry(win_w + 0.5 * tie_w, iters=self.bt_iters, prior=1e-3)
        ref = self.candidate_keys.index(self.reference)
        p_beats = 1.0 / (1.0 + np.exp(strength[:, [ref]] - strength))
        return p_beats + 0.5 * tie_w[:, :, ref]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma, "bt_iters": self.bt_iters}

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {"train_embeddings": self.train_embeddings, "train_quality": self.train_quality}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        self.train_embeddings = np.asarray(tensors["train_embeddings"], np.float16)
        self.train_quality = np.asarray(tensors["train_quality"], np.float32)
