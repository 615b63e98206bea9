"""ChatAdaptiveRouter over real local models and real routers: every entry point, the knob through
``with_config``, best-of-n, callbacks, tools, LiteLLM names, and cost figures checked by hand."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from adaptive_router.integrations.langchain_plugin.chat import ChatAdaptiveRouter
from adaptive_router.integrations.langchain_plugin.local import ChatLocalModel
from adaptive_router.integrations.langchain_plugin.reporting import DECISION_EVENT
from adaptive_router.integrations.langchain_plugin.sampling import call_plan, split_total
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import ConfigurableField
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ValidationError

from adaptive_router.domain import Fleet
from adaptive_router.errors import InvalidRequestError
from adaptive_router.local_models import load_local_model
from adaptive_router.reward import RewardModel
from adaptive_router.routers import load_router
from adaptive_router.traffic import read_traffic_log, traffic_to_records

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAX_TOKENS = 8
# prices per token, typed here by hand (the fleet below quotes them per million)
SMALL_IN, SMALL_OUT = 0.10e-6, 0.40e-6
LARGE_IN, LARGE_OUT = 2.50e-6, 10.00e-6


def fleet(selector: str = "first", extra: list[dict] | None = None) -> Fleet:
    return Fleet.from_dict({
        "reference": "large", "selector": selector,
        "models": [
            {"name": "small", "n": [1, 3], "expected_output_tokens": MAX_TOKENS,
             "price": {"input_per_million": 0.10, "output_per_million": 0.40}},
            {"name": "large", "n": [1], "expected_output_tokens": MAX_TOKENS,
             "price": {"input_per_million": 2.50, "output_per_million": 10.00}},
            *(extra or []),
        ],
    })


def local_models() -> dict[str, ChatLocalModel]:
    return {"small": ChatLocalModel(temperature=0.9, seed=1), "large": ChatLocalModel(temperature=0.0)}


def prompt_tokens(text: str) -> int:
    """The prompt's length under the local model's chat template, counted independently."""
    return len(load_local_model().encode_messages([{"role": "user", "content": text}]))


class LengthReward(RewardModel):
    """A real (if simple) reward model for tests: longer answers score higher; priced per pair."""

    name = "length"
    cost_per_pair_usd = 1e-6

    def _score(self, prompts, responses) -> np.ndarray:
        return np.array([float(len(r)) for r in responses])


class ToolCallingDouble(BaseChatModel):
    """A deterministic test double that can call tools and has no ``n`` (one sample per call)."""

    @property
    def _llm_type(self) -> str:
        return "tool-double"

    def bind_tools(self, tools, *, tool_choice=None, **kwargs):
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], tool_choice=tool_choice,
                         **kwargs)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        tools = kwargs.get("tools") or []
        calls = [{"name": tools[0]["function"]["name"], "args": {"a": 2, "b": 3}, "id": "call-1"}] if tools else []
        msg = AIMessage(content="" if calls else "plain answer", tool_calls=calls,
                        usage_metadata={"input_tokens": 5, "output_tokens": 7, "total_tokens": 12})
        return ChatResult(generations=[ChatGeneration(message=msg)])


@pytest.fixture(scope="module")
def router() -> ChatAdaptiveRouter:
    f = fleet()
    return ChatAdaptiveRouter(fleet=f, models=local_models(), router=load_router("strongest", f),
                              max_tokens=MAX_TOKENS)


def test_knob_through_with_config_changes_the_decision(router):
    """``strongest`` predicts 1 for large#1 and 0 elsewhere: threshold 0.5 -> large, 0 -> cheapest."""
    tunable = router.configurable_fields(
        threshold=ConfigurableField(id="threshold"), budget_usd=ConfigurableField(id="budget_usd"))
    strict = tunable.with_config(configurable={"threshold": 0.5}).invoke("What is 2 + 2?")
    loose = tunable.with_config(configurable={"threshold": 0.0}).invoke("What is 2 + 2?")
    assert strict.response_metadata["candidate"] == "large#1"
    assert loose.response_metadata["candidate"] == "small#1"
    assert strict.response_metadata["model_name"] == "large"
    assert "threshold(0.5)" in strict.response_metadata["decision"]["policy"]
    # the other knobs, per call: a budget below every candidate's cost falls back to the
    # cheapest, a generous one affords the best predicted; a heavy trade-off prefers cheap
    msgs = [HumanMessage("What is 2 + 2?")]
    assert router.decide(msgs, budget_usd=1e-9).candidate.key == "small#1"
    assert router.decide(msgs, budget_usd=1.0).candidate.key == "large#1"
    assert router.decide(msgs, tradeoff=1000.0).candidate.key == "small#1"


