"""Issue 17, items 3, 4 and 6, through a REAL LiteLLM proxy started from the shipped
examples/litellm/config.yaml (one process for the module).

- 3: an unrecorded prompt is routed and answered by the real local SmolLM2 standing in for the
  routed model (``unrecorded:``), and priced; a recorded prompt is still replayed.
- 4: ``GET /metrics`` (LiteLLM's own ``prometheus`` callback) shows the plugin's counters after
  traffic, and LiteLLM's standard logging payload carries ``metadata.routing_decision``.
- 6: keys declared in the plugin's ``api_keys`` (the database-free ``custom_auth`` the example
  config documents) carry team and key defaults, read from ``user_api_key_dict`` on the proxy's
  real auth path; the request's own knob still wins.

The config the proxy loads is the shipped one plus one extra callback, a capture logger written
beside it that appends every standard logging payload to a file (LiteLLM's spend logs need a
database; its sinks are out of reach offline). The environment points the plugin at the test's
replay records and prior router (deterministic decisions) and sets the two example keys.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path

import httpx
import pytest
import yaml
from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy
from replay_fixtures import PRIORS, REPLAY, cost, write_fixtures

from adaptive_router.traffic import read_traffic_log

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "litellm"
PROMPT = next(iter(REPLAY))
UNRECORDED = "What is 17 times 23?"
RESEARCH_KEY = "sk-research-" + secrets.token_hex(8)
SUPPORT_KEY = "sk-support-" + secrets.token_hex(8)

CAPTURE = '''
import json, os
from litellm.integrations.custom_logger import CustomLogger

class Capture(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        payload = kwargs.get("standard_logging_object") or {}
        with open(os.environ["CAPTURE_PAYLOADS"], "a") as fh:
            fh.write(json.dumps(payload, default=str) + "\\n")

capture_logger = Capture()
'''


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("issue17")
    records, router = write_fixtures(folder)
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    config["litellm_settings"]["callbacks"].append("capture.capture_logger")
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    (folder / "capture.py").write_text(CAPTURE)
    env = {"ADAPTIVE_ROUTER_FLEET": str(EXAMPLE / "fleet.yaml"), "ADAPTIVE_ROUTER_ROUTER": str(router),
           "ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records),
           "ADAPTIVE_ROUTER_TRAFFIC_LOG": str(folder / "traffic.jsonl"),
           "CAPTURE_PAYLOADS": str(folder / "payloads.jsonl"),
           "ADAPTIVE_ROUTER_RESEARCH_KEY": RESEARCH_KEY, "ADAPTIVE_ROUTER_SUPPORT_KEY": SUPPORT_KEY,
           "NO_PROXY": "127.0.0.1,localhost"}
    with LiteLLMProxy(folder / "config.yaml", env=env, cwd=ROOT) as p:
        p.folder = folder  # type: ignore[attr-defined]
        yield p


def chat(proxy: LiteLLMProxy, model: str, prompt: str, key: str | None = None, **extra):
    headers = {"Authorization": f"Bearer {key}"} if key else proxy.headers
    return httpx.post(f"{proxy.base_url}/v1/chat/completions", headers=headers, timeout=120,
                      json={"model": model, "messages": [{"role": "user", "content": prompt}], **extra})


def log_line(proxy: LiteLLMProxy, request_id: str):
    path = proxy.folder / "traffic.jsonl"  # type: ignore[attr-defined]
    for _ in range(50):
        found = [ln for ln in read_traffic_log(path) if ln.request_id == request_id] if path.exists() else []
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no traffic log line for {request_id}")


# -- item 3 ---------------------------------------------------------------------------------------
def test_unrecorded_prompt_is_routed_answered_by_smollm2_and_priced(proxy: LiteLLMProxy) -> None:
    # threshold 0.6 -> gpt-4o-mini x 3 (prior 0.7); 16 new tokens keep three CPU samples quick
    r = chat(proxy, "adaptive-0.6", UNRECORDED, max_tokens=16)
    assert r.status_code == 200, r.text
    body = r.json()
    info = body["adaptive_router"]
    assert (info["model"], info["n"], info["model_group"]) == ("gpt-4o-mini", 3, "gpt-4o-mini-replay")
    assert body["choices"][0]["message"]["content"].strip()  # SmolLM2 wrote something
    assert len(info["output_tokens"]) == 3 and all(0 < t <= 16 for t in info["output_tokens"])
    want = cost("gpt-4o-mini", info["prompt_tokens"], info["output_tokens"])
    assert info["cost_usd"] == pytest.approx(want) and want > 0
    assert float(r.headers["x-litellm-response-cost"]) == pytest.approx(want)
    assert r.headers["x-adaptive-router-model"] == "gpt-4o-mini"
    # the body and the traffic log say a stand-in answered (retraining must not take these
    # samples for gpt-4o-mini's)
    assert any("local/smollm2-135m-instruct standing in for gpt-4o-mini" in n for n in info["notes"])
    assert any("standing in" in n for n in log_line(proxy, info["request_id"]).model_extra["notes"])


def test_recorded_prompt_is_still_replayed(proxy: LiteLLMProxy) -> None:
    r = chat(proxy, "adaptive-0.95", PROMPT)  # nothing predicted >= 0.95: the reference gpt-4o
    assert r.status_code == 200, r.text
    ptok, (strong, stok), _, _ = REPLAY[PROMPT]
    assert r.json()["choices"][0]["message"]["content"] == strong
    assert r.json()["adaptive_router"]["cost_usd"] == pytest.approx(cost("gpt-4o", ptok, [stok]))


# -- item 6 ---------------------------------------------------------------------------------------
def test_team_and_key_defaults_from_the_real_auth_path(proxy: LiteLLMProxy) -> None:
    r = chat(proxy, "adaptive-router", PROMPT, key=RESEARCH_KEY)  # team: tradeoff 0.3, epsilon 0.1
    assert r.status_code == 200, r.text
    line = log_line(proxy, r.json()["adaptive_router"]["request_id"])
    assert line.model_extra["knob"] == {"tradeoff": 0.3, "epsilon": 0.1}
    assert line.decision["policy"] == "epsilon(0.1, tradeoff(0.3))"  # both defaults reached the policy

    r = chat(proxy, "adaptive-router", PROMPT, key=SUPPORT_KEY)  # key: budget_usd 0.00005
    assert r.status_code == 200, r.text
    assert log_line(proxy, r.json()["adaptive_router"]["request_id"]).model_extra["knob"] == {"budget_usd": 5e-05}

    # the request's knob wins over the team's; the team's exploration rate stays
    r = chat(proxy, "adaptive-router", PROMPT, key=RESEARCH_KEY, metadata={"adaptive_router": {"threshold": 0.6}})
    assert r.status_code == 200, r.text
    line = log_line(proxy, r.json()["adaptive_router"]["request_id"])
    assert line.model_extra["knob"] == {"threshold": 0.6, "epsilon": 0.1}

    # an alias's knob wins over the team default too
    r = chat(proxy, "adaptive-0.6", PROMPT, key=RESEARCH_KEY)
    assert log_line(proxy, r.json()["adaptive_router"]["request_id"]).model_extra["knob"] == {
        "threshold": 0.6, "epsilon": 0.1}

    # the master key has no defaults; an undeclared key is refused before anything is routed
    r = chat(proxy, "adaptive-router", PROMPT)
    assert log_line(proxy, r.json()["adaptive_router"]["request_id"]).model_extra["knob"] == {}
    assert chat(proxy, "adaptive-router", PROMPT, key="sk-nobody-" + secrets.token_hex(8)).status_code == 401


# -- item 4 ---------------------------------------------------------------------------------------
def _sample(text: str, name: str, **labels: str) -> float:
    """The summed value of a metric's samples whose labels include ``labels``."""
    total, found = 0.0, False
    for m in re.finditer(rf"^{name}(?:\{{([^}}]*)\}})? (\S+)$", text, re.MULTILINE):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total, found = total + float(m.group(2)), True
    assert found, f"{name}{labels} not in /metrics"
    return total


