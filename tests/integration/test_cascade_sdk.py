"""Cascades with the SDK routing strategy, in-process with a real ``litellm.Router`` on replay
deployments: the same plan, verifier and accounting as the proxy plugin."""

from __future__ import annotations

from pathlib import Path

import litellm
import pytest
from adaptive_router.integrations.litellm_plugin.strategy import AdaptiveRoutingStrategy
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


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("cascade-sdk"))


@pytest.fixture(autouse=True)
def providers(paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    with replay_providers(paths["records"], monkeypatch):
        yield


def strategy(paths: dict[str, Path], log: Path) -> AdaptiveRoutingStrategy:
    router = litellm.Router(model_list=deployments(), num_retries=0)
    return AdaptiveRoutingStrategy(router, settings={
        "fleet": str(paths["fleet"]), "router": str(paths["router"]), "traffic_log": str(log),
        "cascade": {"verifier": "agreement", "accept": 0.6}}, seed=0).install()


async def test_sdk_cascade_escalates_and_sums_the_cost(paths, tmp_path) -> None:
    s = strategy(paths, tmp_path / "traffic.jsonl")
    response = await s.acompletion([{"role": "user", "content": DISAGREE}], temperature=0.2)
    info = AdaptiveRoutingStrategy.result_of(response)
    steps = info["cascade"]["steps"]
    assert [st["candidate"] for st in steps] == ["weak#3", "strong#1"]
    assert steps[0]["verifier_score"] == 0.0 and info["cascade"]["accepted_step"] == 1
    assert response.choices[0].message.content == RECORDED[DISAGREE][2][0]
    want = weak_cost(DISAGREE) + strong_cost(DISAGREE)
    assert info["cost_usd"] == pytest.approx(want)
    assert [st["litellm_cost_usd"] for st in steps] == pytest.approx([weak_cost(DISAGREE), strong_cost(DISAGREE)])
    line = next(iter(read_traffic_log(tmp_path / "traffic.jsonl")))
    assert line.call == "sdk" and line.cost_usd == pytest.approx(want)
    assert [st["propensity"] for st in line.cascade["steps"]] == [1.0, 1.0]


async def test_sdk_cascade_accepts_and_takes_the_knob(paths, tmp_path) -> None:
    s = strategy(paths, tmp_path / "traffic.jsonl")
    response = await s.acompletion([{"role": "user", "content": AGREE}])
    info = AdaptiveRoutingStrategy.result_of(response)
    assert [st["candidate"] for st in info["cascade"]["steps"]] == ["weak#3"]
    assert info["cost_usd"] == pytest.approx(weak_cost(AGREE))
    response = await s.acompletion([{"role": "user", "content": DISAGREE}], knob={"accept": 0.0})
    info = AdaptiveRoutingStrategy.result_of(response)
    assert [st["candidate"] for st in info["cascade"]["steps"]] == ["weak#3"]
    assert info["cascade"]["accept"] == 0.0


def test_sdk_cascade_sync_path(paths, tmp_path) -> None:
    s = strategy(paths, tmp_path / "traffic.jsonl")
    response = s.llm_router.completion(model="adaptive-router",
                                       messages=[{"role": "user", "content": DISAGREE}])
    info = AdaptiveRoutingStrategy.result_of(s.finalize(response))
    assert [st["candidate"] for st in info["cascade"]["steps"]] == ["weak#3", "strong#1"]
    assert info["cost_usd"] == pytest.approx(weak_cost(DISAGREE) + strong_cost(DISAGREE))


async def test_replay_deployment_latency_ms() -> None:
    """A replay deployment's ``latency_ms`` delays its answer (the bench's model speeds)."""
    import time

    from adaptive_router.integrations.litellm_plugin.proxy_process import replay_deployment

    router = litellm.Router(model_list=[replay_deployment("slow", "weak", 1e-7, 4e-7, latency_ms=250)])
    t0 = time.perf_counter()
    reply = await router.acompletion(model="slow", messages=[{"role": "user", "content": AGREE}], n=3)
    assert time.perf_counter() - t0 >= 0.25 and len(reply.choices) == 3
