"""Routing metrics: known values on the RouteLLM tables, and exact checks on small curves."""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import pytest
from adaptive_router.training import metrics
from adaptive_router.training.evaluate import evaluate_router, expected_best_of_n, oracle_for
from adaptive_router.training.loaders import load_dataset

from adaptive_router.routers.baselines import RandomRouter


@functools.cache
def _dataset(name: str, root: str):
    return load_dataset(name, data_dir=root)


def _oracle_cpt50(name: str, root: Path) -> float:
    ds = _dataset(name, str(root))
    keys = ds.candidate_keys()
    res = evaluate_router(oracle_for(ds.records, keys, ds.quality_score), ds.records, ds.fleet,
                          ds.quality_score)
    return res["cpt_50"]


# RouteLLM's published facts (../shared/data/README.md): a perfect oracle recovers 50% of the
# weak-to-strong gap with 6.3% (MMLU) and 11.0% (GSM8K) of calls to the strong model.
@pytest.mark.parametrize(("name", "known"), [("routellm-mmlu", 0.063), ("routellm-gsm8k", 0.110)])
def test_oracle_cpt50_known_values(shared_data: Path, name: str, known: float) -> None:
    assert abs(_oracle_cpt50(name, shared_data) - known) <= 0.005


def test_oracle_cpt50_mtbench(shared_data: Path) -> None:
    """MT-Bench's judge scores are graded, not 0/1: the oracle sends questions to GPT-4 in
    decreasing order of its score gain. Over the 72 decontaminated questions that recovers half
    the gap at 8.2% of calls (8.3% at whole questions); the published 8.9% could not be
    reproduced under a consistent definition (RouteLLM's own optimal curve, sampled every 10%
    and averaged over all 80 questions, gives 8.7%), so we check 8.9% within 0.75 points and
    pin our exact value."""
    cpt = _oracle_cpt50("routellm-mtbench", shared_data)
    assert abs(cpt - 0.089) <= 0.0075
    assert cpt == pytest.approx(0.0818, abs=0.001)


@pytest.mark.parametrize("name", ["routellm-mmlu", "routellm-gsm8k"])
def test_random_router_apgr_is_half(shared_data: Path, name: str) -> None:
    ds = _dataset(name, str(shared_data))
    res = evaluate_router(RandomRouter.for_fleet(ds.fleet, seed=0), ds.records, ds.fleet, ds.quality_score)
    # sampling noise: the deferral curve's quality at each share is a mean over the prompts
    assert abs(res["apgr"] - 0.5) < 0.03
    assert 0.40 < res["cpt_50"] < 0.60


def test_random_deferral_curve_is_the_straight_line() -> None:
    s, q = metrics.random_deferral_curve(0.6, 0.8)
    assert metrics.apgr(s, q, 0.6, 0.8) == pytest.approx(0.5)
    assert metrics.cpt(s, q, 0.6, 0.8, 0.5) == pytest.approx(0.5)
    assert metrics.cpt(s, q, 0.6, 0.8, 0.8) == pytest.approx(0.8)


def test_deferral_curve_adds_end_points_and_keeps_best() -> None:
    s, q = metrics.deferral_curve([0.5, 0.5, 0.25], [0.7, 0.75, 0.6], 0.5, 0.8)
    assert s.tolist() == [0.0, 0.25, 0.5, 1.0]
    assert q.tolist() == [0.5, 0.6, 0.75, 0.8]


def test_apgr_and_cpt_of_a_perfect_step() -> None:
    # recovering the whole gap at 10% of calls
    s = np.array([0.0, 0.1, 1.0])
    q = np.array([0.5, 1.0, 1.0])
    assert metrics.apgr(s, q, 0.5, 1.0) == pytest.approx(0.95)
    assert metrics.cpt(s, q, 0.5, 1.0, 0.5) == pytest.approx(0.05)
    assert metrics.pgr(0.75, 0.5, 1.0) == 0.5
    assert np.isnan(metrics.pgr(0.5, 0.5, 0.5))


