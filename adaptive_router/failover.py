"""Failover when the chosen deployment fails: the next-best candidates within the budget.

"Failover" here is only this: another deployment serves a call that failed. (A reward model that
cannot score is a *selection fallback*, see :mod:`adaptive_router.best_of_n`; the SDK strategy's
choice of a candidate with a healthy deployment is its *healthy-deployment preference*.)

A router sits in front of every call, so a failing deployment must not fail the request when
another candidate could serve it. When the chosen candidate's call errors or times out, the
request goes to the candidate the *same policy* would have chosen had the failed model not
been there, then the next, and so on, and only among candidates whose expected cost fits the
request's budget (its ``budget_usd`` knob, or an explicit cap).

- :func:`failover_candidates` computes that order from a :class:`~adaptive_router.domain.Decision`
  (it needs nothing but the decision's predictions and expected costs, and the policy).
- :func:`as_litellm_fallbacks` turns it into LiteLLM's per-request ``fallbacks`` list
  (``[{"model": group, "n": n}, ...]``), so the LiteLLM router itself performs the failover,
  keeping its retries, cooldowns and logging.
- :func:`acall_with_failover` runs the failover loop for callers that draw samples themselves
  (the SDK, LangChain), with a timeout per attempt, and logs every failed attempt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from adaptive_router.domain import Candidate, Decision
from adaptive_router.errors import InvalidRequestError, SamplingError
from adaptive_router.policy import BudgetPolicy, EpsilonExploration, Policy, check_knob

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How many failover candidates are tried at most by default (LiteLLM's own default is 5).
DEFAULT_MAX_FAILOVERS = 3


def _greedy(policy: Policy | None) -> Policy | None:
    """Fallback order is deterministic: an exploring policy falls back like its base."""
    while isinstance(policy, EpsilonExploration):
        policy = policy.base
    return policy


def budget_of(policy: Policy | None) -> float | None:
    """The per-request dollar budget a policy enforces, if any."""
    policy = _greedy(policy)
    return policy.budget_usd if isinstance(policy, BudgetPolicy) else None


def failover_candidates(
    decision: Decision,
    policy: Policy | None = None,
    budget_usd: float | None = None,
    failed_models: Iterable[str] | None = None,
    max_failovers: int = DEFAULT_MAX_FAILOVERS,
) -> list[Candidate]:
    """Candidates to try, in order, after ``decision``'s candidate failed.

    Parameters
    ----------
    decision: the routing decision whose candidate failed (its predictions and expected
        costs say what else there is and what it would cost).
    policy: the policy that made the decision; failover candidates are its successive choices among the
        remaining candidates. Without one: highest predicted quality first, cheaper on ties.
    budget_usd: the most a failover candidate may be expected to cost; defaults to the policy's budget
        (a :class:`BudgetPolicy`), else no cap. Candidates above it are never tried.
    failed_models: models known to be failing; defaults to the decision's model. Every sample
        count of a failing model is skipped (they are served by the same deployment).
    max_failovers: at most this many candidates are returned.
    """
    if max_failovers < 0:
        raise InvalidRequestError(f"max_failovers must be >= 0, got {max_failovers}")
    if budget_usd is None:
        budget_usd = budget_of(policy)
    else:
        budget_usd = check_knob("budget_usd", budget_usd)
    failed = set(failed_models) if failed_models is not None else {decision.model}
    keys = [k for k in decision.predictions
            if Candidate.from_key(k).model not in failed
            and (budget_usd is None or decision.expected_costs_usd.get(k, np.inf) <= budget_usd)]
    greedy = _greedy(policy)
    order: list[str] = []
    while keys and len(order) < max_failovers:
        q = np.array([decision.predictions[k] for k in keys], dtype=np.float64)
        c = np.array([decision.expected_costs_usd.get(k, np.inf) for k in keys], dtype=np.float64)
        if greedy is not None:
            idx = int(greedy.choose(q[None, :], c[None, :])[0])
        else:
            idx = min(range(len(keys)), key=lambda i: (-q[i], c[i]))
        order.append(keys.pop(idx))
    return [Candidate.from_key(k) for k in order]


def as_litellm_fallbacks(candidates: Iterable[Candidate], group_of: Callable[[str], str]) -> list[dict[str, Any]]:
    """LiteLLM's per-request ``fallbacks``: one ``{"model": group, "n": n}`` per candidate.

    ``group_of`` maps a fleet model name to the LiteLLM model group (or model) that serves it.
    LiteLLM merges each dict into the call's kwargs, so each failover candidate also draws its own ``n``.
    """
    return [{"model": group_of(c.model), "n": c.n} for c in candidates]


@dataclass
class FailoverResult:
    """What a call with failover returned, which candidate served it, and what failed first."""

    value: Any
    candidate: Candidate
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed_over(self) -> bool:
        return bool(self.attempts)


async def acall_with_failover(
    decision: Decision,
    call: Callable[[Candidate], Awaitable[T]],
    policy: Policy | None = None,
    budget_usd: float | None = None,
    timeout_s: float | None = None,
    max_failovers: int = DEFAULT_MAX_FAILOVERS,
) -> FailoverResult:
    """``await call(candidate)`` for the decision's candidate, then for each failover candidate until one
    succeeds. Each attempt may take at most ``timeout_s``. Failures are logged (warning) and
    listed in the result; when every attempt fails, :class:`SamplingError` names them all.
    """
    tried: list[Candidate] = [decision.candidate]
    failed_models: set[str] = set()
    attempts: list[dict[str, Any]] = []
    queue = [decision.candidate]
    while queue:
        cand = queue.pop(0)
        t0 = time.perf_counter()
        try:
            if timeout_s is not None:
                value = await asyncio.wait_for(call(cand), timeout_s)
            else:
                value = await call(cand)
            if attempts:
                log.warning("served by failover candidate %s after %d failed attempt(s)", cand.key, len(attempts))
            return FailoverResult(value=value, candidate=cand, attempts=attempts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any provider failure moves on to the next candidate
            kind = "timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
            attempts.append({"candidate": cand.key, "error": kind, "message": str(exc)[:300],
                             "latency_s": time.perf_counter() - t0})
            log.warning("candidate %s failed (%s); falling back", cand.key, kind)
            failed_models.add(cand.model)
        if not queue:
            remaining = max_failovers - (len(tried) - 1)
            nxt = [c for c in failover_candidates(decision, policy, budget_usd, failed_models,
                                                  max_failovers=max(remaining, 0))
                   if c not in tried]
            queue.extend(nxt[:1])
            tried.extend(nxt[:1])
    raise SamplingError(
        "every candidate failed: " + "; ".join(f"{a['candidate']}: {a['error']}" for a in attempts)
        + ". Check the deployments' health, or raise the budget so more candidates qualify."
    )
