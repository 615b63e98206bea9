"""Warm-started fine-tuning: a feedback-tuned router that starts at the base router's predictions.

Starting exactly at the base router means that little traffic can only nudge it, and the penalty
on the learned logit correction (chosen on a validation slice) keeps the nudge as small as the
data warrants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from adaptive_router.training.retrain.bandit import LoggedBandit, split_by_prompt, unique_prompts

from adaptive_router.routers.base import Router
from adaptive_router.routers.feedback_tuned import FeedbackTunedRouter, sigmoid


def _fit_correction(base_logits: np.ndarray, emb: np.ndarray, actions: np.ndarray, labels: np.ndarray,
                    l2: float, init: tuple[np.ndarray, np.ndarray, np.ndarray], steps: int,
                    lr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise mean binary cross-entropy of the served candidates' corrected predictions plus
    ``l2/2`` x the squared norm of the correction (full-batch Adam; the problem is convex)."""
    u, v, b = (x.copy() for x in init)
    n = len(actions)
    rows = np.arange(n)
    z0 = base_logits[rows, actions]
    params = [u, v, b]
    m = [np.zeros_like(p) for p in params]
    s = [np.zeros_like(p) for p in params]
    beta1, beta2 = 0.9, 0.999
    for t in range(1, steps + 1):
        z = z0 + emb @ u + np.einsum("nd,nd->n", emb, v[actions]) + b[actions]
        g = (sigmoid(z) - labels) / n
        grads = [emb.T @ g + l2 * u, np.zeros_like(v), np.zeros_like(b)]
        np.add.at(grads[1], actions, g[:, None] * emb)
        grads[1] += l2 * v
        np.add.at(grads[2], actions, g)
        grads[2] += l2 * b
        for p, gr, mm, ss in zip(params, grads, m, s, strict=True):
            mm *= beta1
            mm += (1 - beta1) * gr
            ss *= beta2
            ss += (1 - beta2) * gr**2
            p -= lr * (mm / (1 - beta1**t)) / (np.sqrt(ss / (1 - beta2**t)) + 1e-8)
    return u, v, b


def _bce(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def fine_tune_router(
    base: Router,
    bandit: LoggedBandit,
    l2_grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
    steps: int = 400,
    lr: float = 0.05,
    val_share: float = 0.2,
    seed: int = 0,
    encoder: str = "minilm",
) -> tuple[FeedbackTunedRouter, dict[str, Any]]:
    """Warm-start a feedback-tuned router from ``base`` and fit it on the logged triples.

    The L2 strength is chosen from ``l2_grid`` by the held-out cross-entropy of a validation
    slice of the train traffic (split by prompt), then the correction is refit on all of it.
    If ``base`` is itself feedback-tuned, training continues from its correction weights.
    """
    if isinstance(base, FeedbackTunedRouter):
        start = FeedbackTunedRouter(base.candidate_keys, base.base, encoder=base.encoder,
                                    shared_weight=base.shared_weight,
                                    candidate_weights=base.candidate_weights, bias=base.bias,
                                    generation=base.generation + 1)
    else:
        start = FeedbackTunedRouter(base.candidate_keys, base, encoder=encoder)
    from adaptive_router.encoders import shared_encoder, training_cache_path

    start.use_encoder(shared_encoder(start.encoder, disk_cache=training_cache_path()))
    cols = start.restrict(bandit.candidate_keys)
    # each distinct prompt embedded and routed once (traffic repeats prompts)
    distinct, inverse = unique_prompts(bandit.prompts)
    emb = start.embed(distinct)[inverse]
    base_logits = start.base_logits(distinct)[inverse]
    # the correction learned so far (zero for a fresh start) is folded into the starting point
    k, d = len(start.candidate_keys), emb.shape[1]
    init = (start.shared_weight if start.shared_weight is not None else np.zeros(d),
            start.candidate_weights if start.candidate_weights is not None else np.zeros((k, d)),
            start.bias.copy())
    actions = cols[bandit.actions]
    y = bandit.labels
    fit_idx, val_idx = split_by_prompt(bandit.prompts, val_share, seed=seed + 1)
    base_val_loss = _bce(sigmoid(base_logits[val_idx, actions[val_idx]]
                                 + start.correction(emb[val_idx])[np.arange(val_idx.size), actions[val_idx]]),
                         y[val_idx]) if val_idx.size else float("nan")
    search: dict[float, float] = {}
    if len(fit_idx) >= 10 and len(val_idx) >= 5:
        for l2 in l2_grid:
            u, v, b = _fit_correction(base_logits[fit_idx], emb[fit_idx], actions[fit_idx],
                                      y[fit_idx], l2, init, steps, lr)
            z = (base_logits[val_idx, actions[val_idx]] + emb[val_idx] @ u
                 + np.einsum("nd,nd->n", emb[val_idx], v[actions[val_idx]]) + b[actions[val_idx]])
            search[float(l2)] = _bce(sigmoid(z), y[val_idx])
        best_l2 = min(search, key=lambda key: search[key])
    else:
        best_l2 = float(max(l2_grid))
    u, v, b = _fit_correction(base_logits, emb, actions, y, best_l2, init, steps, lr)
    router = FeedbackTunedRouter(start.candidate_keys, start.base, encoder=start.encoder,
                                 shared_weight=u, candidate_weights=v, bias=b,
                                 generation=start.generation)
    router.use_encoder(start._encoder_obj)
    info = {"l2": best_l2, "l2_search_val_bce": search, "base_val_bce": base_val_loss,
            "generation": router.generation, "train_requests": len(bandit),
            "base_type": start.base.name}
    return router, info
