"""A REAL LiteLLM proxy process started from examples/litellm/config.yaml, driven by the openai client.

One proxy per module (starting one takes 5-8 s). The environment points the example config at
this module's replay records, prior router and traffic log; everything else is the shipped
config: the callback, the providers, the aliases and the model_info prices.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from replay_fixtures import PRIORS, REPLAY, cost, write_fixtures

from adaptive_router.traffic import read_traffic_log, traffic_to_records

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "litellm" / "config.yaml"
PROMPTS = list(REPLAY)
PROMPT = PROMPTS[0]
PTOK, (STRONG, STOK), WEAK, ANSWER = REPLAY[PROMPT]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proxy:
    def __init__(self, base_url: str, key: str, log: Path, process: subprocess.Popen, output: Path) -> None:
        self.base_url, self.key, self.log, self.process, self.output = base_url, key, log, process, output

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.base_url}/v1", api_key=self.key, max_retries=0, timeout=60)

    def async_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.base_url}/v1", api_key=self.key, max_retries=0,
                                  timeout=120)

    def log_lines(self):
        return list(read_traffic_log(self.log)) if self.log.exists() else []

    def line(self, request_id: str):
        for _ in range(50):  # the line is written before the response leaves; allow a beat
            found = [ln for ln in self.log_lines() if ln.request_id == request_id]
            if found:
                return found[-1]
            time.sleep(0.1)
        raise AssertionError(f"no traffic log line for {request_id}")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("proxy")
    records, router = write_fixtures(folder)
    port = _free_port()
    key = "sk-" + secrets.token_hex(16)
    log = folder / "traffic.jsonl"
    env = {**os.environ, "LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records), "ADAPTIVE_ROUTER_ROUTER": str(router),
           "ADAPTIVE_ROUTER_TRAFFIC_LOG": str(log), "NO_PROXY": "127.0.0.1,localhost"}
    output = folder / "proxy.out"
    litellm_bin = Path(sys.executable).with_name("litellm")
    with output.open("wb") as out:
        process = subprocess.Popen(
            [str(litellm_bin), "--config", str(CONFIG), "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise AssertionError(f"the proxy exited ({process.returncode}):\n{output.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/health/liveliness", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the proxy did not come up:\n{output.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Proxy(base, key, log, process, output)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _chat(proxy: Proxy, model: str, prompt: str = PROMPT, **kw):
    raw = proxy.client().chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": prompt}], **kw)
    return raw.parse(), raw.headers


def test_routed_request_best_of_n_cost_headers_and_log_line(proxy: Proxy) -> None:
    # threshold 0.6: the cheapest candidate predicted >= 0.6 is gpt-4o-mini x 3 (prior 0.7)
    resp, headers = _chat(proxy, "adaptive-0.6")
    info = resp.model_extra["adaptive_router"]
    assert (info["model"], info["n"], info["model_group"]) == ("gpt-4o-mini", 3, "gpt-4o-mini-replay")
    assert headers["x-adaptive-router-model"] == "gpt-4o-mini"
    assert headers["x-adaptive-router-n"] == "3"
    assert headers["x-litellm-model-group"] == "gpt-4o-mini-replay"
    # best of n: one choice returned, the majority's answer, chosen by the fleet's selector
    assert len(resp.choices) == 1
    assert resp.choices[0].message.content.endswith(f"The answer is {ANSWER}.")
    assert info["selector"] == "majority" and len(info["scores"]) == 3
    assert info["scores"][info["chosen_index"]] == max(info["scores"])
    # cost: the prompt once, all three samples' recorded output tokens, at model_info prices
    want = cost("gpt-4o-mini", PTOK, [k for _, k in WEAK])
    assert info["cost_usd"] == pytest.approx(want)
    assert float(headers["x-adaptive-router-cost-usd"]) == pytest.approx(want, rel=1e-6)
    assert float(headers["x-litellm-response-cost"]) == pytest.approx(want)
    assert resp.usage.prompt_tokens == PTOK and resp.usage.completion_tokens == sum(k for _, k in WEAK)
    assert info["decision"]["predicted_quality"] == PRIORS["gpt-4o-mini#3"]
    # the traffic log line
    line = proxy.line(info["request_id"])
    assert line.prompt == PROMPT and line.model_group == "gpt-4o-mini-replay"
    assert line.decision["candidate"] == "gpt-4o-mini#3" and line.decision["policy"] == "threshold(0.6)"
    assert sorted(line.samples) == sorted(t for t, _ in WEAK)
    assert line.samples[line.chosen_index] == resp.choices[0].message.content
    assert line.cost_usd == pytest.approx(want)
    assert line.prompt_tokens == PTOK and sorted(line.output_tokens) == sorted(k for _, k in WEAK)
    assert line.latency_s > 0 and line.error is None
    raw = proxy.log.read_text()
    assert proxy.key not in raw  # never the master key
    rec = traffic_to_records([line])[0]
    assert rec.models["gpt-4o-mini"].token_num_responses == line.output_tokens


def test_knob_by_alias_metadata_and_default(proxy: Proxy) -> None:
    resp, h = _chat(proxy, "adaptive-0.8")
    assert resp.model_extra["adaptive_router"]["model"] == "gpt-4o" and h["x-adaptive-router-n"] == "1"
    assert resp.choices[0].message.content == STRONG
    assert resp.model_extra["adaptive_router"]["cost_usd"] == pytest.approx(cost("gpt-4o", PTOK, [STOK]))
    resp, _ = _chat(proxy, "adaptive-router")  # default policy threshold 0.5 -> gpt-4o-mini x 1
    assert (resp.model_extra["adaptive_router"]["model"], resp.model_extra["adaptive_router"]["n"]) == ("gpt-4o-mini", 1)
    resp, _ = _chat(proxy, "adaptive-router", metadata={"adaptive_router": {"threshold": 0.8}})
    assert resp.model_extra["adaptive_router"]["model"] == "gpt-4o"
    resp, _ = _chat(proxy, "adaptive-0.8", extra_body={"metadata": {"adaptive_router": {"budget_usd": 0.00005}}})
    info = resp.model_extra["adaptive_router"]
    assert info["model"] == "gpt-4o-mini" and info["decision"]["policy"] == "budget($5e-05)"
    resp, _ = _chat(proxy, "adaptive-cheap")  # a named alias from config.yaml
    assert resp.model_extra["adaptive_router"]["decision"]["policy"] == "budget($5e-05)"


@pytest.mark.parametrize("headers,phrase", [
    ({}, "no API key"),
    ({"Authorization": "Bearer"}, "no API key"),
    ({"Authorization": "Bearer sk-wrong-key-0123456789abcdef"}, "invalid API key"),
    ({"Authorization": "sk-wrong-key-without-bearer"}, "Bearer"),  # read as no key by LiteLLM
    ({"x-litellm-api-key": "sk-wrong-key-0123456789abcdef"}, "invalid API key"),
], ids=["no header", "empty bearer", "wrong key", "wrong key, no Bearer", "wrong key, LiteLLM header"])
def test_missing_and_wrong_keys_are_401_on_the_documented_install(proxy: Proxy, headers, phrase) -> None:
    """The shipped config.yaml (no database) answers 401 JSON for a missing or wrong key (issue
    16: LiteLLM alone gave a 500 text/plain and a 400 "No connected db."); nothing is routed or
    logged, and the master key still works."""
    before = len(proxy.log_lines())
    for path, body in (("/v1/chat/completions", {"model": "adaptive-router",
                                                  "messages": [{"role": "user", "content": PROMPT}]}),
                       ("/v1/models", None)):
        if body is None:
            resp = httpx.get(f"{proxy.base_url}{path}", headers=headers, timeout=30)
        else:
            resp = httpx.post(f"{proxy.base_url}{path}", json=body, headers=headers, timeout=30)
        assert resp.status_code == 401, (path, resp.status_code, resp.text[:300])
        assert resp.headers["content-type"].startswith("application/json")
        assert phrase in resp.json()["error"]["message"]
        assert "x-adaptive-router-model" not in resp.headers
    assert len(proxy.log_lines()) == before
    ok = httpx.get(f"{proxy.base_url}/v1/models", headers={"Authorization": f"Bearer {proxy.key}"}, timeout=30)
    assert ok.status_code == 200 and "adaptive-router" in ok.text
    assert httpx.get(f"{proxy.base_url}/health/liveliness", timeout=30).status_code == 200


def test_ordinary_model_names_pass_through(proxy: Proxy) -> None:
    resp, headers = _chat(proxy, "gpt-4o-mini-replay", n=2)
    assert len(resp.choices) == 2
    assert "adaptive_router" not in (resp.model_extra or {})
    assert "x-adaptive-router-model" not in headers


def test_streaming_draws_one_sample_and_reports_cost_at_the_end(proxy: Proxy) -> None:
    raw = proxy.client().chat.completions.with_raw_response.create(
        model="adaptive-0.6", stream=True, messages=[{"role": "user", "content": PROMPT}])
    headers = raw.headers
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # streams are routed among n = 1 candidates: 0.6 -> gpt-4o (gpt-4o-mini x 1 is predicted 0.5)
    assert headers["x-adaptive-router-n"] == "1" and headers["x-adaptive-router-model"] == "gpt-4o"
    assert headers["x-adaptive-router-cost-basis"] == "expected"
    assert text == STRONG
    assert all(c.choices for c in chunks)  # the client did not ask for a usage-only chunk
    info = chunks[-1].model_extra["adaptive_router"]
    assert info["cost_usd"] == pytest.approx(cost("gpt-4o", PTOK, [STOK]))
    assert chunks[-1].usage.completion_tokens == STOK
    assert proxy.line(info["request_id"]).samples == [STRONG]


def test_responses_api(proxy: Proxy) -> None:
    raw = proxy.client().responses.with_raw_response.create(model="adaptive-0.8", input=PROMPT)
    resp = raw.parse()
    assert resp.output_text == STRONG
    info = resp.model_extra["adaptive_router"]
    assert (info["model"], info["n"]) == ("gpt-4o", 1)
    assert raw.headers["x-adaptive-router-cost-usd"]
    assert info["cost_usd"] == pytest.approx(cost("gpt-4o", PTOK, [STOK]))
    assert proxy.line(info["request_id"]).decision["model"] == "gpt-4o"


def test_responses_api_streaming(proxy: Proxy) -> None:
    events = list(proxy.client().responses.create(model="adaptive-0.8", input=PROMPTS[1], stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    strong, stok = REPLAY[PROMPTS[1]][1]
    assert text == strong
    info = events[-1].model_extra["adaptive_router"]
    assert (info["model"], info["n"]) == ("gpt-4o", 1)
    line = proxy.line(info["request_id"])
    assert line.samples == [strong] and line.output_tokens == [stok] and line.model_extra["stream"]
    assert line.cost_usd == pytest.approx(cost("gpt-4o", REPLAY[PROMPTS[1]][0], [stok]))


def _anthropic(proxy: Proxy, body: dict) -> httpx.Response:
    """A raw Anthropic-format request to the proxy's /v1/messages route."""
    return httpx.post(f"{proxy.base_url}/v1/messages", json={"max_tokens": 64, **body}, timeout=60,
                      headers={"Authorization": f"Bearer {proxy.key}", "anthropic-version": "2023-06-01"})


