"""AR-LLM's routers for many specialised models: HDP and NIR.

AR-LLM describes a query by a low-dimensional **query vector** — the probabilities of a domain
classifier and a difficulty regressor's estimate — and each model (here: each (model, n)
candidate) by a **model vector**, its accuracy per domain learned from the training records.

- **HDP** (Heuristic Difficulty Penalty): no network over pairs. The expected score of a
  candidate is its accuracy in the query's domains, ``S = p(q) . a_k``, lowered on hard queries
  in proportion to how weak the candidate is overall:
  ``S_hdp = clip(p(q) . a_k - gamma * d(q) * (1 - s_k), 0, 1)``, with ``s_k`` the candidate's
  overall accuracy and ``gamma`` fitted on the training records. (Our reading of the heuristic:
  difficulty hurts weak models more than strong ones.)
- **NIR** (Neural Interaction Router): a small network over (query vector, model vector,
  their interaction, the candidate's identity) predicting ``P(correct | query, model)``.
  Optionally each (query, candidate) pair also carries the candidate's nearest-neighbour
  quality prior (:class:`~adaptive_router.routers.query_features.QueryFeatures`, block
  ``neighbours``): the candidate's mean quality on the most similar training prompts.

The user's preference ``beta`` between quality and cost enters through the policy: AR-LLM
maximises ``(1 - beta) * S - beta * C`` with C the normalised cost, which is
:class:`~adaptive_router.policy.TradeoffPolicy` with ``tradeoff = beta / (1 - beta)``
(:func:`arllm_policy`). The routers themselves predict quality only, like every router here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_router.errors import CheckpointError, InvalidRequestError, RoutingError
from adaptive_router.policy import TradeoffPolicy
from adaptive_router.routers.best_route import mlp_forward
from adaptive_router.routers.embedding import EmbeddingRouter, sigmoid
from adaptive_router.routers.query_features import QueryFeatures

_QUERY_TENSORS = {"dom_w", "dom_b", "diff_w", "diff_b", "model_acc", "model_strength"}


def arllm_policy(beta: float) -> TradeoffPolicy:
    """AR-LLM's utility ``(1 - beta) S - beta C`` as a trade-off policy (beta in [0, 1))."""
    beta = float(beta)
    if not 0.0 <= beta < 1.0:
        raise InvalidRequestError(f"beta must be within [0, 1), got {beta}; 0 = quality only")
    return TradeoffPolicy(beta / (1.0 - beta))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ARLLMRouter(EmbeddingRouter):
    """Shared query-vector machinery of HDP and NIR (predictions are absolute: expected quality).

    Tensors: ``dom_w (D, dim)``, ``dom_b (D,)`` (domain classifier), ``diff_w (dim,)``,
    ``diff_b (1,)`` (difficulty regressor, difficulty = 1 - mean quality over candidates),
    ``model_acc (K, D)`` (per-domain accuracy of every candidate) and ``model_strength (K,)``
    (overall accuracy).
    """

    name = "arllm"
    _extra_tensors: frozenset[str] = frozenset()

    def __init__(self, candidate_keys: Sequence[str], domains: Sequence[str] = (),
                 encoder: str = "minilm", embedding_cache: str | None = None,
                 report: dict[str, Any] | None = None) -> None:
        super().__init__(candidate_keys, encoder=encoder, reference=None,
                         embedding_cache=embedding_cache)
        self.domains = list(domains)
        self.report = dict(report or {})
        self.weights: dict[str, np.ndarray] = {}

    def query_vector(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Domain probabilities (n, D) and difficulty (n,) of embedded queries."""
        if not self.weights:
            raise RoutingError(f"this {self.name} router is untrained; train it with "
                               f"`adaptive-router train --router {self.name} ...`")
        w = self.weights
        x = np.asarray(emb, np.float64)
        p = softmax(x @ w["dom_w"].T + w["dom_b"])
        d = sigmoid(x @ w["diff_w"] + w["diff_b"][0])
        return p, d

    def get_config(self) -> dict[str, Any]:
        cfg = {**super().get_config(), "domains": self.domains, "report": self.report}
        cfg.pop("reference", None)
        return cfg

    def get_tensors(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float32) for k, v in self.weights.items()}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        missing = (_QUERY_TENSORS | self._extra_tensors) - set(tensors)
        if missing:
            raise CheckpointError(f"{self.name} checkpoint lacks tensors {sorted(missing)}; retrain it")
        self.weights = {k: np.asarray(v, np.float64) for k, v in tensors.items()}


class HDPRouter(ARLLMRouter):
    """AR-LLM's Heuristic Difficulty Penalty router (``gamma`` fitted in training)."""

    name = "arllm-hdp"

    def __init__(self, candidate_keys: Sequence[str], domains: Sequence[str] = (),
                 gamma: float = 0.0, encoder: str = "minilm", embedding_cache: str | None = None,
                 report: dict[str, Any] | None = None) -> None:
        super().__init__(candidate_keys, domains=domains, encoder=encoder,
                         embedding_cache=embedding_cache, report=report)
        self.gamma = float(gamma)

    def scores_from_query(self, p: np.ndarray, d: np.ndarray) -> np.ndarray:
        w = self.weights
        s = p @ w["model_acc"].T - self.gamma * d[:, None] * (1.0 - w["model_strength"][None, :])
        return np.clip(s, 0.0, 1.0)

    def _predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        return self.scores_from_query(*self.query_vector(emb))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma}


