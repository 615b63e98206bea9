"""Cascades through a REAL LiteLLM proxy process on replay deployments (issue 14).

One proxy, the plugin with ``cascade: {verifier: agreement, accept: 0.6}`` over a fleet of
``weak`` (3 samples) and ``strong`` (1 sample). The replay provider answers from recorded
samples with their recorded token counts, so every step's cost is known in advance and LiteLLM
prices each call itself from the deployments' ``model_info``.
"""

from __future__ import annotations

import httpx
import pytest
from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy, write_proxy_config
from cascade_fixtures import (
    AGREE,
    DISAGREE,
    NO_STRONG,
    RECORDED,
    deployments,
    strong_cost,
    weak_cost,
    write_all,
)

from adaptive_router.traffic import read_traffic_log, traffic_to_records


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("cascade")
    paths = write_all(work)
    log = work / "traffic.jsonl"
    config = write_proxy_config(work / "config.yaml", deployments(), plugin={
        "fleet": str(paths["fleet"]), "router": str(paths["router"]), "traffic_log": str(log),
        "replay_records": str(paths["records"]),
        "cascade": {"verifier": "agreement", "accept": 0.6, "max_steps": 2}},
        router_settings={"num_retries": 0})
    with LiteLLMProxy(config, log_path=work / "proxy.log") as p:
        p.traffic = log  # type: ignore[attr-defined]
        yield p


def _chat(proxy: LiteLLMProxy, prompt: str, **extra) -> httpx.Response:
    return httpx.post(f"{proxy.base_url}/v1/chat/completions", headers=proxy.headers, timeout=120,
                      json={"model": "adaptive-router", "messages": [{"role": "user", "content": prompt}],
                            **extra})


def _line(proxy: LiteLLMProxy, request_id: str):
    return next(ln for ln in read_traffic_log(proxy.traffic) if ln.request_id == request_id)


def test_disagreeing_samples_escalate_and_the_cost_is_the_sum_of_litellm_costs(proxy) -> None:
    resp = _chat(proxy, DISAGREE)
    assert resp.status_code == 200, resp.text[:2000]
    body = resp.json()
    info = body["adaptive_router"]
    cascade = info["cascade"]
    # the steps: weak x3 (three different answers: agreement 0 < 0.6), then strong x1, served
    assert [s["candidate"] for s in cascade["steps"]] == ["weak#3", "strong#1"]
    assert resp.headers["x-adaptive-router-steps"] == "weak#3>strong#1"
    assert resp.headers["x-adaptive-router-accepted-step"] == "2"
    first, second = cascade["steps"]
    assert first["verifier_score"] == 0.0 and first["accepted"] is False
    assert first["model_group"] == "weak-replay" and second["model_group"] == "strong-replay"
    assert cascade["accepted_step"] == 1 and cascade["escalated"] is True
    assert cascade["verifier"] == "agreement" and cascade["accept"] == 0.6
    # the client gets the strong model's answer
    strong_text = RECORDED[DISAGREE][2][0]
    assert len(body["choices"]) == 1 and body["choices"][0]["message"]["content"] == strong_text
    assert (info["model"], info["n"], info["model_group"]) == ("strong", 1, "strong-replay")
    assert resp.headers["x-adaptive-router-model"] == "strong"
    # cost: every step paid, each priced by LiteLLM from model_info, and the plugin agrees
    want = weak_cost(DISAGREE) + strong_cost(DISAGREE)
    assert first["litellm_cost_usd"] == pytest.approx(weak_cost(DISAGREE))
    assert second["litellm_cost_usd"] == pytest.approx(strong_cost(DISAGREE))
    assert first["cost_usd"] == pytest.approx(first["litellm_cost_usd"])
    assert second["cost_usd"] == pytest.approx(second["litellm_cost_usd"])
    assert info["cost_usd"] == pytest.approx(first["litellm_cost_usd"] + second["litellm_cost_usd"])
    assert info["cost_usd"] == pytest.approx(want) and cascade["cost_usd"] == pytest.approx(want)
    assert float(resp.headers["x-adaptive-router-cost-usd"]) == pytest.approx(want, rel=1e-6)
    # LiteLLM's own header prices the call it made (step 1)
    assert float(resp.headers["x-litellm-response-cost"]) == pytest.approx(weak_cost(DISAGREE))
    # usage counts every step's tokens (all were paid for)
    ptok, weak, strong = RECORDED[DISAGREE]
    assert body["usage"]["prompt_tokens"] == 2 * ptok
    assert body["usage"]["completion_tokens"] == sum(k for _, k in weak) + strong[1]
    # the traffic log: step 1's decision and samples, every step under `cascade`, the total cost
    line = _line(proxy, info["request_id"])
    assert line.decision["candidate"] == "weak#3" and line.propensity == 1.0
    assert line.cost_usd == pytest.approx(want)
    assert [s["candidate"] for s in line.cascade["steps"]] == ["weak#3", "strong#1"]
    assert [s["propensity"] for s in line.cascade["steps"]] == [1.0, 1.0]
    assert [s["verifier_score"] for s in line.cascade["steps"]][0] == 0.0
    assert line.cascade["served_step"] == 2
    assert sorted(line.cascade["steps"][0]["samples"]) == sorted(t for t, _ in weak)
    assert line.cascade["steps"][1]["samples"] == [strong_text]
    # retraining sees both models' samples of the prompt
    rec = traffic_to_records([line])[0]
    assert set(rec.models) == {"weak", "strong"}
    assert rec.models["strong"].responses == [strong_text]


