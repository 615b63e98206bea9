"""Your own data from the CLI (issue 17, item 2): a fleet file wins over the prices, tables and
Records carry each answer's real cost, and a task column stratifies the splits."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from adaptive_router.training.evaluate import cost_matrix, run_evaluation
from adaptive_router.training.loaders import load_dataset
from adaptive_router.training.loaders.generic import parse_column_mapping
from adaptive_router.training.recorded_cost import MIXED, PRICED, RECORDED, cost_basis
from typer.testing import CliRunner

from adaptive_router.cli import app
from adaptive_router.domain import Fleet
from adaptive_router.errors import DataError, PriceNotFoundError
from adaptive_router.records import ModelSamples, Record, read_records, write_records

TASKS = ("math", "code", "chat")
COLUMNS = ("prompt=question,acme-large=large_ok,acme-small=small_ok,acme-small.response=small_answer,"
           "acme-large.cost_usd=large_cost,acme-small.cost_usd=small_cost,task=category,quality=correct")
FLEET_YAML = """\
reference: acme-large
models:
  - name: acme-small
    price: {input_per_million: 0.10, output_per_million: 0.40}
    n: [1, 3]
  - name: acme-large
    price: {input_per_million: 3.0, output_per_million: 15.0}
"""


def write_table(path: Path, rows: int = 90, seed: int = 0, costs: bool = True) -> Path:
    """A table of two models that LiteLLM's price map does not know, with real costs per answer."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "category", "large_ok", "small_ok", "small_answer"]
                   + (["large_cost", "small_cost"] if costs else []))
        for i in range(rows):
            task = TASKS[i % 3]
            hard = task == "math"
            w.writerow([f"{task} question number {i}: please answer it", task,
                        int(rng.random() < 0.9), int(rng.random() < (0.3 if hard else 0.8)),
                        f"answer {i}"]
                       + ([f"{0.004 + 0.001 * rng.random():.6f}", f"{0.0002 + 0.0001 * rng.random():.6f}"]
                          if costs else []))
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_eval_with_a_fleet_and_real_costs_from_the_cli(tmp_path: Path, runner: CliRunner) -> None:
    """`adaptive-router eval --data my.csv --fleet my_fleet.yaml --columns ...` on models that are
    not in LiteLLM's map: the recorded cost of each answer wins, and the results say so."""
    table = write_table(tmp_path / "my.csv")
    fleet = tmp_path / "my_fleet.yaml"
    fleet.write_text(FLEET_YAML)
    out = tmp_path / "eval"
    result = runner.invoke(app, ["eval", "--data", str(table), "--fleet", str(fleet), "--columns", COLUMNS,
                                 "--routers", "random,cheapest,strongest,oracle", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cost: recorded cost_usd: acme-small, acme-large" in result.output
    res = json.loads((out / "results.json").read_text())
    assert res["cost_basis"] == {"acme-small": RECORDED, "acme-large": RECORDED}
    assert res["reference"] == "acme-large"
    assert res["candidates"] == ["acme-small#1", "acme-small#3", "acme-large#1"]  # the fleet's n
    rows = list(csv.DictReader(table.open()))
    large = np.mean([float(r["large_cost"]) for r in rows])
    assert res["single_models"]["acme-large"]["cost_usd"] == pytest.approx(large)  # not price x tokens
    assert any("fleet" in note and "my_fleet.yaml" in note for note in res["notes"])
    assert res["routers"]["oracle"]["quality"] >= res["single_models"]["acme-large"]["quality"]
    assert (out / "quality_cost.png").stat().st_size > 0


def test_unpriced_models_say_pass_a_fleet(tmp_path: Path, runner: CliRunner) -> None:
    table = write_table(tmp_path / "my.csv", costs=False)
    columns = "prompt=question,acme-large=large_ok,acme-small=small_ok,task=category,quality=correct"
    with pytest.raises(PriceNotFoundError) as err:
        run_evaluation(str(table), ["random"], load_kwargs=parse_column_mapping(columns), progress=False)
    message = str(err.value)
    assert "--fleet" in message and "name: acme-small" in message and "input_per_million" in message
    assert "acme-large.cost_usd=COLUMN" in message
    result = runner.invoke(app, ["eval", "--data", str(table), "--columns", columns, "--routers", "random",
                                 "--out", str(tmp_path / "e")])
    assert result.exit_code != 0 and "--fleet" in str(result.exception)
    fleet = tmp_path / "f.yaml"
    fleet.write_text(FLEET_YAML)
    res = run_evaluation(str(table), ["random"], load_kwargs=parse_column_mapping(columns), progress=False,
                         fleet=Fleet.from_yaml(fleet), n=[1])
    assert res["cost_basis"]["acme-small"] == PRICED and res["candidates"] == ["acme-small#1", "acme-large#1"]
    assert any("price x tokens (prices from the fleet" in note for note in res["notes"])


def test_fleet_wins_over_litellm_prices_and_restricts_models(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,gpt-4o,gpt-4o-mini,other\n" + "".join(f"q{i},1,{i % 2},0\n" for i in range(10)))
    fleet = Fleet.from_dict({"models": [{"name": "gpt-4o-mini", "price": {"input_per_million": 0,
                                                                          "output_per_million": 0}},
                                        {"name": "gpt-4o", "price": {"input_per_million": 1000,
                                                                     "output_per_million": 1000}}],
                             "reference": "gpt-4o"}, source="f.yaml")
    ds = load_dataset(path, fleet=fleet)
    assert ds.models == ["gpt-4o-mini", "gpt-4o"] and any("left out: ['other']" in n for n in ds.notes)
    cost = cost_matrix(ds.records, ["gpt-4o-mini#1", "gpt-4o#1"], ds.fleet)
    assert cost[:, 0].max() == 0 and cost[0, 1] > 0.1  # the fleet's prices, not LiteLLM's
    with pytest.raises(DataError, match="does not hold"):
        load_dataset(path, fleet=Fleet.from_names(["acme"]))


def test_records_carry_costs_and_old_records_still_load(tmp_path: Path) -> None:
    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"id": "1", "prompt": "p", "models": {"m": {
        "scores": {"correct": [1, 0]}, "token_num_prompt": 10, "token_num_responses": [5, 7]}}}) + "\n")
    assert read_records(old)[0].models["m"].cost_usd is None
    flat = tmp_path / "flat.jsonl"  # BEST-Route's flat layout
    flat.write_text(json.dumps({"id": 2, "prompt": "p", "m": {"responses": ["a", "b"], "correct_scores": [1, 0],
                                                              "token_num_prompt": 3, "token_num_responses": [1, 1],
                                                              "cost_usd": [0.5, 0.25]}}) + "\n")
    assert read_records(flat)[0].models["m"].cost_usd == [0.5, 0.25]
    with pytest.raises(ValueError, match="cost_usd has 1 values for 2 samples"):
        ModelSamples(token_num_responses=[1, 2], cost_usd=[0.1])
    rec = Record(id="x", prompt="p", models={
        "m": ModelSamples(scores={"correct": [1.0, 0.0]}, token_num_prompt=100, token_num_responses=[10, 30],
                          cost_usd=[0.002, 0.004])})
    write_records([rec], tmp_path / "r.jsonl")
    back = read_records(tmp_path / "r.jsonl")[0]
    assert back.models["m"].cost_usd == [0.002, 0.004]
    priced = Fleet.from_dict({"models": [{"name": "m", "price": {"input_per_token": 1e-5, "output_per_token": 0}}]})
    cost = cost_matrix([back], ["m#1", "m#3"], priced)
    # n=1: the mean recorded cost; n=3: three answers, the prompt (100 x 1e-5) paid once
    assert cost[0, 0] == pytest.approx(0.003) and cost[0, 1] == pytest.approx(3 * 0.003 - 2 * 0.001)
    unpriced = Fleet.from_dict({"models": [{"name": "m"}], "reference": "m"})
    assert cost_matrix([back], ["m#3"], unpriced)[0, 0] == pytest.approx(0.009)  # no price: upper bound
    partial = [back, rec.model_copy(update={"models": {"m": rec.models["m"].model_copy(update={"cost_usd": None})}})]
    assert cost_basis(partial, ["m"]) == {"m": MIXED}


