"""Each verifier wired into the proxy plugin, in-process with a real ``litellm.Router``.

The hook's three callbacks are called in the order the proxy calls them, and the call between
them is a real ``Router.acompletion`` on replay deployments (the proxy's own flow, without the
HTTP server: ``test_litellm_cascade.py`` runs that). Escalation calls go through the same router.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import litellm
import numpy as np
import pytest
from adaptive_router.integrations.litellm_plugin.proxy_hook import AdaptiveRouterProxyHook
from adaptive_router.integrations.plugin_settings import PluginSettings
from cascade_fixtures import (
    AGREE,
    DISAGREE,
    RECORDED,
    deployments,
    replay_providers,
    strong_cost,
    weak_cost,
    write_all,
)

from adaptive_router.traffic import read_traffic_log
from adaptive_router.verifiers.base import Evidence
from adaptive_router.verifiers.features import feature_matrix
from adaptive_router.verifiers.trained import TrainedVerifier


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cascade-verifiers")
    return {**write_all(folder), "folder": folder}


@pytest.fixture(autouse=True)
def providers(paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    with replay_providers(paths["records"], monkeypatch):
        yield


def make_hook(paths: dict[str, Path], cascade: dict | None, log: Path | None = None,
              model_list: list[dict] | None = None, **settings) -> AdaptiveRouterProxyHook:
    router = litellm.Router(model_list=model_list or deployments(), num_retries=0)
    raw = {"fleet": str(paths["fleet"]), "router": str(paths["router"]), **settings}
    if cascade is not None:
        raw["cascade"] = cascade
    if log is not None:
        raw["traffic_log"] = str(log)
    return AdaptiveRouterProxyHook(PluginSettings.load(raw, env={}), model_list=router.model_list,
                                   llm_router=router)


async def serve(hook: AdaptiveRouterProxyHook, prompt: str, knob: dict | None = None,
                metadata: dict | None = None):
    """The proxy's order: pre-call hook, the call through the router, success and header hooks."""
    data = {"model": "adaptive-router", "messages": [{"role": "user", "content": prompt}],
            "metadata": dict(metadata or {})}
    if knob is not None:
        data["metadata"]["adaptive_router"] = knob
    data = await hook.async_pre_call_hook(None, None, data, "acompletion")
    kwargs = {"n": data["n"]} if data.get("n") else {}
    response = await hook.llm_router().acompletion(model=data["model"], messages=data["messages"], **kwargs)
    await hook.async_post_call_success_hook(data, None, response)
    headers = await hook.async_post_call_response_headers_hook(data, None, response)
    return response, headers


def _evidence(rng: np.random.Generator, agree: bool) -> Evidence:
    a = int(rng.integers(2, 500))
    answers = [a, a, a] if agree else [a, a + 1 + int(rng.integers(0, 9)), a + 20]
    return Evidence(prompt=f"What is {a} plus zero?", samples=tuple(f"The answer is {x}." for x in answers),
                    chosen=0, prior=0.6, model="weak")


def trained_verifier_folder(folder: Path) -> Path:
    """A verifier fitted on steps whose samples agree (right) or disagree (wrong)."""
    rng = np.random.default_rng(0)
    evidence = [_evidence(rng, agree=i % 2 == 0) for i in range(120)]
    y = np.array([1.0 if i % 2 == 0 else 0.0 for i in range(120)])
    x = feature_matrix(evidence)
    kwargs = {"models": ["weak"] * len(y)} if "models" in inspect.signature(TrainedVerifier.fit).parameters else {}
    out = folder / "trained-verifier"
    TrainedVerifier.fit(x, y, **kwargs).save_pretrained(out)
    return out


