"""Training routers by name: the ``TRAINERS`` registry and :func:`train_router`.

A trainer is a function ``fit(train, val, candidate_keys, quality_score, seed=0, progress=True,
**params)`` returning a fitted :class:`~adaptive_router.routers.base.Router`, or a
``(router, report)`` pair whose dict is merged into the training report. Trainers are imported
lazily from ``"module:function"`` strings, so listing names costs nothing and a trainer's heavy
imports (torch, transformers) happen only when it runs. Add your own with
:func:`register_trainer` (or an entry in the dict literal below).

Every trainer: picks the device itself (CUDA when present, else CPU), is seeded, stops early on
the validation data, shows tqdm progress, and — through :func:`train_router` — saves the router
(``config.json`` + ``model.safetensors``) with ``training_report.json`` and
``training_report.md`` beside the weights.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adaptive_router.errors import ConfigError
from adaptive_router.records import Record
from adaptive_router.routers.base import Router

_T = "adaptive_router.training.trainers."

TRAINERS: dict[str, str] = {
    "linear-probe": _T + "linear_probe:fit_linear_probe",
    "mf": _T + "mf:fit_mf",
    "sw_ranking": _T + "sw_ranking:fit_sw_ranking",
    "bert": _T + "transformer:fit_bert",
    "causal_llm": _T + "transformer:fit_causal_llm",
    "hybrid-det": _T + "hybrid:fit_hybrid_deterministic",
    "hybrid-prob": _T + "hybrid:fit_hybrid_probabilistic",
    "hybrid-trans": _T + "hybrid:fit_hybrid_transformed",
    "hybrid": _T + "hybrid:fit_hybrid",
}


def register_trainer(name: str, target: str) -> None:
    """Make a trainer findable by name (``target`` = ``"module:function"``)."""
    TRAINERS[name] = target


def trainer_function(name: str) -> Callable[..., Any]:
    """The trainer registered as ``name`` (imported now)."""
    try:
        target = TRAINERS[name]
    except KeyError:
        raise ConfigError(f"unknown router to train {name!r}; trainable: {', '.join(sorted(TRAINERS))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def train_router(
    name: str,
    train: list[Record],
    val: list[Record],
    candidate_keys: list[str],
    quality_score: str,
    out_dir: Path | None = None,
    seed: int = 0,
    progress: bool = True,
    **params: Any,
) -> Router:
    """Fit the router ``name`` on ``train`` (early stopping / selection on ``val``).

    ``params`` go to the trainer (e.g. ``max_steps=200`` for ``bert``, ``reference=`` the
    strong candidate, ``target="absolute"``). With ``out_dir`` the router is saved there with
    its training report. The report is also kept on the router as ``training_report``.
    """
    if not train:
        raise ConfigError(f"no training records for {name!r}; check the data set and split")
    fit = trainer_function(name)
    start = time.perf_counter()
    result = fit(train, val, list(candidate_keys), quality_score, seed=seed, progress=progress, **params)
    router, extra = result if isinstance(result, tuple) else (result, {})
    seconds = time.perf_counter() - start
    report = build_report(name, router, train, val, candidate_keys, quality_score, seed, params, seconds, extra)
    router.training_report = report  # type: ignore[attr-defined]
    if out_dir is not None:
        save_with_report(router, out_dir, report)
    return router


def build_report(
    name: str,
    router: Router,
    train: Sequence[Record],
    val: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    seed: int,
    params: dict[str, Any],
    seconds: float,
    extra: dict[str, Any],
) -> dict[str, Any]:
    from adaptive_router.training.trainers.common import environment_info, pick_device

    sources = sorted({r.source for r in train if r.source})
    return {
        "router": name,
        "router_type": router.name,
        "candidate_keys": list(candidate_keys),
        "quality_score": quality_score,
        "data_sources": sources,
        "n_train_records": len(train),
        "n_val_records": len(val),
        "seed": seed,
        "params": {k: v for k, v in params.items()},
        "train_seconds": round(seconds, 2),
        "environment": environment_info(extra.get("device") or pick_device(params.get("device"))),
        "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }


def save_with_report(router: Router, out_dir: str | Path, report: dict[str, Any]) -> Path:
    """Save the router and write the training report (JSON + markdown) beside it."""
    from adaptive_router.training.trainers.common import write_report

    path = router.save_pretrained(out_dir)
    write_report(path, report)
    return path
