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

Streaming: with n = 1 the chosen model's tokens are streamed as they come; with n > 1 the best
sample is emitted in one chunk once it has been chosen. Tool calling: ``bind_tools`` is forwarded
to the chosen model; when tools are bound the decision is restricted to models that can call
tools. ``invoke(x, model="name")`` (or ``"name#n"``) pins the call to one fleet model.

``models`` maps fleet model names to LangChain chat models or LiteLLM model names; a fleet model
absent from ``models`` is called through LiteLLM under its ``litellm_model`` (or its name).
With ``traffic_log=`` (a path or a :class:`~adaptive_router.traffic.TrafficLogWriter`) every call
is appended to the traffic log that ``adaptive-router retrain`` reads.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableBinding
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field, PrivateAttr, SecretStr, model_validator

from adaptive_router.best_of_n import Selection, select_best
from adaptive_router.domain import CostBreakdown, Decision, Fleet
from adaptive_router.engine import RoutingEngine
from adaptive_router.errors import ConfigError, InvalidRequestError, SamplingError
from adaptive_router.policy import Policy, policy_from_knob
from adaptive_router.pricing import counter_for
from adaptive_router.reward import RewardModel
from adaptive_router.routers import load_router
from adaptive_router.routers.base import Router
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

log = logging.getLogger(__name__)

#: The knob used when none of threshold / tradeoff / budget_usd is set.
DEFAULT_THRESHOLD = 0.5
KNOBS = ("threshold", "tradeoff", "budget_usd")
#: Per-call keywords the router consumes itself (everything else goes to the chosen model).
_ROUTER_KWARGS = (*KNOBS, "epsilon", "model", "tools", "tool_choice")
DECISION_EVENT = "adaptive_router_decision"


@dataclass
class Samples:
    """The samples drawn for one decision, and what they cost in tokens."""

    messages: list[AIMessage]
    prompt_tokens: int  # summed over the calls made (once when the model accepted ``n``)
    output_tokens: list[int]  # one per sample
    calls: int
    usage_source: str = "reported"  # "reported" by the model, or "counted" with its tokenizer
    child_metadata: list[dict[str, Any]] = field(default_factory=list)


def call_plan(n: int, supports_n: bool, max_n: int | None = None) -> list[int]:
    """Samples to ask for in each call: one call with ``n`` (split by ``max_n``), else n calls."""
    if not supports_n:
        return [1] * n
    size = max(1, max_n or n)
    return [min(size, n - i) for i in range(0, n, size)]


