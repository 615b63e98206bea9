"""Fallback order: the policy's next choices among the candidates left, within the budget."""

from __future__ import annotations

import asyncio

import pytest

from adaptive_router.domain import Candidate
from adaptive_router.errors import InvalidRequestError, SamplingError
from adaptive_router.failover import acall_with_failover, as_litellm_fallbacks, failover_candidates
from adaptive_router.policy import BudgetPolicy, EpsilonExploration, ThresholdPolicy

PREDS = {"small#1": 0.55, "small#3": 0.7, "medium#1": 0.8, "large#1": 1.0}
COSTS = {"small#1": 0.0001, "small#3": 0.0003, "medium#1": 0.002, "large#1": 0.02}


def decide(policy):
    return policy.decide(PREDS, COSTS, router="test")


def test_threshold_fallback_is_the_policys_next_choice_without_the_failed_model() -> None:
    policy = ThresholdPolicy(0.65)
    d = decide(policy)
    assert d.candidate.key == "small#3"
    # small failed: every small candidate is skipped; the cheapest >= 0.65 left is medium
    assert [c.key for c in failover_candidates(d, policy)] == ["medium#1", "large#1"]


def test_without_a_policy_the_best_predicted_comes_first() -> None:
    d = decide(ThresholdPolicy(0.65))
    assert [c.key for c in failover_candidates(d)] == ["large#1", "medium#1"]


def test_budget_caps_the_fallbacks() -> None:
    policy = BudgetPolicy(0.003)
    d = decide(policy)
    assert d.candidate.key == "medium#1"
    # large is over the budget and never tried; small fits
    assert [c.key for c in failover_candidates(d, policy)] == ["small#3", "small#1"]
    assert [c.key for c in failover_candidates(d, ThresholdPolicy(0.5), budget_usd=0.0002)] == ["small#1"]
    with pytest.raises(InvalidRequestError, match="budget"):
        failover_candidates(d, budget_usd=-1)


def test_exploring_policy_falls_back_like_its_base_and_max_fallbacks_caps() -> None:
    policy = EpsilonExploration(ThresholdPolicy(0.65), epsilon=1.0, seed=0)
    d = decide(ThresholdPolicy(0.65))
    assert [c.key for c in failover_candidates(d, policy, max_failovers=1)] == ["medium#1"]
    assert failover_candidates(d, policy, max_failovers=0) == []


def test_litellm_fallbacks_carry_group_and_n() -> None:
    cands = [Candidate(model="medium", n=1), Candidate(model="small", n=3)]
    assert as_litellm_fallbacks(cands, lambda m: f"group-{m}") == [
        {"model": "group-medium", "n": 1}, {"model": "group-small", "n": 3}]


def test_call_with_fallback_moves_on_after_an_error_and_a_timeout(caplog) -> None:
    policy = ThresholdPolicy(0.65)
    d = decide(policy)
    calls: list[str] = []

    async def call(c: Candidate) -> str:
        calls.append(c.key)
        if c.model == "small":
            raise ConnectionError("connection refused")
        if c.model == "medium":
            await asyncio.sleep(5)
        return f"answer from {c.key}"

    with caplog.at_level("WARNING"):
        res = asyncio.run(acall_with_failover(d, call, policy, timeout_s=0.2))
    assert res.value == "answer from large#1"
    assert res.candidate.key == "large#1"
    assert calls == ["small#3", "medium#1", "large#1"]
    assert [a["error"] for a in res.attempts] == ["ConnectionError", "timeout"]
    assert res.failed_over
    assert "falling back" in caplog.text


def test_call_with_fallback_reports_every_failure_when_all_fail() -> None:
    policy = ThresholdPolicy(0.65)
    d = decide(policy)

    async def call(c: Candidate) -> str:
        raise RuntimeError(f"{c.model} down")

    with pytest.raises(SamplingError, match="small#3: RuntimeError; medium#1: RuntimeError; large#1"):
        asyncio.run(acall_with_failover(d, call, policy))


def test_call_with_fallback_without_failure_has_no_attempts() -> None:
    d = decide(ThresholdPolicy(0.65))

    async def call(c: Candidate) -> str:
        return c.key

    res = asyncio.run(acall_with_failover(d, call))
    assert res.value == "small#3" and not res.failed_over


def _service():
    """The real routing service over a fleet of the test's models (each served by a LiteLLM
    model group of its own), with the ``cheapest`` baseline router. It explores every request
    (epsilon 1), so the test can check that planning fallbacks draws no exploration seed."""
    from adaptive_router.domain import Fleet
    from adaptive_router.routers.baselines import CheapestRouter
    from adaptive_router.service import RoutingService

    fleet = Fleet.from_dict({"models": [
        {"name": name, "litellm_model": f"{name}-group", "n": n,
         "price": {"input_per_million": price, "output_per_million": price}}
        for name, n, price in (("small", [1, 3], 0.1), ("medium", [1], 1.0), ("large", [1], 10.0))]})
    return RoutingService(fleet, CheapestRouter.for_fleet(fleet), explore_epsilon=1.0, explore_seed=0,
                          count_tokens=False)


def _response(group):
    """A LiteLLM response as the proxy returns it, naming the model group that served it."""
    import litellm

    response = litellm.ModelResponse(model=group)
    response._hidden_params = {"additional_headers": {"x-litellm-model-group": group}}
    return response


def test_litellm_plan_and_accounting_of_a_fallback() -> None:
    from adaptive_router.integrations.litellm_plugin.failover import (
        account_failover,
        plan_failover,
        served_failover,
        served_group,
    )

    rt = _service()
    seeds: list[object] = []
    draw = rt._next_seed
    rt._next_seed = lambda: seeds.append(1) or draw()  # type: ignore[method-assign]
    d = decide(ThresholdPolicy(0.65))
    plan = plan_failover(rt, d, {"threshold": 0.65})
    assert plan == [{"model": "medium-group", "n": 1}, {"model": "large-group", "n": 1}]
    assert seeds == []  # the fallback order never explores
    assert isinstance(rt.policy_for({"threshold": 0.65}), EpsilonExploration) and seeds == [1]
    assert served_group(_response("small-group")) == "small-group"
    assert served_group(object()) is None
    assert served_failover(_response("small-group"), "small-group", plan) is None  # no fallback
    entry = served_failover(_response("large-group"), "small-group", plan)
    assert entry == {"model": "large-group", "n": 1}
    served, group = account_failover(rt, d, "small-group", entry)
    assert served.candidate.key == "large#1" and group == "large-group"
    assert "failover: small#3 failed, served by large#1" in served.reason
    assert served.predictions == d.predictions  # what the router said is kept
