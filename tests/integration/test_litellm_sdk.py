"""The replay/ and local/ providers and the SDK routing strategy, in-process with real LiteLLM."""

from __future__ import annotations

from pathlib import Path

import litellm
import pytest
import yaml
from adaptive_router.integrations.litellm_plugin.providers import HIDDEN_OUTPUT_TOKENS, provider_map
from adaptive_router.integrations.litellm_plugin.strategy import AdaptiveRoutingStrategy
from replay_fixtures import PRIORS, REPLAY, cost, write_fixtures

from adaptive_router.traffic import read_traffic_log

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "What is 7 times 8?"
PTOK, (STRONG, STOK), WEAK, ANSWER = REPLAY[PROMPT]
MSGS = [{"role": "user", "content": PROMPT}]


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_fixtures(tmp_path_factory.mktemp("replay"))


@pytest.fixture(autouse=True)
def providers(fixtures: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ADAPTIVE_ROUTER_REPLAY_RECORDS", str(fixtures[0]))
    saved = list(litellm.custom_provider_map)
    litellm.custom_provider_map = provider_map()
    litellm.utils.custom_llm_setup()
    yield
    litellm.custom_provider_map = saved


def model_list(groups=("gpt-4o", "gpt-4o-mini")) -> list[dict]:
    prices = {"gpt-4o": (2.5e-06, 1.0e-05), "gpt-4o-mini": (1.5e-07, 6.0e-07)}
    return [{"model_name": f"{g}-replay", "litellm_params": {"model": f"replay/{g}"},
             "model_info": {"input_cost_per_token": prices[g][0], "output_cost_per_token": prices[g][1]}}
            for g in groups]


# -- replay/ ----------------------------------------------------------------------------------------
async def test_replay_returns_n_recorded_samples_with_recorded_usage() -> None:
    r = await litellm.acompletion(model="replay/gpt-4o-mini", messages=MSGS, n=3, seed=1)
    texts = sorted(c.message.content for c in r.choices)
    assert texts == sorted(t for t, _ in WEAK)
    assert r.usage.prompt_tokens == PTOK
    assert r.usage.completion_tokens == sum(k for _, k in WEAK)
    by_text = dict(WEAK)
    assert r._hidden_params[HIDDEN_OUTPUT_TOKENS] == [by_text[c.message.content] for c in r.choices]
    one = await litellm.acompletion(model="replay/gpt-4o", messages=[{"role": "user", "content": f"  {PROMPT}\n"}])
    assert one.choices[0].message.content == STRONG and one.usage.completion_tokens == STOK


async def test_replay_unknown_prompt_is_a_clear_400() -> None:
    with pytest.raises(litellm.BadRequestError, match="not in the records"):
        await litellm.acompletion(model="replay/gpt-4o", messages=[{"role": "user", "content": "Never recorded"}])
    with pytest.raises(litellm.BadRequestError, match="no samples of 'gpt-5'"):
        await litellm.acompletion(model="replay/gpt-5", messages=MSGS)


async def test_replay_streams_one_sample_and_refuses_several() -> None:
    stream = await litellm.acompletion(model="replay/gpt-4o", messages=MSGS, stream=True,
                                       stream_options={"include_usage": True})
    parts, usage = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    assert "".join(parts) == STRONG
    assert usage.completion_tokens == STOK and usage.prompt_tokens == PTOK
    with pytest.raises(litellm.BadRequestError, match="streaming draws one sample"):
        s = await litellm.acompletion(model="replay/gpt-4o", messages=MSGS, stream=True, n=2)
        async for _ in s:
            pass


def test_replay_sync_completion() -> None:
    r = litellm.completion(model="replay/gpt-4o-mini", messages=MSGS, n=2)
    assert len(r.choices) == 2 and r.usage.prompt_tokens == PTOK


# -- local/ -----------------------------------------------------------------------------------------
async def test_local_model_draws_real_samples() -> None:
    r = await litellm.acompletion(model="local/smollm2-135m-instruct", n=2, max_tokens=6, seed=0,
                                  messages=[{"role": "user", "content": "Say hello."}])
    assert len(r.choices) == 2
    counts = r._hidden_params[HIDDEN_OUTPUT_TOKENS]
    assert len(counts) == 2 and all(1 <= c <= 6 for c in counts)
    assert r.usage.completion_tokens == sum(counts)
    assert r.usage.prompt_tokens > 5  # the chat template's real token count
    # streaming: token by token as generated, the real usage at the end
    stream = await litellm.acompletion(model="local/smollm2-135m-instruct", max_tokens=6, temperature=0,
                                       stream=True, stream_options={"include_usage": True},
                                       messages=[{"role": "user", "content": "Say hello."}])
    pieces, usage = [], None
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
        usage = getattr(chunk, "usage", None) or usage
    assert len(pieces) >= 2 and "".join(pieces).strip()
    assert 1 <= usage.completion_tokens <= 6 and usage.prompt_tokens == r.usage.prompt_tokens


# -- the SDK routing strategy ----------------------------------------------------------------------
def _strategy(fixtures: tuple[Path, Path], tmp_path: Path, groups=("gpt-4o", "gpt-4o-mini"),
              fleet: str | None = None) -> AdaptiveRoutingStrategy:
    router = litellm.Router(model_list=model_list(groups))
    settings = {"fleet": fleet or str(ROOT / "examples/litellm/fleet.yaml"), "router": str(fixtures[1]),
                "traffic_log": str(tmp_path / "sdk.jsonl")}
    return AdaptiveRoutingStrategy(router, settings=settings, seed=0).install()


async def test_strategy_picks_group_and_n_then_keeps_the_best(fixtures, tmp_path) -> None:
    s = _strategy(fixtures, tmp_path)
    raw = await s.llm_router.acompletion(model="adaptive-0.6", messages=MSGS)
    assert len(raw.choices) == 3  # gpt-4o-mini x 3: the cheapest candidate predicted >= 0.6
    r = await s.afinalize(raw)
    info = r.adaptive_router
    assert (info["model"], info["n"], info["model_group"]) == ("gpt-4o-mini", 3, "gpt-4o-mini-replay")
    assert len(r.choices) == 1 and f"The answer is {ANSWER}." in r.choices[0].message.content
    assert info["cost_usd"] == pytest.approx(cost("gpt-4o-mini", PTOK, [k for _, k in WEAK]))
    assert info["cost_usd"] == pytest.approx(raw._hidden_params["response_cost"])
    line = list(read_traffic_log(tmp_path / "sdk.jsonl"))[-1]
    assert line.decision["candidate"] == "gpt-4o-mini#3" and len(line.samples) == 3
    # the knob on the request's metadata; the sync path too
    r = await s.acompletion(MSGS, knob={"threshold": 0.8})
    assert (r.adaptive_router["model"], r.adaptive_router["n"]) == ("gpt-4o", 1)
    r = s.llm_router.completion(model="adaptive-0.3", messages=MSGS)
    assert r.choices[0].message.content in {t for t, _ in WEAK}


async def test_strategy_falls_back_when_the_group_has_no_deployment(fixtures, tmp_path) -> None:
    fleet = yaml.safe_load((ROOT / "examples/litellm/fleet.yaml").read_text())
    for m in fleet["models"]:  # priced here: the router below lacks the mini group's model_info
        m["price"] = {"input_per_token": 1e-7, "output_per_token": 1e-6}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(fleet))
    s = _strategy(fixtures, tmp_path, groups=("gpt-4o",), fleet=str(tmp_path / "fleet.yaml"))
    r = await s.acompletion(MSGS, model="adaptive-0.3")
    info = r.adaptive_router
    assert info["model"] == "gpt-4o" and "preferred gpt-4o#1" in info["decision"]["reason"]
    # ordinary names still route through the strategy's plain selection
    plain = await s.llm_router.acompletion(model="gpt-4o-replay", messages=MSGS)
    assert plain.choices[0].message.content == STRONG and not hasattr(plain, "adaptive_router")
    assert set(PRIORS) == set(s.runtime.fleet.candidate_keys)


