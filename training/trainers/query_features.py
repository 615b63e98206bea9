"""Fitting :class:`~adaptive_router.routers.query_features.QueryFeatures` on training records.

The domain classifier and the per-domain accuracies are AR-LLM's (see
:mod:`adaptive_router.training.trainers.arllm`); the neighbour bank is the training prompts'
embeddings with their candidate qualities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from adaptive_router.records import Record
from adaptive_router.routers.query_features import QueryFeatures


def fit_query_features(records: Sequence[Record], x: np.ndarray, quality: np.ndarray,
                       blocks: Sequence[str], neighbours: int = 25, n_domains: int = 8,
                       smoothing: float = 5.0, weight_decay: float = 1e-3,
                       seed: int = 0) -> QueryFeatures:
    """``x`` (R, d) embeddings and ``quality`` (R, K) candidate qualities of ``records``."""
    from adaptive_router.training.trainers.arllm import _fit_linear, assign_domains

    qf = QueryFeatures(blocks, neighbours=neighbours)
    tensors: dict[str, np.ndarray] = {}
    if {"domains", "domain_prior"} & set(qf.blocks):
        dom, names, _ = assign_domains(records, x, n_domains, seed)
        if len(names) > 1:
            tensors["qf_dom_w"], tensors["qf_dom_b"] = _fit_linear(x, dom, "softmax", weight_decay, 200, seed)
        else:
            tensors["qf_dom_w"], tensors["qf_dom_b"] = np.zeros((1, x.shape[1])), np.zeros(1)
        strength = quality.mean(axis=0)
        acc = np.zeros((quality.shape[1], len(names)))
        for j in range(len(names)):
            m = dom == j
            acc[:, j] = (quality[m].sum(axis=0) + smoothing * strength) / (m.sum() + smoothing)
        tensors["qf_dom_acc"] = acc
    if "neighbours" in qf.blocks:
        tensors["qf_bank_x"] = np.asarray(x, np.float32)
        tensors["qf_bank_q"] = np.asarray(quality, np.float64)
    qf.set_tensors(tensors)
    return qf
