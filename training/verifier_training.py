"""Training the verifier: (step evidence, was the kept answer correct?) pairs from Records.

The pairs come from replaying cascade chains on recorded responses
(:func:`~adaptive_router.training.cascade_eval.build_step_table`): every model of the data set,
cheapest first, as a first step (nothing earlier to agree with) and as a later step after every
cheaper model (their kept answers are the evidence it can agree with), for each sample count
asked for. The fit uses the train split; the L2 penalty and the calibration are chosen on the
validation split; the test split is scored once, for the report.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from adaptive_router.training import metrics
from adaptive_router.training.cascade_eval import CORRECT_AT, PERMUTATIONS, build_step_table

from adaptive_router.domain import Fleet
from adaptive_router.errors import DataError
from adaptive_router.persistence import json_default
from adaptive_router.records import Record
from adaptive_router.verifiers.base import Evidence
from adaptive_router.verifiers.features import FEATURE_NAMES, feature_matrix
from adaptive_router.verifiers.trained import TrainedVerifier

#: L2 penalties tried; the one with the lowest validation log-loss is kept.
L2_GRID = (0.1, 1.0, 10.0, 100.0)


def training_chains(records: Sequence[Record], fleet: Fleet, n: Sequence[int] = (1, 3, 5)) -> list[list[str]]:
    """The chains whose steps become training pairs: each model alone, and all models cheapest
    first (so later steps see earlier answers), with every sample count the records allow."""
    from adaptive_router.training.evaluate import cost_matrix

    singles = [f"{m}#1" for m in fleet.model_names]
    order = [fleet.model_names[i] for i in np.argsort(cost_matrix(records, singles, fleet).mean(axis=0))]
    fewest = {m: min(r.samples(m).num_samples for r in records) for m in order}
    chains = []
    for k in sorted(set(n)):
        steps = [f"{m}#{k}" for m in order if k <= fewest[m]]
        if not steps:
            continue
        chains.extend([[s] for s in steps])
        if len(steps) > 1:
            chains.append(steps)
    if not chains:
        raise DataError(f"no model has {min(n)} recorded samples per prompt; lower --n")
    return chains


def verifier_pairs(records: Sequence[Record], fleet: Fleet, quality_score: str,
                   chains: Sequence[Sequence[str]], selector: str = "majority",
                   permutations: int = PERMUTATIONS, seed: int = 0,
                   priors: Mapping[str, dict[str, float]] | None = None) -> tuple[list[Evidence], np.ndarray]:
    """Every chain's steps on every record: evidence and whether the kept answer was correct.
    ``priors`` (by record id): a router's predicted quality per candidate, seen as a feature."""
    evs: list[Evidence] = []
    labels: list[np.ndarray] = []
    rows = [priors[r.id] for r in records] if priors is not None else None
    for chain in chains:
        table = build_step_table(records, [list(chain)] * len(records), fleet, quality_score,
                                 selector=selector, permutations=permutations, seed=seed, priors=rows)
        e, q = table.flat_evidence()
        evs += e
        labels.append((q >= CORRECT_AT).astype(np.float64))
    return evs, np.concatenate(labels) if labels else np.zeros(0)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _summary(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    return {"pairs": int(len(y)), "correct_share": float(y.mean()) if len(y) else None,
            "auc": metrics.roc_auc(y, p), "brier": float(np.mean((p - y) ** 2)) if len(y) else None,
            "log_loss": _log_loss(y, p) if len(y) else None}


def train_verifier(
    train: Sequence[Record],
    val: Sequence[Record],
    fleet: Fleet,
    quality_score: str,
    test: Sequence[Record] = (),
    n: Sequence[int] = (1, 3, 5),
    selector: str = "majority",
    seed: int = 0,
    out_dir: str | Path | None = None,
    progress: bool = True,
    command: str | None = None,
    data: str | None = None,
    priors: Mapping[str, dict[str, float]] | None = None,
    router: str | None = None,
) -> TrainedVerifier:
    """Fit the verifier on ``train``, choose L2 and calibrate on ``val``, report ``test`` once.

    ``priors`` (by record id, for every split; see :func:`out_of_fold_priors`) let the verifier
    weigh the router's prompt-only prediction against what the answer shows; ``router`` names it
    in the report."""
    t0 = time.perf_counter()
    chains = training_chains(train, fleet, n)
    stages = [("train", train), ("val", val), ("test", test)]
    pairs: dict[str, tuple[np.ndarray, np.ndarray, list[str | None]]] = {}
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(stages), desc="verifier pairs", unit="split", file=sys.stderr)
    for name, records in stages:
        if records:
            evs, y = verifier_pairs(records, fleet, quality_score, chains, selector, seed=seed,
                                    priors=priors)
            pairs[name] = (feature_matrix(evs), y, [ev.model for ev in evs])
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    x_tr, y_tr, m_tr = pairs["train"]
    x_va, y_va, m_va = pairs.get("val", (None, None, None))
    best: tuple[float, float, TrainedVerifier] | None = None
    for l2 in L2_GRID:
        model = TrainedVerifier.fit(x_tr, y_tr, m_tr, x_va, y_va, m_va, l2=l2)
        loss = (_log_loss(y_va, model.proba_from_features(x_va, m_va))
                if x_va is not None and y_va is not None and len(x_va) else 0.0)
        if best is None or loss < best[0]:
            best = (loss, l2, model)
    assert best is not None
    _, l2, model = best
    report: dict[str, Any] = {
        "data": data, "quality_score": quality_score, "correct_at": CORRECT_AT, "selector": selector,
        "chains": chains, "prior_router": router, "l2": l2, "l2_grid": list(L2_GRID), "seed": seed,
        "heads": list(model.heads), "calibration": {k: list(h.calibration) for k, h in model.heads.items()},
        "feature_weights": model.feature_weights(),
        "train_seconds": time.perf_counter() - t0,
    }
    for name, (x, y, models) in pairs.items():
        p = model.proba_from_features(x, models)
        report[name] = _summary(y, p)
        report[name]["by_model"] = {m: _summary(y[rows], p[rows]) for m in sorted({str(v) for v in models})
                                    if (rows := np.array([str(v) == m for v in models])).any()}
    if command:
        report["command"] = command
    model.report = report
    if out_dir is not None:
        out = Path(out_dir)
        model.save_pretrained(out)
        (out / "training_report.json").write_text(json.dumps(report, indent=2, default=json_default))
        (out / "training_report.md").write_text(report_markdown(report), encoding="utf-8")
    return model