def split_total(total: int, weights: Sequence[int]) -> list[int]:
    """Split a call's total output tokens over its samples in proportion to ``weights``.

    Used when a provider reports one completion-token total for n choices: the total stays the
    provider's (it is what is billed); only its split over samples is estimated.
    """
    w = [max(1, int(x)) for x in weights]
    shares = [total * x // sum(w) for x in w]
    shares[-1] += total - sum(shares)
    return shares


def selection_text(message: AIMessage) -> str:
    """What a selector reads of a sample: its text, plus its tool calls when it made any."""
    text = message.text if isinstance(message.text, str) else str(message.content)
    if message.tool_calls:
        calls = [{"name": c["name"], "args": c["args"]} for c in message.tool_calls]
        text = (text + "\n" if text else "") + json.dumps(calls, ensure_ascii=False)
    return text


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


def _openai_tool_choice(choice: Any) -> Any:
    """LangChain's ``tool_choice`` spellings in OpenAI's format (what LiteLLM expects)."""
    if choice in (None, "auto", "none", "required"):
        return choice
    if choice in ("any", True):
        return "required"
    if isinstance(choice, str):
        return {"type": "function", "function": {"name": choice}}
    return choice


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

    _engine: RoutingEngine = PrivateAttr()

    # -- construction -------------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _resolve_specs(cls, data: Any) -> Any:
        """Load the fleet, router and reward model named by paths, once.

        They are stored back as objects, so that the copies LangChain makes for
        ``with_config(configurable=...)`` reuse them instead of loading them again.
        """
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        fleet = data.get("fleet")
        models = data.get("models") or {}
        if isinstance(fleet, str | Path):
            fleet = Fleet.from_yaml(fleet)
        elif isinstance(fleet, Mapping):
            fleet = Fleet.from_dict(fleet)
        elif fleet is None:
            if not models:
                raise ConfigError("ChatAdaptiveRouter needs a fleet (a Fleet or a fleet YAML path) "
                                  "or at least `models={name: chat model or LiteLLM name}`")
            fleet = Fleet.from_names(list(models))
        if not isinstance(fleet, Fleet):
            raise ConfigError(f"fleet must be a Fleet, a YAML path or a mapping, got {type(fleet).__name__}")
        data["fleet"] = fleet
        router = data.get("router")
        if router is None:
            raise ConfigError("ChatAdaptiveRouter needs a router: a Router, a checkpoint folder, or "
                              "a baseline name (cheapest, strongest, random)")
        if isinstance(router, str | Path):
            data["router"] = load_router(router, fleet)
        reward = data.get("reward_model")
        if reward is None and fleet.reward_model:
            reward = fleet.reward_model
        if isinstance(reward, str | Path):
            try:
                from adaptive_router.reward_models import load_reward_model
            except ImportError as exc:
                raise ConfigError(f"cannot load reward model {reward!r}: {exc}; pass a RewardModel "
                                  "instance instead") from None
            reward = load_reward_model(str(reward))
        data["reward_model"] = reward
        if isinstance(data.get("traffic_log"), str | Path):
            data["traffic_log"] = TrafficLogWriter(data["traffic_log"])
        return data

    @model_validator(mode="after")
    def _build_engine(self) -> ChatAdaptiveRouter:
        fleet: Fleet = self.fleet
        unknown = sorted(set(self.models) - set(fleet.model_names))
        if unknown:
            raise ConfigError(f"models {unknown} are not in the fleet {fleet.model_names}; add them "
                              "to the fleet (with their price) or drop them from `models`")
        for name, target in self.models.items():
            if not isinstance(target, BaseChatModel | str):
                raise ConfigError(f"models[{name!r}] must be a LangChain chat model or a LiteLLM "
                                  f"model name, got {type(target).__name__}")
        if not isinstance(self.router, Router):
            raise ConfigError(f"router must be a Router, got {type(self.router).__name__}")
        if self.reward_model is not None and not isinstance(self.reward_model, RewardModel):
            raise ConfigError("reward_model must be an adaptive_router.reward.RewardModel, got "
                              f"{type(self.reward_model).__name__}")
        self._engine = RoutingEngine(fleet, self.router, policy=self.policy())
        return self

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
        overrides = overrides or {}
        knob = {k: getattr(self, k) for k in KNOBS if getattr(self, k) is not None}
        if any(overrides.get(k) is not None for k in KNOBS):
            knob = {k: overrides[k] for k in KNOBS if overrides.get(k) is not None}
        if not knob:
            knob = {"threshold": DEFAULT_THRESHOLD}
        epsilon = overrides.get("epsilon", self.epsilon)
        if epsilon:
            knob["epsilon"] = epsilon
        return policy_from_knob(knob)

    def target(self, model: str) -> BaseChatModel | str:
        """What serves a fleet model: its LangChain chat model, else its LiteLLM name."""
        return self.models.get(model) or self.fleet.model(model).call_name

    def supports_tools(self, model: str) -> bool:
        target = self.target(model)
        if isinstance(target, BaseChatModel):
            return type(target).bind_tools is not BaseChatModel.bind_tools
        try:
            import litellm

            return bool(litellm.supports_function_calling(model=target))
        except Exception:  # unknown to LiteLLM's map: assume it cannot
            return False

    def decide(self, messages: list[BaseMessage], **kwargs: Any) -> Decision:
        """The (model, n) decision for ``messages`` under this call's knob and constraints."""
        dicts = convert_to_openai_messages(messages)
        policy = self.policy(kwargs)
        decision = self._engine.decide(dicts, policy)
        allowed = list(decision.predictions)
        notes = []
        pinned = kwargs.get("model")
        if pinned:
            if pinned in decision.predictions:
                allowed = [pinned]
            else:
                allowed = [k for k in allowed if k.rpartition("#")[0] == pinned]
            if not allowed:
                raise InvalidRequestError(f"model={pinned!r} is not a fleet model or candidate; "
                                          f"use one of {self.fleet.candidate_keys}")
            notes.append(f"pinned to {pinned}")
        if kwargs.get("tools"):
            allowed = [k for k in allowed if self.supports_tools(k.rpartition("#")[0])]
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

    # -- one call's settings ----------------------------------------------------------------
    @staticmethod
    def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        if "n" in kwargs:
            raise InvalidRequestError("n is decided by the router; to force a sample count, pin a "
                                      "candidate with model='<fleet model>#<n>'")
        own = {k: kwargs[k] for k in _ROUTER_KWARGS if k in kwargs}
        rest = {k: v for k, v in kwargs.items() if k not in _ROUTER_KWARGS}
        return own, rest

    def _generation_kwargs(self, rest: dict[str, Any]) -> dict[str, Any]:
        kw = dict(rest)
        if self.temperature is not None:
            kw.setdefault("temperature", self.temperature)
        if self.max_tokens is not None:
            kw.setdefault("max_tokens", self.max_tokens)
        return kw

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        given = stop if stop is not None else self.stop
        return [x for x in given or [] if x] or None

    def _prompt_text(self, messages: list[BaseMessage]) -> str:
        return self._engine.router_input(convert_to_openai_messages(messages))

    # -- LangChain models -------------------------------------------------------------------
    def _lc_model(self, target: BaseChatModel, own: dict[str, Any]) -> tuple[BaseChatModel, dict]:
        """The chat model to call and its bound keywords (tools bound through its bind_tools)."""
        if not own.get("tools"):
            return target, {}
        bound = target.bind_tools(own["tools"], tool_choice=own.get("tool_choice"))
        if isinstance(bound, RunnableBinding) and isinstance(bound.bound, BaseChatModel):
            return bound.bound, dict(bound.kwargs)
        raise ConfigError(f"{type(target).__name__}.bind_tools did not return a bound chat model; "
                          "it cannot be routed with tools")

    def _child_options(self, decision: Decision) -> dict[str, Any]:
        return {"tags": ["adaptive-router:chosen"],
                "metadata": {"adaptive_router_candidate": decision.candidate.key,
                             "adaptive_router_policy": decision.policy}}

    def _lc_samples(self, decision: Decision, messages: list[BaseMessage],
                    results: list[LLMResult]) -> Samples:
        msgs: list[AIMessage] = []
        prompt_tokens, outs, source, child_meta = 0, [], "reported", []
        for res in results:
            gens = res.generations[0]
            p, o, src = self._usage_of_call(decision.model, messages, gens, res.llm_output)
            prompt_tokens += p
            outs.extend(o)
            source = "counted" if src == "counted" else source
            for g in gens:
                m = g.message
                msgs.append(m if isinstance(m, AIMessage) else AIMessage(content=m.content))
                child_meta.append(dict(m.response_metadata))
        return Samples(messages=msgs, prompt_tokens=prompt_tokens, output_tokens=outs,
                       calls=len(results), usage_source=source, child_metadata=child_meta)

    def _usage_of_call(self, model: str, messages: list[BaseMessage], gens: list[ChatGeneration],
                       llm_output: dict | None) -> tuple[int, list[int], str]:
        """(prompt tokens, output tokens per sample, source) of one call to a LangChain model.

        Models report usage per message (``usage_metadata``) or per call (``llm_output``); some
        put the call's totals on every message of an n-sample call, which the call's
        ``token_usage`` reveals. Without any report, the fleet's tokenizer counts.
        """
        metas = [getattr(g.message, "usage_metadata", None) for g in gens]
        usage = (llm_output or {}).get("token_usage") or {}
        if gens and all(metas):
            prompt = max(int(m["input_tokens"]) for m in metas)
            outs = [int(m["output_tokens"]) for m in metas]
            total = usage.get("completion_tokens")
            if len(outs) > 1 and total is not None and sum(outs) != total and all(o == total for o in outs):
                outs = split_total(int(total), [len(g.text) for g in gens])
            return prompt, outs, "reported"
        if usage.get("prompt_tokens") is not None and usage.get("completion_tokens") is not None:
            return (int(usage["prompt_tokens"]),
                    split_total(int(usage["completion_tokens"]), [len(g.text) for g in gens]),
                    "reported")
        m = self.fleet.model(model)
        counter = counter_for(m.price_model or m.call_name, m.tokenizer)
        prompt = self._engine.cost_model.prompt_tokens(model, convert_to_openai_messages(messages))
        return prompt, [counter.count_text(g.text) for g in gens], "counted"

    # -- LiteLLM models ---------------------------------------------------------------------
    def _litellm_supports_n(self, name: str) -> bool:
        try:
            import litellm

            return "n" in (litellm.get_supported_openai_params(model=name) or [])
        except Exception:
            return False

    def _litellm_params(self, name: str, messages: list[BaseMessage], k: int,
                        stop: list[str] | None, own: dict[str, Any], rest: dict[str, Any]) -> dict:
        params: dict[str, Any] = {**self.litellm_kwargs, **self._generation_kwargs(rest),
                                  "model": name, "messages": convert_to_openai_messages(messages)}
        if k > 1:
            params["n"] = k
        if stop:
            params["stop"] = stop
        if self.timeout is not None:
            params.setdefault("timeout", self.timeout)
        if self.max_retries:
            params.setdefault("num_retries", self.max_retries)
        if self.api_key is not None:
            params.setdefault("api_key", self.api_key.get_secret_value())
        if own.get("tools"):
            params["tools"] = own["tools"]
            if own.get("tool_choice") is not None:
                params["tool_choice"] = _openai_tool_choice(own["tool_choice"])
        return params

    def _litellm_samples(self, model: str, name: str, responses: list[Any]) -> Samples:
        from langchain_core.output_parsers.openai_tools import parse_tool_call

        msgs, outs, prompt_tokens = [], [], 0
        source = "reported"
        m = self.fleet.model(model)
        counter = counter_for(m.price_model or m.call_name, m.tokenizer)
        child_meta = []
        for resp in responses:
            choices = list(resp.choices)
            texts = [c.message.content or "" for c in choices]
            usage = getattr(resp, "usage", None)
            counted = [counter.count_text(t) if t else 0 for t in texts]
            if usage is not None and getattr(usage, "completion_tokens", None) is not None:
                prompt_tokens += int(usage.prompt_tokens or 0)
                total = int(usage.completion_tokens)
                outs.extend([total] if len(choices) == 1 else split_total(total, counted))
            else:
                source = "counted"
                outs.extend(counted)
            for c, text in zip(choices, texts, strict=True):
                raw_calls = getattr(c.message, "tool_calls", None) or []
                tool_calls = []
                for tc in raw_calls:
                    d = tc.model_dump() if hasattr(tc, "model_dump") else dict(tc)
                    parsed = parse_tool_call(d, return_id=True)
                    if parsed:
                        tool_calls.append(parsed)
                msgs.append(AIMessage(content=text, tool_calls=tool_calls))
                child_meta.append({"model_name": getattr(resp, "model", name),
                                   "finish_reason": getattr(c, "finish_reason", None)})
        return Samples(messages=msgs, prompt_tokens=prompt_tokens, output_tokens=outs,
                       calls=len(responses), usage_source=source, child_metadata=child_meta)

    def _plan(self, model: str) -> tuple[bool, int | None]:
        """(whether one call may ask for n samples, the provider's maximum n per call)."""
        m = self.fleet.model(model)
        target = self.target(model)
        if isinstance(target, BaseChatModel):
            return "n" in type(target).model_fields, m.max_n
        return (m.max_n is not None and m.max_n > 1) or self._litellm_supports_n(target), m.max_n

    # -- drawing samples (sync) ---------------------------------------------------------------
    def _draw(self, decision: Decision, messages: list[BaseMessage], stop: list[str] | None,
              run_manager: CallbackManagerForLLMRun | None, own: dict, rest: dict) -> Samples:
        supports_n, max_n = self._plan(decision.model)
        plan = call_plan(decision.n, supports_n, max_n)
        target = self.target(decision.model)
        callbacks = child_callbacks(run_manager)

        if isinstance(target, BaseChatModel):
            model, bound = self._lc_model(target, own)
            kw = {**bound, **self._generation_kwargs(rest), **self._child_options(decision)}

            def call(k: int) -> LLMResult:
                extra = {"n": k} if k > 1 else {}
                return model.generate([messages], stop=stop, callbacks=callbacks, **kw, **extra)

            results = self._run_calls(call, plan, decision.n)
            return self._lc_samples(decision, messages, results)

        import litellm

        def lcall(k: int) -> Any:
            return litellm.completion(**self._litellm_params(target, messages, k, stop, own, rest))

        responses = self._run_calls(lcall, plan, decision.n, count=lambda r: len(r.choices))
        return self._litellm_samples(decision.model, target, responses)

    @staticmethod
    def _run_calls(call: Callable[[int], Any], plan: list[int], n: int,
                   count: Callable[[Any], int] | None = None) -> list[Any]:
        """Run the planned calls (concurrently when several), topping up samples that a model
        returned fewer of than asked (a model that ignores ``n``)."""
        count = count or (lambda r: len(r.generations[0]))
        results: list[Any] = []
        todo = list(plan)
        for _ in range(2):
            if not todo:
                break
            if len(todo) == 1:
                results.append(call(todo[0]))
            else:
                with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
                    futures = [pool.submit(contextvars.copy_context().run, call, k) for k in todo]
                    results.extend(f.result() for f in futures)
            got = sum(count(r) for r in results)
            todo = [1] * (n - got) if got < n else []
        if not results or sum(count(r) for r in results) == 0:
            raise SamplingError("the chosen model returned no samples")
        return results

    # -- drawing samples (async) --------------------------------------------------------------
    async def _adraw(self, decision: Decision, messages: list[BaseMessage], stop: list[str] | None,
                     run_manager: AsyncCallbackManagerForLLMRun | None, own: dict,
                     rest: dict) -> Samples:
        supports_n, max_n = self._plan(decision.model)
        plan = call_plan(decision.n, supports_n, max_n)
        target = self.target(decision.model)
        callbacks = child_callbacks(run_manager)

        if isinstance(target, BaseChatModel):
            model, bound = self._lc_model(target, own)
            kw = {**bound, **self._generation_kwargs(rest), **self._child_options(decision)}

            async def call(k: int) -> LLMResult:
                extra = {"n": k} if k > 1 else {}
                return await model.agenerate([messages], stop=stop, callbacks=callbacks, **kw, **extra)

            results = await self._arun_calls(call, plan, decision.n)
            return self._lc_samples(decision, messages, results)

        import litellm

        async def lcall(k: int) -> Any:
            return await litellm.acompletion(**self._litellm_params(target, messages, k, stop, own, rest))

        responses = await self._arun_calls(lcall, plan, decision.n, count=lambda r: len(r.choices))
        return self._litellm_samples(decision.model, target, responses)

    @staticmethod
    async def _arun_calls(call: Callable[[int], Any], plan: list[int], n: int,
                          count: Callable[[Any], int] | None = None) -> list[Any]:
        count = count or (lambda r: len(r.generations[0]))
        results: list[Any] = []
        todo = list(plan)
        for _ in range(2):
            if not todo:
                break
            results.extend(await asyncio.gather(*(call(k) for k in todo)))
            got = sum(count(r) for r in results)
            todo = [1] * (n - got) if got < n else []
        if not results or sum(count(r) for r in results) == 0:
            raise SamplingError("the chosen model returned no samples")
        return results

    # -- selection, cost and the returned message -------------------------------------------
    def _select(self, prompt: str, samples: Samples) -> Selection:
        if len(samples.messages) == 1:  # nothing to choose among: no reward model call, no cost
            return Selection(index=0, selector="first")
        return select_best(prompt, [selection_text(m) for m in samples.messages],
                           selector=self._selector, reward_model=self.reward_model)

    def _cost(self, decision: Decision, samples: Samples, selection: Selection) -> CostBreakdown:
        reward_cost = 0.0
        if selection.selector == "reward" and selection.scores and self.reward_model is not None:
            reward_cost = float(self.reward_model.cost_per_pair_usd) * len(selection.scores)
        return self._engine.cost_model.realised(decision.model, samples.prompt_tokens,
                                                samples.output_tokens, reward_cost)

    @staticmethod
    def usage(samples: Samples) -> dict[str, int]:
        out = int(sum(samples.output_tokens))
        return {"input_tokens": int(samples.prompt_tokens), "output_tokens": out,
                "total_tokens": int(samples.prompt_tokens) + out}

    def _metadata(self, decision: Decision, samples: Samples, selection: Selection,
                  cost: CostBreakdown) -> dict[str, Any]:
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
            "selection_fallback": selection.fallback,
            "cost_usd": cost.total_usd,
            "cost": cost.as_dict(),
            "usage_source": samples.usage_source,
            "chosen_model_metadata": {k: v for k, v in chosen_meta.items()
                                      if isinstance(v, str | int | float | bool | type(None))},
        }

    def _result(self, decision: Decision, samples: Samples, selection: Selection) -> ChatResult:
        cost = self._cost(decision, samples, selection)
        chosen = samples.messages[selection.index]
        message = AIMessage(
            content=chosen.content,
            tool_calls=chosen.tool_calls,
            invalid_tool_calls=chosen.invalid_tool_calls,
            usage_metadata=self.usage(samples),
            response_metadata=self._metadata(decision, samples, selection, cost),
        )
        return ChatResult(generations=[ChatGeneration(message=message)],
                          llm_output={"model_name": decision.model, "cost_usd": cost.total_usd})

    @staticmethod
    def _final_chunk(message: AIMessage) -> ChatGenerationChunk:
        """A chosen best-of-n sample as one (last) stream chunk."""
        tool_chunks = [{"name": c["name"], "args": json.dumps(c["args"], ensure_ascii=False),
                        "id": c.get("id"), "index": i, "type": "tool_call_chunk"}
                       for i, c in enumerate(message.tool_calls)]
        return ChatGenerationChunk(message=AIMessageChunk(
            content=message.content, tool_call_chunks=tool_chunks,
            usage_metadata=message.usage_metadata, response_metadata=message.response_metadata,
            chunk_position="last"))

    def _log_traffic(self, messages: list[BaseMessage], decision: Decision, samples: Samples,
                     metadata: Mapping[str, Any], started: float) -> None:
        """Append the call to the traffic log (never fails the call: a log error is a warning)."""
        if self.traffic_log is None:
            return
        try:
            self.traffic_log.write(TrafficLogLine(
                prompt=self._prompt_text(messages),
                messages=convert_to_openai_messages(messages),
                decision=decision.as_dict(),
                samples=[selection_text(m) for m in samples.messages],
                reward_scores=list(metadata.get("reward_scores") or []),
                chosen_index=int(metadata.get("selected_index") or 0),
                prompt_tokens=samples.prompt_tokens,
                output_tokens=list(samples.output_tokens),
                cost_usd=float(metadata["cost_usd"]),
                latency_s=time.perf_counter() - started,
                model_group=decision.model,
                explored=decision.explored,
                propensity=decision.propensity,
            ))
        except Exception as exc:  # the answer matters more than its log line
            log.warning("could not write the traffic log line: %s", exc)

    def _finish(self, messages: list[BaseMessage], decision: Decision, samples: Samples,
                selection: Selection, started: float) -> ChatResult:
        result = self._result(decision, samples, selection)
        self._log_traffic(messages, decision, samples,
                          result.generations[0].message.response_metadata, started)
        return result

    # -- the four entry points ----------------------------------------------------------------
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.perf_counter()
        own, rest = self._split_kwargs(kwargs)
        decision = self.decide(messages, **own)
        if run_manager:
            child_callbacks(run_manager).on_custom_event(DECISION_EVENT, decision.as_dict(),
                                                         run_id=run_manager.run_id)
        samples = self._draw(decision, messages, self._stop(stop), run_manager, own, rest)
        selection = self._select(self._prompt_text(messages), samples)
        return self._finish(messages, decision, samples, selection, started)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        started = time.perf_counter()
        own, rest = self._split_kwargs(kwargs)
        decision = await asyncio.to_thread(self.decide, messages, **own)
        if run_manager:
            await child_callbacks(run_manager).on_custom_event(DECISION_EVENT, decision.as_dict(),
                                                               run_id=run_manager.run_id)
        samples = await self._adraw(decision, messages, self._stop(stop), run_manager, own, rest)
        selection = await asyncio.to_thread(self._select, self._prompt_text(messages), samples)
        return self._finish(messages, decision, samples, selection, started)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        started = time.perf_counter()
        own, rest = self._split_kwargs(kwargs)
        decision = self.decide(messages, **own)
        if run_manager:
            child_callbacks(run_manager).on_custom_event(DECISION_EVENT, decision.as_dict(),
                                                         run_id=run_manager.run_id)
        stop = self._stop(stop)
        if decision.n > 1:  # best-of-n: the chosen sample is emitted once it is chosen
            samples = self._draw(decision, messages, stop, run_manager, own, rest)
            selection = self._select(self._prompt_text(messages), samples)
            result = self._finish(messages, decision, samples, selection, started)
            yield self._final_chunk(result.generations[0].message)
            return
        target = self.target(decision.model)
        collected = _StreamTotals()
        if isinstance(target, BaseChatModel):
            model, bound = self._lc_model(target, own)
            config = {"callbacks": child_callbacks(run_manager),
                      **self._child_options(decision)}
            for chunk in model.stream(messages, config=config, stop=stop,
                                      **{**bound, **self._generation_kwargs(rest)}):
                yield collected.add(chunk)
        else:
            import litellm

            params = self._litellm_params(target, messages, 1, stop, own, rest)
            stream = litellm.completion(**params, stream=True, stream_options={"include_usage": True})
            for part in stream:
                out = collected.add_litellm(part)
                if out is not None:
                    yield out
        yield self._stream_end(decision, messages, collected, started)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        started = time.perf_counter()
        own, rest = self._split_kwargs(kwargs)
        decision = await asyncio.to_thread(self.decide, messages, **own)
        if run_manager:
            await child_callbacks(run_manager).on_custom_event(DECISION_EVENT, decision.as_dict(),
                                                               run_id=run_manager.run_id)
        stop = self._stop(stop)
        if decision.n > 1:
            samples = await self._adraw(decision, messages, stop, run_manager, own, rest)
            selection = await asyncio.to_thread(self._select, self._prompt_text(messages), samples)
            result = self._finish(messages, decision, samples, selection, started)
            yield self._final_chunk(result.generations[0].message)
            return
        target = self.target(decision.model)
        collected = _StreamTotals()
        if isinstance(target, BaseChatModel):
            model, bound = self._lc_model(target, own)
            config = {"callbacks": child_callbacks(run_manager),
                      **self._child_options(decision)}
            async for chunk in model.astream(messages, config=config, stop=stop,
                                             **{**bound, **self._generation_kwargs(rest)}):
                yield collected.add(chunk)
        else:
            import litellm

            params = self._litellm_params(target, messages, 1, stop, own, rest)
            stream = await litellm.acompletion(**params, stream=True,
                                               stream_options={"include_usage": True})
            async for part in stream:
                out = collected.add_litellm(part)
                if out is not None:
                    yield out
        yield self._stream_end(decision, messages, collected, started)

    def _stream_end(self, decision: Decision, messages: list[BaseMessage],
                    collected: _StreamTotals, started: float) -> ChatGenerationChunk:
        """The last chunk: usage when the model reported none, and the decision and cost."""
        text = collected.text
        reported = collected.input_tokens is not None and collected.output_tokens is not None
        if reported:
            prompt, out, source = int(collected.input_tokens), int(collected.output_tokens), "reported"
        else:
            m = self.fleet.model(decision.model)
            prompt = self._engine.cost_model.prompt_tokens(decision.model,
                                                           convert_to_openai_messages(messages))
            out = counter_for(m.price_model or m.call_name, m.tokenizer).count_text(text)
            source = "counted"
        samples = Samples(messages=[AIMessage(content=text)], prompt_tokens=prompt,
                          output_tokens=[out], calls=1, usage_source=source,
                          child_metadata=[collected.metadata])
        selection = Selection(index=0, selector="first")
        cost = self._cost(decision, samples, selection)
        metadata = self._metadata(decision, samples, selection, cost)
        self._log_traffic(messages, decision, samples, metadata, started)
        return ChatGenerationChunk(message=AIMessageChunk(
            content="",
            usage_metadata=None if reported else self.usage(samples),
            response_metadata=metadata,
            chunk_position="last"))


