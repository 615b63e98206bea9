"""Drawing the n samples of a (model, n) decision, and what they cost in tokens.

A model that accepts ``n`` gets one call asking for all of them (split by the fleet's
``max_n``); one that does not gets n concurrent calls; a model that returns fewer samples than
asked (one that ignores ``n``) is topped up once. Token usage is what the model reports, per
message or per call, because that is what is billed; the fleet's tokenizer counts only when a
model reports nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from adaptive_router.integrations.langchain_plugin.messages import message_from_litellm_choice
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import convert_to_openai_messages
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableBinding

from adaptive_router.cost import CostModel
from adaptive_router.domain import Model
from adaptive_router.errors import ConfigError, SamplingError
from adaptive_router.pricing import TokenCounter, counter_for

#: The planned calls, then one round topping up the samples a model returned too few of.
CALL_ROUNDS = 2


@dataclass
class Samples:
    """The samples drawn for one decision, and what they cost in tokens."""

    messages: list[AIMessage]
    prompt_tokens: int  # summed over the calls made (once when the model accepted ``n``)
    output_tokens: list[int]  # one per sample
    calls: int
    usage_source: str = "reported"  # "reported" by the model, or "counted" with its tokenizer
    child_metadata: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class TokenCounting:
    """Counts one fleet model's tokens with the fleet's tokenizer, for models that report no
    usage (the same counts the expected costs were computed from)."""

    model: Model
    cost_model: CostModel

    def prompt_tokens(self, messages: list[BaseMessage]) -> int:
        return self.cost_model.prompt_tokens(self.model.name, convert_to_openai_messages(messages))

    def output_counter(self) -> TokenCounter:
        return counter_for(self.model.price_model or self.model.call_name, self.model.tokenizer)


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


def litellm_accepts_n(name: str) -> bool:
    """Whether LiteLLM says the provider of ``name`` takes ``n`` (unknown models: no)."""
    try:
        import litellm

        return "n" in (litellm.get_supported_openai_params(model=name) or [])
    except Exception:
        return False


def accepts_n(target: BaseChatModel | str, model: Model) -> tuple[bool, int | None]:
    """(whether one call to ``target`` may ask for n samples, the provider's maximum n per call)."""
    if isinstance(target, BaseChatModel):
        return "n" in type(target).model_fields, model.max_n
    return (model.max_n is not None and model.max_n > 1) or litellm_accepts_n(target), model.max_n


def with_tools(target: BaseChatModel, own: dict[str, Any]) -> tuple[BaseChatModel, dict[str, Any]]:
    """The chat model to call and its bound keywords (tools bound through its ``bind_tools``)."""
    if not own.get("tools"):
        return target, {}
    bound = target.bind_tools(own["tools"], tool_choice=own.get("tool_choice"))
    if isinstance(bound, RunnableBinding) and isinstance(bound.bound, BaseChatModel):
        return bound.bound, dict(bound.kwargs)
    raise ConfigError(f"{type(target).__name__}.bind_tools did not return a bound chat model; "
                      "it cannot be routed with tools")


# -- running the planned calls (sync and async share the bookkeeping) -------------------------------
def count_generations(result: LLMResult) -> int:
    """Samples in a LangChain ``generate`` result (one prompt: its generations)."""
    return len(result.generations[0])


def count_choices(response: Any) -> int:
    """Samples in a LiteLLM chat completion (its choices)."""
    return len(response.choices)


def _still_missing(results: list[Any], n: int, count: Callable[[Any], int]) -> list[int]:
    """The one-sample calls that would bring ``results`` up to ``n`` samples."""
    got = sum(count(r) for r in results)
    return [1] * (n - got) if got < n else []


def _checked(results: list[Any], count: Callable[[Any], int]) -> list[Any]:
    """``results``, unless they hold no sample at all: nothing to choose from is an error."""
    if not results or sum(count(r) for r in results) == 0:
        raise SamplingError("the chosen model returned no samples")
    return results


def run_calls(call: Callable[[int], Any], plan: list[int], n: int,
              count: Callable[[Any], int] = count_generations) -> list[Any]:
    """Run the planned calls (concurrently when several), topping up samples that a model
    returned fewer of than asked (a model that ignores ``n``)."""
    results: list[Any] = []
    todo = list(plan)
    for _ in range(CALL_ROUNDS):
        if not todo:
            break
        if len(todo) == 1:
            results.append(call(todo[0]))
        else:
            with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
                futures = [pool.submit(contextvars.copy_context().run, call, k) for k in todo]
                results.extend(f.result() for f in futures)
        todo = _still_missing(results, n, count)
    return _checked(results, count)


async def arun_calls(call: Callable[[int], Any], plan: list[int], n: int,
                     count: Callable[[Any], int] = count_generations) -> list[Any]:
    """:func:`run_calls` for coroutine calls, gathered on the event loop."""
    results: list[Any] = []
    todo = list(plan)
    for _ in range(CALL_ROUNDS):
        if not todo:
            break
        results.extend(await asyncio.gather(*(call(k) for k in todo)))
        todo = _still_missing(results, n, count)
    return _checked(results, count)


# -- what the calls returned -----------------------------------------------------------------------
def usage_of_call(gens: list[ChatGeneration], llm_output: dict | None, messages: list[BaseMessage],
                  counting: TokenCounting) -> tuple[int, list[int], str]:
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
    counter = counting.output_counter()
    prompt = counting.prompt_tokens(messages)
    return prompt, [counter.count_text(g.text) for g in gens], "counted"


def samples_from_chat_results(results: list[LLMResult], messages: list[BaseMessage],
                              counting: TokenCounting) -> Samples:
    """The samples of the calls made to a LangChain chat model."""
    msgs: list[AIMessage] = []
    prompt_tokens, outs, source, child_meta = 0, [], "reported", []
    for res in results:
        gens = res.generations[0]
        p, o, src = usage_of_call(gens, res.llm_output, messages, counting)
        prompt_tokens += p
        outs.extend(o)
        source = "counted" if src == "counted" else source
        for g in gens:
            m = g.message
            msgs.append(m if isinstance(m, AIMessage) else AIMessage(content=m.content))
            child_meta.append(dict(m.response_metadata))
    return Samples(messages=msgs, prompt_tokens=prompt_tokens, output_tokens=outs,
                   calls=len(results), usage_source=source, child_metadata=child_meta)


def samples_from_litellm(responses: list[Any], name: str, counting: TokenCounting) -> Samples:
    """The samples of the calls made through LiteLLM to the model ``name``.

    A response with several choices reports one completion-token total; it is split over the
    choices in proportion to their counted lengths.
    """
    msgs, outs, prompt_tokens = [], [], 0
    source = "reported"
    counter = counting.output_counter()
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
        for c in choices:
            msgs.append(message_from_litellm_choice(c))
            child_meta.append({"model_name": getattr(resp, "model", name),
                               "finish_reason": getattr(c, "finish_reason", None)})
    return Samples(messages=msgs, prompt_tokens=prompt_tokens, output_tokens=outs,
                   calls=len(responses), usage_source=source, child_metadata=child_meta)
