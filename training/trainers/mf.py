"""Trainer of RouteLLM's ``mf`` router (matrix factorisation on frozen prompt embeddings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adaptive_router.training.trainers.heads import data_report, fit_head, numpy_of, prepare

from adaptive_router.records import Record
from adaptive_router.routers.mf import MFRouter


def _module(dim: int, k: int, factors: int, reference_index: int | None) -> Any:
    import torch
    from torch import nn

    class MF(nn.Module):
        """f(m, e) = out . (v_m * proj e) + b_m; logits relative to the reference when given."""

        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(dim, factors, bias=False)
            self.model_vectors = nn.Parameter(torch.randn(k, factors) * 0.1)
            self.out = nn.Parameter(torch.randn(factors) * 0.1)
            self.model_bias = nn.Parameter(torch.zeros(k))

        def forward(self, e: torch.Tensor) -> torch.Tensor:
            z = self.proj(e)
            f = (z[:, None, :] * self.model_vectors[None]) @ self.out + self.model_bias
            return f if reference_index is None else f - f[:, [reference_index]]

    return MF()


def fit_mf(
    train: Sequence[Record],
    val: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    seed: int = 0,
    progress: bool = True,
    encoder: str = "minilm",
    target: str = "auto",
    reference: str | None = None,
    factors: int = 128,
    lr: float = 3e-3,
    weight_decay: float = 1e-2,
    max_epochs: int = 200,
    batch_size: int = 256,
    patience: int = 10,
    device: str | None = None,
) -> tuple[MFRouter, dict[str, Any]]:
    """Fit the bilinear MF model with early stopping on validation BCE."""
    import torch

    keys = list(candidate_keys)
    data = prepare(train, val, keys, quality_score, encoder, target, reference, progress=progress)
    dim = data.x_train.shape[1]
    ref_idx = keys.index(data.spec.reference) if data.spec.reference else None
    torch.manual_seed(seed)
    module = _module(dim, len(keys), factors, ref_idx)
    opt_report = fit_head(module, data, lr=lr, weight_decay=weight_decay, max_epochs=max_epochs,
                          batch_size=batch_size, patience=patience, seed=seed, progress=progress,
                          desc="mf", device=device)
    w = numpy_of(module)
    router = MFRouter(keys, encoder=encoder, reference=data.spec.reference, dim=dim, factors=factors)
    router.set_tensors({"proj": w["proj.weight"], "model_vectors": w["model_vectors"], "out": w["out"],
                        "model_bias": w["model_bias"]})
    return router, {**data_report(data), **opt_report}
