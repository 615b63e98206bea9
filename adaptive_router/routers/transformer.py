"""Shared base of routers that fine-tune a transformer as a K-output classifier.

``bert`` pools a bidirectional encoder by the attention-masked mean (MiniLM by default);
``causal-llm`` reads a decoder's last non-padding token (SmolLM2-135M by default). Each output
is a sigmoid: the candidate's expected quality (absolute targets) or P(at least as good as the
reference) (relative targets; the reference's column is 1).

Checkpoints keep the backbone *by reference* plus the parameters that training changed: the
config names the backbone (``minilm``, ``smollm2`` or a local folder), ``model.safetensors``
holds the head and every fine-tuned backbone tensor. A fully fine-tuned backbone is therefore
saved whole; a partially fine-tuned one (the last layers of SmolLM2 on a CPU) stays small.
Loading reads safetensors only.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from adaptive_router.errors import CheckpointError, ConfigError
from adaptive_router.routers.base import Router

_HEAD = "head."
_BACKBONE = "backbone."


def resolve_backbone(spec: str) -> Path:
    """``minilm`` / ``smollm2`` / a local Hugging Face folder -> its path."""
    if spec in ("minilm", "default-encoder"):
        from adaptive_router.encoders import default_encoder_path

        return default_encoder_path()
    if spec in ("smollm2", "smollm2-135m"):
        from adaptive_router.local_models import smollm2_hf_folder

        return smollm2_hf_folder()
    path = Path(spec)
    if not path.is_dir():
        raise ConfigError(f"backbone {spec!r} is neither 'minilm', 'smollm2' nor a local Hugging Face "
                          "model folder; pass the folder's path (no hub downloads)")
    return path


def build_module(backbone_path: Path, num_outputs: int, pooling: str) -> Any:
    """The torch module: backbone + pooling + linear head (logits, one per candidate)."""
    import torch
    from torch import nn
    from transformers import AutoModel

    class _Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = AutoModel.from_pretrained(str(backbone_path), local_files_only=True)
            hidden = self.backbone.config.hidden_size
            self.head = nn.Linear(hidden, num_outputs)
            self.pooling = pooling

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            h = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(h.dtype)
            if self.pooling == "mean":
                pooled = (h * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            else:  # last non-padding token (right padding)
                last = attention_mask.sum(1).long() - 1
                pooled = h[torch.arange(h.shape[0], device=h.device), last]
            return self.head(pooled.float())

    return _Classifier()


def load_tokenizer(backbone_path: Path) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(backbone_path), local_files_only=True)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


class TransformerClassifierRouter(Router):
    """A fine-tuned transformer with one sigmoid output per candidate."""

    name = "transformer"
    default_backbone: ClassVar[str] = "minilm"
    default_pooling: ClassVar[str] = "mean"
    batch_size = 16

    def __init__(
        self,
        candidate_keys: Sequence[str],
        backbone: str | None = None,
        reference: str | None = None,
        max_length: int = 256,
        pooling: str | None = None,
        device: str | None = None,
    ) -> None:
        super().__init__(candidate_keys)
        self.backbone = backbone or self.default_backbone
        self.reference = reference
        self.max_length = max_length
        self.pooling = pooling or self.default_pooling
        self.device = device
        self._module: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    # -- the torch side, built lazily --------------------------------------------------------
    def build(self) -> Any:
        """Create (once) the module and tokenizer from the backbone; returns the module."""
        if self._module is None:
            with self._lock:
                if self._module is None:
                    path = resolve_backbone(self.backbone)
                    self._tokenizer = load_tokenizer(path)
                    self._module = build_module(path, len(self.candidate_keys), self.pooling)
        return self._module

    @property
    def tokenizer(self) -> Any:
        self.build()
        return self._tokenizer

    def tokenize(self, prompts: Sequence[str]) -> dict[str, Any]:
        return self.tokenizer(list(prompts), padding=True, truncation=True,
                              max_length=self.max_length, return_tensors="pt")

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        import torch

        module = self.build()
        module.eval()
        dev = self.device or next(module.parameters()).device
        batch = {k: v.to(dev) for k, v in self.tokenize(prompts).items() if k in ("input_ids", "attention_mask")}
        with torch.no_grad():
            logits = module(**batch).float().cpu().numpy()
        out = 1.0 / (1.0 + np.exp(-np.clip(logits, -40, 40)))
        if self.reference is not None:
            out[:, self.candidate_keys.index(self.reference)] = 1.0
        return out

    # -- persistence -------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "backbone": self.backbone, "reference": self.reference,
                "max_length": self.max_length, "pooling": self.pooling}

    def get_tensors(self) -> dict[str, np.ndarray]:
        """The head and every backbone tensor that training changed (requires_grad)."""
        module = self.build()
        out = {}
        for name, p in module.named_parameters():
            if name.startswith(_HEAD) or p.requires_grad:
                out[name] = p.detach().float().cpu().numpy()
        return out

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray], directory: Path) -> Router:
        import torch

        router = cls(**config)
        module = router.build()
        own = dict(module.named_parameters())
        unknown = [k for k in tensors if k not in own]
        if unknown:
            raise CheckpointError(f"{directory}: tensors {unknown[:3]} do not fit backbone "
                                  f"{router.backbone!r}; was it trained on another backbone?")
        with torch.no_grad():
            for k, arr in tensors.items():
                if tuple(own[k].shape) != arr.shape:
                    raise CheckpointError(f"{directory}: tensor {k} has shape {arr.shape}, the "
                                          f"backbone expects {tuple(own[k].shape)}")
                own[k].copy_(torch.from_numpy(np.asarray(arr)))
        for k, p in own.items():  # re-saving stores exactly what the checkpoint stored
            p.requires_grad = k in tensors
        module.eval()
        return router
