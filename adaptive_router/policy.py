"""Policies: predictions + expected costs + the user's knob -> one candidate.

One knob family for every router:

- :class:`ThresholdPolicy` (RouteLLM, BEST-Route): the cheapest candidate whose predicted
  quality reaches the threshold; if none does, the one predicted best.
- :class:`TradeoffPolicy` (AR-LLM's beta, Hybrid LLM's cost knob): maximise
  ``quality - lambda * cost / max_cost`` (cost relative to the dearest candidate for this prompt,
  so lambda has the same meaning whatever the prices).
- :class:`BudgetPolicy`: the best predicted quality among candidates whose expected cost fits a
  per-request dollar budget; the cheapest when none fits.
- :func:`calibrate_threshold`: a threshold that sends a target share of a sample of prompts to
  the dearest candidate (RouteLLM's calibration, generalised to K candidates).

Every policy works on arrays (``choose``: many prompts at once, for evaluation) and on one prompt
(``decide``: returns a :class:`Decision` with the reason).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adaptive_router.domain import Candidate, Decision
from adaptive_router.errors import InvalidRequestError

#: The policy knobs: a request's knob names exactly one of them.
POLICY_KNOBS = ("threshold", "tradeoff", "budget_usd")
#: Per-request keys that go beside the one policy knob (any of them, or none).
EXTRA_KNOBS = ("epsilon", "accept")
#: The knob used when neither the request nor the configuration gives one.
DEFAULT_KNOB: dict[str, float] = {"threshold": 0.5}

#: Allowed ranges of per-request knobs; a value outside is rejected with a clear error.
KNOB_BOUNDS: dict[str, tuple[float, float]] = {
    "threshold": (0.0, 1.0),
    "tradeoff": (0.0, 1000.0),
    "budget_usd": (0.0, 1000.0),
    "strong_share": (0.0, 1.0),
    "accept": (0.0, 1.0),  # a cascade's acceptance level (a verifier score), see cascade.py
}


class Policy(ABC):
    """Turns a (prompts x candidates) prediction matrix and cost matrix into choices."""

    @abstractmethod
    def choose(self, predictions: np.ndarray, costs: np.ndarray) -> np.ndarray:
        """Index of the chosen candidate for each row."""

    @abstractmethod
    def describe(self) -> str:
        """The policy and its knob, e.g. ``threshold(0.6)``."""

    def _reason(self, q: np.ndarray, c: np.ndarray, idx: int, keys: Sequence[str]) -> str:
        return f"{self.describe()} chose {keys[idx]}"

    def decide(
        self,
        predictions: Mapping[str, float],
        costs: Mapping[str, float],
        router: str = "",
    ) -> Decision:
        """One prompt's decision, with the predictions, costs and reason recorded."""
        keys = list(predictions)
        q = np.array([predictions[k] for k in keys], dtype=np.float64)
        c = np.array([costs[k] for k in keys], dtype=np.float64)
        idx = int(self.choose(q[None, :], c[None, :])[0])
        return Decision(
            candidate=Candidate.from_key(keys[idx]),
            predictions=dict(predictions),
            expected_costs_usd=dict(costs),
            policy=self.describe(),
            reason=self._reason(q, c, idx, keys),
            router=router,
        )


def _cheapest_among(mask: np.ndarray, costs: np.ndarray) -> np.ndarray:
    masked = np.where(mask, costs, np.inf)
    return np.argmin(masked, axis=1)


