"""Slow: two proxy replicas (separate processes) append to ONE traffic log under load."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import openai
import pytest
from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy

from adaptive_router.traffic import read_traffic_log

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "litellm" / "config.yaml"
PROMPTS = [json.loads(line)["prompt"] for line in (ROOT / "examples/litellm/records.jsonl").open()]

pytestmark = pytest.mark.slow


async def _load(proxies: list[LiteLLMProxy], total: int, concurrency: int) -> list:
    clients = [openai.AsyncOpenAI(base_url=f"{p.base_url}/v1", api_key=p.master_key, max_retries=0,
                                  timeout=120) for p in proxies]
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int):
        async with gate:
            return await clients[i % len(clients)].chat.completions.create(
                model=("adaptive-0.3", "adaptive-0.7", "adaptive-0.9")[i % 3], user="replicas",
                messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])

    try:
        return await asyncio.gather(*(one(i) for i in range(total)), return_exceptions=True)
    finally:
        for c in clients:
            await c.close()


def test_two_replicas_one_log(tmp_path: Path) -> None:
    log = tmp_path / "traffic.jsonl"
    env = {"ADAPTIVE_ROUTER_TRAFFIC_LOG": str(log), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "HF_HUB_OFFLINE": "1"}
    with LiteLLMProxy(CONFIG, env=env, cwd=ROOT) as a, LiteLLMProxy(CONFIG, env=env, cwd=ROOT) as b:
        results = asyncio.run(_load([a, b], total=300, concurrency=16))
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    ids = {r.model_extra["adaptive_router"]["request_id"] for r in results}
    lines = list(read_traffic_log(log))
    assert len(lines) == 300 and {ln.request_id for ln in lines} == ids
