"""Benchmark of the learned routers of issue 4 on routellm-mmlu, routellm-gsm8k and llmrouter.

    ADAPTIVE_ROUTER_DATA=../shared/data python benchmarks/routers_benchmark.py \
        [--data routellm-mmlu,routellm-gsm8k,llmrouter] [--checkpoints runs/routers-bench]

Protocol (fixed in code, stated in docs/benchmarks.md):
- splits: ``RoutingDataset.splits(seed=0, val=0.1, test=0.2)``: a seeded permutation into
  70/10/20 train/validation/test for the RouteLLM sets, llmrouter's own train/test with 10% of
  train held out for validation; the test split is decontaminated (cosine >= 0.95 to a training
  prompt is dropped).
- every router is trained on the train split (early stopping / model selection on validation),
  evaluated on the test split by ``adaptive_router.training.evaluate.evaluate_router`` (the
  threshold knob swept; APGR, CPT(50%), CPT(80%) from the deferral curve).
- the fine-tuned routers (``bert``, ``causal-llm``) run under a CPU budget (:data:`CPU_BUDGET`);
  on the large MMLU test split they are evaluated on a seeded subsample of
  ``--finetuned-eval-size`` prompts, and the linear probe is evaluated on the same subsample
  beside them so the comparison stays fair.

Writes ``docs/routers_benchmark.md``, ``docs/routers_benchmark.json`` and
``docs/routers_benchmark.png``; results of data sets not rerun are kept from the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
SPLIT = {"seed": SEED, "val": 0.1, "test": 0.2}
FROZEN = ["linear-probe", "mf", "sw-ranking", "hybrid-det", "hybrid-prob", "hybrid-trans"]
FINETUNED = ["bert", "causal-llm"]
#: Trainer settings that keep a fine-tuning run to minutes on a shared 2-core CPU.
CPU_BUDGET: dict[str, dict[str, Any]] = {
    "bert": {"max_steps": 30, "batch_size": 16, "max_length": 128, "eval_every": 10, "val_size": 64},
    "causal-llm": {"max_steps": 24, "batch_size": 8, "max_length": 64, "eval_every": 8, "val_size": 32,
                   "train_layers": 2},
}
#: RouteLLM's published best figures (Ong et al. 2024, tables 2-3). Trained on Chatbot Arena
#: preference data (+ augmentation), not on these splits.
PUBLISHED = {
    "routellm-mmlu": {"apgr": 0.603, "cpt_50": 0.354},
    "routellm-gsm8k": {"cpt_50": 0.336},
}
TARGETS = {
    "routellm-mmlu": {"apgr": (">=", 0.70), "cpt_50": ("<=", 0.25)},
    "routellm-gsm8k": {"cpt_50": ("<=", 0.30)},
    "llmrouter": {"quality_at_half_cost": (">=", 0.60)},
}


def load_or_train(name: str, ds: Any, train: list, val: list, ckdir: Path) -> Any:
    """The router ``name`` from ``ckdir/name`` or trained (and saved there) on the train split."""
    from adaptive_router.training.train import train_router

    from adaptive_router.routers.base import Router

    target = ckdir / name
    if (target / "config.json").exists():
        return Router.from_pretrained(target)
    keys = ds.fleet.candidate_keys
    params = dict(CPU_BUDGET.get(name, {}))
    if len(ds.models) == 2:
        params["reference"] = f"{ds.reference}#1"
    return train_router(name, train, val, keys, ds.quality_score, out_dir=target, seed=SEED, **params)


def quality_at_cost(result: dict[str, Any], budget: float) -> float | None:
    """Best quality among the router's operating points costing at most ``budget`` per prompt."""
    ok = [p["quality"] for p in result["curve"] if p["cost_usd"] <= budget * (1 + 1e-9)]
    return max(ok) if ok else None


