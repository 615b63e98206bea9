"""Honest offline evaluation of a new routing policy on logged traffic.

A traffic log holds, per request, only the candidate the serving policy chose (the logged
*action*), the probability it had of choosing it (the logged *propensity*, written by
:class:`~adaptive_router.policy.EpsilonExploration`) and the outcome we observed for it (a
quality label, or the dollar cost). A new router would often have chosen another candidate,
whose outcome was never observed, so "replay the log and average" is biased towards whatever
the old router liked. The estimators here correct for that.

Notation, for logged request ``i`` of ``N``: context ``x_i`` (the prompt), logged action
``a_i`` with propensity ``p_i = pi_0(a_i | x_i) > 0``, observed reward ``r_i``, the target
policy's action probabilities ``pi(a | x_i)`` (one-hot for a deterministic router + policy), the
importance weight ``w_i = pi(a_i | x_i) / p_i``, and optionally a reward model
``q(x_i, a)`` predicting the reward of every action.

- **IPS** (inverse propensity scoring; Horvitz & Thompson 1952, for bandits e.g. Li, Chu,
  Langford & Wang 2011, "Unbiased offline evaluation of contextual-bandit-based news article
  recommendation algorithms", WSDM): ``V = 1/N sum_i w_i r_i``. Unbiased when every action the
  target policy can take has a positive logged propensity; its variance grows with the weights.
- **SNIPS** (self-normalised IPS; Swaminathan & Joachims 2015, "The Self-Normalized Estimator
  for Counterfactual Learning", NeurIPS): ``V = sum_i w_i r_i / sum_i w_i``. Slightly biased,
  usually much lower variance, and always within the range of the rewards.
- **DR** (doubly robust; Dudik, Langford & Li 2011, "Doubly Robust Policy Evaluation and
  Learning", ICML, eq. 2): ``V = 1/N sum_i [ sum_a pi(a|x_i) q(x_i, a) + w_i (r_i - q(x_i, a_i)) ]``.
  Unbiased if either the propensities or the reward model are right; lower variance than IPS
  when the reward model is good.
- **DM** (direct method): ``V = 1/N sum_i sum_a pi(a|x_i) q(x_i, a)``. Low variance, but as
  biased as the reward model; reported for reference, never used to decide.

Standard errors: IPS, DR and DM are means of per-request terms ``t_i``, so
``Var(V) = s^2(t) / N`` with ``s^2`` the sample variance (the terms are i.i.d. when requests
are). SNIPS is a ratio of means; its variance is the delta-method approximation
``sum_i w_i^2 (r_i - V)^2 / (sum_i w_i)^2``. Each estimate also reports Kish's effective sample
size ``(sum w)^2 / sum w^2``: when it is a small fraction of ``N`` the log barely covers what
the new policy does, and no estimator can be trusted much.

Comparing two policies on the same log is a *paired* question: :func:`compare_policies`
estimates the difference from the per-request differences of the terms, whose variance is much
smaller than the sum of the two variances because both policies agree on most requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from adaptive_router.errors import DataError

#: The estimators by name, in the order reports list them.
METHODS = ("ips", "snips", "dr", "dm")

#: 97.5th percentile of the standard normal distribution (two-sided 95% intervals).
Z95 = 1.959963984540054


@dataclass(frozen=True)
class OffPolicyEstimate:
    """The estimated value of a policy on a log, with its uncertainty."""

    method: str
    value: float
    std_error: float
    n: int
    effective_sample_size: float
    max_weight: float

    @property
    def variance(self) -> float:
        return self.std_error**2

    @property
    def ci95(self) -> tuple[float, float]:
        """Normal-approximation 95% confidence interval."""
        return (self.value - Z95 * self.std_error, self.value + Z95 * self.std_error)

    def as_dict(self) -> dict[str, float | int | str]:
        d = asdict(self)
        d["variance"] = self.variance
        d["ci95_low"], d["ci95_high"] = self.ci95
        return d


@dataclass(frozen=True)
class PolicyComparison:
    """A paired estimate of ``value(new) - value(old)`` on one log."""

    method: str
    new: OffPolicyEstimate
    old: OffPolicyEstimate
    difference: float
    std_error: float

    @property
    def z(self) -> float:
        """The difference in standard errors (large positive: new is clearly better)."""
        if self.std_error == 0:
            return 0.0 if self.difference == 0 else float(np.sign(self.difference) * np.inf)
        return self.difference / self.std_error

    @property
    def ci95(self) -> tuple[float, float]:
        return (self.difference - Z95 * self.std_error, self.difference + Z95 * self.std_error)

    def as_dict(self) -> dict[str, object]:
        lo, hi = self.ci95
        return {"method": self.method, "new": self.new.as_dict(), "old": self.old.as_dict(),
                "difference": self.difference, "std_error": self.std_error, "z": self.z,
                "ci95_low": lo, "ci95_high": hi}


# -- inputs --------------------------------------------------------------------------------------


def deterministic_policy(actions: Sequence[int] | np.ndarray, num_actions: int) -> np.ndarray:
    """The (N, K) action probabilities of a deterministic policy: one-hot rows of ``actions``."""
    acts = np.asarray(actions, dtype=int)
    if acts.ndim != 1:
        raise DataError(f"actions must be a 1-d array of indices, got shape {acts.shape}")
    if acts.size and (acts.min() < 0 or acts.max() >= num_actions):
        raise DataError(f"actions must lie in [0, {num_actions}), got {acts.min()}..{acts.max()}")
    probs = np.zeros((acts.size, num_actions))
    probs[np.arange(acts.size), acts] = 1.0
    return probs


def epsilon_greedy_policy(greedy: Sequence[int] | np.ndarray, num_actions: int,
                          epsilon: float) -> np.ndarray:
    """The (N, K) action probabilities of epsilon-greedy exploration around ``greedy``.

    Matches :class:`~adaptive_router.policy.EpsilonExploration`: a uniformly random action with
    probability ``epsilon`` (which may coincide with the greedy one), else the greedy action.
    """
    if not 0.0 <= epsilon <= 1.0:
        raise DataError(f"epsilon must be within [0, 1], got {epsilon}")
    return (1.0 - epsilon) * deterministic_policy(greedy, num_actions) + epsilon / num_actions


def _check_log(rewards: np.ndarray, actions: np.ndarray, propensities: np.ndarray,
               target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r = np.asarray(rewards, dtype=np.float64)
    a = np.asarray(actions, dtype=int)
    p = np.asarray(propensities, dtype=np.float64)
    pi = np.asarray(target, dtype=np.float64)
    n = r.shape[0] if r.ndim == 1 else -1
    if r.ndim != 1 or a.shape != (n,) or p.shape != (n,):
        raise DataError(f"rewards, actions and propensities must be 1-d of one length; got "
                        f"{r.shape}, {a.shape}, {p.shape}")
    if n == 0:
        raise DataError("the log is empty: nothing to evaluate a policy on")
    if pi.ndim != 2 or pi.shape[0] != n:
        raise DataError(f"target policy probabilities must have shape ({n}, K), got {pi.shape}")
    if a.min() < 0 or a.max() >= pi.shape[1]:
        raise DataError(f"logged actions must lie in [0, {pi.shape[1]}), got {a.min()}..{a.max()}")
    if not np.all(np.isfinite(r)):
        raise DataError("rewards contain NaN or infinity; drop unlabelled requests first")
    if np.any(~np.isfinite(p)) or np.any(p <= 0) or np.any(p > 1):
        raise DataError(
            "logged propensities must lie in (0, 1]; a zero propensity means the logging policy "
            "could never have chosen that action. Log with epsilon-exploration "
            "(adaptive_router.policy.EpsilonExploration) so every candidate keeps a positive one."
        )
    if np.any(pi < -1e-9) or not np.allclose(pi.sum(axis=1), 1.0, atol=1e-6):
        raise DataError("each row of the target policy's probabilities must be a distribution "
                        "(non-negative, summing to 1)")
    return r, a, p, pi


def importance_weights(actions: np.ndarray, propensities: np.ndarray, target: np.ndarray,
                       clip: float | None = None) -> np.ndarray:
    """``w_i = pi(a_i | x_i) / p_i``, optionally clipped at ``clip`` (trades bias for variance)."""
    a = np.asarray(actions, dtype=int)
    w = np.asarray(target, dtype=np.float64)[np.arange(a.size), a] / np.asarray(propensities)
    if clip is not None:
        if clip <= 0:
            raise DataError(f"clip must be positive, got {clip}")
        w = np.minimum(w, clip)
    return w


def effective_sample_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 when every weight is 0)."""
    w = np.asarray(weights, dtype=np.float64)
    denom = float(np.sum(w**2))
    return float(np.sum(w) ** 2 / denom) if denom > 0 else 0.0


