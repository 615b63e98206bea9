"""Best-of-n: selectors, the BestOfN runner (scores, cost, latency, fallbacks), executing a
decision on the real local SmolLM2 fleet, and `route --execute` through the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from adaptive_router.best_of_n import BestOfN, select_best
from adaptive_router.domain import Candidate, Decision, Fleet, Price
from adaptive_router.errors import ConfigError
from adaptive_router.reward import RewardModel
from adaptive_router.samplers import SampleBatch, Sampler
from adaptive_router.samplers.base import Messages


class ScriptedSampler(Sampler):
    """A test double that follows the Sampler contract: returns scripted texts and counts."""

    model = "scripted"

    def __init__(self, texts: Sequence[str], prompt_tokens: int = 12) -> None:
        self.texts = list(texts)
        self.prompt_tokens = prompt_tokens

    def _sample(self, messages: Messages, n: int, **gen) -> SampleBatch:  # noqa: ANN003
        texts = self.texts[:n]
        return SampleBatch(texts=texts, prompt_tokens=self.prompt_tokens,
                           output_tokens=[len(t.split()) for t in texts], model=self.model)


class WordCountReward(RewardModel):
    """Scores a response by how many words it has (a transparent test double)."""

    cost_per_pair_usd = 0.001

    def _score(self, prompts, responses) -> np.ndarray:  # noqa: ANN001
        return np.array([len(r.split()) for r in responses], dtype=float)


class BrokenReward(RewardModel):
    def _score(self, prompts, responses) -> np.ndarray:  # noqa: ANN001
        raise RuntimeError("GPU fell over")


PRICE = Price(input_per_token=1e-6, output_per_token=2e-6)
TEXTS = ["short", "a much longer answer here", "mid size answer"]


def test_select_best_selectors_still_work() -> None:
    assert select_best("p", TEXTS, "reward", WordCountReward()).index == 1
    assert select_best("p", TEXTS, "first").index == 0
    maj = select_best("p", ["The answer is 3.", "The answer is 4.", "so the answer is 4"], "majority")
    assert maj.index == 1
    with pytest.raises(ConfigError):
        select_best("p", [], "first")


def test_best_of_n_keeps_the_argmax_and_prices_prompt_once() -> None:
    bon = BestOfN(ScriptedSampler(TEXTS), PRICE, selector="reward", reward_model=WordCountReward())
    res = bon.run("Explain.", n=3)
    assert res.best_index == 1 and res.best_text == TEXTS[1]
    assert res.texts == TEXTS and res.scores == [1.0, 5.0, 3.0]
    assert res.cost.prompt_tokens == 12 and res.cost.output_tokens == [1, 5, 3]
    expected = 12 * 1e-6 + 9 * 2e-6 + 3 * 0.001  # prompt once, every output, 3 scored pairs
    assert res.cost.total_usd == pytest.approx(expected)
    assert res.reward_latency_s >= 0 and res.sampling_latency_s >= 0
    d = res.as_dict()
    assert d["chosen_sample"] == TEXTS[1] and d["reward_scores"] == [1.0, 5.0, 3.0]
    assert len(d["samples"]) == 3 and d["cost_usd"] == pytest.approx(expected)


def test_best_of_n_falls_back_to_the_first_sample_when_the_reward_model_fails() -> None:
    res = BestOfN(ScriptedSampler(TEXTS), PRICE, reward_model=BrokenReward()).run("q", n=3)
    assert res.best_index == 0 and "GPU fell over" in res.selection.selection_fallback
    assert res.cost.reward_cost_usd == 0.0


async def test_best_of_n_async_and_majority() -> None:
    texts = ["The answer is 7.", "I think the answer is 8.", "Therefore the answer is 8."]
    res = await BestOfN(ScriptedSampler(texts), PRICE, selector="majority").arun("q", n=3)
    assert res.best_index == 1 and res.selection.selector == "majority"


def test_best_of_n_rejects_unknown_selector() -> None:
    with pytest.raises(ConfigError):
        BestOfN(ScriptedSampler(TEXTS), PRICE, selector="vibes")


def _local_fleet(tmp_path, selector: str = "majority") -> tuple[Fleet, str]:
    data = {"reference": "careful", "selector": selector, "models": [
        {"name": "quick", "litellm_model": "local/smollm2-135m-instruct",
         "sampler_options": {"max_new_tokens": 6, "seed": 0},
         "price": {"input_per_million": 0.02, "output_per_million": 0.08}, "n": [1, 2]},
        {"name": "careful", "litellm_model": "local/smollm2-135m-instruct",
         "sampler_options": {"max_new_tokens": 12, "temperature": 0.3, "seed": 0},
         "price": {"input_per_million": 0.1, "output_per_million": 0.6}, "n": [1]}]}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(data))
    return Fleet.from_yaml(path), str(path)


def test_execute_decision_on_the_local_model(tmp_path) -> None:
    from adaptive_router.execute import execute_decision

    fleet, _ = _local_fleet(tmp_path)
    decision = Decision(candidate=Candidate(model="quick", n=2), predictions={"quick#2": 0.9},
                        expected_costs_usd={"quick#2": 1e-6}, policy="threshold(0.5)", reason="t")
    out = execute_decision(fleet, decision, "What is 3 + 4?")
    assert out["model"] == "quick" and out["n"] == 2 and len(out["samples"]) == 2
    tokens = out["cost"]
    assert tokens["prompt_tokens"] > 5 and len(tokens["output_tokens"]) == 2
    expected = tokens["prompt_tokens"] * 0.02e-6 + sum(tokens["output_tokens"]) * 0.08e-6
    assert out["cost_usd"] == pytest.approx(expected)
    assert out["chosen_sample"] == out["samples"][out["chosen_index"]]["text"]


def test_route_execute_cli_prints_samples_scores_and_cost(tmp_path) -> None:
    from adaptive_router.cli import app

    _, path = _local_fleet(tmp_path, selector="first")
    res = CliRunner().invoke(app, ["route", "Say hello.", "--fleet", path, "--router", "cheapest",
                                   "--execute", "--no-count-tokens"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["candidate"] == "quick#1"
    ex = out["execution"]
    assert ex["n"] == 1 and ex["chosen_index"] == 0 and ex["cost_usd"] > 0
