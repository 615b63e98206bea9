"""Keeping the best of n samples.

Three selectors, chosen per fleet (``selector:`` in the fleet file):

- ``reward``: the argmax of a :class:`~adaptive_router.reward.RewardModel`'s scores (BEST-Route);
- ``majority``: self-consistency, the most frequent extracted final answer (ties: the earliest
  sample); needs no reward model, for tasks with checkable answers;
- ``first``: no selection (the first sample).

A failing reward model never fails the request: the first sample is kept and the reason is
reported in :attr:`Selection.selection_fallback`.

:class:`BestOfN` runs the whole step: draw n samples with a sampler, select, and price the
request (:class:`BestOfNResult`: best sample, all samples and scores, cost breakdown, latencies).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adaptive_router.domain import CostBreakdown, Price
from adaptive_router.errors import ConfigError
from adaptive_router.reward import RewardModel
from adaptive_router.samplers.base import SampleBatch, Sampler

log = logging.getLogger(__name__)


@dataclass
class Selection:
    """Which sample was kept, the scores it was chosen by, and how long scoring took."""

    index: int
    scores: list[float] = field(default_factory=list)
    selector: str = "first"
    latency_s: float = 0.0
    selection_fallback: str | None = None


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
        from adaptive_router.grading import extract_answer, normalise_answer

        answers = [normalise_answer(extract_answer(t)) for t in texts]
        counts = Counter(a for a in answers if a is not None)
        if not counts:
            return Selection(index=0, selector="majority", latency_s=time.perf_counter() - t0,
                             selection_fallback="no sample had an extractable final answer")
        top = max(counts.values())
        index = next(i for i, a in enumerate(answers) if a is not None and counts[a] == top)
        return Selection(index=index, scores=[float(counts.get(a, 0)) if a else 0.0 for a in answers],
                         selector="majority", latency_s=time.perf_counter() - t0)
    if selector == "reward":
        if reward_model is None:
            return Selection(index=0, selector="reward", selection_fallback="no reward model configured")
        try:
            scores = [float(s) for s in reward_model.score_samples(prompt, list(texts))]
        except Exception as exc:  # the request must still be served: keep the first sample
            log.warning("reward model failed (%s); keeping the first sample", exc)
            return Selection(index=0, selector="reward", latency_s=time.perf_counter() - t0,
                             selection_fallback=f"reward model failed: {type(exc).__name__}: {exc}")
        index = max(range(len(scores)), key=lambda i: scores[i])
        return Selection(index=index, scores=scores, selector="reward",
                         latency_s=time.perf_counter() - t0)
    raise ConfigError(f"unknown selector {selector!r}; use reward, majority or first")


@dataclass
class BestOfNResult:
    """One best-of-n request: every sample, its score, the one kept, and what it cost."""

    best_index: int
    best_text: str
    texts: list[str]
    scores: list[float]
    selection: Selection
    cost: CostBreakdown
    output_tokens: list[int]
    prompt_tokens: int
    sampling_latency_s: float
    reward_latency_s: float
    model: str
    finish_reasons: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.texts)

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "n": self.n,
            "selector": self.selection.selector,
            "chosen_index": self.best_index,
            "chosen_sample": self.best_text,
            "reward_scores": self.scores,
            "samples": [{"index": i, "text": t, "output_tokens": k,
                         "score": self.scores[i] if i < len(self.scores) else None}
                        for i, (t, k) in enumerate(zip(self.texts, self.output_tokens, strict=True))],
            "cost": self.cost.as_dict(),
            "cost_usd": self.cost.total_usd,
            "sampling_latency_s": self.sampling_latency_s,
            "reward_latency_s": self.reward_latency_s,
            "selection_fallback": self.selection.selection_fallback,
        }


class BestOfN:
    """Draw n samples with a sampler, keep the best by the selector, and price the request.

    Parameters
    ----------
    sampler: draws the samples (:mod:`adaptive_router.samplers`).
    price: the model's price; the cost counts the prompt once per provider call and every
        sample's output, plus the reward model's cost when it is priced per scored pair.
    selector: ``reward``, ``majority`` or ``first`` (see :func:`select_best`).
    reward_model: needed by the ``reward`` selector (else the first sample is kept, and the
        result's ``selection.selection_fallback`` says so).
    """

    def __init__(self, sampler: Sampler, price: Price, selector: str = "reward",
                 reward_model: RewardModel | None = None) -> None:
        if selector not in ("reward", "majority", "first"):
            raise ConfigError(f"unknown selector {selector!r}; use reward, majority or first")
        self.sampler = sampler
        self.price = price
        self.selector = selector
        self.reward_model = reward_model

    def _finish(self, prompt_text: str, batch: SampleBatch, selection: Selection) -> BestOfNResult:
        scored = len(selection.scores) if selection.selector == "reward" else 0
        reward_cost = scored * float(getattr(self.reward_model, "cost_per_pair_usd", 0.0) or 0.0)
        cost = CostBreakdown.compute(batch.model, self.price, batch.prompt_tokens,
                                     batch.output_tokens, reward_cost_usd=reward_cost)
        return BestOfNResult(
            best_index=selection.index, best_text=batch.texts[selection.index], texts=batch.texts,
            scores=list(selection.scores), selection=selection, cost=cost,
            output_tokens=list(batch.output_tokens), prompt_tokens=batch.prompt_tokens,
            sampling_latency_s=batch.latency_s, reward_latency_s=selection.latency_s,
            model=batch.model, finish_reasons=list(batch.finish_reasons))

    def run(self, prompt: str | Sequence[Mapping[str, Any]], n: int, **gen: Any) -> BestOfNResult:
        """Sample ``n`` responses to ``prompt`` (a string or chat messages) and keep the best."""
        from adaptive_router.prompts import prompt_from_messages

        batch = self.sampler.sample(prompt, n, **gen)
        text = prompt if isinstance(prompt, str) else prompt_from_messages(prompt)
        selection = select_best(text, batch.texts, self.selector, self.reward_model)
        return self._finish(text, batch, selection)

    async def arun(self, prompt: str | Sequence[Mapping[str, Any]], n: int, **gen: Any) -> BestOfNResult:
        import asyncio

        from adaptive_router.prompts import prompt_from_messages

        batch = await self.sampler.asample(prompt, n, **gen)
        text = prompt if isinstance(prompt, str) else prompt_from_messages(prompt)
        selection = await asyncio.to_thread(select_best, text, batch.texts, self.selector,
                                            self.reward_model)
        return self._finish(text, batch, selection)