def test_metrics_after_traffic_and_routing_decision_in_logging_payload(proxy: LiteLLMProxy) -> None:
    for _ in range(3):
        assert chat(proxy, "adaptive-0.6", PROMPT).status_code == 200
    explored = sent = 0
    while explored == 0 and sent < 20:  # exploring every request: a draw soon differs from the greedy pick
        got = chat(proxy, "adaptive-0.95", PROMPT, metadata={"adaptive_router": {"epsilon": 1.0}})
        assert got.status_code == 200
        explored += bool(got.json()["adaptive_router"]["decision"]["explored"])
        sent += 1
    assert explored, "20 requests with epsilon 1.0 never explored"
    # LiteLLM guards /metrics with the proxy's auth (here: the master key through custom_auth)
    assert httpx.get(f"{proxy.base_url}/metrics/", timeout=10).status_code == 401
    got = httpx.get(f"{proxy.base_url}/metrics", headers=proxy.headers, timeout=10, follow_redirects=True)
    assert got.status_code == 200
    text = got.text
    assert _sample(text, "adaptive_router_decisions_total", alias="adaptive-0.6", model="gpt-4o-mini", n="3") >= 3
    assert _sample(text, "adaptive_router_explorations_total") >= 1
    mini = _sample(text, "adaptive_router_cost_usd_total", model="gpt-4o-mini")
    reference = _sample(text, "adaptive_router_reference_cost_usd_total")
    saving = _sample(text, "adaptive_router_saving_usd")
    assert mini > 0 and reference > 0
    spent = _sample(text, "adaptive_router_cost_usd_total")
    assert saving == pytest.approx(reference - spent, rel=1e-6, abs=1e-12)
    assert _sample(text, "adaptive_router_routing_latency_seconds_count") >= 3 + sent
    assert "litellm_" in text  # LiteLLM's own metrics on the same page

    payloads = proxy.folder / "payloads.jsonl"  # type: ignore[attr-defined]
    decisions = []
    for _ in range(50):
        rows = [json.loads(x) for x in payloads.read_text().splitlines()] if payloads.exists() else []
        decisions = [row["metadata"]["routing_decision"] for row in rows
                     if (row.get("metadata") or {}).get("routing_decision")]
        if decisions:
            break
        time.sleep(0.1)
    assert decisions, "no routing_decision in LiteLLM's standard logging payload"
    rd = next(d for d in decisions if d["tier"] == "gpt-4o-mini#3")
    assert rd["router_model_name"] == "adaptive-0.6" and rd["routed_model"] == "gpt-4o-mini-replay"
    assert rd["score"] == pytest.approx(PRIORS["gpt-4o-mini#3"])
    assert set(rd["classifier_probabilities"]) == set(PRIORS)


