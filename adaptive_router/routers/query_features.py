"""Prompt features for the learned (model, n) routers, beyond the raw sentence embedding.

A frozen MiniLM embedding alone is a weak description of *which model will do well*: the
routers learn it from a few thousand labelled prompts. Two cheap, well-known additions carry
most of the signal on multi-task data (measured in ``docs/best_of_n_benchmark.md``):

- ``domains``: the probabilities of a domain classifier (multinomial logistic regression on the
  embedding; domains are the records' task names or k-means clusters) — AR-LLM's query vector;
- ``domain_prior``: those probabilities times every candidate's accuracy per domain on the
  training records (K values: "how good is each candidate on prompts of this kind");
- ``neighbours``: every candidate's mean recorded quality on the ``k`` training prompts nearest
  by cosine (a kNN prior, K values). On the training prompts themselves the prompt is left out
  of its own neighbourhood, so the feature means the same in training as at inference.

:class:`QueryFeatures` computes the concatenation of the chosen blocks from embeddings in plain
numpy (serving needs no torch); its arrays persist with the router (prefix ``qf_``). The
``neighbours`` block stores the training embeddings (float16) and their quality table.
Fitting lives in :mod:`adaptive_router.training.trainers.query_features`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptive_router.errors import CheckpointError, ConfigError

FEATURE_BLOCKS = ("embedding", "domains", "domain_prior", "neighbours")
_TENSORS = {"domains": ("qf_dom_w", "qf_dom_b"), "domain_prior": ("qf_dom_w", "qf_dom_b", "qf_dom_acc"),
            "neighbours": ("qf_bank_x", "qf_bank_q")}


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def neighbour_prior(query: np.ndarray, bank_x: np.ndarray, bank_q: np.ndarray, k: int,
                    exclude_self: bool = False, chunk: int = 1024) -> np.ndarray:
    """(n, K) mean of ``bank_q`` over the ``k`` rows of ``bank_x`` nearest to each query
    (cosine on normalised rows). ``exclude_self``: the queries *are* the bank (row i of the
    query is row i of the bank) and each one is left out of its own neighbourhood."""
    def unit(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a, np.float32)
        return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)

    qx, bx = unit(query), unit(bank_x)
    k = max(1, min(int(k), len(bx) - (1 if exclude_self else 0)))
    out = np.empty((len(qx), bank_q.shape[1]), np.float64)
    for start in range(0, len(qx), chunk):
        sim = qx[start:start + chunk] @ bx.T
        if exclude_self:
            rows = np.arange(sim.shape[0])
            sim[rows, rows + start] = -np.inf
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out[start:start + chunk] = bank_q[idx].mean(axis=1)
    return out


class QueryFeatures:
    """The chosen feature blocks of embedded prompts (see the module docstring).

    Parameters
    ----------
    blocks: a subset of :data:`FEATURE_BLOCKS`, in that order in the output.
    neighbours: k of the kNN prior.
    """

    def __init__(self, blocks: Sequence[str] = ("embedding",), neighbours: int = 25) -> None:
        unknown = set(blocks) - set(FEATURE_BLOCKS)
        if unknown or not blocks:
            raise ConfigError(f"feature blocks must be a non-empty subset of {FEATURE_BLOCKS}, "
                              f"got {list(blocks)}")
        self.blocks = [b for b in FEATURE_BLOCKS if b in blocks]
        self.neighbours = int(neighbours)
        self.tensors: dict[str, np.ndarray] = {}

    @property
    def required_tensors(self) -> set[str]:
        return {t for b in self.blocks for t in _TENSORS.get(b, ())}

    def domain_probabilities(self, emb: np.ndarray) -> np.ndarray:
        t = self.tensors
        return softmax(np.asarray(emb, np.float64) @ t["qf_dom_w"].T + t["qf_dom_b"])

    def transform(self, emb: np.ndarray, exclude_self: bool = False) -> np.ndarray:
        """(n, F) features; ``exclude_self`` when ``emb`` are the training prompts of the bank."""
        missing = self.required_tensors - set(self.tensors)
        if missing:
            raise CheckpointError(f"query features lack arrays {sorted(missing)}; retrain the router")
        x = np.asarray(emb, np.float64)
        parts = []
        p = self.domain_probabilities(x) if {"domains", "domain_prior"} & set(self.blocks) else None
        for block in self.blocks:
            if block == "embedding":
                parts.append(x)
            elif block == "domains":
                parts.append(p)
            elif block == "domain_prior":
                parts.append(p @ self.tensors["qf_dom_acc"].T)
            else:
                parts.append(neighbour_prior(x, self.tensors["qf_bank_x"], self.tensors["qf_bank_q"],
                                             self.neighbours, exclude_self=exclude_self))
        return np.concatenate(parts, axis=1)

    def get_config(self) -> dict:
        return {"blocks": list(self.blocks), "neighbours": self.neighbours}

    def get_tensors(self) -> dict[str, np.ndarray]:
        out = {k: np.asarray(v, np.float32) for k, v in self.tensors.items()}
        if "qf_bank_x" in out:  # the largest array; half precision is plenty for cosine ranking
            out["qf_bank_x"] = out["qf_bank_x"].astype(np.float16)
        return out

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        self.tensors = {k: np.asarray(v, np.float64 if k != "qf_bank_x" else np.float32)
                        for k, v in tensors.items() if k.startswith("qf_")}
