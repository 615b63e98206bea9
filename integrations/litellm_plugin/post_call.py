"""After a routed call: what was served, what it cost, and the traffic log line.

The proxy hook hands each function the runtime that decided the request and its
:class:`~adaptive_router.integrations.litellm_plugin.request_state.RequestState`. A failover
that served the request is accounted first (the decision is rewritten to the candidate that
really answered), then best of n and pricing (:meth:`AdaptiveRuntime.aaccount`), then the cascade
if one was planned, then one traffic log line, from which the Prometheus outcome counters are
also updated so that the two always agree.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from adaptive_router.integrations.litellm_plugin.api_adapters import SINGLE_OUTPUT_CALLS
from adaptive_router.integrations.litellm_plugin.failover import (
    account_failover,
    served_failover,
    served_group,
)
from adaptive_router.integrations.litellm_plugin.metrics import observe_outcome
from adaptive_router.integrations.litellm_plugin.request_state import RequestState, annotate
from adaptive_router.integrations.litellm_plugin.runtime import (
    ESCALATION_PARAMS,
    AdaptiveRuntime,
    RoutedResult,
    usage_tokens,
)

from adaptive_router.pricing import counter_for
from adaptive_router.traffic import TrafficLogLine

log = logging.getLogger("adaptive_router.litellm")

#: ``escalate(group, n, step_index, request_params)``: one cascade step called through LiteLLM.
Escalate = Callable[[str, int, int, dict[str, Any]], Awaitable[Any]]


def stand_in(response: Any) -> str | None:
    """The local model that answered for a replay deployment (its ``unrecorded:``), if one did."""
    hidden = getattr(response, "_hidden_params", None)
    info = hidden.get("adaptive_router_replay") if isinstance(hidden, Mapping) else None
    found = info.get("stand_in") if isinstance(info, Mapping) else None
    return str(found) if found else None


def caller_identity(data: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's key, user, team and tags as the proxy put them in the request's metadata
    (``user_api_key*``, ``tags``): passed on with a cascade's escalation calls, which LiteLLM's
    cost-tracking callback reads to charge spend to a key, user and team."""
    md = data.get("metadata")
    if not isinstance(md, Mapping):
        return {}
    return {k: v for k, v in md.items()
            if isinstance(k, str) and (k.startswith("user_api_key") or k == "tags") and v is not None}


def escalation(llm_router: Callable[[], Any], data: Mapping[str, Any], state: RequestState) -> Escalate:
    """How a cascade step is called: through the proxy's own router (the step's model group: its
    load balancing, retries and prices), charged to the caller's key, user and team."""
    identity = caller_identity(data)

    async def escalate(group: str, n: int, index: int, params: dict[str, Any]) -> Any:
        kwargs = dict(params)
        if n > 1:
            kwargs["n"] = n
        return await llm_router().acompletion(
            model=group, messages=state.request.messages,
            metadata={**identity, "adaptive_router_cascade_step": index + 1,
                      "adaptive_router_request_id": state.request_id}, **kwargs)

    return escalate


async def account_response(runtime: AdaptiveRuntime, data: dict[str, Any], state: RequestState,
                           response: Any, escalate: Escalate) -> RoutedResult:
    """Account a non-streamed response (and run its cascade), write the log line, and return
    what the client is served."""
    messages = state.request.messages  # parsed once, before the call
    entry = served_failover(response, state.group, state.failover)
    if entry is not None:  # a failover served it: account for what was really paid
        state.decision, state.group = account_failover(runtime, state.decision, state.group, entry)
    result = await runtime.aaccount(state.decision, state.group, messages, response,
                                    request_id=state.request_id,
                                    single_output=state.call in SINGLE_OUTPUT_CALLS)
    standing_in = stand_in(response)
    if standing_in is not None:
        # said in the body and the traffic log: these samples are not the routed model's, and
        # retraining on them as if they were would teach the router the wrong model's quality
        result.notes.append(f"unrecorded prompt: answered by {standing_in} standing in for "
                            f"{state.decision.model} (replay deployment's unrecorded:), priced as "
                            f"{state.decision.model}")
    logged = result
    if state.cascade is not None:
        plan = state.cascade.served_by(state.decision)  # a failover may have served step 1
        params = {k: data[k] for k in ESCALATION_PARAMS if data.get(k) is not None}

        async def call(group: str, n: int, index: int) -> Any:
            return await escalate(group, n, index, params)

        result, logged = await runtime.acascade(plan, messages, response, result, call, state.request_id)
    await runtime.awrite_log(log_line(runtime, data, state, messages, logged))
    return result


