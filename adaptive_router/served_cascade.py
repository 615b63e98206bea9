"""Cascades on live traffic: what the LiteLLM proxy, the SDK strategy and LangChain share.

:mod:`adaptive_router.cascade` plans and runs a cascade; serving a request adds three things
that offline evaluation does not need, and that every integration must do the same way:

- **Exploration on the cascade's action.** With a cascade on, the router's action is the plan's
  first step (the rest follows deterministically from the verifier's verdicts). An exploring
  plugin (``epsilon``) replaces that first step by a uniformly drawn candidate and keeps the
  planned steps dearer than it; each step's propensity is recorded, so that off-policy
  estimators read the log as they read pre-call routing.
- **Never failing an answered request.** A verifier that cannot load or score, or an escalation
  call that fails, ends the cascade: the last step drawn is served (step 1's answer when
  escalation failed), every step drawn stays in the cost, and the error is reported in notes.
- **One report.** :func:`cascade_report` is the body's ``cascade`` key and the traffic log line's
  ``cascade`` field: every step's model, n, cost, verifier score, verdict, propensity, samples.

Framework-free: the integration passes ``draw`` (how one step is called and accounted) and the
already-drawn first step.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptive_router.cascade import CascadeOutcome, CascadePolicy, DrawnStep, StepOutcome, arun_cascade
from adaptive_router.domain import Candidate, Decision
from adaptive_router.verifiers.base import Evidence, Verifier


@dataclass
class ServedPlan:
    """A request's cascade: its steps, each step's propensity, and step 1's decision."""

    steps: list[Candidate]
    propensities: list[float]
    decision: Decision
    policy: CascadePolicy

    @property
    def keys(self) -> list[str]:
        return [c.key for c in self.steps]

    def served_by(self, decision: Decision) -> ServedPlan:
        """The plan from the candidate that really served step 1 (a LiteLLM failover may have
        replaced the planned one): a dearer candidate skips the planned steps it already covers."""
        first = decision.candidate
        costs = decision.expected_costs_usd
        rest = [c for c in self.steps[1:]
                if c.key != first.key and costs.get(c.key, np.inf) > costs.get(first.key, 0.0)]
        steps = [first, *rest]
        policy = CascadePolicy(accept=self.policy.accept, max_steps=len(steps),
                               budget_usd=self.policy.budget_usd)
        return ServedPlan(steps=steps, propensities=[self.propensities[0]] + [1.0] * len(rest),
                          decision=decision, policy=policy)


def _trim(keys: list[Candidate], room: int) -> list[Candidate]:
    """At most ``room`` steps, keeping the cheapest ones and the top (as CascadePolicy does)."""
    if room <= 0:
        return []
    return keys if len(keys) <= room else keys[: room - 1] + keys[-1:]


def plan_served_cascade(policy: CascadePolicy, decision: Decision, epsilon: float = 0.0,
                        seed: int | None = None,
                        explore: Mapping[str, float] | None = None) -> ServedPlan:
    """The steps for one request from a (non-exploring) decision's predictions and costs.

    With probability ``epsilon`` step 1 is drawn from ``explore`` (candidate key ->
    probability when exploring; uniform by default, or e.g.
    :meth:`adaptive_router.policy.CostAwareExploration.exploration_distribution`) and the planned
    steps dearer than it follow. Step 1's propensity is
    ``epsilon * explore[step 1] + (1 - epsilon) * [it is the planned step 1]`` (the whole
    distribution goes into the decision's ``propensities``); later steps follow
    deterministically from the verifier's verdicts (propensity 1).
    """
    preds, costs = decision.predictions, decision.expected_costs_usd
    steps = policy.plan(preds, costs)
    planned = steps[0]
    keys = list(costs)
    if explore is None:
        probs = np.full(len(keys), 1.0 / len(keys))
    else:
        probs = np.array([max(0.0, float(explore.get(k, 0.0))) for k in keys])
        probs = probs / probs.sum() if probs.sum() > 0 else np.full(len(keys), 1.0 / len(keys))
    explored = False
    if epsilon > 0:
        rng = np.random.default_rng(seed)
        if rng.random() < epsilon:
            key = keys[int(rng.choice(len(keys), p=probs))]
            if key != planned.key:
                explored = True
                dearer = [c for c in steps if costs[c.key] > costs[key]]
                steps = [Candidate.from_key(key), *_trim(dearer, policy.max_steps - 1)]
    every = {k: float(epsilon * p + (1.0 - epsilon) * (k == planned.key)) for k, p in zip(keys, probs, strict=True)}
    p1 = every[steps[0].key]
    chain = " > ".join(c.key for c in steps)
    reason = (f"exploring (epsilon {epsilon:g}): step 1 {steps[0].key}; cascade {chain}" if explored
              else f"cascade {chain} (router-proposed, cheapest plausible first); "
                   f"pre-call choice would be {decision.candidate.key}")
    update: dict[str, Any] = {"candidate": steps[0], "policy": policy.describe(), "reason": reason,
                              "explored": explored, "propensity": p1}
    if epsilon > 0 and "propensities" in Decision.model_fields:
        update["propensities"] = every
    return ServedPlan(steps=steps, propensities=[p1] + [1.0] * (len(steps) - 1),
                      decision=decision.model_copy(update=update), policy=policy)


def step_decision(plan: ServedPlan, index: int) -> Decision:
    """The decision that describes step ``index`` (its candidate, propensity and place)."""
    if index == 0:
        return plan.decision
    cand = plan.steps[index]
    return plan.decision.model_copy(update={
        "candidate": cand, "explored": False, "propensity": plan.propensities[index],
        "reason": f"cascade step {index + 1} of {len(plan.steps)}: {cand.key} after "
                  f"{plan.steps[index - 1].key} was not accepted"})