def slim(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "n_prompts", "apgr", "cpt_50", "cpt_80", "quality", "cost_per_1k_usd", "share_strong",
            "aiq", "max_quality", "quality_at_half_cost", "deferral_curve", "curve")
    out = {k: result.get(k) for k in keep if k in result}
    if "curve" in out:
        out["curve"] = [{k: p.get(k) for k in ("share_strong", "cost_usd", "quality")} for p in out["curve"]]
    return out


def run_dataset(data: str, routers: list[str], finetuned: list[str], ckroot: Path, sub_size: int,
                data_dir: str | None, max_records: int | None = None) -> dict[str, Any]:
    from adaptive_router.training.evaluate import data_summary, evaluate_router, oracle_for
    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.train import subsample_dataset

    ds = load_dataset(data, data_dir=data_dir)
    full_size = len(ds.records)
    # a seeded random subsample (the first max_records of permutation(seed 0)), then the same
    # seeded split: stated in the output when used
    ds = subsample_dataset(ds, max_records, SEED)
    train, val, test = ds.splits(**SPLIT)
    keys = ds.fleet.candidate_keys
    summary = data_summary(test, ds.fleet, ds.quality_score, keys)
    half = 0.5 * summary["single"][summary["best_single"]]["cost_usd"]
    ckdir = ckroot / data
    out: dict[str, Any] = {"data": data, "records_used": len(ds.records), "records_total": full_size,
                           "n_train": len(train), "n_val": len(val), "n_test": len(test),
                           "quality_score": ds.quality_score, "notes": ds.notes, "summary": summary,
                           "routers": {}, "subsample": {}}

    def evaluate(router: Any, records: list, label: str) -> dict[str, Any]:
        res = evaluate_router(router, records, ds.fleet, ds.quality_score, name=label, progress=True)
        res["quality_at_half_cost"] = quality_at_cost(res, half)
        return slim(res)

    from adaptive_router.routers import load_router

    out["routers"]["oracle"] = evaluate(oracle_for(test, keys, ds.quality_score), test, "oracle")
    out["routers"]["random"] = evaluate(load_router("random", fleet=ds.fleet, seed=SEED), test, "random")
    for name in routers:
        print(f"[{data}] {name}", file=sys.stderr, flush=True)
        out["routers"][name] = evaluate(load_or_train(name, ds, train, val, ckdir), test, name)
    if finetuned:
        big = len(test) > sub_size
        idx = np.random.default_rng(SEED).permutation(len(test))[:sub_size] if big else np.arange(len(test))
        sub = [test[i] for i in sorted(idx)]
        target = out["subsample"] if big else out["routers"]
        if big:
            out["subsample_size"] = len(sub)
            for name in ("oracle", "linear-probe"):
                r = oracle_for(sub, keys, ds.quality_score) if name == "oracle" else \
                    load_or_train(name, ds, train, val, ckdir)
                target[name] = evaluate(r, sub, name)
        for name in finetuned:
            print(f"[{data}] {name} (fine-tuned, CPU budget)", file=sys.stderr, flush=True)
            target[name] = evaluate(load_or_train(name, ds, train, val, ckdir), sub, name)
    for name in list(out["routers"]) + list(out["subsample"]):
        report = ckdir / name / "training_report.json"
        if report.exists():
            rep = json.loads(report.read_text())
            where = out["routers"] if name in out["routers"] else out["subsample"]
            where[name]["train_seconds"] = rep.get("train_seconds")
    return out


def compact(obj: Any, points: int = 101) -> Any:
    """Floats rounded to 5 digits and long curves thinned to ``points``, to keep the JSON small."""
    if isinstance(obj, float):
        return round(obj, 5)
    if isinstance(obj, dict):
        return {k: compact(v, points) for k, v in obj.items()}
    if isinstance(obj, list):
        if len(obj) > points:
            idx = np.unique(np.linspace(0, len(obj) - 1, points).round().astype(int))
            obj = [obj[i] for i in idx]
        return [compact(v, points) for v in obj]
    return obj


def pct(v: Any) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def num(v: Any) -> str:
    return "—" if v is None else f"{v:.3f}"


