"""Old router against new on held-out logged traffic, by off-policy estimates, and the promotion rule.

Logged traffic holds only the served candidate's answer, so each router's value is estimated
from the logged propensities (:mod:`adaptive_router.training.offpolicy`); both routers are
evaluated on the same requests with the same outcome model, so their paired difference is fair.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from adaptive_router.training.offpolicy import (
    PolicyComparison,
    compare_policies,
    deterministic_policy,
    estimate_value,
)
from adaptive_router.training.retrain.bandit import LoggedBandit, predict_unique

from adaptive_router.policy import Policy, ThresholdPolicy
from adaptive_router.routers.base import Router

ESTIMATORS = ("dr", "ips", "snips")


def policy_actions(router: Router, bandit: LoggedBandit, predictions: np.ndarray | None = None,
                   policy: Policy | None = None) -> np.ndarray:
    """The candidate ``router`` would serve for each logged prompt under each request's knob
    (or under ``policy`` for all), priced as the serving policy priced them."""
    preds = predictions if predictions is not None else predict_unique(router, bandit.prompts)
    preds = preds[:, router.restrict(bandit.candidate_keys)]  # columns in the log's order
    if policy is not None:
        return policy.choose(preds, bandit.expected_costs)
    out = np.empty(len(bandit), dtype=int)
    by_policy: dict[str, list[int]] = {}
    for i, p in enumerate(bandit.policies):
        by_policy.setdefault(p.describe(), []).append(i)
    for idxs in by_policy.values():
        ii = np.array(idxs)
        out[ii] = bandit.policies[idxs[0]].choose(preds[ii], bandit.expected_costs[ii])
    return out


@dataclass
class OfflineComparison:
    """Old vs new on held-out traffic: quality, cost and utility, by several estimators."""

    quality: dict[str, PolicyComparison]
    cost: dict[str, PolicyComparison]
    utility: dict[str, PolicyComparison]
    cost_scale: float
    cost_weight: float
    agreement: float  # share of held-out requests both routers decide alike
    replay_fidelity: float  # share of greedy (unexplored) logged decisions the base reproduces
    logged_quality: float
    logged_cost: float

    def as_dict(self) -> dict[str, Any]:
        return {"quality": {k: v.as_dict() for k, v in self.quality.items()},
                "cost_usd": {k: v.as_dict() for k, v in self.cost.items()},
                "utility": {k: v.as_dict() for k, v in self.utility.items()},
                "cost_scale_usd": self.cost_scale, "cost_weight": self.cost_weight,
                "agreement": self.agreement, "replay_fidelity": self.replay_fidelity,
                "logged_quality": self.logged_quality,
                "logged_cost_usd": self.logged_cost}


def outcome_model(train: LoggedBandit, prior_requests: float = 5.0) -> np.ndarray:
    """Mean quality of each candidate on the train traffic, shrunk towards the overall mean by
    ``prior_requests`` pseudo-requests: the doubly robust estimator's model of the quality of
    every candidate.

    Why not a router's predictions: they are whatever the router predicts (BEST-Route's are
    probabilities of matching the reference, not quality), so their level can be far from the
    labels'; with importance weights of 1 / propensity, an offset in the model becomes a large
    variance in DR. Calibrated means fitted on other traffic keep DR centred.
    """
    k = len(train.candidate_keys)
    overall = float(train.labels.mean())
    sums = np.bincount(train.actions, weights=train.labels, minlength=k)
    counts = np.bincount(train.actions, minlength=k).astype(np.float64)
    return (sums + prior_requests * overall) / (counts + prior_requests)


def compare_offline(old: Router, new: Router, held: LoggedBandit, cost_weight: float = 0.5,
                    q_old: np.ndarray | None = None, q_new: np.ndarray | None = None,
                    candidate_quality: np.ndarray | None = None) -> OfflineComparison:
    """Estimate old and new routers' value on held-out logged traffic.

    The direct-model part of the doubly robust estimator uses ``candidate_quality`` (each
    candidate's quality on the train traffic, :func:`outcome_model`; the held-out mean label
    when not given) and the serving policy's expected costs; both policies are evaluated with
    the same models so that the paired difference is fair.
    Utility = quality - ``cost_weight`` x cost / ``cost_scale``, where ``cost_scale`` is the mean
    expected cost of the dearest candidate on these prompts (so 1.0 = "always the dearest").
    """
    k = len(held.candidate_keys)
    q_old = predict_unique(old, held.prompts) if q_old is None else q_old
    q_new = predict_unique(new, held.prompts) if q_new is None else q_new
    a_old = policy_actions(old, held, q_old)
    a_new = policy_actions(new, held, q_new)
    t_old, t_new = deterministic_policy(a_old, k), deterministic_policy(a_new, k)
    cost_scale = float(np.mean(held.expected_costs.max(axis=1))) or 1.0
    if candidate_quality is None:
        candidate_quality = np.full(k, float(held.labels.mean()))
    q_quality = np.tile(np.asarray(candidate_quality, dtype=np.float64), (len(held), 1))
    q_cost = held.expected_costs
    utility = held.labels - cost_weight * held.costs / cost_scale
    q_utility = q_quality - cost_weight * q_cost / cost_scale
    out: dict[str, dict[str, PolicyComparison]] = {"quality": {}, "cost": {}, "utility": {}}
    for method in ESTIMATORS:
        for name, r, q in (("quality", held.labels, q_quality), ("cost", held.costs, q_cost),
                           ("utility", utility, q_utility)):
            out[name][method] = compare_policies(method, r, held.actions, held.propensities,
                                                 t_new, t_old, reward_predictions=q)
    greedy = ~held.explored
    fidelity = float(np.mean(a_old[greedy] == held.actions[greedy])) if greedy.any() else float("nan")
    return OfflineComparison(out["quality"], out["cost"], out["utility"], cost_scale, cost_weight,
                             float(np.mean(a_old == a_new)), fidelity, float(held.labels.mean()),
                             float(held.costs.mean()))


def threshold_curve(router: Router, held: LoggedBandit, preds: np.ndarray, q_quality: np.ndarray,
                    thresholds: Iterable[float]) -> list[dict[str, float]]:
    """DR estimates of quality and cost of ``router`` under a sweep of threshold knobs."""
    k = len(held.candidate_keys)
    points = []
    for t in thresholds:
        acts = policy_actions(router, held, preds, policy=ThresholdPolicy(float(t)))
        target = deterministic_policy(acts, k)
        q = estimate_value("dr", held.labels, held.actions, held.propensities, target, q_quality)
        c = estimate_value("dr", held.costs, held.actions, held.propensities, target,
                           held.expected_costs)
        points.append({"threshold": float(t), "quality": q.value, "quality_se": q.std_error,
                       "cost_usd": c.value, "cost_se": c.std_error})
    return points


def should_promote(comparison: OfflineComparison, estimator: str = "dr", min_z: float = 1.0) -> bool:
    """Promote only when the new router's estimated utility beats the old one's by at least
    ``min_z`` standard errors of the paired difference: a noisy gain is not a reason to swap
    the router that serves traffic."""
    decisive = comparison.utility[estimator]
    return bool(decisive.difference > 0 and decisive.z >= min_z)


def promotion_rule(estimator: str, min_z: float, cost_weight: float, cost_scale: float) -> str:
    """The rule of :func:`should_promote` in words, for the report."""
    return (f"promote iff the {estimator.upper()} estimate of utility(new) - "
            f"utility(old) > 0 with z >= {min_z:g}; utility = quality - "
            f"{cost_weight:g} x cost / {cost_scale:.6g} USD")
