"""The demo (`make demo`): its generated proxy config and feedback grading (fast), and a
reduced-size run of the whole pipeline through a real LiteLLM proxy (slow)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

from adaptive_router.domain import Fleet
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

ROOT = Path(__file__).resolve().parents[1]


def load_demo():
    sys.path.insert(0, str(ROOT / "examples"))
    spec = importlib.util.spec_from_file_location("demo", ROOT / "examples" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_proxy_config_is_one_the_plugin_accepts(tmp_path):
    from adaptive_router.integrations.plugin_settings import PluginSettings

    demo = load_demo()
    fleet = Fleet.from_dict({"reference": "big", "selector": "reward", "models": [
        {"name": "big", "litellm_model": "big-replay", "price": {"input_per_million": 10, "output_per_million": 30}},
        {"name": "small", "litellm_model": "small-replay", "n": [1, 3],
         "price": {"input_per_million": 0.1, "output_per_million": 0.4}}]})
    path = demo.write_proxy_config(tmp_path, fleet, tmp_path / "records.jsonl", tmp_path / "router",
                                   tmp_path / "rm", tmp_path / "traffic.jsonl", epsilon=0.2)
    config = yaml.safe_load(path.read_text())
    groups = {m["model_name"]: m for m in config["model_list"]}
    assert {"adaptive-router", "big-replay", "small-replay", "smollm2"} <= set(groups)
    assert groups["small-replay"]["litellm_params"]["model"] == "replay/small"
    assert groups["big-replay"]["model_info"]["output_cost_per_token"] == pytest.approx(30e-6)
    assert config["litellm_settings"]["callbacks"] == [
        "adaptive_router.integrations.litellm_plugin.proxy_hook.proxy_handler"]
    settings = PluginSettings.load(config["litellm_settings"]["adaptive_router"], env={},
                                   config_dir=tmp_path)
    assert settings.explore_epsilon == 0.2 and settings.selector == "reward"
    assert Fleet.from_yaml(settings.fleet).candidate_keys == fleet.candidate_keys


def test_feedback_grades_the_served_answer_against_the_reference(tmp_path):
    demo = load_demo()
    log = tmp_path / "traffic.jsonl"
    w = TrafficLogWriter(log)
    w.write(TrafficLogLine(request_id="a", prompt="What is 6 x 7?", decision={"model": "m", "n": 2},
                           samples=["The answer is 41.", "The answer is 42."], chosen_index=1))
    w.write(TrafficLogLine(request_id="b", prompt="What is 6 x 7?", decision={"model": "m", "n": 1},
                           samples=["The answer is 41."]))
    w.write(TrafficLogLine(request_id="c", prompt="unknown", decision={"model": "m", "n": 1},
                           samples=["x"]))
    path, acc = demo.grade_feedback(log, {"What is 6 x 7?": "42"}, tmp_path / "fb.jsonl")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert rows == [{"request_id": "a", "correct": True}, {"request_id": "b", "correct": False}]
    assert acc == 0.5


@pytest.mark.slow
def test_reduced_demo_end_to_end(tmp_path, shared_data, capsys):
    """The demo's whole pipeline on 60 CHAMP problems: trains, evaluates, serves through a real
    LiteLLM proxy, retrains; every stage leaves its output."""
    demo = load_demo()
    assert demo.main(["--out", str(tmp_path), "--max-prompts", "60", "--rounds", "4", "--quick"]) == 0
    out = capsys.readouterr().out
    for expected in ("Proxy reward model", "best-route (model, n)", "LiteLLM proxy up at",
                     "served,", "verdict:", "Outputs in"):
        assert expected in out
    for rel in ("results.json", "quality_cost.png", "router/config.json", "config.yaml",
                "traffic.jsonl", "retrain/report.md", "retrain/quality_cost.png"):
        assert (tmp_path / rel).exists(), rel
    lines = (tmp_path / "traffic.jsonl").read_text().splitlines()
    assert len(lines) >= 0.9 * 4 * 18  # 4 rounds of the ~18 validation + test prompts
    line = json.loads(lines[0])
    assert line["decision"]["expected_costs_usd"] and 0 < line["propensity"] <= 1
