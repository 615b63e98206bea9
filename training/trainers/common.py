"""What every trainer shares: device, seeding, embeddings, early stopping, reports.

Trainers on frozen embeddings embed each data set once through the encoder's SQLite cache
(:func:`adaptive_router.encoders.training_cache_path`), so the linear probe, MF, SW ranking and
Hybrid heads re-train in seconds and no process embeds a prompt twice.
"""

from __future__ import annotations

import json
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.persistence import json_default_or_str
from adaptive_router.records import Record


def pick_device(device: str | None = None) -> str:
    """``cuda`` when a GPU is present (or asked for), else ``cpu``."""
    import torch

    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and every GPU) so a run can be repeated."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def limit_cpu_threads(max_threads: int = 2) -> None:
    """Keep torch from oversubscribing a small shared CPU (no effect on GPU work)."""
    import torch

    wanted = int(os.environ.get("ADAPTIVE_ROUTER_TORCH_THREADS", max_threads))
    if torch.get_num_threads() > wanted:
        torch.set_num_threads(wanted)


def embed_prompts(prompts: Sequence[str], encoder: str = "minilm", progress: bool = True) -> np.ndarray:
    """Embeddings (n, d) of ``prompts``, through the shared on-disk cache."""
    from adaptive_router.encoders import shared_encoder, training_cache_path

    enc = shared_encoder(encoder, disk_cache=training_cache_path())
    out = []
    step = 1024
    chunks = range(0, len(prompts), step)
    if progress and len(prompts) > step:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="embedding prompts", unit="chunk")
    for i in chunks:
        out.append(enc.encode(list(prompts[i:i + step])))
    if not out:
        return np.zeros((0, enc.dim), dtype=np.float32)
    return np.concatenate(out, axis=0).astype(np.float32)


def prompts_of(records: Sequence[Record]) -> list[str]:
    return [r.prompt for r in records]


@dataclass
class EarlyStopping:
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` checks;
    remembers the best state so the caller can restore it."""

    patience: int = 5
    min_delta: float = 1e-4
    best: float = float("inf")
    best_step: int = -1
    bad: int = 0
    best_state: Any = None
    history: list[float] = field(default_factory=list)

    def update(self, loss: float, step: int, state: Callable[[], Any]) -> bool:
        """Record ``loss``; returns True when training should stop."""
        self.history.append(float(loss))
        if loss < self.best - self.min_delta:
            self.best, self.best_step, self.bad = float(loss), step, 0
            self.best_state = state()
            return False
        self.bad += 1
        return self.bad >= self.patience


def environment_info(device: str) -> dict[str, Any]:
    import torch

    return {
        "device": device,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
    }


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start


def write_report(out_dir: str | Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Write ``training_report.json`` and a readable ``training_report.md`` beside the weights."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    jpath = d / "training_report.json"
    jpath.write_text(json.dumps(report, indent=2, sort_keys=True, default=json_default_or_str), encoding="utf-8")
    mpath = d / "training_report.md"
    mpath.write_text(report_markdown(report), encoding="utf-8")
    return jpath, mpath


def report_markdown(report: dict[str, Any]) -> str:
    """The report as markdown: scalar fields in a table, nested ones as JSON blocks."""
    lines = [f"# Training report: {report.get('router', '?')}", ""]
    scalars = {k: v for k, v in report.items() if not isinstance(v, dict | list)}
    nested = {k: v for k, v in report.items() if isinstance(v, dict | list)}
    lines += ["| field | value |", "|---|---|"]
    for k in sorted(scalars):
        v = scalars[k]
        lines.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    for k in sorted(nested):
        v = nested[k]
        if k == "val_loss_history" and isinstance(v, list) and len(v) > 20:
            v = [round(float(x), 5) for x in v[:: max(1, len(v) // 20)]]
        lines += ["", f"## {k}", "", "```json", json.dumps(v, indent=2, default=json_default_or_str), "```"]
    return "\n".join(lines) + "\n"
