"""The core routing service on its own (no LiteLLM, no LangChain): decide, select, cost, the
cascade with a draw callback over recorded answers, the traffic log line."""

from __future__ import annotations

import asyncio

import pytest

from adaptive_router.cascade import DrawnStep
from adaptive_router.domain import Candidate, Fleet
from adaptive_router.errors import InvalidRequestError
from adaptive_router.policy import merge_knob
from adaptive_router.routers.prior import PriorRouter
from adaptive_router.service import CascadeConfig, RoutingService
from adaptive_router.traffic import TrafficLogWriter, read_traffic_log

PRIORS = {"weak#3": 0.6, "strong#1": 0.9}
RECORDED = {  # prompt -> model -> samples (each "The answer is X.")
    "What is 6 times 7?": {"weak": ["The answer is 42.", "The answer is 48.", "The answer is 36."],
                           "strong": ["6 x 7 = 42. The answer is 42."]},
    "What is 2 plus 2?": {"weak": ["The answer is 4.", "2 + 2 = 4. The answer is 4.", "The answer is 4."],
                          "strong": ["The answer is 4."]},
}


def fleet() -> Fleet:
    return Fleet.from_dict({"reference": "strong", "selector": "majority", "models": [
        {"name": "weak", "n": [3], "expected_output_tokens": 10,
         "price": {"input_per_million": 0.1, "output_per_million": 0.4}},
        {"name": "strong", "n": [1], "expected_output_tokens": 10,
         "price": {"input_per_million": 2.5, "output_per_million": 10.0}}]})


def service(**kw) -> RoutingService:
    return RoutingService(fleet(), PriorRouter(list(PRIORS), PRIORS), count_tokens=False, **kw)


def step(svc: RoutingService, prompt: str, cand: Candidate) -> DrawnStep:
    """Draw a step from the recordings: select, price (10 prompt tokens, 5 per sample)."""
    texts = RECORDED[prompt][cand.model][: cand.n]
    sel = svc.select(prompt, texts)
    cost = svc.realised_cost(cand.model, 10, [5] * len(texts), sel)
    return DrawnStep(samples=texts, cost=cost, chosen_index=sel.index, selector=sel.selector,
                     selector_scores=list(sel.scores), group=cand.model)


def run(svc: RoutingService, prompt: str, knob: dict):
    policy = svc.cascade_policy(knob)
    plan = svc.plan_cascade(svc.decide(prompt, {**knob, "epsilon": 0.0}), knob, policy)

    async def draw(cand: Candidate, index: int) -> DrawnStep:
        return step(svc, prompt, cand)

    return plan, asyncio.run(svc.arun_cascade(prompt, plan, step(svc, prompt, plan.steps[0]), draw))


def test_decide_with_the_default_knob_and_a_request_knob() -> None:
    svc = service()
    assert svc.decide("What is 2 plus 2?", {}).candidate.key == "weak#3"  # threshold 0.5
    assert svc.decide("What is 2 plus 2?", {"threshold": 0.8}).candidate.key == "strong#1"
    assert merge_knob({"threshold": 0.3, "accept": 0.7}, {"budget_usd": 1.0}) == \
        {"accept": 0.7, "budget_usd": 1.0}


def test_cascade_escalates_on_disagreement_and_pays_every_step() -> None:
    svc = service(cascade=CascadeConfig(verifier="agreement", accept=0.6))
    plan, served = run(svc, "What is 6 times 7?", {})
    out = served.outcome
    assert [s.candidate.key for s in out.steps] == ["weak#3", "strong#1"] and out.accepted_step == 1
    weak = 10 * 0.1e-6 + 15 * 0.4e-6
    strong = 10 * 2.5e-6 + 5 * 10e-6
    assert out.total_cost_usd == pytest.approx(weak + strong)
    _, served = run(svc, "What is 2 plus 2?", {})
    assert [s.candidate.key for s in served.outcome.steps] == ["weak#3"]
    _, served = run(svc, "What is 6 times 7?", {"accept": 0.0})  # the request's knob
    assert len(served.outcome.steps) == 1 and served.outcome.accept == 0.0


def test_accept_without_a_cascade_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="accept"):
        service().cascade_policy({"accept": 0.5})


def test_log_line_with_the_cascade(tmp_path) -> None:
    from adaptive_router.served_cascade import cascade_report

    writer = TrafficLogWriter(tmp_path / "traffic.jsonl")
    svc = service(cascade=CascadeConfig(), traffic_log=writer)
    plan, served = run(svc, "What is 6 times 7?", {})
    first = served.outcome.steps[0].drawn
    report = cascade_report(served, plan.propensities)
    svc.write_log(svc.log_line(
        request_id="r1", decision=plan.decision, prompt="What is 6 times 7?", messages=None,
        samples=first.samples, scores=first.selector_scores, chosen_index=first.chosen_index,
        prompt_tokens=10, output_tokens=[5, 5, 5], cost_usd=served.outcome.total_cost_usd,
        latency_s=0.01, group="weak", cascade=report))
    line = next(iter(read_traffic_log(tmp_path / "traffic.jsonl")))
    assert line.decision["candidate"] == "weak#3" and line.cascade["served_step"] == 2
    assert [s["propensity"] for s in line.cascade["steps"]] == [1.0, 1.0]


def test_a_fallback_to_a_dearer_candidate_skips_the_steps_it_covers() -> None:
    svc = service(cascade=CascadeConfig())
    plan = svc.plan_cascade(svc.decide("What is 2 plus 2?", {"epsilon": 0.0}), {}, svc.cascade_policy({}))
    assert plan.keys == ["weak#3", "strong#1"]
    served_by_strong = plan.decision.model_copy(update={"candidate": Candidate.from_key("strong#1")})
    again = plan.served_by(served_by_strong)
    assert again.keys == ["strong#1"] and again.propensities == [1.0]
    assert plan.served_by(plan.decision).keys == ["weak#3", "strong#1"]


def test_cascade_steps_must_be_fleet_candidates() -> None:
    from adaptive_router.errors import ConfigError

    with pytest.raises(ConfigError, match="not fleet candidates"):
        service(cascade=CascadeConfig(steps=("weak#5", "strong#1")))
