"""Sampling from a local causal LM with transformers (SmolLM2-135M-Instruct by default).

Uses :mod:`adaptive_router.local_models`: the model is loaded once per process and shared, and
the n samples come from one ``generate`` call with ``num_return_sequences=n`` (the prompt is
encoded once), with real token counts from the tokenizer.
"""

from __future__ import annotations

from typing import Any

from adaptive_router.local_models import DEFAULT_LOCAL_MODEL
from adaptive_router.samplers.base import Messages, SampleBatch, Sampler


class TransformersSampler(Sampler):
    """n samples from a local model (a bundled name such as ``smollm2-135m-instruct`` or a
    Hugging Face causal-LM folder)."""

    def __init__(
        self,
        model: str = DEFAULT_LOCAL_MODEL,
        name: str | None = None,
        max_new_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.95,
        seed: int | None = None,
        device: str | None = None,
    ) -> None:
        self.local_model = model
        self.model = name or model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.device = device

    def _sample(self, messages: Messages, n: int, **gen: Any) -> SampleBatch:
        from adaptive_router.local_models import load_local_model

        lm = load_local_model(self.local_model, **({"device": self.device} if self.device else {}))
        settings = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                    "top_p": self.top_p, "seed": self.seed}
        if "max_tokens" in gen:
            gen["max_new_tokens"] = gen.pop("max_tokens")
        settings.update({k: v for k, v in gen.items() if k in settings})
        out = lm.generate(messages, n=n, **settings)
        return SampleBatch(texts=out.texts, prompt_tokens=out.prompt_tokens,
                           output_tokens=out.output_tokens, model=self.model,
                           finish_reasons=out.finish_reasons)