class _StreamTotals:
    """Re-emits a chosen model's stream chunks and keeps what the last chunk must report.

    The chosen model's own ``response_metadata`` is held back (string values such as
    ``model_name`` would be concatenated when LangChain adds chunks) and reported under
    ``chosen_model_metadata`` on the router's last chunk instead; so is ``chunk_position``.
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.metadata: dict[str, Any] = {}

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def _count(self, usage: Mapping[str, Any] | None) -> None:
        if not usage:
            return
        self.input_tokens = (self.input_tokens or 0) + int(usage.get("input_tokens") or 0)
        self.output_tokens = (self.output_tokens or 0) + int(usage.get("output_tokens") or 0)

    def add(self, chunk: BaseMessage) -> ChatGenerationChunk:
        if isinstance(chunk.content, str):
            self.parts.append(chunk.content)
        elif isinstance(chunk, AIMessageChunk):
            self.parts.append(chunk.text)
        self._count(getattr(chunk, "usage_metadata", None))
        self.metadata.update({k: v for k, v in chunk.response_metadata.items()
                              if not isinstance(v, dict | list)})
        return ChatGenerationChunk(message=AIMessageChunk(
            content=chunk.content,
            tool_call_chunks=list(getattr(chunk, "tool_call_chunks", None) or []),
            usage_metadata=getattr(chunk, "usage_metadata", None)))

    def add_litellm(self, part: Any) -> ChatGenerationChunk | None:
        usage = getattr(part, "usage", None)
        usage_md = None
        if usage is not None and getattr(usage, "completion_tokens", None) is not None:
            usage_md = {"input_tokens": int(usage.prompt_tokens or 0),
                        "output_tokens": int(usage.completion_tokens),
                        "total_tokens": int(usage.prompt_tokens or 0) + int(usage.completion_tokens)}
            self._count(usage_md)
        choices = getattr(part, "choices", None) or []
        content, tool_chunks = "", []
        if choices:
            delta = choices[0].delta
            content = getattr(delta, "content", None) or ""
            for tc in getattr(delta, "tool_calls", None) or []:
                fn = getattr(tc, "function", None)
                tool_chunks.append({"name": getattr(fn, "name", None),
                                    "args": getattr(fn, "arguments", None),
                                    "id": getattr(tc, "id", None), "index": getattr(tc, "index", 0),
                                    "type": "tool_call_chunk"})
            if choices[0].finish_reason:
                self.metadata["finish_reason"] = choices[0].finish_reason
        if getattr(part, "model", None):
            self.metadata["model_name"] = part.model
        if not content and not tool_chunks and usage_md is None:
            return None
        self.parts.append(content)
        return ChatGenerationChunk(message=AIMessageChunk(content=content, tool_call_chunks=tool_chunks,
                                                          usage_metadata=usage_md))


__all__ = ["ChatAdaptiveRouter", "Samples", "call_plan", "split_total", "selection_text",
           "DECISION_EVENT"]
