"""The CLI front door: route prints a JSON decision; bad input exits non-zero with the fix."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "adaptive_router.cli", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_route_cheapest_prints_decision_with_hand_checked_cost(repo_root):
    prompt = "Prove that sqrt(2) is irrational."
    res = run_cli("route", prompt, "--fleet", "examples/fleet.yaml", "--router", "cheapest",
                  cwd=repo_root)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["model"] == "llama-3.1-8b" and out["n"] == 1
    # llama-3.1-8b is priced at $0.18/M in and out in the fleet; 400 expected output tokens.
    from adaptive_router.pricing import counter_for

    tokens = counter_for("together_ai/meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo").count_text(prompt)
    assert out["expected_cost_usd"] == pytest.approx(tokens * 0.18e-6 + 400 * 0.18e-6)


def test_malformed_fleet_exits_nonzero_with_fix(tmp_path, repo_root):
    bad = tmp_path / "fleet.yaml"
    bad.write_text("models:\n  - name: gpt-4o\n    n: [0]\n")
    res = run_cli("route", "hi", "--fleet", str(bad), "--router", "cheapest")
    assert res.returncode == 2
    assert "fleet.yaml" in res.stderr and "models.0.n" in res.stderr and "Traceback" not in res.stderr


def test_unknown_model_without_price_exits_nonzero_with_fix(tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("models:\n  - name: my-private-llm\n")
    res = run_cli("route", "hi", "--fleet", str(fleet), "--router", "cheapest")
    assert res.returncode == 2
    assert "my-private-llm" in res.stderr and "price:" in res.stderr


def test_help_lists_commands():
    res = run_cli("--help")
    assert res.returncode == 0 and "route" in res.stdout


def test_import_is_light():
    code = ("import sys, adaptive_router; "
            "print(sorted(m for m in ('torch','litellm','transformers','langchain_core') "
            "if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.stdout.strip() == "[]"


def test_route_with_default_router_never_reaches_the_hub(repo_root):
    """Without HF_HUB_OFFLINE in the user's environment, counting a Llama model's tokens must not
    try the Hugging Face hub (LiteLLM would retry for ~20 s on an offline machine)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    res = subprocess.run(
        [sys.executable, "-m", "adaptive_router.cli", "route", "Prove that sqrt(2) is irrational.",
         "--fleet", "examples/fleet.yaml"],
        capture_output=True, text=True, cwd=repo_root, env=env, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "huggingface.co" not in res.stderr
    assert json.loads(res.stdout)["router"]