def test_invoke_cost_and_usage_checked_by_hand(router):
    text = "Name a colour."
    msg = router.invoke(text)
    md, usage = msg.response_metadata, msg.usage_metadata
    p = prompt_tokens(text)
    assert md["candidate"] == "large#1" and md["n"] == 1 and md["calls"] == 1
    assert usage["input_tokens"] == p
    assert 1 <= usage["output_tokens"] <= MAX_TOKENS + 1
    assert usage["total_tokens"] == p + usage["output_tokens"]
    assert md["cost_usd"] == pytest.approx(p * LARGE_IN + usage["output_tokens"] * LARGE_OUT)
    assert md["cost"]["prompt_tokens"] == p and md["cost"]["output_tokens"] == [usage["output_tokens"]]
    assert md["usage_source"] == "reported" and msg.content


def test_best_of_n_one_call_prompt_once_and_reward_choice(tmp_path):
    """small#3: three samples from one call (the local model accepts n), the longest kept by the
    reward model; usage sums all three; cost = prompt once + all outputs + the reward model.
    The call lands in the traffic log, which converts to a training Record."""
    f = fleet(selector="reward")
    r = ChatAdaptiveRouter(fleet=f, models=local_models(), router="strongest", max_tokens=MAX_TOKENS,
                           reward_model=LengthReward(), traffic_log=tmp_path / "traffic.jsonl")
    text = "Tell me a fact about cats."
    msg = r.invoke(text, model="small#3")
    md, usage = msg.response_metadata, msg.usage_metadata
    p = prompt_tokens(text)
    outs = md["cost"]["output_tokens"]
    assert md["n"] == 3 and md["samples"] == 3 and md["calls"] == 1 and len(outs) == 3
    assert usage["input_tokens"] == p  # the prompt is paid once: one call with n=3
    assert usage["output_tokens"] == sum(outs)
    scores = md["reward_scores"]
    assert len(scores) == 3 and md["selector"] == "reward"
    assert md["selected_index"] == int(np.argmax(scores))
    assert scores[md["selected_index"]] == len(msg.content)  # the kept sample is the longest
    expected = p * SMALL_IN + sum(outs) * SMALL_OUT + 3 * 1e-6
    assert md["cost_usd"] == pytest.approx(expected)
    assert md["cost"]["reward_cost_usd"] == pytest.approx(3e-6)
    assert "pinned to small#3" in md["decision"]["reason"]
    (line,) = list(read_traffic_log(tmp_path / "traffic.jsonl"))
    assert line.prompt == text and line.decision["candidate"] == "small#3"
    assert line.output_tokens == outs and line.prompt_tokens == p
    assert line.reward_scores == scores and line.chosen_index == md["selected_index"]
    assert line.cost_usd == pytest.approx(expected) and len(line.samples) == 3
    assert len(traffic_to_records([line])) == 1


def test_stream_n1_passes_tokens_through_and_ends_with_cost(router):
    chunks = list(router.stream("Say hello."))
    assert len(chunks) > 2  # really streamed, token by token
    assert chunks[-1].chunk_position == "last"
    assert [c for c in chunks if c.usage_metadata and c.usage_metadata["input_tokens"]].__len__() == 1
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    md = full.response_metadata
    assert md["candidate"] == "large#1" and md["model_name"] == "large"
    u = full.usage_metadata
    assert u["input_tokens"] == prompt_tokens("Say hello.")
    assert md["cost_usd"] == pytest.approx(u["input_tokens"] * LARGE_IN + u["output_tokens"] * LARGE_OUT)


def test_stream_best_of_n_emits_the_chosen_sample_once(router):
    chunks = list(router.stream("Say hello.", model="small#3"))
    assert len(chunks) == 1 and chunks[0].chunk_position == "last"
    md = chunks[0].response_metadata
    assert md["n"] == 3 and md["samples"] == 3
    assert chunks[0].usage_metadata["output_tokens"] == sum(md["cost"]["output_tokens"])


async def test_async_entry_points(router):
    msg = await router.ainvoke("What is 1 + 1?")
    assert msg.response_metadata["candidate"] == "large#1" and msg.content
    outs = await router.abatch(["Hi", "Hey"], config={"max_concurrency": 2})
    assert [o.response_metadata["model_name"] for o in outs] == ["large", "large"]
    chunks = [c async for c in router.astream("Hi", threshold=0.0)]
    assert chunks[-1].response_metadata["candidate"] == "small#1" and len(chunks) > 2


