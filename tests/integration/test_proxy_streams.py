"""Routed streams through a real LiteLLM proxy with the plugin (issue 16, items 1 and 2).

1. The realised decision and cost reach the client on the stream's final chunk whether or not
   it sent ``stream_options.include_usage``, and a client that did not ask gets no extra
   usage-only chunk (every chunk it receives has a choice).
2. A routed stream whose chosen deployment is down fails over to the next-best candidate before
   anything was sent to the client, and the realised cost is that of what served it.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    free_port,
    replay_deployment,
    write_proxy_config,
    write_replay_records,
)

from adaptive_router.traffic import read_traffic_log

PROMPT = "What is 6 times 7?"
ANSWER = "Six times seven is 42."
WEAK_PRICE = (1.5e-07, 6.0e-07)
STRONG_PRICE = (2.5e-06, 1.0e-05)


def sse_events(proxy: LiteLLMProxy, body: dict) -> tuple[httpx.Response, list[dict]]:
    """POST a stream and parse its Server-Sent Events (the raw wire, as any client sees it)."""
    events: list[dict] = []
    with httpx.stream("POST", f"{proxy.base_url}/v1/chat/completions", json=body,
                      headers=proxy.headers, timeout=120) as resp:
        for line in resp.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[6:]))
        if resp.status_code != 200:
            resp.read()
    return resp, events


def write_fleet(path: Path, models: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"reference": "strong", "selector": "first", "models": models}),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    """weak (n 1 or 3) and strong replay deployments; the cheapest baseline routes to weak."""
    work = tmp_path_factory.mktemp("streams")
    records = write_replay_records(work / "records.jsonl", [PROMPT], ["weak", "strong"], answers=[ANSWER])
    fleet = write_fleet(work / "fleet.yaml", [
        {"name": "weak", "litellm_model": "weak-replay", "n": [1, 3]},
        {"name": "strong", "litellm_model": "strong-replay", "n": [1]}])
    config = write_proxy_config(work / "config.yaml", [
        replay_deployment("weak-replay", "weak", *WEAK_PRICE),
        replay_deployment("strong-replay", "strong", *STRONG_PRICE)], plugin={
        "fleet": str(fleet), "router": "cheapest", "traffic_log": str(work / "traffic.jsonl")})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                      log_path=work / "proxy.log") as p:
        p.traffic_log = work / "traffic.jsonl"  # type: ignore[attr-defined]
        yield p


def expected_cost(prompt_tokens: int, output_tokens: int, price: tuple[float, float]) -> float:
    return prompt_tokens * price[0] + output_tokens * price[1]


@pytest.mark.parametrize("options", [None, {"include_usage": False}, {"include_usage": True}],
                         ids=["no stream_options", "include_usage false", "include_usage true"])
def test_realised_cost_on_the_final_chunk_of_every_stream(proxy, options) -> None:
    body = {"model": "adaptive-router", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    if options is not None:
        body["stream_options"] = options
    resp, events = sse_events(proxy, body)
    assert resp.status_code == 200
    assert resp.headers["x-adaptive-router-cost-basis"] == "expected"
    assert "".join((e["choices"][0]["delta"].get("content") or "") for e in events if e["choices"]) == ANSWER
    carrying = [i for i, e in enumerate(events) if "adaptive_router" in e]
    assert carrying == [len(events) - 1], "exactly the final chunk carries the realised report"
    info = events[-1]["adaptive_router"]
    assert (info["model"], info["n"]) == ("weak", 1)
    assert info["output_tokens"] == [40]
    assert info["cost_usd"] == pytest.approx(expected_cost(info["prompt_tokens"], 40, WEAK_PRICE))
    assert events[-1]["usage"]["completion_tokens"] == 40
    asked = bool(options and options.get("include_usage"))
    if not asked:  # no usage-only chunk the client did not ask for: every chunk has its choice
        assert all(e["choices"] for e in events)
        assert events[-1]["choices"][0]["finish_reason"] == "stop"
    lines = [ln for ln in read_traffic_log(proxy.traffic_log) if ln.request_id == info["request_id"]]
    assert lines and lines[-1].cost_usd == pytest.approx(info["cost_usd"])


def test_openai_client_that_did_not_ask_reads_the_stream_unchanged(proxy) -> None:
    """The official client parses every chunk, and the report is on the last one."""
    client = openai.OpenAI(base_url=f"{proxy.base_url}/v1", api_key=proxy.master_key, max_retries=0)
    chunks = list(client.chat.completions.create(
        model="adaptive-router", stream=True, messages=[{"role": "user", "content": PROMPT}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].model_extra["adaptive_router"]["cost_usd"] > 0
    assert all(c.choices for c in chunks)


@pytest.fixture(scope="module")
def down_proxy(tmp_path_factory: pytest.TempPathFactory):
    """The cheapest candidate's deployment is down (connection refused on 127.0.0.1)."""
    work = tmp_path_factory.mktemp("streams-down")
    records = write_replay_records(work / "records.jsonl", [PROMPT], ["weak", "strong"], answers=[ANSWER])
    fleet = write_fleet(work / "fleet.yaml", [
        {"name": "down", "litellm_model": "down-group", "n": [1, 3]},
        {"name": "weak", "litellm_model": "weak-replay", "n": [1]},
        {"name": "strong", "litellm_model": "strong-replay", "n": [1]}])
    down = {"model_name": "down-group",
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-fake-upstream-0123456789abcdef",
                               "api_base": f"http://127.0.0.1:{free_port()}/v1"},
            "model_info": {"input_cost_per_token": 1e-08, "output_cost_per_token": 1e-08}}
    config = write_proxy_config(work / "config.yaml", [
        down, replay_deployment("weak-replay", "weak", *WEAK_PRICE),
        replay_deployment("strong-replay", "strong", *STRONG_PRICE)], plugin={
        "fleet": str(fleet), "router": "cheapest", "traffic_log": str(work / "traffic.jsonl")})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                      log_path=work / "proxy.log") as p:
        p.traffic_log = work / "traffic.jsonl"  # type: ignore[attr-defined]
        yield p


@pytest.mark.parametrize("options", [None, {"include_usage": True}], ids=["plain", "include_usage"])
def test_a_stream_fails_over_before_anything_was_sent(down_proxy, options) -> None:
    body = {"model": "adaptive-router", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}
    if options is not None:
        body["stream_options"] = options
    resp, events = sse_events(down_proxy, body)
    assert resp.status_code == 200, resp.text[:500] if resp.is_closed else resp.status_code
    assert resp.headers["x-litellm-model-group"] == "weak-replay"
    assert resp.headers["x-adaptive-router-model"] == "weak"  # who serves, not who failed
    assert "".join((e["choices"][0]["delta"].get("content") or "") for e in events if e["choices"]) == ANSWER
    info = events[-1]["adaptive_router"]
    assert (info["model"], info["model_group"], info["n"]) == ("weak", "weak-replay", 1)
    assert "failover: down#1 failed, served by weak#1" in info["decision"]["reason"]
    assert info["cost_usd"] == pytest.approx(expected_cost(info["prompt_tokens"], 40, WEAK_PRICE))
    line = next(ln for ln in read_traffic_log(down_proxy.traffic_log) if ln.request_id == info["request_id"])
    assert line.decision["model"] == "weak" and line.cost_usd == pytest.approx(info["cost_usd"])
    assert "sk-fake-upstream" not in json.dumps(events)
    assert down_proxy.alive()
