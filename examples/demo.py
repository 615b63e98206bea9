"""`make demo`: the main job end to end, offline, on the embedded defaults.

Grows with the project; today it routes a few prompts over examples/fleet.yaml with the
baseline routers and prints each decision and its expected dollar cost.
"""

from __future__ import annotations

from pathlib import Path

from adaptive_router.cost import CostModel
from adaptive_router.domain import Fleet
from adaptive_router.engine import RoutingEngine
from adaptive_router.routers import load_router

HERE = Path(__file__).resolve().parent
PROMPTS = [
    "What is 17 * 23?",
    "Prove that sqrt(2) is irrational.",
    "Write a haiku about routers.",
]


def main() -> None:
    fleet = Fleet.from_yaml(HERE / "fleet.yaml")
    cost = CostModel(fleet)
    for name in ("cheapest", "strongest", "random"):
        engine = RoutingEngine(fleet, load_router(name, fleet), cost_model=cost)
        for p in PROMPTS:
            d = engine.decide(p)
            print(f"{name:9s} {d.model:14s} n={d.n}  ${d.expected_cost_usd:.6f}  {p}")


if __name__ == "__main__":
    main()
