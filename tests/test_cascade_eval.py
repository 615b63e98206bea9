"""Cascades: planning steps from a router's predictions, the core run loop's accounting, and their
replay on recorded answers (every step paid for), through the API and the CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from adaptive_router.training.cascade_eval import build_step_table, evaluate_cascade, served, sweep_cascade
from typer.testing import CliRunner

from adaptive_router.cascade import CascadePolicy, DrawnStep, arun_cascade
from adaptive_router.cli import app
from adaptive_router.domain import CostBreakdown, Fleet, Price
from adaptive_router.errors import DataError, InvalidRequestError
from adaptive_router.records import ModelSamples, Record
from adaptive_router.verifiers import AgreementVerifier

FLEET = Fleet.from_dict({
    "models": [{"name": "small", "price": {"input_per_million": 1, "output_per_million": 2}},
               {"name": "large", "price": {"input_per_million": 10, "output_per_million": 30}}],
    "reference": "large",
})


def test_plan_takes_the_predicted_front_cheapest_first() -> None:
    preds = {"s#1": 0.5, "s#3": 0.7, "m#1": 0.6, "l#1": 0.9}
    costs = {"s#1": 1.0, "s#3": 2.0, "m#1": 5.0, "l#1": 10.0}
    assert [c.key for c in CascadePolicy(max_steps=3).plan(preds, costs)] == ["s#1", "s#3", "l#1"]
    assert [c.key for c in CascadePolicy().plan(preds, costs)] == ["s#1", "l#1"]
    assert [c.key for c in CascadePolicy(skip_below=0.55).plan(preds, costs)] == ["l#1"]
    assert [c.key for c in CascadePolicy(max_steps=3, budget_usd=4).plan(preds, costs)] == ["s#1", "s#3"]
    assert [c.key for c in CascadePolicy(steps=["m#1", "l#1"]).plan(preds, costs)] == ["m#1", "l#1"]
    with pytest.raises(InvalidRequestError):
        CascadePolicy(accept=1.5)


def _drawn(model: str, texts: list[str]) -> DrawnStep:
    price = Price(input_per_token=1e-6, output_per_token=2e-6)
    return DrawnStep(samples=texts, cost=CostBreakdown.compute(model, price, 100, [10] * len(texts)))


def test_run_cascade_pays_for_every_step_taken() -> None:
    answers = {"s": ["#### 4", "#### 5", "#### 6"], "l": ["#### 5"]}
    calls = []

    async def draw(cand, i):
        calls.append(cand.key)
        return _drawn(cand.model, answers[cand.model][: cand.n])

    plan = CascadePolicy(steps=["s#3", "l#1"]).plan({}, {"s#3": 1.0, "l#1": 2.0})
    out = asyncio.run(arun_cascade("q", plan, draw, AgreementVerifier(), accept=0.6))
    assert calls == ["s#3", "l#1"] and out.escalated and out.accepted_step == 1
    assert out.total_cost_usd == pytest.approx(sum(s.drawn.cost.total_usd for s in out.steps))
    assert out.as_dict()["steps"][0]["accepted"] is False
    answers["s"] = ["#### 5", "#### 5", "#### 6"]
    calls.clear()
    out = asyncio.run(arun_cascade("q", plan, draw, AgreementVerifier(), accept=0.5))
    assert calls == ["s#3"] and not out.escalated
    # a budget that cannot pay for step 2 stops after step 1
    answers["s"] = ["#### 1", "#### 2", "#### 3"]
    out = asyncio.run(arun_cascade("q", plan, draw, AgreementVerifier(), accept=0.9, budget_usd=1e-4,
                                   expected_costs={"s#3": 1e-4, "l#1": 1.0}))
    assert len(out.steps) == 1 and "budget" in out.stopped


def _records(n: int = 30) -> list[Record]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        truth = str(i + 2)
        small = [truth if rng.random() < 0.6 else str(i + 3 + j) for j in range(3)]
        out.append(Record(id=str(i), prompt=f"What is {i} + 2?", models={
            "small": ModelSamples(responses=[f"#### {a}" for a in small],
                                  scores={"correct": [float(a == truth) for a in small]},
                                  token_num_prompt=100, token_num_responses=[10, 20, 30]),
            "large": ModelSamples(responses=[f"#### {truth}"], scores={"correct": [1.0]},
                                  token_num_prompt=100, token_num_responses=[50]),
        }))
    return out


def test_replay_accounts_every_step_and_sweeps_the_level() -> None:
    recs = _records()
    table = build_step_table(recs, [["small#3", "large#1"]] * len(recs), FLEET, "correct", permutations=4)
    scores = table.scores(AgreementVerifier())
    step1 = 100 * 1e-6 + 3 * 20 * 2e-6
    step2 = 100 * 10e-6 + 50 * 30e-6
    _, cost, taken = served(scores, table, 0.0)  # accept everything: step 1 only
    assert np.allclose(cost, step1) and (taken == 1).all()
    quality, cost, taken = served(scores, table, 2.0)  # accept nothing: both steps paid
    assert np.allclose(cost, step1 + step2) and (taken == 2).all() and quality.mean() == 1.0
    points = sweep_cascade(scores, table, top_model="large")
    assert points[0]["share_strong"] == 0.0 and points[-1]["share_strong"] == 1.0
    res = evaluate_cascade("c", recs, FLEET, "correct", AgreementVerifier(), [["small#3", "large#1"]] * len(recs))
    assert res["kind"] == "cascade" and res["saving_at_100"] is not None and res["apgr_cost"] is not None


def test_replay_refuses_data_without_answers_or_samples() -> None:
    recs = _records(5)
    with pytest.raises(DataError, match="more samples"):
        build_step_table(recs, [["small#5", "large#1"]] * 5, FLEET, "correct")
    bare = [Record(id="x", prompt="p", models={m: ModelSamples(scores={"correct": [1.0]}, token_num_prompt=1,
                                                                  token_num_responses=[1])
                                                for m in ("small", "large")})]
    with pytest.raises(DataError, match="no response texts"):
        build_step_table(bare, [["small#1", "large#1"]], FLEET, "correct")


def _table(path: Path, n: int = 120) -> None:
    """A user's table with answers: the small model's wrong answers carry false arithmetic."""
    rng = np.random.default_rng(1)
    lines = ["question,small_ok,small_answer,big_ok,big_answer"]
    for _ in range(n):
        a, b = int(rng.integers(2, 50)), int(rng.integers(2, 50))
        ok = rng.random() < 0.6
        small = f"{a} + {b} = {a + b} so #### {a + b}" if ok else f"{a} + {b} = {a + b + 1} so #### {a + b + 1}"
        lines.append(f"What is {a} plus {b}?,{int(ok)},{small},1,{a} + {b} = {a + b} #### {a + b}")
    path.write_text("\n".join(lines) + "\n")


def test_cli_train_verifier_then_eval_cascade(tmp_path: Path) -> None:
    data = tmp_path / "mine.csv"
    _table(data)
    cols = ("prompt=question,gpt-4o-mini=small_ok,gpt-4o-mini.response=small_answer,gpt-4o=big_ok,"
            "gpt-4o.response=big_answer,quality=correct,reference=gpt-4o")
    runner = CliRunner()
    res = runner.invoke(app, ["train-verifier", "--data", str(data), "--columns", cols, "--out",
                              str(tmp_path / "verifier"), "--n", "1"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "verifier" / "training_report.json").read_text())
    assert report["test"]["auc"] > 0.9  # false arithmetic gives the wrong answers away
    assert (tmp_path / "verifier" / "training_report.md").exists()
    res = runner.invoke(app, ["eval", "--data", str(data), "--columns", cols, "--routers", "cheapest",
                              "--cascade", "auto", "--verifier", f"agreement,{tmp_path / 'verifier'}",
                              "--out", str(tmp_path / "e"), "--split", "test"])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "e" / "results.json").read_text())
    name = "cascade[gpt-4o-mini#1>gpt-4o#1|verifier]"
    assert out["routers"][name]["saving_at_100"] > 50
    assert (tmp_path / "e" / "quality_cost.png").exists()


def test_eval_cascade_on_mmlu_says_it_has_no_answers(shared_data: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["eval", "--data", "routellm-mmlu", "--routers", "cheapest", "--cascade",
                                   "auto", "--out", str(tmp_path), "--split", "test"])
    assert res.exit_code != 0 and "no response texts" in str(res.exception or res.output)


def test_gsm8k_cascade_with_trained_verifier_beats_the_prompt_only_router(shared_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["train-verifier", "--data", "routellm-gsm8k", "--out", str(tmp_path / "v"), "--n", "1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["eval", "--data", "routellm-gsm8k", "--routers", "linear-probe", "--cascade", "auto",
                              "--verifier", str(tmp_path / "v"), "--out", str(tmp_path / "e"),
                              "--checkpoints", str(tmp_path / "ck")])
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "e" / "results.json").read_text())
    cascade = next(v for k, v in out["routers"].items() if k.startswith("cascade["))
    assert "saving_at_100" in cascade
    assert cascade["apgr_cost"] > out["routers"]["linear-probe"]["apgr_cost"]
