"""One call's way to the chosen model: its settings, and drawing or streaming its samples.

The sync and async entry points of the chat model must do the same things in the same order
(plan the calls, bind tools, apply the generation settings, nest the runs under the router's
run); only how they wait differs. :class:`ChosenModelCall` holds everything a call needs once,
so its sync and async methods differ in nothing but ``await``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from adaptive_router.integrations.langchain_plugin.messages import openai_tool_choice
from adaptive_router.integrations.langchain_plugin.reporting import child_options
from adaptive_router.integrations.langchain_plugin.sampling import (
    Samples,
    TokenCounting,
    accepts_n,
    arun_calls,
    call_plan,
    count_choices,
    run_calls,
    samples_from_chat_results,
    samples_from_litellm,
    with_tools,
)
from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from pydantic import SecretStr

from adaptive_router.domain import Decision


@dataclass(frozen=True)
class CallSettings:
    """The chat model's settings that every call to a chosen model carries."""

    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_retries: int = 0
    api_key: SecretStr | None = None
    litellm_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def generation_kwargs(self, rest: dict[str, Any]) -> dict[str, Any]:
        """The call's own keywords, with the chat model's temperature / max_tokens as defaults."""
        kw = dict(rest)
        if self.temperature is not None:
            kw.setdefault("temperature", self.temperature)
        if self.max_tokens is not None:
            kw.setdefault("max_tokens", self.max_tokens)
        return kw

    def litellm_params(self, name: str, messages: list[BaseMessage], k: int, stop: list[str] | None,
                       own: dict[str, Any], rest: dict[str, Any]) -> dict[str, Any]:
        """The keywords of one ``litellm.completion`` call asking for ``k`` samples."""
        params: dict[str, Any] = {**self.litellm_kwargs, **self.generation_kwargs(rest),
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
                params["tool_choice"] = openai_tool_choice(own["tool_choice"])
        return params


@dataclass
class ChosenModelCall:
    """A decision's model called for one request: ``target`` is its LangChain chat model or its
    LiteLLM name; ``own`` the keywords the router consumed (tools), ``rest`` those forwarded;
    ``callbacks`` nest the model's runs under the router's run."""

    decision: Decision
    messages: list[BaseMessage]
    stop: list[str] | None
    target: BaseChatModel | str
    counting: TokenCounting
    settings: CallSettings
    own: dict[str, Any]
    rest: dict[str, Any]
    callbacks: CallbackManager | AsyncCallbackManager | None = None

    def _plan(self) -> list[int]:
        return call_plan(self.decision.n, *accepts_n(self.target, self.counting.model))

    def _chat_model(self) -> tuple[BaseChatModel, dict[str, Any]]:
        """The chat model with tools bound, and the keywords of each call to it."""
        model, bound = with_tools(self.target, self.own)
        return model, {**bound, **self.settings.generation_kwargs(self.rest)}

    def _litellm_params(self, k: int) -> dict[str, Any]:
        return self.settings.litellm_params(self.target, self.messages, k, self.stop, self.own, self.rest)

    def _stream_config(self) -> dict[str, Any]:
        return {"callbacks": self.callbacks, **child_options(self.decision)}

    # -- all n samples at once ----------------------------------------------------------------
    def draw(self) -> Samples:
        """Draw the decision's n samples (see :mod:`~adaptive_router.integrations.langchain_plugin.sampling`)."""
        plan = self._plan()
        if isinstance(self.target, BaseChatModel):
            model, kw = self._chat_model()
            kw = {**kw, **child_options(self.decision)}

            def call(k: int) -> LLMResult:
                extra = {"n": k} if k > 1 else {}
                return model.generate([self.messages], stop=self.stop, callbacks=self.callbacks,
                                      **kw, **extra)

            results = run_calls(call, plan, self.decision.n)
            return samples_from_chat_results(results, self.messages, self.counting)

        import litellm

        def lcall(k: int) -> Any:
            return litellm.completion(**self._litellm_params(k))

        responses = run_calls(lcall, plan, self.decision.n, count=count_choices)
        return samples_from_litellm(responses, self.target, self.counting)

    async def adraw(self) -> Samples:
        """:meth:`draw`, the calls awaited concurrently."""
        plan = self._plan()
        if isinstance(self.target, BaseChatModel):
            model, kw = self._chat_model()
            kw = {**kw, **child_options(self.decision)}

            async def call(k: int) -> LLMResult:
                extra = {"n": k} if k > 1 else {}
                return await model.agenerate([self.messages], stop=self.stop, callbacks=self.callbacks,
                                             **kw, **extra)

            results = await arun_calls(call, plan, self.decision.n)
            return samples_from_chat_results(results, self.messages, self.counting)

        import litellm

        async def lcall(k: int) -> Any:
            return await litellm.acompletion(**self._litellm_params(k))

        responses = await arun_calls(lcall, plan, self.decision.n, count=count_choices)
        return samples_from_litellm(responses, self.target, self.counting)

    # -- one sample, streamed through ---------------------------------------------------------
    def stream(self, collected: StreamTotals) -> Iterator[ChatGenerationChunk]:
        """The chosen model's chunks as they come (one sample), totals kept in ``collected``."""
        if isinstance(self.target, BaseChatModel):
            model, kw = self._chat_model()
            for chunk in model.stream(self.messages, config=self._stream_config(), stop=self.stop, **kw):
                yield collected.add(chunk)
            return
        import litellm

        stream = litellm.completion(**self._litellm_params(1), stream=True,
                                    stream_options={"include_usage": True})
        for part in stream:
            out = collected.add_litellm(part)
            if out is not None:
                yield out

    async def astream(self, collected: StreamTotals) -> AsyncIterator[ChatGenerationChunk]:
        """:meth:`stream` for async callers."""
        if isinstance(self.target, BaseChatModel):
            model, kw = self._chat_model()
            async for chunk in model.astream(self.messages, config=self._stream_config(), stop=self.stop,
                                             **kw):
                yield collected.add(chunk)
            return
        import litellm

        stream = await litellm.acompletion(**self._litellm_params(1), stream=True,
                                           stream_options={"include_usage": True})
        async for part in stream:
            out = collected.add_litellm(part)
            if out is not None:
                yield out


class StreamTotals:
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

    @property
    def usage_reported(self) -> bool:
        """Whether the stream reported its usage (else the fleet's tokenizer must count it)."""
        return self.input_tokens is not None and self.output_tokens is not None

    def _count(self, usage: Mapping[str, Any] | None) -> None:
        if not usage:
            return
        self.input_tokens = (self.input_tokens or 0) + int(usage.get("input_tokens") or 0)
        self.output_tokens = (self.output_tokens or 0) + int(usage.get("output_tokens") or 0)

    def add(self, chunk: BaseMessage) -> ChatGenerationChunk:
        """A LangChain model's chunk, re-emitted without its response metadata."""
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
        """A LiteLLM stream part as a LangChain chunk; None for a part that carries nothing."""
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

    def as_samples(self, messages: list[BaseMessage], counting: TokenCounting) -> Samples:
        """The streamed answer as the call's one sample: tokens as the model reported them, else
        counted with the fleet's tokenizer."""
        text = self.text
        if self.usage_reported:
            prompt, out, source = int(self.input_tokens), int(self.output_tokens), "reported"
        else:
            prompt = counting.prompt_tokens(messages)
            out = counting.output_counter().count_text(text)
            source = "counted"
        return Samples(messages=[AIMessage(content=text)], prompt_tokens=prompt, output_tokens=[out],
                       calls=1, usage_source=source, child_metadata=[self.metadata])
