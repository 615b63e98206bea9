"""`make demo`: the whole mission end to end, offline, in one command.

1. **Data**: CHAMP (270 competition-math problems, four models, nine samples each) as Records,
   split into train / validation / held-out test.
2. **Proxy reward model**: trained with BEST-Route's pairwise (Bradley-Terry) loss; every recorded
   sample is then scored by it, so best-of-n keeps its argmax.
3. **(model, n) router**: BEST-Route's multi-head router over candidates such as
   ``palm-2-medium x3`` or ``gpt-4-turbo x1``; the evaluation table (quality, dollars per 1,000
   prompts, savings) against every single model on the test split, and the quality-cost plot.
4. **A real LiteLLM proxy** (a ``litellm`` process on 127.0.0.1, config.yaml generated into the
   output folder, the adaptive-router plugin on) over *replay* deployments of CHAMP's four models
   (their recorded answers and token counts, billed at their prices) and a *local* SmolLM2
   deployment; held-out prompts go through it with the ``openai`` client, and each routing
   decision, its n and its dollar cost are printed. The plugin explores (epsilon-greedy) and logs
   every request with its propensity. Then the same proxy with ``cascade:`` on: three cheap
   samples first, the top model only when the trained verifier doubts their answer; every step
   is listed and paid for.
5. **Feedback and retraining**: each served answer is graded against CHAMP's reference answer
   (user feedback, keyed by the request id), and ``adaptive-router retrain`` fine-tunes the router
   on the traffic log, compares old and new off-policy on held-out traffic, and promotes the new
   one only if it is better.

Everything lands in ``runs/demo/`` (git-ignored). Options: ``--out DIR``, ``--rounds N`` (how
many times each held-out prompt is sent), ``--epsilon E``, ``--max-prompts N`` (a quicker run on
fewer problems), ``--concurrency N``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

for _var, _val in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                   ("LITELLM_LOCAL_MODEL_COST_MAP", "True"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_var, _val)

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from adaptive_router.domain import Fleet  # noqa: E402
from adaptive_router.persistence import json_default_or_str  # noqa: E402
from adaptive_router.records import Record, write_records  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "runs" / "demo"
SAMPLE_COUNTS = (1, 3, 5)  # best-of-n sample counts offered for the two cheapest models
SAMPLES_PER_MODEL = 5  # recorded samples kept per (problem, model): CHAMP's first five settings
COST_WEIGHT = 0.5  # utility = quality - COST_WEIGHT x cost / (dearest candidate's mean cost)


def banner(step: str) -> None:
    print(f"\n=== {step} " + "=" * max(3, 88 - len(step)), flush=True)


class Timer:
    """Wall-clock seconds of each step, printed at the end."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.steps: list[tuple[str, float]] = []
        self._t = self.start

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.steps.append((name, now - self._t))
        self._t = now

    def total(self) -> float:
        return time.perf_counter() - self.start


# -- 1-3: data, reward model, router, evaluation ------------------------------------------------------


@dataclass
class Trained:
    """What the training half of the demo produced."""

    dataset: Any
    fleet: Fleet
    train: list[Record]
    val: list[Record]
    test: list[Record]
    reward_dir: Path
    router_dir: Path
    results: dict[str, Any]
    threshold: float


def keep_samples(record: Record, k: int) -> Record:
    """The record with each model's first ``k`` samples (responses, scores, token counts)."""
    for ms in record.models.values():
        ms.responses = ms.responses[:k]
        ms.token_num_responses = ms.token_num_responses[:k]
        ms.scores = {name: vals[:k] for name, vals in ms.scores.items()}
    return record


def load_champ(max_prompts: int | None) -> tuple[Any, list[Record], list[Record], list[Record]]:
    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.loaders.champ import SAMPLE_SETTINGS

    ds = load_dataset("champ")
    if max_prompts:
        ds.records = ds.records[:max_prompts]
    ds.records = [keep_samples(r, SAMPLES_PER_MODEL) for r in ds.records]
    ds.notes.append(f"this demo keeps {SAMPLES_PER_MODEL} samples per model: the settings "
                    + ", ".join(SAMPLE_SETTINGS[:SAMPLES_PER_MODEL]))
    train, val, test = ds.splits(seed=0)
    return ds, train, val, test


