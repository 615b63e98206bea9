"""Replay evaluation: candidate quality and cost tables, router sweeps, the eval and data export
commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from adaptive_router.training.evaluate import (
    cost_matrix,
    evaluate_router,
    fleet_with_n,
    oracle_for,
    quality_matrix,
    run_evaluation,
)
from typer.testing import CliRunner

from adaptive_router.cli import app
from adaptive_router.domain import Fleet
from adaptive_router.records import ModelSamples, Record, read_records
from adaptive_router.routers.baselines import CheapestRouter, RandomRouter, StrongestRouter

FLEET = Fleet.from_dict({
    "models": [{"name": "small", "price": {"input_per_million": 1, "output_per_million": 2}},
               {"name": "large", "price": {"input_per_million": 10, "output_per_million": 30}}],
    "reference": "large",
})


def _records(n: int = 40, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        small = rng.integers(0, 2, size=4).astype(float).tolist()
        out.append(Record(id=str(i), prompt=f"question {i}", models={
            "small": ModelSamples(scores={"correct": small, "rm": rng.random(4).tolist()},
                                  token_num_prompt=100, token_num_responses=[10, 20, 30, 40]),
            "large": ModelSamples(scores={"correct": [float(rng.random() < 0.8)]},
                                  token_num_prompt=100, token_num_responses=[50]),
        }))
    return out


def test_quality_and_cost_matrices() -> None:
    recs = _records(3)
    keys = ["small#1", "small#2", "large#1"]
    q = quality_matrix(recs, keys, "correct")
    assert q.shape == (3, 3)
    assert q[:, 0] == pytest.approx([np.mean(r.models["small"].scores["correct"]) for r in recs])
    assert q[:, 1] == pytest.approx(q[:, 0])  # random pick of 2 has the single-sample mean
    q_oracle = quality_matrix(recs, keys, "correct", selector_score="correct")
    assert np.all(q_oracle[:, 1] >= q[:, 1] - 1e-12)  # best of 2 by the true score
    c = cost_matrix(recs, keys, FLEET)
    # prompt once + n x mean output (25 tokens) x output price
    assert c[0, 0] == pytest.approx(100 * 1e-6 + 25 * 2e-6)
    assert c[0, 1] == pytest.approx(100 * 1e-6 + 2 * 25 * 2e-6)
    assert c[0, 2] == pytest.approx(100 * 10e-6 + 50 * 30e-6)


def test_evaluate_baselines_on_two_models() -> None:
    recs = _records()
    cheap = evaluate_router(CheapestRouter(FLEET.candidate_keys), recs, FLEET, "correct")
    strong = evaluate_router(StrongestRouter.for_fleet(FLEET), recs, FLEET, "correct")
    oracle = evaluate_router(oracle_for(recs, FLEET.candidate_keys, "correct"), recs, FLEET, "correct")
    rand = evaluate_router(RandomRouter.for_fleet(FLEET, seed=1), recs, FLEET, "correct")
    q_small = np.mean([np.mean(r.models["small"].scores["correct"]) for r in recs])
    q_large = np.mean([r.models["large"].scores["correct"][0] for r in recs])
    assert cheap["quality"] == pytest.approx(q_small) and cheap["share_strong"] == 0
    assert strong["quality"] == pytest.approx(q_large) and strong["share_strong"] == 1
    assert oracle["quality"] >= max(q_small, q_large) and oracle["apgr"] > rand["apgr"]
    assert {p["share_strong"] for p in rand["curve"]} >= {0.0, 1.0}  # the sweep spans all shares
    for res in (cheap, strong, oracle, rand):
        for key in ("apgr", "cpt_50", "cpt_80", "quality", "cost_per_1k_usd", "saving_at_99",
                    "saving_at_100", "curve", "aiq"):
            assert key in res


def test_best_of_n_candidates() -> None:
    recs = _records()
    fleet = fleet_with_n(FLEET, [1, 2, 4])
    assert fleet.candidate_keys == ["small#1", "small#2", "small#4", "large#1"]
    res = evaluate_router(oracle_for(recs, fleet.candidate_keys, "correct", "rm"), recs, fleet,
                          "correct", selector_score="rm")
    assert res["candidates"] == fleet.candidate_keys and res["apgr"] is not None
    q = quality_matrix(recs, fleet.candidate_keys, "correct", selector_score="correct")
    assert np.all(np.diff(q[:, :3], axis=1) >= -1e-12)  # more samples never hurt the oracle pick


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


def test_cli_eval(shared_data: Path, tmp_path: Path, runner: CliRunner) -> None:
    out = tmp_path / "e"
    result = runner.invoke(app, ["eval", "--data", "routellm-mtbench", "--routers", "random,oracle,cheapest",
                                 "--out", str(out), "--data-dir", str(shared_data)])
    assert result.exit_code == 0, result.output
    assert "oracle" in result.output and "APGR" in result.output
    res = json.loads((out / "results.json").read_text())
    assert res["split"] == "all" and res["n_prompts"] == 72
    for name in ("random", "oracle", "cheapest"):
        for key in ("apgr", "cpt_50", "cpt_80", "quality", "cost_per_1k_usd", "saving_at_99",
                    "saving_at_100", "curve"):
            assert key in res["routers"][name]
    assert res["routers"]["oracle"]["cpt_50"] < res["routers"]["random"]["cpt_50"]
    assert (out / "quality_cost.png").stat().st_size > 10_000
    assert (out / "deferral.png").stat().st_size > 10_000


def test_cli_eval_unknown_router(shared_data: Path, tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["eval", "--data", "routellm-mtbench", "--routers", "nonsense",
                                 "--out", str(tmp_path), "--data-dir", str(shared_data)])
    assert result.exit_code != 0
    assert "nonsense" in str(result.exception) or "nonsense" in result.output


def test_cli_data_export(shared_data: Path, tmp_path: Path, runner: CliRunner) -> None:
    out = tmp_path / "mt.jsonl"
    result = runner.invoke(app, ["data", "export", "--data", "routellm-mtbench", "--out", str(out),
                                 "--data-dir", str(shared_data)])
    assert result.exit_code == 0, result.output
    recs = read_records(out)
    assert len(recs) == 72 and set(recs[0].models) == {"mistralai/Mixtral-8x7B-Instruct-v0.1",
                                                       "gpt-4-1106-preview"}
    test_out = tmp_path / "mt_test.jsonl"
    result = runner.invoke(app, ["data", "export", "--data", "routellm-mtbench", "--out", str(test_out),
                                 "--split", "test", "--data-dir", str(shared_data)])
    assert result.exit_code == 0, result.output
    assert 0 < len(read_records(test_out)) < 72


def test_eval_trains_then_reuses_a_router(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("adaptive_router.training.train")
    ckpt = tmp_path / "ckpt"
    first = run_evaluation("routellm-mtbench", ["linear-probe", "random"], out=str(tmp_path / "e1"),
                           data_dir=str(shared_data), checkpoints=str(ckpt), progress=False)
    assert first["split"] == "test"
    assert (ckpt / "linear-probe" / "config.json").exists()
    stamp = (ckpt / "linear-probe" / "model.safetensors").stat().st_mtime
    second = run_evaluation("routellm-mtbench", ["linear-probe"], out=None, data_dir=str(shared_data),
                            checkpoints=str(ckpt), progress=False)
    assert (ckpt / "linear-probe" / "model.safetensors").stat().st_mtime == stamp  # loaded, not retrained
    assert second["routers"]["linear-probe"]["apgr"] == pytest.approx(first["routers"]["linear-probe"]["apgr"])


def test_champ_best_of_n_eval(tmp_path: Path) -> None:
    res = run_evaluation("champ", ["oracle", "random"], out=str(tmp_path), n=(1, 3),
                         selector_score="correct", progress=False)
    assert "gpt-3.5-turbo#3" in res["candidates"] and "gpt-4-turbo#3" not in res["candidates"]
    assert res["routers"]["oracle"]["quality"] > res["single_models"]["gpt-4-turbo"]["quality"]
    assert res["routers"]["oracle"]["apgr"] is None  # four models: no two-model deferral metrics
    assert res["routers"]["oracle"]["aiq"] > res["routers"]["random"]["aiq"]


def test_cli_eval_on_a_users_table(tmp_path: Path, runner: CliRunner) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "mine.csv"
    lines = ["question,ok_big,ok_small"]
    for i in range(60):
        lines.append(f"question number {i},{int(rng.random() < 0.8)},{int(rng.random() < 0.5)}")
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "e"
    result = runner.invoke(app, ["eval", "--data", str(path), "--routers", "random,oracle", "--out", str(out),
                                 "--columns", "prompt=question,gpt-4o=ok_big,gpt-4o-mini=ok_small,"
                                              "quality=correct,reference=gpt-4o"])
    assert result.exit_code == 0, result.output
    res = json.loads((out / "results.json").read_text())
    assert res["quality_score"] == "correct" and res["summary"]["strong"] == "gpt-4o"
    assert res["routers"]["oracle"]["quality"] >= res["single_models"]["gpt-4o"]["quality"]
    bad = runner.invoke(app, ["data", "export", "--data", str(path), "--out", str(tmp_path / "x.jsonl"),
                              "--columns", "prompt"])
    assert bad.exit_code != 0
