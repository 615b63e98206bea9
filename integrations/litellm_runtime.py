"""What the LiteLLM proxy hook and the SDK routing strategy share: the routing runtime.

:class:`AdaptiveRuntime` holds, once per process, the fleet (with prices taken from the LiteLLM
deployments' ``model_info`` where the fleet gives none), the router, the routing engines, the
best-of-n selector with its reward model, the cost model and the traffic log writer. It keeps
no per-request state, so any number of proxy replicas can each build one.

It also knows how to read LiteLLM responses: the n sample texts of a chat completion or a
Responses API response, their per-sample output tokens, and how to keep one choice.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from adaptive_router.integrations.plugin_settings import PluginSettings

from adaptive_router.best_of_n import Selection, select_best
from adaptive_router.cascade import CascadePolicy, DrawnStep
from adaptive_router.cost import CostModel
from adaptive_router.domain import Candidate, CostBreakdown, Decision, Fleet, Price
from adaptive_router.engine import RoutingEngine
from adaptive_router.errors import ConfigError, InvalidRequestError
from adaptive_router.policy import CostAwareExploration, EpsilonExploration, Policy, policy_from_knob
from adaptive_router.prompts import prompt_from_messages
from adaptive_router.reward import RewardModel
from adaptive_router.served_cascade import (
    ServedPlan,
    arun_served_cascade,
    cascade_report,
    plan_served_cascade,
    step_decision,
)
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter
from adaptive_router.verifiers.base import Verifier

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


def n1_fleet(fleet: Fleet) -> Fleet | None:
    """The fleet restricted to single-sample candidates (streaming and the Responses API)."""
    models = [m.model_copy(update={"n": [1]}) for m in fleet.models if 1 in m.n]
    if not models:
        return None
    ref = fleet.reference if fleet.reference in {m.name for m in models} else None
    return fleet.model_copy(update={"models": models, "reference": ref})


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
    fallback: str | None = None
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
        if self.fallback:
            out["selection_fallback"] = self.fallback
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


class AdaptiveRuntime:
    """Fleet + router + policy + selector + cost + traffic log, built once per process."""

    def __init__(self, settings: PluginSettings, model_list: Iterable[Mapping[str, Any]] | None = None) -> None:
        from adaptive_router.routers import load_router

        self.settings = settings
        self._seed_lock = threading.Lock()
        self._seeds = (np.random.default_rng(settings.explore_seed)
                       if settings.explore_seed is not None else None)
        fleet_path = settings.path(settings.fleet)
        base_fleet = Fleet.from_yaml(fleet_path)  # type: ignore[arg-type]
        self.fleet = fleet_with_deployment_prices(base_fleet, model_list)
        self.router = load_router(settings.router_spec(), fleet=self.fleet)
        if settings.quantize_encoder:  # opt-in: int8 linear layers in the router's encoder
            from adaptive_router.fast_encoder import quantize_router_encoder

            quantize_router_encoder(self.router)
        if settings.micro_batching and _gains_from_batching(self.router):
            # concurrent requests share one transformer forward pass (issue 10)
            from adaptive_router.batching import with_micro_batching

            self.router = with_micro_batching(self.router, max_batch_size=settings.micro_batch_size,
                                              max_wait_ms=settings.micro_batch_ms)
        self._decision_s: float | None = None  # moving average of one decision's compute time
        self._write_times: deque[float] = deque(maxlen=32)  # recent traffic-log append times
        self.cost_model = CostModel(self.fleet, count_tokens=settings.count_tokens)
        self.engine = RoutingEngine(self.fleet, self.router, self._default_policy(), self.cost_model)
        small = n1_fleet(self.fleet)
        self.engine_n1 = (RoutingEngine(small, self.router, self._default_policy(),
                                        CostModel(small, count_tokens=settings.count_tokens))
                          if small is not None else None)
        self.selector = settings.selector or self.fleet.selector
        self.reward_model_spec = settings.reward_model or self.fleet.reward_model
        self._reward_model: RewardModel | None = None
        self._reward_lock = threading.Lock()
        log_path = settings.path(settings.traffic_log)
        self.writer: TrafficLogWriter | None = None
        self.writer_error: str | None = None
        try:
            self.writer = (TrafficLogWriter(log_path, max_bytes=settings.traffic_log_max_bytes,
                                            backups=settings.traffic_log_backups)
                           if log_path is not None else None)
        except Exception as exc:  # an unwritable log must not stop routing: report it (issue 9)
            self.writer_error = f"{log_path}: {exc}"
            log.error("adaptive_router: could not write the traffic log %s", self.writer_error)
        self._verifier: Verifier | None = None
        self._verifier_lock = threading.Lock()
        if self.selector == "reward" and not self.reward_model_spec:
            log.warning("adaptive_router: selector is 'reward' but no reward_model is set; "
                        "best-of-n keeps the first sample. Set reward_model or selector: majority")

    # -- policy ---------------------------------------------------------------------------------
    def _default_policy(self) -> Policy:
        return self.policy_for({})

    def policy_for(self, knob: Mapping[str, float]) -> Policy:
        """The request's knob, else the configured default; wrapped in exploration if asked."""
        knob = dict(knob)
        knob.pop("accept", None)  # the cascade's acceptance level, not a routing policy's
        eps = knob.pop("epsilon", None)
        base = policy_from_knob(knob if any(k in knob for k in ("threshold", "tradeoff", "budget_usd"))
                                else self.settings.policy)
        eps = self.settings.explore_epsilon if eps is None else eps
        if eps and eps > 0:
            if self.settings.explore_strategy == "cost-aware":
                return CostAwareExploration(base, eps, seed=self._next_seed())
            return EpsilonExploration(base, eps, seed=self._next_seed())
        return base

    def _next_seed(self) -> int | None:
        """A fresh seed per request from one seeded stream: reproducible, never the same draw."""
        if self._seeds is None:
            return None
        with self._seed_lock:
            return int(self._seeds.integers(0, 2**63 - 1))

    def group_of(self, model: str) -> str:
        return self.fleet.model(model).call_name

    def model_of_group(self, group: str) -> str | None:
        for m in self.fleet.models:
            if m.call_name == group:
                return m.name
        return None

    async def adecide(self, messages: Sequence[Mapping[str, Any]], knob: Mapping[str, float],
                      single_sample: bool = False) -> Decision:
        """The decision for a chat: on the event loop when decisions have been sub-millisecond,
        else off it (routers and tokenizers are CPU-bound)."""
        engine = self.engine
        if single_sample:
            if self.engine_n1 is None:
                raise InvalidRequestError(
                    "this request can draw one sample only (streaming, the Responses API or "
                    "/v1/messages), but no fleet model offers n = 1; add 1 to a model's n list "
                    "in the fleet file"
                )
            engine = self.engine_n1
        from adaptive_router.batching import MicroBatchingRouter, adecide_micro_batched

        policy = self.policy_for(knob)
        if isinstance(engine.router, MicroBatchingRouter):  # awaits its batch, holds no thread
            return await adecide_micro_batched(engine, list(messages), policy)
        if self._decides_inline(messages):
            return self._timed_decide(engine, messages, policy)
        return await asyncio.to_thread(self._timed_decide, engine, messages, policy)

    #: A decision that has been taking less than this runs on the event loop: handing it to a
    #: worker thread and back costs more CPU than the decision itself (the static encoder's
    #: ~0.5 ms; ``make bench``). Slower routers, and the first decisions (which may load the
    #: router), run in a thread so the loop keeps serving.
    INLINE_DECISION_S = 0.002
    #: Longer prompts always go to a thread: counting their tokens alone can take milliseconds.
    INLINE_MAX_CHARS = 4000

    def _decides_inline(self, messages: Sequence[Mapping[str, Any]]) -> bool:
        recent = self._decision_s
        if recent is None or recent >= self.INLINE_DECISION_S:
            return False
        chars = 0
        for m in messages:
            content = m.get("content") if isinstance(m, Mapping) else None
            chars += len(content) if isinstance(content, str) else self.INLINE_MAX_CHARS
        return chars < self.INLINE_MAX_CHARS

    def _timed_decide(self, engine: RoutingEngine, messages: Sequence[Mapping[str, Any]],
                      policy: Policy) -> Decision:
        # CPU time of this thread, not wall time: under load a wall clock also counts the
        # waits for other threads, and would push cheap decisions off the loop exactly when
        # the hand-off costs most
        t0 = time.thread_time()
        decision = engine.decide(list(messages), policy)
        took = time.thread_time() - t0
        recent = self._decision_s
        self._decision_s = took if recent is None else 0.8 * recent + 0.2 * took
        return decision

    def decide(self, messages: Sequence[Mapping[str, Any]], knob: Mapping[str, float],
               single_sample: bool = False) -> Decision:
        engine = self.engine_n1 if single_sample and self.engine_n1 is not None else self.engine
        return engine.decide(list(messages), self.policy_for(knob))

    # -- cascades -------------------------------------------------------------------------------
    def cascade_policy(self, knob: Mapping[str, float]) -> CascadePolicy | None:
        """The request's cascade (None when the settings have no ``cascade:``).

        ``accept`` comes from the knob, else the settings; the knob's ``budget_usd`` caps the
        summed expected cost of the steps.
        """
        cs = self.settings.cascade
        if cs is None:
            if knob.get("accept") is not None:
                raise InvalidRequestError(
                    "accept is a cascade's acceptance level, but this plugin runs no cascades; "
                    "add cascade: {verifier: agreement} to the adaptive_router settings, or "
                    "leave accept out")
            return None
        return CascadePolicy(accept=float(knob.get("accept", cs.accept)), max_steps=cs.max_steps,
                             budget_usd=knob.get("budget_usd"), skip_below=cs.skip_below,
                             steps=cs.steps)

    def plan_cascade(self, decision: Decision, knob: Mapping[str, float],
                     policy: CascadePolicy) -> ServedPlan:
        """The request's steps from a non-exploring decision, exploring on step 1 when the
        knob or the settings give an epsilon, with the settings' ``explore_strategy`` (uniform
        or cost-aware); see :mod:`adaptive_router.served_cascade`."""
        eps = knob.get("epsilon")
        eps = self.settings.explore_epsilon if eps is None else float(eps)
        explore = None
        if eps and getattr(self.settings, "explore_strategy", "uniform") == "cost-aware":
            keys = list(decision.expected_costs_usd)
            dist = CostAwareExploration(policy_from_knob(self.settings.policy), eps).exploration_distribution(
                np.array([[decision.expected_costs_usd[k] for k in keys]]))[0]
            explore = dict(zip(keys, dist.tolist(), strict=True))
        return plan_served_cascade(policy, decision, epsilon=eps or 0.0,
                                   seed=self._next_seed() if eps else None, explore=explore)

    def served_plan(self, state: Mapping[str, Any], decision: Decision) -> ServedPlan:
        """A plan back from :meth:`ServedPlan.as_state` (the proxy keeps JSON between its hooks);
        step 1 is the candidate that really served (a LiteLLM fallback may have replaced it)."""
        steps = [Candidate.from_key(k) for k in state["steps"]]
        steps[0] = decision.candidate
        policy = CascadePolicy(accept=state["accept"], max_steps=len(steps), budget_usd=state.get("budget_usd"))
        return ServedPlan(steps=steps, propensities=list(state["propensities"]), decision=decision,
                          policy=policy)

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
        served = await arun_served_cascade(prompt, plan, first.drawn_step(payload=response), draw,
                                           self.averifier, plan.policy.accept)
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

    def verifier(self) -> Verifier:
        """The cascade's verifier, loaded once on first use (a reward model can take seconds)."""
        if self._verifier is None:
            with self._verifier_lock:
                if self._verifier is None:
                    self._verifier = self._load_verifier()
        return self._verifier

    async def averifier(self) -> Verifier:
        if self._verifier is not None:
            return self._verifier
        return await asyncio.to_thread(self.verifier)

    def _load_verifier(self) -> Verifier:
        from adaptive_router.verifiers import load_verifier

        cs = self.settings.cascade
        if cs is None:
            raise ConfigError("no cascade: in the adaptive_router settings")
        spec = cs.verifier.strip()
        if spec.startswith("judge:"):
            return self.judge_verifier(spec.split(":", 1)[1])
        if spec != "agreement":
            path = self.settings.path(spec)
            spec = str(path) if path is not None and path.exists() else spec
        return load_verifier(spec)

    def judge_verifier(self, model: str) -> Verifier:
        """``judge:<model>``: the core's LLM judge (SDK and LangChain: any model LiteLLM
        reaches). The proxy hook overrides this to ask the proxy's own model groups."""
        from adaptive_router.verifiers.judge import JudgeVerifier

        return JudgeVerifier(model)

    # -- best of n ------------------------------------------------------------------------------
    def reward_model(self) -> RewardModel | None:
        """The reward model, loaded on first use (C's ``load_reward_model``); None if unset."""
        if self.selector != "reward" or not self.reward_model_spec:
            return None
        if self._reward_model is None:
            with self._reward_lock:
                if self._reward_model is None:
                    try:
                        from adaptive_router.reward_models import load_reward_model
                    except ImportError as exc:  # pragma: no cover - until reward_models lands
                        raise ConfigError(
                            f"reward_model is set but adaptive_router.reward_models is unavailable "
                            f"({exc}); use selector: majority or first"
                        ) from None
                    spec = self.settings.path(self.reward_model_spec)
                    self._reward_model = load_reward_model(
                        str(spec) if spec is not None and spec.exists() else self.reward_model_spec)
        return self._reward_model

    def select(self, prompt: str, texts: Sequence[str]) -> Selection:
        """Keep the best of ``texts``; a failing reward model falls back to the first sample."""
        try:
            rm = self.reward_model()
        except Exception as exc:  # a broken reward model must not fail requests
            log.warning("adaptive_router: reward model unavailable (%s); keeping the first sample", exc)
            return Selection(index=0, selector=self.selector, fallback=f"reward model unavailable: {exc}")
        return select_best(prompt, texts, selector=self.selector, reward_model=rm)

    async def aselect(self, prompt: str, texts: Sequence[str]) -> Selection:
        if len(texts) <= 1:
            return Selection(index=0, selector=self.selector)
        return await asyncio.to_thread(self.select, prompt, list(texts))

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
            fallback=selection.fallback, request_id=request_id, notes=notes,
        )

    def traffic_line(self, request_id: str, decision: Decision, group: str,
                     messages: Sequence[Mapping[str, Any]], result: RoutedResult | None,
                     latency_s: float, error: str | None = None, **extra: Any) -> TrafficLogLine:
        """The traffic log line of one routed request (served, or failed with ``error``)."""
        from adaptive_router.prompts import prompt_from_messages
        from adaptive_router.traffic import redact

        extra = {k: v for k, v in extra.items() if v is not None}
        if result is not None:
            extra.update(selector=result.selector, selection_fallback=result.fallback,
                         input_cost_usd=result.input_cost_usd, output_cost_usd=result.output_cost_usd,
                         notes=result.notes)
            if result.cascade is not None:
                extra["cascade"] = result.cascade
        return TrafficLogLine(
            request_id=request_id,
            prompt=prompt_from_messages(messages),
            messages=redact([dict(m) for m in messages]) if self.settings.log_messages else None,
            decision=decision.as_dict(),
            samples=result.samples if result else [],
            reward_scores=result.scores if result else [],
            chosen_index=result.chosen_index if result else 0,
            prompt_tokens=result.prompt_tokens if result else 0,
            output_tokens=result.output_tokens if result else [],
            cost_usd=result.cost_usd if result else 0.0,
            latency_s=max(0.0, latency_s),
            model_group=group,
            explored=decision.explored,
            propensity=decision.propensity,
            error=error,
            **extra,
        )

    # -- cost and log ---------------------------------------------------------------------------
    def realised_cost(self, model: str, prompt_tokens: int, output_tokens: Sequence[int]):
        return self.cost_model.realised(model, prompt_tokens, output_tokens)

    def write_log(self, line: TrafficLogLine) -> None:
        if self.writer is None:
            if self.writer_error:  # reported for every request it could not log
                log.error("adaptive_router: could not write the traffic log %s", self.writer_error)
            return
        try:
            self.writer.write(line)
        except Exception as exc:  # the log must never fail a request
            log.error("adaptive_router: could not write the traffic log %s: %s", self.writer.path, exc)

    #: A traffic-log append that has been taking less than this runs on the event loop (the
    #: thread hand-off costs more than the append); a slow disk moves appends to a thread.
    INLINE_WRITE_S = 0.001

    async def awrite_log(self, line: TrafficLogLine) -> None:
        """Append ``line`` before the response leaves, so the log never lags what clients saw."""
        if self.writer is None:
            if self.writer_error:
                self.write_log(line)
            return
        if self._write_times and min(self._write_times) < self.INLINE_WRITE_S:
            self._timed_write(line)
        else:
            await asyncio.to_thread(self._timed_write, line)

    def _timed_write(self, line: TrafficLogLine) -> None:
        t0 = time.perf_counter()
        self.write_log(line)
        # wall time (a slow disk blocks without using CPU), but the least of the recent ones:
        # waits for other threads only ever add to it, a slow disk slows every append
        self._write_times.append(time.perf_counter() - t0)


def _gains_from_batching(router: Any) -> bool:
    """Micro-batching shares a transformer forward pass between concurrent requests; a static
    encoder (a table look-up per prompt) or a router that reads no prompt has nothing to share,
    and the hand-off to the batching thread would cost more than it saves."""
    from adaptive_router.encoders import router_encoder_name
    from adaptive_router.static_encoder import is_static_name

    name = router_encoder_name(router)
    if name is not None and is_static_name(name):
        log.info("adaptive_router: the router's encoder %s is static; micro-batching is not used", name)
        return False
    return True


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
