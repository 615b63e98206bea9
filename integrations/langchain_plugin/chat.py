"""``ChatAdaptiveRouter``: adaptive routing as a LangChain chat model (hence a Runnable).

It drops in wherever a chat model goes (``prompt | router | parser``, agents, ``batch``...). Per
call it

1. asks the :class:`~adaptive_router.engine.RoutingEngine` (fleet + router + policy) for a
   (model, n) decision, with the knob (``threshold`` / ``tradeoff`` / ``budget_usd``) of this
   call — fields, so ``configurable_fields`` + ``with_config(configurable=...)`` change them per
   call, and per-call keywords (``invoke(x, budget_usd=0.001)``) override them too;
2. draws ``n`` samples from the chosen model: one call asking for ``n`` where the model supports
   it (a LangChain model with an ``n`` field such as ``ChatOpenAI`` or ``ChatLocalModel``; a
   LiteLLM model whose provider accepts ``n``, split by the fleet's ``max_n``), else ``n``
   concurrent calls; the chosen model's calls run as child runs of the router's run (the
   equivalent of ``run_manager.get_child()``, which chat-model runs lack), tagged with the
   decision, so traces nest them under the router's run; a custom event
   (``adaptive_router_decision``) carries the decision to every callback handler;
3. keeps the best sample with :func:`adaptive_router.best_of_n.select_best` (the fleet's
   ``selector``: reward / majority / first; any :class:`~adaptive_router.reward.RewardModel`);
4. returns it with ``usage_metadata`` summed over *all* samples (the discarded ones were paid
   too) and ``response_metadata`` carrying the decision, ``n``, the reward scores and the dollar
   cost from the fleet's prices and the real token counts (the prompt once per call made, every
   sample's output).

Cascades (``cascade={"verifier": "agreement", "accept": 0.6}``; ``accept`` is a field and a
per-call keyword too): a non-streamed call without tools or a pin runs the router-proposed
cascade, escalating while the verifier doubts the kept answer; ``response_metadata["cascade"]``
lists every step and ``cost_usd`` is their sum (see ``langchain_cascade``). Streams are routed
before the call only.

Streaming: with n = 1 the chosen model's tokens are streamed as they come; with n > 1 the best
sample is emitted in one chunk once it has been chosen. Tool calling: ``bind_tools`` is forwarded
to the chosen model; when tools are bound the decision is restricted to models that can call
tools. ``invoke(x, model="name")`` (or ``"name#n"``) pins the call to one fleet model.

``models`` maps fleet model names to LangChain chat models or LiteLLM model names; a fleet model
absent from ``models`` is called through LiteLLM under its ``litellm_model`` (or its name).
With ``traffic_log=`` (a path or a :class:`~adaptive_router.traffic.TrafficLogWriter`) every call
is appended to the traffic log that ``adaptive-router retrain`` reads.

This module is the chat model itself; its parts live beside it: ``langchain_config`` (loading
the fleet, router and reward model), ``langchain_routing`` (a call's knob, pin and tools ->
the decision), ``langchain_calls`` and ``langchain_sampling`` (calling the chosen model, sync or
async, whole or streamed, and reading its token usage), ``langchain_messages`` (message
conversions) and ``langchain_reporting`` (callbacks, metadata, cost, the traffic log line).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from adaptive_router.integrations.langchain_plugin import cascade as langchain_cascade
from adaptive_router.integrations.langchain_plugin.calls import CallSettings, ChosenModelCall, StreamTotals
from adaptive_router.integrations.langchain_plugin.config import check_parts, resolve_specs
from adaptive_router.integrations.langchain_plugin.messages import final_chunk, selection_text
from adaptive_router.integrations.langchain_plugin.reporting import (
    aannounce_decision,
    announce_decision,
    child_callbacks,
    response_metadata,
    usage_totals,
)
from adaptive_router.integrations.langchain_plugin.routing import (
    call_knob,
    can_call_tools,
    restrict_decision,
    split_call_kwargs,
)
from adaptive_router.integrations.langchain_plugin.sampling import (
    Samples,
    TokenCounting,
)
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr, SecretStr, model_validator

from adaptive_router.best_of_n import Selection
from adaptive_router.domain import CostBreakdown, Decision
from adaptive_router.engine import RoutingEngine
from adaptive_router.policy import POLICY_KNOBS, Policy
from adaptive_router.service import CascadeConfig, RoutingService

log = logging.getLogger(__name__)


class ChatAdaptiveRouter(BaseChatModel):
    """A chat model that routes each call to a (model, n) candidate and keeps the best sample.

    Example::

        from langchain_core.runnables import ConfigurableField
        llm = ChatAdaptiveRouter(fleet="fleet.yaml", router="checkpoints/mf",
                                 models={"small": ChatLocalModel(), "large": "gpt-4o"})
        tunable = llm.configurable_fields(threshold=ConfigurableField(id="threshold"))
        msg = tunable.with_config(configurable={"threshold": 0.8}).invoke("Prove ...")
        msg.response_metadata["decision"], msg.response_metadata["cost_usd"]
    """

    models: dict[str, Any] = Field(
        default_factory=dict,
        description="fleet model name -> a LangChain chat model or a LiteLLM model name",
    )
    fleet: Any = Field(default=None, description="a Fleet, a fleet YAML path, or a mapping")
    router: Any = Field(default=None, description="a Router, a checkpoint folder or a baseline name")
    threshold: float | None = Field(default=None, description="cheapest candidate reaching it")
    tradeoff: float | None = Field(default=None, description="quality - tradeoff x relative cost")
    budget_usd: float | None = Field(default=None, description="dollars per request")
    epsilon: float = Field(default=0.0, ge=0.0, le=1.0, description="exploration rate")
    reward_model: Any = Field(default=None, description="a RewardModel or a path/name to load")
    selector: Literal["reward", "majority", "first"] | None = Field(
        default=None, description="how the best of n is kept; the fleet's selector by default")
    temperature: float | None = Field(default=None, description="forwarded to the chosen model")
    max_tokens: int | None = Field(default=None, description="forwarded to the chosen model")
    stop: list[str] | None = None
    timeout: float | None = Field(default=None, description="seconds, for LiteLLM calls")
    max_retries: int = Field(default=0, ge=0, description="retries of LiteLLM calls")
    api_key: SecretStr | None = Field(default=None, description="for LiteLLM calls")
    streaming: bool = False
    litellm_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="extra keywords for every litellm.completion call")
    traffic_log: Any = Field(
        default=None, description="a TrafficLogWriter or a path: one JSON line per routed call, "
        "for retraining on this traffic")
    cascade: Any = Field(
        default=None, description="answer-aware cascades on non-streamed calls: a mapping such as "
        "{'verifier': 'agreement', 'accept': 0.6, 'max_steps': 2} (verifier: agreement, "
        "judge:<model>, a verifier or reward-model folder, or a Verifier); None = off")
    accept: float | None = Field(default=None, ge=0.0, le=1.0,
                                 description="a cascade's acceptance level (overrides cascade's)")

    _engine: RoutingEngine = PrivateAttr()
    _service: RoutingService = PrivateAttr()

    # -- construction -------------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _resolve_specs(cls, data: Any) -> Any:
        """Load the fleet, router and reward model named by paths, once (see
        :mod:`~adaptive_router.integrations.langchain_plugin.config`)."""
        if not isinstance(data, Mapping):
            return data
        return resolve_specs(data)

    @model_validator(mode="after")
    def _build_engine(self) -> ChatAdaptiveRouter:
        """The core's routing service for this chat model's fleet, router, knob fields, selector,
        reward model, traffic log and cascade (LangChain only translates messages and calls)."""
        check_parts(self.fleet, self.models, self.router, self.reward_model)
        fields_knob = call_knob({k: getattr(self, k) for k in POLICY_KNOBS}, self.epsilon,
                                default=getattr(self.router, "default_knob", None))
        self._service = RoutingService(
            self.fleet, self.router, default_knob={k: v for k, v in fields_knob.items() if k != "epsilon"},
            explore_epsilon=self.epsilon, selector=self._selector, reward_model=self.reward_model,
            traffic_log=self.traffic_log, cascade=langchain_cascade.cascade_config(self.cascade))
        self._engine = self._service.engine
        return self

    @property
    def service(self) -> RoutingService:
        """The core routing service behind this chat model."""
        return self._service

    @property
    def cascade_config(self) -> CascadeConfig | None:
        """The cascade this chat model runs (None: pre-call routing only)."""
        return self._service.cascade_config

    # -- LangChain plumbing -------------------------------------------------------------------
    @property
    def _llm_type(self) -> str:
        return "adaptive-router"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"fleet": self.fleet.candidate_keys, "router": self.router.name,
                "policy": self.policy().describe(), "selector": self._selector}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = LangSmithParams(ls_provider="adaptive-router",
                                 ls_model_name=kwargs.get("model") or "adaptive-router",
                                 ls_model_type="chat")
        if self.temperature is not None:
            params["ls_temperature"] = self.temperature
        if self.max_tokens is not None:
            params["ls_max_tokens"] = self.max_tokens
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | Any],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (in OpenAI's format); each call forwards them to the chosen model."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    # -- routing ------------------------------------------------------------------------------
    @property
    def engine(self) -> RoutingEngine:
        return self._engine

    @property
    def _selector(self) -> str:
        return self.selector or self.fleet.selector

    def policy(self, overrides: Mapping[str, Any] | None = None) -> Policy:
        """The policy of a call: the per-call knob if one is given, else the fields' knob."""
        return self._service.policy_for(call_knob({k: getattr(self, k) for k in POLICY_KNOBS}, self.epsilon,
                                                  overrides, default=self._service.default_knob))

    def target(self, model: str) -> BaseChatModel | str:
        """What serves a fleet model: its LangChain chat model, else its LiteLLM name."""
        return self.models.get(model) or self.fleet.model(model).call_name

    def supports_tools(self, model: str) -> bool:
        return can_call_tools(self.target(model))

    def decide(self, messages: list[BaseMessage], **kwargs: Any) -> Decision:
        """The (model, n) decision for ``messages`` under this call's knob and constraints."""
        policy = self.policy(kwargs)
        decision = self._service.decide(convert_to_openai_messages(messages), policy)
        return restrict_decision(decision, policy, self.fleet.candidate_keys, pinned=kwargs.get("model"),
                                 tool_capable=self.supports_tools if kwargs.get("tools") else None)

    # -- one call's settings ------------------------------------------------------------------
    def _stop(self, stop: list[str] | None) -> list[str] | None:
        given = stop if stop is not None else self.stop
        return [x for x in given or [] if x] or None

    def _prompt_text(self, messages: list[BaseMessage]) -> str:
        return self._engine.router_input(convert_to_openai_messages(messages))

    def _counting(self, model: str) -> TokenCounting:
        return TokenCounting(self.fleet.model(model), self._engine.cost_model)

    def _call(self, decision: Decision, messages: list[BaseMessage], stop: list[str] | None,
              run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
              own: dict[str, Any], rest: dict[str, Any]) -> ChosenModelCall:
        """Everything a call to the decision's model needs, for the sync and async paths alike."""
        settings = CallSettings(temperature=self.temperature, max_tokens=self.max_tokens,
                                timeout=self.timeout, max_retries=self.max_retries,
                                api_key=self.api_key, litellm_kwargs=self.litellm_kwargs)
        return ChosenModelCall(decision, messages, stop, self.target(decision.model),
                               self._counting(decision.model), settings, own, rest,
                               callbacks=child_callbacks(run_manager))

    # -- selection, cost and the returned message -------------------------------------------
    def _select(self, prompt: str, samples: Samples) -> Selection:
        if len(samples.messages) == 1:  # nothing to choose among: no reward model call, no cost
            return Selection(index=0, selector="first")
        return self._service.select(prompt, [selection_text(m) for m in samples.messages])

    def _cost(self, decision: Decision, samples: Samples, selection: Selection) -> CostBreakdown:
        return self._service.realised_cost(decision.model, samples.prompt_tokens,
                                           samples.output_tokens, selection)

    @staticmethod
    def usage(samples: Samples) -> dict[str, int]:
        """Tokens summed over all of a call's samples (the discarded ones were paid for too)."""
        return usage_totals(samples)

    def _result(self, decision: Decision, samples: Samples, selection: Selection) -> ChatResult:
        cost = self._cost(decision, samples, selection)
        chosen = samples.messages[selection.index]
        message = AIMessage(
            content=chosen.content,
            tool_calls=chosen.tool_calls,
            invalid_tool_calls=chosen.invalid_tool_calls,
            usage_metadata=usage_totals(samples),
            response_metadata=response_metadata(decision, samples, selection, cost),
        )
        return ChatResult(generations=[ChatGeneration(message=message)],
                          llm_output={"model_name": decision.model, "cost_usd": cost.total_usd})

    def _log_traffic(self, messages: list[BaseMessage], decision: Decision, samples: Samples,
                     metadata: Mapping[str, Any], started: float,
                     cascade: Mapping[str, Any] | None = None) -> None:
        """Append the call to the traffic log, in the form the LiteLLM plugin writes (the
        service's line; a log error never fails the call)."""
        if self.traffic_log is None:
            return
        try:
            line = self._service.log_line(
                request_id=uuid.uuid4().hex, decision=decision, prompt=self._prompt_text(messages),
                messages=convert_to_openai_messages(messages),
                samples=[selection_text(m) for m in samples.messages],
                scores=list(metadata.get("reward_scores") or []),
                chosen_index=int(metadata.get("selected_index") or 0),
                prompt_tokens=samples.prompt_tokens, output_tokens=samples.output_tokens,
                cost_usd=float(metadata["cost_usd"]), latency_s=time.perf_counter() - started,
                group=decision.model, cascade=cascade)
        except Exception as exc:  # the answer matters more than its log line
            log.warning("could not build the traffic log line: %s", exc)
            return
        self._service.write_log(line)

    def _finish(self, messages: list[BaseMessage], decision: Decision, samples: Samples,
                selection: Selection, started: float) -> ChatResult:
        result = self._result(decision, samples, selection)
        self._log_traffic(messages, decision, samples,
                          result.generations[0].message.response_metadata, started)
        return result

    def _best_of_n(self, decision: Decision, messages: list[BaseMessage], stop: list[str] | None,
                   run_manager: CallbackManagerForLLMRun | None, own: dict, rest: dict,
                   started: float) -> ChatResult:
        """Draw the decision's samples, keep the best, report: a whole non-streamed call."""
        samples = self._call(decision, messages, stop, run_manager, own, rest).draw()
        selection = self._select(self._prompt_text(messages), samples)
        return self._finish(messages, decision, samples, selection, started)

    async def _abest_of_n(self, decision: Decision, messages: list[BaseMessage], stop: list[str] | None,
                          run_manager: AsyncCallbackManagerForLLMRun | None, own: dict, rest: dict,
                          started: float) -> ChatResult:
        """:meth:`_best_of_n` with the routing work (reward model included) off the event loop."""
        samples = await self._call(decision, messages, stop, run_manager, own, rest).adraw()
        selection = await asyncio.to_thread(self._select, self._prompt_text(messages), samples)
        return self._finish(messages, decision, samples, selection, started)

    # -- the four entry points ----------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.perf_counter()
        own, rest = split_call_kwargs(kwargs)
        if langchain_cascade.applies(self, own):
            return langchain_cascade.run_sync(langchain_cascade.arun(
                self, messages, self._stop(stop), run_manager, own, rest, started, sync=True))
        decision = self.decide(messages, **own)
        announce_decision(run_manager, decision)
        return self._best_of_n(decision, messages, self._stop(stop), run_manager, own, rest, started)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.perf_counter()
        own, rest = split_call_kwargs(kwargs)
        if langchain_cascade.applies(self, own):
            return await langchain_cascade.arun(self, messages, self._stop(stop), run_manager, own,
                                                rest, started)
        decision = await asyncio.to_thread(self.decide, messages, **own)
        await aannounce_decision(run_manager, decision)
        return await self._abest_of_n(decision, messages, self._stop(stop), run_manager, own, rest,
                                      started)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        started = time.perf_counter()
        own, rest = split_call_kwargs(kwargs)
        decision = self.decide(messages, **own)
        announce_decision(run_manager, decision)
        stop = self._stop(stop)
        if decision.n > 1:  # best-of-n: the chosen sample is emitted once it is chosen
            result = self._best_of_n(decision, messages, stop, run_manager, own, rest, started)
            yield final_chunk(result.generations[0].message)
            return
        collected = StreamTotals()
        yield from self._call(decision, messages, stop, run_manager, own, rest).stream(collected)
        yield self._stream_end(decision, messages, collected, started)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        started = time.perf_counter()
        own, rest = split_call_kwargs(kwargs)
        decision = await asyncio.to_thread(self.decide, messages, **own)
        await aannounce_decision(run_manager, decision)
        stop = self._stop(stop)
        if decision.n > 1:
            result = await self._abest_of_n(decision, messages, stop, run_manager, own, rest, started)
            yield final_chunk(result.generations[0].message)
            return
        collected = StreamTotals()
        async for chunk in self._call(decision, messages, stop, run_manager, own, rest).astream(collected):
            yield chunk
        yield self._stream_end(decision, messages, collected, started)

    def _stream_end(self, decision: Decision, messages: list[BaseMessage],
                    collected: StreamTotals, started: float) -> ChatGenerationChunk:
        """The last chunk: usage when the model reported none, and the decision and cost."""
        samples = collected.as_samples(messages, self._counting(decision.model))
        selection = Selection(index=0, selector="first")
        cost = self._cost(decision, samples, selection)
        metadata = response_metadata(decision, samples, selection, cost)
        self._log_traffic(messages, decision, samples, metadata, started)
        return ChatGenerationChunk(message=AIMessageChunk(
            content="",
            usage_metadata=None if collected.usage_reported else usage_totals(samples),
            response_metadata=metadata,
            chunk_position="last"))


__all__ = ["ChatAdaptiveRouter"]
