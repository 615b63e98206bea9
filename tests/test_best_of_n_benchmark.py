"""The benchmark's validation criterion (how llmrouter router settings are chosen)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "best_of_n_benchmark.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("best_of_n_benchmark", _PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_validation_score_rewards_a_router_that_knows_the_cheap_wins(bench) -> None:
    rng = np.random.default_rng(0)
    n = 400
    cheap_ok = rng.random(n) < 0.5
    quality = np.stack([cheap_ok.astype(float), np.full(n, 0.9)], axis=1)  # cheap, dear
    cost = np.tile([1.0, 10.0], (n, 1))
    informed = np.stack([cheap_ok * 0.9 + 0.05, np.full(n, 0.9)], axis=1)
    clueless = np.stack([rng.random(n), np.full(n, 0.9)], axis=1)
    for knob in ("threshold", "tradeoff"):
        good = bench.validation_score(informed, quality, cost, knob)
        bad = bench.validation_score(clueless, quality, cost, knob)
        assert good > 30 and bad < good - 20
