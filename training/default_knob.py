"""Choosing a router's default knob on validation: threshold or trade-off, and its value.

The same router serves very differently under the two knob families: on a many-model table the
threshold knob (cheapest candidate predicted to reach X) saved 10% where the trade-off knob
(quality - lambda x relative cost) saved 27%. Which family suits a fleet is a property of the
fleet's prices and the router's calibration, so it is chosen per fleet on the validation split
and recorded in the checkpoint (``default_knob`` in config.json); the LiteLLM plugin and the
LangChain model serve with it when a request sends no knob and the configuration sets none.

The rule: the cheapest operating point, over both families' sweeps, whose validation quality
reaches the best single model's (the "saving at matched quality" point); when no point reaches
it, the point of highest quality (ties: cheaper).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptive_router.domain import Fleet
from adaptive_router.records import Record
from adaptive_router.routers.base import Router

KNOBS = ("threshold", "tradeoff")


def choose_default_knob(router: Router, records: Sequence[Record], fleet: Fleet,
                        quality_score: str) -> dict[str, Any]:
    """The default knob for ``router`` on the validation ``records``, with the evidence."""
    from adaptive_router.training.evaluate import cost_matrix, quality_matrix, sweep

    keys = list(router.candidate_keys)
    quality = quality_matrix(records, keys, quality_score)
    cost = cost_matrix(records, keys, fleet)
    singles = [i for i, k in enumerate(keys) if k.endswith("#1")]
    means_q, means_c = quality[:, singles].mean(axis=0), cost[:, singles].mean(axis=0)
    best = int(np.lexsort((means_c, -means_q))[0])
    target = float(means_q[best])
    preds = router.predict_batch([r.prompt for r in records])
    points = [(knob, p) for knob in KNOBS for p in sweep(preds, quality, cost, knob=knob)]
    reaching = [(k, p) for k, p in points if p["quality"] >= target - 1e-12]
    if reaching:
        knob, point = min(reaching, key=lambda kp: kp[1]["cost_usd"])
        rule = "cheapest validation point reaching the best single model's quality"
    else:
        knob, point = max(points, key=lambda kp: (kp[1]["quality"], -kp[1]["cost_usd"]))
        rule = "no point reached the best single model's validation quality: the best one"
    per_family = {}
    for family in KNOBS:
        fam = [p for k, p in reaching if k == family]
        per_family[family] = (min(fam, key=lambda p: p["cost_usd"]) if fam else None)
    return {
        "knob": {knob: float(point["knob"])}, "rule": rule, "validation_prompts": len(records),
        "target_quality": target, "best_single": keys[singles[best]].rsplit("#", 1)[0],
        "best_single_cost_usd": float(means_c[best]), "quality": point["quality"],
        "cost_usd": point["cost_usd"],
        "saving_pct": 100 * (1 - point["cost_usd"] / float(means_c[best])) if means_c[best] > 0 else None,
        "per_family": per_family,
    }