def _mean_with_se(terms: np.ndarray) -> tuple[float, float]:
    n = terms.size
    se = float(np.std(terms, ddof=1) / np.sqrt(n)) if n > 1 else float("inf")
    return float(np.mean(terms)), se


# -- the estimators --------------------------------------------------------------------------------


def _terms(method: str, r: np.ndarray, a: np.ndarray, w: np.ndarray, pi: np.ndarray,
           q: np.ndarray | None) -> np.ndarray:
    """Per-request terms whose mean is the IPS / DR / DM estimate."""
    if method == "ips":
        return w * r
    if q is None:
        raise DataError(f"the {method.upper()} estimator needs reward predictions q(x, a)")
    direct = np.sum(pi * q, axis=1)
    if method == "dm":
        return direct
    if method == "dr":
        return direct + w * (r - q[np.arange(a.size), a])
    raise DataError(f"unknown estimator {method!r}; use one of {METHODS}")


def estimate_value(
    method: str,
    rewards: np.ndarray,
    actions: np.ndarray,
    propensities: np.ndarray,
    target: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    clip: float | None = None,
) -> OffPolicyEstimate:
    """The value of the target policy on the log by ``method`` ("ips", "snips", "dr", "dm").

    ``target`` is the (N, K) matrix of the target policy's action probabilities;
    ``reward_predictions`` the (N, K) reward model ``q(x_i, a)`` that DR and DM need.
    """
    r, a, p, pi = _check_log(rewards, actions, propensities, target)
    q = None
    if reward_predictions is not None:
        q = np.asarray(reward_predictions, dtype=np.float64)
        if q.shape != pi.shape:
            raise DataError(f"reward predictions must have shape {pi.shape}, got {q.shape}")
    w = importance_weights(a, p, pi, clip=clip)
    ess = effective_sample_size(w)
    max_w = float(w.max())
    if method == "snips":
        total = float(w.sum())
        if total == 0:
            raise DataError("the target policy never takes a logged action: SNIPS is undefined; "
                            "log with more exploration or use the DM estimate")
        value = float(np.sum(w * r) / total)
        se = float(np.sqrt(np.sum(w**2 * (r - value) ** 2)) / total)
        return OffPolicyEstimate("snips", value, se, r.size, ess, max_w)
    value, se = _mean_with_se(_terms(method, r, a, w, pi, q))
    return OffPolicyEstimate(method, value, se, r.size, ess, max_w)


