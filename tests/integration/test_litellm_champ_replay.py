"""Slow: the CHAMP replay example end to end (prepare, proxy from its config, replay evaluation)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy

ROOT = Path(__file__).resolve().parents[2]
CHAMP = ROOT / "examples" / "litellm" / "champ"

pytestmark = pytest.mark.slow


def test_champ_replay_through_the_proxy(tmp_path: Path) -> None:
    out = tmp_path / "champ"
    subprocess.run([sys.executable, str(CHAMP / "prepare.py"), "--out", str(out)], cwd=ROOT, check=True)
    env = {"ADAPTIVE_ROUTER_ROUTER": str(out / "router"),
           "ADAPTIVE_ROUTER_REPLAY_RECORDS": str(out / "records.jsonl"),
           "ADAPTIVE_ROUTER_TRAFFIC_LOG": str(out / "traffic.jsonl"),
           "LITELLM_LOCAL_MODEL_COST_MAP": "True", "HF_HUB_OFFLINE": "1"}
    with LiteLLMProxy(CHAMP / "config.yaml", env=env, cwd=ROOT) as proxy:
        subprocess.run([sys.executable, str(CHAMP / "replay_eval.py"), "--base-url", proxy.base_url,
                        "--key", proxy.master_key, "--records", str(out / "records.jsonl"),
                        "--thresholds", "0.0,1.0", "--out", str(out / "result.json")],
                       cwd=ROOT, check=True)
    rows = json.loads((out / "result.json").read_text())["rows"]
    cheapest, strongest, baseline = rows
    # threshold 0 serves everything with the cheapest candidate; 1.0 with the best predicted
    assert cheapest["cost_usd"] < strongest["cost_usd"]
    assert baseline["quality"] > cheapest["quality"]
    lines = (out / "traffic.jsonl").read_text().splitlines()
    assert len(lines) == 2 * json.loads((out / "result.json").read_text())["problems"]
