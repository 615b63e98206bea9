"""Shared base of routers that read a frozen sentence embedding of the prompt.

Subclasses implement :meth:`EmbeddingRouter._predict_embedded` on an (n, d) array. The base
embeds prompts with the shared encoder (memory LRU; plus the SQLite cache named by
``$ADAPTIVE_ROUTER_EMBED_CACHE`` or :attr:`embedding_cache`), and handles the two prediction
semantics:

- absolute (``reference=None``): each column is the candidate's expected quality;
- relative (``reference`` = a candidate key): each column is P(candidate's answer is at least
  as good as the reference's); the reference's own column is 1.

Routers trained on *generic roles* (candidates ``strong#1`` / ``weak#1``, such as the bundled
default) can be bound to any fleet: see :meth:`bind_fleet`.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptive_router.routers.base import Router

if TYPE_CHECKING:
    from adaptive_router.domain import Fleet

GENERIC_STRONG = "strong#1"
GENERIC_WEAK = "weak#1"


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


class EmbeddingRouter(Router):
    """A router over frozen prompt embeddings (MiniLM by default; any sentence-transformers
    folder by path)."""

    name = "embedding"

    def __init__(
        self,
        candidate_keys: Sequence[str],
        encoder: str = "minilm",
        reference: str | None = None,
        embedding_cache: str | None = None,
    ) -> None:
        super().__init__(candidate_keys)
        self.encoder = encoder
        self.reference = reference
        self.embedding_cache = embedding_cache
        if reference is not None and reference not in self.candidate_keys:
            from adaptive_router.errors import RoutingError

            raise RoutingError(f"reference {reference!r} is not one of {self.candidate_keys}")

    # -- prediction ----------------------------------------------------------------------
    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        from adaptive_router.encoders import shared_encoder

        cache = self.embedding_cache or os.environ.get("ADAPTIVE_ROUTER_EMBED_CACHE")
        return shared_encoder(self.encoder, disk_cache=cache).encode(list(prompts))

    @abstractmethod
    def _predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        """(n, K) predictions from (n, d) embeddings (the reference column is overwritten)."""

    def predict_embedded(self, emb: np.ndarray) -> np.ndarray:
        """Predictions from precomputed embeddings (training and evaluation use this)."""
        out = np.clip(np.asarray(self._predict_embedded(np.asarray(emb, np.float32)), np.float64), 0, 1)
        if self.reference is not None:
            out[:, self.candidate_keys.index(self.reference)] = 1.0
        return out

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        return self.predict_embedded(self.embed(prompts))

    # -- generic roles -------------------------------------------------------------------
    @property
    def has_generic_roles(self) -> bool:
        return set(self.candidate_keys) == {GENERIC_STRONG, GENERIC_WEAK} and self.reference == GENERIC_STRONG

    def bind_fleet(self, fleet: Fleet) -> Router:
        """This router for ``fleet``: itself when it knows every candidate; a
        :class:`FleetRoleRouter` when it was trained on generic strong/weak roles."""
        if all(k in self.candidate_keys for k in fleet.candidate_keys) or not self.has_generic_roles:
            return self
        return FleetRoleRouter(self, fleet)

    # -- persistence ---------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "encoder": self.encoder, "reference": self.reference}

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray], directory: Path) -> Router:
        router = cls(**config)
        router.set_tensors(tensors)
        return router

    def set_tensors(self, tensors: dict[str, np.ndarray]) -> None:  # pragma: no cover - overridden
        """Load learned arrays (inverse of :meth:`get_tensors`)."""


class FleetRoleRouter(Router):
    """A generic strong/weak router mapped onto a real fleet.

    The fleet's reference model plays *strong* (its candidates are predicted 1); every other
    candidate plays *weak* and gets the generic router's P(weak's answer is at least as good as
    strong's). The generic router cannot tell the non-reference models apart, nor n = 1 from
    best-of-n, so a threshold policy picks the cheapest of them whenever the prompt looks easy
    and the reference otherwise. Train a router on your own fleet's records to go beyond this.
    """

    name = "fleet-roles"

    def __init__(self, inner: EmbeddingRouter, fleet: Fleet) -> None:
        super().__init__(fleet.candidate_keys)
        self.inner = inner
        self.name = f"{inner.name}@fleet-roles"  # type: ignore[misc]  # shown in decisions
        ref = fleet.reference_model()
        self.is_strong = np.array([k.rsplit("#", 1)[0] == ref for k in self.candidate_keys])
        self.batch_size = inner.batch_size

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        weak = self.inner.predict_batch(prompts)[:, self.inner.candidate_keys.index(GENERIC_WEAK)]
        out = np.repeat(weak[:, None], len(self.candidate_keys), axis=1)
        out[:, self.is_strong] = 1.0
        return out

    def save_pretrained(self, directory: str | Path) -> Path:
        """Saves the generic router (the fleet binding is rebuilt at load time)."""
        return self.inner.save_pretrained(directory)