# -- the proxy hook in-process (the proxy itself: test_litellm_proxy.py) ----------------------------
async def test_hook_passes_other_models_and_reports_misconfiguration_as_500(fixtures) -> None:
    from adaptive_router.integrations.litellm_plugin.proxy_hook import AdaptiveRouterProxyHook
    from adaptive_router.integrations.plugin_settings import PluginSettings
    from litellm.proxy._types import ProxyException

    broken = AdaptiveRouterProxyHook(PluginSettings.load({"fleet": "/nonexistent/fleet.yaml"}, env={}))
    data = {"model": "gpt-4o-replay", "messages": MSGS}
    assert await broken.async_pre_call_hook(None, None, data, "acompletion") is None
    assert data == {"model": "gpt-4o-replay", "messages": MSGS}  # untouched
    with pytest.raises(ProxyException) as err:
        await broken.async_pre_call_hook(None, None, {"model": "adaptive-router", "messages": MSGS},
                                         "acompletion")
    assert err.value.code == "500" and "misconfigured" in err.value.message
    assert "/nonexistent/fleet.yaml" in err.value.message

    hook = AdaptiveRouterProxyHook(PluginSettings.load(
        {"fleet": str(ROOT / "examples/litellm/fleet.yaml"), "router": str(fixtures[1])}, env={}),
        model_list=model_list())
    data = {"model": "adaptive-0.6", "messages": MSGS, "metadata": {"requester_metadata": {}}}
    out = await hook.async_pre_call_hook(None, None, data, "acompletion")
    assert out["model"] == "gpt-4o-mini-replay" and out["n"] == 3
    # LiteLLM's logging payload copies requester_metadata: the decision travels to its sinks
    logged = out["metadata"]["requester_metadata"]["adaptive_router"]
    assert logged["decision"]["candidate"] == "gpt-4o-mini#3" and logged["knob"] == {"threshold": 0.6}
    assert out["fallbacks"]  # failover to the next-best candidates, on by default
    quiet = AdaptiveRouterProxyHook(PluginSettings.load(
        {"fleet": str(ROOT / "examples/litellm/fleet.yaml"), "router": str(fixtures[1]), "failover": False},
        env={}), model_list=model_list())
    out = await quiet.async_pre_call_hook(None, None, {"model": "adaptive-0.6", "messages": MSGS},
                                          "acompletion")
    assert out["model"] == "gpt-4o-mini-replay" and "fallbacks" not in out
    with pytest.raises(ProxyException) as err:
        await hook.async_pre_call_hook(None, None, {"model": "adaptive-router", "messages": MSGS},
                                       "aembedding")
    assert err.value.code == "400" and "not supported" in err.value.message


