"""Prices from LiteLLM's map, overrides, and the best-of-n cost formula, by hand."""

from __future__ import annotations

import pytest

from adaptive_router.cost import CostModel
from adaptive_router.domain import Candidate, CostBreakdown, Fleet, Price
from adaptive_router.errors import PriceNotFoundError
from adaptive_router.pricing import lookup_price


def test_gpt4o_price_from_bundled_map():
    # LiteLLM's map: gpt-4o is $2.50 / M input, $10.00 / M output.
    assert lookup_price("gpt-4o") == pytest.approx((2.5e-6, 1e-5))
    assert lookup_price("openai/gpt-4o") == pytest.approx((2.5e-6, 1e-5))


def test_best_of_n_cost_counts_prompt_once_and_every_sample():
    # gpt-4o, 1,000 prompt tokens, 3 samples of 500 output tokens:
    # 1000 x 2.5e-6 = $0.0025 once, plus 3 x 500 x 1e-5 = $0.015 -> $0.0175.
    cost = CostBreakdown.compute("gpt-4o", Price.from_litellm("gpt-4o"), 1000, [500, 500, 500])
    assert cost.input_cost_usd == pytest.approx(0.0025)
    assert cost.output_cost_usd == pytest.approx(0.015)
    assert cost.total_usd == pytest.approx(0.0175)
    assert cost.n == 3 and cost.total_output_tokens == 1500


def test_price_override_per_million_and_litellm_keys():
    assert Price(input_per_million=0.18, output_per_million=0.6).output_per_token == pytest.approx(6e-7)
    p = Price.model_validate({"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6})
    assert p.cost(10, 5) == pytest.approx(2e-5)


def test_unknown_model_without_price_says_how_to_fix():
    fleet = Fleet.from_dict({"models": [{"name": "my-private-llm"}]})
    with pytest.raises(PriceNotFoundError) as exc:
        fleet.prices()
    msg = str(exc.value)
    assert "my-private-llm" in msg and "input_per_million" in msg and "model_info" in msg


def test_expected_cost_of_candidates(repo_root):
    fleet = Fleet.from_yaml(repo_root / "examples" / "fleet.yaml")
    cm = CostModel(fleet, count_tokens=False)
    prompt = "x" * 400  # 100 tokens under the len/4 estimate
    costs = cm.expected_costs(prompt)
    # gpt-4o-mini ($0.15 / $0.60 per M), 350 expected output tokens per sample, n = 3
    assert costs["gpt-4o-mini#3"] == pytest.approx(100 * 0.15e-6 + 3 * 350 * 0.6e-6)
    # llama priced in the fleet file: $0.18 / M both ways, 400 output tokens, n = 5
    assert costs["llama-3.1-8b#5"] == pytest.approx(100 * 0.18e-6 + 5 * 400 * 0.18e-6)
    assert cm.expected_cost(Candidate(model="gpt-4o", n=1), 100) == costs["gpt-4o#1"]


def test_token_counting_is_offline_and_positive():
    from adaptive_router.pricing import counter_for

    n = counter_for("gpt-4o").count_text("Prove that sqrt(2) is irrational.")
    assert 5 <= n <= 15


def test_models_counted_alike_share_one_prompt_count(monkeypatch):
    """gpt-4o and gpt-4o-mini use one tiktoken encoding: one count serves both; gpt-4 (another
    encoding) is counted on its own; the counts equal per-model counting."""
    from adaptive_router.pricing import TokenCounter, counter_for

    fleet = Fleet.from_dict({"reference": "gpt-4o", "models": [
        {"name": "gpt-4o"}, {"name": "gpt-4o-mini", "n": [1, 3]}, {"name": "gpt-4"}]})
    assert counter_for("gpt-4o").share_key() == counter_for("gpt-4o-mini").share_key()
    assert counter_for("gpt-4o").share_key() != counter_for("gpt-4").share_key()
    calls: list[str] = []
    real = TokenCounter.count_messages

    def counting(self, messages):
        calls.append(self.model)
        return real(self, messages)

    monkeypatch.setattr(TokenCounter, "count_messages", counting)
    chat = [{"role": "user", "content": "How many primes are below 100?"}]
    costs = CostModel(fleet).expected_costs(chat)
    assert sorted(calls) == ["gpt-4", "gpt-4o"]
    per_model = {m: real(counter_for(m), chat) for m in ("gpt-4o", "gpt-4o-mini", "gpt-4")}
    for key, value in costs.items():
        cand = Candidate.from_key(key)
        assert value == pytest.approx(CostModel(fleet).expected_cost(cand, per_model[cand.model]))
