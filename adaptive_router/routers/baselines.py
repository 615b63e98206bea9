"""Baseline routers: random, cheapest, strongest, and the oracle (evaluation only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.domain import Candidate, Fleet
from adaptive_router.errors import RoutingError
from adaptive_router.routers.base import Router


class RandomRouter(Router):
    """Uniform random predicted quality: RouteLLM's ``random`` baseline.

    With a threshold policy on two candidates (the reference predicted 1.0) it sends a share
    of calls to the strong model equal to the threshold in expectation, whatever the prompt.
    Seeded, so replays agree.
    """

    name = "random"

    def __init__(self, candidate_keys: Sequence[str], seed: int = 0, reference: str | None = None) -> None:
        super().__init__(candidate_keys)
        self.seed = seed
        # predictions are "at least as good as the reference": the reference candidate itself
        # always is (1.0), so a threshold t sends a share t of calls to it, from 0 to 1
        self.reference = reference if reference in self.candidate_keys else None
        self._rng = np.random.default_rng(seed)

    @classmethod
    def for_fleet(cls, fleet: Fleet, seed: int = 0, **_: Any) -> RandomRouter:
        return cls(fleet.candidate_keys, seed=seed, reference=f"{fleet.reference_model()}#1")

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        out = self._rng.random((len(prompts), len(self.candidate_keys)))
        if self.reference is not None:
            out[:, self.candidate_keys.index(self.reference)] = 1.0
        return out

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "seed": self.seed, "reference": self.reference}


class CheapestRouter(Router):
    """Predicts that every candidate is good enough, so every policy picks the cheapest."""

    name = "cheapest"

    @classmethod
    def for_fleet(cls, fleet: Fleet, **_: Any) -> CheapestRouter:
        return cls(fleet.candidate_keys)

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        return np.ones((len(prompts), len(self.candidate_keys)))


class StrongestRouter(Router):
    """Predicts that only the strongest candidate (the reference model at its largest n) is
    good enough, so every policy that can afford it picks it."""

    name = "strongest"

    def __init__(self, candidate_keys: Sequence[str], strongest: str) -> None:
        super().__init__(candidate_keys)
        if strongest not in self.candidate_keys:
            raise RoutingError(f"strongest candidate {strongest!r} not in {self.candidate_keys}")
        self.strongest = strongest

    @classmethod
    def for_fleet(cls, fleet: Fleet, **_: Any) -> StrongestRouter:
        ref = fleet.reference_model()
        best = max((c for c in fleet.candidates if c.model == ref), key=lambda c: c.n)
        return cls(fleet.candidate_keys, strongest=best.key)

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(prompts), len(self.candidate_keys)))
        out[:, self.candidate_keys.index(self.strongest)] = 1.0
        return out

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "strongest": self.strongest}


class OracleRouter(Router):
    """Knows the true quality of every candidate for every labelled prompt.

    Evaluation only: it reads the labels of the very prompts it routes, so it is the ceiling
    a learned router is measured against, never something to deploy.
    """

    name = "oracle"
    uses_labels = True

    def __init__(self, candidate_keys: Sequence[str], labels: Mapping[str, Sequence[float]]) -> None:
        super().__init__(candidate_keys)
        self.labels = {p: np.asarray(v, dtype=np.float64) for p, v in labels.items()}

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        try:
            return np.stack([self.labels[p] for p in prompts])
        except KeyError as exc:
            raise RoutingError(
                f"the oracle has no label for prompt {str(exc)[:80]}...; it only routes "
                "prompts of the records it was built from"
            ) from None

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray],
                   directory: Path) -> OracleRouter:
        raise RoutingError("the oracle is built from labelled records, never loaded from disk")


def candidate_of(key: str) -> Candidate:
    return Candidate.from_key(key)