def test_anthropic_messages(proxy: Proxy) -> None:
    r = _anthropic(proxy, {"model": "adaptive-router", "system": "Answer briefly.",
                           "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPT}]}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "message" and body["content"][0]["text"] in [t for t, _ in WEAK]  # one sample
    info = body["adaptive_router"]
    assert (info["model"], info["n"]) == ("gpt-4o-mini", 1)  # one output: n = 1 candidates only
    assert r.headers["x-adaptive-router-model"] == "gpt-4o-mini"
    weak_tokens = body["usage"]["output_tokens"]
    assert info["cost_usd"] == pytest.approx(cost("gpt-4o-mini", body["usage"]["input_tokens"], [weak_tokens]))
    line = proxy.line(info["request_id"])
    assert line.model_extra["call"] == "anthropic_messages"
    assert line.messages[0] == {"role": "system", "content": "Answer briefly."} and line.prompt == PROMPT
    # the knob rides in metadata.adaptive_router (taken out before the provider sees metadata)
    r = _anthropic(proxy, {"model": "adaptive-router", "metadata": {"user_id": "u-1", "adaptive_router":
                                                                    {"threshold": 0.8}},
                           "messages": [{"role": "user", "content": PROMPT}]})
    assert r.status_code == 200, r.text
    assert r.json()["adaptive_router"]["model"] == "gpt-4o" and r.json()["content"][0]["text"] == STRONG
    # a bad knob is a JSON 400 and the proxy keeps serving
    r = _anthropic(proxy, {"model": "adaptive-router", "metadata": {"adaptive_router": {"threshold": 2}},
                           "messages": [{"role": "user", "content": PROMPT}]})
    assert r.status_code == 400 and "threshold" in r.text and proxy.process.poll() is None


def test_anthropic_messages_streaming(proxy: Proxy) -> None:
    r = _anthropic(proxy, {"model": "adaptive-0.8", "stream": True,
                           "messages": [{"role": "user", "content": PROMPTS[1]}]})
    assert r.status_code == 200, r.text
    strong, stok = REPLAY[PROMPTS[1]][1]
    events = [json.loads(ln[5:]) for ln in r.text.splitlines() if ln.startswith("data:")]
    text = "".join(e["delta"].get("text", "") for e in events if e.get("type") == "content_block_delta")
    assert text == strong
    assert r.headers["x-adaptive-router-model"] == "gpt-4o"
    assert r.headers["x-adaptive-router-cost-basis"] == "expected"
    line = next(ln for ln in reversed(proxy.log_lines())
                if ln.model_extra.get("call") == "anthropic_messages" and ln.model_extra.get("stream"))
    assert line.samples == [strong] and line.output_tokens == [stok]  # read from the event stream
    assert line.cost_usd == pytest.approx(cost("gpt-4o", line.prompt_tokens, [stok]))


@pytest.mark.parametrize(("model", "prompt", "extra", "status", "message"), [
    ("adaptive-router", "   ", {}, 400, "empty"),
    ("adaptive-1.5", PROMPT, {}, 400, "threshold must be within"),
    ("adaptive-router", PROMPT, {"n": 3}, 400, "the router chooses how many samples"),
    ("adaptive-router", PROMPT, {"metadata": {"adaptive_router": {"budget_usd": -1}}}, 400, "budget"),
    ("adaptive-router", PROMPT, {"metadata": {"adaptive_router": {"speed": 1}}}, 400, "unknown key"),
])
def test_bad_requests_are_json_4xx(proxy: Proxy, model, prompt, extra, status, message) -> None:
    with pytest.raises(openai.APIStatusError) as err:
        _chat(proxy, model, prompt, **extra)
    assert err.value.status_code == status
    assert message in json.dumps(err.value.body)
    assert proxy.process.poll() is None  # still serving


def test_concurrency_200_requests_16_at_a_time(proxy: Proxy) -> None:
    client = proxy.async_client()
    tag = "concurrency-" + secrets.token_hex(4)
    gate = asyncio.Semaphore(16)

    async def one(i: int):
        async with gate:
            return await client.chat.completions.create(
                model=("adaptive-0.3", "adaptive-0.6", "adaptive-0.8")[i % 3], user=tag,
                messages=[{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}])

    async def run():
        try:
            return await asyncio.gather(*(one(i) for i in range(200)), return_exceptions=True)
        finally:
            await client.close()

    t0 = time.perf_counter()
    results = asyncio.run(run())
    elapsed = time.perf_counter() - t0
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} errors, first: {errors[0]!r}"
    ids = {r.model_extra["adaptive_router"]["request_id"] for r in results}
    assert len(ids) == 200
    lines = [ln for ln in proxy.log_lines() if ln.model_extra.get("user") == tag]
    assert len(lines) == 200 and {ln.request_id for ln in lines} == ids
    assert all(ln.error is None and ln.samples for ln in lines)
    print(f"200 routed requests at concurrency 16 in {elapsed:.1f} s ({200 / elapsed:.1f} req/s)")
