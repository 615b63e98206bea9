"""The Router interface: prompts in, predicted quality of every candidate out.

A router knows nothing about prices. Its predictions are, per candidate, either a probability
that the candidate's answer is at least as good as the reference's (RouteLLM, Hybrid LLM,
BEST-Route) or an expected score in [0, 1] (AR-LLM, score tables). Implement one method,
:meth:`Router._predict`, and get single-prompt, batched and async prediction, and persistence,
from the base class.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from adaptive_router.errors import RoutingError
from adaptive_router.persistence import load_config, load_tensors, save_checkpoint


class Router(ABC):
    """Predicts the quality of each candidate (``candidate_keys``) for each prompt."""

    #: Registry name, stored in ``config.json`` as ``router_type``.
    name: ClassVar[str] = "router"
    #: Whether predictions depend on labels of the evaluated prompts (evaluation only).
    uses_labels: ClassVar[bool] = False
    #: How many prompts :meth:`predict_batch` hands to :meth:`_predict` at once.
    batch_size: int = 64
    #: The knob this router serves with when a request sends none (``{"tradeoff": 0.3}``), chosen
    #: on validation by ``adaptive-router train``; None = the integration's own default.
    default_knob: dict[str, float] | None = None

    def __init__(self, candidate_keys: Sequence[str]) -> None:
        if not candidate_keys:
            raise RoutingError("a router needs at least one candidate")
        self.candidate_keys = list(candidate_keys)

    # -- the one method to implement -------------------------------------------------------
    @abstractmethod
    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        """Return an array of shape (len(prompts), len(candidate_keys)) of predicted quality."""

    # -- derived behaviour -----------------------------------------------------------------
    def predict_batch(self, prompts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Predictions for many prompts, in batches of ``batch_size``."""
        prompts = list(prompts)
        if not prompts:
            return np.zeros((0, len(self.candidate_keys)), dtype=np.float64)
        chunks = range(0, len(prompts), self.batch_size)
        if progress and len(prompts) > self.batch_size:
            from tqdm.auto import tqdm

            chunks = tqdm(chunks, desc=f"routing ({self.name})", unit="batch")
        out = [np.asarray(self._predict(prompts[i : i + self.batch_size]), dtype=np.float64)
               for i in chunks]
        preds = np.concatenate(out, axis=0)
        if preds.shape != (len(prompts), len(self.candidate_keys)):
            raise RoutingError(
                f"router {self.name} returned shape {preds.shape}, expected "
                f"({len(prompts)}, {len(self.candidate_keys)})"
            )
        return preds

    def predict(self, prompt: str) -> dict[str, float]:
        """Predicted quality per candidate key, for one prompt."""
        row = self.predict_batch([prompt])[0]
        return dict(zip(self.candidate_keys, row.tolist(), strict=True))

    async def apredict(self, prompt: str) -> dict[str, float]:
        """Async :meth:`predict`, off the event loop (encoders are CPU-bound)."""
        return await asyncio.to_thread(self.predict, prompt)

    def restrict(self, keys: Sequence[str]) -> np.ndarray:
        """Column indices of ``keys`` in this router's candidates (RoutingError if unknown)."""
        missing = [k for k in keys if k not in self.candidate_keys]
        if missing:
            raise RoutingError(
                f"router {self.name} does not predict for {missing}; it knows "
                f"{self.candidate_keys}. Retrain it on records with these models, or remove them "
                "from the fleet."
            )
        return np.array([self.candidate_keys.index(k) for k in keys], dtype=int)

    # -- persistence -------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Constructor settings to write into config.json (override to add yours)."""
        return {"candidate_keys": self.candidate_keys}

    def get_tensors(self) -> dict[str, np.ndarray]:
        """Learned arrays to write into model.safetensors (override when there are any)."""
        return {}

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray],
                   directory: Path) -> Router:
        """Rebuild from ``get_config()`` / ``get_tensors()`` (override when needed)."""
        return cls(**config)

    def save_pretrained(self, directory: str | Path) -> Path:
        cfg: dict[str, Any] = {"router_type": self.name, "params": self.get_config()}
        if self.default_knob:
            cfg["default_knob"] = dict(self.default_knob)
        return save_checkpoint(directory, "router", cfg, self.get_tensors())

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> Router:
        """Load any router saved by ``save_pretrained`` (dispatching on ``router_type``)."""
        from adaptive_router.routers import SAVED_TYPE_ALIASES, router_class

        cfg = load_config(directory, expect_kind="router")
        saved_type = cfg.get("router_type", "")
        klass = router_class(SAVED_TYPE_ALIASES.get(saved_type, saved_type))
        if cls is not Router and not issubclass(klass, cls):
            from adaptive_router.errors import CheckpointError

            raise CheckpointError(f"{directory} holds a {klass.name} router, not a {cls.name}")
        params = cfg.get("params", {})
        if not isinstance(params, dict):
            from adaptive_router.errors import CheckpointError

            raise CheckpointError(f"{directory}/config.json: params must be an object, got "
                                  f"{type(params).__name__}; re-save the router")
        try:
            router = klass.from_state(params, load_tensors(directory), Path(directory))
        except TypeError as exc:
            # an unknown or missing keyword in config.json (a hand edit, or a checkpoint from a
            # newer version): say which file and what, not a raw TypeError from __init__
            from adaptive_router.errors import CheckpointError

            raise CheckpointError(f"{directory}/config.json: the {klass.name} router's params do not "
                                  f"fit it ({exc}); remove the parameter or retrain the router") from None
        knob = cfg.get("default_knob")
        if knob is not None:
            from adaptive_router.errors import AdaptiveRouterError, CheckpointError
            from adaptive_router.policy import policy_from_knob

            try:
                policy_from_knob(knob if isinstance(knob, dict) else {"": knob})
            except AdaptiveRouterError as exc:
                raise CheckpointError(f"{directory}/config.json: default_knob {knob!r} is not a routing knob "
                                      f"({exc}); remove it or retrain the router") from None
            router.default_knob = dict(knob)
        return router

    def __repr__(self) -> str:
        return f"{type(self).__name__}(candidates={self.candidate_keys})"
