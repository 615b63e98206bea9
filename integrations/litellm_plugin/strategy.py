"""Adaptive routing inside the LiteLLM SDK: a custom routing strategy for ``litellm.Router``.

    router = litellm.Router(model_list=[...])          # one model group per fleet model
    strategy = AdaptiveRoutingStrategy(router, settings={"fleet": "fleet.yaml", "router": "ckpt/"})
    strategy.install()                                  # Router.set_custom_routing_strategy
    response = await router.acompletion(model="adaptive-router", messages=[...])
    response = await strategy.afinalize(response)       # best of n + cost (optional)

For a routed alias (``adaptive-router``, ``adaptive-0.3``, or a named alias), the strategy asks
the router and policy for a (model, n) decision (knob: the alias's, or
``metadata={"adaptive_router": {...}}`` on the call), picks one of the HEALTHY deployments of the
chosen model's group (``Router.async_get_healthy_deployments``: cooldowns, health checks, team
and tag filters stay in force) and sets ``request_kwargs["n"]``, which the provider call then
honours. :meth:`AdaptiveRoutingStrategy.afinalize` keeps the best of the n choices and attaches
the ``adaptive_router`` attribute (model, n, cost_usd, scores, decision) and writes the traffic
log line; :meth:`AdaptiveRoutingStrategy.acompletion` does both steps in one call.

With ``cascade:`` in the settings (issue 14), a non-streamed routed call is step 1 of the
router-proposed cascade, and :meth:`AdaptiveRoutingStrategy.afinalize` runs the rest as the proxy
plugin does (:meth:`AdaptiveRuntime.acascade`): while the verifier doubts a step's answer, the
next step's model group is called through the same ``litellm.Router`` with the call's sampling
parameters; the response holds the served step's answer, ``adaptive_router["cascade"]`` every
step, and ``cost_usd`` their sum. Without ``afinalize`` only step 1 runs.

It never returns None (LiteLLM would crash with a TypeError). When the chosen group has no
healthy deployment, its *healthy-deployment preference* takes the next candidate in the policy's
preference (highest predicted quality first, cheaper first on ties) whose group has one, and says
so in the decision's reason (not a failover: nothing was called yet); when no fleet group has one it raises :class:`SamplingError`.

A custom strategy replaces LiteLLM's selection for EVERY model group of the router. Requests for
other model names get a healthy deployment chosen at random, weighted by a deployment's
``weight`` when it has one (LiteLLM's simple-shuffle behaviour).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from adaptive_router.integrations.litellm_plugin.request_parsing import request_knob
from adaptive_router.integrations.litellm_plugin.runtime import (
    ESCALATION_PARAMS,
    AdaptiveRuntime,
    RoutedResult,
)
from adaptive_router.integrations.plugin_settings import PluginSettings
from litellm.router import CustomRoutingStrategyBase

from adaptive_router.domain import Candidate, Decision
from adaptive_router.errors import InvalidRequestError, SamplingError
from adaptive_router.policy import merge_knob
from adaptive_router.served_cascade import ServedPlan

_STATE_LIMIT = 10_000


def _weighted_pick(deployments: Sequence[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    weights = [float((d.get("litellm_params") or {}).get("weight", 1) or 1) for d in deployments]
    return rng.choices(list(deployments), weights=weights, k=1)[0]


class AdaptiveRoutingStrategy(CustomRoutingStrategyBase):
    """Chooses the deployment and the sample count of every routed request of a ``litellm.Router``.

    Parameters
    ----------
    llm_router: the ``litellm.Router`` whose model groups the fleet's ``litellm_model`` names.
    settings: :class:`PluginSettings` or a mapping (``fleet``, ``router``, ``policy``...); env
        overrides apply as in the proxy.
    runtime: an already built :class:`AdaptiveRuntime` (settings are then taken from it).
    seed: seeds the choice among several healthy deployments of a group.
    """

    def __init__(self, llm_router: Any, settings: PluginSettings | Mapping[str, Any] | None = None,
                 runtime: AdaptiveRuntime | None = None, seed: int | None = None) -> None:
        self.llm_router = llm_router
        if runtime is None:
            if not isinstance(settings, PluginSettings):
                settings = PluginSettings.load(settings if settings is not None else None)
            runtime = AdaptiveRuntime(settings, model_list=llm_router.model_list)
        self.runtime = runtime
        self.settings = runtime.settings
        self._rng = random.Random(seed)
        self._states: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def install(self) -> AdaptiveRoutingStrategy:
        """Install on the router (``Router.set_custom_routing_strategy``); returns self."""
        self.llm_router.set_custom_routing_strategy(self)
        return self

    # -- the decision -------------------------------------------------------------------------
    def _knob(self, model: str, request_kwargs: Mapping[str, Any] | None) -> dict[str, float]:
        """The alias's knob, overridden by the call's ``metadata.adaptive_router`` (the proxy
        hook's rule, :func:`~.request_parsing.request_knob`)."""
        knob = dict(self.settings.knob_for_alias(model) or {})
        own = request_knob(dict(request_kwargs or {}), "acompletion")
        return merge_knob(knob, own) if own is not None else knob

    @staticmethod
    def _chat(model: str, messages: Any, request_kwargs: Mapping[str, Any] | None) -> list[dict[str, Any]]:
        if not messages:
            raise InvalidRequestError(
                f"{model!r} routes chat completions; this call has no messages (embeddings and "
                "other calls cannot be routed adaptively)")
        n = (request_kwargs or {}).get("n")
        if n not in (None, 1):
            raise InvalidRequestError(
                f"n={n!r}: with model {model!r} the router chooses how many samples to draw; leave n out")
        return list(messages)

    def _preference(self, decision: Decision) -> list[Candidate]:
        """The decided candidate first, then the others by predicted quality (cheaper on ties)."""
        others = sorted((k for k in decision.predictions if k != decision.candidate.key),
                        key=lambda k: (-decision.predictions[k], decision.expected_costs_usd.get(k, 0.0)))
        return [decision.candidate] + [Candidate.from_key(k) for k in others]

    def _finish_choice(self, decision: Decision, chosen: Candidate, deployment: dict[str, Any],
                       messages: list[dict[str, Any]], knob: dict[str, float], model: str,
                       request_kwargs: dict[str, Any] | None, t0: float,
                       plan: ServedPlan | None = None) -> dict[str, Any]:
        if chosen.key != decision.candidate.key:
            decision = decision.model_copy(update={
                "candidate": chosen,
                "reason": f"{decision.reason}; {decision.candidate.key} had no healthy deployment, "
                          f"preferred {chosen.key}, which has one"})
        group = self.runtime.group_of(chosen.model)
        if request_kwargs is not None:
            if chosen.n > 1:
                request_kwargs["n"] = chosen.n
            else:
                request_kwargs.pop("n", None)
            call_id = str(request_kwargs.get("litellm_call_id") or uuid.uuid4().hex)
            request_kwargs.setdefault("litellm_call_id", call_id)
            md = request_kwargs.get("metadata")
            if not isinstance(md, dict):
                md = {}
                request_kwargs["metadata"] = md
            md["adaptive_router_decision"] = decision.as_dict()
            params = {k: request_kwargs[k] for k in ESCALATION_PARAMS if request_kwargs.get(k) is not None}
            self._remember(call_id, {"decision": decision, "group": group, "messages": messages,
                                     "knob": knob, "alias": model, "t0": t0, "params": params,
                                     "cascade": plan})
        return deployment

    def _remember(self, call_id: str, state: dict[str, Any]) -> None:
        self._states[call_id] = state
        while len(self._states) > _STATE_LIMIT:
            self._states.popitem(last=False)

    # -- LiteLLM's two entry points -----------------------------------------------------------
    async def async_get_available_deployment(self, model: str, messages: list[dict[str, str]] | None = None,
                                             input: str | list | None = None,
                                             specific_deployment: bool | None = False,
                                             request_kwargs: dict | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        kwargs = request_kwargs if request_kwargs is not None else {}
        if not self.settings.is_routed(model):
            healthy = await self._healthy_async(model, messages, input, kwargs)
            if not healthy:
                raise SamplingError(f"no healthy deployment for model group {model!r}")
            return _weighted_pick(healthy, self._rng)
        chat = self._chat(model, messages, kwargs)
        knob = self._knob(model, kwargs)
        cascade = self.runtime.cascade_policy(knob)
        plan = None
        if cascade is not None and not kwargs.get("stream"):
            base = await self.runtime.adecide(chat, {**knob, "epsilon": 0.0})
            plan = self.runtime.plan_cascade(base, knob, cascade)
            decision = plan.decision
        else:
            decision = await self.runtime.adecide(chat, knob, single_sample=bool(kwargs.get("stream")))
        for cand in self._preference(decision):
            healthy = await self._healthy_async(self.runtime.group_of(cand.model), chat, None, kwargs)
            if healthy:
                return self._finish_choice(decision, cand, _weighted_pick(healthy, self._rng), chat,
                                           knob, model, request_kwargs, t0, plan)
        raise SamplingError(f"no fleet model has a healthy deployment (groups: "
                            f"{[m.call_name for m in self.runtime.fleet.models]}); check cooldowns")

    def get_available_deployment(self, model: str, messages: list[dict[str, str]] | None = None,
                                 input: str | list | None = None, specific_deployment: bool | None = False,
                                 request_kwargs: dict | None = None) -> dict[str, Any]:
        t0 = time.perf_counter()
        kwargs = request_kwargs if request_kwargs is not None else {}
        if not self.settings.is_routed(model):
            healthy = self._healthy_sync(model)
            if not healthy:
                raise SamplingError(f"no healthy deployment for model group {model!r}")
            return _weighted_pick(healthy, self._rng)
        chat = self._chat(model, messages, kwargs)
        knob = self._knob(model, kwargs)
        cascade = self.runtime.cascade_policy(knob)
        plan = None
        if cascade is not None and not kwargs.get("stream"):
            plan = self.runtime.plan_cascade(self.runtime.decide(chat, {**knob, "epsilon": 0.0}),
                                             knob, cascade)
            decision = plan.decision
        else:
            decision = self.runtime.decide(chat, knob, single_sample=bool(kwargs.get("stream")))
        for cand in self._preference(decision):
            healthy = self._healthy_sync(self.runtime.group_of(cand.model))
            if healthy:
                return self._finish_choice(decision, cand, _weighted_pick(healthy, self._rng), chat,
                                           knob, model, request_kwargs, t0, plan)
        raise SamplingError(f"no fleet model has a healthy deployment (groups: "
                            f"{[m.call_name for m in self.runtime.fleet.models]}); check cooldowns")

    async def _healthy_async(self, group: str, messages: Any, input: Any,
                             request_kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            healthy = await self.llm_router.async_get_healthy_deployments(
                model=group, request_kwargs=request_kwargs, messages=messages, input=input)
        except Exception:  # an unknown group, or every deployment filtered out
            return []
        if isinstance(healthy, dict):
            return [healthy]
        return list(healthy or [])

    def _healthy_sync(self, group: str) -> list[dict[str, Any]]:
        """Healthy deployments without an event loop: the router's own cooldown-aware helper
        when this LiteLLM has it, else every deployment of the group."""
        helper = getattr(self.llm_router, "_get_healthy_deployments", None)
        if helper is not None:
            try:
                out = helper(model=group, parent_otel_span=None)
                healthy = out[0] if isinstance(out, tuple) else out
                return [d for d in healthy if isinstance(d, dict)]
            except Exception:
                pass
        return [d for d in self.llm_router.model_list if d.get("model_name") == group]

    # -- after the call -----------------------------------------------------------------------
    async def afinalize(self, response: Any) -> Any:
        """Keep the best of n in ``response``, attach ``adaptive_router``, log. Returns it.

        Responses of calls this strategy did not route come back unchanged.
        """
        hidden = getattr(response, "_hidden_params", None) or {}
        call_id = hidden.get("litellm_call_id") if isinstance(hidden, Mapping) else None
        state = self._states.pop(str(call_id), None) if call_id else None
        if state is None:
            return response
        result = await self.runtime.aaccount(state["decision"], state["group"], state["messages"],
                                             response, request_id=str(call_id))
        logged = result
        if state.get("cascade"):
            result, logged = await self._cascade(state, str(call_id), response, result)
        response.adaptive_router = result.body()
        await self.runtime.awrite_log(self.runtime.traffic_line(
            request_id=str(call_id), decision=state["decision"], group=state["group"],
            messages=state["messages"], result=logged, latency_s=time.perf_counter() - state["t0"],
            alias=state["alias"], knob=state["knob"], call="sdk"))
        return response

    async def _cascade(self, state: dict[str, Any], call_id: str, response: Any,
                       first: RoutedResult) -> tuple[RoutedResult, RoutedResult]:
        """Escalate through this strategy's ``litellm.Router`` (each step's model group, the
        call's own sampling parameters); see :meth:`AdaptiveRuntime.acascade`."""
        plan = state["cascade"].served_by(state["decision"])

        async def call(group: str, n: int, index: int) -> Any:
            kwargs = dict(state["params"])
            if n > 1:
                kwargs["n"] = n
            return await self.llm_router.acompletion(
                model=group, messages=state["messages"],
                metadata={"adaptive_router_cascade_step": index + 1,
                          "adaptive_router_request_id": call_id}, **kwargs)

        return await self.runtime.acascade(plan, state["messages"], response, first, call, call_id)

    def finalize(self, response: Any) -> Any:
        """Sync :meth:`afinalize` (do not call from inside a running event loop)."""
        return asyncio.run(self.afinalize(response))

    async def acompletion(self, messages: list[dict[str, Any]], model: str | None = None,
                          knob: Mapping[str, float] | None = None, **kwargs: Any) -> Any:
        """Route, call and finalize in one step: ``router.acompletion`` + :meth:`afinalize`."""
        if knob:
            md = dict(kwargs.pop("metadata", None) or {})
            md["adaptive_router"] = dict(knob)
            kwargs["metadata"] = md
        response = await self.llm_router.acompletion(model=model or self.settings.model_name,
                                                     messages=messages, **kwargs)
        return await self.afinalize(response)

    @staticmethod
    def result_of(response: Any) -> dict[str, Any] | None:
        """The ``adaptive_router`` report of a finalized response (None if not routed)."""
        return getattr(response, "adaptive_router", None)


__all__ = ["AdaptiveRoutingStrategy"]
