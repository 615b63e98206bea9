"""Cascades in ``ChatAdaptiveRouter``, with LiteLLM ``replay/`` models behind the fleet (real
LiteLLM calls, recorded answers and token counts): the core's plan, verifier and report."""

from __future__ import annotations

from pathlib import Path

import pytest
from adaptive_router.integrations.langchain_plugin.chat import ChatAdaptiveRouter
from cascade_fixtures import (
    AGREE,
    DISAGREE,
    PRICES,
    RECORDED,
    replay_providers,
    strong_cost,
    weak_cost,
    write_all,
)
from langchain_core.runnables import ConfigurableField

from adaptive_router.domain import Fleet
from adaptive_router.errors import InvalidRequestError
from adaptive_router.traffic import read_traffic_log


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_all(tmp_path_factory.mktemp("cascade-langchain"))


@pytest.fixture(autouse=True)
def providers(paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    with replay_providers(paths["records"], monkeypatch):
        yield


def fleet() -> Fleet:
    """weak x3 in one call (max_n 3: the replay draws three different recorded samples), strong x1."""
    return Fleet.model_validate({"reference": "strong", "selector": "majority", "models": [
        {"name": "weak", "litellm_model": "replay/weak", "n": [3], "max_n": 3, "expected_output_tokens": 15,
         "price": {"input_per_token": PRICES["weak"][0], "output_per_token": PRICES["weak"][1]}},
        {"name": "strong", "litellm_model": "replay/strong", "n": [1], "expected_output_tokens": 15,
         "price": {"input_per_token": PRICES["strong"][0], "output_per_token": PRICES["strong"][1]}}]})


def llm(paths: dict[str, Path], **kw) -> ChatAdaptiveRouter:
    return ChatAdaptiveRouter(fleet=fleet(), router=str(paths["router"]),
                              cascade={"verifier": "agreement", "accept": 0.6}, **kw)


async def test_escalates_and_reports_every_step(paths, tmp_path) -> None:
    model = llm(paths, traffic_log=str(tmp_path / "traffic.jsonl"))
    msg = await model.ainvoke(DISAGREE)
    meta = msg.response_metadata
    steps = meta["cascade"]["steps"]
    assert [s["candidate"] for s in steps] == ["weak#3", "strong#1"]
    assert steps[0]["verifier_score"] == 0.0 and meta["cascade"]["accepted_step"] == 1
    assert msg.content == RECORDED[DISAGREE][2][0] and meta["candidate"] == "strong#1"
    want = weak_cost(DISAGREE) + strong_cost(DISAGREE)
    assert meta["cost_usd"] == pytest.approx(want)
    assert [s["cost_usd"] for s in steps] == pytest.approx([weak_cost(DISAGREE), strong_cost(DISAGREE)])
    ptok, weak, strong = RECORDED[DISAGREE]
    assert msg.usage_metadata["input_tokens"] == 2 * ptok
    assert msg.usage_metadata["output_tokens"] == sum(k for _, k in weak) + strong[1]
    line = next(iter(read_traffic_log(tmp_path / "traffic.jsonl")))
    assert line.decision["candidate"] == "weak#3" and line.cost_usd == pytest.approx(want)
    assert [s["candidate"] for s in line.cascade["steps"]] == ["weak#3", "strong#1"]


def test_sync_invoke_accepts_agreeing_samples(paths) -> None:
    msg = llm(paths).invoke(AGREE)
    steps = msg.response_metadata["cascade"]["steps"]
    assert [s["candidate"] for s in steps] == ["weak#3"] and steps[0]["accepted"] is True
    assert msg.response_metadata["cost_usd"] == pytest.approx(weak_cost(AGREE))
    assert msg.content.endswith("The answer is 12.")


async def test_accept_per_call_and_configurable(paths) -> None:
    model = llm(paths)
    msg = await model.ainvoke(DISAGREE, accept=0.0)
    assert [s["candidate"] for s in msg.response_metadata["cascade"]["steps"]] == ["weak#3"]
    tunable = model.configurable_fields(accept=ConfigurableField(id="accept"))
    msg = await tunable.with_config(configurable={"accept": 0.0}).ainvoke(DISAGREE)
    assert msg.response_metadata["cascade"]["accept"] == 0.0
    with pytest.raises(InvalidRequestError, match="accept"):
        await model.ainvoke(DISAGREE, accept=2.0)


async def test_streams_and_pins_are_routed_before_the_call(paths) -> None:
    model = llm(paths)
    chunks = [c async for c in model.astream(AGREE)]
    assert all("cascade" not in c.response_metadata for c in chunks)
    msg = await model.ainvoke(DISAGREE, model="weak")
    assert "cascade" not in msg.response_metadata and msg.response_metadata["candidate"] == "weak#3"


async def test_accept_without_cascade_is_an_error(paths) -> None:
    plain = ChatAdaptiveRouter(fleet=fleet(), router=str(paths["router"]))
    with pytest.raises(InvalidRequestError, match="no cascade"):
        await plain.ainvoke(AGREE, accept=0.5)


async def test_judge_verifier_through_litellm(paths) -> None:
    """``judge:replay/judge``: the core's LLM judge, called with ``litellm.acompletion``."""
    model = ChatAdaptiveRouter(fleet=fleet(), router=str(paths["router"]),
                               cascade={"verifier": "judge:replay/judge", "accept": 0.5})
    msg = await model.ainvoke(DISAGREE)
    steps = msg.response_metadata["cascade"]["steps"]
    assert msg.response_metadata["cascade"]["verifier"] == "judge(replay/judge)"
    assert [s["verifier_score"] for s in steps] == [0.0, 1.0]  # "no" x3 on weak, "yes" x3 on strong
    msg = await model.ainvoke(AGREE)
    assert [s["candidate"] for s in msg.response_metadata["cascade"]["steps"]] == ["weak#3"]


def test_the_router_checkpoints_default_knob_when_no_knob_is_set(paths) -> None:
    """Like the plugin: without a knob field or a per-call knob, the router's validated
    ``default_knob`` (``adaptive-router train``) decides; a field or a call knob wins."""
    from cascade_fixtures import PRIORS
    from langchain_core.messages import HumanMessage

    from adaptive_router.routers.prior import PriorRouter

    router = PriorRouter(list(PRIORS), PRIORS)
    router.default_knob = {"threshold": 0.8}
    msgs = [HumanMessage(AGREE)]
    assert ChatAdaptiveRouter(fleet=fleet(), router=router).decide(msgs).candidate.key == "strong#1"
    assert ChatAdaptiveRouter(fleet=fleet(), router=router, threshold=0.5).decide(msgs).candidate.key == "weak#3"
    assert ChatAdaptiveRouter(fleet=fleet(), router=router).decide(msgs, threshold=0.5).candidate.key == "weak#3"
