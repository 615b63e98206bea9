"""Pure pieces of the LiteLLM plugin: prices from model_info, token apportioning, n = 1 fleets,
Responses API input, stream chunk reading."""

from __future__ import annotations

from pathlib import Path

import pytest
from adaptive_router.integrations.litellm_plugin.api_adapters import (
    anthropic_input_messages,
    responses_input_messages,
)
from adaptive_router.integrations.litellm_plugin.runtime import (
    fleet_with_deployment_prices,
    per_sample_tokens,
)
from adaptive_router.integrations.litellm_plugin.streams import attach_to_stream_end, chunk_text_and_usage
from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices, Usage

from adaptive_router.domain import Fleet
from adaptive_router.errors import InvalidRequestError
from adaptive_router.service import n1_fleet

ROOT = Path(__file__).resolve().parents[2]


def test_prices_come_from_model_info_unless_the_fleet_sets_one() -> None:
    fleet = Fleet.from_dict({"models": [
        {"name": "a", "litellm_model": "group-a"},
        {"name": "b", "litellm_model": "group-b", "price": {"input_per_million": 1, "output_per_million": 2}},
    ]})
    model_list = [{"model_name": "group-a", "litellm_params": {"model": "replay/a"},
                   "model_info": {"input_cost_per_token": 3e-6, "output_cost_per_token": 4e-6}},
                  {"model_name": "group-b", "litellm_params": {"model": "replay/b"},
                   "model_info": {"input_cost_per_token": 9, "output_cost_per_token": 9}}]
    priced = fleet_with_deployment_prices(fleet, model_list).prices()
    assert (priced["a"].input_per_token, priced["a"].output_per_token) == (3e-6, 4e-6)
    assert priced["b"].output_per_token == pytest.approx(2e-6)  # the fleet's own price wins


def test_n1_fleet_keeps_single_sample_candidates() -> None:
    fleet = Fleet.from_yaml(ROOT / "examples/litellm/fleet.yaml")
    assert n1_fleet(fleet).candidate_keys == ["gpt-4o#1", "gpt-4o-mini#1"]
    only_many = Fleet.from_dict({"models": [{"name": "a", "n": [3]}]})
    assert n1_fleet(only_many) is None


def _response(hidden: dict):
    """A real LiteLLM response carrying ``hidden`` as its ``_hidden_params``."""
    import litellm

    response = litellm.ModelResponse()
    response._hidden_params = hidden
    return response


def test_per_sample_tokens_exact_or_apportioned_to_the_bill() -> None:
    texts = ["short", "a much longer answer than the first one"]
    exact, note = per_sample_tokens(_response({"adaptive_router_output_tokens": [3, 9]}), texts, None, 12)
    assert exact == [3, 9] and note is None
    split, note = per_sample_tokens(_response({}), texts, None, 20)
    assert sum(split) == 20 and split[1] > split[0] and "apportioned" in note
    one, note = per_sample_tokens(_response({}), texts[:1], None, 7)
    assert one == [7] and note is None


def test_responses_input_as_messages() -> None:
    msgs = responses_input_messages({"instructions": "Be brief.", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]})
    assert msgs == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    with pytest.raises(InvalidRequestError, match="no input"):
        responses_input_messages({"input": []})


def test_stream_end_carries_the_report() -> None:
    text = ModelResponseStream(choices=[StreamingChoices(index=0, delta=Delta(content="Hi"))])
    end = ModelResponseStream(choices=[StreamingChoices(index=0, delta=Delta(), finish_reason="stop")])
    usage_chunk = ModelResponseStream(choices=[])
    usage_chunk.usage = Usage(prompt_tokens=3, completion_tokens=1, total_tokens=4)
    assert chunk_text_and_usage(text) == ("Hi", None, False)
    assert chunk_text_and_usage(end)[2] is True
    assert chunk_text_and_usage(usage_chunk)[1].completion_tokens == 1
    # the plugin asked for usage: the finish chunk gets it (the usage-only chunk is dropped)
    attach_to_stream_end([end, usage_chunk], {"n": 1}, usage_chunk.usage, injected=True)
    assert end.adaptive_router == {"n": 1} and end.usage.total_tokens == 4
    # the client asked for usage: its usage chunk carries the report
    end2 = ModelResponseStream(choices=[StreamingChoices(index=0, delta=Delta(), finish_reason="stop")])
    attach_to_stream_end([end2, usage_chunk], {"n": 2}, usage_chunk.usage, injected=False)
    assert usage_chunk.adaptive_router == {"n": 2} and not hasattr(end2, "adaptive_router")


def test_anthropic_input_as_messages() -> None:
    msgs = anthropic_input_messages({"system": [{"type": "text", "text": "Be brief."}], "messages": [
        {"role": "user", "content": "Read the file."},
        {"role": "assistant", "content": [{"type": "text", "text": "Reading."},
                                          {"type": "tool_use", "id": "t1", "name": "read", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": [{"type": "text", "text": "def f(): pass"}]}]}]})
    assert msgs[0] == {"role": "system", "content": "Be brief."}
    assert msgs[2]["content"] == "Reading.\n[tool call: read]"
    assert msgs[3] == {"role": "user", "content": "def f(): pass"}  # a tool-result turn is routable
    with pytest.raises(InvalidRequestError, match="non-empty list"):
        anthropic_input_messages({"messages": []})
