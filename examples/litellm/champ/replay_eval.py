"""Replay CHAMP's test problems through a running proxy: quality and dollars per routing knob.

    .venv/bin/python examples/litellm/champ/replay_eval.py --base-url http://127.0.0.1:4000 \
        [--thresholds 0.3,0.5,0.7,0.9] [--out docs/litellm_champ_replay.json]

Offline evaluation of a routing policy on recorded traffic, through the real serving path: every
request goes through the proxy, the plugin decides (model, n), the ``replay/`` provider answers
with recorded samples and their token counts, the plugin keeps the majority answer and prices the
request. A returned answer's quality is its recorded ``correct`` score. The always-GPT-4-Turbo
line sends the same problems to the ``champ-gpt-4-turbo`` group directly (no routing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import Counter
from pathlib import Path

import openai

from adaptive_router.records import read_records

PRICE = {"champ-gpt-4-turbo": (1.0e-05, 3.0e-05)}  # config.yaml's model_info, for the baseline


def quality_of(record, model: str, text: str) -> float:
    samples = record.models[model]
    return float(samples.scores["correct"][samples.responses.index(text)])


async def run(args: argparse.Namespace) -> dict:
    records = read_records(args.records)
    client = openai.AsyncOpenAI(base_url=f"{args.base_url}/v1", api_key=args.key, max_retries=2, timeout=120)
    gate = asyncio.Semaphore(args.concurrency)

    async def ask(model: str, i: int, rec):
        async with gate:
            return await client.chat.completions.create(
                model=model, seed=i, messages=[{"role": "user", "content": rec.prompt}])

    rows = []
    for t in args.thresholds:
        out = await asyncio.gather(*(ask(f"adaptive-{t:g}", i, r) for i, r in enumerate(records)))
        infos = [o.model_extra["adaptive_router"] for o in out]
        q = [quality_of(r, info["model"], o.choices[0].message.content)
             for r, o, info in zip(records, out, infos, strict=True)]
        rows.append({"policy": f"threshold({t:g})", "quality": sum(q) / len(q),
                     "cost_usd": sum(info["cost_usd"] for info in infos),
                     "candidates": dict(Counter(f"{i['model']}#{i['n']}" for i in infos))})
    base = await asyncio.gather(*(ask("champ-gpt-4-turbo", i, r) for i, r in enumerate(records)))
    inp, outp = PRICE["champ-gpt-4-turbo"]
    rows.append({"policy": "always gpt-4-turbo (no routing)",
                 "quality": sum(quality_of(r, "gpt-4-turbo", o.choices[0].message.content)
                                for r, o in zip(records, base, strict=True)) / len(records),
                 "cost_usd": sum(o.usage.prompt_tokens * inp + o.usage.completion_tokens * outp for o in base),
                 "candidates": {"gpt-4-turbo#1": len(records)}})
    await client.close()
    return {"problems": len(records), "rows": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base-url", default="http://127.0.0.1:4000")
    p.add_argument("--key", default=os.environ.get("LITELLM_MASTER_KEY"))
    p.add_argument("--records", type=Path, default=Path("runs/champ/records.jsonl"))
    p.add_argument("--thresholds", type=lambda s: [float(x) for x in s.split(",")],
                   default=[0.3, 0.5, 0.7, 0.9])
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result = asyncio.run(run(args))
    print(f"{result['problems']} CHAMP test problems replayed through the proxy")
    print(f"{'policy':34} {'quality':>8} {'total $':>10}  candidates")
    for row in result["rows"]:
        print(f"{row['policy']:34} {row['quality']:8.3f} {row['cost_usd']:10.4f}  {row['candidates']}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
