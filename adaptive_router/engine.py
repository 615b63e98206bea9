"""The routing engine: fleet + router + policy + cost model -> a Decision per prompt.

This is what the integrations call. It reads the prompt (the last user turn of a chat),
predicts every candidate's quality, prices every candidate, and lets the policy choose. It
holds no per-request state, so N proxy replicas can each hold one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adaptive_router.cost import CostModel
from adaptive_router.domain import Decision, Fleet
from adaptive_router.policy import Policy, ThresholdPolicy, policy_from_knob
from adaptive_router.prompts import prompt_from_messages, validate_prompt
from adaptive_router.routers.base import Router

Prompt = str | Sequence[Mapping[str, Any]]


class RoutingEngine:
    """Decides (model, n) for prompts.

    Parameters
    ----------
    fleet: the candidates to choose among.
    router: predicts each candidate's quality; must know every fleet candidate.
    policy: the default knob; a request may override it (``knob=``).
    cost_model: prices candidates; built from the fleet when omitted.
    """

    def __init__(
        self,
        fleet: Fleet,
        router: Router,
        policy: Policy | None = None,
        cost_model: CostModel | None = None,
    ) -> None:
        self.fleet = fleet
        self.router = router
        self.policy = policy or ThresholdPolicy(0.5)
        self.cost_model = cost_model or CostModel(fleet)
        self.keys = fleet.candidate_keys
        self._cols = router.restrict(self.keys)

    def _policy_for(self, knob: Mapping[str, Any] | Policy | None) -> Policy:
        if knob is None:
            return self.policy
        if isinstance(knob, Policy):
            return knob
        return policy_from_knob(knob)

    @staticmethod
    def router_input(prompt: Prompt) -> str:
        if isinstance(prompt, str):
            return validate_prompt(prompt)
        return prompt_from_messages(prompt)

    def decide(self, prompt: Prompt, knob: Mapping[str, Any] | Policy | None = None) -> Decision:
        """The decision for one prompt (a string or a list of chat messages)."""
        text = self.router_input(prompt)
        policy = self._policy_for(knob)
        preds = self.router.predict_batch([text])[0][self._cols]
        costs = self.cost_model.expected_costs(prompt, self.fleet.candidates)
        return policy.decide(dict(zip(self.keys, preds.tolist(), strict=True)), costs,
                             router=self.router.name)

    async def adecide(self, prompt: Prompt, knob: Mapping[str, Any] | Policy | None = None) -> Decision:
        """Async :meth:`decide`, run off the event loop (encoders are CPU-bound)."""
        return await asyncio.to_thread(self.decide, prompt, knob)

    def decide_batch(
        self, prompts: Sequence[Prompt], knob: Mapping[str, Any] | Policy | None = None
    ) -> list[Decision]:
        """Decisions for many prompts, with the router's batched forward pass."""
        texts = [self.router_input(p) for p in prompts]
        policy = self._policy_for(knob)
        preds = self.router.predict_batch(texts)[:, self._cols]
        out = []
        for p, row in zip(prompts, preds, strict=True):
            costs = self.cost_model.expected_costs(p, self.fleet.candidates)
            out.append(policy.decide(dict(zip(self.keys, row.tolist(), strict=True)), costs,
                                     router=self.router.name))
        return out

    def cost_matrix(self, prompts: Sequence[Prompt]) -> np.ndarray:
        return np.array([[self.cost_model.expected_costs(p)[k] for k in self.keys] for p in prompts])