def test_agreeing_samples_are_accepted_at_step_one(proxy) -> None:
    resp = _chat(proxy, AGREE)
    assert resp.status_code == 200, resp.text[:2000]
    info = resp.json()["adaptive_router"]
    cascade = info["cascade"]
    assert [s["candidate"] for s in cascade["steps"]] == ["weak#3"]
    assert cascade["steps"][0]["verifier_score"] == 1.0 and cascade["steps"][0]["accepted"] is True
    assert cascade["escalated"] is False and cascade["accepted_step"] == 0
    assert resp.headers["x-adaptive-router-steps"] == "weak#3"
    assert resp.headers["x-adaptive-router-accepted-step"] == "1"
    assert info["cost_usd"] == pytest.approx(weak_cost(AGREE))
    assert info["cost_usd"] == pytest.approx(cascade["steps"][0]["litellm_cost_usd"])
    assert float(resp.headers["x-litellm-response-cost"]) == pytest.approx(weak_cost(AGREE))
    assert resp.json()["choices"][0]["message"]["content"].endswith("The answer is 12.")
    assert _line(proxy, info["request_id"]).cascade["steps"][0]["accepted"] is True


def test_accept_knob_per_request(proxy) -> None:
    # accept 0: any answer is believed, so the disagreeing prompt stops at step 1
    resp = _chat(proxy, DISAGREE, metadata={"adaptive_router": {"accept": 0.0}})
    assert resp.status_code == 200, resp.text[:1000]
    cascade = resp.json()["adaptive_router"]["cascade"]
    assert [s["candidate"] for s in cascade["steps"]] == ["weak#3"] and cascade["accept"] == 0.0
    # a budget that cannot pay for the strong step: one step only, said so
    resp = _chat(proxy, DISAGREE, metadata={"adaptive_router": {"budget_usd": weak_cost(DISAGREE) * 1.5}})
    assert resp.status_code == 200, resp.text[:1000]
    cascade = resp.json()["adaptive_router"]["cascade"]
    assert [s["candidate"] for s in cascade["steps"]] == ["weak#3"]


@pytest.mark.parametrize("knob, field", [({"accept": "high"}, "accept"), ({"accept": 1.5}, "accept"),
                                         ({"accept": True}, "accept"), ({"acept": 0.5}, "acept")])
def test_bad_accept_knob_is_a_400_naming_the_field(proxy, knob, field) -> None:
    resp = _chat(proxy, AGREE, metadata={"adaptive_router": knob})
    assert resp.status_code == 400, resp.text[:1000]
    assert field in resp.json()["error"]["message"]
    assert proxy.alive()


def test_failed_escalation_serves_step_one_and_says_why(proxy) -> None:
    resp = _chat(proxy, NO_STRONG)
    assert resp.status_code == 200, resp.text[:2000]
    info = resp.json()["adaptive_router"]
    cascade = info["cascade"]
    assert [s["candidate"] for s in cascade["steps"]] == ["weak#3"]
    assert cascade["steps"][0]["verifier_score"] == 0.0  # it wanted to escalate
    assert "error" in cascade and "escalation call to step 2" in " ".join(info["notes"])
    assert info["model"] == "weak" and info["cost_usd"] == pytest.approx(weak_cost(NO_STRONG))
    weak_texts = [t for t, _ in RECORDED[NO_STRONG][1]]
    assert resp.json()["choices"][0]["message"]["content"] in weak_texts
    assert resp.headers["x-adaptive-router-accepted-step"] == "1"
    assert proxy.alive()


def test_streams_are_routed_before_the_call_only(proxy) -> None:
    with httpx.stream("POST", f"{proxy.base_url}/v1/chat/completions", headers=proxy.headers,
                      timeout=120, json={"model": "adaptive-router", "stream": True,
                                         "messages": [{"role": "user", "content": DISAGREE}]}) as resp:
        assert resp.status_code == 200
        text = "".join(resp.iter_text())
        headers = resp.headers
    assert "x-adaptive-router-steps" not in headers
    assert '"cascade"' not in text
    assert headers["x-adaptive-router-n"] == "1"  # streams draw one sample: strong#1 is the one


def test_concurrent_cascades_each_pay_their_own_steps(proxy) -> None:
    """24 cascaded requests at once (escalating, accepted, failing escalation, mixed): each
    response lists its own steps and costs; the proxy keeps serving."""
    import asyncio

    prompts = [DISAGREE, AGREE, NO_STRONG] * 8
    want = {DISAGREE: (["weak#3", "strong#1"], weak_cost(DISAGREE) + strong_cost(DISAGREE)),
            AGREE: (["weak#3"], weak_cost(AGREE)), NO_STRONG: (["weak#3"], weak_cost(NO_STRONG))}

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=proxy.base_url, headers=proxy.headers, timeout=120) as client:
            return await asyncio.gather(*[
                client.post("/v1/chat/completions", json={
                    "model": "adaptive-router", "messages": [{"role": "user", "content": p}]})
                for p in prompts])

    for prompt, resp in zip(prompts, asyncio.run(run()), strict=True):
        assert resp.status_code == 200, resp.text[:500]
        info = resp.json()["adaptive_router"]
        steps, cost = want[prompt]
        assert [s["candidate"] for s in info["cascade"]["steps"]] == steps
        assert info["cost_usd"] == pytest.approx(cost)
    assert proxy.alive()
