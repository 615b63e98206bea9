"""Prices from LiteLLM's map, overrides, and the best-of-n cost formula, by hand.

The arithmetic tests give their prices explicitly, so that LiteLLM repricing a model cannot
fail them; one test checks that LiteLLM's map is what a model without a price is priced from."""

from __future__ import annotations

import os

import pytest

from adaptive_router.cost import CostModel
from adaptive_router.domain import Candidate, CostBreakdown, Fleet, Price
from adaptive_router.errors import PriceNotFoundError
from adaptive_router.pricing import lookup_price


def test_unpriced_model_is_priced_from_litellms_map():
    """A model without a ``price:`` is priced from LiteLLM's model map (the bundled copy under
    LITELLM_LOCAL_MODEL_COST_MAP=True), with or without the provider prefix. This checks that the
    map is read, not what LiteLLM currently charges for gpt-4o: the expected values are read
    from ``litellm.model_cost`` itself."""
    import litellm

    entry = litellm.model_cost["gpt-4o"]
    expected = (entry["input_cost_per_token"], entry["output_cost_per_token"])
    assert expected[0] > 0 and expected[1] > 0
    assert lookup_price("gpt-4o") == pytest.approx(expected)
    assert lookup_price("openai/gpt-4o") == pytest.approx(expected)
    assert Price.from_litellm("gpt-4o").input_per_token == pytest.approx(expected[0])


def test_registered_model_is_priced_and_unmapped_names_print_nothing(capsys, monkeypatch):
    """Prices come from LiteLLM's public lookup, so a model added with ``litellm.register_model``
    (as a proxy's ``model_info`` does) is priced; an entry without flat token prices and a name
    LiteLLM cannot place raise our error, and stdout stays clean (the CLI prints JSON there)."""
    import litellm

    monkeypatch.setattr(litellm, "model_cost", dict(litellm.model_cost))
    litellm.register_model({"openai/test-registered-model": {
        "input_cost_per_token": 1.5e-6, "output_cost_per_token": 4.5e-6,
        "litellm_provider": "openai", "mode": "chat"}})
    assert lookup_price("openai/test-registered-model") == pytest.approx((1.5e-6, 4.5e-6))
    # an entry without flat per-token prices (tiered here) is not silently free
    litellm.register_model({"openai/test-tiered-model": {
        "litellm_provider": "openai", "mode": "chat", "tiered_pricing": [
            {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7, "range": [0, 1e6]}]}})
    with pytest.raises(PriceNotFoundError):
        lookup_price("openai/test-tiered-model")
    with pytest.raises(PriceNotFoundError):
        lookup_price("nowhere-provider-xyz/private-model")
    assert capsys.readouterr().out == ""


def test_best_of_n_cost_counts_prompt_once_and_every_sample():
    # $2.50 / M input, $10.00 / M output; 1,000 prompt tokens, 3 samples of 500 output tokens:
    # 1000 x 2.5e-6 = $0.0025 once, plus 3 x 500 x 1e-5 = $0.015 -> $0.0175.
    price = Price(input_per_million=2.5, output_per_million=10.0)
    cost = CostBreakdown.compute("gpt-4o", price, 1000, [500, 500, 500])
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
    # the example prices gpt-4o and gpt-4o-mini from LiteLLM's map: give them explicit prices
    explicit = {"gpt-4o": Price(input_per_million=2.5, output_per_million=10.0),
                "gpt-4o-mini": Price(input_per_million=0.15, output_per_million=0.6)}
    fleet = fleet.model_copy(update={"models": [
        m.model_copy(update={"price": explicit[m.name]}) if m.name in explicit else m
        for m in fleet.models]})
    cm = CostModel(fleet, count_tokens=False)
    prompt = "x" * 400  # 100 tokens under the len/4 estimate
    costs = cm.expected_costs(prompt)
    # gpt-4o-mini ($0.15 / $0.60 per M), 350 expected output tokens per sample, n = 3
    assert costs["gpt-4o-mini#3"] == pytest.approx(100 * 0.15e-6 + 3 * 350 * 0.6e-6)
    # llama priced in the fleet file: $0.18 / M both ways, 400 output tokens, n = 5
    assert costs["llama-3.1-8b#5"] == pytest.approx(100 * 0.18e-6 + 5 * 400 * 0.18e-6)
    assert cm.expected_cost(Candidate(model="gpt-4o", n=1), 100) == costs["gpt-4o#1"]


def test_token_counting_uses_the_real_tokenizer():
    """gpt-4o is counted with its tiktoken encoding (o200k_base, LiteLLM's choice), not the
    ``len // 4`` estimate: for this text the two differ (16 tokens against 7)."""
    import tiktoken

    from adaptive_router.pricing import counter_for

    text = "a b c d e f g h i j k l m n o p"
    counter = counter_for("gpt-4o")
    assert counter.share_key()[:2] == ("tiktoken", "o200k_base")
    n = counter.count_text(text)
    assert n == len(tiktoken.get_encoding("o200k_base").encode(text))
    assert n != len(text) // 4


def test_token_counting_tries_no_network(monkeypatch):
    """Counting for a Llama-family name, whose tokenizer LiteLLM would fetch from the Hugging
    Face hub, stays offline: the counter sets HF_HUB_OFFLINE itself, looks up no host and opens
    no Python socket connection (each raises and is recorded), and finishes in well under the ~20 s of
    download retries an online attempt costs on a machine without network."""
    import socket
    import time

    import litellm.utils

    from adaptive_router import pricing

    tried: list[object] = []

    def no_lookup(host, *args, **kwargs):
        tried.append(host)
        raise OSError(f"test: no network ({host!r})")

    def no_network(self, address, *args, **kwargs):
        tried.append(address)
        raise OSError(f"test: no network ({address!r})")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # forget the process's earlier tokenizer choices, so this count selects (and loads) anew
    monkeypatch.setattr(pricing, "_TOKENIZERS", {})
    litellm.utils._load_huggingface_tokenizer.cache_clear()
    counter = pricing.TokenCounter("together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo")
    started = time.monotonic()
    n = counter.count_text("Prove that sqrt(2) is irrational.")
    elapsed = time.monotonic() - started
    assert n > 0
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    assert tried == []
    assert elapsed < 5.0


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
