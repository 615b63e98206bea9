"""Cascades against pre-call routers and single models, on data with recorded answers.

    .venv/bin/python benchmarks/cascade_benchmark.py     # GSM8K, CHAMP and llmrouter, ~10 min on 2 cores

- ``routellm-gsm8k`` (Mixtral-8x7B vs GPT-4 Turbo, one solution each): the seeded train / val /
  test split of ``adaptive-router train``. Routers are trained on train; the verifier on train
  (with the linear probe's out-of-fold priors), its penalty and calibration chosen on val; every
  figure is on test, once.
- ``champ`` (4 models, 9 samples each): 5-fold cross-validation over the 270 problems; each
  fold's verifier and router are trained on the other folds (10% of them for validation), and
  the held-out folds' replays are pooled into one curve.
- ``llmrouter`` (9 models, scores only) has no answer texts: a cascade cannot be replayed on it.
  Its pre-call routers are trained on train with their default knob (threshold or trade-off, and
  its value) chosen on validation (:mod:`adaptive_router.training.default_knob`).
- "perfect verifier, bound" rows score each kept answer by whether it is correct: an
  evaluation-only upper bound of what any verifier can reach with those steps.

Every cascade step is paid for (the prompt once per step, each sample's output tokens). Savings
are at the best single model's quality, on the non-decreasing convex hull of each method's
operating points; APGR($) integrates quality over the share of the strong model's cost.
Writes docs/cascade_benchmark.{md,json,png}.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from adaptive_router.training.cascade_eval import StepTable, build_step_table, evaluate_cascade, sweep_cascade
from adaptive_router.training.evaluate import (
    _summarise,
    cost_matrix,
    data_summary,
    evaluate_router,
    evaluate_single_models,
    oracle_for,
    quality_matrix,
    sweep,
)
from adaptive_router.training.loaders import load_dataset
from adaptive_router.training.train import train_router
from adaptive_router.training.verifier_training import out_of_fold_priors, train_verifier
from tqdm.auto import tqdm

from adaptive_router.persistence import json_default
from adaptive_router.verifiers import AgreementVerifier

DOCS = Path(__file__).resolve().parent.parent / "docs"
ROUTERS = ("linear-probe", "mf")


def run_gsm8k(seed: int) -> dict[str, Any]:
    ds = load_dataset("routellm-gsm8k")
    train, val, test = ds.splits(seed=seed)
    fleet, q = ds.fleet, ds.quality_score
    keys = fleet.candidate_keys
    res: dict[str, Any] = {"data": ds.name, "protocol": f"seeded split (seed {seed}): {len(train)} train, "
                           f"{len(val)} val, {len(test)} test", "single_models":
                           evaluate_single_models(test, fleet, q, keys), "methods": {}}
    routers = {name: train_router(name, train, val, keys, q, seed=seed, progress=False) for name in ROUTERS}
    for name, router in routers.items():
        res["methods"][name] = evaluate_router(router, test, fleet, q, name=name)
    res["methods"]["oracle"] = evaluate_router(oracle_for(test, keys, q), test, fleet, q, name="oracle")
    priors = out_of_fold_priors("linear-probe", train, val, test, keys, q, seed=seed, progress=False)
    verifier = train_verifier(train, val, fleet, q, test=test, n=(1,), seed=seed, priors=priors,
                              router="linear-probe", progress=False)
    res["verifier"] = {k: verifier.report[k]["auc"] for k in ("train", "val", "test")}
    res["verifier_by_model"] = {m: s["auc"] for m, s in verifier.report["test"]["by_model"].items()}
    plans = [[f"{ds.models[0]}#1", f"{ds.reference}#1"]] * len(test)
    rows = [priors[r.id] for r in test]
    res["methods"]["cascade (trained verifier)"] = evaluate_cascade(
        "cascade (trained verifier)", test, fleet, q, verifier, plans, priors=rows, seed=seed)
    table = build_step_table(test, plans, fleet, q, seed=seed)
    summary = data_summary(test, fleet, q, keys)
    pts = sweep_cascade(perfect_scores(table), table, top_model=ds.reference)
    res["methods"]["cascade (perfect verifier, bound)"] = _summarise(
        "cascade (perfect verifier, bound)", pts, pts[len(pts) // 2], summary, None, len(test), keys)
    return res


def perfect_scores(table: StepTable) -> np.ndarray:
    """A verifier that knows whether each kept answer is correct: the evaluation-only upper bound
    of a cascade's curve (what no real verifier can beat on these steps)."""
    return np.where(np.isnan(table.quality), np.nan, (table.quality >= 0.5).astype(float))