def train_reward(train: list[Record], test: list[Record], out: Path, quality_score: str,
                 quick: bool) -> Any:
    from adaptive_router.training.reward_training import train_reward_model

    rm = train_reward_model(train, quality_score, out_dir=out, eval_records=test,
                            epochs=120 if quick else 300, progress=True)
    m = rm.metrics
    print(f"proxy reward model: {m['train_pairs']} training pairs; held-out pairwise accuracy "
          f"{m['heldout_pairwise_accuracy']:.3f} on {m['heldout_pairs']} pairs of test prompts "
          f"(BEST-Route's pairs only: {m['heldout_pairwise_accuracy_best_route_pairs']:.3f}; "
          f"'longer answer wins' baseline {m['heldout_length_baseline_accuracy']:.3f})")
    return rm


def best_of_n_models(fleet: Fleet) -> list[str]:
    """BEST-Route's premise: the cheap models draw several samples, the dear ones one."""
    prices = fleet.prices()
    return sorted(fleet.model_names, key=lambda m: prices[m].output_per_token)[:2]


def demo_fleet(ds: Any, train: Sequence[Record], reward_dir: Path) -> Fleet:
    """CHAMP's four models, the two cheapest offered with n in SAMPLE_COUNTS, each priced
    explicitly and with its mean recorded output length as the expected one."""
    base = ds.fleet
    ref = base.reference_model()
    prices = base.prices()
    multi = best_of_n_models(base)
    models = []
    for m in base.models:
        outs = [t for r in train for t in r.models[m.name].token_num_responses]
        models.append({
            "name": m.name,
            "litellm_model": f"{m.name}-replay",
            "price": {"input_per_token": prices[m.name].input_per_token,
                      "output_per_token": prices[m.name].output_per_token},
            "n": list(SAMPLE_COUNTS) if m.name in multi and m.name != ref else [1],
            "expected_output_tokens": float(np.mean(outs)) if outs else 256.0,
        })
    return Fleet.from_dict({"models": models, "reference": ref, "selector": "reward",
                            "reward_model": str(reward_dir)})


