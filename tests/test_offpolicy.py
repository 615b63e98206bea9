"""Off-policy estimators on synthetic logs whose true policy values are known."""

from __future__ import annotations

import numpy as np
import pytest
from adaptive_router.training.offpolicy import (
    compare_policies,
    deterministic_policy,
    dm_estimate,
    dr_estimate,
    effective_sample_size,
    epsilon_greedy_policy,
    estimate_value,
    importance_weights,
    ips_estimate,
    snips_estimate,
)

from adaptive_router.errors import DataError

K = 4


def synthetic_log(n: int, epsilon: float, seed: int):
    """Contexts, true mean rewards, an epsilon-greedy logging policy and Bernoulli rewards."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    weights = np.array([[1.0, -0.5, 0.2], [-0.3, 0.8, 0.1], [0.2, 0.2, -0.9], [0.0, 0.0, 0.0]])
    mu = 1.0 / (1.0 + np.exp(-(x @ weights.T)))  # (n, K) true P(reward = 1)
    logging_greedy = np.argmax(x[:, :1] * np.array([[1.0, -1.0, 0.5, 0.0]]), axis=1)
    logging = epsilon_greedy_policy(logging_greedy, K, epsilon)
    actions = np.array([rng.choice(K, p=row) for row in logging])
    propensities = logging[np.arange(n), actions]
    rewards = (rng.random(n) < mu[np.arange(n), actions]).astype(float)
    target_actions = np.argmax(mu, axis=1)  # the new policy: greedy on the true means
    target = deterministic_policy(target_actions, K)
    true_value = float(mu[np.arange(n), target_actions].mean())
    return dict(mu=mu, actions=actions, propensities=propensities, rewards=rewards,
                target=target, true_value=true_value, logging=logging, rng=rng)


@pytest.mark.parametrize("method", ["ips", "snips", "dr"])
def test_estimators_are_unbiased_and_their_intervals_cover(method):
    """Over 200 independent logs, the mean estimate is near the truth, and the 95% interval
    covers the true value in roughly 95% of them (the standard error is honest)."""
    estimates, covered = [], 0
    for seed in range(200):
        log = synthetic_log(400, epsilon=0.3, seed=seed)
        # a deliberately imperfect reward model: the truth shrunk towards 0.5
        q = 0.5 + 0.6 * (log["mu"] - 0.5)
        est = estimate_value(method, log["rewards"], log["actions"], log["propensities"],
                             log["target"], reward_predictions=q)
        estimates.append(est.value - log["true_value"])
        lo, hi = est.ci95
        covered += lo <= log["true_value"] <= hi
    bias = float(np.mean(estimates))
    assert abs(bias) < 0.01, bias
    assert 0.88 <= covered / 200 <= 0.99, covered


def test_dr_with_a_good_reward_model_has_lower_variance_than_ips():
    log = synthetic_log(2000, epsilon=0.2, seed=1)
    args = (log["rewards"], log["actions"], log["propensities"], log["target"])
    ips = ips_estimate(*args)
    dr = dr_estimate(*args, reward_predictions=log["mu"])
    assert dr.std_error < 0.8 * ips.std_error
    assert abs(dr.value - log["true_value"]) < 3 * dr.std_error + 1e-3


def test_dr_is_robust_to_a_wrong_reward_model_when_propensities_are_right():
    diffs = []
    for seed in range(100):
        log = synthetic_log(400, epsilon=0.3, seed=seed)
        wrong = np.full_like(log["mu"], 0.9)  # biased reward model
        dr = dr_estimate(log["rewards"], log["actions"], log["propensities"], log["target"], wrong)
        dm = dm_estimate(log["rewards"], log["actions"], log["propensities"], log["target"], wrong)
        diffs.append((dr.value - log["true_value"], dm.value - log["true_value"]))
    dr_bias, dm_bias = np.mean(diffs, axis=0)
    assert abs(dr_bias) < 0.015
    assert dm_bias > 0.15  # the direct method inherits the reward model's bias


def test_on_policy_weights_are_one_and_ips_is_the_plain_mean():
    rng = np.random.default_rng(0)
    greedy = rng.integers(0, K, size=50)
    logging = epsilon_greedy_policy(greedy, K, 0.0)
    actions = greedy
    rewards = rng.random(50)
    w = importance_weights(actions, np.ones(50), logging)
    assert np.allclose(w, 1.0)
    est = ips_estimate(rewards, actions, np.ones(50), logging)
    assert est.value == pytest.approx(rewards.mean())
    assert est.effective_sample_size == pytest.approx(50)


def test_snips_stays_within_the_reward_range_and_clipping_caps_weights():
    log = synthetic_log(300, epsilon=0.2, seed=3)
    args = (log["rewards"], log["actions"], log["propensities"], log["target"])
    sn = snips_estimate(*args)
    assert 0.0 <= sn.value <= 1.0
    # an explored action the target agrees with weighs 1 / (epsilon / K)
    assert ips_estimate(*args).max_weight == pytest.approx(1 / (0.2 / K))
    clipped = ips_estimate(*args, clip=5.0)
    assert clipped.max_weight == pytest.approx(5.0)


def test_paired_comparison_is_tighter_than_independent_errors():
    log = synthetic_log(3000, epsilon=0.3, seed=7)
    rng = np.random.default_rng(0)
    best = np.argmax(log["mu"], axis=1)
    # "old" agrees with the best policy on 80% of requests and picks at random elsewhere
    old_actions = np.where(rng.random(best.size) < 0.8, best, rng.integers(0, K, best.size))
    old = deterministic_policy(old_actions, K)
    mu = log["mu"]
    true_diff = float(mu[np.arange(best.size), best].mean() - mu[np.arange(best.size), old_actions].mean())
    for method in ("ips", "snips", "dr"):
        cmp = compare_policies(method, log["rewards"], log["actions"], log["propensities"],
                               log["target"], old, reward_predictions=0.5 + 0.5 * (mu - 0.5))
        assert cmp.difference == pytest.approx(cmp.new.value - cmp.old.value)
        independent = np.hypot(cmp.new.std_error, cmp.old.std_error)
        assert cmp.std_error < independent
        assert abs(cmp.difference - true_diff) < 3.5 * cmp.std_error
        assert cmp.z > 0


def test_effective_sample_size():
    assert effective_sample_size(np.ones(10)) == pytest.approx(10)
    assert effective_sample_size(np.array([1.0, 0, 0, 0])) == pytest.approx(1)
    assert effective_sample_size(np.zeros(3)) == 0.0


def test_bad_logs_are_refused_with_a_clear_message():
    target = deterministic_policy([0, 1], 2)
    with pytest.raises(DataError, match="propensities must lie in"):
        ips_estimate([1.0, 0.0], [0, 1], [0.0, 0.5], target)
    with pytest.raises(DataError, match="distribution"):
        ips_estimate([1.0, 0.0], [0, 1], [0.5, 0.5], np.array([[0.5, 0.2], [1.0, 0.0]]))
    with pytest.raises(DataError, match="empty"):
        ips_estimate([], [], [], np.zeros((0, 2)))
    with pytest.raises(DataError, match="needs reward predictions"):
        estimate_value("dr", [1.0, 0.0], [0, 1], [0.5, 0.5], target)
    with pytest.raises(DataError, match="actions must lie"):
        ips_estimate([1.0, 0.0], [0, 2], [0.5, 0.5], target)
    with pytest.raises(DataError, match="NaN"):
        ips_estimate([np.nan, 0.0], [0, 1], [0.5, 0.5], target)
