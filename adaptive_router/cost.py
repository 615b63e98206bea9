"""Expected and realised dollar costs of candidates.

The expected cost of candidate (model, n) for a prompt is
``prompt_tokens x input price + n x expected_output_tokens x output price``: the prompt is sent
once with ``n`` samples requested, and every sample's output is paid (BEST-Route's accounting).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adaptive_router.domain import Candidate, CostBreakdown, Fleet, Price
from adaptive_router.pricing import TokenCounter, counter_for
from adaptive_router.prompts import messages_text


class CostModel:
    """Prices a fleet's candidates. Prices are resolved once, at construction.

    ``count_tokens=False`` estimates prompt tokens as ``len(text) / 4`` (no tokenizer at all):
    good enough for a routing decision, and free.
    """

    def __init__(
        self,
        fleet: Fleet,
        output_tokens: Mapping[str, float] | None = None,
        count_tokens: bool = True,
    ) -> None:
        self.fleet = fleet
        self.prices: dict[str, Price] = fleet.prices()
        self.output_tokens = {m.name: float(m.expected_output_tokens) for m in fleet.models}
        if output_tokens:
            self.output_tokens.update({k: float(v) for k, v in output_tokens.items()})
        self.count_tokens = count_tokens

    def _counter(self, model: str) -> TokenCounter:
        m = self.fleet.model(model)
        return counter_for(m.price_model or m.call_name, m.tokenizer)

    def prompt_tokens(self, model: str, prompt: str | Sequence[Mapping[str, Any]]) -> int:
        if not self.count_tokens:
            text = prompt if isinstance(prompt, str) else messages_text(prompt)
            return max(1, len(text) // 4)
        counter = self._counter(model)
        if isinstance(prompt, str):
            return counter.count_text(prompt)
        return counter.count_messages(list(prompt))

    def expected_cost(self, candidate: Candidate, prompt_tokens: int) -> float:
        price = self.prices[candidate.model]
        out = candidate.n * self.output_tokens[candidate.model]
        return prompt_tokens * price.input_per_token + out * price.output_per_token

    def expected_costs(
        self, prompt: str | Sequence[Mapping[str, Any]], candidates: Sequence[Candidate] | None = None
    ) -> dict[str, float]:
        """Expected dollar cost of every candidate for one prompt."""
        cands = list(candidates) if candidates is not None else self.fleet.candidates
        counts: dict[Any, int] = {}  # models counted alike (same share key) share one count
        out = {}
        for c in cands:
            key = self._counter(c.model).share_key() if self.count_tokens else ("len/4",)
            if key not in counts:
                counts[key] = self.prompt_tokens(c.model, prompt)
            out[c.key] = self.expected_cost(c, counts[key])
        return out

    def realised(
        self, model: str, prompt_tokens: int, output_tokens: Sequence[int], reward_cost_usd: float = 0.0
    ) -> CostBreakdown:
        """The cost of a request that was served: prompt once, every sample's output."""
        return CostBreakdown.compute(model, self.prices[model], prompt_tokens, output_tokens,
                                     reward_cost_usd)
