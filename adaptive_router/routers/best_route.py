"""BEST-Route's multi-head router over (model, n) candidates.

BEST-Route (Ding et al., ICML 2025) extends Hybrid LLM's small-vs-large router to candidates
(model, n): call ``model`` once with ``n`` samples and keep the one a proxy reward model scores
highest. One shared trunk reads the prompt and one head per candidate predicts the probability
that the candidate's kept answer is at least as good as the reference model's answer, up to a
relaxation ``t`` (``P[q(model, n) >= q(reference) - t]``). At inference the threshold policy picks
the cheapest candidate whose predicted probability reaches the threshold (BEST-Route's rule); the
trade-off and budget policies work on the same predictions.

The trunk reads sentence embeddings (MiniLM by default, cached), optionally with the extra
prompt features of :class:`~adaptive_router.routers.query_features.QueryFeatures` (domain
probabilities, per-domain and nearest-neighbour quality priors); several seeds can be averaged
(an ensemble). The forward pass is plain numpy, so serving needs no torch. Training lives in
:mod:`adaptive_router.training.trainers.best_route` (bootstrapped best-of-n labels, multi-head
binary cross-entropy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_router.errors import CheckpointError, RoutingError
from adaptive_router.routers.embedding import EmbeddingRouter, sigmoid
from adaptive_router.routers.query_features import QueryFeatures


def mlp_forward(x: np.ndarray, weights: dict[str, np.ndarray], prefix: str = "") -> np.ndarray:
    """``relu(x W1^T + b1) W2^T + b2`` (the logits of a one-hidden-layer network).

    Stacked weights (a leading member axis, ``w1`` of shape (S, H, F)) are an ensemble of S
    networks; their logits are averaged."""
    w1, b1, w2, b2 = (weights[f"{prefix}{k}"] for k in ("w1", "b1", "w2", "b2"))
    if w1.ndim == 3:
        return np.mean([mlp_forward(x, {"w1": w1[i], "b1": b1[i], "w2": w2[i], "b2": b2[i]})
                        for i in range(len(w1))], axis=0)
    h = np.maximum(0.0, x @ w1.T + b1)
    return h @ w2.T + b2


class BestRouteRouter(EmbeddingRouter):
    """Multi-head router: P(candidate's best-of-n answer >= the reference's - t) per candidate.

    Parameters
    ----------
    candidate_keys: the (model, n) keys, e.g. ``["small#1", "small#3", "large#1"]``.
    reference: the reference candidate key (its column is 1 by definition); ``None`` with
        ``label="quality"``.
    relaxation: BEST-Route's ``t`` the heads were trained with (recorded, for the report).
    label: ``"match"`` (probability of matching the reference, BEST-Route) or ``"quality"``
        (the expected quality of the kept sample, for the trade-off and budget policies).
    encoder, hidden: the embedding model and the trunk's width.
    features: the :class:`QueryFeatures` configuration the trunk reads (``None``: the embedding
        only).
    report: the training report (label statistics, validation loss), kept in config.json.
    """

    name = "best-route"

    def __init__(
        self,
        candidate_keys: Sequence[str],
        reference: str | None = None,
        relaxation: float = 0.0,
        label: str = "match",
        encoder: str = "minilm",
        hidden: int = 128,
        embedding_cache: str | None = None,
        features: dict[str, Any] | None = None,
        report: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(candidate_keys, encoder=encoder, reference=reference,
                         embedding_cache=embedding_cache)
        if label not in ("match", "quality"):
            raise RoutingError(f"label must be 'match' or 'quality', got {label!r}")
        if label == "match" and reference is None:
            raise RoutingError("label='match' needs the reference candidate the heads compare with")
        self.relaxation = float(relaxation)
        self.label = label
        self.hidden = hidden
        self.features = QueryFeatures(**features) if features else None
        self.report = dict(report or {})
        self.weights: dict[str, np.ndarray] = {}

    def trunk_input(self, emb: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """What the trunk reads: the embedding, or the configured :class:`QueryFeatures`."""
        if self.features is None:
            return np.asarray(emb, np.float64)
        return self.features.transform(emb, exclude_self=exclude_self)

    def _predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        if not self.weights:
            raise RoutingError("this BEST-Route router is untrained; train it with "
                               "`adaptive-router train --router best-route ...`")
        return sigmoid(mlp_forward(self.trunk_input(emb), self.weights))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "relaxation": self.relaxation, "label": self.label,
                "hidden": self.hidden, "report": self.report,
                "features": self.features.get_config() if self.features else None}

    def get_tensors(self) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v, dtype=np.float32) for k, v in self.weights.items()}
        return {**out, **(self.features.get_tensors() if self.features else {})}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        missing = {"w1", "b1", "w2", "b2"} - set(tensors)
        if missing:
            raise CheckpointError(f"BEST-Route checkpoint lacks tensors {sorted(missing)}; retrain it")
        self.weights = {k: np.asarray(v, np.float64) for k, v in tensors.items()
                        if not k.startswith("qf_")}
        if self.features is not None:
            self.features.set_tensors(tensors)
