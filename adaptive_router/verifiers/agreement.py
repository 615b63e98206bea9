"""Agreement: believe an answer that several samples, or several models, give independently.

Self-consistency as a verifier (the signal of "LLM cascades with Mixture of Thoughts"): the
score is the share of the evidence that gives the kept sample's extracted final answer, where the
evidence is this step's samples plus the answers kept by the models asked before it. Best of n
already draws the samples, so the evidence is free.

Answers are compared after extraction and normalisation (:mod:`adaptive_router.grading`):
multiple-choice letters, numbers and short final answers. Two free-text answers with no
extractable final answer never count as agreeing. A lone sample with nothing to agree with is
scored ``alone`` (by default the router's prior when it has one, else 0.5): agreement has no
evidence then, and says so rather than pretending.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from adaptive_router.verifiers.base import Evidence, Verifier


@functools.lru_cache(maxsize=65536)
def final_answer(text: str) -> str | None:
    """The normalised final answer of a text (None when there is none to compare); cached, as
    a cascade's replay and its verifier's features ask for the same sample's answer many times."""
    from adaptive_router.grading import extract_answer, normalise_answer

    return normalise_answer(extract_answer(text))


def agreement_share(evidence: Evidence, earlier_weight: float = 1.0) -> tuple[float, int]:
    """(share of the evidence agreeing with the kept answer, how many others there were).

    Each of this step's other samples counts 1, each earlier step's kept answer counts
    ``earlier_weight``; the kept sample itself is not counted (it always agrees with itself).
    """
    kept = final_answer(evidence.answer)
    others = [(final_answer(s), 1.0) for i, s in enumerate(evidence.samples) if i != evidence.chosen]
    others += [(final_answer(s), earlier_weight) for s in evidence.earlier]
    total = sum(w for _, w in others)
    if total <= 0:
        return float("nan"), 0
    if kept is None:
        return 0.0, len(others)
    agree = sum(w for a, w in others if a is not None and a == kept)
    return agree / total, len(others)


class AgreementVerifier(Verifier):
    """The share of the other samples and earlier models that give the kept answer.

    ``alone``: the score of a step with nothing to compare with (one sample, first step);
    None = the router's prior for the step, else 0.5. ``earlier_weight``: how much an earlier
    model's answer counts against one of this step's own samples (a different model that agrees
    is stronger evidence than one more sample of the same model).
    """

    name = "agreement"

    def __init__(self, alone: float | None = None, earlier_weight: float = 1.0) -> None:
        self.alone = alone
        self.earlier_weight = float(earlier_weight)

    def _score_batch(self, evidence: Sequence[Evidence]) -> np.ndarray:
        out = np.empty(len(evidence))
        for i, ev in enumerate(evidence):
            share, count = agreement_share(ev, self.earlier_weight)
            if count == 0:
                share = self.alone if self.alone is not None else (
                    ev.prior if ev.prior is not None else 0.5)
            out[i] = share
        return out

    def describe(self) -> str:
        return "agreement"