def test_batch_and_chain_with_parser(router):
    outs = router.batch(["Hi", "Hello"], threshold=0.0)
    assert all(o.response_metadata["candidate"] == "small#1" for o in outs)
    chain = ChatPromptTemplate.from_messages([("human", "Answer briefly: {q}")]) | router | StrOutputParser()
    text = chain.invoke({"q": "What colour is the sky?"})
    assert isinstance(text, str) and text


class _Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any, Any]] = []
        self.starts: list[dict[str, Any]] = []

    def on_custom_event(self, name, data, *, run_id, tags=None, metadata=None, **kw) -> None:
        self.events.append((name, data, run_id))

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, tags=None,
                            metadata=None, **kw) -> None:
        self.starts.append({"run_id": run_id, "parent": parent_run_id, "tags": tags or [],
                            "metadata": metadata or {}})


def test_callbacks_see_the_decision_and_the_chosen_model_as_a_child_run(router):
    rec = _Recorder()
    with get_usage_metadata_callback() as usage_cb:
        msg = router.invoke("Hi", config={"callbacks": [rec]})
    # the usage callback sees the router's run (keyed by the fleet model) and the chosen model's
    # own run (keyed by its model name) with the same tokens
    assert usage_cb.usage_metadata["large"] == msg.usage_metadata
    assert usage_cb.usage_metadata["smollm2-135m-instruct"] == msg.usage_metadata
    (name, data, event_run), = rec.events
    assert name == DECISION_EVENT and data["candidate"] == "large#1"
    outer, inner = rec.starts  # the router's run, then the chosen model's
    assert event_run == outer["run_id"]
    assert inner["parent"] == outer["run_id"]
    assert inner["metadata"]["adaptive_router_candidate"] == "large#1"
    assert "adaptive-router:chosen" in inner["tags"]


def test_tools_are_forwarded_and_restrict_the_decision_to_tool_models():
    f = fleet(extra=[{"name": "tooly", "n": [1, 3], "expected_output_tokens": 7,
                      "price": {"input_per_million": 1.0, "output_per_million": 2.0}}])
    models = {**local_models(), "tooly": ToolCallingDouble()}
    r = ChatAdaptiveRouter(fleet=f, models=models, router="strongest")

    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    msg = r.bind_tools([add], tool_choice="any").invoke("What is 2 + 3?")
    md = msg.response_metadata
    assert md["model_name"] == "tooly"  # strongest would pick large, which cannot call tools
    assert "restricted to tool-calling models" in md["decision"]["reason"]
    assert msg.tool_calls[0]["name"] == "add" and msg.tool_calls[0]["args"] == {"a": 2, "b": 3}
    only_local = ChatAdaptiveRouter(fleet=fleet(), models=local_models(), router="strongest")
    with pytest.raises(InvalidRequestError, match="supports tool calling"):
        only_local.bind_tools([add]).invoke("What is 2 + 3?")


def test_model_without_n_gets_n_calls_and_pays_the_prompt_each_time():
    f = fleet(extra=[{"name": "tooly", "n": [1, 3], "expected_output_tokens": 7,
                      "price": {"input_per_million": 1.0, "output_per_million": 2.0}}])
    r = ChatAdaptiveRouter(fleet=f, models={**local_models(), "tooly": ToolCallingDouble()},
                           router="strongest")
    msg = r.invoke("Hi", model="tooly#3")
    md = msg.response_metadata
    assert md["calls"] == 3 and md["samples"] == 3
    assert msg.usage_metadata == {"input_tokens": 15, "output_tokens": 21, "total_tokens": 36}
    assert md["cost_usd"] == pytest.approx(15 * 1e-6 + 21 * 2e-6)


