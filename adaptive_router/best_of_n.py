"""Keeping the best of n samples.

Three selectors, chosen per fleet (``selector:`` in the fleet file):

- ``reward``: the argmax of a :class:`~adaptive_router.reward.RewardModel`'s scores (BEST-Route);
- ``majority``: self-consistency, the most frequent extracted final answer (ties: the earliest
  sample); needs no reward model, for tasks with checkable answers;
- ``first``: no selection (the first sample).

A failing reward model never fails the request: the first sample is kept and the reason is
reported in :attr:`Selection.fallback`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from adaptive_router.errors import ConfigError
from adaptive_router.reward import RewardModel

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """Which sample was kept, the scores it was chosen by, and how long scoring took."""

    index: int
    scores: list[float] = field(default_factory=list)
    selector: str = "first"
    latency_s: float = 0.0
    fallback: str | None = None


def select_best(
    prompt: str,
    texts: Sequence[str],
    selector: str = "reward",
    reward_model: RewardModel | None = None,
) -> Selection:
    """Pick one of ``texts`` (the n samples of one prompt) with the given selector."""
    if not texts:
        raise ConfigError("best-of-n needs at least one sample")
    if len(texts) == 1 and selector != "reward":
        return Selection(index=0, selector=selector)
    t0 = time.perf_counter()
    if selector == "first":
        return Selection(index=0, selector="first")
    if selector == "majority":
        from adaptive_router.answers import extract_answer, normalise_answer

        answers = [normalise_answer(extract_answer(t)) for t in texts]
        counts = Counter(a for a in answers if a is not None)
        if not counts:
            return Selection(index=0, selector="majority", latency_s=time.perf_counter() - t0,
                             fallback="no sample had an extractable final answer")
        top = max(counts.values())
        index = next(i for i, a in enumerate(answers) if a is not None and counts[a] == top)
        return Selection(index=index, scores=[float(counts.get(a, 0)) if a else 0.0 for a in answers],
                         selector="majority", latency_s=time.perf_counter() - t0)
    if selector == "reward":
        if reward_model is None:
            return Selection(index=0, selector="reward", fallback="no reward model configured")
        try:
            scores = [float(s) for s in reward_model.score_samples(prompt, list(texts))]
        except Exception as exc:  # the request must still be served: keep the first sample
            log.warning("reward model failed (%s); keeping the first sample", exc)
            return Selection(index=0, selector="reward", latency_s=time.perf_counter() - t0,
                             fallback=f"reward model failed: {type(exc).__name__}: {exc}")
        index = max(range(len(scores)), key=lambda i: scores[i])
        return Selection(index=index, scores=scores, selector="reward",
                         latency_s=time.perf_counter() - t0)
    raise ConfigError(f"unknown selector {selector!r}; use reward, majority or first")
