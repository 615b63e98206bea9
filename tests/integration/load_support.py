"""What the load and soak tests share: a replay proxy with the plugin and an embedding router.

The router is a linear probe over MiniLM with fixed random weights: the same compute per request
as a trained one (encode the prompt, one matrix product), so the load is realistic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    replay_deployment,
    write_proxy_config,
    write_replay_records,
)

from adaptive_router.routers.linear_probe import LinearProbeRouter

WORDS = ("what how why when which explain compute derive prove estimate compare list name the a of "
         "prime number triangle area speed price river city planet energy cell market theorem vector "
         "graph python function error history language music ocean mountain").split()


def prompts(count: int, words: int = 20, seed: int = 0) -> list[str]:
    """``count`` distinct prompts of ``words`` words."""
    rng = np.random.default_rng(seed)
    return [f"{i}: " + " ".join(rng.choice(WORDS, size=words - 1)) for i in range(count)]


def start_load_proxy(work: Path, texts: list[str], **proxy_options: Any) -> LiteLLMProxy:
    """The load proxy, started; ``proxy_options`` go to :class:`LiteLLMProxy` (``num_workers=2``,
    ``server="gunicorn"``...)."""
    records = write_replay_records(work / "records.jsonl", texts, ["strong", "weak"])
    (work / "fleet.yaml").write_text(yaml.safe_dump({
        "reference": "strong", "selector": "first",
        "models": [{"name": "strong", "litellm_model": "strong-replay", "n": [1]},
                   {"name": "weak", "litellm_model": "weak-replay", "n": [1]}]}), encoding="utf-8")
    probe = LinearProbeRouter(["strong#1", "weak#1"], reference="strong#1")
    probe.weight = np.random.default_rng(0).normal(0, 3, probe.weight.shape).astype(np.float32)
    probe.save_pretrained(work / "router")
    config = write_proxy_config(
        work / "config.yaml",
        [replay_deployment("strong-replay", "strong", 2.5e-06, 1.0e-05),
         replay_deployment("weak-replay", "weak", 1.5e-07, 6.0e-07)],
        plugin={"fleet": str(work / "fleet.yaml"), "router": str(work / "router"),
                "traffic_log": str(work / "traffic.jsonl")})
    return LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                        log_path=work / "proxy.log", **proxy_options).start()


def chat(text: str) -> dict:
    return {"model": "adaptive-router", "messages": [{"role": "user", "content": text}]}


def log_lines(path: Path) -> int:
    return sum(1 for _ in path.open(encoding="utf-8")) if path.exists() else 0