def _concat(tables: Sequence[StepTable], scores: Sequence[np.ndarray]) -> tuple[StepTable, np.ndarray]:
    width = max(t.valid.shape[1] for t in tables)

    def pad(a: np.ndarray, value: float) -> np.ndarray:
        extra = width - a.shape[-1]
        return np.concatenate([a, np.full(a.shape[:-1] + (extra,), value)], axis=-1) if extra else a

    table = StepTable(plans=[p for t in tables for p in t.plans], evidence=[],
                      quality=np.concatenate([pad(t.quality, np.nan) for t in tables], axis=1),
                      cost=np.concatenate([pad(t.cost, 0.0) for t in tables], axis=0),
                      valid=np.concatenate([pad(t.valid, 0).astype(bool) for t in tables], axis=0))
    return table, np.concatenate([pad(s, np.nan) for s in scores], axis=1)


CHAMP_CASCADES = (("gpt-3.5-turbo#1", "gpt-4-turbo#1"), ("gpt-3.5-turbo#5", "gpt-4-turbo#1"), ("gpt-3.5-turbo#5", "gpt-4-turbo#3"),
                  ("palm-2-medium#5", "gpt-3.5-turbo#5", "gpt-4-turbo#3"))


def run_champ(folds: int, seed: int) -> dict[str, Any]:
    ds = load_dataset("champ")
    fleet, q, records = ds.fleet, ds.quality_score, list(ds.records)
    keys = [f"{m}#1" for m in ds.models]
    fold_of = np.random.default_rng(seed).permutation(len(records)) % folds
    order: list = []
    preds: list[np.ndarray] = []
    parts: dict[str, list[tuple[StepTable, np.ndarray]]] = {}
    for f in tqdm(range(folds), desc="champ folds", unit="fold", file=sys.stderr):
        held = [r for r, g in zip(records, fold_of, strict=True) if g == f]
        rest = [r for r, g in zip(records, fold_of, strict=True) if g != f]
        cut = len(rest) // 10
        val, train = rest[:cut], rest[cut:]
        order += held
        router = train_router("linear-probe", train, val, keys, q, seed=seed, progress=False)
        preds.append(router.predict_batch([r.prompt for r in held])[:, router.restrict(keys)])
        verifier = train_verifier(train, val, fleet, q, n=(1, 3, 5), seed=seed, progress=False)
        for chain in CHAMP_CASCADES:
            table = build_step_table(held, [list(chain)] * len(held), fleet, q, seed=seed)
            for name, v in (("agreement", AgreementVerifier()), ("trained verifier", verifier)):
                parts.setdefault(f"cascade {' > '.join(chain)} ({name})", []).append((table, table.scores(v)))
            parts.setdefault(f"cascade {' > '.join(chain)} (perfect verifier, bound)", []).append(
                (table, perfect_scores(table)))
    summary = data_summary(order, fleet, q, keys)
    res: dict[str, Any] = {"data": "champ", "protocol": f"{folds}-fold cross-validation over {len(records)} "
                           "problems, held-out folds pooled", "single_models":
                           evaluate_single_models(order, fleet, q, keys), "methods": {}}
    quality, cost = quality_matrix(order, keys, q), cost_matrix(order, keys, fleet)
    p = np.concatenate(preds)
    for knob in ("threshold", "tradeoff"):
        pts = sweep(p, quality, cost, knob=knob)
        res["methods"][f"linear-probe ({knob})"] = _summarise(f"linear-probe ({knob})", pts, pts[len(pts) // 2],
                                                               summary, None, len(order), keys)
    res["methods"]["oracle"] = evaluate_router(oracle_for(order, keys, q), order, fleet, q, name="oracle")
    for name, items in parts.items():
        table, scores = _concat([t for t, _ in items], [s for _, s in items])
        pts = sweep_cascade(scores, table, top_model=ds.reference)
        res["methods"][name] = _summarise(name, pts, pts[len(pts) // 2], summary, None, len(order), keys)
    return res


LLMROUTER_ROUTERS = ("arllm-hdp", "linear-probe", "mf")


def run_llmrouter(seed: int) -> dict[str, Any]:
    """Pre-call routers only (no answer texts): each trained on train, its default knob (family
    and value) chosen on validation; the test curve of that family and the test point of the
    chosen default."""
    from adaptive_router.training.default_knob import choose_default_knob

    ds = load_dataset("llmrouter")
    train, val, test = ds.splits(seed=seed)
    fleet, q, keys = ds.fleet, ds.quality_score, ds.fleet.candidate_keys
    res: dict[str, Any] = {"data": ds.name, "protocol": f"llmrouter's own train/test ({len(train)} train, "
                           f"{len(val)} val carved from it, {len(test)} test); no answer texts, so pre-call "
                           "routers only; each router's knob family and value chosen on val",
                           "single_models": evaluate_single_models(test, fleet, q, keys), "methods": {}}
    best = max(res["single_models"].values(), key=lambda s: s["quality"])
    for name in LLMROUTER_ROUTERS:
        router = train_router(name, train, val, keys, q, seed=seed, progress=False)
        choice = choose_default_knob(router, val, fleet, q)
        (family, value), = choice["knob"].items()
        router.default_knob = choice["knob"]
        entry = evaluate_router(router, test, fleet, q, name=name, knob=family)
        entry["default_knob_choice"] = {family: value}
        entry["saving_at_default"] = (100 * (1 - entry["cost_usd"] / best["cost_usd"])
                                      if entry["quality"] >= best["quality"] - 1e-12 else None)
        res["methods"][f"{name} ({family} {value:.3g}, chosen on val)"] = entry
    res["methods"]["oracle"] = evaluate_router(oracle_for(test, keys, q), test, fleet, q, name="oracle")
    return res


def markdown(all_results: dict[str, Any], command: str) -> str:
    lines = ["# Cascades against pre-call routers", "",
             f"Reproduce: `{command}` (writes this file, `cascade_benchmark.json` and `.png`).", "",
             "Saving = percent of the best single model's cost saved at its quality (on the hull of "
             "each method's operating points; '-' = never reaches it). APGR($) = quality gap recovered, "
             "integrated over the share of the strong model's cost, every call and every cascade step "
             "included (two-model data). AIQ = area under the quality-cost hull over the single models' "
             "cost range, divided by that range.", ""]
    for res in all_results.values():
        lines += [f"## {res['data']}", "", res["protocol"] + ".", ""]
        if "verifier" in res:
            v = res["verifier"]
            lines += [f"Trained verifier AUC: train {v['train']:.3f}, val {v['val']:.3f}, test {v['test']:.3f} "
                      f"(test by model: " + ", ".join(f"{m} {a:.3f}" for m, a in res["verifier_by_model"].items()
                                                     if a is not None) + ").", ""]
        lines += ["| method | quality (default) | $/1k (default) | APGR($) | AIQ | saving @99% | saving @100% "
                  "| saving at the default |", "|---|---:|---:|---:|---:|---:|---:|---:|"]

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}%"

        def num(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        for m, s in res["single_models"].items():
            lines.append(f"| {m} (always) | {s['quality']:.3f} | ${s['cost_per_1k_usd']:.3g} | - | - | "
                         f"{pct(s['saving_at_99'])} | {pct(s['saving_at_100'])} | - |")
        for name, s in res["methods"].items():
            lines.append(f"| {name} | {s['quality']:.3f} | ${s['cost_per_1k_usd']:.3g} | {num(s.get('apgr_cost'))} "
                         f"| {num(s['aiq'])} | {pct(s['saving_at_99'])} | {pct(s['saving_at_100'])} | "
                         f"{pct(s.get('saving_at_default'))} |")
        lines.append("")
    return "\n".join(lines)


def plot(all_results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_results), figsize=(7 * len(all_results), 8.0), dpi=100)
    axes = np.atleast_1d(axes)
    for ax, res in zip(axes, all_results.values(), strict=True):
        for i, (name, s) in enumerate(res["methods"].items()):
            hc = np.array(s["hull"]["cost_usd"]) * 1000
            style = {"color": "black", "lw": 1.4} if name == "oracle" else {
                "color": plt.get_cmap("tab20")(i % 20), "lw": 2.2 if name.startswith("cascade") else 1.4,
                "ls": "-" if name.startswith("cascade") else "--"}
            ax.plot(hc, s["hull"]["quality"], label=name, **style)
        for m, s in res["single_models"].items():
            ax.scatter([s["cost_per_1k_usd"]], [s["quality"]], marker="*", s=120, color="tab:red", zorder=5)
            ax.annotate(m.split("/")[-1], (s["cost_per_1k_usd"], s["quality"]), fontsize=7,
                        xytext=(4, -10), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("dollars per 1,000 prompts (log scale)")
        ax.set_ylabel("mean quality")
        has_cascades = any(name.startswith("cascade") for name in res["methods"])
        ax.set_title(f"{res['data']}: cascades (solid) vs pre-call routers (dashed)" if has_cascades
                     else f"{res['data']}: pre-call routers only (no answer texts)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=1, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="routellm-gsm8k,champ,llmrouter")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DOCS)
    ap.add_argument("--replot", action="store_true", help="only redraw the PNG from the JSON in --out")
    args = ap.parse_args(argv)
    if args.replot:
        plot(json.loads((args.out / "cascade_benchmark.json").read_text()), args.out / "cascade_benchmark.png")
        return 0
    runners = {"routellm-gsm8k": lambda: run_gsm8k(args.seed), "champ": lambda: run_champ(args.folds, args.seed),
               "llmrouter": lambda: run_llmrouter(args.seed)}
    results = {}
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        results[name] = runners[name]()
    args.out.mkdir(parents=True, exist_ok=True)
    for res in results.values():
        for s in res["methods"].values():
            s.pop("curve", None)
    command = "python benchmarks/cascade_benchmark.py" + ("" if argv is None and len(sys.argv) == 1
                                                          else " " + " ".join(sys.argv[1:]))
    (args.out / "cascade_benchmark.json").write_text(json.dumps(results, indent=2, default=json_default))
    (args.out / "cascade_benchmark.md").write_text(markdown(results, command), encoding="utf-8")
    plot(results, args.out / "cascade_benchmark.png")
    print(markdown(results, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