def report_markdown(report: dict[str, Any]) -> str:
    """The training report as markdown: data, AUC per split, the features' weights."""
    lines = ["# Verifier training report", ""]
    if report.get("command"):
        lines += ["Reproduce: `" + report["command"] + "`", ""]
    lines += [f"Data: {report.get('data')}; quality score `{report['quality_score']}` (correct at >= "
              f"{report['correct_at']}); kept sample by `{report['selector']}`; L2 {report['l2']} "
              "(lowest validation log-loss); one head per model with enough right and wrong answers "
              f"({', '.join(report['heads'])}; `*` pools all models), each Platt-calibrated on "
              "validation.", "",
              "| split | pairs | correct | AUC | Brier | log-loss |", "|---|---:|---:|---:|---:|---:|"]
    for name in ("train", "val", "test"):
        s = report.get(name)
        if not s:
            continue
        auc = f"{s['auc']:.3f}" if s["auc"] is not None else "-"
        lines.append(f"| {name} | {s['pairs']} | {s['correct_share']:.3f} | {auc} | {s['brier']:.3f} | "
                     f"{s['log_loss']:.3f} |")
        for model, m in sorted(s.get("by_model", {}).items()):
            auc = f"{m['auc']:.3f}" if m["auc"] is not None else "-"
            lines.append(f"| {name}: {model} | {m['pairs']} | {m['correct_share']:.3f} | {auc} | "
                         f"{m['brier']:.3f} | {m['log_loss']:.3f} |")
    heads = list(report["feature_weights"])
    lines += ["", "Feature weights per head (standardised features; positive = more likely correct):",
              "", "| feature | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    for name in FEATURE_NAMES:
        lines.append(f"| {name} | " + " | ".join(f"{report['feature_weights'][h][name]:+.3f}" for h in heads)
                     + " |")
    lines += ["", "Chains replayed for training pairs: " + "; ".join(" > ".join(c) for c in report["chains"])]
    return "\n".join(lines) + "\n"


def out_of_fold_priors(router: str, train: Sequence[Record], val: Sequence[Record], test: Sequence[Record],
                       candidate_keys: Sequence[str], quality_score: str, folds: int = 5, seed: int = 0,
                       progress: bool = True) -> dict[str, dict[str, float]]:
    """A router's predictions for every record, none of them made by a router that saw it.

    Training prompts get out-of-fold predictions (``folds`` routers, each trained on the other
    folds), so the verifier does not learn to trust a prior that has memorised its own training
    prompts; validation and test prompts get the router trained on the whole train split, as at
    serving time.
    """
    from adaptive_router.training.train import train_router

    train, keys = list(train), list(candidate_keys)
    out: dict[str, dict[str, float]] = {}

    def predict(fitted, records: Sequence[Record]) -> None:
        if not records:
            return
        preds = fitted.predict_batch([r.prompt for r in records])[:, fitted.restrict(keys)]
        out.update({r.id: dict(zip(keys, row.tolist(), strict=True)) for r, row in zip(records, preds, strict=True)})

    fold_of = np.random.default_rng(seed).permutation(len(train)) % folds
    for f in range(folds):
        inner = [r for r, g in zip(train, fold_of, strict=True) if g != f]
        held = [r for r, g in zip(train, fold_of, strict=True) if g == f]
        predict(train_router(router, inner, list(val), keys, quality_score, seed=seed, progress=False), held)
    full = train_router(router, train, list(val), keys, quality_score, seed=seed, progress=progress)
    predict(full, list(val) + list(test))
    return out
