"""Policies and baseline routers, persistence safety, and the engine."""

from __future__ import annotations

import numpy as np
import pytest

from adaptive_router.cost import CostModel
from adaptive_router.domain import Fleet
from adaptive_router.engine import RoutingEngine
from adaptive_router.errors import CheckpointError, InvalidRequestError
from adaptive_router.policy import (
    BudgetPolicy,
    EpsilonExploration,
    ThresholdPolicy,
    TradeoffPolicy,
    calibrate_threshold,
    policy_from_knob,
    strong_share,
)
from adaptive_router.routers import load_router
from adaptive_router.routers.base import Router
from adaptive_router.routers.baselines import OracleRouter, RandomRouter

Q = np.array([[0.9, 0.6, 0.3]])  # predicted quality of strong, mid, weak
C = np.array([[10.0, 3.0, 1.0]])  # their expected costs


def test_threshold_picks_cheapest_passing_else_best():
    assert ThresholdPolicy(0.5).choose(Q, C)[0] == 1
    assert ThresholdPolicy(0.2).choose(Q, C)[0] == 2
    assert ThresholdPolicy(0.95).choose(Q, C)[0] == 0


def test_tradeoff_and_budget():
    assert TradeoffPolicy(0.0).choose(Q, C)[0] == 0
    assert TradeoffPolicy(0.5).choose(Q, C)[0] == 1  # 0.9-0.5, 0.6-0.15, 0.3-0.05
    assert TradeoffPolicy(10).choose(Q, C)[0] == 2
    assert BudgetPolicy(5.0).choose(Q, C)[0] == 1
    assert BudgetPolicy(0.5).choose(Q, C)[0] == 2  # nothing fits: cheapest


@pytest.mark.parametrize("knob", [{"threshold": 1.5}, {"budget_usd": -1}, {"tradeoff": "x"},
                                  {"threshold": 0.5, "tradeoff": 1}, {"temperature": 1}, {}])
def test_knobs_out_of_bounds_are_rejected(knob):
    with pytest.raises(InvalidRequestError):
        policy_from_knob(knob)


def test_calibrated_threshold_hits_target_share():
    rng = np.random.default_rng(0)
    q = np.column_stack([np.ones(1000), rng.random(1000)])
    c = np.tile([10.0, 1.0], (1000, 1))
    t = calibrate_threshold(q, c, 0.2)
    assert strong_share(ThresholdPolicy(t), q, c) == pytest.approx(0.2, abs=0.01)


def test_epsilon_exploration_logs_propensity():
    pol = EpsilonExploration(ThresholdPolicy(0.5), epsilon=0.3, seed=1)
    keys = ["a#1", "b#1", "c#1"]
    ds = [pol.decide(dict(zip(keys, Q[0], strict=True)), dict(zip(keys, C[0], strict=True))) for _ in range(300)]
    greedy = [d for d in ds if d.candidate.key == "b#1"]
    assert {round(d.propensity, 3) for d in greedy} == {round(0.7 + 0.1, 3)}
    assert any(d.explored for d in ds) and all(d.propensity > 0 for d in ds)


def test_random_router_apgr_free_share_and_save_load(tmp_path):
    r = RandomRouter(["s#1", "w#1"], seed=3)
    r.save_pretrained(tmp_path / "rnd")
    back = Router.from_pretrained(tmp_path / "rnd")
    assert isinstance(back, RandomRouter) and back.seed == 3
    np.testing.assert_array_equal(back.predict_batch(["a", "b"]),
                                  RandomRouter(["s#1", "w#1"], seed=3).predict_batch(["a", "b"]))


def test_pickle_and_wrong_schema_are_refused(tmp_path):
    import pickle

    d = tmp_path / "evil"
    d.mkdir()
    (d / "router.pkl").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(CheckpointError, match="pickle"):
        Router.from_pretrained(d)
    (d / "config.json").write_text('{"format": "something-else"}')
    with pytest.raises(CheckpointError, match="not an adaptive-router checkpoint"):
        Router.from_pretrained(d)
    (d / "config.json").write_text('{"format": "adaptive-router", "format_version": 99}')
    with pytest.raises(CheckpointError, match="upgrade"):
        Router.from_pretrained(d)
    f = tmp_path / "weights.pt"
    f.write_bytes(pickle.dumps([1]))
    with pytest.raises(CheckpointError, match="pickle"):
        Router.from_pretrained(f)


def test_engine_decides_with_baselines(repo_root):
    fleet = Fleet.from_yaml(repo_root / "examples" / "fleet.yaml")
    cm = CostModel(fleet, count_tokens=False)
    cheap = RoutingEngine(fleet, load_router("cheapest", fleet), cost_model=cm).decide("hi there")
    assert cheap.candidate.key == "llama-3.1-8b#1"
    strong = RoutingEngine(fleet, load_router("strongest", fleet), cost_model=cm)
    d = strong.decide([{"role": "system", "content": "be brief"},
                       {"role": "user", "content": [{"type": "text", "text": "hello"}]}])
    assert d.candidate.key == "gpt-4o#1"
    assert strong.decide("hello", {"budget_usd": 0.0001}).candidate.model != "gpt-4o"
    with pytest.raises(InvalidRequestError, match="empty"):
        strong.decide("   ")
    with pytest.raises(InvalidRequestError, match="no user turn"):
        strong.decide([{"role": "system", "content": "x"}])


def test_oracle_reads_labels():
    o = OracleRouter(["s#1", "w#1"], {"p": [1.0, 0.0]})
    assert o.predict("p") == {"s#1": 1.0, "w#1": 0.0}
