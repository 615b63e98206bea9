"""Trainer of ``sw-ranking`` (RouteLLM's ``sw_ranking``): store the training comparisons and choose the
similarity sharpness gamma on the validation data (lowest binary cross-entropy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from adaptive_router.training.trainers.heads import data_report, prepare

from adaptive_router.records import Record
from adaptive_router.routers.sw_ranking import SWRankingRouter

DEFAULT_GAMMAS = (10.0, 1e2, 1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6)


def _bce(p: np.ndarray, y: np.ndarray, cols: np.ndarray) -> float:
    p = np.clip(p[:, cols], 1e-6, 1 - 1e-6)
    y = y[:, cols]
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_sw_ranking(
    train: Sequence[Record],
    val: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    seed: int = 0,
    progress: bool = True,
    encoder: str = "minilm",
    target: str = "auto",
    reference: str | None = None,
    gamma: float | None = None,
    gammas: Sequence[float] = DEFAULT_GAMMAS,
    bt_iters: int = 50,
) -> tuple[SWRankingRouter, dict[str, Any]]:
    """Keep the comparisons; pick gamma on validation unless it is given."""
    keys = list(candidate_keys)
    data = prepare(train, val, keys, quality_score, encoder, target, reference, progress=progress)
    router = SWRankingRouter(keys, encoder=encoder, reference=data.spec.reference,
                             gamma=gamma or gammas[0], bt_iters=bt_iters)
    router.fit_memory(data.x_train, data.q_train)
    cols = data.learned_columns
    losses: dict[str, float] = {}
    if gamma is None and len(data.x_val):
        grid = list(gammas)
        if progress:
            from tqdm.auto import tqdm

            grid = tqdm(grid, desc="sw-ranking gamma", unit="gamma")
        for g in grid:
            router.gamma = float(g)
            losses[f"{g:g}"] = _bce(router.predict_embedded(data.x_val), data.y_val, cols)
        router.gamma = float(min(gammas, key=lambda g: losses[f"{g:g}"]))
    return router, {**data_report(data), "gamma": router.gamma, "val_bce_by_gamma": losses,
                    "best_val_loss": losses.get(f"{router.gamma:g}")}