def ips_estimate(rewards, actions, propensities, target, clip: float | None = None) -> OffPolicyEstimate:
    """Inverse propensity scoring (see the module docstring)."""
    return estimate_value("ips", rewards, actions, propensities, target, clip=clip)


def snips_estimate(rewards, actions, propensities, target, clip: float | None = None) -> OffPolicyEstimate:
    """Self-normalised inverse propensity scoring (see the module docstring)."""
    return estimate_value("snips", rewards, actions, propensities, target, clip=clip)


def dr_estimate(rewards, actions, propensities, target, reward_predictions,
                clip: float | None = None) -> OffPolicyEstimate:
    """Doubly robust estimate (see the module docstring)."""
    return estimate_value("dr", rewards, actions, propensities, target, reward_predictions, clip)


def dm_estimate(rewards, actions, propensities, target, reward_predictions) -> OffPolicyEstimate:
    """Direct-method estimate from the reward model alone (see the module docstring)."""
    return estimate_value("dm", rewards, actions, propensities, target, reward_predictions)


def compare_policies(
    method: str,
    rewards: np.ndarray,
    actions: np.ndarray,
    propensities: np.ndarray,
    target_new: np.ndarray,
    target_old: np.ndarray,
    reward_predictions: np.ndarray | None = None,
    clip: float | None = None,
) -> PolicyComparison:
    """Paired estimate of ``value(new) - value(old)`` with its standard error.

    For IPS / DR / DM the difference is the mean of per-request term differences, so its
    variance is ``s^2(t_new - t_old) / N``. For SNIPS it uses the delta method on both ratios
    jointly: the influence of request ``i`` is ``w_i (r_i - V) / mean(w)`` for each policy.
    """
    new = estimate_value(method, rewards, actions, propensities, target_new, reward_predictions, clip)
    old = estimate_value(method, rewards, actions, propensities, target_old, reward_predictions, clip)
    r, a, p, pi_new = _check_log(rewards, actions, propensities, target_new)
    pi_old = np.asarray(target_old, dtype=np.float64)
    q = None if reward_predictions is None else np.asarray(reward_predictions, dtype=np.float64)
    w_new = importance_weights(a, p, pi_new, clip=clip)
    w_old = importance_weights(a, p, pi_old, clip=clip)
    if method == "snips":
        infl_new = w_new * (r - new.value) / w_new.mean()
        infl_old = w_old * (r - old.value) / w_old.mean()
        diff_terms = infl_new - infl_old
        se = float(np.std(diff_terms, ddof=1) / np.sqrt(r.size)) if r.size > 1 else float("inf")
        return PolicyComparison(method, new, old, new.value - old.value, se)
    diff_terms = _terms(method, r, a, w_new, pi_new, q) - _terms(method, r, a, w_old, pi_old, q)
    diff, se = _mean_with_se(diff_terms)
    return PolicyComparison(method, new, old, diff, se)
