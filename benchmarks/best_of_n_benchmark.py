"""Benchmark: (model, n) routing with best-of-n against single models, on CHAMP and llmrouter.

    .venv/bin/python benchmarks/best_of_n_benchmark.py            # both sets, writes docs/
    .venv/bin/python benchmarks/best_of_n_benchmark.py --sets champ --folds 5 --boot 1000

CHAMP (270 competition-math problems, 4 models, the 9 prompt settings that give nothing away as
9 samples per model): 5-fold cross-validation over all 270 problems. In each fold the proxy
reward model is trained on the training folds' responses only (Bradley-Terry on BEST-Route's
pairs) and scores every response; best-of-n keeps its argmax. Every router is trained on the
training folds (10% of them for early stopping) and predicts the held-out fold; the
out-of-fold predictions of all 270 problems are then swept together. Candidates: the reference
(GPT-4 Turbo) once, the three others with n in {1, 2, 3, 5}. CHAMP's answers are checkable, so
the routers of :data:`MAJORITY_ROUTERS` are also run with the other selector, majority vote over
the extracted final answers (rows ``+majority``: majority-vote labels, majority-vote qualities).
CHAMP's router settings are the trainers' defaults (no selection: 22 validation problems per
fold are too few to choose by).

llmrouter (9 open models, one score per model and prompt, no response texts): its own test
split (376 of 500 prompts after decontamination), routers trained on its train split;
candidates are the 9 models with n=1 (no samples to draw best-of-n from). Each router's
settings (:data:`SEARCH`: prompt features, ensemble size) and knob (threshold or trade-off) are
chosen on the validation split carved from train (:func:`validation_score`), never on test.
Dollar costs there use estimated output tokens (the loader says how).

Reported per router: quality and cost at the default knob, the best quality reached, AIQ, and the
headline: the cost saving at the best single model's quality (and at 99% of it), with bootstrap
95% intervals over prompts; whether the router's quality-cost hull lies on or above the single
models' Pareto front. Routers: BEST-Route (threshold knob), AR-LLM HDP and NIR (beta knob),
the linear probe (threshold knob), and the oracle (best candidate per prompt, exact).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from adaptive_router.policy import ThresholdPolicy, TradeoffPolicy  # noqa: E402
from adaptive_router.routers.base import Router  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if (ROOT.parent / "shared" / "data").is_dir():  # the checkout's data folder, as the Makefile does
    os.environ.setdefault("ADAPTIVE_ROUTER_DATA", str(ROOT.parent / "shared" / "data"))
ROUTERS = {  # name -> knob swept on CHAMP (on llmrouter the knob is chosen on its validation split)
    "best-route": "threshold",
    "best-route-quality": "tradeoff",
    "arllm-hdp": "tradeoff",
    "arllm-nir": "tradeoff",
    "linear-probe": "threshold",
}
#: llmrouter: the router settings tried per router, each trained on the train split and scored
#: on the validation split (carved from train); the best by :func:`validation_score` is the one
#: evaluated on the test split. Every tried setting's validation figures go into the JSON.
_FEATURE_SETS = [{}, {"features": ["embedding", "domains", "neighbours"]},
                 {"features": ["domain_prior", "neighbours"]}]
SEARCH = {
    "best-route": [{**f, "n_seeds": 3} for f in _FEATURE_SETS],
    "best-route-quality": [{**f, "n_seeds": 3} for f in _FEATURE_SETS],
    "arllm-nir": [{}, {"pair_features": ["neighbours"], "n_seeds": 3},
                  {"pair_features": ["domain_prior", "neighbours"], "n_seeds": 3}],
}
#: CHAMP with the majority-vote selector (self-consistency over extracted answers; the user's
#: alternative to the proxy reward model for checkable answers): these routers are trained on
#: majority-vote labels and scored against majority-vote best-of-n qualities.
MAJORITY_ROUTERS = ("best-route-quality", "arllm-hdp", "arllm-nir")
N_VALUES = (1, 2, 3, 5)


class FixedPredictions(Router):
    """Replays precomputed (out-of-fold) predictions by prompt, so the evaluation module sweeps
    them like any router."""

    name = "fixed"

    def __init__(self, candidate_keys: Sequence[str], table: dict[str, np.ndarray], label: str) -> None:
        super().__init__(candidate_keys)
        self.table = table
        self.label = label

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        return np.stack([self.table[p] for p in prompts])


# ---------------------------------------------------------------------------------------------
# operating points and bootstrap intervals
# ---------------------------------------------------------------------------------------------


def knob_grid(preds: np.ndarray, knob: str) -> np.ndarray:
    if knob == "threshold":
        v = np.unique(np.quantile(np.clip(preds.ravel(), 0, 1), np.linspace(0, 1, 200)))
        return np.unique(np.concatenate([[0.0, 1.0], v, (v[1:] + v[:-1]) / 2]))
    return np.concatenate([[0.0], np.geomspace(1e-3, 1e3, 200)])


def choices(preds: np.ndarray, cost: np.ndarray, knob: str) -> np.ndarray:
    """(knob values, prompts) candidate index chosen at every knob value."""
    make = ThresholdPolicy if knob == "threshold" else TradeoffPolicy
    return np.stack([make(float(v)).choose(preds, cost) for v in knob_grid(preds, knob)])


def saving(q_pts: np.ndarray, c_pts: np.ndarray, target: float, ref_cost: float) -> float | None:
    from adaptive_router.training.metrics import saving_at_quality

    return saving_at_quality(c_pts.tolist(), q_pts.tolist(), target, ref_cost)


def bootstrap(choice: np.ndarray, quality: np.ndarray, cost: np.ndarray, best_col: int,
              boot: int, seed: int) -> dict[str, Any]:
    """95% intervals over prompts of the saving at the best single model's quality (100% and
    99%) and of the best quality reached; the best single model is re-read on each resample."""
    rng = np.random.default_rng(seed)
    n = quality.shape[0]
    rows = np.arange(n)
    q_choice = quality[rows[None, :], choice]  # (knobs, prompts)
    c_choice = cost[rows[None, :], choice]
    s100, s99, qmax = [], [], []
    never = 0
    for _ in range(boot):
        idx = rng.integers(0, n, n)
        qs, cs = q_choice[:, idx].mean(1), c_choice[:, idx].mean(1)
        bq, bc = quality[idx, best_col].mean(), cost[idx, best_col].mean()
        a = saving(qs, cs, bq, bc)
        b = saving(qs, cs, 0.99 * bq, bc)
        never += a is None
        s100.append(np.nan if a is None else a)
        s99.append(np.nan if b is None else b)
        qmax.append(qs.max())

    def ci(v: list[float]) -> list[float] | None:
        arr = np.asarray(v, float)
        arr = arr[np.isfinite(arr)]
        return None if arr.size == 0 else [float(np.percentile(arr, 2.5)), float(np.percentile(arr, 97.5))]

    return {"saving_at_100_ci": ci(s100), "saving_at_99_ci": ci(s99), "max_quality_ci": ci(qmax),
            "share_of_resamples_reaching_best_quality": 1 - never / boot}


def above_pareto(points_c: np.ndarray, points_q: np.ndarray, single: dict[str, dict[str, float]],
                 front: Sequence[str]) -> dict[str, Any]:
    """Whether the router's hull reaches every Pareto single model's quality at that model's cost
    (only where the router can operate: at or above its cheapest point)."""
    from adaptive_router.training.metrics import hull_quality_at, non_decreasing_convex_hull

    hc, hq = non_decreasing_convex_hull(points_c.tolist(), points_q.tolist())
    margins = {}
    for m in front:
        c, q = single[m]["cost_usd"], single[m]["quality"]
        if c < hc[0] - 1e-15:
            continue
        margins[m] = float(hull_quality_at(hc, hq, c) - q)
    return {"on_or_above_front": bool(all(v >= -1e-9 for v in margins.values())),
            "margin_vs_front": margins}


def summarise_router(name: str, knob: str, preds: np.ndarray, quality: np.ndarray, cost: np.ndarray,
                     summary: dict[str, Any], keys: Sequence[str], boot: int, seed: int) -> dict[str, Any]:
    from adaptive_router.training.metrics import normalised_area

    ch = choices(preds, cost, knob)
    rows = np.arange(quality.shape[0])
    q_pts = quality[rows[None, :], ch].mean(1)
    c_pts = cost[rows[None, :], ch].mean(1)
    best = summary["single"][summary["best_single"]]
    best_col = list(keys).index(f"{summary['best_single']}#1")
    default = (ThresholdPolicy(0.5) if knob == "threshold" else TradeoffPolicy(1.0)).choose(preds, cost)
    n_used = np.bincount(ch.ravel(), minlength=len(keys)) / ch.size
    out = {
        "name": name, "knob": knob,
        "quality_default": float(quality[rows, default].mean()),
        "cost_per_1k_default": 1000 * float(cost[rows, default].mean()),
        "max_quality": float(q_pts.max()),
        "aiq": normalised_area(c_pts.tolist(), q_pts.tolist(), tuple(summary["cost_range_usd"])),
        "saving_at_100": saving(q_pts, c_pts, best["quality"], best["cost_usd"]),
        "saving_at_99": saving(q_pts, c_pts, 0.99 * best["quality"], best["cost_usd"]),
        "curve": {"cost_usd": c_pts.tolist(), "quality": q_pts.tolist()},
        "candidate_use_over_sweep": dict(zip(keys, np.round(n_used, 4).tolist(), strict=True)),
        **bootstrap(ch, quality, cost, best_col, boot, seed),
        **above_pareto(c_pts, q_pts, summary["single"], summary["pareto_front"]),
    }
    return out


def oracle_summary(quality: np.ndarray, cost: np.ndarray, summary: dict[str, Any]) -> dict[str, Any]:
    from adaptive_router.training.metrics import oracle_quality_cost_curve

    c, q = oracle_quality_cost_curve(quality, cost)
    best = summary["single"][summary["best_single"]]
    return {"name": "oracle", "max_quality": float(np.max(q)),
            "saving_at_100": saving(np.asarray(q), np.asarray(c), best["quality"], best["cost_usd"]),
            "saving_at_99": saving(np.asarray(q), np.asarray(c), 0.99 * best["quality"], best["cost_usd"]),
            "curve": {"cost_usd": list(map(float, c)), "quality": list(map(float, q))}}


# ---------------------------------------------------------------------------------------------
# the two data sets
# ---------------------------------------------------------------------------------------------


#: Benchmark variants: (trainer, extra parameters). BEST-Route's heads predict P(match the
#: reference) by default; "best-route-quality" trains the same multi-head network on the
#: expected quality of the kept sample (label="quality") and is swept with the trade-off knob.
VARIANTS = {"best-route-quality": ("best-route", {"label": "quality"})}


def fit_predict(name: str, train: list, val: list, tests: Sequence[list], keys: list[str],
                quality_score: str, seed: int, params: dict[str, Any]) -> list[np.ndarray]:
    """Train router ``name`` on ``train`` (``val`` for early stopping) and predict every record
    list of ``tests``."""
    from adaptive_router.training.train import train_router

    trainer, extra = VARIANTS.get(name, (name, {}))
    params = {**params, **extra}
    if extra.get("label") == "quality":
        params.pop("reference", None)
    router = train_router(trainer, train, val, keys, quality_score, seed=seed, progress=False, **params)
    return [router.predict_batch([r.prompt for r in t]) for t in tests]


def validation_score(preds: np.ndarray, quality: np.ndarray, cost: np.ndarray, knob: str) -> float:
    """The selection criterion on validation data: the mean cost saving at 100%, 99% and 98% of
    the best single model's quality (0 where the curve never gets there); three targets rather
    than one because a single point of a curve on a few hundred prompts is noisy."""
    rows = np.arange(quality.shape[0])
    ch = choices(preds, cost, knob)
    q_pts, c_pts = quality[rows[None, :], ch].mean(1), cost[rows[None, :], ch].mean(1)
    col = int(np.argmax(quality.mean(0)))
    bq, bc = quality[:, col].mean(), cost[:, col].mean()
    vals = [saving(q_pts, c_pts, f * bq, bc) for f in (1.0, 0.99, 0.98)]
    return float(np.mean([0.0 if v is None else v for v in vals]))


def run_champ(folds: int, boot: int, seed: int, routers: Sequence[str]) -> dict[str, Any]:
    from adaptive_router.training.evaluate import cost_matrix, data_summary, fleet_with_n, quality_matrix
    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.reward_training import score_records, train_reward_model
    from adaptive_router.training.trainers.best_route import MAJORITY, add_answer_ids, candidate_quality
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    ds = load_dataset("champ")
    fleet = fleet_with_n(ds.fleet, N_VALUES)
    keys = fleet.candidate_keys
    records = list(ds.records)
    add_answer_ids(records)
    rng = np.random.default_rng(seed)
    fold_of = rng.permutation(len(records)) % folds
    majority = [m for m in MAJORITY_ROUTERS if m in routers]
    preds = {name: np.zeros((len(records), len(keys))) for name in routers}
    preds.update({f"{name}+majority": np.zeros((len(records), len(keys))) for name in majority})
    rm_metrics = []
    for f in tqdm(range(folds), desc="champ folds", unit="fold"):
        tr_idx = np.flatnonzero(fold_of != f)
        te_idx = np.flatnonzero(fold_of == f)
        rm = train_reward_model([records[i] for i in tr_idx], ds.quality_score, progress=False,
                                seed=seed + f)
        rm_metrics.append(rm.metrics)
        # every response is scored by this fold's reward model (trained on the training folds)
        fold_recs = [r.model_copy(deep=True) for r in records]
        score_records(fold_recs, rm, "proxy_rm", progress=False)
        for i in te_idx:  # the held-out fold keeps the scores of the RM that never saw it
            records[i] = fold_recs[i]
        perm = rng.permutation(tr_idx)
        cut = max(1, len(perm) // 10)
        val = [fold_recs[i] for i in perm[:cut]]
        train = [fold_recs[i] for i in perm[cut:]]
        test = [fold_recs[i] for i in te_idx]
        for name in routers:
            params = {"reference": f"{ds.fleet.reference_model()}#1"} if name == "best-route" else {}
            preds[name][te_idx] = fit_predict(name, train, val, [test], keys, ds.quality_score,
                                              seed + f, params)[0]
        for name in majority:
            preds[f"{name}+majority"][te_idx] = fit_predict(
                name, train, val, [test], keys, ds.quality_score, seed + f,
                {"selector_score": MAJORITY})[0]
    quality = quality_matrix(records, keys, ds.quality_score, selector_score="proxy_rm")
    quality_majority = candidate_quality(records, keys, ds.quality_score, MAJORITY)
    quality_random = quality_matrix(records, keys, ds.quality_score)
    cost = cost_matrix(records, keys, fleet)
    summary = data_summary(records, fleet, ds.quality_score, keys)
    res = {
        "data": "champ", "protocol": f"{folds}-fold cross-validation over all {len(records)} problems",
        "n_prompts": len(records), "candidates": keys, "notes": ds.notes, "summary": summary,
        "best_of_n_quality": {k: {"proxy_rm": float(quality[:, j].mean()),
                                  "majority": float(quality_majority[:, j].mean()),
                                  "random_sample": float(quality_random[:, j].mean()),
                                  "cost_per_1k": 1000 * float(cost[:, j].mean())}
                              for j, k in enumerate(keys)},
        "reward_model_folds": [{k: m[k] for k in ("heldout_pairwise_accuracy",
                                                   "heldout_length_baseline_accuracy",
                                                   "train_pairs", "heldout_pairs")} for m in rm_metrics],
        "routers": {name: summarise_router(name, ROUTERS[name], preds[name], quality, cost, summary,
                                           keys, boot, seed) for name in routers},
        "routers_majority": {f"{name}+majority": summarise_router(
            f"{name}+majority", ROUTERS[name], preds[f"{name}+majority"], quality_majority, cost,
            summary, keys, boot, seed) for name in majority},
        "oracle": oracle_summary(quality, cost, summary),
        "oracle_majority": oracle_summary(quality_majority, cost, summary),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return res


def run_llmrouter(boot: int, seed: int, routers: Sequence[str]) -> dict[str, Any]:
    from adaptive_router.training.evaluate import cost_matrix, data_summary, quality_matrix
    from adaptive_router.training.loaders import load_dataset
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    ds = load_dataset("llmrouter")
    fleet = ds.fleet
    keys = fleet.candidate_keys
    train, val, test = ds.splits(seed=seed)
    quality = quality_matrix(test, keys, ds.quality_score)
    cost = cost_matrix(test, keys, fleet)
    summary = data_summary(test, fleet, ds.quality_score, keys)
    q_val, c_val = quality_matrix(val, keys, ds.quality_score), cost_matrix(val, keys, fleet)
    # the reference is the best single model on the *training* split
    q_train = quality_matrix(train, keys, ds.quality_score)
    train_best = keys[int(np.argmax(q_train.mean(0)))]
    out_routers, selection = {}, {}
    for name in tqdm(routers, desc="llmrouter routers", unit="router"):
        base = {"reference": train_best} if name == "best-route" else {}
        tried = []
        for extra in SEARCH.get(name, [{}]):
            p_val, p_test = fit_predict(name, train, val, [val, test], keys, ds.quality_score, seed,
                                        {**base, **extra})
            for knob in ("threshold", "tradeoff"):
                tried.append({"params": extra, "knob": knob,
                              "validation_score": validation_score(p_val, q_val, c_val, knob),
                              # reported for information only, after the choice is made below
                              "test_score_not_used": validation_score(p_test, quality, cost, knob),
                              "_pred": p_test})
        best = max(tried, key=lambda t: t["validation_score"])
        selection[name] = [{k: v for k, v in t.items() if k != "_pred"} for t in tried]
        r = summarise_router(name, best["knob"], best["_pred"], quality, cost, summary, keys, boot, seed)
        r["chosen_on_validation"] = {"params": best["params"], "knob": best["knob"],
                                     "validation_score": best["validation_score"]}
        out_routers[name] = r
    return {"data": "llmrouter", "validation_selection": selection, "protocol": "its test split (routers trained on its train split)",
            "n_prompts": len(test), "n_train": len(train), "n_val": len(val), "candidates": keys,
            "notes": ds.notes, "summary": summary, "routers": out_routers,
            "oracle": oracle_summary(quality, cost, summary),
            "seconds": round(time.perf_counter() - t0, 1)}


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def _pct(v: float | None) -> str:
    return "never" if v is None else f"{v:.0f}%"


def _ci(v: list[float] | None) -> str:
    return "-" if v is None else f"[{v[0]:.0f}%, {v[1]:.0f}%]"


def markdown(results: dict[str, Any], command: str) -> str:
    lines = ["# Best-of-n benchmark: (model, n) routing vs single models", "",
             f"Regenerate: `{command}` (both sets; `--sets champ` or `--sets llmrouter` reruns one). "
             "It writes this file, `best_of_n_benchmark_<set>.json` and `best_of_n_benchmark.png`.", ""]
    for key, res in results.items():
        s = res["summary"]
        best = s["best_single"]
        bq, bc = s["single"][best]["quality"], s["single"][best]["cost_usd"]
        lines += [f"## {key}: {res['protocol']}", "",
                  f"{res['n_prompts']} prompts; candidates {', '.join(res['candidates'])}. "
                  f"Best single model: **{best}** (quality {bq:.3f}, ${1000 * bc:.3f} per 1k prompts). "
                  f"Single-model Pareto front: {', '.join(s['pareto_front'])}.", ""]
        lines += ["| | quality | $ / 1k prompts | best quality reached | AIQ | saving at best single's quality (95% CI) | saving at 99% of it (95% CI) | on/above single-model front |",
                  "|---|---|---|---|---|---|---|---|"]
        for m, v in s["single"].items():
            sv = 100 * (1 - v["cost_usd"] / bc) if v["quality"] >= bq - 1e-12 else None
            lines.append(f"| {m} (always) | {v['quality']:.3f} | {1000 * v['cost_usd']:.3f} | - | - | "
                         f"{_pct(sv)} | - | {'front' if m in s['pareto_front'] else 'dominated'} |")
        for name, r in list(res["routers"].items()) + list(res.get("routers_majority", {}).items()):
            lines.append(
                f"| **{name}** ({r['knob']} knob; default point) | {r['quality_default']:.3f} | "
                f"{r['cost_per_1k_default']:.3f} | {r['max_quality']:.3f} | {r['aiq']:.3f} | "
                f"{_pct(r['saving_at_100'])} {_ci(r['saving_at_100_ci'])} | "
                f"{_pct(r['saving_at_99'])} {_ci(r['saving_at_99_ci'])} | "
                f"{'yes' if r['on_or_above_front'] else 'no'} |")
        o = res["oracle"]
        lines.append(f"| oracle (best candidate per prompt) | - | - | {o['max_quality']:.3f} | - | "
                     f"{_pct(o['saving_at_100'])} | {_pct(o['saving_at_99'])} | - |")
        if "oracle_majority" in res:
            o = res["oracle_majority"]
            lines.append(f"| oracle (majority selector) | - | - | {o['max_quality']:.3f} | - | "
                         f"{_pct(o['saving_at_100'])} | {_pct(o['saving_at_99'])} | - |")
        lines.append("")
        if res.get("routers_majority"):
            lines += ["Rows `+majority`: the fleet's selector is majority vote over the extracted final "
                      "answers (self-consistency, no reward model); those routers are trained on "
                      "majority-vote labels and scored against majority-vote best-of-n qualities. "
                      "The other rows use the proxy reward model as selector.", ""]
        chosen = {n: r["chosen_on_validation"] for n, r in res["routers"].items() if "chosen_on_validation" in r}
        if chosen:
            lines += ["Settings chosen on the validation split (carved from train; criterion: mean "
                      "saving at 100/99/98% of the validation split's best single model). The same "
                      "criterion on the test split is shown in parentheses for every setting tried, "
                      "for information only: it played no part in the choice.", ""]
            for n, c in chosen.items():
                tried = res.get("validation_selection", {}).get(n, [])
                alts = "; ".join(f"{json.dumps(t['params']) if t['params'] else 'defaults'} + "
                                 f"{t['knob']}: {t['validation_score']:.0f}%"
                                 + (f" (test {t['test_score_not_used']:.0f}%)" if "test_score_not_used" in t else "")
                                 for t in tried)
                lines.append(f"- **{n}**: {json.dumps(c['params']) if c['params'] else 'defaults'}, "
                             f"{c['knob']} knob (validation {c['validation_score']:.0f}%). Tried: {alts}.")
            lines.append("")
        if "best_of_n_quality" in res:
            lines += ["Best-of-n on the recorded samples (every prompt; the proxy reward model of "
                      "each fold picks among the n drawn; 'random' = no selector):", "",
                      "| candidate | quality (proxy RM picks) | quality (majority vote) | quality (random sample) | $ / 1k prompts |",
                      "|---|---|---|---|---|"]
            for k, v in res["best_of_n_quality"].items():
                lines.append(f"| {k} | {v['proxy_rm']:.3f} | {v.get('majority', float('nan')):.3f} | "
                             f"{v['random_sample']:.3f} | {v['cost_per_1k']:.3f} |")
            accs = [m["heldout_pairwise_accuracy"] for m in res["reward_model_folds"]]
            base = [m["heldout_length_baseline_accuracy"] for m in res["reward_model_folds"]]
            lines += ["", f"Proxy reward model (Bradley-Terry, MiniLM features, trained per fold): "
                      f"held-out pairwise accuracy {np.mean(accs):.3f} (folds: "
                      f"{', '.join(f'{a:.3f}' for a in accs)}); the longer-response baseline scores "
                      f"{np.mean(base):.3f}.", ""]
        for note in res.get("notes", []):
            lines.append(f"- {note}")
        lines += ["", f"Run time: {res['seconds']:.0f} s.", ""]
    return "\n".join(lines) + "\n"


def _dense(costs: Sequence[float], quals: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points along a polyline in *linear* cost (mixing two operating points is linear in
    dollars), so that it is drawn truthfully on a log-cost axis."""
    xs, ys = [], []
    for i in range(len(costs) - 1):
        t = np.linspace(0, 1, 30)
        xs.append(costs[i] + t * (costs[i + 1] - costs[i]))
        ys.append(quals[i] + t * (quals[i + 1] - quals[i]))
    if not xs:
        return np.asarray(costs, float), np.asarray(quals, float)
    return np.concatenate(xs), np.concatenate(ys)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(7 * len(results), 5.2), squeeze=False)
    colours = {"best-route": "tab:red", "best-route-quality": "tab:brown", "arllm-hdp": "tab:green", "arllm-nir": "tab:purple",
               "linear-probe": "tab:orange", "oracle": "0.5"}
    for ax, (key, res) in zip(axes[0], results.items(), strict=True):
        from adaptive_router.training.metrics import non_decreasing_convex_hull

        s = res["summary"]
        for name, r in (list(res["routers"].items()) + list(res.get("routers_majority", {}).items())
                        + [("oracle", res["oracle"])]):
            hc, hq = _dense(*non_decreasing_convex_hull(r["curve"]["cost_usd"], r["curve"]["quality"]))
            ax.plot(1000 * np.asarray(hc), hq, color=colours.get(name.split("+")[0], "k"), label=name,
                    lw=2 if name == "best-route" else 1.4,
                    ls="--" if name == "oracle" else ("-." if name.endswith("+majority") else "-"))
        fc, fq = _dense([1000 * s["single"][m]["cost_usd"] for m in s["pareto_front"]],
                        [s["single"][m]["quality"] for m in s["pareto_front"]])
        ax.plot(fc, fq, ":", color="k", lw=1, label="single-model Pareto front")
        for m, v in s["single"].items():
            ax.scatter(1000 * v["cost_usd"], v["quality"], color="k", zorder=5, s=25)
            ax.annotate(m, (1000 * v["cost_usd"], v["quality"]), fontsize=7,
                        xytext=(4, -10), textcoords="offset points")
        best = s["single"][s["best_single"]]
        ax.axhline(best["quality"], color="k", lw=0.6, alpha=0.4)
        ax.set_xscale("log")
        ax.set_xlabel("dollars per 1,000 prompts (log scale)")
        ax.set_ylabel("quality")
        ax.set_title(f"{key}: {res['protocol']}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=["champ", "llmrouter"], choices=["champ", "llmrouter"])
    ap.add_argument("--routers", nargs="+", default=list(ROUTERS), choices=list(ROUTERS))
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs"))
    ap.add_argument("--report-only", action="store_true",
                    help="only rebuild the markdown and the plot from the saved per-set JSON")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runners = {"champ": lambda: run_champ(args.folds, args.boot, args.seed, args.routers),
               "llmrouter": lambda: run_llmrouter(args.boot, args.seed, args.routers)}
    for key in [] if args.report_only else args.sets:  # each set's results are kept in its own JSON (sets can be rerun alone)
        res = runners[key]()
        res["command"] = "python benchmarks/best_of_n_benchmark.py " + " ".join(sys.argv[1:] if argv is None else argv)
        (out / f"best_of_n_benchmark_{key}.json").write_text(json.dumps(res, indent=1, default=float))
    results = {key: json.loads((out / f"best_of_n_benchmark_{key}.json").read_text())
               for key in ("champ", "llmrouter") if (out / f"best_of_n_benchmark_{key}.json").exists()}
    text = markdown(results, "python benchmarks/best_of_n_benchmark.py")
    (out / "best_of_n_benchmark.md").write_text(text)
    plot(results, out / "best_of_n_benchmark.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
