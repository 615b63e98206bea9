"""Write a week of routed traffic from two replicas, to try `adaptive-router report` on.

The decisions are real (the routing engine with the bundled-free ``random`` baseline over a
two-model fleet, so both models get traffic) and the lines are written by the plugin's own
:class:`~adaptive_router.traffic.TrafficLogWriter` (size-rotated). Only the answers are made
up: their token counts are drawn at random, so no model is called. Every tenth request is a
cascade that escalated to the reference; a feedback file rates some requests.

    python examples/savings/make_traffic.py runs/savings
    adaptive-router report --logs runs/savings/replica1.jsonl --logs runs/savings/replica2.jsonl \
        --feedback runs/savings/feedback.jsonl --out runs/savings/report
"""

from __future__ import annotations

import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from adaptive_router.cost import CostModel
from adaptive_router.domain import Fleet
from adaptive_router.engine import RoutingEngine
from adaptive_router.routers import load_router
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

FLEET = Fleet.from_dict({
    "models": [{"name": "gpt-4o-mini", "expected_output_tokens": 250},
               {"name": "gpt-4o", "expected_output_tokens": 250}],
    "reference": "gpt-4o",
})
ALIASES = ("adaptive-router", "adaptive-0.3", "support-bot")


def main(out: Path, requests: int = 400, seed: int = 0) -> None:
    rng = random.Random(seed)
    engine = RoutingEngine(FLEET, load_router("random", fleet=FLEET, seed=seed),
                           cost_model=CostModel(FLEET, count_tokens=False))
    prices = FLEET.prices()
    writers = [TrafficLogWriter(out / f"replica{k}.jsonl", max_bytes=64_000) for k in (1, 2)]
    start = datetime(2026, 11, 30, tzinfo=timezone.utc)
    feedback = []
    for i in range(requests):
        prompt = f"Request {i}: summarise ticket #{rng.randint(1000, 9999)} in {rng.randint(2, 6)} lines."
        decision = engine.decide(prompt)
        p_tok, out_tok = len(prompt) // 4, rng.randint(80, 420)  # the prompt as the decision counted it
        cost = prices[decision.model].cost(p_tok, out_tok)
        extra = {}
        if i % 10 == 0 and decision.model != "gpt-4o":  # a cascade: not believed, escalated
            ref_cost = prices["gpt-4o"].cost(p_tok, rng.randint(80, 420))
            extra["cascade"] = {"steps": [{"candidate": decision.candidate.key, "cost_usd": cost, "accepted": False},
                                          {"candidate": "gpt-4o#1", "cost_usd": ref_cost, "accepted": True}],
                                "served_step": 2}
            cost += ref_cost
        when = start + timedelta(days=i * 7 / requests, minutes=rng.randint(0, 20))
        line = TrafficLogLine(request_id=f"req-{i}", timestamp=when, prompt=prompt, decision=decision.as_dict(),
                              samples=["(answer)"], prompt_tokens=p_tok, output_tokens=[out_tok],
                              cost_usd=cost, model_group=decision.model, alias=ALIASES[i % 3], **extra)
        writers[i % 2].write(line)
        if rng.random() < 0.3:
            good = rng.random() < (0.9 if decision.model == "gpt-4o" else 0.75)
            feedback.append({"request_id": line.request_id, "correct": good})
    (out / "feedback.jsonl").write_text("".join(json.dumps(f) + "\n" for f in feedback))
    print(f"wrote {requests} requests to {out}/replica1.jsonl and replica2.jsonl (rotated), "
          f"{len(feedback)} feedback lines to {out}/feedback.jsonl")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/savings"))
