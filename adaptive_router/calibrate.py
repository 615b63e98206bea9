"""Threshold calibration on the user's own prompts (RouteLLM's ``calibrate_threshold``).

A threshold's meaning depends on the router; a *share of strong calls* does not. Given a sample
of the prompts a deployment will see, :func:`calibrate_router` finds the threshold at which the
threshold policy sends ``strong_share`` of them to the dearest candidate (for two candidates: the
quantile of the router's scores). With a fleet the candidates are priced by the cost model; without
one the router's reference candidate (the strong model of relative routers) counts as the dearest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptive_router.errors import ConfigError, DataError
from adaptive_router.policy import ThresholdPolicy, calibrate_threshold, check_knob, strong_share

if TYPE_CHECKING:
    from adaptive_router.domain import Fleet
    from adaptive_router.routers.base import Router


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a file: JSONL objects with ``prompt`` (Records too) or chat ``messages``,
    else one prompt per non-empty line of plain text."""
    from adaptive_router.prompts import prompt_from_messages

    p = Path(path)
    if not p.exists():
        raise DataError(f"prompts file {p} does not exist")
    lines = [ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    prompts: list[str] = []
    for i, line in enumerate(lines, 1):
        obj: Any = None
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
        if isinstance(obj, dict):
            if isinstance(obj.get("prompt"), str):
                prompts.append(obj["prompt"])
            elif isinstance(obj.get("messages"), list):
                prompts.append(prompt_from_messages(obj["messages"]))
            else:
                raise DataError(f"{p}:{i}: a JSON line needs a 'prompt' string or a 'messages' list")
        else:
            prompts.append(line)
    if not prompts:
        raise DataError(f"{p} holds no prompts; write one per line or JSONL with a 'prompt' field")
    return prompts


def calibrate_router(
    router: Router, prompts: Sequence[str], strong_share_target: float, fleet: Fleet | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """The threshold sending ``strong_share_target`` of ``prompts`` to the dearest candidate."""
    check_knob("strong_share", strong_share_target)
    if fleet is not None:
        from adaptive_router.cost import CostModel

        if hasattr(router, "bind_fleet"):
            router = router.bind_fleet(fleet)
        cols = router.restrict(fleet.candidate_keys)
        preds = router.predict_batch(prompts, progress=progress)[:, cols]
        cm = CostModel(fleet, count_tokens=False)
        costs = np.array([[cm.expected_costs(p)[k] for k in fleet.candidate_keys] for p in prompts])
        keys = fleet.candidate_keys
    else:
        reference = getattr(router, "reference", None)
        if reference is None:
            raise ConfigError(f"router {router.name} predicts absolute qualities with no reference "
                              "candidate: pass --fleet so the candidates can be priced")
        preds = router.predict_batch(prompts, progress=progress)
        costs = np.zeros_like(preds)
        costs[:, router.candidate_keys.index(reference)] = 1.0
        keys = router.candidate_keys
    threshold = calibrate_threshold(preds, costs, strong_share_target)
    achieved = strong_share(ThresholdPolicy(threshold), preds, costs)
    return {"threshold": threshold, "strong_share_target": strong_share_target,
            "strong_share_achieved": achieved, "n_prompts": len(prompts), "router": router.name,
            "candidates": list(keys)}
