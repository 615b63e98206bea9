"""Trainer of the fine-tuned classifier routers ``bert`` and ``causal-llm``.

Runs through Hugging Face Accelerate: one CPU or GPU as is, several processes with
``accelerate launch --num_processes N -m adaptive_router.cli train ...`` (GPUs) or
``accelerate launch --multi_gpu --num_processes N ...`` / ``torchrun --nproc_per_node N -m ...``
(CPU processes, gloo backend; ``accelerate launch --cpu --num_processes N`` silently runs ONE
process). Mixed precision (bf16 where supported, else fp16) on GPU, full precision on CPU.
Seeded; validation loss every ``eval_every`` steps on a fixed validation subset, early stopping
with the best weights restored; ``max_steps`` caps a CPU run.

With N processes the run is the same run, spread out: ``batch_size`` stays the *global* batch
(each process takes ``batch_size / N`` of it, Accelerate's ``split_batches``), so steps, learning
rate and early stopping mean what they mean on one process, and DDP's gradient average over the
shards equals the one-process gradient of the whole batch. The validation subset is sharded
across the processes and the loss sums are reduced, so every process sees the same validation
loss and takes the same early-stopping decision (a process that stopped alone would leave the
others waiting in the next gradient all-reduce). Only the main process shows progress; saving
is rank 0's alone (:func:`adaptive_router.training.train.train_router`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from adaptive_router.training.trainers.common import (
    EarlyStopping,
    limit_cpu_threads,
    pick_device,
    seed_everything,
)
from adaptive_router.training.trainers.targets import build_targets, quality_table, resolve_spec

from adaptive_router.records import Record
from adaptive_router.routers.bert_classifier import BertClassifierRouter
from adaptive_router.routers.causal_llm import CausalLLMRouter
from adaptive_router.routers.transformer import TransformerClassifierRouter


def _layers(backbone: Any) -> list[Any]:
    """The backbone's transformer blocks, first to last (BERT-like or Llama-like)."""
    for path in ("encoder.layer", "layers", "model.layers", "transformer.h"):
        obj = backbone
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return list(obj)
    return []


