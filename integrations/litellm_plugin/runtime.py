"""What the LiteLLM proxy hook and the SDK routing strategy share: the core's routing service,
built from the plugin's settings, plus reading LiteLLM responses.

:class:`AdaptiveRuntime` is a :class:`~adaptive_router.service.RoutingService` (knob -> policy,
decide, select, account, cascade, traffic log line) built once per process from
:class:`PluginSettings`, with the fleet priced from the LiteLLM deployments' ``model_info`` where
the fleet gives no price. What it adds is translation: the n sample texts of a chat completion or
a Responses API response, their per-sample output tokens, keeping one choice, and the cascade's
escalation calls as LiteLLM responses. It keeps no per-request state, so any number of proxy
replicas can each build one.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from adaptive_router.integrations.plugin_settings import PluginSettings

from adaptive_router.cascade import DrawnStep
from adaptive_router.domain import Candidate, CostBreakdown, Decision, Fleet, Price
from adaptive_router.prompts import prompt_from_messages
from adaptive_router.served_cascade import ServedPlan, cascade_report, step_decision
from adaptive_router.service import CascadeConfig, RoutingService, load_serving_router
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

log = logging.getLogger("adaptive_router.litellm")

#: The client's sampling parameters that a cascade's escalation calls repeat.
ESCALATION_PARAMS = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
                     "presence_penalty", "frequency_penalty", "logit_bias", "response_format",
                     "tools", "tool_choice", "parallel_tool_calls", "user", "timeout")
#: Key of a LiteLLM response's ``_hidden_params`` where our providers put per-sample tokens.
HIDDEN_OUTPUT_TOKENS = "adaptive_router_output_tokens"


def deployment_price(model_list: Iterable[Mapping[str, Any]], group: str) -> Price | None:
    """The price a LiteLLM config gives model group ``group`` (model_info or litellm_params)."""
    for dep in model_list:
        if dep.get("model_name") != group:
            continue
        for section in (dep.get("model_info") or {}, dep.get("litellm_params") or {}):
            inp = section.get("input_cost_per_token")
            out = section.get("output_cost_per_token")
            if inp is not None and out is not None:
                return Price(input_per_token=float(inp), output_per_token=float(out))
    return None


def fleet_with_deployment_prices(fleet: Fleet, model_list: Iterable[Mapping[str, Any]] | None) -> Fleet:
    """The fleet, each unpriced model priced from its LiteLLM model group when the config does.

    One source of truth for prices: the proxy bills from ``model_info``, so the plugin reports
    the same dollars. A fleet ``price:`` still wins.
    """
    if not model_list:
        return fleet
    model_list = list(model_list)
    models = []
    for m in fleet.models:
        if m.price is None and m.price_model is None:
            price = deployment_price(model_list, m.call_name)
            if price is not None:
                m = m.model_copy(update={"price": price})
        models.append(m)
    return fleet.model_copy(update={"models": models})



@dataclass
class RoutedResult:
    """What the plugin reports for one served request (the ``adaptive_router`` body key)."""

    decision: Decision
    model_group: str
    chosen_index: int
    samples: list[str]
    scores: list[float]
    selector: str
    prompt_tokens: int
    output_tokens: list[int]
    cost_usd: float
    input_cost_usd: float
    output_cost_usd: float
    selection_fallback: str | None = None
    request_id: str = ""
    notes: list[str] = field(default_factory=list)
    #: the cascade's report (:func:`adaptive_router.served_cascade.cascade_report`) when one ran:
    #: the fields above then describe the served step, and the costs are sums over every step
    cascade: dict[str, Any] | None = None

    def cost_breakdown(self) -> CostBreakdown:
        """This result's cost as the core's :class:`CostBreakdown` (one cascade step's cost)."""
        return CostBreakdown(model=self.decision.model, n=self.decision.n,
                             prompt_tokens=self.prompt_tokens, output_tokens=list(self.output_tokens),
                             input_cost_usd=self.input_cost_usd, output_cost_usd=self.output_cost_usd)

    def drawn_step(self, payload: Any = None) -> DrawnStep:
        """This result as a cascade step (what :func:`adaptive_router.cascade.arun_cascade` reads)."""
        return DrawnStep(samples=list(self.samples), cost=self.cost_breakdown(),
                         chosen_index=self.chosen_index, selector=self.selector,
                         selector_scores=list(self.scores), payload=payload, group=self.model_group,
                         notes=list(self.notes))

    def body(self) -> dict[str, Any]:
        d = self.decision
        out = {
            "model": d.model,
            "model_group": self.model_group,
            "n": d.n,
            "cost_usd": self.cost_usd,
            "input_cost_usd": self.input_cost_usd,
            "output_cost_usd": self.output_cost_usd,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "scores": self.scores,
            "chosen_index": self.chosen_index,
            "selector": self.selector,
            "decision": {
                "candidate": d.candidate.key,
                "policy": d.policy,
                "router": d.router,
                "reason": d.reason,
                "predicted_quality": d.predictions.get(d.candidate.key),
                "expected_cost_usd": d.expected_cost_usd,
                "explored": d.explored,
                "propensity": d.propensity,
            },
            "request_id": self.request_id,
        }
        if self.selection_fallback:
            out["selection_fallback"] = self.selection_fallback
        if self.notes:
            out["notes"] = self.notes
        if self.cascade is not None:
            out["cascade"] = self.cascade
        return out

    def headers(self) -> dict[str, str]:
        out = {
            "x-adaptive-router-model": self.decision.model,
            "x-adaptive-router-n": str(self.decision.n),
            "x-adaptive-router-cost-usd": f"{self.cost_usd:.10f}",
        }
        if self.cascade is not None:
            out["x-adaptive-router-steps"] = ">".join(s["candidate"] for s in self.cascade["steps"])
            out["x-adaptive-router-accepted-step"] = str(self.cascade["served_step"])
        return out


class AdaptiveRuntime(RoutingService):
    """The routing service of the LiteLLM plugin and strategy, built once per process."""

    def __init__(self, settings: PluginSettings, model_list: Iterable[Mapping[str, Any]] | None = None) -> None:
        self.settings = settings
        base_fleet = Fleet.from_yaml(settings.path(settings.fleet))  # type: ignore[arg-type]
        fleet = fleet_with_deployment_prices(base_fleet, model_list)
        router = load_serving_router(settings.router_spec(), fleet,
                                     quantize_encoder=settings.quantize_encoder,
                                     micro_batching=settings.micro_batching,
                                     micro_batch_size=settings.micro_batch_size,
                                     micro_batch_ms=settings.micro_batch_ms)
        log_path = settings.path(settings.traffic_log)
        writer, writer_error = None, None
        try:
            writer = (TrafficLogWriter(log_path, max_bytes=settings.traffic_log_max_bytes,
                                       backups=settings.traffic_log_backups,
                                       redaction=settings.redaction_policy())
                      if log_path is not None else None)
        except Exception as exc:  # an unwritable log must not stop routing: report it (issue 9)
            writer_error = f"{log_path}: {exc}"
            log.error("adaptive_router: could not write the traffic log %s", writer_error)
        cs = settings.cascade
        cascade = (CascadeConfig(verifier=cs.verifier, accept=cs.accept, max_steps=cs.max_steps,
                                 skip_below=cs.skip_below, steps=tuple(cs.steps) if cs.steps else None)
                   if cs is not None else None)
        super().__init__(
            fleet, router, default_knob=settings.policy, explore_epsilon=settings.explore_epsilon,
            explore_seed=settings.explore_seed,
            explore_strategy=settings.explore_strategy,
            selector=settings.selector, reward_model=settings.reward_model,
            count_tokens=settings.count_tokens, traffic_log=writer, traffic_log_error=writer_error,
            log_messages=settings.redaction.keep == "everything", cascade=cascade,
            resolve_path=settings.path)
        self.check()  # the whole router loads now: a bad checkpoint stops the plugin at startup

    # -- cascades: escalation calls are LiteLLM calls -------------------------------------------
    async def acascade(self, plan: ServedPlan, messages: Sequence[Mapping[str, Any]], response: Any,
                       first: RoutedResult, call: Callable[[str, int, int], Awaitable[Any]],
                       request_id: str = "") -> tuple[RoutedResult, RoutedResult]:
        """Run ``plan`` on from its first step (``response``, already accounted as ``first``).

        ``call(group, n, step_index)`` makes one escalation call and returns the LiteLLM response
        (the proxy calls its router, the SDK strategy its ``litellm.Router``); each is accounted as
        step 1 was. ``response`` is changed in place to hold the served step's kept choice, with
        ``usage`` counting every step's tokens. Returns (the served step's result, step 1's
        result), both with the summed costs, every step's notes and the ``cascade`` report, which
        also gives each step's LiteLLM-computed cost. Never raises: see
        :func:`adaptive_router.served_cascade.arun_served_cascade`.
        """
        results: dict[int, tuple[Any, RoutedResult]] = {0: (response, first)}

        async def draw(cand: Candidate, index: int) -> DrawnStep:
            group = self.group_of(cand.model)
            reply = await call(group, cand.n, index)
            result = await self.aaccount(step_decision(plan, index), group, messages, reply,
                                         request_id=request_id)
            results[index] = (reply, result)
            return result.drawn_step(payload=reply)

        prompt = prompt_from_messages(messages)
        served = await self.arun_cascade(prompt, plan, first.drawn_step(payload=response), draw)
        report = cascade_report(served, plan.propensities)
        known = []
        for i, step in enumerate(report["steps"]):
            step["litellm_cost_usd"] = litellm_cost(results[i][0]) if i in results else None
            known.append(step["litellm_cost_usd"])
        report["litellm_cost_usd"] = (float(sum(known)) if known and all(c is not None for c in known)
                                      else None)
        outcome = served.outcome
        index = outcome.accepted_step
        reply, chosen = results[index]
        if index > 0:  # the client gets the served step's kept choice, and every step's tokens
            serve_choice(response, reply, [results[i][0] for i in range(len(outcome.steps))])
        totals = {
            "cost_usd": outcome.total_cost_usd,
            "input_cost_usd": float(sum(s.drawn.cost.input_cost_usd for s in outcome.steps)),
            "output_cost_usd": float(sum(s.drawn.cost.output_cost_usd for s in outcome.steps)),
            "cascade": report,
            "notes": [n for i in range(len(outcome.steps)) for n in results[i][1].notes] + served.notes,
        }
        return replace(chosen, **totals), replace(first, **totals)

    # -- accounting -----------------------------------------------------------------------------
    async def aaccount(self, decision: Decision, group: str, messages: Sequence[Mapping[str, Any]],
                       response: Any, request_id: str = "", single_output: bool = False) -> RoutedResult:
        """Keep the best of the response's samples and price the request.

        The chat completion is changed in place to hold the kept choice only (its ``usage``
        still counts every sample: they were paid for). ``single_output``: a Responses API
        response (one output text). A reward model that fails keeps the first sample.
        """
        from adaptive_router.pricing import counter_for
        from adaptive_router.prompts import prompt_from_messages

        prompt = prompt_from_messages(messages)
        texts = [responses_text(response)] if single_output else chat_texts(response)
        prompt_tokens, completion_total = usage_tokens(response)
        notes = []
        if prompt_tokens is None:
            prompt_tokens = self.cost_model.prompt_tokens(decision.model, list(messages))
            notes.append("prompt tokens counted by the plugin (the provider reported no usage)")
        model = self.fleet.model(decision.model)
        counter = counter_for(model.price_model or model.call_name, model.tokenizer)
        outputs, note = per_sample_tokens(response, texts, counter, completion_total)
        if note:
            notes.append(note)
        if not single_output and len(texts) != decision.n:
            notes.append(f"the provider returned {len(texts)} of the {decision.n} samples asked for")
        selection = await self.aselect(prompt, texts)
        if not single_output and len(texts) > 1:
            keep_choice(response, selection.index)
        cost = self.realised_cost(decision.model, prompt_tokens, outputs)
        return RoutedResult(
            decision=decision, model_group=group, chosen_index=selection.index,
            samples=texts, scores=list(selection.scores), selector=selection.selector,
            prompt_tokens=int(prompt_tokens), output_tokens=outputs, cost_usd=cost.total_usd,
            input_cost_usd=cost.input_cost_usd, output_cost_usd=cost.output_cost_usd,
            selection_fallback=selection.selection_fallback, request_id=request_id, notes=notes,
        )

    def traffic_line(self, request_id: str, decision: Decision, group: str,
                     messages: Sequence[Mapping[str, Any]], result: RoutedResult | None,
                     latency_s: float, error: str | None = None, **extra: Any) -> TrafficLogLine:
        """The traffic log line of one routed request (served, or failed with ``error``)."""
        if result is not None:
            extra.update(selector=result.selector, selection_fallback=result.selection_fallback,
                         input_cost_usd=result.input_cost_usd, output_cost_usd=result.output_cost_usd,
                         notes=result.notes)
        return self.log_line(
            request_id=request_id, decision=decision, prompt=prompt_from_messages(messages),
            messages=messages, samples=result.samples if result else [],
            scores=result.scores if result else [], chosen_index=result.chosen_index if result else 0,
            prompt_tokens=result.prompt_tokens if result else 0,
            output_tokens=result.output_tokens if result else [],
            cost_usd=result.cost_usd if result else 0.0, latency_s=latency_s, group=group,
            error=error, cascade=result.cascade if result else None, **extra)


# -- reading LiteLLM responses ------------------------------------------------------------------
def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def chat_texts(response: Any) -> list[str]:
    """The text of every choice of a chat completion (tool calls count as empty text)."""
    out = []
    for choice in _get(response, "choices") or []:
        msg = _get(choice, "message")
        out.append(str(_get(msg, "content") or ""))
    return out


def responses_text(response: Any) -> str:
    """The output text of a one-output response: the Responses API's or Anthropic messages'."""
    text = _get(response, "output_text")
    if isinstance(text, str) and text:
        return text
    parts = []
    for item in _get(response, "output") or []:
        for c in _get(item, "content") or []:
            if _get(c, "type") == "output_text":
                parts.append(str(_get(c, "text") or ""))
    content = _get(response, "content")  # Anthropic /v1/messages: a list of content blocks
    if isinstance(content, list):
        parts.extend(str(_get(c, "text") or "") for c in content if _get(c, "type") == "text")
    return "".join(parts)


def usage_tokens(response: Any) -> tuple[int | None, int | None]:
    """(prompt tokens, completion tokens) of a chat or Responses API usage block."""
    usage = _get(response, "usage")
    if usage is None:
        return None, None
    prompt = _get(usage, "prompt_tokens")
    if prompt is None:
        prompt = _get(usage, "input_tokens")
    completion = _get(usage, "completion_tokens")
    if completion is None:
        completion = _get(usage, "output_tokens")
    return (int(prompt) if prompt is not None else None,
            int(completion) if completion is not None else None)


def per_sample_tokens(response: Any, texts: Sequence[str], counter: Any | None,
                      total: int | None) -> tuple[list[int], str | None]:
    """Every sample's output tokens.

    Our providers report them exactly (hidden param). Otherwise each text is counted with the
    model's tokenizer and, when the provider billed a total, scaled so that they sum to it (the
    bill is what the cost must match). Returns the counts and a note when they are estimates.
    """
    hidden = getattr(response, "_hidden_params", None) or {}
    exact = hidden.get(HIDDEN_OUTPUT_TOKENS) if isinstance(hidden, Mapping) else None
    if isinstance(exact, list) and len(exact) == len(texts):
        return [int(x) for x in exact], None
    if len(texts) == 1 and total is not None:
        return [int(total)], None
    counted = [max(1, counter.count_text(t)) if counter is not None and t else max(1, len(t) // 4)
               for t in texts]
    if total is not None and sum(counted) > 0:
        scale = total / sum(counted)
        scaled = [int(round(c * scale)) for c in counted]
        scaled[-1] += total - sum(scaled)
        return scaled, "per-sample output tokens apportioned from the billed total by text length"
    return counted, "output tokens counted from the texts (the provider reported no usage)"


def litellm_cost(response: Any) -> float | None:
    """LiteLLM's own price of one call (what its spend tracking and ``x-litellm-response-cost``
    report), to set beside the plugin's accounting; None when LiteLLM cannot price it."""
    hidden = getattr(response, "_hidden_params", None)
    cost = hidden.get("response_cost") if isinstance(hidden, Mapping) else None
    if cost is None:
        try:
            import litellm

            cost = litellm.completion_cost(completion_response=response)
        except Exception:
            return None
    try:
        return float(cost)
    except (TypeError, ValueError):
        return None


def serve_choice(response: Any, served: Any, every: Sequence[Any]) -> None:
    """Put the served step's kept choice into ``response`` (step 1's object, which LiteLLM's
    headers and logging already hold) and make its usage count every step's tokens: they were
    all paid for."""
    choice = served.choices[0]
    choice.index = 0
    response.choices = [choice]
    totals = [usage_tokens(r) for r in every]
    if all(p is not None and c is not None for p, c in totals):
        from litellm.types.utils import Usage

        prompt = int(sum(p for p, _ in totals))  # type: ignore[misc]
        completion = int(sum(c for _, c in totals))  # type: ignore[misc]
        response.usage = Usage(prompt_tokens=prompt, completion_tokens=completion,
                               total_tokens=prompt + completion)


def keep_choice(response: Any, index: int) -> Any:
    """The chat completion with only choice ``index``, renumbered 0 (usage keeps all n: paid)."""
    choices = list(response.choices)
    kept = choices[index]
    kept.index = 0
    response.choices = [kept]
    return response


__all__ = ["ESCALATION_PARAMS", "AdaptiveRuntime", "RoutedResult", "chat_texts", "deployment_price",
           "fleet_with_deployment_prices", "keep_choice", "litellm_cost", "per_sample_tokens",
           "responses_text", "serve_choice", "usage_tokens"]
