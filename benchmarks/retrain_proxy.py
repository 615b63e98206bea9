"""Serving one round of the retrain benchmark through a real LiteLLM proxy on replay deployments.

Used by ``benchmarks/retrain_benchmark.py --proxy``: every llmrouter model is a ``replay/``
deployment (priced with ``default_llm.json`` in its ``model_info``) answering from Records that
carry the data set's prompt tokens and per-task ESTIMATED output tokens; the plugin (the router
being served, ``explore_epsilon``, ``explore_strategy``) is enabled from the proxy's config.yaml
and writes the traffic log; each served answer is graded with its llmrouter score into the
feedback file, which also carries the task tag (the proxy's traffic log keeps no request
metadata, so the grader supplies it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml
from tqdm.auto import tqdm


def write_replay_setup(ds: Any, records: Sequence[Any], work: Path) -> tuple[Path, Path, list[dict]]:
    """The replay Records, the plugin's fleet file and the priced deployments."""
    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        placeholder_replay_records,
        replay_deployment,
    )

    from adaptive_router.records import write_records

    rec_path = work / "replay.jsonl"
    write_records(placeholder_replay_records(records), rec_path)
    fleet = work / "proxy_fleet.yaml"
    fleet.write_text(yaml.safe_dump({"reference": ds.reference, "selector": "first", "models": [
        {"name": m, "litellm_model": f"{m}-replay", "n": [1]} for m in ds.models]}), encoding="utf-8")
    prices = ds.fleet.prices()
    deployments = [replay_deployment(f"{m}-replay", m, prices[m].input_per_token, prices[m].output_per_token)
                   for m in ds.models]
    return rec_path, fleet, deployments


async def _send_all(base_url: str, headers: dict[str, str], prompts: Sequence[str], concurrency: int,
                    desc: str) -> int:
    sem = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(prompts), desc=desc, unit="request")
    failed = 0

    async with httpx.AsyncClient(timeout=120) as client:
        async def one(prompt: str) -> None:
            nonlocal failed
            async with sem:
                resp = await client.post(f"{base_url}/v1/chat/completions", headers=headers, json={
                    "model": "adaptive-router", "messages": [{"role": "user", "content": prompt}]})
                failed += resp.status_code != 200
                bar.update()

        await asyncio.gather(*(one(p) for p in prompts))
    bar.close()
    return failed


def serve_round_proxy(router_spec: str, records: Sequence[Any], ds: Any, strategy: tuple[str, float | None],
                      epsilon: float, seed: int, work: Path, name: str, log: Path, feedback: Path,
                      setup: tuple[Path, Path, list[dict]], concurrency: int = 8) -> dict[str, Any]:
    """Serve ``records`` through a fresh proxy loading ``router_spec``; grade into ``feedback``."""
    from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy, write_proxy_config
    from adaptive_router.training.evaluate import cost_matrix

    from adaptive_router.traffic import read_traffic_log

    rec_path, fleet, deployments = setup
    kind, power = strategy
    if power not in (None, 1.0):
        raise ValueError("the plugin's cost-aware exploration uses power 1; serve other powers in process")
    config = write_proxy_config(work / f"{name}.yaml", deployments, plugin={
        "fleet": str(fleet), "router": router_spec, "selector": "first", "traffic_log": str(log),
        "explore_epsilon": epsilon, "explore_seed": seed, "explore_strategy": kind,
        "traffic_log_max_bytes": 0, "count_tokens": True})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(rec_path)},
                      log_path=work / f"{name}.log") as proxy:
        failed = asyncio.run(_send_all(proxy.base_url, proxy.headers, [r.prompt for r in records],
                                       concurrency, f"{name}: serving through the proxy"))
    by_prompt = {r.prompt: r for r in records}
    keys = ds.fleet.candidate_keys
    best = keys.index(f"{ds.reference}#1")
    lines = list(read_traffic_log(log))
    spend = explored_spend = 0.0
    explored = 0
    with feedback.open("a", encoding="utf-8") as fb:
        for line in lines:
            rec = by_prompt[line.prompt]
            fb.write(json.dumps({"request_id": line.request_id, "task": rec.task,
                                 "score": float(rec.models[line.model].score(ds.quality_score)[0])}) + "\n")
            spend += line.cost_usd
            if line.explored:
                explored += 1
                explored_spend += line.cost_usd
    costs = cost_matrix(list(records), keys, ds.fleet)
    return {"requests": len(lines), "failed": failed, "spend_usd": spend, "explored": explored,
            "explored_spend_usd": explored_spend, "best_single_spend_usd": float(costs[:, best].sum()),
            "served_quality": float("nan")}
