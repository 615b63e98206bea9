"""RouteLLM's ``bert`` router: a fine-tuned encoder classifier (MiniLM backbone by default, any
Hugging Face encoder folder by path), with K sigmoid heads so it handles any number of
candidates."""

from __future__ import annotations

from adaptive_router.routers.transformer import TransformerClassifierRouter


class BertClassifierRouter(TransformerClassifierRouter):
    """Masked-mean pooled encoder + linear head, fine-tuned end to end."""

    name = "bert"
    default_backbone = "minilm"
    default_pooling = "mean"
