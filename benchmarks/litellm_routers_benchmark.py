"""LiteLLM's own routers beside adaptive-router, on the same replayed traffic through real proxies.

    ADAPTIVE_ROUTER_DATA=/work/shared/data python benchmarks/litellm_routers_benchmark.py \
        [--n 200] [--seed 0] [--work runs/litellm-routers]

Protocol (fixed in code, stated in docs/litellm_routers.md):

- data: llmrouter's nine-model score table, ``RoutingDataset.splits(seed=0, val=0.1, test=0.2)``
  (as in ``benchmarks/routers_benchmark.py``); the traffic is a seeded subsample (``--n``,
  ``--seed``) of the test split, every prompt with every model's recorded score, so the quality of
  whichever model a router serves is looked up, not judged.
- serving: every arm is one real LiteLLM proxy process (``LiteLLMProxy``) whose nine deployments
  are ``replay/`` models (``adaptive_router.integrations.litellm_plugin.providers``) answering from
  Records with the data set's prompt tokens and per-task ESTIMATED output tokens, priced with
  llmrouter's ``default_llm.json`` prices in ``model_info``. The replayed answer names its model,
  so the served model is read from the answer; the cost is the proxy's own
  ``x-litellm-response-cost`` header.
- LiteLLM's routers need an operator's tier map; it is derived from the train split (what an
  operator knows): the models on the train split's (price, mean quality) Pareto frontier, in
  price order, fill SIMPLE, MEDIUM, COMPLEX, REASONING (the top model repeats when the frontier is
  shorter than four). ``quality_router`` and LiteLLM's ``adaptive_router`` get those models with
  ``quality_tier`` 1, 2, 3 in the same order.
- adaptive-router: the plugin (proxy hook) with the bundled ``default`` router and with
  ``sw-ranking`` trained on the train split, at the default knob ``threshold: 0.5``; and the same
  routers hosted as ``complexity_router``'s ``classifier_type: custom`` plugin
  (``integrations/litellm_plugin/classifier_plugin.py``) on an eight-model fleet (LiteLLM allows at most
  eight tiers: the model with the lowest train-split quality is left out).

Writes ``docs/litellm_routers.md`` and ``docs/litellm_routers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
SPLIT = {"seed": 0, "val": 0.1, "test": 0.2}
TIERS = ("SIMPLE", "MEDIUM", "COMPLEX", "REASONING")
ANSWER = re.compile(r"\(replayed answer of (.+)\)")
GROUP = "{}-replay"

#: LiteLLM routers that need a network call per request or a package not installed, and why.
NOT_OFFLINE = {
    "auto_router (semantic, `auto_router/<name>`)": (
        "imports the `semantic-router` package (not installed here; LiteLLM does not declare it) and "
        "embeds every prompt with `auto_router_embedding_model` through `litellm.aembedding` "
        "(auto_router/litellm_encoder.py), plus the route utterances at startup: an embedding "
        "deployment is required; the replay and local providers of this package serve no embeddings"),
    "complexity_router `classifier_type: llm` / `heuristic_first` / `hybrid`": (
        "call `classifier_llm_config.model` (a chat model) to pick the tier: on every request "
        "(`llm`), above `heuristic_first_max_tier`, or near a tier boundary (`hybrid`)"),
    "complexity_router `classifier_type: capability` / `llm_v2`": (
        "call a judge model (`classifier_llm_config.model`) for a structured p_solve forecast with "
        "the packaged Switchyard capability card"),
    "complexity_router `classifier_type: oss_classifier`": (
        "calls a hosted open classifier model (Jev, Laya or Bespoke Nimble) through "
        "`opensource_classifier_config`"),
}


# -- setup ------------------------------------------------------------------------------------
def train_stats(ds: Any, train: list) -> dict[str, dict[str, float]]:
    prices = ds.fleet.prices()
    return {m: {"quality": float(np.mean([r.models[m].score(ds.quality_score)[0] for r in train])),
                "price": float(prices[m].input_per_token + prices[m].output_per_token)}
            for m in ds.models}


def frontier(stats: dict[str, dict[str, float]]) -> list[str]:
    """Models on the (price, train quality) Pareto frontier, cheapest first."""
    order = sorted(stats, key=lambda m: (stats[m]["price"], -stats[m]["quality"]))
    out: list[str] = []
    for m in order:
        if not out or stats[m]["quality"] > stats[out[-1]]["quality"]:
            if out and stats[m]["price"] == stats[out[-1]]["price"]:
                continue
            out.append(m)
    return out


def write_setup(ds: Any, sample: list, work: Path, models: list[str]) -> tuple[Path, list[dict]]:
    """Replay Records for ``sample`` (every model) and the priced replay deployments."""
    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        placeholder_replay_records,
        replay_deployment,
    )

    from adaptive_router.records import write_records

    path = work / "replay.jsonl"
    write_records(placeholder_replay_records(sample), path)
    prices = ds.fleet.prices()
    return path, [replay_deployment(GROUP.format(m), m, prices[m].input_per_token, prices[m].output_per_token)
                  for m in models]


def write_fleet(ds: Any, models: list[str], path: Path) -> Path:
    path.write_text(yaml.safe_dump({"reference": ds.reference, "selector": "first", "models": [
        {"name": m, "litellm_model": GROUP.format(m), "n": [1]} for m in models]}), encoding="utf-8")
    return path


def with_info(deployments: list[dict], info: dict[str, dict]) -> list[dict]:
    out = []
    for d in deployments:
        model = d["litellm_params"]["model"].split("/", 1)[1]
        extra = info.get(model)
        out.append({**d, "model_info": {**d["model_info"], **extra}} if extra else d)
    return out


def arms(ds: Any, work: Path, deployments: list[dict], tier_models: list[str], fleet9: Path,
         fleet8: Path, routers: dict[str, tuple[str, str]], thresholds: list[float]) -> list[dict[str, Any]]:
    """Every arm: its name, family, proxy config pieces and the alias the traffic is sent to.

    ``routers``: label -> (router spec on the nine-model fleet, on the eight-model fleet)."""
    from adaptive_router.integrations.litellm_plugin.classifier_plugin import complexity_router_config

    from adaptive_router.domain import Fleet

    ladder = (tier_models + [tier_models[-1]] * 4)[:4]
    tiers = {t: GROUP.format(m) for t, m in zip(TIERS, ladder, strict=True)}
    qtier = {m: min(i + 1, 3) for i, m in enumerate(dict.fromkeys(ladder))}  # LiteLLM's adaptive caps at 3
    groups = [GROUP.format(m) for m in qtier]
    smart = "smart-router"
    out: list[dict[str, Any]] = []
    for label, (spec9, spec8) in routers.items():
        for t in thresholds:
            slug = re.sub(r"[^a-z0-9]+", "-", f"{label}-{t}")
            out.append({"name": f"adaptive-router plugin, {label}, threshold {t:g}",
                        "family": "adaptive-router (proxy hook)",
                        "alias": "adaptive-router", "deployments": deployments,
                        "plugin": {"fleet": str(fleet9), "router": spec9, "selector": "first",
                                   "policy": {"threshold": t}, "traffic_log": str(work / f"{slug}.log.jsonl"),
                                   "traffic_log_max_bytes": 0}})
        crc = complexity_router_config(Fleet.from_yaml(fleet8))
        out.append({"name": f"complexity_router + adaptive-router classifier, {label}, threshold {thresholds[0]:g}",
                    "family": "adaptive-router hosted in LiteLLM's complexity_router", "alias": smart,
                    "deployments": [*deployments, {"model_name": smart, "litellm_params": {
                        "model": "auto_router/complexity_router", "complexity_router_config": crc}}],
                    "litellm_settings": {"adaptive_router": {"fleet": str(fleet8), "router": spec8,
                                                             "policy": {"threshold": thresholds[0]}}}})
    for kind in ("heuristic", "heuristic_v2"):
        out.append({"name": f"complexity_router, classifier_type: {kind}", "family": "LiteLLM",
                    "alias": smart, "deployments": [*deployments, {"model_name": smart, "litellm_params": {
                        "model": "auto_router/complexity_router",
                        "complexity_router_config": {"classifier_type": kind, "tiers": tiers}}}]})
    out.append({"name": "quality_router", "family": "LiteLLM", "alias": smart, "deployments": [
        *with_info(deployments, {m: {"litellm_routing_preferences": {"quality_tier": q}} for m, q in qtier.items()}),
        {"model_name": smart, "litellm_params": {
            "model": "auto_router/quality_router", "quality_router_default_model": GROUP.format(ladder[1]),
            "quality_router_config": {"available_models": groups,
                                      "complexity_to_quality": {t: qtier[m] for t, m in zip(TIERS, ladder,
                                                                                           strict=True)}}}}]})
    out.append({"name": "adaptive_router (LiteLLM's bandit), weights quality 0.7 / cost 0.3", "family": "LiteLLM",
                "alias": smart, "deployments": [
                    *with_info(deployments, {m: {"adaptive_router_preferences": {"quality_tier": q}}
                                             for m, q in qtier.items()}),
                    {"model_name": smart, "litellm_params": {
                        "model": "auto_router/adaptive_router", "adaptive_router_default_model": GROUP.format(ladder[1]),
                        "adaptive_router_config": {"available_models": groups,
                                                   "weights": {"quality": 0.7, "cost": 0.3}}}}]})
    return out


# -- serving ----------------------------------------------------------------------------------
async def send_all(base_url: str, headers: dict[str, str], alias: str, prompts: list[str], concurrency: int,
                   desc: str) -> list[dict[str, Any]]:
    import httpx

    sem = asyncio.Semaphore(concurrency)
    out: list[dict[str, Any]] = [{} for _ in prompts]
    bar = tqdm(total=len(prompts), desc=desc, unit="req")
    async with httpx.AsyncClient(timeout=120) as client:
        async def one(i: int) -> None:
            async with sem:
                resp = await client.post(f"{base_url}/v1/chat/completions", headers=headers, json={
                    "model": alias, "messages": [{"role": "user", "content": prompts[i]}]})
                row: dict[str, Any] = {"status": resp.status_code}
                if resp.status_code == 200:
                    body = resp.json()
                    text = body["choices"][0]["message"]["content"] or ""
                    match = ANSWER.search(text)
                    row["model"] = match.group(1) if match else None
                    row["n_choices"] = len(body["choices"])
                    cost = resp.headers.get("x-litellm-response-cost")
                    row["cost_usd"] = float(cost) if cost not in (None, "", "None") else None
                else:
                    row["error"] = resp.text[:300]
                out[i] = row
                bar.update()

        await asyncio.gather(*(one(i) for i in range(len(prompts))))
    bar.close()
    return out


def run_arm(arm: dict[str, Any], sample: list, records_path: Path, work: Path, concurrency: int) -> list[dict]:
    from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy, write_proxy_config

    slug = re.sub(r"[^a-z0-9]+", "-", arm["name"].lower()).strip("-")[:60]
    config = write_proxy_config(work / f"{slug}.yaml", arm["deployments"], plugin=arm.get("plugin"),
                                litellm_settings={
                                    **arm.get("litellm_settings", {}),
                                    "custom_provider_map": [{
                                        "provider": "replay",
                                        "custom_handler": "adaptive_router.integrations.litellm_plugin.providers.replay_provider"}]})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records_path)},
                      log_path=work / f"{slug}.proxy.log") as proxy:
        return asyncio.run(send_all(proxy.base_url, proxy.headers, arm["alias"], [r.prompt for r in sample],
                                    concurrency, arm["name"][:48]))


def summarise(name: str, family: str, rows: list[dict], sample: list, ds: Any) -> dict[str, Any]:
    ok = [(r, row) for r, row in zip(sample, rows, strict=True) if row.get("status") == 200 and row.get("model")]
    quality = [float(r.models[row["model"]].score(ds.quality_score)[0]) for r, row in ok]
    per_prompt = {r.id: float(r.models[row["model"]].score(ds.quality_score)[0]) for r, row in ok}
    costs = [row["cost_usd"] for _, row in ok if row.get("cost_usd") is not None]
    mix = Counter(row["model"] for _, row in ok)
    errors = Counter(row.get("error", "")[:160] for row in rows if row.get("status") != 200)
    return {"name": name, "family": family, "requests": len(rows), "served": len(ok),
            "failed": len(rows) - len(ok), "quality": float(np.mean(quality)) if quality else None,
            "quality_se": float(np.std(quality, ddof=1) / np.sqrt(len(quality))) if len(quality) > 1 else None,
            "cost_usd_per_1k": 1000 * float(np.mean(costs)) if costs else None,
            "priced": len(costs), "mix": dict(mix.most_common()), "errors": dict(errors),
            "per_prompt_quality": per_prompt}


def references(sample: list, ds: Any, models: list[str]) -> list[dict[str, Any]]:
    """Computed from the recorded table, not served: single models and the oracle."""
    from adaptive_router.training.evaluate import cost_matrix

    keys = [f"{m}#1" for m in ds.models]
    costs = cost_matrix(list(sample), keys, ds.fleet)
    q = np.array([[r.models[m].score(ds.quality_score)[0] for m in ds.models] for r in sample])
    out = []
    for m in models:
        j = ds.models.index(m)
        out.append({"name": f"always {m}", "family": "reference (computed)", "quality": float(q[:, j].mean()),
                    "per_prompt_quality": {r.id: float(q[i, j]) for i, r in enumerate(sample)},
                    "quality_se": float(q[:, j].std(ddof=1) / np.sqrt(len(sample))),
                    "cost_usd_per_1k": 1000 * float(costs[:, j].mean()), "served": len(sample)})
    # oracle: the cheapest model among those with the best score on each prompt
    best = [min(np.flatnonzero(q[i] == q[i].max()), key=lambda j, i=i: costs[i, j]) for i in range(len(sample))]
    out.append({"name": "oracle (cheapest best model per prompt)", "family": "reference (computed)",
                "quality": float(np.mean([q[i, j] for i, j in enumerate(best)])),
                "cost_usd_per_1k": 1000 * float(np.mean([costs[i, j] for i, j in enumerate(best)])),
                "served": len(sample)})
    return out


# -- report -----------------------------------------------------------------------------------
BASELINE_ARM = "complexity_router, classifier_type: heuristic"


def paired(rows: list[dict[str, Any]], base_name: str = BASELINE_ARM) -> None:
    """Each row's mean quality difference to ``base_name`` on the same prompts, with its s.e."""
    base = next((r.get("per_prompt_quality") for r in rows if r["name"] == base_name), None)
    for r in rows:
        mine = r.get("per_prompt_quality")
        if not base or not mine or r["name"] == base_name:
            continue
        d = np.array([mine[k] - base[k] for k in mine if k in base])
        if len(d) > 1:
            r["delta_vs_heuristic"] = float(d.mean())
            r["delta_vs_heuristic_se"] = float(d.std(ddof=1) / np.sqrt(len(d)))