async def test_agreement_verifier(paths) -> None:
    hook = make_hook(paths, {"verifier": "agreement", "accept": 0.6})
    response, headers = await serve(hook, DISAGREE)
    assert headers["x-adaptive-router-steps"] == "weak#3>strong#1"
    assert response.adaptive_router["cascade"]["verifier"] == "agreement"
    assert response.choices[0].message.content == RECORDED[DISAGREE][2][0]
    _, headers = await serve(hook, AGREE)
    assert headers["x-adaptive-router-steps"] == "weak#3"


async def test_trained_verifier_folder(paths) -> None:
    folder = trained_verifier_folder(paths["folder"])
    hook = make_hook(paths, {"verifier": str(folder), "accept": 0.5})
    response, headers = await serve(hook, DISAGREE)
    cascade = response.adaptive_router["cascade"]
    assert cascade["verifier"] == "trained"
    assert headers["x-adaptive-router-steps"] == "weak#3>strong#1", cascade
    assert cascade["steps"][0]["verifier_score"] < 0.5
    assert response.adaptive_router["cost_usd"] == pytest.approx(weak_cost(DISAGREE) + strong_cost(DISAGREE))
    response, headers = await serve(hook, AGREE)
    cascade = response.adaptive_router["cascade"]
    assert headers["x-adaptive-router-steps"] == "weak#3", cascade
    assert cascade["steps"][0]["verifier_score"] >= 0.5 and cascade["steps"][0]["accepted"]


async def test_judge_verifier_asks_a_model_group_of_the_router(paths) -> None:
    hook = make_hook(paths, {"verifier": "judge:judge-replay", "accept": 0.5})
    response, headers = await serve(hook, DISAGREE)
    cascade = response.adaptive_router["cascade"]
    assert cascade["verifier"] == "judge(judge-replay)"
    assert [s["verifier_score"] for s in cascade["steps"]] == [0.0, 1.0]  # "no" x3, then "yes" x3
    assert headers["x-adaptive-router-steps"] == "weak#3>strong#1"
    assert headers["x-adaptive-router-accepted-step"] == "2"
    assert "notes" not in response.adaptive_router
    response, headers = await serve(hook, AGREE)
    assert response.adaptive_router["cascade"]["steps"][0]["verifier_score"] == 1.0
    assert headers["x-adaptive-router-steps"] == "weak#3"


async def test_a_priced_judge_is_paid_for_in_the_cascade_cost(paths) -> None:
    from adaptive_router.integrations.litellm_plugin.proxy_process import replay_deployment
    from cascade_fixtures import JUDGE_TOKENS

    priced = [d for d in deployments() if d["model_name"] != "judge-replay"]
    priced.append(replay_deployment("judge-replay", "judge", 1e-06, 2e-06))
    hook = make_hook(paths, {"verifier": "judge:judge-replay", "accept": 0.5}, model_list=priced)
    response, _ = await serve(hook, DISAGREE)
    info = response.adaptive_router
    judge = JUDGE_TOKENS[0] * 1e-06 + 3 * JUDGE_TOKENS[1] * 2e-06  # one judge call: 3 votes
    steps = info["cascade"]["steps"]
    assert [s["verifier_cost_usd"] for s in steps] == pytest.approx([judge, judge])
    assert steps[0]["cost_usd"] == pytest.approx(weak_cost(DISAGREE) + judge)
    assert info["cost_usd"] == pytest.approx(weak_cost(DISAGREE) + strong_cost(DISAGREE) + 2 * judge)


async def test_a_verifier_that_cannot_load_serves_step_one(paths) -> None:
    broken = paths["folder"] / "broken-verifier"
    broken.mkdir(exist_ok=True)
    (broken / "config.json").write_text(json.dumps({"kind": "verifier", "verifier_type": "trained"}))
    hook = make_hook(paths, {"verifier": str(broken)})
    response, headers = await serve(hook, DISAGREE)
    info = response.adaptive_router
    assert headers["x-adaptive-router-steps"] == "weak#3"
    assert info["cascade"]["steps"][0]["verifier_score"] is None
    assert any("loading the verifier failed" in n for n in info["notes"]), info["notes"]
    assert info["cost_usd"] == pytest.approx(weak_cost(DISAGREE))
    assert response.choices[0].message.content in [t for t, _ in RECORDED[DISAGREE][1]]