def table(results: dict[str, Any]) -> str:
    lines = []
    for data, res in results.items():
        s = res["summary"]
        used = res.get("records_used")
        sub = (f"; a seeded random subsample of {used} of the {res['records_total']} records"
               if used and used < res.get("records_total", used) else "")
        lines.append(f"\n### {data} (test split: {res['n_test']} prompts; train {res['n_train']}, "
                     f"validation {res['n_val']}{sub})\n")
        if data == "llmrouter":
            best = s["single"][s["best_single"]]
            lines.append(f"Best single model: {s['best_single']} (quality {best['quality']:.3f}, "
                         f"${1000 * best['cost_usd']:.4f} per 1k prompts). Quality at <= 50% of its cost is "
                         "the best operating point of the router's threshold sweep that costs at most half.\n")
            lines.append("| router | quality @ <= 50% cost | AIQ | max quality | train s |")
            lines.append("|---|---|---|---|---|")
            for name, r in res["routers"].items():
                lines.append(f"| {name} | {num(r.get('quality_at_half_cost'))} | {num(r.get('aiq'))} | "
                             f"{num(r.get('max_quality'))} | {r.get('train_seconds') or ''} |")
        else:
            lines.append(f"Weak {s.get('weak')} quality {s['single'][s['weak']]['quality']:.3f}, strong "
                         f"{s.get('strong')} {s['single'][s['strong']]['quality']:.3f}.\n")
            lines.append("| router | APGR | CPT(50%) | CPT(80%) | train s |")
            lines.append("|---|---|---|---|---|")
            for name, r in res["routers"].items():
                lines.append(f"| {name} | {num(r.get('apgr'))} | {pct(r.get('cpt_50'))} | {pct(r.get('cpt_80'))} | "
                             f"{r.get('train_seconds') or ''} |")
            pub = PUBLISHED.get(data)
            if pub:
                lines.append(f"| RouteLLM published best (trained on other data) | {num(pub.get('apgr'))} | "
                             f"{pct(pub.get('cpt_50'))} | — | |")
            if res.get("subsample"):
                lines.append(f"\nFine-tuned routers on a seeded subsample of {res['subsample_size']} test "
                             "prompts (CPU budget), with the linear probe and oracle on the same prompts:\n")
                lines.append("| router | APGR | CPT(50%) | CPT(80%) | train s |")
                lines.append("|---|---|---|---|---|")
                for name, r in res["subsample"].items():
                    lines.append(f"| {name} | {num(r.get('apgr'))} | {pct(r.get('cpt_50'))} | "
                                 f"{pct(r.get('cpt_80'))} | {r.get('train_seconds') or ''} |")
        lines.append("")
        lines.append(targets_line(data, res))
    return "\n".join(lines)


def best_of(res: dict[str, Any], metric: str, lower: bool) -> tuple[str | None, float | None]:
    rows = res["routers"]  # the full test split only: a subsample's figures are too noisy to rank
    vals = [(n, r.get(metric)) for n, r in rows.items()
            if r.get(metric) is not None and not n.startswith(("oracle", "random"))]
    if not vals:
        return None, None
    return (min if lower else max)(vals, key=lambda x: x[1])