def _best_quality(q: np.ndarray, costs: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """argmax quality, ties broken towards the cheaper candidate."""
    qq = q if mask is None else np.where(mask, q, -np.inf)
    best = qq.max(axis=1, keepdims=True)
    tie = np.isclose(qq, best) & np.isfinite(qq)
    return _cheapest_among(tie, costs)


class ThresholdPolicy(Policy):
    """The cheapest candidate predicted to reach ``threshold``; else the best predicted."""

    def __init__(self, threshold: float) -> None:
        self.threshold = check_knob("threshold", threshold)

    def choose(self, predictions: np.ndarray, costs: np.ndarray) -> np.ndarray:
        ok = predictions >= self.threshold
        cheapest = _cheapest_among(ok, costs)
        fallback = _best_quality(predictions, costs)
        return np.where(ok.any(axis=1), cheapest, fallback)

    def describe(self) -> str:
        return f"threshold({self.threshold:g})"

    def _reason(self, q, c, idx, keys) -> str:
        if q[idx] >= self.threshold:
            return (f"cheapest candidate predicted >= {self.threshold:g}: {keys[idx]} "
                    f"(predicted {q[idx]:.3f}, ${c[idx]:.6f})")
        return (f"no candidate predicted >= {self.threshold:g}; best predicted {keys[idx]} "
                f"({q[idx]:.3f})")


class TradeoffPolicy(Policy):
    """argmax ``quality - lambda * cost / max_cost`` (AR-LLM's utility with beta = lambda/(1+lambda))."""

    def __init__(self, tradeoff: float) -> None:
        self.tradeoff = check_knob("tradeoff", tradeoff)

    def choose(self, predictions: np.ndarray, costs: np.ndarray) -> np.ndarray:
        scale = np.maximum(costs.max(axis=1, keepdims=True), 1e-18)
        utility = predictions - self.tradeoff * costs / scale
        return _best_quality(utility, costs)

    def describe(self) -> str:
        return f"tradeoff({self.tradeoff:g})"

    def _reason(self, q, c, idx, keys) -> str:
        return (f"max quality - {self.tradeoff:g} x relative cost: {keys[idx]} "
                f"(predicted {q[idx]:.3f}, ${c[idx]:.6f})")


class BudgetPolicy(Policy):
    """The best predicted candidate whose expected cost fits ``budget_usd`` per request."""

    def __init__(self, budget_usd: float) -> None:
        self.budget_usd = check_knob("budget_usd", budget_usd)

    def choose(self, predictions: np.ndarray, costs: np.ndarray) -> np.ndarray:
        fits = costs <= self.budget_usd
        best = _best_quality(predictions, costs, mask=fits)
        cheapest = np.argmin(costs, axis=1)
        return np.where(fits.any(axis=1), best, cheapest)

    def describe(self) -> str:
        return f"budget(${self.budget_usd:g})"

    def _reason(self, q, c, idx, keys) -> str:
        if c[idx] <= self.budget_usd:
            return f"best predicted within ${self.budget_usd:g}: {keys[idx]} (${c[idx]:.6f})"
        return f"no candidate fits ${self.budget_usd:g}; cheapest {keys[idx]} (${c[idx]:.6f})"


class EpsilonExploration(Policy):
    """With probability ``epsilon`` a uniformly random candidate, else ``base``'s choice.

    Logged traffic then covers every candidate, and each decision records its propensity
    (the probability the policy had of choosing what it chose), which inverse-propensity
    estimators need to evaluate a new router on the log.
    """

    def __init__(self, base: Policy, epsilon: float, seed: int | None = None) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise InvalidRequestError(f"epsilon must be within [0, 1], got {epsilon}")
        self.base = base
        self.epsilon = float(epsilon)
        self._rng = np.random.default_rng(seed)

    def choose(self, predictions: np.ndarray, costs: np.ndarray) -> np.ndarray:
        greedy = self.base.choose(predictions, costs)
        explore = self._rng.random(len(greedy)) < self.epsilon
        rand = self._rng.integers(0, predictions.shape[1], size=len(greedy))
        return np.where(explore, rand, greedy)

    def describe(self) -> str:
        return f"epsilon({self.epsilon:g}, {self.base.describe()})"

    def decide(self, predictions, costs, router: str = "") -> Decision:
        greedy = self.base.decide(predictions, costs, router=router)
        keys = list(predictions)
        k = len(keys)
        if self._rng.random() < self.epsilon:
            key = keys[int(self._rng.integers(0, k))]
            explored = key != greedy.candidate.key
        else:
            key, explored = greedy.candidate.key, False
        propensity = self.epsilon / k + (1.0 - self.epsilon) * (key == greedy.candidate.key)
        reason = greedy.reason if not explored else f"exploring (epsilon {self.epsilon:g}): {key}"
        return greedy.model_copy(update={
            "candidate": Candidate.from_key(key), "explored": explored,
            "propensity": float(propensity), "reason": reason, "policy": self.describe(),
        })


def check_knob(name: str, value: Any) -> float:
    """A knob value within :data:`KNOB_BOUNDS`, or an InvalidRequestError saying the range."""
    lo, hi = KNOB_BOUNDS[name]
    # JSON true is a Python bool, a subclass of int: float(True) == 1.0 would silently route a
    # request sent with {"threshold": true} to the dearest model. A string is a client's typo
    # ("0.3") that must not be guessed at either: only real numbers are knobs.
    if isinstance(value, bool | str | bytes):
        raise InvalidRequestError(
            f"{name} must be a number within [{lo:g}, {hi:g}], got {type(value).__name__} {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"{name} must be a number within [{lo:g}, {hi:g}], got {value!r}") from None
    if not np.isfinite(v) or v < lo or v > hi:
        hint = " (a budget is dollars per request and cannot be negative)" if name == "budget_usd" else ""
        raise InvalidRequestError(f"{name} must be within [{lo:g}, {hi:g}], got {value!r}{hint}")
    return v


def policy_from_knob(knob: Mapping[str, Any]) -> Policy:
    """A policy from a knob mapping: exactly one of threshold / tradeoff / budget_usd."""
    given = [k for k in POLICY_KNOBS if knob.get(k) is not None]
    unknown = [k for k in knob if k not in KNOB_BOUNDS and k not in ("epsilon",)]
    if unknown:
        raise InvalidRequestError(
            f"unknown routing knob(s) {unknown}; use one of threshold, tradeoff, budget_usd"
        )
    if len(given) != 1:
        raise InvalidRequestError(
            f"give exactly one of threshold, tradeoff, budget_usd (got {given or 'none'})"
        )
    name = given[0]
    policy: Policy = {"threshold": ThresholdPolicy, "tradeoff": TradeoffPolicy,
                      "budget_usd": BudgetPolicy}[name](knob[name])
    if knob.get("epsilon"):
        policy = EpsilonExploration(policy, float(knob["epsilon"]))
    return policy


def merge_knob(base: Mapping[str, float], request: Mapping[str, float]) -> dict[str, float]:
    """A request's knob over a base one (an alias's): a request naming a policy knob replaces
    the base's policy knob; ``epsilon`` and ``accept`` are kept unless the request sets them."""
    knob = dict(base)
    if any(k in request for k in POLICY_KNOBS):
        knob = {k: v for k, v in knob.items() if k not in POLICY_KNOBS}
    knob.update(request)
    return knob


def strong_share(policy: Policy, predictions: np.ndarray, costs: np.ndarray) -> float:
    """Share of rows for which ``policy`` picks each row's dearest candidate."""
    chosen = policy.choose(predictions, costs)
    dearest = np.argmax(costs, axis=1)
    return float(np.mean(chosen == dearest)) if len(chosen) else 0.0


def calibrate_threshold(predictions: np.ndarray, costs: np.ndarray, share: float) -> float:
    """The threshold that sends ``share`` of these prompts to their dearest candidate.

    RouteLLM calibrates its threshold as a quantile of the router's scores on a sample of the
    user's prompts; with K candidates the share is monotone in the threshold, so we bisect over
    the distinct predicted values.
    """
    share = check_knob("strong_share", share)
    values = np.unique(np.concatenate([[0.0, 1.0], predictions.ravel()]))
    values = values[(values >= 0) & (values <= 1)]
    lo, hi = 0, len(values) - 1
    # share(threshold) is non-decreasing in the threshold: bisect for the smallest threshold
    # whose share reaches the target.
    while lo < hi:
        mid = (lo + hi) // 2
        if strong_share(ThresholdPolicy(values[mid]), predictions, costs) >= share:
            hi = mid
        else:
            lo = mid + 1
    t = float(values[lo])
    # the gap just below the chosen value gives a threshold that separates ties cleanly
    if lo > 0:
        below = float(values[lo - 1])
        cand = (below + t) / 2
        if abs(strong_share(ThresholdPolicy(cand), predictions, costs) - share) < abs(
            strong_share(ThresholdPolicy(t), predictions, costs) - share
        ):
            t = cand
    return t


class CostAwareExploration(Policy):
    """Epsilon exploration that spends less on dear candidates: with probability ``epsilon``
    a candidate drawn with probability ``floor / K + (1 - floor) * c_j^-power / sum_k c_k^-power``
    (``c`` the expected costs of this prompt), else ``base``'s choice.

    Uniform exploration spends as much on the dearest candidate as on the cheapest; here a model
    ten times dearer is explored (with ``power`` 1) about ten times less, while ``floor`` keeps
    every propensity at least ``epsilon * floor / K``, bounded away from zero, so the
    off-policy estimators' importance weights stay bounded. Each decision records the
    propensity of its candidate and the whole distribution (``Decision.propensities``).
    """

    def __init__(self, base: Policy, epsilon: float, power: float = 1.0, floor: float = 0.25,
                 seed: int | None = None) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise InvalidRequestError(f"epsilon must be within [0, 1], got {epsilon}")
        if not 0.0 < floor <= 1.0:
            raise InvalidRequestError(f"floor must be within (0, 1], got {floor}")
        if power < 0:
            raise InvalidRequestError(f"power must be >= 0, got {power}")
        self.base = base
        self.epsilon = float(epsilon)
        self.power = float(power)
        self.floor = float(floor)
        self._rng = np.random.default_rng(seed)

    def exploration_distribution(self, costs: np.ndarray) -> np.ndarray:
        """(N, K) probabilities of each candidate when exploring."""
        c = np.maximum(np.atleast_2d(np.asarray(costs, dtype=np.float64)), 1e-12)
        k = c.shape[1]
        inv = (c.min(axis=1, keepdims=True) / c) ** self.power  # scale-free, no overflow
        return self.floor / k + (1.0 - self.floor) * inv / inv.sum(axis=1, keepdims=True)

    def action_probabilities(self, predictions: np.ndarray, costs: np.ndarray) -> np.ndarray:
        """(N, K) probability of every candidate for every row (what the log's propensities are)."""
        greedy = self.base.choose(predictions, costs)
        probs = self.epsilon * self.exploration_distribution(costs)
        probs[np.arange(len(greedy)), greedy] += 1.0 - self.epsilon
        return probs

    def choose(self, predictions: np.ndarray, costs: np.ndarray) -> np.ndarray:
        probs = self.action_probabilities(predictions, costs)
        u = self._rng.random(len(probs))[:, None]
        return np.minimum((np.cumsum(probs, axis=1) < u).sum(axis=1), probs.shape[1] - 1)

    def describe(self) -> str:
        return f"cost-aware({self.epsilon:g}, {self.base.describe()})"

    def decide(self, predictions, costs, router: str = "") -> Decision:
        greedy = self.base.decide(predictions, costs, router=router)
        keys = list(predictions)
        g = keys.index(greedy.candidate.key)
        explore = self.exploration_distribution(np.array([[costs[k] for k in keys]]))[0]
        probs = self.epsilon * explore
        probs[g] += 1.0 - self.epsilon
        if self._rng.random() < self.epsilon:
            idx = int(self._rng.choice(len(keys), p=explore))
        else:
            idx = g
        explored = idx != g
        reason = (greedy.reason if not explored else
                  f"exploring (cost-aware, epsilon {self.epsilon:g}): {keys[idx]} "
                  f"(explored with probability {explore[idx]:.3f})")
        return greedy.model_copy(update={
            "candidate": Candidate.from_key(keys[idx]), "explored": explored,
            "propensity": float(probs[idx]), "reason": reason, "policy": self.describe(),
            "propensities": {k: float(p) for k, p in zip(keys, probs, strict=True)},
        })
