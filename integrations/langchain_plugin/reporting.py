"""What a routed LangChain call tells the world: callbacks, metadata, cost and the traffic log.

The chosen model's calls run as child runs of the router's run, so traces nest them; the
decision goes out as a custom event to every callback handler; the returned message carries the
decision and the dollar cost in ``response_metadata``. The cost and the traffic log line are the
core routing service's (:class:`adaptive_router.service.RoutingService`), as in the LiteLLM plugin.
"""

from __future__ import annotations

from typing import Any

from adaptive_router.integrations.langchain_plugin.sampling import Samples
from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)

from adaptive_router.best_of_n import Selection
from adaptive_router.domain import CostBreakdown, Decision

DECISION_EVENT = "adaptive_router_decision"
#: Tag of the chosen model's runs, so a trace shows which child run the router chose.
CHOSEN_TAG = "adaptive-router:chosen"


def child_callbacks(
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> CallbackManager | AsyncCallbackManager | None:
    """Callbacks for runs nested under the router's run (the chosen model's calls).

    A chat model's run manager has no ``get_child()`` (only chain runs do), so this builds the
    same thing: the run's inheritable handlers, tags and metadata, with the run as parent.
    """
    if run_manager is None:
        return None
    klass = AsyncCallbackManager if isinstance(run_manager, AsyncCallbackManagerForLLMRun) else CallbackManager
    manager = klass(handlers=[], parent_run_id=run_manager.run_id)
    manager.set_handlers(run_manager.inheritable_handlers)
    manager.add_tags(run_manager.inheritable_tags)
    manager.add_metadata(run_manager.inheritable_metadata)
    return manager


def announce_decision(run_manager: CallbackManagerForLLMRun | None, decision: Decision) -> None:
    """Send the decision to every callback handler as the custom event :data:`DECISION_EVENT`."""
    if run_manager:
        child_callbacks(run_manager).on_custom_event(DECISION_EVENT, decision.as_dict(),
                                                     run_id=run_manager.run_id)


async def aannounce_decision(run_manager: AsyncCallbackManagerForLLMRun | None, decision: Decision) -> None:
    """:func:`announce_decision` for async runs."""
    if run_manager:
        await child_callbacks(run_manager).on_custom_event(DECISION_EVENT, decision.as_dict(),
                                                           run_id=run_manager.run_id)


def child_options(decision: Decision) -> dict[str, Any]:
    """Tags and metadata of the chosen model's runs: which candidate, under which policy."""
    return {"tags": [CHOSEN_TAG],
            "metadata": {"adaptive_router_candidate": decision.candidate.key,
                         "adaptive_router_policy": decision.policy}}


def usage_totals(samples: Samples) -> dict[str, int]:
    """``usage_metadata`` summed over all samples: the discarded ones were paid for too."""
    out = int(sum(samples.output_tokens))
    return {"input_tokens": int(samples.prompt_tokens), "output_tokens": out,
            "total_tokens": int(samples.prompt_tokens) + out}


def response_metadata(decision: Decision, samples: Samples, selection: Selection,
                      cost: CostBreakdown) -> dict[str, Any]:
    """The returned message's ``response_metadata``: decision, samples, selection and cost."""
    chosen_meta = (samples.child_metadata[selection.index]
                   if selection.index < len(samples.child_metadata) else {})
    return {
        "model_name": decision.model,
        "model_provider": "adaptive-router",
        "finish_reason": chosen_meta.get("finish_reason"),
        "decision": decision.as_dict(),
        "candidate": decision.candidate.key,
        "n": decision.n,
        "samples": len(samples.messages),
        "calls": samples.calls,
        "selector": selection.selector,
        "selected_index": selection.index,
        "reward_scores": list(selection.scores),
        "selection_fallback": selection.selection_fallback,
        "cost_usd": cost.total_usd,
        "cost": cost.as_dict(),
        "usage_source": samples.usage_source,
        "chosen_model_metadata": {k: v for k, v in chosen_meta.items()
                                  if isinstance(v, str | int | float | bool | type(None))},
    }
