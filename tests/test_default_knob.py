"""The default knob: chosen per fleet on validation by `train`, saved in the checkpoint, used by
eval (and by the integrations when a request sends none); `eval --knob best` compares both
families."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from adaptive_router.training.default_knob import choose_default_knob
from adaptive_router.training.evaluate import evaluate_router
from adaptive_router.training.train import train_router
from typer.testing import CliRunner

from adaptive_router.cli import app
from adaptive_router.domain import Fleet
from adaptive_router.errors import CheckpointError
from adaptive_router.records import ModelSamples, Record
from adaptive_router.routers.base import Router

FLEET = Fleet.from_dict({"models": [
    {"name": "a", "price": {"input_per_million": 0.1, "output_per_million": 0.2}},
    {"name": "b", "price": {"input_per_million": 1, "output_per_million": 2}},
    {"name": "c", "price": {"input_per_million": 10, "output_per_million": 30}}]})


def _records(n: int, seed: int) -> list[Record]:
    rng = np.random.default_rng(seed)
    topics = ["algebra equation solve", "poem verse rhyme", "history war year"]
    out = []
    for i in range(n):
        t = i % 3
        skill = {"a": [0.9, 0.1, 0.2][t], "b": [0.5, 0.8, 0.4][t], "c": [0.8, 0.8, 0.9][t]}
        out.append(Record(id=f"{seed}-{i}", prompt=f"{topics[t]} question {i}", models={
            m: ModelSamples(scores={"correct": [float(rng.random() < p)]}, token_num_prompt=50,
                            token_num_responses=[100]) for m, p in skill.items()}))
    return out


def test_default_knob_is_chosen_on_validation_and_saved(tmp_path: Path) -> None:
    train, val = _records(300, 0), _records(120, 1)
    router = train_router("linear-probe", train, val, FLEET.candidate_keys, "correct", progress=False)
    choice = choose_default_knob(router, val, FLEET, "correct")
    (family, value), = choice["knob"].items()
    assert family in ("threshold", "tradeoff") and choice["validation_prompts"] == 120
    if choice["per_family"][family] is not None:
        assert choice["quality"] >= choice["target_quality"] - 1e-9
    router.default_knob = choice["knob"]
    router.save_pretrained(tmp_path / "r")
    again = Router.from_pretrained(tmp_path / "r")
    assert again.default_knob == choice["knob"]
    # eval reports the router at its own default in that family
    res = evaluate_router(again, _records(90, 2), FLEET, "correct", knob=family)
    assert res["default_knob"] == pytest.approx(value)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    cfg["default_knob"] = {"threshold": 7}
    (tmp_path / "r" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="default_knob"):
        Router.from_pretrained(tmp_path / "r")


def test_eval_knob_best_compares_both_families(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    path = tmp_path / "t.csv"
    lines = ["question,ok_big,ok_small"]
    for i in range(150):
        easy = i % 2 == 0
        lines.append(f"{'easy sum' if easy else 'hard proof'} number {i},{int(rng.random() < 0.9)},"
                     f"{int(rng.random() < (0.85 if easy else 0.2))}")
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "e"
    res = CliRunner().invoke(app, ["eval", "--data", str(path), "--routers", "linear-probe", "--out", str(out),
                                   "--columns", "prompt=question,gpt-4o=ok_big,gpt-4o-mini=ok_small,"
                                                "quality=correct,reference=gpt-4o"])
    assert res.exit_code == 0, res.output
    entry = json.loads((out / "results.json").read_text())["routers"]["linear-probe"]
    assert set(entry["knob_families"]) == {"threshold", "tradeoff"}
    assert entry["knob"] in ("threshold", "tradeoff")


def test_the_service_serves_with_the_checkpoints_knob_unless_configured(tmp_path: Path) -> None:
    from adaptive_router.integrations.plugin_settings import PluginSettings

    from adaptive_router.service import RoutingService, load_serving_router

    router = train_router("linear-probe", _records(120, 0), _records(30, 1), FLEET.candidate_keys, "correct",
                          progress=False)
    router.default_knob = {"tradeoff": 0.25}
    router.save_pretrained(tmp_path / "r")
    served = load_serving_router(str(tmp_path / "r"), FLEET, micro_batching=True)
    assert RoutingService(FLEET, served).policy_for({}).describe() == "tradeoff(0.25)"
    assert RoutingService(FLEET, served, default_knob={"threshold": 0.7}).policy_for({}).describe() == "threshold(0.7)"
    assert RoutingService(FLEET, served).policy_for({"threshold": 0.2}).describe() == "threshold(0.2)"
    assert PluginSettings.load({"fleet": "f.yaml"}, env={}, config_dir=tmp_path).policy is None