def test_task_column_stratifies_the_splits(tmp_path: Path) -> None:
    table = write_table(tmp_path / "my.csv", rows=60)
    fleet = tmp_path / "f.yaml"
    fleet.write_text(FLEET_YAML)
    ds = load_dataset(table, fleet=Fleet.from_yaml(fleet), **parse_column_mapping(COLUMNS))
    assert ds.stratify_by_task and {r.task for r in ds.records} == set(TASKS)
    train, val, test = ds.splits(seed=1, decontaminate=False)
    for part, share in ((test, 0.2), (val, 0.1)):
        counts = {t: sum(r.task == t for r in part) for t in TASKS}
        assert set(counts.values()) == {round(share * 20)}, counts  # every task cut alike
    ids = [r.id for r in train + val + test]
    assert len(ids) == len(set(ids)) == 60
    assert ds.splits(seed=1, decontaminate=False) == (train, val, test)


def test_data_export_keeps_costs_and_the_fleets_models(tmp_path: Path, runner: CliRunner) -> None:
    table = write_table(tmp_path / "my.csv", rows=12)
    fleet = tmp_path / "f.yaml"
    fleet.write_text("models:\n  - name: acme-small\n    price: {input_per_million: 1, output_per_million: 1}\n")
    out = tmp_path / "r.jsonl"
    result = runner.invoke(app, ["data", "export", "--data", str(table), "--columns", COLUMNS,
                                 "--fleet", str(fleet), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["models"] == ["acme-small"] and summary["cost_basis"] == {"acme-small": RECORDED}
    records = read_records(out)
    assert records[0].task == "math" and records[0].models["acme-small"].cost_usd
    # the exported records evaluate with their recorded costs and no price at all
    res = run_evaluation(str(out), ["cheapest"], progress=False)
    assert res["cost_basis"]["acme-small"] == RECORDED


def test_the_shipped_example_runs_as_the_readme_says(repo_root: Path, tmp_path: Path, runner: CliRunner) -> None:
    example = repo_root / "examples" / "own_data"
    columns = ("prompt=question,task=category,acme-large=big_ok,acme-small=small_ok,"
               "acme-large.cost_usd=big_cost,acme-small.cost_usd=small_cost,quality=correct")
    result = runner.invoke(app, ["eval", "--data", str(example / "my.csv"), "--fleet", str(example / "my_fleet.yaml"),
                                 "--columns", columns, "--routers", "random,oracle", "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    assert "cost: recorded cost_usd: acme-small, acme-large" in result.output
    assert "ESTIMATED" not in result.output  # recorded costs need no token estimate
    assert columns in (repo_root / "README.md").read_text()


def test_the_cli_names_the_fleet_flag_for_any_price_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:
    from adaptive_router.cli import main

    fleet = tmp_path / "f.yaml"
    fleet.write_text("models:\n  - name: acme-small\n  - name: acme-large\n")
    monkeypatch.setattr("sys.argv", ["adaptive-router", "route", "What is 17 times 23?", "--fleet", str(fleet),
                                     "--router", "cheapest", "--no-count-tokens"])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "No price for model 'acme-small'" in err
    assert f"Add the price to the model in your --fleet file {fleet}" in err and "Traceback" not in err
    table = write_table(tmp_path / "my.csv", rows=10, costs=False)
    monkeypatch.setattr("sys.argv", ["adaptive-router", "data", "export", "--data", str(table), "--columns",
                                     "prompt=question,acme-large=large_ok,acme-small=small_ok,task=category",
                                     "--out", str(tmp_path / "r.jsonl")])
    with pytest.raises(SystemExit) as done:
        main()  # exporting needs no price
    assert done.value.code == 0
    monkeypatch.setattr("sys.argv", ["adaptive-router", "eval", "--data", str(tmp_path / "r.jsonl"),
                                     "--routers", "random", "--out", str(tmp_path / "e")])
    with pytest.raises(SystemExit):
        main()
    err = capsys.readouterr().err
    assert "Pass --fleet FILE with their prices" in err and "- name: acme-small" in err


def test_a_fleet_model_without_a_price_keeps_the_datas() -> None:
    """champ prices PaLM 2 as another model (no PaLM entry in LiteLLM's map); a fleet that only
    chooses the models and n keeps that."""
    fleet = Fleet.from_dict({"models": [{"name": "palm-2-medium", "n": [1, 3]}, {"name": "gpt-4-turbo"}],
                             "reference": "gpt-4-turbo"})
    ds = load_dataset("champ", fleet=fleet)
    assert ds.models == ["palm-2-medium", "gpt-4-turbo"]
    assert ds.fleet.model("palm-2-medium").price_model == "gemini-2.5-flash-lite"
    assert ds.fleet.candidate_keys == ["palm-2-medium#1", "palm-2-medium#3", "gpt-4-turbo#1"]
    assert cost_matrix(ds.records[:3], ds.fleet.candidate_keys, ds.fleet).shape == (3, 3)
