"""Training targets: what a router learns to predict for each (record, candidate).

Two families, matching the two prediction semantics of :class:`~adaptive_router.routers.base.Router`:

- **absolute** (K-model score tables such as llmrouter): the candidate's expected quality.
- **relative** (RouteLLM's strong/weak pairs, Hybrid LLM): per candidate, the probability that
  its answer is at least as good as the *reference* candidate's (the strong model); the reference
  itself is 1. Hybrid LLM's three label kinds are the relative targets with
  ``kind="deterministic"`` (1[q_m >= q_ref - t] on the mean quality), ``kind="probabilistic"``
  (the share of sample pairs with q_m >= q_ref - t) and a relaxation ``t`` > 0 (the
  transformed labels; Ding et al., ICLR 2024, section 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from adaptive_router.domain import Candidate
from adaptive_router.errors import DataError
from adaptive_router.records import Record

Mode = Literal["auto", "relative", "absolute"]
Kind = Literal["deterministic", "probabilistic"]
_EPS = 1e-9


def quality_table(records: Sequence[Record], candidate_keys: Sequence[str], quality_score: str) -> np.ndarray:
    """(R, K) expected quality of every candidate, from the evaluation module's definition."""
    from adaptive_router.training.evaluate import quality_matrix

    return np.asarray(quality_matrix(list(records), list(candidate_keys), quality_score), dtype=np.float64)


@dataclass
class TargetSpec:
    """How labels are built; stored in every training report."""

    mode: Literal["relative", "absolute"]
    reference: str | None
    kind: Kind = "deterministic"
    relaxation: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def resolve_spec(
    quality: np.ndarray,
    candidate_keys: Sequence[str],
    mode: Mode = "auto",
    reference: str | None = None,
    kind: Kind = "deterministic",
    relaxation: float = 0.0,
) -> TargetSpec:
    """Fix the target family: ``auto`` is relative for two candidates (a strong/weak pair) and
    absolute for more; the reference defaults to the best candidate on the training data."""
    keys = list(candidate_keys)
    if mode == "auto":
        mode = "relative" if len(keys) == 2 else "absolute"
    if mode not in ("relative", "absolute"):
        raise DataError(f"target mode must be auto, relative or absolute, got {mode!r}")
    if mode == "absolute":
        return TargetSpec("absolute", None, kind, 0.0)
    if reference is None:
        reference = keys[int(np.argmax(quality.mean(axis=0)))]
    elif reference not in keys:
        # accept a bare model name for its n=1 candidate
        ref_key = Candidate(model=reference, n=1).key
        if ref_key not in keys:
            raise DataError(f"reference {reference!r} is not one of the candidates {keys}")
        reference = ref_key
    return TargetSpec("relative", reference, kind, float(relaxation))


def build_targets(
    records: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    spec: TargetSpec,
    quality: np.ndarray | None = None,
) -> np.ndarray:
    """(R, K) targets in [0, 1] for ``spec``; ``quality`` may be passed when already computed."""
    keys = list(candidate_keys)
    q = quality_table(records, keys, quality_score) if quality is None else quality
    if spec.mode == "absolute":
        return np.clip(q, 0.0, 1.0)
    ref = keys.index(spec.reference)
    t = spec.relaxation
    y = (q >= q[:, [ref]] - t - _EPS).astype(np.float64)
    if spec.kind == "probabilistic":
        ref_c = Candidate.from_key(keys[ref])
        for j, key in enumerate(keys):
            c = Candidate.from_key(key)
            if j == ref or c.n != 1 or ref_c.n != 1:
                continue  # best-of-n candidates keep the deterministic label on their expectation
            y[:, j] = [_pair_share(r, c.model, ref_c.model, quality_score, t) for r in records]
    y[:, ref] = 1.0
    return y


def _pair_share(record: Record, model: str, reference: str, score: str, t: float) -> float:
    """Share of (sample of ``model``, sample of ``reference``) pairs with s_m >= s_ref - t."""
    a = np.asarray(record.samples(model).score(score), dtype=np.float64)
    b = np.asarray(record.samples(reference).score(score), dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise DataError(f"record {record.id!r} has no {score!r} scores for {model} or {reference}")
    return float(np.mean(a[:, None] >= b[None, :] - t - _EPS))


def label_spread(y: np.ndarray) -> float:
    """Hybrid LLM's criterion for the relaxation t: the average pairwise absolute difference
    between labels, (1/N^2) sum_i sum_j |y_i - y_j|, largest when the labels are most informative
    (neither almost all 0 nor almost all 1). Computed in O(N log N) on the sorted labels."""
    v = np.sort(np.asarray(y, dtype=np.float64).ravel())
    n = v.size
    if n < 2:
        return 0.0
    idx = np.arange(1, n + 1)
    return float(2.0 * np.sum((2 * idx - n - 1) * v) / (n * n))


def choose_relaxation(
    records: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    spec: TargetSpec,
    grid: Sequence[float],
    quality: np.ndarray | None = None,
) -> tuple[float, dict[str, float]]:
    """The t of ``grid`` maximising :func:`label_spread` of the non-reference labels on
    ``records`` (the validation data). Returns (t, spread per t)."""
    keys = list(candidate_keys)
    ref = keys.index(spec.reference)
    others = [j for j in range(len(keys)) if j != ref]
    spreads = {}
    for t in grid:
        s = TargetSpec(spec.mode, spec.reference, spec.kind, float(t))
        y = build_targets(records, keys, quality_score, s, quality=quality)
        spreads[f"{t:g}"] = float(np.mean([label_spread(y[:, j]) for j in others]))
    best = max(grid, key=lambda t: (spreads[f"{t:g}"], -t))
    return float(best), spreads
