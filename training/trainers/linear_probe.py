"""Trainer of ``linear-probe``: a logistic model per candidate on frozen embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adaptive_router.training.trainers.heads import data_report, fit_head, numpy_of, prepare

from adaptive_router.records import Record
from adaptive_router.routers.linear_probe import LinearProbeRouter


def fit_linear_probe(
    train: Sequence[Record],
    val: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    seed: int = 0,
    progress: bool = True,
    encoder: str = "minilm",
    target: str = "auto",
    reference: str | None = None,
    lr: float = 5e-3,
    weight_decay: float = 1e-3,
    max_epochs: int = 300,
    batch_size: int = 256,
    patience: int = 15,
    device: str | None = None,
) -> tuple[LinearProbeRouter, dict[str, Any]]:
    """Fit one logistic probe per candidate; early stopping on validation BCE."""
    import torch

    data = prepare(train, val, candidate_keys, quality_score, encoder, target, reference, progress=progress)
    dim = data.x_train.shape[1]
    module = torch.nn.Linear(dim, len(candidate_keys))
    opt_report = fit_head(module, data, lr=lr, weight_decay=weight_decay, max_epochs=max_epochs,
                          batch_size=batch_size, patience=patience, seed=seed, progress=progress,
                          desc="linear-probe", device=device)
    router = LinearProbeRouter(candidate_keys, encoder=encoder, reference=data.spec.reference, dim=dim)
    w = numpy_of(module)
    router.set_tensors({"weight": w["weight"], "bias": w["bias"]})
    return router, {**data_report(data), **opt_report}
