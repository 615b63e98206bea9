"""Executing a routing decision: draw the chosen candidate's n samples and keep the best.

``adaptive-router route ... --execute`` calls :func:`execute_decision`. The model's sampler comes
from the fleet (``sampler:``, or ``local/<name>`` for a local transformers model), the selector
and reward model from the fleet's ``selector:`` and ``reward_model:``. Samplers and reward
models are cached per process, so a server executing many decisions loads each once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

from adaptive_router.best_of_n import BestOfN
from adaptive_router.domain import Decision, Fleet
from adaptive_router.reward import RewardModel
from adaptive_router.samplers import Sampler, sampler_for_model


@functools.lru_cache(maxsize=16)
def _reward_model(path: str) -> RewardModel:
    from adaptive_router.reward_models import load_reward_model

    return load_reward_model(os.path.expandvars(os.path.expanduser(path)))


_SAMPLERS: dict[tuple[str, str], Sampler] = {}


def _sampler(fleet: Fleet, model: str) -> Sampler:
    key = (fleet.source or str(id(fleet)), model)
    if key not in _SAMPLERS:
        _SAMPLERS[key] = sampler_for_model(fleet.model(model))
    return _SAMPLERS[key]


def best_of_n_for(fleet: Fleet, model: str) -> BestOfN:
    """The best-of-n runner for one fleet model (its sampler, price, selector, reward model)."""
    reward = _reward_model(fleet.reward_model) if fleet.selector == "reward" and fleet.reward_model else None
    return BestOfN(_sampler(fleet, model), fleet.model(model).resolved_price(),
                   selector=fleet.selector, reward_model=reward)


def execute_decision(fleet: Fleet, decision: Decision,
                     prompt: str | Sequence[Mapping[str, Any]], **gen: Any) -> dict[str, Any]:
    """Draw ``decision.n`` samples from ``decision.model``, keep the best, report scores and cost.

    Returns a JSON-ready dict: the chosen sample and its index, every sample with its output
    tokens and reward score, the selector (and any fallback), the dollar cost breakdown
    (prompt once, every sample's output) and the sampling and reward-model latencies.
    """
    result = best_of_n_for(fleet, decision.model).run(prompt, decision.n, **gen)
    out = result.as_dict()
    out["expected_cost_usd"] = decision.expected_cost_usd
    return out