def test_plugin_mounts_metrics_without_litellms_prometheus_callback(tmp_path: Path) -> None:
    """A config without ``"prometheus"`` in its callbacks still serves the plugin's counters: the
    plugin mounts /metrics itself when the proxy starts (behind the same proxy auth)."""
    records, router = write_fixtures(tmp_path)
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    config["litellm_settings"]["callbacks"] = [c for c in config["litellm_settings"]["callbacks"]
                                               if c != "prometheus"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {"ADAPTIVE_ROUTER_FLEET": str(EXAMPLE / "fleet.yaml"), "ADAPTIVE_ROUTER_ROUTER": str(router),
           "ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records), "NO_PROXY": "127.0.0.1,localhost"}
    with LiteLLMProxy(tmp_path / "config.yaml", env=env, cwd=ROOT) as p:
        assert chat(p, "adaptive-0.6", PROMPT).status_code == 200
        assert httpx.get(f"{p.base_url}/metrics/", timeout=10).status_code == 401
        got = httpx.get(f"{p.base_url}/metrics", headers=p.headers, timeout=10, follow_redirects=True)
        assert got.status_code == 200
        assert _sample(got.text, "adaptive_router_decisions_total", alias="adaptive-0.6", model="gpt-4o-mini",
                       n="3") == 1