def test_oracle_deferral_curve_orders_by_gain() -> None:
    weak = np.array([1, 0, 0, 1, 0], float)
    strong = np.array([1, 1, 0, 0, 1], float)
    s, q = metrics.oracle_deferral_curve(weak, strong)
    # two strong-only prompts first (+1/5 each), then ties, then the weak-only one (-1/5)
    assert q.tolist() == pytest.approx([0.4, 0.6, 0.8, 0.8, 0.8, 0.6])
    assert s.tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_non_decreasing_convex_hull() -> None:
    costs = [1, 2, 3, 4, 5, 6]
    quals = [0.1, 0.5, 0.55, 0.8, 0.7, 0.8]
    hc, hq = metrics.non_decreasing_convex_hull(costs, quals)
    assert hc.tolist() == [1, 2, 4]  # (3, .55) lies under the chord; (5, .7), (6, .8) dominated
    assert hq.tolist() == [0.1, 0.5, 0.8]
    assert np.all(np.diff(hq) > 0)
    slopes = np.diff(hq) / np.diff(hc)
    assert np.all(np.diff(slopes) <= 1e-12)  # concave


def test_normalised_area() -> None:
    assert metrics.normalised_area([1, 3], [0.6, 0.6]) == pytest.approx(0.6)
    # a rising line from (0, 0) to (1, 1) then flat to 2: area 0.5 + 1 over 2
    assert metrics.normalised_area([0, 1, 2], [0, 1, 1], cost_range=(0, 2)) == pytest.approx(0.75)
    # a router that only operates from cost 1 earns nothing on [0, 1]
    assert metrics.normalised_area([1, 2], [1, 1], cost_range=(0, 2)) == pytest.approx(0.5)


def test_saving_at_quality() -> None:
    # hull from ($1, 0.5) to ($3, 0.9); the best single model costs $4 for 0.9
    assert metrics.saving_at_quality([1, 3], [0.5, 0.9], 0.9, 4.0) == pytest.approx(25.0)
    assert metrics.saving_at_quality([1, 3], [0.5, 0.9], 0.7, 4.0) == pytest.approx(50.0)
    assert metrics.saving_at_quality([1, 3], [0.5, 0.9], 0.95, 4.0) is None


def test_pareto_front() -> None:
    names = ["cheap", "mid", "dear", "bad"]
    assert metrics.pareto_front(names, [1, 2, 5, 3], [0.5, 0.7, 0.9, 0.6]) == ["cheap", "mid", "dear"]


def test_oracle_quality_cost_curve_is_monotone() -> None:
    rng = np.random.default_rng(0)
    quality = rng.random((200, 3))
    cost = np.tile([1.0, 2.0, 5.0], (200, 1))
    c, q = metrics.oracle_quality_cost_curve(quality, cost)
    assert c[0] == pytest.approx(1.0) and q[-1] == pytest.approx(quality.max(axis=1).mean())
    assert np.all(np.diff(q) >= -1e-12)


def _brute_best_of_n(q, sel, n):
    """Average over every n-subset; ties in the selector broken uniformly."""
    total = 0.0
    subsets = list(itertools.combinations(range(len(q)), n))
    for sub in subsets:
        top = max(sel[i] for i in sub)
        winners = [i for i in sub if sel[i] == top]
        total += np.mean([q[i] for i in winners])
    return total / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 6])
def test_expected_best_of_n_is_exact(n: int) -> None:
    q = [1.0, 0.0, 1.0, 0.0, 0.5, 1.0]
    sel = [0.9, 0.9, 0.2, 0.5, 0.7, 0.1]  # a tie at the top
    assert expected_best_of_n(q, sel, n) == pytest.approx(_brute_best_of_n(q, sel, n))
    assert expected_best_of_n(q, None, n) == pytest.approx(np.mean(q))


def test_expected_best_of_n_with_replacement_beyond_the_samples() -> None:
    q = np.array([1.0, 0.0, 0.0])
    sel = np.array([3.0, 2.0, 1.0])
    # n=5 draws with replacement: the best sample is drawn at least once with 1 - (2/3)^5
    assert expected_best_of_n(q, sel, 5) == pytest.approx(1 - (2 / 3) ** 5)
    rng = np.random.default_rng(0)
    draws = rng.integers(0, 3, size=(20000, 5))
    assert expected_best_of_n(q, sel, 5) == pytest.approx((draws == 0).any(axis=1).mean(), abs=0.01)
