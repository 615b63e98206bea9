"""Retrain from day one through a real LiteLLM proxy (issue 15).

A three-model fleet on replay deployments is served by the bundled default router with
cost-aware exploration; every served answer is graded into a feedback file; ``adaptive-router
retrain --base default --fleet`` learns a head for every candidate and promotes; a restarted
proxy loads the promoted router, and its next decision names a candidate the default could not
name: bound to this fleet, the default gives every non-reference model the same prediction, so
a threshold can only pick the cheapest of them or the reference, never ``mid``.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    replay_deployment,
    write_proxy_config,
    write_replay_records,
)

from adaptive_router.traffic import read_traffic_log

PRICES = {"cheap": 1e-07, "mid": 3e-07, "strong": 3e-06}  # dollars per token, in and out
EASY = ["What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}, please.", "How much is {a} times 2?"]
HARD = ["Prove that there are infinitely many primes congruent to {a} modulo {b}.",
        "Show rigorously that the series of 1/n^{a} converges, with an epsilon-delta proof for case {b}.",
        "Derive a closed form for the number of lattice paths avoiding {a} forbidden points in a {b}x{b} grid.",
        "Prove the inequality between the arithmetic and geometric means of {a} positive reals, case {b}."]
#: P(the grader marks the answer correct): the cheap model fails hard prompts, mid does not
TRUTH = {"easy": {"cheap": 0.9, "mid": 0.9, "strong": 0.95}, "hard": {"cheap": 0.1, "mid": 0.85, "strong": 0.9}}
REQUESTS = 400


def traffic_prompts(n: int, seed: int) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    out: dict[str, str] = {}
    while len(out) < n:
        kind = "easy" if len(out) % 2 == 0 else "hard"
        templates = EASY if kind == "easy" else HARD
        out[templates[int(rng.integers(0, 4))].format(a=int(rng.integers(2, 999)), b=int(rng.integers(2, 99)))] = kind
    return out


def start_proxy(work: Path, records: Path, router: str, name: str, **plugin: object) -> LiteLLMProxy:
    config = write_proxy_config(
        work / f"{name}.yaml",
        [replay_deployment(f"{m}-replay", m, p, p) for m, p in PRICES.items()],
        plugin={"fleet": str(work / "fleet.yaml"), "router": router, "selector": "first",
                "traffic_log": str(work / f"{name}.jsonl"), **plugin})
    return LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                        log_path=work / f"{name}.log").start()


def ask(client: httpx.Client, proxy: LiteLLMProxy, prompt: str) -> httpx.Response:
    resp = client.post(f"{proxy.base_url}/v1/chat/completions", headers=proxy.headers, timeout=120,
                       json={"model": "adaptive-router", "messages": [{"role": "user", "content": prompt}]})
    assert resp.status_code == 200, resp.text
    return resp


def test_default_explore_log_retrain_promote_restart(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from adaptive_router.cli import app

    prompts = traffic_prompts(REQUESTS, seed=0)
    probe = {HARD[0].format(a=7, b=4): "hard"}  # asked after the restart
    records = write_replay_records(tmp_path / "records.jsonl", [*prompts, *probe], list(PRICES))
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump({
        "reference": "strong", "selector": "first",
        "models": [{"name": m, "litellm_model": f"{m}-replay", "n": [1]} for m in PRICES]}), encoding="utf-8")

    # 1. day one: the bundled default with cost-aware exploration
    with start_proxy(tmp_path, records, "default", "day1", explore_epsilon=0.6, explore_seed=0,
                     explore_strategy="cost-aware") as proxy, httpx.Client() as client:
        served = [ask(client, proxy, p).headers["x-adaptive-router-model"] for p in prompts]
    assert "mid" in served and served.count("cheap") > served.count("mid")
    lines = list(read_traffic_log(tmp_path / "day1.jsonl"))
    assert len(lines) == REQUESTS
    assert all(ln.decision.get("propensities") and ln.propensity > 0 for ln in lines)  # every one logged
    greedy = {ln.model for ln in lines if not ln.explored}
    assert greedy <= {"cheap", "strong"}  # what the default can name on this fleet

    # 2. grade every served answer
    rng = np.random.default_rng(1)
    with (tmp_path / "feedback.jsonl").open("w", encoding="utf-8") as fb:
        for ln in lines:
            correct = bool(rng.random() < TRUTH[prompts[ln.prompt]][ln.model])
            fb.write(json.dumps({"request_id": ln.request_id, "correct": correct}) + "\n")

    # 3. retrain from the default, promote into the folder the next proxy loads
    promoted = tmp_path / "promoted"
    result = CliRunner().invoke(app, ["retrain", "--logs", str(tmp_path / "day1.jsonl"), "--base", "default",
                                      "--fleet", str(tmp_path / "fleet.yaml"), "--feedback",
                                      str(tmp_path / "feedback.jsonl"), "--out", str(tmp_path / "retrain"),
                                      "--promote-to", str(promoted)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{"):])
    assert out["method"] == "heads" and out["promoted"], out
    assert set(out["heads"]) == {"cheap#1", "mid#1", "strong#1"}
    assert (promoted / "config.json").exists()

    # 4. a restarted proxy loads the promoted router: a hard prompt now goes to mid
    with start_proxy(tmp_path, records, str(promoted), "day2") as proxy, httpx.Client() as client:
        resp = ask(client, proxy, next(iter(probe)))
    assert resp.headers["x-adaptive-router-model"] == "mid", resp.json().get("adaptive_router")
    line = list(read_traffic_log(tmp_path / "day2.jsonl"))[-1]
    assert line.decision["router"] == "fleet-heads" and line.decision["candidate"] == "mid#1"


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proxies get their settings from their own config files only."""
    for var in ("ADAPTIVE_ROUTER_ROUTER", "ADAPTIVE_ROUTER_FLEET", "ADAPTIVE_ROUTER_EPSILON",
                "ADAPTIVE_ROUTER_TRAFFIC_LOG"):
        monkeypatch.delenv(var, raising=False)
