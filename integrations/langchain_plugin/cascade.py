"""Cascades in ``ChatAdaptiveRouter`` (issue 14): the core's cascade, LangChain's own draws.

With ``cascade=`` set on the chat model, a non-streamed call without tools and without a pinned
model runs the router-proposed cascade: step 1's samples are drawn and the best kept exactly as
a routed call's are (:class:`~adaptive_router.integrations.langchain_plugin.calls.ChosenModelCall`,
child runs, best of n, the call's cost); the verifier scores the kept answer and, while it is
below ``accept``, the next step is drawn the same way. The plan, exploration, the verifier, the
failure rules and the report are the core's (:mod:`adaptive_router.served_cascade`), the same
the LiteLLM plugin uses, run by the chat model's :class:`~adaptive_router.service.RoutingService`. The returned message is the served step's, with ``usage_metadata``
summed over every step and ``response_metadata["cascade"]`` listing each step;
``response_metadata["cost_usd"]`` is the sum. The traffic log line has the plugin's form.

Streamed calls, calls with tools bound and calls pinned to a model are routed before the call
only: a stream's first step would have to be buffered to be judged, a verifier reads answers
rather than tool calls, and a pin names the one model to call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from adaptive_router.integrations.langchain_plugin.messages import selection_text
from adaptive_router.integrations.langchain_plugin.reporting import response_metadata
from adaptive_router.integrations.langchain_plugin.sampling import Samples
from adaptive_router.integrations.plugin_settings import CascadeSettings
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatResult

from adaptive_router.best_of_n import Selection
from adaptive_router.cascade import DrawnStep
from adaptive_router.domain import Candidate, CostBreakdown, Decision
from adaptive_router.errors import ConfigError, InvalidRequestError
from adaptive_router.policy import POLICY_KNOBS
from adaptive_router.served_cascade import cascade_report, step_decision
from adaptive_router.service import CascadeConfig
from adaptive_router.verifiers import Verifier

if TYPE_CHECKING:
    from adaptive_router.integrations.langchain_plugin.chat import ChatAdaptiveRouter


def cascade_config(value: Any) -> CascadeConfig | None:
    """``cascade=`` as the core's :class:`CascadeConfig` (validated like the plugin's
    ``cascade:`` settings; a Verifier object may be given as ``verifier``); None = off."""
    if value is None or value is False:
        return None
    if isinstance(value, CascadeConfig):
        return value
    if value is True:
        value = {}
    if isinstance(value, CascadeSettings):
        value = value.model_dump()
    if not isinstance(value, Mapping):
        raise ConfigError(f"cascade must be a mapping such as {{'verifier': 'agreement', 'accept': 0.6}}, "
                          f"got {type(value).__name__}")
    raw = dict(value)
    given = raw.get("verifier") if isinstance(raw.get("verifier"), Verifier) else None
    if given is not None:
        raw["verifier"] = given.describe()
    try:
        cs = CascadeSettings.model_validate(raw)
    except Exception as exc:
        raise ConfigError(f"invalid cascade settings: {exc}") from None
    return CascadeConfig(verifier=given if given is not None else cs.verifier, accept=cs.accept,
                         max_steps=cs.max_steps, skip_below=cs.skip_below,
                         steps=tuple(cs.steps) if cs.steps else None)


def applies(llm: ChatAdaptiveRouter, own: Mapping[str, Any]) -> bool:
    """Whether this call runs a cascade (see the module docstring for when it does not)."""
    if llm.cascade_config is None:
        if own.get("accept") is not None:
            raise InvalidRequestError("accept is a cascade's acceptance level, but this "
                                      "ChatAdaptiveRouter has no cascade=; set one or leave accept out")
        return False
    return not own.get("tools") and not own.get("model")


def _knob(llm: ChatAdaptiveRouter, own: Mapping[str, Any]) -> dict[str, float]:
    """The cascade's knob: ``accept`` (per call, else the field, else the cascade's), the call's
    ``budget_usd`` (else the field's, when the call names no other knob) and ``epsilon``."""
    knob: dict[str, float] = {"epsilon": float(own.get("epsilon", llm.epsilon) or 0.0)}
    accept = own.get("accept") if own.get("accept") is not None else llm.accept
    if accept is not None:
        knob["accept"] = accept
    per_call = any(own.get(k) is not None for k in POLICY_KNOBS)
    budget = own.get("budget_usd") if per_call else llm.budget_usd
    if budget is not None:
        knob["budget_usd"] = budget
    return knob


async def arun(llm: ChatAdaptiveRouter, messages: list[BaseMessage], stop: list[str] | None,
               run_manager: Any, own: dict[str, Any], rest: dict[str, Any], started: float,
               sync: bool = False) -> ChatResult:
    """One cascaded call. ``sync``: draw with the models' sync methods (``_generate``'s path,
    whose callback manager is a sync one), in worker threads."""
    service = llm.service
    knob = _knob(llm, own)
    policy = service.cascade_policy(knob)
    assert policy is not None  # applies() checked that a cascade is configured
    chat = convert_to_openai_messages(messages)
    base = await asyncio.to_thread(service.decide, chat, llm.policy({**own, "epsilon": 0.0}))
    plan = service.plan_cascade(base, knob, policy)
    prompt = llm._prompt_text(messages)
    drawn: dict[int, tuple[Decision, Samples, Selection, CostBreakdown]] = {}

    async def draw(cand: Candidate, index: int) -> DrawnStep:
        decision = step_decision(plan, index)
        call = llm._call(decision, messages, stop, run_manager, own, rest)
        samples = await (asyncio.to_thread(call.draw) if sync else call.adraw())
        selection = await asyncio.to_thread(llm._select, prompt, samples)
        cost = llm._cost(decision, samples, selection)
        drawn[index] = (decision, samples, selection, cost)
        return DrawnStep(samples=[selection_text(m) for m in samples.messages], cost=cost,
                         chosen_index=selection.index, selector=selection.selector,
                         selector_scores=list(selection.scores), group=decision.model)

    first = await draw(plan.steps[0], 0)  # no answer yet: a failure here fails the call
    served = await service.arun_cascade(prompt, plan, first, draw)
    report = cascade_report(served, plan.propensities)
    outcome = served.outcome
    total = outcome.total_cost_usd
    decision, samples, selection, cost = drawn[outcome.accepted_step]
    chosen = samples.messages[selection.index]
    metadata = response_metadata(decision, samples, selection, cost)
    metadata.update(cost_usd=total, cascade=report)
    if served.notes:
        metadata["notes"] = list(served.notes)
    taken = [drawn[i][1] for i in range(len(outcome.steps))]
    inputs = int(sum(s.prompt_tokens for s in taken))
    outputs = int(sum(sum(s.output_tokens) for s in taken))
    message = AIMessage(content=chosen.content, tool_calls=chosen.tool_calls,
                        invalid_tool_calls=chosen.invalid_tool_calls,
                        usage_metadata={"input_tokens": inputs, "output_tokens": outputs,
                                        "total_tokens": inputs + outputs},
                        response_metadata=metadata)
    d1, samples1, selection1, cost1 = drawn[0]
    llm._log_traffic(messages, d1, samples1,
                     {**response_metadata(d1, samples1, selection1, cost1), "cost_usd": total}, started,
                     cascade=report)
    return ChatResult(generations=[ChatGeneration(message=message)],
                      llm_output={"model_name": decision.model, "cost_usd": total})


def run_sync(coro: Coroutine[Any, Any, ChatResult]) -> ChatResult:
    """Run a cascade from sync code: here when no event loop runs, else in a worker thread
    (``invoke`` called from inside async code must not nest loops)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="adaptive-router-cascade")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