def freeze_all_but_last(module: Any, train_layers: int | None) -> int:
    """Freeze the backbone except its last ``train_layers`` blocks (and a final norm);
    ``None`` trains everything. Returns the number of trainable parameters."""
    if train_layers is not None:
        for p in module.backbone.parameters():
            p.requires_grad = False
        blocks = _layers(module.backbone)
        for block in blocks[len(blocks) - train_layers:] if train_layers > 0 else []:
            for p in block.parameters():
                p.requires_grad = True
        norm = getattr(module.backbone, "norm", None)
        if norm is not None and train_layers > 0:
            for p in norm.parameters():
                p.requires_grad = True
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _mixed_precision(device: str) -> str:
    import torch

    if device != "cuda":
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def _accelerator(dev: str, batch_size: int) -> tuple[Any, int]:
    """The Accelerator for this run and the global batch size (rounded up to a multiple of the
    number of processes, so every process gets an equal share of each batch)."""
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs

    # the backbone's own pooler (BERT) is unused (the head pools): without find_unused_parameters
    # DDP stops at the second step with "Expected to have finished reduction in the prior iteration"
    accelerator = Accelerator(mixed_precision=_mixed_precision(dev), cpu=dev == "cpu",
                              dataloader_config=DataLoaderConfiguration(split_batches=True),
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    n = accelerator.num_processes
    return accelerator, -(-batch_size // n) * n


def fit_transformer(
    router_cls: type[TransformerClassifierRouter],
    train: Sequence[Record],
    val: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    seed: int = 0,
    progress: bool = True,
    backbone: str | None = None,
    target: str = "auto",
    reference: str | None = None,
    max_length: int = 128,
    batch_size: int = 16,
    lr: float = 5e-5,
    head_lr: float = 1e-3,
    weight_decay: float = 1e-2,
    max_steps: int = 300,
    epochs: int = 3,
    eval_every: int = 50,
    val_size: int = 256,
    patience: int = 3,
    train_layers: int | None = None,
    device: str | None = None,
) -> tuple[TransformerClassifierRouter, dict[str, Any]]:
    """Fine-tune ``router_cls`` on BCE against the targets; returns the router and report."""
    import torch

    limit_cpu_threads()
    seed_everything(seed)
    keys = list(candidate_keys)
    q_tr = quality_table(train, keys, quality_score)
    q_va = quality_table(val, keys, quality_score)
    spec = resolve_spec(q_tr, keys, mode=target, reference=reference)
    y_tr = build_targets(train, keys, quality_score, spec, quality=q_tr)
    y_va = build_targets(val, keys, quality_score, spec, quality=q_va)
    cols = torch.tensor([spec.reference != k for k in keys])
    dev = pick_device(device)
    accelerator, batch_size = _accelerator(dev, batch_size)
    if not accelerator.is_main_process:  # one set of bars: the backbone's loading bar too
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    router = router_cls(keys, backbone=backbone, reference=spec.reference, max_length=max_length)
    module = router.build()
    n_trainable = freeze_all_but_last(module, train_layers)
    head_params = list(module.head.parameters())
    body_params = [p for n, p in module.named_parameters() if p.requires_grad and not n.startswith("head.")]
    opt = torch.optim.AdamW([{"params": body_params, "lr": lr}, {"params": head_params, "lr": head_lr}],
                            weight_decay=weight_decay)
    train_prompts = [r.prompt for r in train]
    rng = np.random.default_rng(seed)
    val_idx = rng.permutation(len(val))[:val_size]
    val_prompts = [val[i].prompt for i in val_idx]
    y_val = torch.tensor(y_va[val_idx], dtype=torch.float32)

    def collate(idx: list[int]) -> dict[str, Any]:
        enc = router.tokenize([train_prompts[i] for i in idx])
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                "labels": torch.tensor(y_tr[idx], dtype=torch.float32)}

    # full batches only (the epoch's remainder is reshuffled into the next epoch): a short last batch
    # would be padded with repeated prompts to split evenly across processes, and N processes
    # would no longer run the one-process steps
    loader = torch.utils.data.DataLoader(list(range(len(train))), batch_size=batch_size, shuffle=True,
                                         drop_last=len(train) >= batch_size, collate_fn=collate,
                                         generator=torch.Generator().manual_seed(seed))
    module, opt, loader = accelerator.prepare(module, opt, loader)
    total_steps = min(max_steps, epochs * len(loader))
    stopper = EarlyStopping(patience=patience)

    def val_loss() -> float:
        """Mean BCE on the validation subset: each process scores its contiguous shard through
        the unwrapped module (no DDP collective per forward, so unequal shards are fine), then
        the (loss sum, count) pairs are summed across processes: every process gets the same value."""
        net = accelerator.unwrap_model(module)
        net.eval()
        lo, hi = _shard(len(val_prompts), accelerator.process_index, accelerator.num_processes)
        total, count = 0.0, 0
        with torch.no_grad():
            for i in range(lo, hi, 2 * batch_size):
                j = min(hi, i + 2 * batch_size)
                enc = router.tokenize(val_prompts[i:j])
                logits = net(enc["input_ids"].to(accelerator.device),
                             enc["attention_mask"].to(accelerator.device)).float().cpu()
                total += torch.nn.functional.binary_cross_entropy_with_logits(
                    logits[:, cols], y_val[i:j][:, cols], reduction="sum").item()
                count += (j - i) * int(cols.sum())
        net.train()
        sums = accelerator.reduce(torch.tensor([total, count], dtype=torch.float64, device=accelerator.device),
                                  reduction="sum")
        return float(sums[0] / max(1.0, float(sums[1])))

    def trainable_state() -> dict[str, torch.Tensor]:
        unwrapped = accelerator.unwrap_model(module)
        return {n: p.detach().clone() for n, p in unwrapped.named_parameters() if p.requires_grad}

    bar = None
    if progress and accelerator.is_main_process:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, desc=router.name, unit="step")
    step, stop, train_loss = 0, False, float("nan")
    module.train()
    while step < total_steps and not stop:
        for batch in loader:
            logits = module(batch["input_ids"], batch["attention_mask"]).float()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                logits[:, cols.to(logits.device)], batch["labels"][:, cols.to(logits.device)])
            accelerator.backward(loss)
            opt.step()
            opt.zero_grad()
            step += 1
            # the global batch's loss (mean of the equal shards' means), the same on every process
            batch_loss = accelerator.reduce(loss.detach(), reduction="mean").item()
            train_loss = 0.9 * train_loss + 0.1 * batch_loss if step > 1 else batch_loss
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{train_loss:.4f}")
            if len(val_prompts) and (step % eval_every == 0 or step == total_steps):
                vl = val_loss()
                if bar is not None:
                    bar.set_postfix(loss=f"{train_loss:.4f}", val=f"{vl:.4f}")
                stop = stopper.update(vl, step, trainable_state)
            if stop or step >= total_steps:
                break
    if bar is not None:
        bar.close()
    final = accelerator.unwrap_model(module)
    if stopper.best_state is not None:
        with torch.no_grad():
            params = dict(final.named_parameters())
            for n, t in stopper.best_state.items():
                params[n].copy_(t)
    router._module = final.float().cpu().eval()
    report = {
        "n_train": len(train), "n_val": len(val), "val_subset": len(val_prompts),
        "targets": spec.as_dict(), "backbone": router.backbone, "device": dev,
        "mixed_precision": _mixed_precision(dev), "processes": accelerator.num_processes,
        "trainable_parameters": n_trainable, "train_layers": "all" if train_layers is None else train_layers,
        "steps_run": step, "max_steps": max_steps, "epochs_cap": epochs, "max_length": max_length,
        "batch_size": batch_size, "batch_per_process": batch_size // accelerator.num_processes, "lr": lr, "head_lr": head_lr,
        "best_step": stopper.best_step, "best_val_loss": stopper.best,
        "final_train_loss_ema": train_loss, "early_stopped": stop, "val_loss_history": stopper.history,
        "train_target_mean": {k: float(y_tr[:, j].mean()) for j, k in enumerate(keys) if bool(cols[j])},
    }
    return router, report