def train_and_evaluate(out: Path, max_prompts: int | None = None, quick: bool = False) -> Trained:
    from adaptive_router.training.evaluate import (
        data_summary,
        evaluate_router,
        evaluate_single_models,
        format_table,
        oracle_for,
    )
    from adaptive_router.training.plots import plot_quality_cost
    from adaptive_router.training.reward_training import score_records
    from adaptive_router.training.train import train_router

    from adaptive_router.routers import load_router

    banner("1. Data: CHAMP as Records")
    ds, train, val, test = load_champ(max_prompts)
    print(f"{len(ds.records)} problems x {len(ds.models)} models ({', '.join(ds.models)}); "
          f"{len(train)} train / {len(val)} validation / {len(test)} held-out test prompts")
    for note in ds.notes:
        print(f"  note: {note}")

    banner("2. Proxy reward model (Bradley-Terry on BEST-Route's pairs)")
    reward_dir = out / "reward_model"
    rm = train_reward(train, test, reward_dir, ds.quality_score, quick)
    # best-of-n needs reward scores of the samples of the models that draw several
    multi = best_of_n_models(ds.fleet)
    print(f"scoring the recorded samples of {', '.join(multi)} with the reward model")
    restricted = [r.model_copy(update={"models": {m: r.models[m] for m in multi}}) for r in ds.records]
    score_records(restricted, rm, name="proxy_rm", progress=True)  # fills the shared ModelSamples

    banner("3. (model, n) router: BEST-Route")
    fleet = demo_fleet(ds, train, reward_dir)
    keys = fleet.candidate_keys
    print(f"candidates ({len(keys)}): {', '.join(keys)}")
    router_dir = out / "router"
    router = train_router("best-route", train, val, keys, ds.quality_score, out_dir=router_dir,
                          selector_score="proxy_rm", progress=True,
                          **({"epochs": 150} if quick else {}))
    threshold, val_point = choose_threshold(router, val if len(val) >= 20 else train + val, fleet,
                                            ds.quality_score)
    print(f"threshold {threshold:.3f}: the best utility (quality - {COST_WEIGHT} x cost / dearest "
          f"candidate's cost) on the validation prompts: quality {val_point['quality']:.3f}, "
          f"${1000 * val_point['cost_usd']:.3f} per 1k prompts")
    results: dict[str, Any] = {
        "data": "champ", "split": "test", "n_prompts": len(test), "quality_score": ds.quality_score,
        "selector_score": "proxy_rm", "candidates": keys, "notes": ds.notes,
        "summary": data_summary(test, fleet, ds.quality_score, keys),
        "single_models": evaluate_single_models(test, fleet, ds.quality_score, keys),
        "routers": {},
    }
    contenders = {"best-route (model, n)": router,
                  "cheapest": load_router("cheapest", fleet=fleet),
                  "random": load_router("random", fleet=fleet),
                  "oracle": oracle_for(test, keys, ds.quality_score, "proxy_rm")}
    for name, r in contenders.items():
        results["routers"][name] = evaluate_router(r, test, fleet, ds.quality_score,
                                                   selector_score="proxy_rm", name=name,
                                                   default_knob=threshold)
    results["routers"].update(evaluate_cascades(out, ds, train, val, test, fleet))
    (out / "results.json").write_text(json.dumps(results, indent=2, default=json_default_or_str))
    plot_quality_cost(results, out / "quality_cost.png",
                      title=f"CHAMP test split ({len(test)} prompts): quality vs cost")
    print(f"\nEvaluation on the {len(test)} held-out test prompts (best-of-n keeps the proxy "
          "reward model's argmax; the router's row is at its best operating point's metrics, "
          f"the quality and cost columns at threshold {threshold:.3f}):\n")
    print(format_table(results))
    br = results["routers"]["best-route (model, n)"]
    best = results["summary"]["best_single"]
    print(f"\nbest single model: {best}; BEST-Route saves "
          + (f"{br['saving_at_100']:.1f}%" if br.get("saving_at_100") is not None else "nothing")
          + " of its cost at its quality, "
          + (f"{br['saving_at_99']:.1f}%" if br.get("saving_at_99") is not None else "nothing")
          + " at 99% of it.")
    return Trained(ds, fleet, train, val, test, reward_dir, router_dir, results, threshold)


#: The demo's cascade: majority of three cheap samples, the top model when they disagree.
CASCADE_STEPS = ("gpt-3.5-turbo#3", "gpt-4-turbo#1")


def evaluate_cascades(out: Path, ds: Any, train: list[Record], val: list[Record], test: list[Record],
                      fleet: Fleet) -> dict[str, Any]:
    """The cascade beside the (model, n) router: replayed on the test split's recorded answers
    with the agreement verifier and with a verifier trained on the train split (saved to
    ``verifier/``), every step paid for."""
    from adaptive_router.training.cascade_eval import evaluate_cascade
    from adaptive_router.training.verifier_training import train_verifier

    from adaptive_router.verifiers import AgreementVerifier

    print(f"\ncascade {' > '.join(CASCADE_STEPS)}: training its verifier on the train split")
    verifier = train_verifier(train, val, ds.fleet, ds.quality_score, n=(1, 3), out_dir=out / "verifier",
                              data="champ (demo)")
    print(f"verifier AUC: validation {verifier.report['val']['auc']:.3f}"
          + (f", test {verifier.report['test']['auc']:.3f}" if "test" in verifier.report else ""))
    plans = [list(CASCADE_STEPS)] * len(test)
    rows = {}
    for name, v in (("agreement", AgreementVerifier()), ("trained verifier", verifier)):
        label = f"cascade {' > '.join(CASCADE_STEPS)} ({name})"
        rows[label] = evaluate_cascade(label, test, fleet, ds.quality_score, v, plans, progress=True)
    return rows