def fmt(x: Any, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def write_doc(result: dict[str, Any], path: Path) -> None:
    ref = result["best_single"]
    lines = [
        "# LiteLLM's own routers beside adaptive-router", "",
        f"Reproduce: `{result['command']}` ({result['seconds']:.0f} s on 2 shared cores; "
        f"LiteLLM {result['litellm_version']}).", "",
        f"Traffic: {result['n']} prompts drawn with seed {result['seed']} from llmrouter's test split "
        f"({result['n_test']} prompts; split seed 0, val 0.1, test 0.2), every prompt with all nine "
        "models' recorded scores. Each arm is a real LiteLLM proxy whose nine deployments replay the "
        "records (`replay/` provider; prompt tokens and llmrouter's per-task estimated output tokens, "
        "priced in `model_info` at llmrouter's prices). Quality = the served model's recorded score "
        "for the prompt (the replayed answer names the model); cost = the proxy's "
        "`x-litellm-response-cost` header, per 1,000 prompts.", "",
        "LiteLLM's tier map (from the train split's price/quality frontier): "
        + ", ".join(f"{t} = `{m}`" for t, m in result["tiers"].items())
        + f"; `quality_tier` {result['quality_tiers']} for `quality_router` and LiteLLM's `adaptive_router`. "
        f"The hosted classifier runs on eight candidates (left out: `{result['left_out']}`, lowest train "
        "quality) because `tier_definitions` allows at most eight tiers.", "",
        f"| router | family | served / sent | quality (± s.e.) | Δ quality vs `{BASELINE_ARM}` (paired ± s.e.) "
        f"| $ per 1k prompts | cost vs always `{ref}` | served models |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ref_cost = next(r["cost_usd_per_1k"] for r in result["rows"] if r["name"] == f"always {ref}")
    for r in result["rows"]:
        share = "" if r.get("cost_usd_per_1k") is None else f"{100 * r['cost_usd_per_1k'] / ref_cost:.0f}%"
        mix = ", ".join(f"{m} {c}" for m, c in list(r.get("mix", {}).items())[:4])
        if len(r.get("mix", {})) > 4:
            mix += f", +{len(r['mix']) - 4} more"
        sent = f"{r['served']} / {r['requests']}" if "requests" in r else "(computed)"
        se = f" ± {r['quality_se']:.3f}" if r.get("quality_se") is not None else ""
        delta = (f"{r['delta_vs_heuristic']:+.3f} ± {r['delta_vs_heuristic_se']:.3f}"
                 if r.get("delta_vs_heuristic") is not None else "")
        lines.append(f"| {r['name']} | {r['family']} | {sent} | {fmt(r['quality'])}{se} | {delta} | "
                     f"{fmt(r['cost_usd_per_1k'], 4)} | {share} | {mix} |")
    served = [r for r in result["rows"] if "requests" in r and r.get("quality") is not None]
    if served:
        top = max(served, key=lambda r: (r["quality"], -r["cost_usd_per_1k"]))
        cheap = min(served, key=lambda r: (r["cost_usd_per_1k"], -r["quality"]))
        lines += ["", f"Measured: the highest served quality is {top['quality']:.3f} ({top['name']}, "
                  f"${top['cost_usd_per_1k']:.4f} per 1k prompts); the cheapest arm is {cheap['name']} "
                  f"({cheap['quality']:.3f}, ${cheap['cost_usd_per_1k']:.4f}). Differences smaller than about "
                  "two standard errors are within the noise of this sample; the paired column compares arms "
                  "on the same prompts. LiteLLM's `adaptive_router` samples without a seed, so its row "
                  "moves from run to run."]
    failed = [r for r in result["rows"] if r.get("errors")]
    if failed:
        lines += ["", "Errors:"] + [f"- {r['name']}: {r['errors']}" for r in failed]
    lines += ["", "## Which of LiteLLM's routers run offline", "",
              "Run above (no network call per request): `complexity_router` with `classifier_type: "
              "heuristic` (weighted keyword/regex scoring) and `heuristic_v2` (the bundled UltraFeedback "
              "success-probability artifact), `quality_router` (reuses the heuristic scorer, maps the tier "
              "to a declared `quality_tier`), LiteLLM's `adaptive_router` (per-request-type Thompson "
              "sampling over Beta priors from each model's declared `quality_tier`; its feedback comes "
              "from regex signals on conversations of at least 4 messages, so on single-turn traffic it "
              "never updates and samples its cold-start priors; its Postgres persistence is skipped "
              "without a database), and `complexity_router` with `classifier_type: custom` (hosting "
              "adaptive-router's classifier plugin).", "",
              "Not run, because they call out on every request or need a missing package:", ""]
    lines += [f"- {k}: {v}." for k, v in result["not_offline"].items()]
    lines += ["", "## Reading the table", "",
              "LiteLLM's routers decide from the prompt's surface (keywords, length, request type) and an "
              "operator's tier map (here built from the train split's per-model quality and prices); they know "
              "nothing about how each model does on each prompt. "
              "adaptive-router's routers predict each candidate's quality (the bundled `default` from "
              "its static encoder and public data, `sw-ranking` trained on this data set's train split) "
              "and its policy trades that against each candidate's dollar cost. The hosted rows show "
              "the same decisions made inside LiteLLM's `complexity_router` (eight candidates).", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200, help="prompts drawn from the test split (seeded)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--work", type=Path, default=Path("runs/litellm-routers"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "litellm_routers.md")
    ap.add_argument("--thresholds", default="0.5,0.6,0.7",
                    help="the plugin's threshold knob values (the hosted classifier uses the first)")
    ap.add_argument("--only", default=None, help="run only arms whose name contains this text")
    ap.add_argument("--from-json", type=Path, default=None, help="re-render the markdown from a results JSON")
    args = ap.parse_args()
    if args.from_json is not None:
        write_doc(json.loads(args.from_json.read_text(encoding="utf-8")), args.out)
        return
    start = time.perf_counter()
    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.train import train_router

    from adaptive_router.routers.base import Router

    ds = load_dataset("llmrouter", data_dir=args.data_dir)
    train, val, test = ds.splits(**SPLIT)
    rng = np.random.default_rng(args.seed)
    sample = [test[i] for i in sorted(rng.choice(len(test), size=min(args.n, len(test)), replace=False))]
    args.work.mkdir(parents=True, exist_ok=True)
    stats = train_stats(ds, train)
    tier_models = frontier(stats)[:4]
    left_out = min(ds.models, key=lambda m: stats[m]["quality"])
    models8 = [m for m in ds.models if m != left_out]
    records_path, deployments = write_setup(ds, sample, args.work, list(ds.models))
    fleet9 = write_fleet(ds, list(ds.models), args.work / "fleet9.yaml")
    fleet8 = write_fleet(ds, models8, args.work / "fleet8.yaml")
    routers = {"bundled default": ("default", "default")}
    for label, keys in (("9", [f"{m}#1" for m in ds.models]), ("8", [f"{m}#1" for m in models8])):
        target = args.work / f"sw-ranking{label}"
        if not (target / "config.json").exists():
            train_router("sw-ranking", list(train), list(val), keys, ds.quality_score, out_dir=target, seed=0)
        Router.from_pretrained(target)  # a checkpoint that loads
    routers["sw-ranking (train split)"] = (str(args.work / "sw-ranking9"), str(args.work / "sw-ranking8"))
    thresholds = [float(t) for t in args.thresholds.split(",")]
    run = arms(ds, args.work, deployments, tier_models, fleet9, fleet8, routers, thresholds)
    if args.only:
        run = [a for a in run if args.only in a["name"]]
    rows = []
    for arm in run:
        served = run_arm(arm, sample, records_path, args.work, args.concurrency)
        rows.append(summarise(arm["name"], arm["family"], served, sample, ds))
        print(json.dumps({k: rows[-1][k] for k in ("name", "served", "quality", "cost_usd_per_1k")}),
              file=sys.stderr, flush=True)
    best = max(ds.models, key=lambda m: stats[m]["quality"])
    ref_models = list(dict.fromkeys([*tier_models, best]))
    rows += references(sample, ds, ref_models)
    paired(rows)
    command = "ADAPTIVE_ROUTER_DATA=/work/shared/data python benchmarks/litellm_routers_benchmark.py " \
        + " ".join(sys.argv[1:])
    result = {"command": command.strip(), "n": len(sample), "seed": args.seed, "n_test": len(test),
              "litellm_version": _litellm_version(),
              "tiers": dict(zip(TIERS, (tier_models + [tier_models[-1]] * 4)[:4], strict=True)),
              "quality_tiers": {m: min(i + 1, 3) for i, m in enumerate(tier_models)},
              "left_out": left_out, "best_single": best, "train_stats": stats,
              "not_offline": NOT_OFFLINE, "rows": rows, "seconds": time.perf_counter() - start}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    write_doc(result, args.out)
    print(args.out.read_text())


def _litellm_version() -> str:
    from importlib.metadata import version

    return version("litellm")


if __name__ == "__main__":
    main()
