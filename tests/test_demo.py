"""The demo (`make demo`): the pieces it takes from the package (fast), and a reduced-size run of
the whole script through a real LiteLLM proxy, as a user runs it (slow, a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adaptive_router.domain import Fleet
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

ROOT = Path(__file__).resolve().parents[1]


def test_a_proxy_config_built_as_the_demo_builds_it_is_one_the_plugin_accepts(tmp_path: Path) -> None:
    """The demo writes its config.yaml with the package's helpers: replay deployments, a local
    deployment beside them (both providers mapped), the plugin's callback and public alias."""
    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        HOOK_CALLBACK,
        REPLAY_PROVIDER,
        replay_deployment,
        write_proxy_config,
    )
    from adaptive_router.integrations.plugin_settings import PluginSettings

    fleet = Fleet.from_dict({"reference": "big", "selector": "reward", "models": [
        {"name": "big", "litellm_model": "big-replay", "price": {"input_per_million": 10, "output_per_million": 30}},
        {"name": "small", "litellm_model": "small-replay", "n": [1, 3],
         "price": {"input_per_million": 0.1, "output_per_million": 0.4}}]})
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(fleet.to_dict(), sort_keys=False))
    prices = fleet.prices()
    deployments = [replay_deployment(m.call_name, m.name, prices[m.name].input_per_token,
                                     prices[m.name].output_per_token) for m in fleet.models]
    deployments.append({"model_name": "smollm2", "litellm_params": {"model": "local/smollm2-135m-instruct"}})
    local = {"provider": "local",
             "custom_handler": "adaptive_router.integrations.litellm_plugin.providers.local_provider"}
    path = write_proxy_config(tmp_path / "config.yaml", deployments,
                              plugin={"fleet": "fleet.yaml", "router": "cheapest", "selector": "reward",
                                      "explore_epsilon": 0.2, "traffic_log": str(tmp_path / "t.jsonl")},
                              litellm_settings={"custom_provider_map": [REPLAY_PROVIDER, local]})
    config = yaml.safe_load(path.read_text())
    groups = {m["model_name"]: m for m in config["model_list"]}
    assert {"adaptive-router", "big-replay", "small-replay", "smollm2"} <= set(groups)
    assert groups["small-replay"]["litellm_params"]["model"] == "replay/small"
    assert groups["big-replay"]["model_info"]["output_cost_per_token"] == pytest.approx(30e-6)
    assert config["litellm_settings"]["callbacks"] == [HOOK_CALLBACK]
    assert {p["provider"] for p in config["litellm_settings"]["custom_provider_map"]} == {"replay", "local"}
    settings = PluginSettings.load(config["litellm_settings"]["adaptive_router"], env={},
                                   config_dir=tmp_path)
    assert settings.explore_epsilon == 0.2 and settings.selector == "reward"
    assert Fleet.from_yaml(settings.path(settings.fleet)).candidate_keys == fleet.candidate_keys


def test_feedback_grades_the_served_answer_against_the_reference(tmp_path: Path) -> None:
    from adaptive_router.training.retrain.reference_feedback import grade_against_references

    log = tmp_path / "traffic.jsonl"
    w = TrafficLogWriter(log)
    w.write(TrafficLogLine(request_id="a", prompt="What is 6 x 7?", decision={"model": "m", "n": 2},
                           samples=["The answer is 41.", "The answer is 42."], chosen_index=1))
    w.write(TrafficLogLine(request_id="b", prompt="What is 6 x 7?", decision={"model": "m", "n": 1},
                           samples=["The answer is 41."]))
    w.write(TrafficLogLine(request_id="c", prompt="unknown", decision={"model": "m", "n": 1},
                           samples=["x"]))
    w.write(TrafficLogLine(request_id="d", prompt="What is 6 x 7?", decision={"model": "m", "n": 1},
                           samples=[], error="timeout"))
    path, acc = grade_against_references(log, {"What is 6 x 7?": "42"}, tmp_path / "fb.jsonl")
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert rows == [{"request_id": "a", "correct": True}, {"request_id": "b", "correct": False}]
    assert acc == 0.5


@pytest.mark.slow
def test_reduced_demo_end_to_end(tmp_path: Path, shared_data: Path) -> None:
    """The demo's whole pipeline on 60 CHAMP problems, as `python examples/demo.py` runs it:
    trains, evaluates, serves through a real LiteLLM proxy, retrains. One round would leave
    retraining too few requests, so the demo raises --rounds itself (and says so)."""
    out = tmp_path / "demo"
    env = {**os.environ, "ADAPTIVE_ROUTER_DATA": str(shared_data)}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "demo.py"), "--out", str(out),
                             "--max-prompts", "60", "--rounds", "1", "--quick"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    stdout = result.stdout
    for expected in ("Proxy reward model", "best-route (model, n)", "LiteLLM proxy up at",
                     "note: --rounds 1 -> ", "served,", "verdict:", "Outputs in"):
        assert expected in stdout, expected
    for rel in ("results.json", "quality_cost.png", "router/config.json", "config.yaml",
                "traffic.jsonl", "feedback.jsonl", "retrain/report.md", "retrain/quality_cost.png"):
        assert (out / rel).exists(), rel
    rounds = int(stdout.split("note: --rounds 1 -> ")[1].split(":")[0])
    lines = (out / "traffic.jsonl").read_text().splitlines()
    assert len(lines) >= 0.9 * rounds * 18  # the ~18 validation + test prompts, each round
    line = json.loads(lines[0])
    assert line["decision"]["expected_costs_usd"] and 0 < line["propensity"] <= 1