def choose_threshold(router: Any, records: Sequence[Record], fleet: Fleet,
                     quality_score: str) -> tuple[float, dict[str, float]]:
    """The threshold with the best utility on ``records`` (the retraining report's utility:
    quality - COST_WEIGHT x cost / mean cost of each prompt's dearest candidate)."""
    from adaptive_router.training.evaluate import cost_matrix, quality_matrix

    from adaptive_router.policy import ThresholdPolicy

    keys = router.candidate_keys
    q = quality_matrix(records, keys, quality_score, "proxy_rm")
    c = cost_matrix(records, keys, fleet)
    preds = router.predict_batch([r.prompt for r in records])
    scale = float(np.mean(c.max(axis=1)))
    best: tuple[float, float, dict[str, float]] | None = None
    for t in np.unique(np.round(np.quantile(preds, np.linspace(0, 1, 101)), 4)):
        pick = ThresholdPolicy(float(np.clip(t, 0, 1))).choose(preds, c)
        rows = np.arange(len(records))
        point = {"quality": float(q[rows, pick].mean()), "cost_usd": float(c[rows, pick].mean())}
        utility = point["quality"] - COST_WEIGHT * point["cost_usd"] / scale
        if best is None or utility > best[0]:
            best = (utility, float(np.clip(t, 0, 1)), point)
    assert best is not None
    return best[1], best[2]


# -- 4: the proxy -------------------------------------------------------------------------------------


def write_proxy_config(out: Path, fleet: Fleet, records_path: Path, router_dir: Path,
                       reward_dir: Path | None, traffic_log: Path, epsilon: float,
                       threshold: float = 0.5, seed: int = 0, cascade: dict[str, Any] | None = None,
                       name: str = "config.yaml") -> Path:
    """config.yaml (and fleet.yaml) for a LiteLLM proxy with the plugin on, in the style of
    examples/litellm/config.yaml: replay deployments of the fleet's models, a local SmolLM2.

    Built with the package's proxy-config helpers (the ones the tests and benchmarks use), so the
    demo serves the same config shape they check."""
    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        REPLAY_PROVIDER,
        replay_deployment,
    )
    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        write_proxy_config as write_config,
    )

    fleet_path = out / "fleet.yaml"
    fleet_path.write_text(yaml.safe_dump(fleet.to_dict(), sort_keys=False))
    prices = fleet.prices()
    deployments = [replay_deployment(m.call_name, m.name, prices[m.name].input_per_token,
                                     prices[m.name].output_per_token) for m in fleet.models]
    deployments.append({"model_name": "smollm2",  # ordinary names pass through unrouted
                        "litellm_params": {"model": "local/smollm2-135m-instruct", "max_tokens": 48},
                        "model_info": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}})
    plugin = {"fleet": str(fleet_path), "router": str(router_dir),
              **({"reward_model": str(reward_dir)} if reward_dir else {}),
              "selector": fleet.selector, "policy": {"threshold": threshold},
              "replay_records": str(records_path), "traffic_log": str(traffic_log),
              "explore_epsilon": epsilon, "explore_seed": seed,
              **({"cascade": cascade} if cascade else {})}
    return write_config(out / name, deployments, plugin=plugin,
                        litellm_settings={"custom_provider_map": [REPLAY_PROVIDER, LOCAL_PROVIDER]})


#: ``custom_provider_map`` entry of the local/ provider (SmolLM2 in the proxy process).
LOCAL_PROVIDER = {"provider": "local",
                  "custom_handler": "adaptive_router.integrations.litellm_plugin.providers.local_provider"}


@dataclass
class Served:
    prompt_index: int
    body: dict[str, Any]
    headers: dict[str, str]
    answer: str


