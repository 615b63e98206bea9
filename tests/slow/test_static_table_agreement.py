"""The shipped int8 static table keeps the default router's decisions (issue 17).

Why: the package ships ``minilm-static`` quantised (11.8 MB instead of 23 MB in float16) so the
serving install needs no torch; that is only acceptable while the router decides as it would on
the table built from MiniLM. Measured on 620 prompts (250 GSM8K, 250 llmrouter, 80 MT-Bench, 40
MMLU): identical decisions at thresholds over the 10-90% quantiles of the router's score. Slow:
builds MiniLM's table once (~20 s, torch) if it is not cached.

    .venv/bin/pytest -q -s -m slow tests/slow/test_static_table_agreement.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.needs_data]


def routing_prompts(data: Path) -> list[str]:
    prompts = [json.loads(line)["question"] for line in open(data / "routellm/gsm8k/test.jsonl")][:250]
    prompts += [json.loads(line)["query"]
                for line in open(data / "llmrouter/default_query_test.jsonl")][:250]
    prompts += [json.loads(line)["turns"][0] for line in open(data / "routellm/mt_bench/question.jsonl")]
    for f in sorted((data / "routellm/mmlu/responses").glob("*.csv"))[:40]:
        with f.open(newline="") as fh:
            prompts.append(next(csv.DictReader(fh))["prompt"])
    return prompts


def test_shipped_table_keeps_the_default_router_decisions(shared_data: Path) -> None:
    from adaptive_router.encoders import default_encoder_path
    from adaptive_router.routers import load_router
    from adaptive_router.static_encoder import StaticEmbeddingEncoder

    prompts = routing_prompts(shared_data)
    router = load_router("default")
    shipped = StaticEmbeddingEncoder(cache_size=1)
    built = StaticEmbeddingEncoder(f"static:{default_encoder_path()}", cache_size=1)
    assert shipped.shipped and not built.shipped
    emb_q, emb_f = shipped.encode_uncached(prompts), built.encode_uncached(prompts)
    assert (emb_q * emb_f).sum(axis=1).min() > 0.9999
    weak = [i for i, k in enumerate(router.candidate_keys) if k != router.reference][0]
    pq, pf = router.predict_embedded(emb_q)[:, weak], router.predict_embedded(emb_f)[:, weak]
    agreements = [float(np.mean((pf >= t) == (pq >= t))) for t in np.quantile(pf, np.linspace(0.1, 0.9, 9))]
    print(f"{len(prompts)} prompts: max |d p(weak)| {np.abs(pq - pf).max():.4f}; identical decisions "
          f"{np.mean(agreements):.4f} mean, {min(agreements):.4f} worst over 9 thresholds")
    assert len(prompts) >= 600
    assert min(agreements) >= 0.99 and np.mean(agreements) >= 0.995
