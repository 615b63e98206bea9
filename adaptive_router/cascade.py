"""Cascades: try a cheap step first and pay for a dearer one only when the answer looks wrong.

A cascade is an ordered list of steps, each a candidate ``(model, n)``, plus an acceptance rule:
a step's kept answer is accepted when its :class:`~adaptive_router.verifiers.Verifier` score
reaches ``accept``; otherwise the next step runs. Every step taken is paid for and reported.
Pre-call routing is the one-step special case.

:class:`CascadePolicy` proposes the steps for one prompt from the router's predictions and the
expected costs: the candidates it finds plausible (the prompt's predicted quality-cost front),
cheapest first, ending with the best predicted; a prompt whose cheapest plausible step is
predicted below ``skip_below`` goes straight to the top. ``budget_usd`` caps the expected total
of the steps. A fixed chain (``steps=``) skips the router.

:func:`arun_cascade` runs a plan: the integration supplies how one step is drawn (a LiteLLM
call, a local model, a replayed record) and the core does the rest, so the LiteLLM proxy, the SDK
strategy, LangChain and offline evaluation take the same decisions.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptive_router.domain import Candidate, CostBreakdown
from adaptive_router.errors import ConfigError
from adaptive_router.verifiers.base import Evidence, Verifier

#: Steps a router-proposed cascade takes at most by default: cheap, then the top.
DEFAULT_MAX_STEPS = 2


class CascadePolicy:
    """Proposes a cascade's steps for one prompt, and holds its acceptance level.

    Parameters
    ----------
    accept: the verifier score at or above which a step's answer is kept (the knob).
    max_steps: the most steps one request may take (>= 1).
    budget_usd: cap on the sum of the planned steps' expected costs (the first step always runs).
    skip_below: go straight to the top step when the cheapest plausible step's predicted quality
        is below this (a prompt the router predicts is hard); None never skips.
    steps: a fixed chain of candidate keys (``["weak#3", "strong#1"]``) instead of the router's.
    """

    def __init__(self, accept: float = 0.5, max_steps: int = DEFAULT_MAX_STEPS,
                 budget_usd: float | None = None, skip_below: float | None = None,
                 steps: Sequence[str] | None = None) -> None:
        from adaptive_router.policy import check_knob

        self.accept = check_knob("accept", accept)
        if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 1:
            raise ConfigError(f"max_steps must be an integer >= 1, got {max_steps!r}")
        self.max_steps = max_steps
        self.budget_usd = check_knob("budget_usd", budget_usd) if budget_usd is not None else None
        self.skip_below = check_knob("threshold", skip_below) if skip_below is not None else None
        self.steps = [Candidate.from_key(k).key for k in steps] if steps else None

    def describe(self) -> str:
        parts = [f"accept {self.accept:g}"]
        if self.steps:
            parts.append(" > ".join(self.steps))
        if self.budget_usd is not None:
            parts.append(f"budget ${self.budget_usd:g}")
        return f"cascade({', '.join(parts)})"

    def plan(self, predictions: Mapping[str, float], costs: Mapping[str, float]) -> list[Candidate]:
        """The steps for one prompt, cheapest first."""
        if self.steps:
            keys = [k for k in self.steps if k in costs]
            if not keys:
                raise ConfigError(f"none of the cascade steps {self.steps} is a fleet candidate "
                                  f"({sorted(costs)})")
        else:
            keys = plausible_steps(predictions, costs)
            if self.skip_below is not None and predictions[keys[0]] < self.skip_below:
                keys = keys[-1:]
        if len(keys) > self.max_steps:  # keep the cheapest ones and the top
            keys = keys[: self.max_steps - 1] + keys[-1:]
        if self.budget_usd is not None:
            kept, total = [keys[0]], costs[keys[0]]
            for k in keys[1:]:
                if total + costs[k] <= self.budget_usd:
                    kept.append(k)
                    total += costs[k]
            keys = kept
        return [Candidate.from_key(k) for k in keys]


def plausible_steps(predictions: Mapping[str, float], costs: Mapping[str, float]) -> list[str]:
    """The prompt's predicted quality-cost front, cheapest first: each step is predicted better
    than every cheaper one; the last is the best predicted (ties go to the cheaper)."""
    keys = sorted(costs, key=lambda k: (costs[k], -predictions.get(k, 0.0)))
    front: list[str] = []
    best = -np.inf
    for k in keys:
        q = predictions.get(k, 0.0)
        if q > best + 1e-12:
            front.append(k)
            best = q
    return front


# ---------------------------------------------------------------------------------------------
# running a plan
# ---------------------------------------------------------------------------------------------


@dataclass
class DrawnStep:
    """What an integration returns for one step: the samples, their cost, the kept index, and
    anything it needs later (the provider response to return to the client)."""

    samples: list[str]
    cost: CostBreakdown
    chosen_index: int = 0
    selector: str = "first"
    selector_scores: list[float] = field(default_factory=list)
    payload: Any = None
    group: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class StepOutcome:
    """One step taken: its candidate, what it drew and cost, its verifier score, its verdict."""

    candidate: Candidate
    drawn: DrawnStep
    verifier_score: float | None
    accepted: bool
    latency_s: float
    prior: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d = self.drawn
        return {
            "model": self.candidate.model, "n": self.candidate.n, "candidate": self.candidate.key,
            "model_group": d.group, "cost_usd": d.cost.total_usd,
            "input_cost_usd": d.cost.input_cost_usd, "output_cost_usd": d.cost.output_cost_usd,
            "prompt_tokens": d.cost.prompt_tokens, "output_tokens": d.cost.output_tokens,
            "verifier_score": self.verifier_score, "accepted": self.accepted,
            "chosen_index": d.chosen_index, "selector": d.selector, "prior": self.prior,
            "latency_s": self.latency_s,
        }


@dataclass
class CascadeOutcome:
    """Every step taken, which one was kept, and the total cost (every step is paid for)."""

    steps: list[StepOutcome]
    verifier: str
    accept: float
    stopped: str = ""

    @property
    def final(self) -> StepOutcome:
        """The step whose answer is served: the accepted one, else the last one taken."""
        for s in self.steps:
            if s.accepted:
                return s
        return self.steps[-1]

    @property
    def accepted_step(self) -> int:
        return self.steps.index(self.final)

    @property
    def total_cost_usd(self) -> float:
        return float(sum(s.drawn.cost.total_usd for s in self.steps))

    @property
    def escalated(self) -> bool:
        return len(self.steps) > 1

    def as_dict(self) -> dict[str, Any]:
        return {"verifier": self.verifier, "accept": self.accept, "accepted_step": self.accepted_step,
                "escalated": self.escalated, "cost_usd": self.total_cost_usd, "stopped": self.stopped,
                "steps": [s.as_dict() for s in self.steps]}


DrawFn = Callable[[Candidate, int], Awaitable[DrawnStep]]


async def arun_cascade(
    prompt: str,
    plan: Sequence[Candidate],
    draw: DrawFn,
    verifier: Verifier,
    accept: float,
    priors: Mapping[str, float] | None = None,
    budget_usd: float | None = None,
    expected_costs: Mapping[str, float] | None = None,
    first: DrawnStep | None = None,
) -> CascadeOutcome:
    """Run ``plan`` step by step until a step is accepted, the plan ends, or the budget would be
    exceeded. ``draw(candidate, step_index)`` draws one step; ``first`` is the first step when
    it has already been drawn (the LiteLLM proxy makes that call itself). The last step taken is
    scored for the report but always served: there is nothing dearer to escalate to.
    """
    if not plan:
        raise ConfigError("a cascade needs at least one step")
    steps: list[StepOutcome] = []
    stopped = "plan ended"
    for i, cand in enumerate(plan):
        if i > 0 and budget_usd is not None and expected_costs is not None:
            spent = sum(s.drawn.cost.total_usd for s in steps)
            if spent + expected_costs.get(cand.key, 0.0) > budget_usd:
                stopped = f"budget ${budget_usd:g} reached before {cand.key}"
                break
        t0 = time.perf_counter()
        drawn = first if (i == 0 and first is not None) else await draw(cand, i)
        prior = priors.get(cand.key) if priors else None
        earlier = tuple(s.drawn.samples[s.drawn.chosen_index] for s in steps)
        ev = Evidence(prompt=prompt, samples=tuple(drawn.samples) or ("",), chosen=drawn.chosen_index
                      if drawn.samples else 0, earlier=earlier, prior=prior, model=cand.model)
        score = await verifier.ascore(ev)
        last = i == len(plan) - 1
        accepted = score >= accept
        steps.append(StepOutcome(cand, drawn, score, accepted, time.perf_counter() - t0, prior))
        if accepted:
            stopped = f"step {i + 1} accepted ({score:.3f} >= {accept:g})"
            break
        if last:
            stopped = f"last step served ({score:.3f} < {accept:g})"
    return CascadeOutcome(steps=steps, verifier=verifier.describe(), accept=accept, stopped=stopped)
