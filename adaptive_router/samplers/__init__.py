"""Samplers: draw n responses from a model with real token counts.

- :class:`LiteLLMSampler`: any LiteLLM provider (``n=`` where supported, else concurrent calls);
- :class:`TransformersSampler`: a local causal LM (SmolLM2-135M-Instruct by default);
- :class:`VLLMSampler`: vLLM's offline engine (imported lazily).

:func:`sampler_for_model` picks one for a fleet :class:`~adaptive_router.domain.Model`: its
``sampler:`` field when set, else ``local`` for ``local/<name>`` models and LiteLLM otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adaptive_router.errors import ConfigError
from adaptive_router.samplers.base import SampleBatch, Sampler, as_messages
from adaptive_router.samplers.litellm_sampler import LiteLLMSampler
from adaptive_router.samplers.transformers_sampler import TransformersSampler
from adaptive_router.samplers.vllm_sampler import VLLMSampler

if TYPE_CHECKING:
    from adaptive_router.domain import Model

LOCAL_PREFIX = "local/"


def sampler_kind(model: Model) -> str:
    kind = getattr(model, "sampler", None)
    if kind:
        return kind
    return "local" if model.call_name.startswith(LOCAL_PREFIX) else "litellm"


def sampler_for_model(model: Model, **overrides: Any) -> Sampler:
    """The sampler a fleet model is served by, with its ``sampler_options`` applied."""
    kind = sampler_kind(model)
    options = {**(getattr(model, "sampler_options", None) or {}), **overrides}
    target = model.call_name
    if target.startswith(LOCAL_PREFIX):
        target = target[len(LOCAL_PREFIX):]
    if kind == "local":
        return TransformersSampler(target, name=model.name, **options)
    if kind == "vllm":
        return VLLMSampler(target, name=model.name, **options)
    if kind == "litellm":
        if model.max_n is not None:
            options.setdefault("max_n", model.max_n)
        return LiteLLMSampler(model.call_name, name=model.name, **options)
    raise ConfigError(f"unknown sampler {kind!r} for model {model.name!r}; use litellm, local or vllm")


__all__ = ["SampleBatch", "Sampler", "as_messages", "LiteLLMSampler", "TransformersSampler",
           "VLLMSampler", "sampler_for_model", "sampler_kind", "LOCAL_PREFIX"]
