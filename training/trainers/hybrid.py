"""Trainers of Hybrid LLM's router with its three targets (Ding et al., ICLR 2024, section 3):
``hybrid-det`` (deterministic), ``hybrid-prob`` (probabilistic) and ``hybrid-trans``
(transformed labels: probabilistic with a relaxation t, chosen on the validation data by the
paper's criterion, the largest average pairwise label difference)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adaptive_router.training.trainers.heads import data_report, fit_head, numpy_of, prepare
from adaptive_router.training.trainers.targets import choose_relaxation, quality_table, resolve_spec

from adaptive_router.records import Record
from adaptive_router.routers.hybrid import HybridRouter

DEFAULT_T_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)


def fit_hybrid(
    train: Sequence[Record],
    val: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    seed: int = 0,
    progress: bool = True,
    encoder: str = "minilm",
    hybrid_target: str = "probabilistic",
    relaxation: float | None = None,
    t_grid: Sequence[float] = DEFAULT_T_GRID,
    reference: str | None = None,
    hidden: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    max_epochs: int = 200,
    batch_size: int = 128,
    patience: int = 10,
    device: str | None = None,
) -> tuple[HybridRouter, dict[str, Any]]:
    """Fit the Hybrid MLP on deterministic / probabilistic / transformed labels."""
    import torch

    if hybrid_target not in ("deterministic", "probabilistic", "transformed"):
        raise ValueError(f"hybrid_target must be deterministic, probabilistic or transformed, "
                         f"got {hybrid_target!r}")
    keys = list(candidate_keys)
    kind = "deterministic" if hybrid_target == "deterministic" else "probabilistic"
    extra: dict[str, Any] = {}
    t = 0.0
    if hybrid_target == "transformed":
        if relaxation is None:
            spec = resolve_spec(quality_table(train, keys, quality_score), keys, mode="relative",
                                reference=reference, kind="probabilistic")
            t, spreads = choose_relaxation(val, keys, quality_score, spec, t_grid)
            extra = {"relaxation_selection": {"criterion": "average pairwise label difference on validation",
                                              "spread_by_t": spreads, "chosen_t": t}}
        else:
            t = float(relaxation)
    data = prepare(train, val, keys, quality_score, encoder, "relative", reference, kind=kind,
                   relaxation=t, progress=progress)
    dim = data.x_train.shape[1]
    module = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                 torch.nn.Linear(hidden, len(keys)))
    opt_report = fit_head(module, data, lr=lr, weight_decay=weight_decay, max_epochs=max_epochs,
                          batch_size=batch_size, patience=patience, seed=seed, progress=progress,
                          desc=f"hybrid-{hybrid_target[:5]}", device=device)
    w = numpy_of(module)
    router = HybridRouter(keys, encoder=encoder, reference=data.spec.reference, dim=dim, hidden=hidden,
                          target=hybrid_target, relaxation=t)
    router.set_tensors({"w1": w["0.weight"], "b1": w["0.bias"], "w2": w["3.weight"], "b2": w["3.bias"]})
    return router, {**data_report(data), **opt_report, **extra}


def fit_hybrid_deterministic(*args: Any, **kw: Any) -> tuple[HybridRouter, dict[str, Any]]:
    return fit_hybrid(*args, hybrid_target="deterministic", **kw)


def fit_hybrid_probabilistic(*args: Any, **kw: Any) -> tuple[HybridRouter, dict[str, Any]]:
    return fit_hybrid(*args, hybrid_target="probabilistic", **kw)


def fit_hybrid_transformed(*args: Any, **kw: Any) -> tuple[HybridRouter, dict[str, Any]]:
    return fit_hybrid(*args, hybrid_target="transformed", **kw)