def nir_inputs(p: np.ndarray, d: np.ndarray, model_acc: np.ndarray,
               model_strength: np.ndarray, pair_priors: np.ndarray | None = None) -> np.ndarray:
    """NIR's input for every (query, candidate) pair: shape (n * K, features), query-major.

    [p, d, a_k, p * a_k, d * s_k, one-hot(k)]: the query vector, the model vector, their
    interactions, and the candidate's identity (a learned per-candidate bias); then, when
    ``pair_priors`` (n, B * K: B blocks of one value per candidate) is given, candidate k's B
    prior values.
    """
    n, k = len(p), len(model_acc)
    pq = np.repeat(p, k, axis=0)
    dq = np.repeat(d, k)[:, None]
    a = np.tile(model_acc, (n, 1))
    s = np.tile(model_strength, n)[:, None]
    onehot = np.tile(np.eye(k), (n, 1))
    parts = [pq, dq, a, pq * a, dq * s, onehot]
    if pair_priors is not None:
        blocks = pair_priors.shape[1] // k
        parts.append(pair_priors.reshape(n, blocks, k).transpose(0, 2, 1).reshape(n * k, blocks))
    return np.concatenate(parts, axis=1)


class NIRRouter(ARLLMRouter):
    """AR-LLM's Neural Interaction Router: ``P(correct | query vector, model vector)``."""

    name = "arllm-nir"
    _extra_tensors = frozenset({"nir_w1", "nir_b1", "nir_w2", "nir_b2"})

    def __init__(self, candidate_keys: Sequence[str], domains: Sequence[str] = (),
                 hidden: int = 64, encoder: str = "minilm", embedding_cache: str | None = None,
                 pair_features: dict[str, Any] | None = None,
                 report: dict[str, Any] | None = None) -> None:
        super().__init__(candidate_keys, domains=domains, encoder=encoder,
                         embedding_cache=embedding_cache, report=report)
        self.hidden = hidden
        self.pair_features = QueryFeatures(**pair_features) if pair_features else None

    def pair_inputs(self, emb: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """The network's input for every (query, candidate) pair of embedded queries."""
        p, d = self.query_vector(emb)
        w = self.weights
        priors = (self.pair_features.transform(emb, exclude_self=exclude_self)
                  if self.pair_features is not None else None)
        return nir_inputs(p, d, w["model_acc"], w["model_strength"], priors)

    def _predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        z = self.pair_inputs(emb)
        return sigmoid(mlp_forward(z, self.weights, prefix="nir_"))[:, 0].reshape(len(emb), -1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden": self.hidden,
                "pair_features": self.pair_features.get_config() if self.pair_features else None}

    def get_tensors(self) -> dict[str, np.ndarray]:
        extra = self.pair_features.get_tensors() if self.pair_features else {}
        return {**super().get_tensors(), **extra}

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        super().set_tensors({k: v for k, v in tensors.items() if not k.startswith("qf_")})
        if self.pair_features is not None:
            self.pair_features.set_tensors(tensors)
