"""Produce a traffic log of routed requests through a real LiteLLM proxy, for retraining.

Uses the router, reward model and fleet that ``make demo`` trained (``runs/demo/`` by default),
serves every CHAMP problem ``--rounds`` times through a LiteLLM proxy process with the plugin on
(replay deployments of CHAMP's four models, epsilon-exploration with logged propensities), grades
every served answer against CHAMP's reference answer into a feedback file, and prints the
``adaptive-router retrain`` command to run on the result::

    .venv/bin/python examples/make_traffic.py                      # 270 x 4 = 1,080 requests
    .venv/bin/adaptive-router retrain --logs runs/traffic/traffic.jsonl --base runs/demo/router \\
        --feedback runs/traffic/feedback.jsonl --out runs/retrain_report

The router and reward model were fit on CHAMP's train split, so part of this traffic repeats
prompts they saw; the retraining report's held-out traffic is split by prompt either way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml
from adaptive_router.training.retrain.reference_feedback import grade_against_references
from demo import (
    DEFAULT_OUT,
    ROOT,
    SAMPLES_PER_MODEL,
    keep_samples,
    serve_traffic,
    summarise_traffic,
)

from adaptive_router.domain import Fleet
from adaptive_router.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--demo-out", type=Path, default=DEFAULT_OUT,
                    help="where `make demo` left its router, reward model and fleet.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "traffic")
    ap.add_argument("--rounds", type=int, default=4, help="times each CHAMP problem is sent")
    ap.add_argument("--epsilon", type=float, default=0.2, help="the plugin's exploration rate")
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args(argv)

    demo = args.demo_out.resolve()
    for need in ("router", "reward_model", "fleet.yaml", "config.yaml"):
        if not (demo / need).exists():
            raise ConfigError(f"{demo / need} is missing: run `make demo` first (or pass --demo-out)")
    from adaptive_router.training.loaders import load_dataset

    ds = load_dataset("champ")
    ds.records = [keep_samples(r, SAMPLES_PER_MODEL) for r in ds.records]  # as the demo trained
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    fleet = Fleet.from_yaml(demo / "fleet.yaml")
    demo_config = yaml.safe_load((demo / "config.yaml").read_text())
    threshold = float(demo_config["litellm_settings"]["adaptive_router"]["policy"]["threshold"])
    log = out / "traffic.jsonl"
    results, _ = serve_traffic(out, fleet, demo / "router", demo / "reward_model", ds.records,
                               args.rounds, args.epsilon, args.concurrency, log, threshold,
                               verbose=False)
    summarise_traffic(results, fleet)
    refs = {r.prompt: str(r.meta["answer"]) for r in ds.records}
    feedback, acc = grade_against_references(log, refs, out / "feedback.jsonl")
    print(f"traffic log: {log} ({sum(1 for _ in log.open())} lines); feedback: {feedback} "
          f"({acc:.1%} of served answers correct)")
    print(f"next: adaptive-router retrain --logs {log} --base {demo / 'router'} "
          f"--feedback {feedback} --out runs/retrain_report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
