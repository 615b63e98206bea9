"""How one LangChain call's keywords shape its routing decision.

A call may carry its own knob (``threshold`` / ``tradeoff`` / ``budget_usd``, and ``epsilon``),
pin a fleet model or candidate (``model=``), or bind tools; the router consumes these keywords
itself and forwards the rest to the chosen model. Pinning and tools narrow the candidates the
policy may choose among, so the decision is re-taken among the allowed ones with the same
predictions and expected costs (which the decision keeps, for the log).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel

from adaptive_router.domain import Decision
from adaptive_router.errors import InvalidRequestError
from adaptive_router.policy import DEFAULT_KNOB, EXTRA_KNOBS, POLICY_KNOBS, Policy, policy_from_knob

#: Per-call keywords the router consumes itself (everything else goes to the chosen model).
ROUTER_KWARGS = (*POLICY_KNOBS, *EXTRA_KNOBS, "model", "tools", "tool_choice")


def call_policy(fields: Mapping[str, Any], epsilon: float,
                overrides: Mapping[str, Any] | None = None) -> Policy:
    """The policy of a call: the per-call knob if one is given, else the fields' knob.

    ``fields`` holds the chat model's knob fields (None when unset); one per-call knob replaces
    them all, since two knobs at once would be ambiguous.
    """
    return policy_from_knob(call_knob(fields, epsilon, overrides))


def call_knob(fields: Mapping[str, Any], epsilon: float,
              overrides: Mapping[str, Any] | None = None,
              default: Mapping[str, float] | None = None) -> dict[str, float]:
    """The knob of a call (what :meth:`RoutingService.policy_for` reads): one of threshold /
    tradeoff / budget_usd, and always ``epsilon`` (0 means no exploration, not "the default").
    Without a knob in the fields or the call: ``default`` (a router checkpoint's validated
    ``default_knob``), else threshold 0.5."""
    overrides = overrides or {}
    knob = {k: fields[k] for k in POLICY_KNOBS if fields.get(k) is not None}
    if any(overrides.get(k) is not None for k in POLICY_KNOBS):
        knob = {k: overrides[k] for k in POLICY_KNOBS if overrides.get(k) is not None}
    if not knob:
        knob = {k: float(v) for k, v in (default or {}).items() if k in POLICY_KNOBS} or dict(DEFAULT_KNOB)
    knob["epsilon"] = float(overrides.get("epsilon", epsilon) or 0.0)
    return knob


def split_call_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the keywords the router consumes, the keywords forwarded to the chosen model)."""
    if "n" in kwargs:
        raise InvalidRequestError("n is decided by the router; to force a sample count, pin a "
                                  "candidate with model='<fleet model>#<n>'")
    own = {k: kwargs[k] for k in ROUTER_KWARGS if k in kwargs}
    rest = {k: v for k, v in kwargs.items() if k not in ROUTER_KWARGS}
    return own, rest


def can_call_tools(target: BaseChatModel | str) -> bool:
    """Whether a LangChain chat model implements ``bind_tools``, or LiteLLM says the model
    supports function calling (a model unknown to LiteLLM's map is assumed not to)."""
    if isinstance(target, BaseChatModel):
        return type(target).bind_tools is not BaseChatModel.bind_tools
    try:
        import litellm

        return bool(litellm.supports_function_calling(model=target))
    except Exception:
        return False


def restrict_decision(decision: Decision, policy: Policy, candidate_keys: Sequence[str],
                      pinned: str | None = None,
                      tool_capable: Callable[[str], bool] | None = None) -> Decision:
    """The decision among the candidates this call allows.

    ``pinned`` is a fleet model (all its sample counts) or a candidate key; ``tool_capable``,
    given when tools are bound, says which fleet models can call them. The reason says why the
    choice was narrowed.
    """
    allowed = list(decision.predictions)
    notes = []
    if pinned:
        if pinned in decision.predictions:
            allowed = [pinned]
        else:
            allowed = [k for k in allowed if k.rpartition("#")[0] == pinned]
        if not allowed:
            raise InvalidRequestError(f"model={pinned!r} is not a fleet model or candidate; "
                                      f"use one of {list(candidate_keys)}")
        notes.append(f"pinned to {pinned}")
    if tool_capable is not None:
        allowed = [k for k in allowed if tool_capable(k.rpartition("#")[0])]
        if not allowed:
            raise InvalidRequestError(
                "tools are bound but no allowed fleet model supports tool calling; add one "
                "(a LangChain chat model implementing bind_tools, or a LiteLLM model that "
                "supports function calling)")
        notes.append("restricted to tool-calling models")
    if decision.candidate.key not in allowed:
        sub = policy.decide({k: decision.predictions[k] for k in allowed},
                            {k: decision.expected_costs_usd[k] for k in allowed},
                            router=decision.router)
        decision = sub.model_copy(update={"predictions": decision.predictions,
                                          "expected_costs_usd": decision.expected_costs_usd})
    if notes:
        decision = decision.model_copy(update={"reason": f"{decision.reason} ({'; '.join(notes)})"})
    return decision
