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
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adaptive_router.errors import ConfigError
from adaptive_router.records import Record
from adaptive_router.routers.base import Router

_T = "adaptive_router.training.trainers."


def _share_embedding_cache() -> None:
    """Training and evaluation processes embed each text once: routers loaded here read the
    on-disk embedding cache unless the user chose another with $ADAPTIVE_ROUTER_EMBED_CACHE."""
    from adaptive_router.encoders import training_cache_path

    os.environ.setdefault("ADAPTIVE_ROUTER_EMBED_CACHE", str(training_cache_path()))


_share_embedding_cache()

TRAINERS: dict[str, str] = {
    "linear-probe": _T + "linear_probe:fit_linear_probe",
    "mf": _T + "mf:fit_mf",
    "sw-ranking": _T + "sw_ranking:fit_sw_ranking",
    "bert": _T + "transformer:fit_bert",
    "causal-llm": _T + "transformer:fit_causal_llm",
    "hybrid-det": _T + "hybrid:fit_hybrid_deterministic",
    "hybrid-prob": _T + "hybrid:fit_hybrid_probabilistic",
    "hybrid-trans": _T + "hybrid:fit_hybrid_transformed",
    "hybrid": _T + "hybrid:fit_hybrid",
    "best-route": _T + "best_route:fit_best_route",
    "arllm-hdp": _T + "arllm:fit_arllm_hdp",
    "arllm-nir": _T + "arllm:fit_arllm_nir",
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
    if out_dir is not None and is_main_process():
        save_with_report(router, out_dir, report)
    return router


def is_main_process() -> bool:
    """False in the non-zero ranks of an ``accelerate launch`` / ``torchrun`` job (rank 0 saves)."""
    return int(os.environ.get("RANK", "0")) == 0


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


# ---------------------------------------------------------------------------------------------
# training on named data sets (the `adaptive-router train` subcommand)
# ---------------------------------------------------------------------------------------------

GENERIC_STRONG_MODEL = "strong"
GENERIC_WEAK_MODEL = "weak"


def generic_roles(records: Sequence[Record], strong: str, weak: str) -> list[Record]:
    """Records with the two models renamed to the generic roles ``strong`` / ``weak``."""
    names = {strong: GENERIC_STRONG_MODEL, weak: GENERIC_WEAK_MODEL}
    return [r.model_copy(update={"models": {names[m]: s for m, s in r.models.items() if m in names}})
            for r in records]


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``["max_steps=200", "backbone=/path"]`` -> ``{"max_steps": 200, "backbone": "/path"}``
    (values are read as JSON when they parse, else kept as text)."""
    import json

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {pair!r}: write KEY=VALUE, e.g. --param max_steps=200")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def subsample_dataset(ds: Any, max_records: int | None, seed: int = 0) -> Any:
    """``ds`` restricted to a seeded random subsample of ``max_records`` records (the first
    ``max_records`` of ``permutation(seed)``, kept in their original order); ``ds`` itself when it
    is no larger. Splits of the result are computed afresh."""
    import dataclasses

    import numpy as np

    if not max_records or len(ds.records) <= max_records:
        return ds
    keep = sorted(np.random.default_rng(seed).permutation(len(ds.records))[:max_records])
    return dataclasses.replace(ds, records=[ds.records[i] for i in keep], _split_cache={},
                               dropped_contaminated=[])


def train_on_datasets(
    name: str,
    data: Sequence[str],
    out_dir: str | Path,
    data_dir: str | None = None,
    seed: int = 0,
    val: float = 0.1,
    test: float = 0.2,
    roles: bool = False,
    evaluate: bool = True,
    progress: bool = True,
    command: str | None = None,
    max_records: int | None = None,
    fleet: Any = None,
    load_kwargs: dict[str, Any] | None = None,
    **params: Any,
) -> dict[str, Any]:
    """Train ``name`` on the seeded train splits of the data sets ``data`` (validation split for
    early stopping), save it to ``out_dir`` and, with ``evaluate``, add the metrics on each data
    set's decontaminated test split to the training report. With ``roles`` the two models of
    each (two-model) data set are renamed ``strong`` / ``weak`` so the router serves any fleet
    (the bundled default router). Returns the report.

    ``fleet`` (a :class:`~adaptive_router.domain.Fleet`, the user's fleet file) wins over the
    data's and LiteLLM's prices (the default knob and the test metrics are priced with it) and its
    allowed sample counts ``n`` become the candidates ((model, n) routers such as best-route learn
    them all). ``load_kwargs`` go to the loader (a table's column mapping, e.g. ``cost_columns``
    for the real cost of every answer, which then wins over price x tokens).
    """
    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.recorded_cost import cost_basis

    datasets = [subsample_dataset(load_dataset(d, data_dir=data_dir, fleet=fleet, **(load_kwargs or {})),
                                  max_records, seed) for d in data]
    tr_all: list[Record] = []
    va_all: list[Record] = []
    tests = []
    keys: list[str] | None = None
    quality_score = datasets[0].quality_score
    for ds in datasets:
        if ds.quality_score != quality_score:
            raise ConfigError(f"{ds.name} scores quality as {ds.quality_score!r}, {datasets[0].name} as "
                              f"{quality_score!r}: train on data sets with the same quality score")
        tr, va, te = ds.splits(seed=seed, val=val, test=test)
        ds_keys = ds.fleet.candidate_keys if fleet is not None else [f"{m}#1" for m in ds.models]
        if roles:
            if len(ds.models) != 2:
                raise ConfigError(f"--generic-roles needs two-model data; {ds.name} has {len(ds.models)} models")
            strong = ds.reference
            weak = next(m for m in ds.models if m != strong)
            tr, va = generic_roles(tr, strong, weak), generic_roles(va, strong, weak)
            ds_keys = [f"{GENERIC_STRONG_MODEL}#1", f"{GENERIC_WEAK_MODEL}#1"]
        elif len(ds.models) == 2:
            params.setdefault("reference", f"{ds.reference}#1")
        if keys is not None and sorted(keys) != sorted(ds_keys):
            raise ConfigError(f"{ds.name} has candidates {ds_keys}, the others {keys}; combine data sets "
                              "of the same models (or use --generic-roles for strong/weak pairs)")
        keys = keys or ds_keys
        tr_all += tr
        va_all += va
        tests.append((ds, te))
    if roles:
        params["reference"] = f"{GENERIC_STRONG_MODEL}#1"
    assert keys is not None
    router = train_router(name, tr_all, va_all, keys, quality_score, out_dir=None, seed=seed,
                          progress=progress, **params)
    report = dict(getattr(router, "training_report", {}))
    if not is_main_process():  # the other ranks hold the same weights: rank 0 alone evaluates and saves
        return report
    if not roles and va_all:
        from adaptive_router.training.default_knob import choose_default_knob

        choice = choose_default_knob(router, va_all, datasets[0].fleet, quality_score)
        router.default_knob = choice["knob"]
        report["default_knob"] = choice
    report["data"] = list(data)
    report["records_used"] = {ds.name: len(ds.records) for ds in datasets}
    report["cost_basis"] = {ds.name: cost_basis(ds.records, ds.models) for ds in datasets}
    if fleet is not None:
        report["fleet"] = {"source": fleet.source, "reference": fleet.reference_model(),
                           "candidates": fleet.candidate_keys}
    if any(r.task for ds in datasets for r in ds.records):
        report["tasks"] = sorted({r.task for ds in datasets for r in ds.records if r.task})
    if command:
        report["command"] = command
    report["splits"] = {"seed": seed, "val": val, "test": test,
                        "rule": "RoutingDataset.splits(seed, val, test): seeded permutation (or the data "
                                "set's own train/test), decontaminated test split"}
    if evaluate:
        from adaptive_router.training.evaluate import evaluate_router

        report["test_metrics"] = {}
        for ds, te in tests:
            served = router.bind_fleet(ds.fleet) if roles and hasattr(router, "bind_fleet") else router
            res = evaluate_router(served, te, ds.fleet, ds.quality_score, name=name)
            report["test_metrics"][ds.name] = {k: res.get(k) for k in (
                "n_prompts", "apgr", "cpt_50", "cpt_80", "quality", "cost_per_1k_usd", "share_strong",
                "aiq", "max_quality", "saving_at_99")}
    save_with_report(router, out_dir, report)
    return report
