"""Sampling through LiteLLM: any provider, ``n=`` where it is supported, else concurrent calls.

One request with ``n=`` pays for the prompt once; providers that ignore ``n`` (or return fewer
choices than asked) are topped up with concurrent single-sample calls, each paying the prompt
again, which the batch's ``prompt_tokens`` then reflects (the prompt tokens summed over calls).
Every call has a timeout and is retried with exponential backoff (tenacity's, rather than a
sleep loop of our own); when every attempt fails the sampler raises
:class:`~adaptive_router.errors.SamplingError` naming the last error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from adaptive_router.errors import InvalidRequestError, SamplingError
from adaptive_router.samplers.base import Messages, SampleBatch, Sampler, as_messages

log = logging.getLogger(__name__)


class LiteLLMSampler(Sampler):
    """Draw n samples from ``model`` (a LiteLLM model name) with retries and timeouts.

    Parameters
    ----------
    model: what LiteLLM calls (``gpt-4o-mini``, ``together_ai/...``, a proxy group with api_base).
    name: the name reported in the batch (the fleet's model name); defaults to ``model``.
    use_n: ``"auto"`` asks LiteLLM whether the provider supports ``n``; ``True``/``False`` force it.
    max_n: the provider's maximum ``n`` per call; larger requests are split into several calls.
    timeout_s, retries, backoff_s: per call; attempt k waits ``backoff_s * 2**k`` before retrying.
    concurrency: parallel calls when topping up with single-sample calls.
    litellm_kwargs: passed to every call (api_base, api_key, temperature, max_tokens, ...).
    """

    def __init__(
        self,
        model: str,
        name: str | None = None,
        use_n: bool | str = "auto",
        max_n: int | None = None,
        timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        concurrency: int = 8,
        **litellm_kwargs: Any,
    ) -> None:
        self.litellm_model = model
        self.model = name or model
        self.use_n = use_n
        self.max_n = max_n
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.concurrency = concurrency
        self.litellm_kwargs = litellm_kwargs

    # -- provider capabilities ------------------------------------------------------------------
    def supports_n(self) -> bool:
        if self.use_n != "auto":
            return bool(self.use_n)
        import litellm

        try:
            provider = litellm.get_llm_provider(self.litellm_model)[1]
            params = litellm.get_supported_openai_params(model=self.litellm_model,
                                                         custom_llm_provider=provider) or []
        except Exception:  # unknown provider: do not assume n works
            return False
        return "n" in params

    # -- one call with retries ------------------------------------------------------------------
    def _call(self, messages: Messages, n: int, gen: Mapping[str, Any]) -> Any:
        import litellm

        kwargs = {**self.litellm_kwargs, **gen, "timeout": self.timeout_s}
        if n > 1:
            kwargs["n"] = n
        # provider errors vary, so every exception is retried, then reported; attempt k (from 0)
        # is followed by a wait of backoff_s * 2**k
        retrying = Retrying(stop=stop_after_attempt(self.retries + 1),
                            wait=wait_exponential(multiplier=self.backoff_s, exp_base=2, min=0),
                            retry=retry_if_exception_type(Exception), reraise=True, sleep=_wait)
        try:
            return retrying(litellm.completion, model=self.litellm_model, messages=messages, **kwargs)
        except Exception as last:
            raise SamplingError(
                f"sampling {self.litellm_model!r} failed after {self.retries + 1} attempts: "
                f"{type(last).__name__}: {last}. Check the model name, credentials and api_base."
            ) from last

    def _count(self, text: str) -> int:
        import litellm

        try:
            return int(litellm.token_counter(model=self.litellm_model, text=text))
        except Exception:
            return max(1, len(text) // 4)

    def _batch_from(self, responses: Sequence[Any]) -> SampleBatch:
        """Texts and token counts of several responses; per-choice output tokens are counted and
        scaled so that they sum to what each provider billed (usage covers all n choices)."""
        texts: list[str] = []
        outs: list[int] = []
        reasons: list[str] = []
        prompt_tokens = 0
        estimated = False
        for resp in responses:
            choices = list(resp.choices)
            ctexts = [(c.message.content or "") for c in choices]
            counted = [self._count(t) for t in ctexts]
            usage = getattr(resp, "usage", None)
            billed = getattr(usage, "completion_tokens", None) if usage else None
            if billed and sum(counted) > 0:
                scaled = _apportion(int(billed), counted)
            else:
                scaled, estimated = counted, True
            prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
            texts += ctexts
            outs += scaled
            reasons += [str(getattr(c, "finish_reason", "") or "") for c in choices]
        return SampleBatch(texts=texts, prompt_tokens=prompt_tokens, output_tokens=outs,
                           model=self.model, finish_reasons=reasons, calls=len(responses),
                           estimated_tokens=estimated)

    def _sample(self, messages: Messages, n: int, **gen: Any) -> SampleBatch:
        if self.max_n is not None and self.max_n < 1:
            raise InvalidRequestError(f"max_n must be >= 1, got {self.max_n}")
        responses: list[Any] = []
        got = 0
        if n > 1 and self.supports_n():
            per_call = min(n, self.max_n or n)
            sizes = [per_call] * (n // per_call) + ([n % per_call] if n % per_call else [])
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(sizes))) as pool:
                responses = list(pool.map(lambda k: self._call(messages, k, gen), sizes))
            got = sum(len(r.choices) for r in responses)
        else:
            responses = [self._call(messages, 1, gen)]
            got = len(responses[0].choices)
        missing = n - got
        if missing > 0:  # the provider ignored n (or capped it): top up with single calls
            log.debug("%s returned %d of %d samples; drawing %d more", self.model, got, n, missing)
            with ThreadPoolExecutor(max_workers=min(self.concurrency, missing)) as pool:
                responses += list(pool.map(lambda _: self._call(messages, 1, gen), range(missing)))
        batch = self._batch_from(responses)
        if batch.n > n:  # a provider returned more choices than asked: keep the first n
            batch = SampleBatch(texts=batch.texts[:n], prompt_tokens=batch.prompt_tokens,
                                output_tokens=batch.output_tokens[:n], model=self.model,
                                finish_reasons=batch.finish_reasons[:n], calls=batch.calls,
                                estimated_tokens=batch.estimated_tokens)
        return batch

    async def asample(self, prompt: str | Sequence[Mapping[str, Any]], n: int = 1,
                      **gen: Any) -> SampleBatch:
        return await asyncio.to_thread(self.sample, as_messages(prompt), n, **gen)


def _apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Integers proportional to ``weights`` that sum exactly to ``total`` (largest remainder)."""
    s = float(sum(weights))
    raw = [total * w / s for w in weights]
    out = [int(x) for x in raw]
    for i in sorted(range(len(raw)), key=lambda i: raw[i] - out[i], reverse=True)[: total - sum(out)]:
        out[i] += 1
    return out


def _wait(seconds: float) -> None:
    """The pause between attempts: this module's own, so that a test can replace it without
    replacing ``time.sleep`` for every thread of the process."""
    time.sleep(seconds)
