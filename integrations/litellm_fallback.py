"""Fallback inside the LiteLLM proxy plugin: LiteLLM performs it, the plugin plans and reports it.

Before the call, :func:`plan_fallbacks` turns a routing decision into LiteLLM's per-request
``fallbacks`` list (the same policy's next choices once the chosen model is removed, within the
request's budget; see :mod:`adaptive_router.fallback`), so that when the chosen deployment errors
or times out the LiteLLM router itself moves on, with its own retries, cooldowns and logging.

After the call, :func:`served_fallback` reads which model group really answered (LiteLLM's
``x-litellm-model-group`` response header) and :func:`account_fallback` rewrites the decision to
the candidate that served it, so that best-of-n, the cost and the traffic log describe what was
really paid for, and says so in the decision's reason and in the proxy's log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adaptive_router.domain import Candidate, Decision
from adaptive_router.fallback import DEFAULT_MAX_FALLBACKS, fallback_candidates, litellm_fallbacks

log = logging.getLogger("adaptive_router.litellm")


def plan_fallbacks(runtime: Any, decision: Decision, knob: Mapping[str, float],
                   max_fallbacks: int = DEFAULT_MAX_FALLBACKS) -> list[dict[str, Any]]:
    """LiteLLM ``fallbacks`` for ``decision``: ``[{"model": group, "n": n}, ...]``, best first.

    The fallback order follows the request's policy without exploration (no exploration seed
    is consumed): a failed deployment is replaced by the greedy next choice.
    """
    policy = runtime.policy_for({**dict(knob), "epsilon": 0.0})
    cands = fallback_candidates(decision, policy, max_fallbacks=max_fallbacks)
    return litellm_fallbacks(cands, runtime.group_of)


def served_group(response: Any) -> str | None:
    """The model group that produced ``response`` (LiteLLM's ``x-litellm-model-group``)."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, Mapping):
        return None
    headers = hidden.get("additional_headers")
    group = headers.get("x-litellm-model-group") if isinstance(headers, Mapping) else None
    return group if isinstance(group, str) and group else None


def served_fallback(response: Any, requested_group: str,
                    fallbacks: Sequence[Mapping[str, Any]] | None) -> Mapping[str, Any] | None:
    """The fallback entry that served ``response``, or None when the chosen group did."""
    group = served_group(response)
    if group is None or group == requested_group:
        return None
    for entry in fallbacks or ():
        if entry.get("model") == group:
            return entry
    return {"model": group, "n": None}


def account_fallback(runtime: Any, decision: Decision, requested_group: str,
                     entry: Mapping[str, Any], texts: int | None = None) -> tuple[Decision, str]:
    """The decision rewritten to the candidate that served the request, and its group.

    The reason keeps what was decided and says what failed; the proxy log gets a warning.
    """
    group = str(entry["model"])
    model = runtime.model_of_group(group)
    if model is None:  # a LiteLLM-level fallback to a group outside the fleet: keep the decision
        log.warning("adaptive_router: %s failed; served by %s (not a fleet model; priced as decided)",
                    requested_group, group)
        return decision, requested_group
    n = int(entry.get("n") or texts or 1)
    served = Candidate(model=model, n=n)
    log.warning("adaptive_router: fallback: %s (%s) failed; served by %s (%s)",
                decision.candidate.key, requested_group, served.key, group)
    reason = f"{decision.reason}; fallback: {decision.candidate.key} failed, served by {served.key}"
    return decision.model_copy(update={"candidate": served, "reason": reason}), group
