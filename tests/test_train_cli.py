"""`adaptive-router train` / `calibrate` / `route` (default router) through the real CLI app."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from adaptive_router.cli import app
from adaptive_router.records import Record, write_records

runner = CliRunner()


@pytest.fixture(autouse=True)
def _private_embed_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTIVE_ROUTER_EMBED_CACHE", str(tmp_path_factory.getbasetemp() / "cli-emb.sqlite"))


def _records(path: Path, n: int = 150) -> Path:
    """Two real, priced models: gpt-4o-mini answers the arithmetic, fails the proofs."""
    rng = np.random.default_rng(1)
    recs = []
    for i in range(n):
        hard = i % 2 == 1
        prompt = (f"Prove that every bounded sequence in R^{i % 9 + 2} has a convergent subsequence, case {i}."
                  if hard else f"What is {i} plus {i + 3}?")
        small = float(rng.random() < (0.15 if hard else 0.95))
        recs.append(Record(id=str(i), prompt=prompt, models={
            "gpt-4o-mini": {"scores": {"score": [small]}, "token_num_prompt": 20, "token_num_responses": [80]},
            "gpt-4o": {"scores": {"score": [1.0]}, "token_num_prompt": 20, "token_num_responses": [90]}}))
    write_records(recs, path)
    return path


def test_train_then_calibrate(tmp_path):
    data = _records(tmp_path / "records.jsonl")
    out = tmp_path / "router"
    res = runner.invoke(app, ["train", "--router", "linear-probe", "--data", str(data), "--out", str(out),
                              "--param", "max_epochs=60"])
    assert res.exit_code == 0, res.output
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "training_report.json", "training_report.md"} <= files
    report = json.loads((out / "training_report.json").read_text())
    assert report["params"]["max_epochs"] == 60
    assert report["splits"]["seed"] == 0
    metrics = report["test_metrics"]["records"]
    assert metrics["apgr"] > 0.6  # the easy/hard split is learnable
    assert "# Training report: linear-probe" in (out / "training_report.md").read_text()

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join([f"What is {i} plus 1?" for i in range(30)] +
                                 [f"Prove the Bolzano-Weierstrass theorem in dimension {i}." for i in range(10)]))
    res = runner.invoke(app, ["calibrate", "--router", str(out), "--prompts", str(prompts),
                              "--strong-share", "0.25"])
    assert res.exit_code == 0, res.output
    cal = json.loads(res.output)
    assert abs(cal["strong_share_achieved"] - 0.25) <= 0.05
    assert cal["use"].startswith("--threshold ")


def test_train_rejects_bad_param(tmp_path):
    data = _records(tmp_path / "records.jsonl", n=20)
    res = runner.invoke(app, ["train", "--router", "mf", "--data", str(data), "--out", str(tmp_path / "o"),
                              "--param", "oops"])
    assert res.exit_code != 0
    assert "KEY=VALUE" in str(res.exception) + res.output


def test_route_uses_the_bundled_default_router(repo_root):
    fleet = repo_root / "examples" / "fleet.yaml"
    decisions = {}
    for prompt in ("What is 2 + 2?", "Prove that the fundamental group of the circle is Z."):
        res = runner.invoke(app, ["route", prompt, "--fleet", str(fleet), "--no-count-tokens"])
        assert res.exit_code == 0, res.output
        decisions[prompt] = json.loads(res.output[res.output.index("{"):])
    for d in decisions.values():
        assert d["router"].endswith("@fleet-roles")
        assert d["predictions"]["gpt-4o#1"] == 1.0
    easy, hard = decisions.values()
    assert easy["predictions"]["gpt-4o-mini#1"] != hard["predictions"]["gpt-4o-mini#1"]


def test_train_accepts_the_old_snake_case_router_name(tmp_path):
    """``--router sw_ranking`` (the name before kebab-case) trains ``sw-ranking``, with a note."""
    data = _records(tmp_path / "records.jsonl", n=60)
    out = tmp_path / "sw"
    res = runner.invoke(app, ["train", "--router", "sw_ranking", "--data", str(data), "--out", str(out),
                              "--no-evaluate"])
    assert res.exit_code == 0, res.output
    assert "now called 'sw-ranking'" in res.output
    assert json.loads((out / "config.json").read_text())["router_type"] == "sw-ranking"
