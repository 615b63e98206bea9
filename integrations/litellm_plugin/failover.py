"""Deployment failover inside the LiteLLM proxy plugin: LiteLLM performs it, the plugin plans and
reports it.

Before the call, :func:`plan_failover` turns a routing decision into LiteLLM's per-request
``fallbacks`` list (LiteLLM's name for failover targets): the same policy's next choices once the
chosen model is removed, within the request's budget (see :mod:`adaptive_router.failover`), so that when
the chosen deployment errors or times out the LiteLLM router itself moves on, with its own
retries, cooldowns and logging.

After the call, :func:`served_failover` reads which model group really answered (LiteLLM's
``x-litellm-model-group`` response header) and :func:`account_failover` rewrites the decision to
the candidate that served it, so that best-of-n, the cost and the traffic log describe what was
really paid for, and says so in the decision's reason and in the proxy's log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from adaptive_router.integrations.litellm_plugin.api_adapters import CHAT_CALLS
from adaptive_router.integrations.litellm_plugin.request_state import RequestState
from adaptive_router.integrations.plugin_settings import PluginSettings

from adaptive_router.domain import Candidate, Decision
from adaptive_router.failover import DEFAULT_MAX_FAILOVERS, as_litellm_fallbacks, failover_candidates

log = logging.getLogger("adaptive_router.litellm")


def plan_failover(runtime: Any, decision: Decision, knob: Mapping[str, float],
                  max_failovers: int = DEFAULT_MAX_FAILOVERS) -> list[dict[str, Any]]:
    """LiteLLM ``fallbacks`` for ``decision``: ``[{"model": group, "n": n}, ...]``, best first.

    The fallback order follows the request's policy without exploration (no exploration seed
    is consumed): a failed deployment is replaced by the greedy next choice.
    """
    policy = runtime.policy_for({**dict(knob), "epsilon": 0.0})
    cands = failover_candidates(decision, policy, max_failovers=max_failovers)
    return as_litellm_fallbacks(cands, runtime.group_of)


async def cooled_down_groups(router: Any, groups: Sequence[str]) -> set[str]:
    """The model groups among ``groups`` all of whose deployments LiteLLM has put in cooldown.

    Routing to one of them would only wait for LiteLLM to refuse it; the plugin routes to the
    next-best candidate instead. A cache look-up per request (LiteLLM's cooldown cache); any
    failure to read it is treated as "nothing cooling down", never as a failed request.
    """
    if router is None or not groups:
        return set()
    try:
        from litellm.router_utils.cooldown_handlers import async_get_cooldown_deployments

        cooling = set(await async_get_cooldown_deployments(router, parent_otel_span=None))
        if not cooling:
            return set()
        out = set()
        for group in groups:
            ids = router.get_model_ids(group)
            if ids and all(i in cooling for i in ids):
                out.add(group)
        return out
    except Exception as exc:  # an internal of LiteLLM: routing goes on without it
        log.debug("adaptive_router: cannot read LiteLLM's cooldowns: %s", exc)
        return set()


def skip_cooling(runtime: Any, decision: Decision, group: str, fallbacks: list[dict[str, Any]],
                 cooling: set[str]) -> tuple[Decision, str, list[dict[str, Any]]]:
    """The decision moved to the first fallback whose group is not cooling down (the rest of
    the fallbacks stay behind it), when the chosen group is cooling down; else unchanged."""
    if group not in cooling:
        return decision, group, fallbacks
    for i, entry in enumerate(fallbacks):
        if entry["model"] in cooling:
            continue
        model = runtime.model_of_group(entry["model"])
        if model is None:
            continue
        cand = Candidate(model=model, n=int(entry.get("n") or 1))
        if cand.key not in decision.expected_costs_usd:
            continue
        log.warning("adaptive_router: %s (%s) is cooling down in LiteLLM; routed to %s (%s)",
                    decision.candidate.key, group, cand.key, entry["model"])
        reason = (f"{decision.reason}; {decision.candidate.key} skipped: {group} is cooling down "
                  f"after failures, routed to {cand.key}")
        moved = decision.model_copy(update={"candidate": cand, "reason": reason})
        return moved, entry["model"], [f for f in fallbacks[i + 1:] if f["model"] not in cooling]
    return decision, group, fallbacks  # everything cools down: let LiteLLM try and report


def served_group(response: Any) -> str | None:
    """The model group that produced ``response`` (LiteLLM's ``x-litellm-model-group``)."""
    hidden = getattr(response, "_hidden_params", None)
    if not isinstance(hidden, Mapping):
        return None
    headers = hidden.get("additional_headers")
    group = headers.get("x-litellm-model-group") if isinstance(headers, Mapping) else None
    return group if isinstance(group, str) and group else None


def served_failover(response: Any, requested_group: str,
                    fallbacks: Sequence[Mapping[str, Any]] | None) -> Mapping[str, Any] | None:
    """The fallback entry that served ``response``, or None when the chosen group did."""
    group = served_group(response)
    if group is None or group == requested_group:
        return None
    for entry in fallbacks or ():
        if entry.get("model") == group:
            return entry
    return {"model": group, "n": None}


def account_failover(runtime: Any, decision: Decision, requested_group: str,
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
    log.warning("adaptive_router: failover: %s (%s) failed; served by %s (%s)",
                decision.candidate.key, requested_group, served.key, group)
    reason = f"{decision.reason}; failover: {decision.candidate.key} failed, served by {served.key}"
    return decision.model_copy(update={"candidate": served, "reason": reason}), group


async def plan_request_failover(data: dict[str, Any], runtime: Any, state: RequestState,
                                settings: PluginSettings, router: Any) -> None:
    """Put LiteLLM ``fallbacks`` (deployment failover) on a chat call, streams included: a
    connection that fails has sent the client nothing yet. A group LiteLLM is cooling down after
    failures is skipped now rather than refused later; the state keeps what was planned."""
    request = state.request
    if not settings.failover or request.call not in CHAT_CALLS or "fallbacks" in data:
        return
    entries = plan_failover(runtime, state.decision, request.knob)
    if request.stream:  # a stream's decision was taken among n = 1 candidates: so are these
        entries = [{"model": f["model"], "n": 1} for f in entries if int(f.get("n") or 1) == 1]
    if not entries:
        return
    if state.cascade is None:
        cooling = await cooled_down_groups(router, [state.group, *(f["model"] for f in entries)])
        if cooling:
            state.decision, state.group, entries = skip_cooling(runtime, state.decision, state.group,
                                                                entries, cooling)
    state.failover = entries
    data["fallbacks"] = [{"model": f["model"]} for f in entries] if request.stream else entries
    if settings.failover_num_retries is not None and "num_retries" not in data:
        # with a next candidate waiting, retrying a failed deployment (LiteLLM's default: 2
        # retries with back-off, 4-7 s on a dead one) only delays the answer
        data["num_retries"] = settings.failover_num_retries
