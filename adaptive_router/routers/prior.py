"""The prior router: each candidate's mean quality on past records, the same for every prompt.

A context-free baseline (the "best fixed candidate" line of routing papers): it knows how good
each (model, n) candidate is on average, not which prompts are hard. With a threshold policy it
serves every prompt with the cheapest candidate whose average reaches the threshold, so the knob
still trades quality for cost. It fits in milliseconds from a handful of records, which makes it
the router of the LiteLLM example and of tests that need a predictable decision.

For n > 1 the prior is the expected quality of the sample a selector keeps out of n drawn from
each record's samples: with a selector score, the sample with the highest score (exactly, over
all n-subsets); with ``selector="majority"``, the sample whose extracted final answer is the most
frequent in the subset (self-consistency, as :func:`adaptive_router.best_of_n.select_best` keeps
it); with neither, a random sample (so n > 1 is no better than n = 1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations, islice
from math import comb
from typing import Any

import numpy as np

from adaptive_router.domain import Candidate
from adaptive_router.errors import DataError, RoutingError
from adaptive_router.records import Record
from adaptive_router.routers.base import Router


def expected_selected_quality(quality: Sequence[float], n: int,
                              selector: Sequence[float] | None = None) -> float:
    """E[quality of the kept sample] when n of these samples are drawn without replacement.

    Sorted by selector score ascending, sample i is the kept one exactly when it is drawn with
    n - 1 of the i samples ranked below it: probability C(i, n-1) / C(k, n).
    """
    q = np.asarray(quality, dtype=np.float64)
    k = len(q)
    if k == 0:
        raise DataError("no samples to estimate a candidate's quality from")
    if selector is None or n <= 1:
        return float(q.mean())
    n = min(n, k)
    order = np.argsort(np.asarray(selector, dtype=np.float64), kind="stable")
    weights = np.array([comb(i, n - 1) for i in range(k)], dtype=np.float64) / comb(k, n)
    return float(np.dot(q[order], weights))


def expected_majority_quality(quality: Sequence[float], texts: Sequence[str], n: int,
                              max_subsets: int = 5000) -> float:
    """E[quality of the majority-vote sample] over n-subsets of the samples (first ``max_subsets``)."""
    from adaptive_router.grading import extract_answer, normalise_answer

    q = list(quality)
    if len(texts) != len(q):
        raise DataError("majority selection needs the response texts of every scored sample")
    if n <= 1 or len(q) <= 1:
        return float(np.mean(q))
    answers = [normalise_answer(extract_answer(t)) for t in texts]
    kept = []
    for subset in islice(combinations(range(len(q)), min(n, len(q))), max_subsets):
        counts = Counter(answers[i] for i in subset if answers[i] is not None)
        if not counts:
            kept.append(q[subset[0]])
            continue
        top = max(counts.values())
        kept.append(q[next(i for i in subset if answers[i] is not None and counts[answers[i]] == top)])
    return float(np.mean(kept))


class PriorRouter(Router):
    """Predicts a fixed quality per candidate (``priors``, aligned with ``candidate_keys``)."""

    name = "prior"

    def __init__(self, candidate_keys: Sequence[str], priors: Sequence[float] | Mapping[str, float]) -> None:
        super().__init__(candidate_keys)
        if isinstance(priors, Mapping):
            missing = [k for k in self.candidate_keys if k not in priors]
            if missing:
                raise RoutingError(f"priors missing for candidates {missing}")
            priors = [priors[k] for k in self.candidate_keys]
        if len(priors) != len(self.candidate_keys):
            raise RoutingError(f"{len(priors)} priors for {len(self.candidate_keys)} candidates")
        self.priors = [float(p) for p in priors]

    @classmethod
    def fit(cls, records: Iterable[Record], candidate_keys: Sequence[str], quality_score: str,
            selector_score: str | None = None, selector: str | None = None) -> PriorRouter:
        """Mean (selected) quality of every candidate over the records that hold its model.

        ``selector="majority"`` estimates n > 1 by majority vote over the response texts;
        otherwise ``selector_score`` (a per-sample score, e.g. a reward) picks, else chance.
        """
        records = list(records)
        priors = []
        for key in candidate_keys:
            cand = Candidate.from_key(key)
            values = []
            for rec in records:
                samples = rec.models.get(cand.model)
                if samples is None or quality_score not in samples.scores:
                    continue
                quality = samples.scores[quality_score]
                if selector == "majority":
                    values.append(expected_majority_quality(quality, samples.responses, cand.n))
                    continue
                sel = samples.scores.get(selector_score) if selector_score else None
                values.append(expected_selected_quality(quality, cand.n, sel))
            if not values:
                raise DataError(f"no record has {quality_score!r} scores for model {cand.model!r}; "
                                "cannot fit its prior")
            priors.append(float(np.mean(values)))
        return cls(candidate_keys, priors)

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        return np.tile(np.asarray(self.priors, dtype=np.float64), (len(prompts), 1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "priors": self.priors}