# -- best of n by a reward model ---------------------------------------------------------------------
def test_reward_selector_uses_the_reward_model_and_survives_a_broken_one(fixtures, tmp_path) -> None:
    import numpy as np
    from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime
    from adaptive_router.integrations.plugin_settings import PluginSettings

    from adaptive_router.reward_models import ProxyRewardModel

    texts = ["Let me think about it.", "7 x 8 = 56. The answer is 56.", "Eight sevens."]
    # a proxy reward model whose head rewards a stated final answer (its last feature)
    dim = ProxyRewardModel().features([PROMPT], texts[:1]).shape[1]
    w1 = np.zeros((1, dim), dtype=np.float32)
    w1[0, -1] = 1.0
    weights = {"w1": w1, "b1": np.zeros(1, np.float32), "w2": np.ones((1, 1), np.float32),
               "b2": np.zeros(1, np.float32)}
    ProxyRewardModel(hidden=1, weights=weights).save_pretrained(tmp_path / "rm")
    base = {"fleet": str(ROOT / "examples/litellm/fleet.yaml"), "router": str(fixtures[1]),
            "selector": "reward"}
    runtime = AdaptiveRuntime(PluginSettings.load({**base, "reward_model": str(tmp_path / "rm")}, env={}),
                              model_list=model_list())
    sel = runtime.select(PROMPT, texts)
    assert sel.index == 1 and sel.selector == "reward" and sel.selection_fallback is None
    assert sel.scores[1] > sel.scores[0]
    broken = AdaptiveRuntime(PluginSettings.load({**base, "reward_model": str(tmp_path / "nope")}, env={}),
                             model_list=model_list())
    sel = broken.select(PROMPT, texts)
    assert sel.index == 0 and "reward model unavailable" in sel.selection_fallback