def send_prompts(base_url: str, key: str, prompts: Sequence[str], concurrency: int = 4,
                 on_result: Callable[[int, Served], None] | None = None) -> list[Served | Exception]:
    """Send each prompt to the proxy's ``adaptive-router`` alias with the openai client."""
    from openai import OpenAI
    from tqdm.auto import tqdm

    client = OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=1, timeout=300)

    def one(i: int) -> Served:
        raw = client.chat.completions.with_raw_response.create(
            model="adaptive-router", messages=[{"role": "user", "content": prompts[i]}])
        completion = raw.parse()
        body = (completion.model_extra or {}).get("adaptive_router") or {}
        return Served(i, body, {k: v for k, v in raw.headers.items() if k.startswith("x-adaptive")},
                      completion.choices[0].message.content or "")

    results: list[Served | Exception] = [RuntimeError("not sent")] * len(prompts)
    with ThreadPoolExecutor(max_workers=concurrency) as pool, \
            tqdm(total=len(prompts), desc="requests through the proxy", unit="req") as bar:
        futures = {pool.submit(one, i): i for i in range(len(prompts))}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
                if on_result is not None:
                    on_result(i, results[i])  # type: ignore[arg-type]
            except Exception as exc:  # reported, and counted below
                results[i] = exc
                bar.write(f"  request {i} failed: {type(exc).__name__}: {exc}")
            bar.update(1)
    return results


def describe(served: Served, prompt: str, bar_write: Callable[[str], None] = print) -> None:
    d = served.body.get("decision", {})
    flag = " explored" if d.get("explored") else ""
    scores = served.body.get("scores") or []
    what = "reward" if served.body.get("selector") == "reward" else "votes"
    best = f" {what}={max(scores):+.2f}" if len(scores) > 1 else ""
    bar_write(f"  {served.body.get('model', '?'):14s} n={served.body.get('n', '?')}  "
              f"${served.body.get('cost_usd', 0.0):.6f}  (header ${float(served.headers.get('x-adaptive-router-cost-usd', 'nan')):.6f})"
              f"{best}{flag}  | {prompt.splitlines()[-1][:60]}")


def serve_traffic(out: Path, fleet: Fleet, router_dir: Path, reward_dir: Path | None,
                  prompts_records: Sequence[Record], rounds: int, epsilon: float, concurrency: int,
                  traffic_log: Path, threshold: float, verbose: bool = True
                  ) -> tuple[list[Served | Exception], list[Record]]:
    """Start the proxy, send ``rounds`` x the prompts, stop it. Returns the results in order."""
    from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy
    from tqdm.auto import tqdm

    records_path = out / "replay_records.jsonl"
    write_records(prompts_records, records_path)
    if traffic_log.exists():
        traffic_log.unlink()
    config = write_proxy_config(out, fleet, records_path, router_dir, reward_dir, traffic_log, epsilon,
                                threshold=threshold)
    print(f"proxy config: {config}")
    sent = [r for _ in range(rounds) for r in prompts_records]
    with LiteLLMProxy(config, log_path=out / "proxy.log", cwd=out, startup_timeout_s=180) as proxy:
        print(f"LiteLLM proxy up at {proxy.base_url} (pid {proxy.process.pid}; master key "
              f"{proxy.master_key[:7]}..., generated for this run); sending {len(sent)} requests "
              f"({len(prompts_records)} prompts x {rounds}), {concurrency} at a time; policy "
              f"threshold({threshold:.3f}) with epsilon {epsilon} exploration")
        printer = (lambda i, s: describe(s, sent[i].prompt, tqdm.write)) if verbose else None
        results = send_prompts(proxy.base_url, proxy.master_key, [r.prompt for r in sent],
                               concurrency, printer)
        smollm2_demo(proxy.base_url, proxy.master_key)
    return results, sent