async def account_stream(runtime: AdaptiveRuntime, data: dict[str, Any], state: RequestState, text: str,
                         usage: Any, served: str | None = None) -> dict[str, Any]:
    """Account a finished stream from its text and reported usage (counted by the plugin when the
    provider sent none), write the log line, and return the body key for the stream's end."""
    if served is not None and served != state.group:  # a failover served it: price that
        entry = next((f for f in state.failover if f.get("model") == served), {"model": served})
        state.decision, state.group = account_failover(runtime, state.decision, state.group,
                                                       {**entry, "n": 1})
    decision = state.decision
    messages = state.request.messages  # parsed once, before the call
    prompt_tokens, completion = usage_tokens({"usage": usage})
    notes = []
    model = runtime.fleet.model(decision.model)
    if prompt_tokens is None:
        prompt_tokens = runtime.cost_model.prompt_tokens(decision.model, messages)
        notes.append("streamed without usage: prompt tokens counted by the plugin "
                     "(send stream_options: {include_usage: true} for billed counts)")
    if completion is None:
        completion = counter_for(model.price_model or model.call_name, model.tokenizer).count_text(text)
        notes.append("streamed without usage: output tokens counted from the text")
    cost = runtime.realised_cost(decision.model, prompt_tokens, [completion])
    result = RoutedResult(
        decision=decision, model_group=state.group, chosen_index=0, samples=[text], scores=[],
        selector="first", prompt_tokens=int(prompt_tokens), output_tokens=[int(completion)],
        cost_usd=cost.total_usd, input_cost_usd=cost.input_cost_usd,
        output_cost_usd=cost.output_cost_usd, request_id=state.request_id, notes=notes,
    )
    state.result = result.body()
    annotate(data, state.result)
    await runtime.awrite_log(log_line(runtime, data, state, messages, result))
    return state.result


def response_headers(state: RequestState, response: Any, runtime: AdaptiveRuntime | None) -> dict[str, str]:
    """The ``x-adaptive-router-*`` headers: the served model and n (and, for a stream, whose
    headers leave before its cost is known, the expected cost, marked as such)."""
    if state.headers:
        return dict(state.headers)
    model, n = state.decision.candidate.model, state.decision.candidate.n
    if response is not None and state.stream:
        # a stream's headers leave after its connection opened: when a failover opened it, say
        # which model serves (and its expected cost), not the one that failed
        group = served_group(response)
        served = runtime.model_of_group(group) if group and runtime is not None else None
        if group != state.group and served is not None:
            model, n = served, 1
    headers = {"x-adaptive-router-model": str(model), "x-adaptive-router-n": str(n)}
    if response is not None and state.stream:
        expected = state.decision.expected_costs_usd.get(f"{model}#{n}", 0.0)
        headers["x-adaptive-router-cost-usd"] = f"{float(expected):.10f}"
        headers["x-adaptive-router-cost-basis"] = "expected"
    return headers


async def log_failure(runtime: AdaptiveRuntime, data: dict[str, Any], state: RequestState,
                      exc: Exception) -> None:
    """The traffic log line of a routed request that failed after its decision."""
    messages = state.request.messages  # parsed once, before the call
    await runtime.awrite_log(log_line(runtime, data, state, messages, None,
                                      error=f"{type(exc).__name__}: {str(exc)[:500]}"))


def log_line(runtime: AdaptiveRuntime, data: Mapping[str, Any], state: RequestState,
             messages: list[dict[str, Any]], result: RoutedResult | None,
             error: str | None = None) -> TrafficLogLine:
    """The request's traffic log line; its outcome (cost, saving, escalations, failover or
    failure) is counted in the Prometheus metrics from the same line, so the two agree."""
    request = state.request
    line = runtime.traffic_line(
        request_id=state.request_id, decision=state.decision, group=state.group, messages=messages,
        result=result, latency_s=time.perf_counter() - request.t0, error=error, alias=request.alias,
        knob=request.knob, call=request.call, stream=request.stream, user=data.get("user"))
    try:
        observe_outcome(line, runtime.fleet.reference_model(), state.decided_group)
    except Exception:  # metrics must never fail a request that was served
        log.exception("adaptive_router: could not update the metrics")
    return line