def test_litellm_model_names_are_called_through_litellm():
    """Fleet models served by LiteLLM names, with LiteLLM's mock_response (no network; it reports
    10 prompt / 20 completion tokens per call whatever it returns). OpenAI accepts ``n``: one call
    with n=3. Anthropic does not: three calls, each paying the prompt."""
    haiku = "claude-haiku-4-5"
    f = Fleet.from_dict({"models": [{"name": "gpt-4o-mini", "n": [1, 3]}, {"name": "gpt-4o"},
                                    {"name": haiku, "n": [1, 3]}], "reference": "gpt-4o"})
    r = ChatAdaptiveRouter(fleet=f, router="strongest", litellm_kwargs={"mock_response": "Paris."})
    prices = f.prices()

    one_call = r.invoke("Capital of France?", model="gpt-4o-mini#3")
    md = one_call.response_metadata
    assert one_call.content == "Paris." and md["samples"] == 3 and md["calls"] == 1
    assert one_call.usage_metadata["input_tokens"] == 10 and one_call.usage_metadata["output_tokens"] == 20
    p = prices["gpt-4o-mini"]
    assert md["cost_usd"] == pytest.approx(10 * p.input_per_token + 20 * p.output_per_token)

    three_calls = r.invoke("Capital of France?", model=f"{haiku}#3")
    md = three_calls.response_metadata
    assert md["samples"] == 3 and md["calls"] == 3
    assert three_calls.usage_metadata["input_tokens"] == 30 and three_calls.usage_metadata["output_tokens"] == 60
    p = prices[haiku]
    assert md["cost_usd"] == pytest.approx(30 * p.input_per_token + 60 * p.output_per_token)

    streamed = list(r.stream("Capital of France?"))
    assert "".join(c.content for c in streamed) == "Paris."
    assert streamed[-1].response_metadata["model_name"] == "gpt-4o"


async def test_litellm_async_paths():
    f = Fleet.from_dict({"models": [{"name": "gpt-4o-mini", "n": [1, 3]}, {"name": "gpt-4o"}],
                         "reference": "gpt-4o"})
    r = ChatAdaptiveRouter(fleet=f, router="strongest", litellm_kwargs={"mock_response": "Rome."})
    msg = await r.ainvoke("Capital of Italy?", model="gpt-4o-mini#3")
    assert msg.content == "Rome." and msg.response_metadata["samples"] == 3
    assert msg.usage_metadata == {"input_tokens": 10, "output_tokens": 20, "total_tokens": 30}
    chunks = [c async for c in r.astream("Capital of Italy?")]
    assert "".join(c.content for c in chunks) == "Rome."
    assert chunks[-1].response_metadata["candidate"] == "gpt-4o#1"
    # the mock's stream reports its own usage (it counts the text); the cost uses what it reported
    streamed_out = sum(c.usage_metadata["output_tokens"] for c in chunks if c.usage_metadata)
    assert streamed_out > 0 and chunks[-1].response_metadata["cost"]["output_tokens"] == [streamed_out]


def test_bad_configuration_and_requests_fail_with_the_fix():
    f = fleet()
    with pytest.raises(ValidationError, match="not in the fleet"):
        ChatAdaptiveRouter(fleet=f, models={"nope": ChatLocalModel()}, router="strongest")
    with pytest.raises(ValidationError, match="needs a router"):
        ChatAdaptiveRouter(fleet=f, models=local_models())
    with pytest.raises(ValidationError, match="threshold must be within"):
        ChatAdaptiveRouter(fleet=f, models=local_models(), router="strongest", threshold=2.0)
    with pytest.raises(ValidationError, match="exactly one"):
        ChatAdaptiveRouter(fleet=f, models=local_models(), router="strongest", threshold=0.5,
                           budget_usd=0.01)
    with pytest.raises(ValidationError, match="not a folder with a config.json"):
        ChatAdaptiveRouter(fleet=f, models=local_models(), router="strongest",
                           reward_model="/nonexistent/reward-model")
    r = ChatAdaptiveRouter(fleet=f, models=local_models(), router="strongest")
    with pytest.raises(InvalidRequestError, match="not a fleet model"):
        r.decide([HumanMessage("Hi")], model="gpt-9")
    with pytest.raises(InvalidRequestError, match="no user turn"):
        r.decide([AIMessage("only an assistant turn")])
    with pytest.raises(InvalidRequestError, match="n is decided by the router"):
        r.invoke("Hi", n=3)


def test_call_planning_and_token_splits():
    assert call_plan(3, supports_n=True) == [3]
    assert call_plan(5, supports_n=True, max_n=2) == [2, 2, 1]
    assert call_plan(3, supports_n=False) == [1, 1, 1]
    assert split_total(60, [10, 20, 30]) == [10, 20, 30]
    assert sum(split_total(7, [1, 1, 1])) == 7


@pytest.mark.slow
def test_example_chain_prints_decisions_and_costs(repo_root):
    """``python examples/langchain_chain.py`` runs offline and prints a decision and a dollar
    cost for every call (about 20 s of CPU; slow on a shared machine)."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "examples/langchain_chain.py", "--max-tokens", "8"],
                         cwd=repo_root, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert out.count("decision:") == 5 and out.count("cost:     $") == 5
    assert "via budget($1e-06)" in out and "best-of-3: kept sample" in out
    assert "5 calls, total $" in out
