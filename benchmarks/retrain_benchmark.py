"""Retraining from day one on llmrouter: serve -> log -> retrain -> promote, 3 rounds.

    ADAPTIVE_ROUTER_DATA=../shared/data python benchmarks/retrain_benchmark.py [--rounds 3]
        [--epsilon 0.2] [--work runs/retrain-bench] [--max-traffic N]

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
  the full train table (``linear-probe``, ``sw-ranking``; full information).

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
from retrain_report import THRESHOLD, plot, write_doc
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
SEED = 0
SPLIT = {"seed": SEED, "val": 0.1, "test": 0.2}
FULL_INFO = ["linear-probe", "sw-ranking"]
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


def run_arm(strategy: str, seed: int, args: argparse.Namespace, ds: Any, traffic: list, test: list,
            half: float, fleet_file: Path, work: Path, proxy_setup: Any = None) -> dict[str, Any]:
    """Rounds of serve -> log -> grade -> retrain -> promote with one exploration strategy and
    exploration seed (through a real proxy when ``proxy_setup`` is given, else in process)."""
    from adaptive_router.training.retrain.job import retrain

    from adaptive_router.encoders import shared_encoder, training_cache_path
    from adaptive_router.routers import load_router

    arm = work / strategy / f"seed{seed}"
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
        chunk = [traffic[i] for i in idx]
        if proxy_setup is not None:
            from retrain_proxy import serve_round_proxy

            served = serve_round_proxy(serving_spec, chunk, ds, STRATEGIES[strategy], args.epsilon, 100 * seed + r,
                                       arm, f"{strategy}-round{r}", log, feedback, proxy_setup)
        else:
            served = serve_round(router, chunk, ds, exploration_policy(strategy, args.epsilon, 100 * seed + r),
                                 log, feedback, f"[{strategy}] round {r}: serving")
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
    return {"strategy": strategy, "seed": seed, "rounds": rounds, "total": total}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epsilon", type=float, default=0.2)
    ap.add_argument("--work", type=Path, default=Path("runs/retrain-bench"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--max-traffic", type=int, default=None, help="a seeded subsample of the traffic")
    ap.add_argument("--proxy", action="store_true",
                    help="serve through a real LiteLLM proxy on replay deployments (restarted each "
                         "round with the router that serves it); pair with --max-traffic")
    ap.add_argument("--strategies", default=",".join(STRATEGIES),
                    help="exploration arms: uniform, cost-aware (power 1), cost-aware-sqrt (power 0.5)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "retrain_benchmark.md")
    ap.add_argument("--seeds", type=int, default=1, help="exploration seeds per strategy")
    ap.add_argument("--first-seed", type=int, default=0, help="the first exploration seed")
    ap.add_argument("--from-json", type=Path, action="append", default=None,
                    help="re-render the markdown and the plot from results JSON of earlier runs; "
                         "repeat to merge runs (e.g. more exploration seeds) into one report")
    args = ap.parse_args()
    if args.from_json:
        results = [json.loads(p.read_text(encoding="utf-8")) for p in args.from_json]
        result = results[0]
        for extra in results[1:]:
            known = {(a["strategy"], a.get("seed", 0)) for a in result["arms"]}
            result["arms"] += [a for a in extra["arms"] if (a["strategy"], a.get("seed", 0)) not in known]
            if extra["command"] not in result["command"]:
                result["command"] += " && " + extra["command"]
        plot(result, args.out.with_suffix(".png"))
        write_doc(result, args.out, args.out.with_suffix(".png"))
        args.out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        return
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
    proxy_setup = None
    if args.proxy:
        from retrain_proxy import write_replay_setup

        proxy_setup = write_replay_setup(ds, traffic, args.work)
    arms = [run_arm(s, seed, args, ds, traffic, test, half, fleet_file, args.work, proxy_setup)
            for s in args.strategies.split(",") for seed in range(args.first_seed, args.first_seed + args.seeds)]
    command = "python benchmarks/retrain_benchmark.py " + " ".join(sys.argv[1:])
    result = {"command": command.strip(), "rounds": args.rounds, "epsilon": args.epsilon, "proxy": args.proxy,
              "seeds": args.seeds,
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
