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
                    lr: float, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise mean binary cross-entropy of the served candidates' corrected predictions plus
    ``l2/2`` x the squared norm of the correction (full-batch Adam; the problem is convex).
    ``weights``: how many logged requests each row stands for (rows are (prompt, candidate)
    groups with their mean label: the same loss as the requests, at the cost of the groups)."""
    u, v, b = (x.copy() for x in init)
    weights = np.ones(len(actions)) if weights is None else weights
    n = float(weights.sum())
    rows = np.arange(len(actions))
    z0 = base_logits[rows, actions]
    params = [u, v, b]
    m = [np.zeros_like(p) for p in params]
    s = [np.zeros_like(p) for p in params]
    beta1, beta2 = 0.9, 0.999
    for t in range(1, steps + 1):
        z = z0 + emb @ u + np.einsum("nd,nd->n", emb, v[actions]) + b[actions]
        g = weights * (sigmoid(z) - labels) / n
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


def _bce(p: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> float:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    terms = y * np.log(q) + (1 - y) * np.log(1 - q)
    if weights is None:
        return float(-np.mean(terms))
    return float(-(weights * terms).sum() / weights.sum())


def _groups(idx: np.ndarray, prompt_ids: np.ndarray, actions: np.ndarray,
            labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The requests ``idx`` grouped by (prompt, served candidate), first-seen order: each
    group's prompt id, candidate, mean label and size. A request's correction depends only on
    its prompt and candidate, so the groups carry the whole loss."""
    ids: dict[tuple[int, int], int] = {}
    gid = np.fromiter((ids.setdefault(key, len(ids)) for key in
                       zip(prompt_ids[idx].tolist(), actions[idx].tolist(), strict=True)),
                      dtype=np.int64, count=len(idx))
    counts = np.bincount(gid, minlength=len(ids)).astype(np.float64)
    mean = np.bincount(gid, weights=labels[idx], minlength=len(ids)) / np.maximum(counts, 1.0)
    pairs = np.array(list(ids), dtype=np.int64).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1], mean, counts


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
    # each distinct prompt embedded and routed once (traffic repeats prompts), and the loss
    # summed over (prompt, candidate) groups: memory and time grow with distinct prompts
    distinct, inverse = unique_prompts(bandit.prompts)
    emb = start.embed(distinct)
    base_logits = start.base_logits(distinct)
    # the correction learned so far (zero for a fresh start) is folded into the starting point
    k, d = len(start.candidate_keys), emb.shape[1]
    init = (start.shared_weight if start.shared_weight is not None else np.zeros(d),
            start.candidate_weights if start.candidate_weights is not None else np.zeros((k, d)),
            start.bias.copy())
    actions = cols[bandit.actions]
    y = bandit.labels
    fit_idx, val_idx = split_by_prompt(bandit.prompts, val_share, seed=seed + 1)
    fp, fa, fy, fc = _groups(fit_idx, inverse, actions, y)
    vp, va, vy, vc = _groups(val_idx, inverse, actions, y)
    base_val_loss = _bce(sigmoid(base_logits[vp, va] + start.correction(emb[vp])[np.arange(vp.size), va]),
                         vy, vc) if val_idx.size else float("nan")
    search: dict[float, float] = {}
    if len(fit_idx) >= 10 and len(val_idx) >= 5:
        for l2 in l2_grid:
            u, v, b = _fit_correction(base_logits[fp], emb[fp], fa, fy, l2, init, steps, lr, weights=fc)
            z = base_logits[vp, va] + emb[vp] @ u + np.einsum("nd,nd->n", emb[vp], v[va]) + b[va]
            search[float(l2)] = _bce(sigmoid(z), vy, vc)
        best_l2 = min(search, key=lambda key: search[key])
    else:
        best_l2 = float(max(l2_grid))
    ap, aa, ay, ac = _groups(np.arange(len(bandit)), inverse, actions, y)
    u, v, b = _fit_correction(base_logits[ap], emb[ap], aa, ay, best_l2, init, steps, lr, weights=ac)
    router = FeedbackTunedRouter(start.candidate_keys, start.base, encoder=start.encoder,
                                 shared_weight=u, candidate_weights=v, bias=b,
                                 generation=start.generation)
    router.use_encoder(start._encoder_obj)
    info = {"l2": best_l2, "l2_search_val_bce": search, "base_val_bce": base_val_loss,
            "generation": router.generation, "train_requests": len(bandit),
            "base_type": start.base.name}
    return router, info