def serve_cascade(out: Path, fleet: Fleet, router_dir: Path, reward_dir: Path | None,
                  prompts_records: Sequence[Record], concurrency: int) -> list[Served | Exception]:
    """The same proxy with ``cascade:`` on: each request runs the demo's cascade (three cheap
    samples; the top model only when the trained verifier doubts their answer), and the body and
    headers list every step taken and its cost."""
    from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy
    from tqdm.auto import tqdm

    records_path = out / "replay_records.jsonl"
    write_records(prompts_records, records_path)
    cascade = {"verifier": str(out / "verifier"), "accept": 0.5, "steps": list(CASCADE_STEPS)}
    config = write_proxy_config(out, fleet, records_path, router_dir, reward_dir, out / "traffic_cascade.jsonl",
                                0.0, cascade=cascade, name="config_cascade.yaml")
    print(f"proxy config with a cascade: {config} (cascade: {cascade})")

    def show(i: int, served: Served) -> None:
        steps = served.body.get("cascade", {}).get("steps", [])
        def score(v: Any) -> str:
            return "n/a" if v is None else f"{float(v):.2f}"

        trail = " -> ".join(f"{st['candidate']} (verifier {score(st.get('verifier_score'))}, "
                            f"${st['cost_usd']:.5f}{', accepted' if st.get('accepted') else ''})" for st in steps)
        tqdm.write(f"  [{i}] {trail}; total ${float(served.body.get('cost_usd', 0.0)):.5f}; headers "
                   f"steps={served.headers.get('x-adaptive-router-steps')} "
                   f"accepted={served.headers.get('x-adaptive-router-accepted-step')}")

    with LiteLLMProxy(config, log_path=out / "proxy_cascade.log", cwd=out, startup_timeout_s=180) as proxy:
        print(f"LiteLLM proxy up at {proxy.base_url}; sending {len(prompts_records)} held-out prompts")
        results = send_prompts(proxy.base_url, proxy.master_key, [r.prompt for r in prompts_records],
                               concurrency, show)
    ok = [r for r in results if isinstance(r, Served)]
    escalated = sum(1 for r in ok if len(r.body.get("cascade", {}).get("steps", [])) > 1)
    total = sum(float(r.body.get("cost_usd", 0.0)) for r in ok)
    print(f"{len(ok)} served through the cascade, {escalated} escalated to {CASCADE_STEPS[-1]}; "
          f"${1000 * total / max(1, len(ok)):.3f} per 1,000 requests, every step paid for")
    return results


