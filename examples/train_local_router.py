"""Train a BEST-Route router for a fleet from records built with `adaptive-router data build`.

    adaptive-router data build --prompts examples/local_prompts.jsonl \
        --fleet examples/local_fleet.yaml --n 4 --scorer answer-checker --out runs/local/records.jsonl
    python examples/train_local_router.py --records runs/local/records.jsonl \
        --fleet examples/local_fleet.yaml --out runs/local/router
    adaptive-router route "Tom has 3 boxes of 4 pens. How many pens?" \
        --fleet examples/local_fleet.yaml --router runs/local/router --execute

The fleet's reward model scores every recorded sample (score ``proxy_rm``), so the router's
labels are bootstrapped best-of-n with the same reward model that keeps the best sample when
the decision is executed. Candidates are the fleet's (model, n) pairs.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", required=True)
    ap.add_argument("--fleet", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quality-score", default="correct")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from adaptive_router.training.reward_training import score_records
    from adaptive_router.training.train import train_router

    from adaptive_router.domain import Fleet
    from adaptive_router.records import read_records
    from adaptive_router.reward_models import load_reward_model

    fleet = Fleet.from_yaml(args.fleet)
    records = read_records(args.records)
    if fleet.reward_model:
        rm = load_reward_model(os.path.expandvars(os.path.expanduser(fleet.reward_model)))
        score_records(records, rm, "proxy_rm")
    cut = max(1, len(records) // 5)
    router = train_router("best-route", records[cut:], records[:cut], fleet.candidate_keys,
                          args.quality_score, out_dir=Path(args.out), seed=args.seed,
                          reference=f"{fleet.reference_model()}#1")
    print(json.dumps({"out": args.out, "candidates": router.candidate_keys,
                      "report": router.report}, indent=2, default=str))


if __name__ == "__main__":
    main()
