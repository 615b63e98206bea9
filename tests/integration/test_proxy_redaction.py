"""The traffic log's redaction policy through a real LiteLLM proxy (issue 16, item 6).

Two proxies: one with ``redaction: {personal_data: true}`` (keys and personal data masked in the
prompt, the messages and the samples), one with ``log_messages: false`` (no prompt, no messages,
no samples: the line keeps the decision, tokens and cost).
"""

from __future__ import annotations

import httpx
import pytest
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    write_proxy_config,
    write_replay_records,
)

from adaptive_router.traffic import read_traffic_log
from tests.integration.test_proxy_bad_inputs import deployments, fleet_yaml
from tests.test_redaction import GITHUB, JWT, SLACK

PROMPT = (f"My email is jane.doe@example.com, card 4111 1111 1111 1111, phone +1 415-555-0132, "
          f"password=hunter2, GitHub token {GITHUB}, Slack {SLACK}, session {JWT}. Which are secret?")
ANSWER = "Reply to jane.doe@example.com: the token and the password are secrets."
GONE_ALWAYS = [GITHUB, SLACK, JWT, "hunter2"]
PERSONAL = ["jane.doe@example.com", "4111 1111 1111 1111", "415-555-0132"]


def serve(tmp_path, plugin_extra: dict) -> tuple[dict, str]:
    """One routed request through a proxy with ``plugin_extra`` settings: (body, log text)."""
    records = write_replay_records(tmp_path / "records.jsonl", [PROMPT], ["weak", "strong"], answers=[ANSWER])
    log = tmp_path / "traffic.jsonl"
    config = write_proxy_config(tmp_path / "config.yaml", deployments(), plugin={
        "fleet": str(fleet_yaml(tmp_path / "fleet.yaml")), "router": "cheapest",
        "traffic_log": str(log), **plugin_extra})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                      log_path=tmp_path / "proxy.log") as proxy:
        resp = httpx.post(f"{proxy.base_url}/v1/chat/completions", headers=proxy.headers, timeout=60,
                          json={"model": "adaptive-router", "messages": [{"role": "user", "content": PROMPT}]})
        assert resp.status_code == 200, resp.text[:500]
    return resp.json(), log.read_text(encoding="utf-8")


def test_personal_data_switch_masks_the_prompt_messages_and_samples(tmp_path) -> None:
    body, text = serve(tmp_path, {"redaction": {"personal_data": True}})
    assert body["choices"][0]["message"]["content"] == ANSWER  # the client's answer is untouched
    for gone in GONE_ALWAYS + PERSONAL:
        assert gone not in text, gone
    line = next(iter(read_traffic_log(tmp_path / "traffic.jsonl")))
    assert "[REDACTED:email]" in line.prompt and "[REDACTED:card]" in line.prompt
    assert "[REDACTED:phone]" in line.prompt and "password=[REDACTED]" in line.prompt
    assert line.messages and "[REDACTED:email]" in line.messages[0]["content"]
    assert line.samples == ["Reply to [REDACTED:email]: the token and the password are secrets."]
    assert "Which are secret?" in line.prompt  # the rest of the text stays for retraining


def test_log_messages_false_writes_no_prompt_and_no_samples(tmp_path) -> None:
    body, text = serve(tmp_path, {"log_messages": False})
    assert body["adaptive_router"]["cost_usd"] > 0
    line = next(iter(read_traffic_log(tmp_path / "traffic.jsonl")))
    assert line.prompt == "" and line.messages is None and line.samples == []
    assert line.decision["model"] == "weak" and line.cost_usd > 0 and line.output_tokens
    for gone in GONE_ALWAYS + PERSONAL + ["Which are secret", "Reply to"]:
        assert gone not in text, gone


@pytest.mark.parametrize("keep", ["prompt"])
def test_keep_prompt_only(tmp_path, keep) -> None:
    _, text = serve(tmp_path, {"redaction": {"keep": keep}})
    line = next(iter(read_traffic_log(tmp_path / "traffic.jsonl")))
    assert "Which are secret?" in line.prompt and line.messages is None and line.samples == []
    assert "jane.doe@example.com" in line.prompt  # personal data is kept unless switched on
    for gone in GONE_ALWAYS + ["Reply to"]:
        assert gone not in text, gone
