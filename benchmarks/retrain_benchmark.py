"""Retraining from day one on llmrouter (issue 15): serve -> log -> retrain -> promote, 3 rounds.

    ADAPTIVE_ROUTER_DATA=../shared/data python benchmarks/retrain_benchmark.py [--rounds 3]
        [--epsilon 0.2] [--work /tmp/adaptive-router-retrain-bench] [--max-traffic N]

Protocol (fixed in code, stated in docs/retrain_benchmark.md):

- data: llmrouter's nine-model score table, ``RoutingDataset.splits(seed=0, val=0.1, test=0.2)``
  as in ``benchmarks/routers_benchmark.py``: the traffic is the upstream train split (train +
  validation, 5,608 prompts, seeded order, cut into one equal chunk per round); evaluation is the
  decontaminated upstream test split (376 prompts) with full information (every model's score).
- serving: the bundled ``default`` router bound to the nine-model fleet, the plugin's default
  knob ``threshold(0.5)``, and 20% exploration, uniform (:class:`EpsilonExploration`) or
  cost-aware (:class:`CostAwareExploration`, the plugin's ``explore_strategy: cost-aware``).
  Decisions are made by the plugin's own router and policy objects *in process*; each served
  request is written as the plugin's traffic-log line (decision with its predictions, expected
  costs, policy and propensity; the task tag as request metadata) and its llmrouter score is
  graded into a feedback file keyed by request id. Dollar costs are the data set's prompt tokens
  and per-task ESTIMATED output tokens at ``default_llm.json`` prices (llmrouter has no
  responses), the same numbers for expected and realised cost.
- each round: ``retrain(logs so far, base = the router serving, fleet = the fleet file)`` (the
  ``adaptive-router retrain`` job: heads for every candidate, off-policy comparison, promotion
  rule unchanged); a promoted router serves the next round.
- after each round the retrained router and the serving router are evaluated on the test split
  (threshold knob swept; ``quality @ <= 50% cost`` = the best operating point costing at most
  half the best single model), beside the best single model, the oracle and routers trained on
  the full train table (``linear-probe``, ``sw_ranking``; full information).

Writes ``docs/retrain_benchmark.md``, ``docs/retrain_benchmark.json`` and
``docs/retrain_benchmark.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
SPLIT = {"seed": SEED, "val": 0.1, "test": 0.2}
THRESHOLD = 0.5
FULL_INFO = ["linear-probe", "sw_ranking"]
TARGET_QUALITY = 0.60
#: exploration arm -> (plugin explore_strategy, CostAwareExploration power)
STRATEGIES = {"uniform": ("uniform", None), "cost-aware": ("cost-aware", 1.0),
              "cost-aware-sqrt": ("cost-aware", 0.5)}


def quality_at_cost(curve: list[dict[str, float]], budget: float) -> float | None:
    """Best quality among the operating points costing at most ``budget`` per prompt."""
    ok = [p["quality"] for p in curve if p["cost_usd"] <= budget * (1 + 1e-9)]
    return max(ok) if ok else None


def evaluate(router: Any, test: list, ds: Any, half: float, label: str) -> dict[str, Any]:
    from adaptive_router.training.evaluate import evaluate_router

    res = evaluate_router(router, test, ds.fleet, ds.quality_score, name=label, default_knob=THRESHOLD)
    return {"quality_at_half_cost": quality_at_cost(res["curve"], half), "aiq": res.get("aiq"),
            "max_quality": res.get("max_quality"), "quality_at_knob": res["quality"],
            "cost_per_1k_at_knob": res["cost_per_1k_usd"]}


def exploration_policy(strategy: str, epsilon: float, seed: int) -> Any:
    from adaptive_router.policy import CostAwareExploration, EpsilonExploration, ThresholdPolicy

    base = ThresholdPolicy(THRESHOLD)
    kind, power = STRATEGIES[strategy]
    if kind == "cost-aware":
        return CostAwareExploration(base, epsilon, power=float(power or 1.0), seed=seed)
    return EpsilonExploration(base, epsilon, seed=seed)


def serve_round(router: Any, records: list, ds: Any, policy: Any, log: Path, feedback: Path,
                desc: str) -> dict[str, float]:
    """Serve ``records`` as the plugin does and write its traffic log and graded feedback."""
    from adaptive_router.training.evaluate import cost_matrix, quality_matrix

    from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

    keys = ds.fleet.candidate_keys
    cols = router.restrict(keys)
    preds = router.predict_batch([r.prompt for r in records], progress=True)[:, cols]
    costs = cost_matrix(records, keys, ds.fleet)
    quality = quality_matrix(records, keys, ds.quality_score)
    best = keys.index(f"{ds.reference}#1")
    writer = TrafficLogWriter(log, max_bytes=0)
    spend = explored_spend = 0.0
    served_quality, explored = [], 0
    with feedback.open("a", encoding="utf-8") as fb:
        for i, rec in enumerate(tqdm(records, desc=desc, unit="request")):
            d = policy.decide(dict(zip(keys, preds[i].tolist(), strict=True)),
                              dict(zip(keys, costs[i].tolist(), strict=True)), router=router.name)
            j = keys.index(d.candidate.key)
            m = rec.models[d.model]
            line = TrafficLogLine(prompt=rec.prompt, decision=d.as_dict(), samples=[""],
                                  prompt_tokens=m.token_num_prompt, output_tokens=list(m.token_num_responses[:1]),
                                  cost_usd=float(costs[i, j]), explored=d.explored, propensity=d.propensity,
                                  selector="first", metadata={"task": rec.task})
            writer.write(line)
            fb.write(json.dumps({"request_id": line.request_id, "score": float(quality[i, j])}) + "\n")
            spend += costs[i, j]
            served_quality.append(quality[i, j])
            if d.explored:
                explored += 1
                explored_spend += costs[i, j]
    return {"requests": len(records), "spend_usd": float(spend), "explored": explored,
            "explored_spend_usd": float(explored_spend),
            "best_single_spend_usd": float(costs[:, best].sum()),
            "served_quality": float(np.mean(served_quality))}


def run_arm(strategy: str, args: argparse.Namespace, ds: Any, traffic: list, test: list, half: float,
            fleet_file: Path, work: Path) -> dict[str, Any]:
    from adaptive_router.training.retrain import retrain

    from adaptive_router.encoders import shared_encoder, training_cache_path
    from adaptive_router.routers import load_router

    arm = work / strategy
    arm.mkdir(parents=True, exist_ok=True)
    chunks = np.array_split(np.arange(len(traffic)), args.rounds)
    serving_spec: str = "default"
    logs: list[Path] = []
    feedback = arm / "feedback.jsonl"
    feedback.unlink(missing_ok=True)
    rounds = []
    for r, idx in enumerate(chunks, 1):
        router = load_router(serving_spec, fleet=ds.fleet)
        if hasattr(router, "use_encoder"):  # a fleet-heads router: embeddings from the cache
            router.use_encoder(shared_encoder(router.encoder, disk_cache=training_cache_path()))
        log = arm / f"traffic_round{r}.jsonl"
        log.unlink(missing_ok=True)
        served = serve_round(router, [traffic[i] for i in idx], ds,
                             exploration_policy(strategy, args.epsilon, SEED + r), log, feedback,
                             f"[{strategy}] round {r}: serving")
        logs.append(log)
        print(f"[{strategy}] round {r}: retraining on {sum(len(c) for c in chunks[:r])} requests",
              file=sys.stderr, flush=True)
        res = retrain(logs, serving_spec, arm / f"round{r}", feedback=feedback,
                      fleet=fleet_file, seed=SEED, progress=False)
        cmp = res.summary["comparison"]
        retrained = load_router(res.candidate_dir, fleet=ds.fleet)
        row = {"round": r, "serving": serving_spec, "served": served, "promoted": res.promoted,
               "utility_difference": cmp["utility"]["dr"]["difference"],
               "utility_std_error": cmp["utility"]["dr"]["std_error"],
               "ess_new": cmp["quality"]["dr"]["new"]["effective_sample_size"],
               "held_out": res.summary["held_out"], "lambda": res.summary["heads"].get("lambda"),
               "heads": {h["candidate"]: {k: h[k] for k in ("served", "explored", "logged_mean",
                                                            "effective_sample_size", "predicted_mean")}
                         for h in res.summary["heads"].get("heads", [])},
               "retrained_test": evaluate(retrained, test, ds, half, f"{strategy} round {r}")}
        if res.promoted:
            serving_spec = str(res.router_dir)
        row["serving_after"] = serving_spec
        row["serving_after_test"] = (row["retrained_test"] if res.promoted else
                                     evaluate(load_router(serving_spec, fleet=ds.fleet), test, ds, half,
                                              f"{strategy} serving after round {r}"))
        rounds.append(row)
        print(f"[{strategy}] round {r}: promoted={res.promoted}, retrained quality@half="
              f"{row['retrained_test']['quality_at_half_cost']}", file=sys.stderr, flush=True)
    total = {k: sum(rw["served"][k] for rw in rounds) for k in
             ("requests", "spend_usd", "explored", "explored_spend_usd", "best_single_spend_usd")}
    return {"strategy": strategy, "rounds": rounds, "total": total}


def full_info_routers(ds: Any, train: list, val: list, test: list, half: float, work: Path) -> dict[str, Any]:
    from adaptive_router.training.evaluate import oracle_for
    from adaptive_router.training.train import train_router

    from adaptive_router.routers import load_router
    from adaptive_router.routers.base import Router

    keys = ds.fleet.candidate_keys
    out = {"oracle": evaluate(oracle_for(test, keys, ds.quality_score), test, ds, half, "oracle"),
           "default (round 0)": evaluate(load_router("default", fleet=ds.fleet), test, ds, half, "default")}
    for name in FULL_INFO:
        target = work / "full_info" / name
        router = (Router.from_pretrained(target) if (target / "config.json").exists() else
                  train_router(name, train, val, keys, ds.quality_score, out_dir=target, seed=SEED))
        out[f"{name} (full train table)"] = evaluate(router, test, ds, half, name)
    return out


def write_doc(result: dict[str, Any], md: Path, png: Path) -> None:
    s = result["summary"]
    best = s["best_single"]
    bq, bc = s["single"][best]["quality"], s["single"][best]["cost_per_1k_usd"]
    lines = [
        "# Retraining from day one (llmrouter, issue 15)",
        "",
        f"Generated by `{result['command']}` (see its docstring for the protocol).",
        "",
        "**How it was served, honestly:** decisions were made *in process* by the plugin's own "
        "router and policy objects (the bundled `default` bound to the nine-model fleet, "
        f"`threshold({THRESHOLD:g})`, {result['epsilon']:.0%} exploration: `uniform` = "
        "`EpsilonExploration`, `cost-aware` = `CostAwareExploration` with power 1 (the plugin's "
        "`explore_strategy: cost-aware`), `cost-aware-sqrt` = the same with power 0.5) and written as the "
        "plugin's traffic-log lines, not through a LiteLLM proxy: replaying "
        f"{result['traffic']} prompts x 2 strategies through a proxy on this shared 2-core machine "
        "was not attempted. The proxy path (default -> exploration -> log -> retrain -> promoted "
        "router loaded by a restarted proxy) is exercised by "
        "`tests/integration/test_retrain_proxy.py` on a small fleet. Dollar figures use llmrouter's "
        "prompt tokens and per-task ESTIMATED output tokens at `default_llm.json` prices (no "
        "responses are recorded), for expected and realised cost alike.",
        "",
        f"Traffic: llmrouter's upstream train split ({result['traffic']} prompts, seeded order) in "
        f"{result['rounds']} equal rounds; graded feedback = each served model's llmrouter score; "
        f"task tag logged as request metadata. Evaluation: the decontaminated test split "
        f"({result['n_test']} prompts) with every model's score. Best single model `{best}`: "
        f"quality {bq:.3f} at ${bc:.4f} per 1k prompts; quality @ <= 50% cost is the best "
        "operating point of the router's threshold sweep that costs at most half of that.",
        "",
        "## Reference points (test split)",
        "",
        "| router | quality @ <= 50% cost | AIQ | max quality |",
        "|---|---|---|---|",
        f"| best single model ({best}) | — (costs 100%) | | {bq:.3f} |",
    ]
    for name, r in result["references"].items():
        lines.append(f"| {name} | {_num(r['quality_at_half_cost'])} | {_num(r['aiq'])} | {_num(r['max_quality'])} |")
    lines += ["", "## Learning curve (test split, after each round)", "",
              "| exploration | round | served so far | promoted | retrained: quality @ <= 50% cost | "
              "retrained: AIQ | serving after the round: quality @ <= 50% cost | DR utility gain ± se | "
              "round spend $ | of which exploring $ | best single on the same prompts $ |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for arm in result["arms"]:
        seen = 0
        for rw in arm["rounds"]:
            seen += rw["served"]["requests"]
            sv = rw["served"]
            lines.append(
                f"| {arm['strategy']} | {rw['round']} | {seen} | {'yes' if rw['promoted'] else 'no'} | "
                f"{_num(rw['retrained_test']['quality_at_half_cost'])} | {_num(rw['retrained_test']['aiq'])} | "
                f"{_num(rw['serving_after_test']['quality_at_half_cost'])} | "
                f"{rw['utility_difference']:+.4f} ± {rw['utility_std_error']:.4f} | {sv['spend_usd']:.4f} | "
                f"{sv['explored_spend_usd']:.4f} | {sv['best_single_spend_usd']:.4f} |")
    lines += ["", "## Quality at equal exploration spend", "",
              "Cumulative spend on explored requests (dollars per 1k served requests) against the "
              "retrained router's test quality @ <= 50% cost, per round:", ""]
    for arm in result["arms"]:
        cum, served, pts = 0.0, 0, []
        for rw in arm["rounds"]:
            cum += rw["served"]["explored_spend_usd"]
            served += rw["served"]["requests"]
            pts.append(f"${1000 * cum / served:.4f} -> {_num(rw['retrained_test']['quality_at_half_cost'])}")
        lines.append(f"- {arm['strategy']}: " + "; ".join(pts))
    lines += ["", "## Targets (after the last round)", ""]
    for arm in result["arms"]:
        last = arm["rounds"][-1]
        q = last["retrained_test"]["quality_at_half_cost"]
        t = arm["total"]
        lines.append(
            f"- **{arm['strategy']}**: quality @ <= 50% cost {_num(q)} (target >= {TARGET_QUALITY:.2f}: "
            f"{'met' if q is not None and q >= TARGET_QUALITY else 'NOT met'}); spend of all rounds "
            f"${t['spend_usd']:.4f} (exploring ${t['explored_spend_usd']:.4f} on {t['explored']} "
            f"requests) against ${t['best_single_spend_usd']:.4f} for the best single model on the "
            f"same {t['requests']} prompts: {'met' if t['spend_usd'] < t['best_single_spend_usd'] else 'NOT met'} "
            f"({t['spend_usd'] / t['best_single_spend_usd']:.1%}).")
    lines += ["", "## Heads after the last round (cost-aware arm)", "",
              "| candidate | served | explored | logged mean (SNIPS) | ESS | learned head: mean prediction |",
              "|---|---|---|---|---|---|"]
    arm = next((a for a in result["arms"] if a["strategy"] == "cost-aware"), result["arms"][-1])
    for key, h in arm["rounds"][-1]["heads"].items():
        lines.append(f"| `{key}` | {h['served']} | {h['explored']} | {_num(h['logged_mean'])} | "
                     f"{h['effective_sample_size']:.1f} | {h['predicted_mean']:.3f} |")
    lines += ["", f"![learning curve]({png.name})", ""]
    md.write_text("\n".join(lines), encoding="utf-8")


def _num(v: Any) -> str:
    return "—" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def plot(result: dict[str, Any], path: Path) -> None:
    from adaptive_router.training.plots import finish_figure, plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.3), dpi=110)
    colours = {"uniform": "#7f7f7f", "cost-aware": "#1f77b4", "cost-aware-sqrt": "#ff7f0e"}
    refs = result["references"]
    d0 = refs["default (round 0)"]["quality_at_half_cost"]
    for arm in result["arms"]:
        xs = [0] + [rw["round"] for rw in arm["rounds"]]
        ys = [d0] + [rw["retrained_test"]["quality_at_half_cost"] for rw in arm["rounds"]]
        ax.plot(xs, ys, "-o", color=colours[arm["strategy"]], label=f"retrained, {arm['strategy']} exploration")
        spend = np.cumsum([rw["served"]["explored_spend_usd"] for rw in arm["rounds"]])
        ax2.plot(spend * 1000 / np.cumsum([rw["served"]["requests"] for rw in arm["rounds"]]), ys[1:], "-o",
                 color=colours[arm["strategy"]], label=f"{arm['strategy']} (rounds 1..{len(spend)})")
    for name, style in ( ("sw_ranking (full train table)", "--"),
                        ("linear-probe (full train table)", "-.")):
        if name in refs and refs[name]["quality_at_half_cost"] is not None:
            ax.axhline(refs[name]["quality_at_half_cost"], ls=style, color="#2ca02c", lw=1, label=name)
    best = result["summary"]["best_single"]
    ax.axhline(result["summary"]["single"][best]["quality"], color="#d62728", lw=1,
               label=f"best single model (100% cost): {best}")
    ax.axhline(TARGET_QUALITY, color="k", lw=0.6, ls=(0, (1, 3)), label=f"target {TARGET_QUALITY}")
    ax.set_xlabel("round (0 = the bundled default)")
    ax.set_ylabel("test quality at <= 50% of the best single model's cost")
    ax.set_xticks(range(result["rounds"] + 1))
    ax.set_title("llmrouter: retrained router after each round")
    ax2.set_xlabel("exploration spend so far, $ per 1k served requests (estimated tokens)")
    ax2.set_ylabel("test quality at <= 50% of the best single model's cost")
    ax2.set_title("information bought per exploration dollar")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    finish_figure(fig, ax, path, legend_size=7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epsilon", type=float, default=0.2)
    ap.add_argument("--work", type=Path, default=Path("/tmp/adaptive-router-retrain-bench"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--max-traffic", type=int, default=None, help="a seeded subsample of the traffic")
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help="exploration arms: uniform, cost-aware (power 1), cost-aware-sqrt (power 0.5)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "retrain_benchmark.md")
    args = ap.parse_args()
    from adaptive_router.training.evaluate import data_summary
    from adaptive_router.training.loaders import load_dataset

    ds = load_dataset("llmrouter", data_dir=args.data_dir)
    train, val, test = ds.splits(**SPLIT)
    traffic = list(train) + list(val)
    order = np.random.default_rng(SEED).permutation(len(traffic))
    traffic = [traffic[i] for i in order[: args.max_traffic or len(traffic)]]
    keys = ds.fleet.candidate_keys
    summary = data_summary(test, ds.fleet, ds.quality_score, keys)
    half = 0.5 * summary["single"][summary["best_single"]]["cost_usd"]
    args.work.mkdir(parents=True, exist_ok=True)
    fleet_file = args.work / "fleet.yaml"
    fleet_file.write_text(yaml.safe_dump(ds.fleet.to_dict()), encoding="utf-8")
    references = full_info_routers(ds, train, val, test, half, args.work)
    arms = [run_arm(s, args, ds, traffic, test, half, fleet_file, args.work)
            for s in args.strategies.split(",")]
    command = "python benchmarks/retrain_benchmark.py " + " ".join(sys.argv[1:])
    result = {"command": command.strip(), "rounds": args.rounds, "epsilon": args.epsilon,
              "traffic": len(traffic), "n_test": len(test), "summary": summary, "notes": ds.notes,
              "references": references, "arms": arms}
    md = args.out
    png, js = md.with_suffix(".png"), md.with_suffix(".json")
    js.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    plot(result, png)
    write_doc(result, md, png)
    print(md.read_text())


if __name__ == "__main__":
    main()
