"""What the static encoder costs in routing quality, and what it saves in latency.

    ADAPTIVE_ROUTER_DATA=../shared/data python benchmarks/encoder_quality.py [--seeds 0,1,2]

The bundled default router (Hybrid LLM's probabilistic router, generic strong/weak roles, trained
on RouteLLM's MMLU + GSM8K) is trained with each encoder -- MiniLM itself and the static table
distilled from it (``minilm-static``) -- on the same seeded splits, for several seeds (the GSM8K
test split has only ~260 prompts, so one seed says little). Each run's test metrics come from
``train_on_datasets`` (the threshold knob swept on the decontaminated test split). Beside them:
one 20-word prompt's embedding time per encoder (p50 of fresh prompts, no cache hits).

Writes ``docs/encoder_quality.md`` and ``docs/encoder_quality.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ENCODERS = ["minilm", "minilm-static"]
DATA = ["routellm-mmlu", "routellm-gsm8k"]
METRICS = ["apgr", "cpt_50", "cpt_80", "aiq"]


def embed_latency_ms(encoder: str, prompts: list[str]) -> float:
    """p50 of one fresh prompt's embedding (after one warm-up call that loads the model)."""
    from adaptive_router.encoders import make_encoder

    enc = make_encoder(encoder)
    enc.encode_uncached(["warm-up"])
    times = []
    for p in prompts:
        t0 = time.perf_counter()
        enc.encode_uncached([p])
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def train_runs(seeds: list[int], work: Path) -> list[dict[str, Any]]:
    from adaptive_router.training.train import train_on_datasets

    runs = []
    for seed in seeds:
        for encoder in ENCODERS:
            print(f"[encoder_quality] hybrid-prob, encoder {encoder}, seed {seed}", file=sys.stderr)
            report = train_on_datasets("hybrid-prob", DATA, work / f"{encoder}-{seed}", seed=seed,
                                       roles=True, encoder=encoder)
            runs.append({"encoder": encoder, "seed": seed,
                         "test": {d: {m: report["test_metrics"][d][m] for m in METRICS}
                                  for d in DATA}})
    return runs


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean of each metric per encoder and data set."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for encoder in ENCODERS:
        mine = [r for r in runs if r["encoder"] == encoder]
        out[encoder] = {d: {m: statistics.mean(r["test"][d][m] for r in mine) for m in METRICS}
                        for d in DATA}
    return out


def table(runs: list[dict[str, Any]], latency: dict[str, float], seeds: list[int]) -> str:
    mean = summarise(runs)
    lines = [
        "# Routing quality: MiniLM vs the static encoder distilled from it",
        "",
        "Regenerate: `ADAPTIVE_ROUTER_DATA=../shared/data python benchmarks/encoder_quality.py` "
        f"(seeds {','.join(map(str, seeds))}).",
        "",
        "Router: hybrid-prob with generic strong/weak roles on RouteLLM MMLU + GSM8K (how the bundled "
        "default is built); test metrics on each set's decontaminated test split; APGR / AIQ higher "
        "is better, CPT(x%) (share of calls to the strong model needed for x% of the quality gap) "
        "lower is better. Mean over seeds, then each seed.",
        "",
        "| encoder | one 20-word prompt, p50 | data | APGR | CPT(50%) | CPT(80%) | AIQ | APGR per seed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for encoder in ENCODERS:
        for d in DATA:
            m = mean[encoder][d]
            per_seed = ", ".join(f"{r['test'][d]['apgr']:.3f}" for r in runs if r["encoder"] == encoder)
            lines.append(f"| {encoder} | {latency[encoder]:.2f} ms | {d} | {m['apgr']:.3f} | "
                         f"{m['cpt_50'] * 100:.1f}% | {m['cpt_80'] * 100:.1f}% | {m['aiq']:.3f} | {per_seed} |")
    lines += ["", f"Latency ratio MiniLM / static: {latency['minilm'] / latency['minilm-static']:.0f}x "
              "(same process, same prompts; torch threads as configured)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, default=DOCS / "encoder_quality.md")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    from adaptive_router.fast_encoder import sample_texts

    prompts = list(sample_texts(20, 60, seed=7))
    latency = {e: embed_latency_ms(e, prompts) for e in ENCODERS}
    with tempfile.TemporaryDirectory(prefix="encoder-quality-") as work:
        runs = train_runs(seeds, Path(work))
    text = table(runs, latency, seeds)
    args.out.write_text(text, encoding="utf-8")
    args.out.with_suffix(".json").write_text(json.dumps(
        {"seeds": seeds, "latency_ms": latency, "runs": runs, "mean": summarise(runs)}, indent=2),
        encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
