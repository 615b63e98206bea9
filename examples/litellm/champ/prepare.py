"""Prepare the CHAMP replay example: test-split Records and a BEST-Route router trained on train.

    .venv/bin/python examples/litellm/champ/prepare.py [--out runs/champ]

CHAMP (the ``champ-dataset`` package: competition math with 9 recorded answers per problem from
GPT-3.5, GPT-4, GPT-4 Turbo and PaLM 2) is loaded with ``adaptive_router.training.loaders``; the
seeded split keeps the test problems unseen by the router. Writes ``<out>/records.jsonl`` (the test
problems, for the ``replay/`` deployments of config.yaml) and ``<out>/router/`` (BEST-Route over
the fleet's (model, n) candidates, trained on the train split with ``correct`` as quality).
Then start the proxy with ``examples/litellm/champ/config.yaml`` and replay the test problems
through it with ``replay_eval.py``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from adaptive_router.training.loaders import load_dataset  # noqa: E402
from adaptive_router.training.train import train_router  # noqa: E402

from adaptive_router.domain import Fleet  # noqa: E402
from adaptive_router.records import write_records  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = Path("runs/champ")  # relative: the repository root, as config.yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    ds = load_dataset("champ")
    train, val, test = ds.splits(seed=args.seed)
    fleet = Fleet.from_yaml(HERE / "fleet.yaml")
    args.out.mkdir(parents=True, exist_ok=True)
    write_records(test, args.out / "records.jsonl")
    train_router("best-route", train, val, fleet.candidate_keys, ds.quality_score,
                 out_dir=args.out / "router", seed=args.seed, reference="gpt-4-turbo#1")
    print(f"{len(test)} test problems -> {args.out / 'records.jsonl'}; router over "
          f"{fleet.candidate_keys} -> {args.out / 'router'}")


if __name__ == "__main__":
    main()
