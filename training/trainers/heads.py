"""Training small torch heads on frozen embeddings (linear probe, MF, Hybrid MLP).

Soft or hard targets in [0, 1], binary cross-entropy on the logits of the columns that are
learned (the reference's column of relative targets is fixed at 1 and skipped), AdamW,
mini-batches, early stopping on the validation loss with the best weights restored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from adaptive_router.training.trainers.common import (
    EarlyStopping,
    embed_prompts,
    limit_cpu_threads,
    pick_device,
    prompts_of,
    seed_everything,
)
from adaptive_router.training.trainers.targets import (
    Kind,
    Mode,
    TargetSpec,
    build_targets,
    quality_table,
    resolve_spec,
)

from adaptive_router.records import Record


@dataclass
class PreparedData:
    """Embeddings, qualities and targets of the train and validation records."""

    x_train: np.ndarray
    x_val: np.ndarray
    q_train: np.ndarray
    q_val: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    spec: TargetSpec
    keys: Sequence[str] = ()

    @property
    def learned_columns(self) -> np.ndarray:
        """Columns with a target to learn (all but the reference's fixed column)."""
        if self.spec.reference is None:
            return np.ones(self.y_train.shape[1], bool)
        return np.array([self.spec.reference != k for k in self.keys])


def prepare(
    train: Sequence[Record],
    val: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    encoder: str = "minilm",
    target: Mode = "auto",
    reference: str | None = None,
    kind: Kind = "deterministic",
    relaxation: float = 0.0,
    progress: bool = True,
) -> PreparedData:
    """Embed (through the disk cache) and label the train and validation records."""
    keys = list(candidate_keys)
    q_tr = quality_table(train, keys, quality_score)
    q_va = quality_table(val, keys, quality_score)
    spec = resolve_spec(q_tr, keys, mode=target, reference=reference, kind=kind, relaxation=relaxation)
    y_tr = build_targets(train, keys, quality_score, spec, quality=q_tr)
    y_va = build_targets(val, keys, quality_score, spec, quality=q_va)
    x_tr = embed_prompts(prompts_of(train), encoder, progress=progress)
    x_va = embed_prompts(prompts_of(val), encoder, progress=progress)
    return PreparedData(x_tr, x_va, q_tr, q_va, y_tr, y_va, spec, keys=keys)


def masked_bce(logits: Any, targets: Any, columns: Any) -> Any:
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(logits[:, columns], targets[:, columns])


def fit_head(
    module: Any,
    data: PreparedData,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    max_epochs: int = 200,
    batch_size: int = 256,
    patience: int = 10,
    seed: int = 0,
    progress: bool = True,
    desc: str = "training",
    device: str | None = None,
) -> dict[str, Any]:
    """Train ``module`` (embeddings -> logits (n, K)); restores the best validation weights.

    Returns the part of the training report about the optimisation.
    """
    import torch

    limit_cpu_threads()
    seed_everything(seed)
    dev = pick_device(device)
    module.to(dev)
    cols = torch.as_tensor(data.learned_columns, device=dev)
    xt = torch.as_tensor(data.x_train, device=dev)
    yt = torch.as_tensor(data.y_train, dtype=torch.float32, device=dev)
    xv = torch.as_tensor(data.x_val, device=dev)
    yv = torch.as_tensor(data.y_val, dtype=torch.float32, device=dev)
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    stopper = EarlyStopping(patience=patience)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    epochs = range(max_epochs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(epochs, desc=desc, unit="epoch")
        epochs = bar
    train_loss = float("nan")
    for epoch in epochs:
        module.train()
        order = torch.randperm(len(xt), generator=gen).to(dev)
        total = 0.0
        for i in range(0, len(xt), batch_size):
            idx = order[i:i + batch_size]
            loss = masked_bce(module(xt[idx]), yt[idx], cols)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        train_loss = total / max(len(xt), 1)
        module.eval()
        with torch.no_grad():
            val_loss = float(masked_bce(module(xv), yv, cols)) if len(xv) else train_loss
        if bar is not None:
            bar.set_postfix(train=f"{train_loss:.4f}", val=f"{val_loss:.4f}")
        state = lambda: {k: v.detach().clone() for k, v in module.state_dict().items()}  # noqa: E731
        if stopper.update(val_loss, epoch, state):
            break
    if stopper.best_state is not None:
        module.load_state_dict(stopper.best_state)
    module.eval().cpu()
    return {
        "device": dev,
        "epochs_run": len(stopper.history),
        "best_epoch": stopper.best_step,
        "best_val_loss": stopper.best,
        "final_train_loss": train_loss,
        "early_stopped": len(stopper.history) < max_epochs,
        "val_loss_history": stopper.history,
        "optimizer": {"name": "AdamW", "lr": lr, "weight_decay": weight_decay, "batch_size": batch_size},
    }


def numpy_of(module: Any) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().astype(np.float32) for k, v in module.state_dict().items()}


def data_report(data: PreparedData) -> dict[str, Any]:
    cols = data.learned_columns
    return {
        "n_train": len(data.x_train),
        "n_val": len(data.x_val),
        "embedding_dim": int(data.x_train.shape[1]) if data.x_train.ndim == 2 else 0,
        "targets": data.spec.as_dict(),
        "train_target_mean": {k: float(data.y_train[:, j].mean()) for j, k in enumerate(data.keys)
                              if cols[j]},
        "train_quality_mean": {k: float(data.q_train[:, j].mean()) for j, k in enumerate(data.keys)},
    }