def targets_line(data: str, res: dict[str, Any]) -> str:
    parts = []
    for metric, (op, goal) in TARGETS.get(data, {}).items():
        name, val = best_of(res, metric, lower=op == "<=")
        met = val is not None and (val <= goal if op == "<=" else val >= goal)
        shown = pct(val) if metric.startswith("cpt") else num(val)
        goal_s = pct(goal) if metric.startswith("cpt") else num(goal)
        parts.append(f"{metric} {op} {goal_s}: best {shown} ({name}) — {'met' if met else 'NOT met'}")
    return "Targets: " + "; ".join(parts) if parts else ""


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.6), squeeze=False)
    for ax, (data, res) in zip(axes[0], results.items(), strict=True):
        for name, r in res["routers"].items():
            style = {"oracle": dict(color="black", ls="--"), "random": dict(color="grey", ls=":")}.get(name, {})
            if r.get("deferral_curve"):
                d = r["deferral_curve"]
                ax.plot(d["share_strong"], d["quality"], label=name, **style)
            else:
                c = sorted(r["curve"], key=lambda p: p["cost_usd"])
                ax.plot([1000 * p["cost_usd"] for p in c], [p["quality"] for p in c], label=name, **style)
        if res["routers"] and next(iter(res["routers"].values())).get("deferral_curve"):
            ax.set_xlabel("share of calls to the strong model")
        else:
            ax.set_xlabel("dollars per 1k prompts")
            s = res["summary"]
            for _m, v in s["single"].items():
                ax.scatter([1000 * v["cost_usd"]], [v["quality"]], s=12, color="tab:red")
            best = s["single"][s["best_single"]]
            ax.axvline(500 * best["cost_usd"], color="tab:red", lw=0.8, ls="--", label="50% of best model's cost")
        ax.set_ylabel("quality")
        ax.set_title(f"{data} (test, {res['n_test']} prompts)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def update_readme(path: Path, text: str) -> None:
    """Replace the block between the routers-benchmark-table markers of the README."""
    start, end = "<!-- routers-benchmark-table -->", "<!-- /routers-benchmark-table -->"
    if not path.exists():
        return
    readme = path.read_text()
    if start not in readme or end not in readme:
        return
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + start + "\n" + text.strip() + "\n" + end + tail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="routellm-mmlu,routellm-gsm8k,llmrouter")
    ap.add_argument("--routers", default=",".join(FROZEN))
    ap.add_argument("--finetuned", default=",".join(FINETUNED), help="'' to skip bert / causal-llm")
    ap.add_argument("--finetuned-eval-size", type=int, default=300)
    ap.add_argument("--checkpoints", default=os.environ.get("ADAPTIVE_ROUTER_BENCH_CHECKPOINTS",
                                                            "runs/routers-bench"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--readme", default=str(ROOT / "docs" / "benchmarks.md"),
                    help="README whose routers-benchmark-table block is refreshed ('' to skip)")
    ap.add_argument("--max-records", type=int, default=None,
                    help="use a seeded random subsample of at most this many records per data set")
    ap.add_argument("--out", default=str(ROOT / "docs"))
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / "routers_benchmark.json"
    results: dict[str, Any] = json.loads(jpath.read_text())["results"] if jpath.exists() else {}
    routers = [r for r in args.routers.split(",") if r]
    finetuned = [r for r in args.finetuned.split(",") if r]
    for data in [d for d in args.data.split(",") if d]:
        results[data] = run_dataset(data, routers, finetuned, Path(args.checkpoints), args.finetuned_eval_size,
                                    args.data_dir, args.max_records)
        order = ["routellm-mmlu", "routellm-gsm8k", "llmrouter"]
        results = dict(sorted(results.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 9))
        jpath.write_text(json.dumps(compact({"split": SPLIT, "cpu_budget": CPU_BUDGET, "published": PUBLISHED,
                                             "results": results}), default=float))
    if not results:
        print("no results yet: run with --data NAME", file=sys.stderr)
        return 1
    # (re)render the markdown, the plot and the README block from all results (`--data ''` only renders)
    text = table(results)
    md = ["# Learned routers benchmark", "",
          "Generated by `python benchmarks/routers_benchmark.py` (see its docstring for the protocol). "
          f"Splits: `RoutingDataset.splits(seed={SEED}, val=0.1, test=0.2)`, decontaminated test. "
          "RouteLLM's published figures were obtained by routers trained on other data (Chatbot Arena "
          "preferences plus augmentation) and are shown for orientation only.", text, "",
          "![routers](routers_benchmark.png)", ""]
    (out_dir / "routers_benchmark.md").write_text("\n".join(md))
    plot(results, out_dir / "routers_benchmark.png")
    if args.readme:
        update_readme(Path(args.readme), text.replace("\n### ", "\n#### "))
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