def _shard(n: int, rank: int, world: int) -> tuple[int, int]:
    """The contiguous slice ``[lo, hi)`` of ``n`` items that process ``rank`` of ``world`` owns
    (sizes differ by at most one; together the slices cover every item once)."""
    return rank * n // world, (rank + 1) * n // world


def fit_bert(train: Sequence[Record], val: Sequence[Record], candidate_keys: Sequence[str],
             quality_score: str, seed: int = 0, progress: bool = True,
             **params: Any) -> tuple[TransformerClassifierRouter, dict[str, Any]]:
    """``bert``: fine-tune MiniLM (or ``backbone=`` any encoder folder) end to end."""
    return fit_transformer(BertClassifierRouter, train, val, candidate_keys, quality_score, seed, progress,
                           **params)


def fit_causal_llm(train: Sequence[Record], val: Sequence[Record], candidate_keys: Sequence[str],
                   quality_score: str, seed: int = 0, progress: bool = True,
                   **params: Any) -> tuple[TransformerClassifierRouter, dict[str, Any]]:
    """``causal-llm``: SmolLM2-135M (or ``backbone=`` a decoder folder). On a CPU only the last
    ``train_layers`` blocks (default 2) and the head are trained, for at most 40 steps of 8
    prompts cut to 96 tokens (override with params); on a GPU everything, for ``max_steps``."""
    on_gpu = pick_device(params.get("device")) == "cuda"
    if "train_layers" not in params:
        params["train_layers"] = None if on_gpu else 2
    params.setdefault("batch_size", 8)
    params.setdefault("lr", 2e-5)
    if not on_gpu:  # a 135M-parameter forward pass per prompt: keep a CPU run to minutes
        params.setdefault("max_steps", 40)
        params.setdefault("max_length", 96)
        params.setdefault("eval_every", 20)
        params.setdefault("val_size", 48)
    return fit_transformer(CausalLLMRouter, train, val, candidate_keys, quality_score, seed, progress,
                           **params)
