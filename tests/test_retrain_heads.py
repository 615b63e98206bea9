"""Retraining from day one (issue 15): heads for every fleet candidate learned from the traffic
log of the bundled default router, ``--base none``, a model added later, cost-aware exploration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from adaptive_router.training.retrain.job import retrain

from adaptive_router.domain import Fleet
from adaptive_router.policy import CostAwareExploration, EpsilonExploration, Policy, ThresholdPolicy
from adaptive_router.routers import load_router
from adaptive_router.routers.base import Router
from adaptive_router.routers.fleet_heads import FleetHeadsRouter
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

PRICES = {"cheap": 0.1, "mid": 0.4, "strong": 2.0, "newbie": 0.15}  # dollars per million tokens
EASY = ["What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}, please.",
        "How much is {a} times 2?"]
HARD = ["Prove that there are infinitely many primes congruent to {a} modulo {b}.",
        "Show rigorously that the series of 1/n^{a} converges, with an epsilon-delta proof for case {b}.",
        "Derive a closed form for the number of lattice paths avoiding {a} forbidden points in a {b}x{b} grid.",
        "Prove the inequality between the arithmetic and geometric means of {a} positive reals, case {b}."]
#: true P(correct) per prompt kind: the cheap model only on easy prompts; the model added later
#: (cheap too) is good at both
TRUTH = {"easy": {"cheap": 0.9, "mid": 0.9, "strong": 0.95, "newbie": 0.9},
         "hard": {"cheap": 0.1, "mid": 0.3, "strong": 0.85, "newbie": 0.8}}


def write_fleet(path: Path, models: list[str]) -> Path:
    data = {"models": [{"name": m, "price": {"input_per_million": PRICES[m], "output_per_million": PRICES[m]},
                        "expected_output_tokens": 200} for m in models], "reference": "strong"}
    path.write_text(yaml.safe_dump(data))
    return path


def serve(path: Path, fleet: Fleet, router: Router, policy: Policy, n: int, seed: int) -> list[TrafficLogLine]:
    """What the plugin logs for ``n`` prompts served by ``router`` + ``policy``: every decision
    with its predictions, expected costs and propensity, a task tag, and graded feedback."""
    rng = np.random.default_rng(seed)
    writer = TrafficLogWriter(path)
    prices = fleet.prices()
    prompts, kinds = [], []
    for i in range(n):
        kind = "easy" if i % 2 == 0 else "hard"
        templates = EASY if kind == "easy" else HARD
        prompts.append(templates[(i // 2) % 4].format(a=int(rng.integers(2, 90)), b=int(rng.integers(2, 90))))
        kinds.append(kind)
    preds = router.predict_batch(prompts)
    lines = []
    for prompt, kind, row in zip(prompts, kinds, preds, strict=True):
        costs = {k: prices[k.split("#")[0]].cost(20, 200) for k in fleet.candidate_keys}
        d = policy.decide(dict(zip(router.candidate_keys, row.tolist(), strict=True)), costs, router=router.name)
        correct = bool(rng.random() < TRUTH[kind][d.model])
        line = TrafficLogLine(prompt=prompt, decision=d.as_dict(), samples=["answer"], reward_scores=[0.0],
                              prompt_tokens=20, output_tokens=[200], cost_usd=costs[d.candidate.key],
                              explored=d.explored, propensity=d.propensity, feedback={"correct": correct},
                              task="arithmetic" if kind == "easy" else "proof")
        writer.write(line)
        lines.append(line)
    return lines


@pytest.fixture(scope="module")
def day_one(tmp_path_factory):
    """400 requests of a three-model fleet served by the bundled default with 30% exploration."""
    d = tmp_path_factory.mktemp("day_one")
    fleet_path = write_fleet(d / "fleet.yaml", ["cheap", "mid", "strong"])
    fleet = Fleet.from_yaml(fleet_path)
    log = d / "traffic.jsonl"
    serve(log, fleet, load_router("default", fleet=fleet), EpsilonExploration(ThresholdPolicy(0.5), 0.3, seed=0),
          400, seed=0)
    return d, fleet_path, log


def test_retrain_from_the_default_learns_a_head_for_every_candidate(day_one):
    d, fleet_path, log = day_one
    res = retrain([log], "default", d / "out", fleet=fleet_path, progress=False)
    s = res.summary
    assert s["method"] == "heads" and s["usable"] == 400 and s["tagged_requests"] == 400
    heads = {h["candidate"]: h for h in s["heads"]["heads"]}
    assert set(heads) == {"cheap#1", "mid#1", "strong#1"}
    assert heads["strong#1"]["role"] == "strong" and heads["mid#1"]["role"] == "weak"
    assert all(h["served"] > 0 and h["effective_sample_size"] > 0 for h in heads.values())
    assert s["heads"]["tasks"] == ["arithmetic", "proof"] and s["heads"]["base_columns"] == ["weak#1"]
    # the default sends everything to the cheap model (~0.5 on this mix); the heads learn better
    q = s["comparison"]["quality"]["dr"]
    assert q["old"]["value"] < 0.6 and q["new"]["value"] > q["old"]["value"] + 0.15
    assert res.promoted
    router = Router.from_pretrained(res.router_dir)
    assert isinstance(router, FleetHeadsRouter) and router.candidate_keys == ["cheap#1", "mid#1", "strong#1"]
    p = router.predict_batch([HARD[0].format(a=3, b=4), EASY[0].format(a=3, b=4)])
    assert p[0, 0] < 0.5 < p[1, 0] and p[0, 2] > 0.6  # cheap fails hard prompts; strong does not
    report = res.report_path.read_text()
    assert "Fleet heads" in report and all(f"`{k}`" in report for k in heads) and "ESS" in report


def test_base_none_with_the_fleet_read_from_the_log(day_one):
    d, _, log = day_one
    res = retrain([log], "none", d / "out_none", progress=False)
    s = res.summary
    assert s["candidate_keys"] == ["cheap#1", "mid#1", "strong#1"]  # cheapest first, from the log
    assert s["reference_model"] == "strong" and s["base_type"] == "logged-decisions"
    assert {h["role"] for h in s["heads"]["heads"]} == {"any"}
    assert res.promoted and res.router_dir is not None
    assert isinstance(Router.from_pretrained(res.router_dir), FleetHeadsRouter)


def test_a_model_added_to_the_fleet_later_is_learned_the_same_way(day_one, tmp_path):
    d, fleet_path, log = day_one
    first = retrain([log], "default", tmp_path / "r1", fleet=fleet_path, progress=False)
    grown_path = write_fleet(tmp_path / "fleet4.yaml", ["cheap", "newbie", "mid", "strong"])
    grown = Fleet.from_yaml(grown_path)
    # the plugin loads the retrained router for the grown fleet: the new model is predicted by its
    # role's pooled head until it has a head of its own, so it can be served and explored at once
    serving = load_router(first.router_dir, fleet=grown)
    assert serving.candidate_keys == grown.candidate_keys and serving.roles["newbie#1"] == "weak"
    log2 = tmp_path / "traffic2.jsonl"
    serve(log2, grown, serving, EpsilonExploration(ThresholdPolicy(0.5), 0.3, seed=1), 400, seed=1)
    res = retrain([log, log2], first.router_dir, tmp_path / "r2", fleet=grown_path, progress=False)
    s = res.summary
    assert s["expected_costs_filled"] == 400  # the first log never priced the new model
    heads = {h["candidate"]: h for h in s["heads"]["heads"]}
    assert heads["newbie#1"]["prior"] == "role 'weak' pooled head" and heads["newbie#1"]["served"] > 20
    assert heads["cheap#1"]["prior"].startswith("previous head")
    router = Router.from_pretrained(res.candidate_dir)
    assert router.candidate_keys == ["cheap#1", "newbie#1", "mid#1", "strong#1"]
    p = router.predict(HARD[1].format(a=2, b=5))
    assert p["newbie#1"] > p["cheap#1"] + 0.2


def test_cost_aware_exploration_propensities():
    policy = CostAwareExploration(ThresholdPolicy(0.5), 0.2, seed=0)
    keys = ["a#1", "b#1", "c#1"]
    costs = {"a#1": 0.001, "b#1": 0.002, "c#1": 0.02}
    preds = {"a#1": 0.9, "b#1": 0.9, "c#1": 0.95}  # greedy: the cheapest, a#1
    explore = policy.exploration_distribution(np.array([[costs[k] for k in keys]]))[0]
    assert explore.sum() == pytest.approx(1.0) and explore[0] > explore[1] > explore[2]
    assert explore.min() >= policy.floor / 3  # bounded away from zero
    counts = {k: 0 for k in keys}
    for _ in range(4000):
        d = policy.decide(preds, costs)
        assert d.propensities is not None and sum(d.propensities.values()) == pytest.approx(1.0)
        assert d.propensity == pytest.approx(d.propensities[d.candidate.key]) and d.propensity > 0
        assert d.as_dict()["propensities"] == d.propensities  # logged with the decision
        counts[d.candidate.key] += 1
    expected = 0.2 * explore + np.array([0.8, 0, 0])
    assert np.allclose([counts[k] / 4000 for k in keys], expected, atol=0.02)
    assert policy.describe() == "cost-aware(0.2, threshold(0.5))"
    # uniform exploration spends more on the dear candidate at the same epsilon
    uniform = 0.2 / 3 * costs["c#1"]
    assert 0.2 * explore[2] * costs["c#1"] < uniform
    rows = policy.action_probabilities(np.array([[0.9, 0.9, 0.95]]), np.array([[0.001, 0.002, 0.02]]))
    assert rows[0] == pytest.approx(expected)


def test_cost_aware_exploration_is_selected_from_the_plugin_settings(tmp_path):
    from adaptive_router.integrations.litellm_plugin.runtime import AdaptiveRuntime
    from adaptive_router.integrations.plugin_settings import PluginSettings

    fleet_path = write_fleet(tmp_path / "fleet.yaml", ["cheap", "mid", "strong"])
    raw = {"fleet": str(fleet_path), "router": "cheapest", "explore_epsilon": 0.2,
           "explore_strategy": "cost-aware", "selector": "first", "micro_batching": False}
    runtime = AdaptiveRuntime(PluginSettings.load(raw, env={}))
    policy = runtime.policy_for({})
    assert isinstance(policy, CostAwareExploration) and policy.epsilon == 0.2
    decision = runtime.decide([{"role": "user", "content": "hello"}], {})
    assert set(decision.propensities or {}) == set(runtime.fleet.candidate_keys)
    uniform = AdaptiveRuntime(PluginSettings.load({**raw, "explore_strategy": "uniform"}, env={}))
    assert type(uniform.policy_for({})) is EpsilonExploration


def test_retrain_cli_base_default(day_one):
    """`adaptive-router retrain --base default --fleet FILE` promotes a router whose output names
    every candidate with its learned head."""
    import json

    from typer.testing import CliRunner

    from adaptive_router.cli import app

    d, fleet_path, log = day_one
    result = CliRunner().invoke(app, ["retrain", "--logs", str(log), "--base", "default", "--fleet",
                                      str(fleet_path), "--out", str(d / "cli")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output[result.output.index("{"):])
    assert out["method"] == "heads" and out["promoted"] is True
    assert set(out["heads"]) == {"cheap#1", "mid#1", "strong#1"}


def test_fleet_from_the_log_fills_costs_and_reads_task_tags():
    """Without a fleet file: the candidates are the ones the log priced, a candidate that older
    lines never priced gets its median logged cost, and task tags come from metadata or feedback."""
    from adaptive_router.training.retrain.fleet import (
        fill_expected_costs,
        fleet_keys_from_logs,
        reference_from_logs,
        task_tag,
    )

    from adaptive_router.errors import DataError

    old = TrafficLogLine(prompt="a", decision={"candidate": "cheap#1", "predictions": {"cheap#1": 0.7, "strong#1": 1.0},
                                               "expected_costs_usd": {"cheap#1": 1e-5, "strong#1": 1e-4}},
                         metadata={"task": "math"})
    new = [TrafficLogLine(prompt=f"b{i}", decision={"candidate": "newbie#1",
                                                    "predictions": {"cheap#1": 0.7, "newbie#1": 0.7, "strong#1": 1.0},
                                                    "expected_costs_usd": {"cheap#1": 1e-5, "newbie#1": c,
                                                                           "strong#1": 1e-4}},
                          feedback={"category": "code"}) for i, c in enumerate((2e-5, 4e-5, 3e-5))]
    lines = [old, *new]
    keys = fleet_keys_from_logs(lines)
    assert keys == ["cheap#1", "newbie#1", "strong#1"]
    assert reference_from_logs(lines, keys) == "strong"
    assert fill_expected_costs(lines, keys, None) == 1
    assert old.decision["expected_costs_usd"]["newbie#1"] == pytest.approx(3e-5)
    assert task_tag(old) == "math" and task_tag(new[0]) == "code"
    orphan = TrafficLogLine(prompt="c", decision={"candidate": "ghost#1"})
    with pytest.raises(DataError, match="pass --fleet"):
        fill_expected_costs([orphan], ["ghost#1", "phantom#1"], None)
