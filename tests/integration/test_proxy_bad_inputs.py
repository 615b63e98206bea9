"""The bad-input matrix through a real LiteLLM proxy with the plugin (issue 9).

Every bad input is answered with an HTTP 4xx and a JSON error that says what to send instead;
inputs that are odd but valid (multimodal parts with text, a 200k-token prompt) are served; the
proxy is alive after all of them. API keys sent in headers or in the body never reach the traffic
log or an error body.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    replay_deployment,
    write_proxy_config,
    write_replay_records,
)

OK_PROMPT = "What is 6 times 7?"
MULTIMODAL_TEXT = "What is shown in this picture?"
HUGE_PROMPT = "tokens " * 200_000
FAKE_KEY = "sk-fakeTESTkey0123456789abcdefABCDEF"
FAKE_KEY_2 = "sk-anotherFAKEkey9876543210zyxwvu"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="}}


def fleet_yaml(path: Path) -> Path:
    path.write_text(yaml.safe_dump({
        "reference": "strong", "selector": "first",
        "models": [{"name": "weak", "litellm_model": "weak-replay", "n": [1, 3], "max_n": 4},
                   {"name": "strong", "litellm_model": "strong-replay", "n": [1]}]}), encoding="utf-8")
    return path


def deployments() -> list[dict]:
    return [replay_deployment("weak-replay", "weak", 1.5e-07, 6.0e-07),
            replay_deployment("strong-replay", "strong", 2.5e-06, 1.0e-05)]


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("bad-inputs")
    records = write_replay_records(work / "records.jsonl", [OK_PROMPT, MULTIMODAL_TEXT, HUGE_PROMPT],
                                   ["weak", "strong"])
    config = write_proxy_config(work / "config.yaml", deployments(), plugin={
        "fleet": str(fleet_yaml(work / "fleet.yaml")), "router": "cheapest",
        "traffic_log": str(work / "traffic.jsonl")})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                      log_path=work / "proxy.log") as p:
        p.traffic_log = work / "traffic.jsonl"  # type: ignore[attr-defined]
        yield p


def post(proxy: LiteLLMProxy, body: dict | bytes, headers: dict | None = None) -> httpx.Response:
    hdrs = {**proxy.headers, "Content-Type": "application/json", **(headers or {})}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{proxy.base_url}/v1/chat/completions", content=content, headers=hdrs, timeout=120)


def chat(content, model: str = "adaptive-router", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def error_message(resp: httpx.Response) -> str:
    body = resp.json()  # a JSON error, never an HTML page or a bare string
    assert isinstance(body, dict) and "error" in body, body
    err = body["error"]
    return str(err.get("message") if isinstance(err, dict) else err)


#: (case, request body, a phrase the error must contain)
BAD = [
    ("empty prompt", chat(""), "empty"),
    ("whitespace prompt", chat("   \n\t "), "empty"),
    ("multimodal parts without text", chat([IMAGE]), "empty"),
    ("invalid UTF-8 (unpaired surrogate)", b'{"model": "adaptive-router", "messages": [{"role": "user", '
                                           b'"content": "caf\\ud800"}]}', "surrogate"),
    ("invalid UTF-8 (raw bytes)", b'{"model": "adaptive-router", "messages": [{"role": "user", '
                                  b'"content": "caf\xe9 \xff"}]}', ""),
    ("no user turn", {"model": "adaptive-router", "messages": [{"role": "system", "content": "Be brief."}]},
     "no user turn"),
    ("messages not a list", {"model": "adaptive-router", "messages": "hello"}, ""),
    ("unknown model", chat(OK_PROMPT, model="gpt-9-does-not-exist"), "gpt-9-does-not-exist"),
    ("n chosen by the client", chat(OK_PROMPT, n=5), "leave n out"),
    ("negative budget", chat(OK_PROMPT, metadata={"adaptive_router": {"budget_usd": -0.01}}),
     "cannot be negative"),
    ("threshold above 1", chat(OK_PROMPT, metadata={"adaptive_router": {"threshold": 1.5}}),
     "threshold must be within [0, 1]"),
    ("threshold alias out of range", chat(OK_PROMPT, model="adaptive-1.7"), "threshold must be within [0, 1]"),
    ("unknown knob", chat(OK_PROMPT, metadata={"adaptive_router": {"temperature": 0.2}}), "unknown key"),
    ("two knobs", chat(OK_PROMPT, metadata={"adaptive_router": {"threshold": 0.2, "budget_usd": 1}}),
     "exactly one"),
    ("knob not a number", chat(OK_PROMPT, metadata={"adaptive_router": {"threshold": "high"}}),
     "threshold must be a number"),
]

#: Wrong types (issue 16): each is a 400 naming the field, answered before any provider call.
WRONG_TYPES = [
    ("threshold true", chat(OK_PROMPT, metadata={"adaptive_router": {"threshold": True}}),
     "threshold must be a number"),
    ("threshold as a string", chat(OK_PROMPT, metadata={"adaptive_router": {"threshold": "0.3"}}),
     "threshold must be a number"),
    ("budget false", chat(OK_PROMPT, metadata={"adaptive_router": {"budget_usd": False}}),
     "budget_usd must be a number"),
    ("tradeoff a list", chat(OK_PROMPT, metadata={"adaptive_router": {"tradeoff": [1]}}),
     "tradeoff must be a number"),
    ("epsilon true", chat(OK_PROMPT, metadata={"adaptive_router": {"threshold": 0.5, "epsilon": True}}),
     "epsilon"),
    ("accept true", chat(OK_PROMPT, metadata={"adaptive_router": {"accept": True}}), "accept"),
    ("knob a list", chat(OK_PROMPT, metadata={"adaptive_router": [0.3]}), "metadata.adaptive_router"),
    ("content a number", chat(42), "messages[0].content"),
    ("content a float", chat(4.2), "messages[0].content"),
    ("content true", chat(True), "messages[0].content"),
    ("content an object", chat({"text": OK_PROMPT}), "messages[0].content"),
    ("content part a number", chat([42]), "messages[0].content[0]"),
    ("text part not text", chat([{"type": "text", "text": 7}]), "messages[0].content[0].text"),
    ("role a number", {"model": "adaptive-router", "messages": [{"role": 1, "content": OK_PROMPT}]},
     "messages[0].role"),
    ("earlier turn's content a number", {"model": "adaptive-router", "messages": [
        {"role": "assistant", "content": 5}, {"role": "user", "content": OK_PROMPT}]},
     "messages[0].content"),
    ("stream a string", chat(OK_PROMPT, stream="false"), "stream must be true or false"),
]
BAD += WRONG_TYPES


@pytest.mark.parametrize("case,body,phrase", BAD, ids=[c[0] for c in BAD])
def test_bad_input_is_a_json_4xx(proxy, case, body, phrase) -> None:
    resp = post(proxy, body)
    assert 400 <= resp.status_code < 500, (case, resp.status_code, resp.text[:500])
    msg = error_message(resp)
    assert phrase in msg, (case, msg)
    assert "Traceback" not in resp.text


@pytest.mark.parametrize("body,phrase", [
    ({"model": "adaptive-router", "input": 42}, "input must be a string"),
    ({"model": "adaptive-router", "input": [{"role": "user", "content": 42}]}, "input[0].content"),
], ids=["input a number", "input item content a number"])
def test_responses_api_wrong_types_are_a_400(proxy, body, phrase) -> None:
    resp = httpx.post(f"{proxy.base_url}/v1/responses", json=body, headers=proxy.headers, timeout=60)
    assert resp.status_code == 400, resp.text[:300]
    assert phrase in error_message(resp)


def test_wrong_types_are_rejected_before_any_provider_call(proxy) -> None:
    """Wrong types never reach the router's decision or a provider: each answer is fast, and no
    traffic log line (written for every routed request, served or failed) appears."""
    import time

    log = proxy.traffic_log  # type: ignore[attr-defined]
    before = log.read_text(encoding="utf-8").count("\n") if log.exists() else 0
    for case, body, phrase in WRONG_TYPES:
        t0 = time.perf_counter()
        resp = post(proxy, body)
        assert resp.status_code == 400, (case, resp.status_code, resp.text[:300])
        assert phrase in error_message(resp), case
        assert time.perf_counter() - t0 < 5.0, case
    after = log.read_text(encoding="utf-8").count("\n") if log.exists() else 0
    assert after == before
    assert "not iterable" not in proxy.log_text()  # the old failure: routed, then a provider crash


@pytest.mark.parametrize("content", [[{"type": "text", "text": MULTIMODAL_TEXT}, IMAGE], HUGE_PROMPT],
                         ids=["multimodal with text", "200k-token prompt"])
def test_odd_but_valid_inputs_are_served(proxy, content) -> None:
    resp = post(proxy, chat(content))
    assert resp.status_code == 200, resp.text[:500]
    body = resp.json()
    assert body["choices"][0]["message"]["content"]
    assert body["adaptive_router"]["model"] in ("weak", "strong")


def test_proxy_is_alive_after_the_bad_inputs(proxy) -> None:
    for _case, body, _ in BAD:
        post(proxy, body)
    assert proxy.alive()
    resp = post(proxy, chat(OK_PROMPT))
    assert resp.status_code == 200, resp.text[:300]


def test_api_keys_never_reach_the_log_or_error_bodies(proxy) -> None:
    sneaky = {"X-Upstream-Api-Key": FAKE_KEY, "OpenAI-Organization": FAKE_KEY_2}
    ok = post(proxy, chat(OK_PROMPT, api_key=FAKE_KEY, metadata={"api_key": FAKE_KEY_2}), headers=sneaky)
    assert ok.status_code == 200, ok.text[:300]
    bad = post(proxy, chat("   ", api_key=FAKE_KEY, metadata={"note": f"my key is {FAKE_KEY_2}"}), headers=sneaky)
    assert 400 <= bad.status_code < 500
    wrong_auth = httpx.post(f"{proxy.base_url}/v1/chat/completions", json=chat(OK_PROMPT),
                            headers={"Authorization": f"Bearer {FAKE_KEY}"}, timeout=60)
    assert wrong_auth.status_code in (400, 401, 403)
    for resp in (ok, bad, wrong_auth):
        assert FAKE_KEY not in resp.text and FAKE_KEY_2 not in resp.text
        assert proxy.master_key not in resp.text
    log = proxy.traffic_log.read_text(encoding="utf-8")  # type: ignore[attr-defined]
    assert log.strip(), "the traffic log has lines"
    for secret in (FAKE_KEY, FAKE_KEY_2, proxy.master_key):
        assert secret not in log


@pytest.fixture(scope="module")
def misconfigured(tmp_path_factory: pytest.TempPathFactory):
    """A proxy whose plugin settings are malformed (threshold 7, an unknown key)."""
    work = tmp_path_factory.mktemp("misconfigured")
    records = write_replay_records(work / "records.jsonl", [OK_PROMPT], ["weak", "strong"])
    config = write_proxy_config(work / "config.yaml", deployments(), plugin={
        "fleet": str(fleet_yaml(work / "fleet.yaml")), "router": "cheapest",
        "policy": {"threshold": 7}, "surprise": True})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                      log_path=work / "proxy.log") as p:
        yield p, work


def test_malformed_plugin_settings_are_a_json_error_and_the_proxy_serves_on(misconfigured) -> None:
    proxy, work = misconfigured
    resp = post(proxy, chat(OK_PROMPT))
    assert 400 <= resp.status_code < 600 and resp.status_code != 200
    msg = error_message(resp)
    assert "adaptive_router.policy" in msg and "adaptive_router.surprise" in msg, msg
    # models the plugin does not route still work: the proxy itself is fine
    direct = post(proxy, chat(OK_PROMPT, model="weak-replay"))
    assert direct.status_code == 200, direct.text[:300]
    assert proxy.alive()


@pytest.mark.slow  # a proxy of its own; the core suite checks the same refusal in-process
def test_pickled_router_checkpoint_is_refused_through_the_proxy(tmp_path) -> None:
    """A server-side misconfiguration: a JSON 500 that names the problem (the client did
    nothing wrong), and the proxy keeps serving."""
    (tmp_path / "router").mkdir()
    (tmp_path / "router" / "pytorch_model.bin").write_bytes(b"\x80\x04\x95" + b"\x00" * 32)
    records = write_replay_records(tmp_path / "records.jsonl", [OK_PROMPT], ["weak", "strong"])
    config = write_proxy_config(tmp_path / "config.yaml", deployments(), plugin={
        "fleet": str(fleet_yaml(tmp_path / "fleet.yaml")), "router": str(tmp_path / "router")})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                      log_path=tmp_path / "proxy.log") as proxy:
        resp = post(proxy, chat(OK_PROMPT))
        assert resp.status_code == 500, resp.text[:300]
        assert "pickle" in error_message(resp)
        assert proxy.alive()


@pytest.mark.slow  # LiteLLM's own behaviour, kept as a regression check
def test_malformed_config_yaml_stops_the_proxy_with_the_reason(tmp_path) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("model_list:\n  - model_name: x\n    litellm_params: {model: [unclosed\n", encoding="utf-8")
    proxy = LiteLLMProxy(bad, log_path=tmp_path / "proxy.log", startup_timeout_s=90)
    with pytest.raises(RuntimeError, match="exited"):
        proxy.start()
    assert "yaml" in proxy.log_text().lower() or "while parsing" in proxy.log_text()
