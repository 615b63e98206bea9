"""A router fine-tuned on served traffic: the base router's logits plus a learned correction.

Served traffic is *bandit feedback*: per request we observe the quality of the one candidate
that was served, never the others, so the base router's training recipe (which needs every
candidate's label per prompt) cannot be rerun on it. What can be learned from it is how the base
router's predictions are wrong on the user's prompts. This router predicts

    p(a | x) = sigmoid( logit(base(x)_a) + e(x) . (u + V_a) + b_a )

with ``e(x)`` the MiniLM embedding of the prompt, ``u`` a correction shared by every candidate
("these prompts are harder than the base thinks"), ``V_a`` and ``b_a`` per candidate. With all
correction weights at zero it predicts exactly what the base predicts: training starts *at* the
base router (a warm start), and an L2 penalty keeps it near there where the log says little.
Retraining a feedback-tuned router again continues from its correction weights over the same
base, so corrections accumulate instead of nesting.

The base router is saved inside the checkpoint (``base/``), so the folder is self-contained and
loads like any other router (``Router.from_pretrained``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.errors import CheckpointError, RoutingError
from adaptive_router.routers.base import Router

#: Predictions are clipped into [EPS, 1 - EPS] before taking logits.
EPS = 1e-4
BASE_DIR = "base"


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(q / (1 - q))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


class FeedbackTunedRouter(Router):
    """The base router's predictions, corrected by a linear model fitted on logged feedback."""

    name = "feedback-tuned"

    def __init__(
        self,
        candidate_keys: Sequence[str],
        base: Router,
        encoder: str = "minilm",
        shared_weight: np.ndarray | None = None,
        candidate_weights: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        generation: int = 1,
    ) -> None:
        super().__init__(candidate_keys)
        self.base = base
        self._base_cols = base.restrict(self.candidate_keys)
        self.encoder = encoder
        self.generation = int(generation)
        self._encoder_obj: Any = None
        k = len(self.candidate_keys)
        self.bias = np.zeros(k) if bias is None else np.asarray(bias, dtype=np.float64)
        self.shared_weight = None if shared_weight is None else np.asarray(shared_weight, np.float64)
        self.candidate_weights = (None if candidate_weights is None
                                  else np.asarray(candidate_weights, np.float64))
        if self.bias.shape != (k,):
            raise RoutingError(f"bias has shape {self.bias.shape}, expected ({k},)")
        if (self.candidate_weights is not None and self.shared_weight is not None
                and self.candidate_weights.shape != (k, self.shared_weight.shape[0])):
            raise RoutingError(f"candidate_weights has shape {self.candidate_weights.shape}, "
                               f"expected ({k}, {self.shared_weight.shape[0]})")

    # -- features -----------------------------------------------------------------------------
    def use_encoder(self, encoder: Any) -> None:
        """Embed with this encoder object (e.g. one with the training disk cache)."""
        self._encoder_obj = encoder

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        if self._encoder_obj is None:
            from adaptive_router.encoders import shared_encoder

            self._encoder_obj = shared_encoder(self.encoder)
        return np.asarray(self._encoder_obj.encode(list(prompts)), dtype=np.float64)

    def base_logits(self, prompts: Sequence[str]) -> np.ndarray:
        return logit(self.base.predict_batch(prompts)[:, self._base_cols])

    def correction(self, embeddings: np.ndarray) -> np.ndarray:
        """The (n, K) logit correction for these embeddings (zero before any training)."""
        out = np.broadcast_to(self.bias, (embeddings.shape[0], self.bias.size)).copy()
        if self.shared_weight is not None:
            out += (embeddings @ self.shared_weight)[:, None]
        if self.candidate_weights is not None:
            out += embeddings @ self.candidate_weights.T
        return out

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        return sigmoid(self.base_logits(prompts) + self.correction(self.embed(prompts)))

    # -- persistence --------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "encoder": self.encoder, "generation": self.generation,
                "base_type": self.base.name}

    def get_tensors(self) -> dict[str, np.ndarray]:
        t = {"bias": self.bias.astype(np.float32)}
        if self.shared_weight is not None:
            t["shared_weight"] = self.shared_weight.astype(np.float32)
        if self.candidate_weights is not None:
            t["candidate_weights"] = self.candidate_weights.astype(np.float32)
        return t

    def save_pretrained(self, directory: str | Path) -> Path:
        d = Path(directory)
        base_dir = d / BASE_DIR
        if base_dir.exists():
            shutil.rmtree(base_dir)
        self.base.save_pretrained(base_dir)
        return super().save_pretrained(d)

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray],
                   directory: Path) -> FeedbackTunedRouter:
        base_dir = Path(directory) / BASE_DIR
        if not base_dir.is_dir():
            raise CheckpointError(f"{directory} is a feedback-tuned router without its base "
                                  f"router folder {base_dir}; copy the whole checkpoint folder")
        base = Router.from_pretrained(base_dir)
        cfg = {k: v for k, v in config.items() if k != "base_type"}
        return cls(base=base, shared_weight=tensors.get("shared_weight"),
                   candidate_weights=tensors.get("candidate_weights"), bias=tensors.get("bias"),
                   **cfg)
