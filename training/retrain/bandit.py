"""Labelled logged requests as contextual-bandit data, and the split into train and held out.

Off-policy estimates need, per request, the served candidate, its propensity, the knob it was
served under and the serving policy's price of every candidate; lines that lack any of these are
left out, and counted by reason so that the report can say why.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from adaptive_router.domain import Candidate
from adaptive_router.errors import ConfigError, DataError
from adaptive_router.policy import BudgetPolicy, Policy, ThresholdPolicy, TradeoffPolicy
from adaptive_router.routers.base import Router
from adaptive_router.traffic import TrafficLogLine

_KNOB_RE = re.compile(r"(threshold|tradeoff|budget)\(\$?([0-9.eE+-]+)\)")


def policy_from_description(description: str) -> Policy | None:
    """The greedy policy a logged ``Decision.policy`` string describes (exploration stripped):
    ``threshold(0.6)``, ``tradeoff(0.5)``, ``budget($0.01)``, ``epsilon(0.1, threshold(0.6))``."""
    m = _KNOB_RE.search(description or "")
    if m is None:
        return None
    kind, value = m.group(1), float(m.group(2))
    return {"threshold": ThresholdPolicy, "tradeoff": TradeoffPolicy, "budget": BudgetPolicy}[kind](value)


@dataclass
class LoggedBandit:
    """Labelled logged requests as bandit data over a router's candidates."""

    prompts: list[str]
    actions: np.ndarray  # index of the served candidate
    propensities: np.ndarray
    labels: np.ndarray  # quality of the served answer, [0, 1]
    costs: np.ndarray  # realised dollars
    expected_costs: np.ndarray  # (N, K) dollars, as the serving policy priced every candidate
    policies: list[Policy]  # the knob each request was served with (exploration stripped)
    explored: np.ndarray
    request_ids: list[str]
    candidate_keys: list[str]
    tasks: list[str | None] | None = None  # the task / category tag of each request, if logged

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: np.ndarray) -> LoggedBandit:
        idx = np.asarray(idx, dtype=int)
        return LoggedBandit(
            prompts=[self.prompts[i] for i in idx], actions=self.actions[idx],
            propensities=self.propensities[idx], labels=self.labels[idx], costs=self.costs[idx],
            expected_costs=self.expected_costs[idx], policies=[self.policies[i] for i in idx],
            explored=self.explored[idx], request_ids=[self.request_ids[i] for i in idx],
            candidate_keys=self.candidate_keys,
            tasks=None if self.tasks is None else [self.tasks[i] for i in idx])


def build_bandit(lines: Sequence[TrafficLogLine], labels: np.ndarray, candidate_keys: Sequence[str],
                 default_policy: Policy | None = None,
                 task_of: Callable[[TrafficLogLine], str | None] | None = None,
                 ) -> tuple[LoggedBandit, Counter[str]]:
    """Bandit data from labelled lines (``task_of`` reads each line's task tag); also counts
    why lines were left out."""
    keys = list(candidate_keys)
    index = {k: j for j, k in enumerate(keys)}
    dropped: Counter[str] = Counter()
    rows: list[tuple[TrafficLogLine, int, float, np.ndarray, Policy]] = []
    for line, y in zip(lines, labels, strict=True):
        if line.error:
            dropped["request failed"] += 1
            continue
        if not np.isfinite(y):
            dropped["no quality label"] += 1
            continue
        d = line.decision
        key = d.get("candidate") or Candidate(model=str(d.get("model")), n=int(d.get("n") or 1)).key
        if key not in index:
            dropped["served candidate unknown to the base router (pass --fleet or --base none "
                    "to learn it)"] += 1
            continue
        exp = d.get("expected_costs_usd") or {}
        if not all(k in exp for k in keys):
            dropped["no expected cost of every candidate in the decision"] += 1
            continue
        policy = policy_from_description(str(d.get("policy", ""))) or default_policy
        if policy is None:
            dropped["no policy knob in the decision (pass --threshold)"] += 1
            continue
        rows.append((line, index[key], float(y), np.array([float(exp[k]) for k in keys]), policy))
    if not rows:
        raise DataError(
            "no logged request is usable for retraining: "
            + ", ".join(f"{v} x {k}" for k, v in dropped.items())
            + ". Log through the adaptive-router plugin (its decision carries the candidates' "
            "expected costs and the policy), and label quality with feedback, reward scores or a judge."
        )
    bandit = LoggedBandit(
        prompts=[r[0].prompt for r in rows],
        actions=np.array([r[1] for r in rows], dtype=int),
        propensities=np.array([r[0].propensity for r in rows], dtype=np.float64),
        labels=np.array([r[2] for r in rows]),
        costs=np.array([r[0].cost_usd for r in rows]),
        expected_costs=np.stack([r[3] for r in rows]),
        policies=[r[4] for r in rows],
        explored=np.array([r[0].explored for r in rows], dtype=bool),
        request_ids=[r[0].request_id for r in rows],
        candidate_keys=keys,
        tasks=[task_of(r[0]) for r in rows] if task_of is not None else None,
    )
    return bandit, dropped


def unique_prompts(prompts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct prompts (first-seen order) and, per request, its prompt's index: traffic
    repeats prompts, and each distinct one needs embedding, routing and hashing only once."""
    ids: dict[str, int] = {}
    inverse = np.fromiter((ids.setdefault(p, len(ids)) for p in prompts), dtype=np.int64,
                          count=len(prompts))
    return list(ids), inverse


def predict_unique(router: Router, prompts: Sequence[str]) -> np.ndarray:
    """``router.predict_batch(prompts)``, computed once per distinct prompt."""
    distinct, inverse = unique_prompts(prompts)
    return router.predict_batch(distinct)[inverse]


def split_by_prompt(prompts: Sequence[str], holdout: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out indices by a hash of the prompt: repeats of a prompt stay together."""
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"holdout must be within (0, 1), got {holdout}")
    distinct, inverse = unique_prompts(prompts)
    u = np.array([int(hashlib.sha1(f"{seed}\0{p}".encode()).hexdigest()[:8], 16) / 16**8
                  for p in distinct])
    held = u[inverse] < holdout if len(prompts) else np.zeros(0, dtype=bool)
    return np.flatnonzero(~held), np.flatnonzero(held)