@dataclass
class ServedCascade:
    """A run cascade plus what went wrong, if anything (the request is served either way)."""

    outcome: CascadeOutcome
    notes: list[str] = field(default_factory=list)
    error: str | None = None


class _Recording(Verifier):
    """Passes scoring to the real verifier and remembers every score (to report them even when
    a later step fails) and what each scoring cost (an LLM judge's calls are paid for too)."""

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.scores: list[float] = []
        self.costs: list[float] = []
        self.name = inner.name

    def _score_batch(self, evidence: Sequence[Evidence]) -> np.ndarray:  # pragma: no cover - async path
        return self.inner.score_batch(evidence)

    async def ascore(self, evidence: Evidence) -> float:
        score = float(await self.inner.ascore(evidence))
        # read at once: no other task runs between the verifier's return and this line, so a
        # shared judge's ``last_cost_usd`` is this call's even under concurrent requests
        cost = getattr(self.inner, "last_cost_usd", None)
        self.costs.append(float(cost) if isinstance(cost, int | float) else 0.0)
        self.scores.append(score)
        return score

    def charge(self, steps: Sequence[StepOutcome]) -> None:
        """Add each step's verifier cost to the step's cost (``reward_cost_usd``: what judging
        the answer cost), so that the cascade's total is everything the request paid."""
        for step, cost in zip(steps, self.costs, strict=False):
            if cost:
                c = step.drawn.cost
                step.drawn.cost = c.model_copy(update={"reward_cost_usd": c.reward_cost_usd + cost})

    def describe(self) -> str:
        return self.inner.describe()


async def arun_served_cascade(
    prompt: str,
    plan: ServedPlan,
    first: DrawnStep,
    draw: Callable[[Candidate, int], Awaitable[DrawnStep]],
    verifier: Callable[[], Awaitable[Verifier]],
    accept: float,
    expected_costs: Mapping[str, float] | None = None,
) -> ServedCascade:
    """Run ``plan`` from its already-drawn first step with :func:`arun_cascade`; never raises.

    ``verifier`` is awaited for the verifier (loading it may fail: step 1 is then served, with
    a note). A failing escalation call serves the last step drawn; a failing verifier serves the
    step it was scoring (paid for, and dearer than any before it).
    """
    t0 = time.perf_counter()
    drawn: list[tuple[DrawnStep, float]] = [(first, 0.0)]

    async def recording_draw(cand: Candidate, i: int) -> DrawnStep:
        s0 = time.perf_counter()
        step = await draw(cand, i)
        drawn.append((step, time.perf_counter() - s0))
        return step

    recorder: _Recording | None = None
    what = "loading the verifier"
    try:
        recorder = _Recording(await verifier())
        what = "the cascade"
        outcome = await arun_cascade(
            prompt, plan.steps, recording_draw, recorder, accept,
            priors=plan.decision.predictions, budget_usd=plan.policy.budget_usd,
            expected_costs=expected_costs if expected_costs is not None
            else plan.decision.expected_costs_usd, first=first)
        recorder.charge(outcome.steps)
        return ServedCascade(outcome)
    except Exception as exc:
        scores = recorder.scores if recorder is not None else []
        if what == "the cascade":
            what = (f"the verifier on step {len(scores) + 1}" if len(scores) < len(drawn)
                    else f"the escalation call to step {len(drawn) + 1} "
                         f"({plan.steps[len(drawn)].key if len(drawn) < len(plan.steps) else '?'})")
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        steps = [StepOutcome(plan.steps[i], d, scores[i] if i < len(scores) else None, False,
                             took if i else time.perf_counter() - t0,
                             plan.decision.predictions.get(plan.steps[i].key))
                 for i, (d, took) in enumerate(drawn)]
        served = len(steps)
        note = f"cascade: {what} failed ({error}); serving step {served}'s answer"
        if recorder is not None:
            recorder.charge(steps)
        outcome = CascadeOutcome(steps=steps, verifier=(recorder.describe() if recorder else "unavailable"),
                                 accept=accept, stopped=f"error: {what} failed; step {served} served")
        return ServedCascade(outcome, notes=[note], error=error)


def cascade_report(served: ServedCascade, propensities: Sequence[float]) -> dict[str, Any]:
    """The ``cascade`` entry of a response body and of a traffic log line.

    :meth:`CascadeOutcome.as_dict` plus, per step, its propensity, its samples and selector
    scores (retraining learns the router and the verifier from them), and its notes.
    """
    out = served.outcome.as_dict()
    for i, (step, d) in enumerate(zip(served.outcome.steps, out["steps"], strict=True)):
        d["step"] = i + 1
        d["propensity"] = float(propensities[i]) if i < len(propensities) else 1.0
        d["verifier_cost_usd"] = float(step.drawn.cost.reward_cost_usd)
        d["samples"] = list(step.drawn.samples)
        d["selector_scores"] = list(step.drawn.selector_scores)
        if step.drawn.notes:
            d["notes"] = list(step.drawn.notes)
    out["served_step"] = out["accepted_step"] + 1
    if served.error:
        out["error"] = served.error
    return out


def steps_header(outcome: CascadeOutcome) -> str:
    """``weak#3>strong#1``: the candidates of the steps taken, in order."""
    return ">".join(s.candidate.key for s in outcome.steps)


__all__ = ["ServedCascade", "ServedPlan", "arun_served_cascade", "cascade_report",
           "plan_served_cascade", "step_decision", "steps_header"]