async def test_exploration_acts_on_step_one_and_logs_its_propensity(paths, tmp_path) -> None:
    log = tmp_path / "traffic.jsonl"
    hook = make_hook(paths, {"verifier": "agreement"}, log=log, explore_epsilon=1.0, explore_seed=3)
    seen = set()
    for _ in range(6):
        response, headers = await serve(hook, AGREE)
        seen.add(headers["x-adaptive-router-steps"].split(">")[0])
    lines = list(read_traffic_log(log))
    # epsilon 1 over 2 candidates: step 1 is either, each with probability 1/2
    assert {ln.propensity for ln in lines} == {0.5}
    assert all(ln.cascade["steps"][0]["propensity"] == 0.5 for ln in lines)
    assert seen == {"weak#3", "strong#1"}
    explored = [ln for ln in lines if ln.explored]
    assert explored and all(ln.decision["candidate"] == "strong#1" for ln in explored)


async def test_cost_aware_exploration_draws_step_one_by_price(paths, tmp_path) -> None:
    from adaptive_router.policy import CostAwareExploration, ThresholdPolicy

    log = tmp_path / "traffic.jsonl"
    hook = make_hook(paths, {"verifier": "agreement"}, log=log, explore_epsilon=1.0, explore_seed=5,
                     explore_strategy="cost-aware")
    for _ in range(8):
        await serve(hook, AGREE)
    lines = list(read_traffic_log(log))
    costs = lines[0].decision["expected_costs_usd"]
    keys = list(costs)
    dist = CostAwareExploration(ThresholdPolicy(0.5), 1.0).exploration_distribution(
        np.array([[costs[k] for k in keys]]))[0]
    want = dict(zip(keys, dist, strict=True))
    for ln in lines:
        step1 = ln.cascade["steps"][0]["candidate"]
        assert ln.propensity == pytest.approx(want[step1])
        assert ln.decision["propensities"] == pytest.approx(want)
    assert want["weak#3"] > want["strong#1"]


async def test_accept_without_a_cascade_is_a_400(paths) -> None:
    from litellm.proxy._types import ProxyException

    hook = make_hook(paths, None)
    with pytest.raises(ProxyException) as err:
        await serve(hook, AGREE, knob={"accept": 0.7})
    assert str(err.value.code) == "400" and "accept" in err.value.message


async def test_escalation_calls_carry_the_callers_identity_for_spend_tracking(paths) -> None:
    """LiteLLM's cost tracking charges a call to the key/user/team in its metadata: the
    escalation call gets the request's, as a LiteLLM success callback sees it."""
    import asyncio

    from litellm.integrations.custom_logger import CustomLogger

    seen: list[dict] = []

    class Capture(CustomLogger):
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            md = (kwargs.get("litellm_params") or {}).get("metadata") or {}
            if "adaptive_router_cascade_step" in md:
                seen.append(dict(md))

    capture = Capture()
    litellm.callbacks.append(capture)
    try:
        hook = make_hook(paths, {"verifier": "agreement", "accept": 0.6})
        identity = {"user_api_key": "hashed-key-0001", "user_api_key_team_id": "team-1",
                    "user_api_key_user_id": "user-1", "tags": ["cascade-test"]}
        _, headers = await serve(hook, DISAGREE, metadata=identity)
        assert headers["x-adaptive-router-steps"] == "weak#3>strong#1"
        for _ in range(50):
            if seen:
                break
            await asyncio.sleep(0.1)
    finally:
        litellm.callbacks.remove(capture)
    assert seen, "the escalation call was not logged"
    md = seen[0]
    assert md["adaptive_router_cascade_step"] == 2
    assert {k: md.get(k) for k in identity} == identity