def smollm2_demo(base_url: str, key: str) -> None:
    """Ordinary model names pass through the plugin untouched: a real local SmolLM2 answer."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=1, timeout=300)
    t0 = time.perf_counter()
    r = client.chat.completions.create(model="smollm2",
                                       messages=[{"role": "user", "content": "What is 7 times 6?"}])
    print(f"\nlocal SmolLM2 deployment (`model: smollm2`, passes through unrouted) answered in "
          f"{time.perf_counter() - t0:.1f} s with {r.usage.completion_tokens} real tokens: "
          f"{(r.choices[0].message.content or '').strip()[:120]!r}")


def summarise_traffic(results: Sequence[Served | Exception], fleet: Fleet) -> None:
    ok = [r for r in results if isinstance(r, Served)]
    failed = len(results) - len(ok)
    total = sum(float(r.body.get("cost_usd", 0.0)) for r in ok)
    by: dict[str, int] = {}
    for r in ok:
        key = f"{r.body.get('model')} x{r.body.get('n')}"
        by[key] = by.get(key, 0) + 1
    explored = sum(1 for r in ok if r.body.get("decision", {}).get("explored"))
    print(f"\n{len(ok)} served, {failed} failed; total ${total:.4f} "
          f"(${1000 * total / max(1, len(ok)):.3f} per 1,000 requests); {explored} explored")
    print("served: " + ", ".join(f"{k} {v}" for k, v in sorted(by.items(), key=lambda kv: -kv[1])))


# -- 5: feedback and retraining -------------------------------------------------------------------------


def full_information_check(res: Any, trained: Trained, heldout_prompts: set[str]) -> None:
    """Old vs new on the records of the retrain's held-out prompts: every candidate's outcome is
    known there, so this checks the off-policy estimate against the truth."""
    from adaptive_router.training.evaluate import evaluate_router

    from adaptive_router.routers.base import Router

    recs = [r for r in trained.dataset.records if r.prompt in heldout_prompts]
    if not recs:
        return
    old = Router.from_pretrained(trained.router_dir)
    new = Router.from_pretrained(res.candidate_dir)
    rows = {}
    for name, r in (("before (base)", old), ("after (retrained)", new)):
        e = evaluate_router(r, recs, trained.fleet, trained.dataset.quality_score,
                            selector_score="proxy_rm", name=name, default_knob=trained.threshold)
        rows[name] = e
    print(f"\nfull-information check on the {len(recs)} held-out prompts' records (every "
          f"candidate's answers known), threshold {trained.threshold:.3f}:")
    for name, e in rows.items():
        print(f"  {name:18s} quality {e['quality']:.3f}  ${e['cost_per_1k_usd']:.3f} per 1k prompts")


def print_before_after(res: Any) -> None:
    cmp = res.summary["comparison"]
    q, c = cmp["quality"]["dr"], cmp["cost_usd"]["dr"]
    print("\noff-policy (doubly robust) estimates on held-out logged traffic, ± one standard error:")
    print(f"  {'':18s} {'quality':>18s} {'$ per 1k requests':>22s}")
    for label, key in (("before (base)", "old"), ("after (retrained)", "new")):
        print(f"  {label:18s} {q[key]['value']:>9.3f} ± {q[key]['std_error']:.3f} "
              f"{1000 * c[key]['value']:>13.3f} ± {1000 * c[key]['std_error']:.3f}")
    sn = cmp["quality"]["snips"]
    ess, n = q["new"]["effective_sample_size"], q["new"]["n"]
    print(f"  (SNIPS: quality {sn['old']['value']:.3f} -> {sn['new']['value']:.3f}; the log covers the "
          f"retrained router's choices with an effective sample size of {ess:.0f} of {n} requests"
          + ("; with so few, estimates can leave [0, 1] and their errors are large)" if ess < 0.1 * n
             else ")"))
    u = cmp["utility"][res.summary["estimator"]]
    print(f"  utility difference (new - old): {u['difference']:+.4f} ± {u['std_error']:.4f} "
          f"(z = {u['z']:+.2f}); served traffic averaged quality {cmp['logged_quality']:.3f}")
    print(f"  verdict: {'PROMOTED the retrained router' if res.promoted else 'kept the base router'} "
          f"({res.summary['decision_rule']})")


#: Share of the served prompts whose traffic ``retrain`` holds out to compare old and new routers.
RETRAIN_HOLDOUT = 0.3


def rounds_for_retraining(prompts: Sequence[str], rounds: int) -> int:
    """``rounds``, raised when fewer would leave ``retrain`` too few requests on either side of its
    train / held-out split (it needs MIN_REQUESTS on each; the split is by prompt), so that a small
    ``--max-prompts`` run still ends with a retrained router instead of an error."""
    from adaptive_router.training.retrain.bandit import split_by_prompt
    from adaptive_router.training.retrain.job import MIN_REQUESTS

    unique = sorted(set(prompts))
    train_idx, held_idx = split_by_prompt(unique, RETRAIN_HOLDOUT)
    smaller = min(len(train_idx), len(held_idx))
    if smaller == 0:
        raise SystemExit(f"error: the {len(unique)} served prompts all fall on one side of the "
                         "retraining split; use a larger --max-prompts (at least 60)")
    needed = -(-MIN_REQUESTS // smaller)
    if rounds < needed:
        print(f"note: --rounds {rounds} -> {needed}: retraining needs at least {MIN_REQUESTS} logged "
              f"requests on each side of its split, and only {smaller} of the {len(unique)} served "
              "prompts fall on the smaller side")
        return needed
    return rounds


# -- main ------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default runs/demo)")
    ap.add_argument("--rounds", type=int, default=3, help="times each held-out prompt is sent")
    ap.add_argument("--epsilon", type=float, default=0.2, help="the plugin's exploration rate")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--max-prompts", type=int, default=None, help="use only the first N problems")
    ap.add_argument("--quick", action="store_true", help="fewer training epochs (for tests)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    trained = train_and_evaluate(out, args.max_prompts, args.quick)
    timer.lap("data, reward model, router, evaluation")

    banner("4. A real LiteLLM proxy with the plugin: replay + local SmolLM2 deployments")
    heldout = trained.val + trained.test  # prompts the router and reward model were not fit on
    rounds = rounds_for_retraining([r.prompt for r in heldout], args.rounds)
    traffic_log = out / "traffic.jsonl"
    results, _ = serve_traffic(out, trained.fleet, trained.router_dir, trained.reward_dir, heldout,
                               rounds, args.epsilon, args.concurrency, traffic_log,
                               trained.threshold)
    summarise_traffic(results, trained.fleet)
    timer.lap("proxy traffic")

    banner("4b. The same proxy running a cascade: cheap samples first, the top model on doubt")
    serve_cascade(out, trained.fleet, trained.router_dir, trained.reward_dir, trained.test[:24],
                  args.concurrency)
    timer.lap("cascade through the proxy")

    banner("5. Feedback and retraining on the traffic log")
    from adaptive_router.training.retrain.reference_feedback import grade_against_references

    refs = {r.prompt: str(r.meta["answer"]) for r in trained.dataset.records}
    feedback, acc = grade_against_references(traffic_log, refs, out / "feedback.jsonl")
    print(f"graded every served answer against CHAMP's reference answer: {acc:.1%} correct "
          f"-> {feedback.name} (request_id, correct)")
    cmd = (f"adaptive-router retrain --logs {traffic_log} --base {trained.router_dir} "
           f"--out {out / 'retrain'} --feedback {feedback}")
    print(f"$ {cmd}")
    from adaptive_router.training.retrain.bandit import split_by_prompt
    from adaptive_router.training.retrain.job import retrain

    from adaptive_router.errors import DataError

    try:
        res = retrain([traffic_log], trained.router_dir, out / "retrain", feedback=feedback,
                      cost_weight=COST_WEIGHT, holdout=RETRAIN_HOLDOUT)
    except DataError as exc:  # e.g. too many failed requests: say what to do, keep the outputs
        print(f"retraining skipped: {exc}\nSend more traffic: a larger --rounds or --max-prompts.")
    else:
        print_before_after(res)
        prompts = sorted({r.prompt for r in heldout})
        _, held_idx = split_by_prompt(prompts, RETRAIN_HOLDOUT)
        full_information_check(res, trained, {prompts[i] for i in held_idx})
    timer.lap("feedback and retraining")

    banner("Done")
    for name, secs in timer.steps:
        print(f"  {name:40s} {secs:7.1f} s")
    print(f"  {'total':40s} {timer.total():7.1f} s")
    print(f"\nOutputs in {out}/:")
    for rel, what in (("results.json", "evaluation table (JSON)"),
                      ("quality_cost.png", "quality-cost plot of the routers and single models"),
                      ("reward_model/", "the proxy reward model"),
                      ("router/", "the BEST-Route (model, n) router"),
                      ("verifier/", "the cascade's trained verifier (+ training_report.md)"),
                      ("traffic_cascade.jsonl", "the cascade requests' log, every step"),
                      ("config.yaml", "the LiteLLM proxy config (with fleet.yaml)"),
                      ("traffic.jsonl", "the traffic log, one line per routed request"),
                      ("feedback.jsonl", "graded feedback per request id"),
                      ("retrain/report.md", "the retraining report (+ quality_cost.png)"),
                      ("retrain/router/", "the router to deploy after retraining"),
                      ("proxy.log", "the proxy's own log")):
        print(f"  {rel:22s} {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
