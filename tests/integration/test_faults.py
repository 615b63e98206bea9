"""Faults through a real LiteLLM proxy with the plugin (issue 9).

One fleet holds every fault at once, ordered by price so that a cheapest-first policy meets them
in turn: ``refused`` (an OpenAI-style deployment whose api_base on 127.0.0.1 has no listener:
connection refused), ``stalled`` (a listener on 127.0.0.1 that accepts and never answers: a
timeout), and ``weak`` (a replay deployment drawing 3 samples), whose best-of-n reward model is a
broken folder; the traffic log's folder is a regular file, so no line can be written. A request
must still be served: by the next-best candidate within the budget, with the first of the three
samples, and every failure reported.
"""

from __future__ import annotations

import socket
import threading

import httpx
import pytest
import yaml
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    free_port,
    replay_deployment,
    write_proxy_config,
    write_replay_records,
)

PROMPT = "Name three prime numbers greater than 10."
ANSWERS = ["11, 13 and 17.", "13, 17 and 19.", "23, 29 and 31."]


class StalledServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (until closed)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._conns.append(conn)  # held open, never read from or answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self._conns:
            c.close()
        self.sock.close()


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("faults")
    stalled = StalledServer()
    refused_port = free_port()
    records = write_replay_records(work / "records.jsonl", [PROMPT], ["weak"],
                                   answers=ANSWERS)
    (work / "broken-reward-model").mkdir()
    (work / "broken-reward-model" / "weights.bin").write_bytes(b"not a model")
    (work / "a-file").write_text("the traffic log's folder is this regular file", encoding="utf-8")
    (work / "fleet.yaml").write_text(yaml.safe_dump({
        "reference": "weak", "selector": "reward", "reward_model": str(work / "broken-reward-model"),
        "models": [{"name": "refused", "litellm_model": "refused-group", "n": [1]},
                   {"name": "stalled", "litellm_model": "stalled-group", "n": [1]},
                   {"name": "weak", "litellm_model": "weak-replay", "n": [3]}]}), encoding="utf-8")
    openai_like = {"model": "openai/gpt-4o-mini", "api_key": "sk-fake-upstream-key-0123456789abcdef",
                   "max_retries": 0}
    deployments = [
        {"model_name": "refused-group",
         "litellm_params": {**openai_like, "api_base": f"http://127.0.0.1:{refused_port}/v1", "timeout": 5},
         "model_info": {"input_cost_per_token": 1e-08, "output_cost_per_token": 1e-08}},
        {"model_name": "stalled-group",
         "litellm_params": {**openai_like, "api_base": f"http://127.0.0.1:{stalled.port}/v1", "timeout": 2},
         "model_info": {"input_cost_per_token": 2e-08, "output_cost_per_token": 2e-08}},
        replay_deployment("weak-replay", "weak", 1.5e-07, 6.0e-07),
    ]
    config = write_proxy_config(work / "config.yaml", deployments, plugin={
        "fleet": str(work / "fleet.yaml"), "router": "cheapest",
        "traffic_log": str(work / "a-file" / "traffic.jsonl")},
        router_settings={"num_retries": 0, "allowed_fails": 100})
    try:
        with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                          log_path=work / "proxy.log") as proxy:
            yield proxy, stalled, work
    finally:
        stalled.close()


def test_every_fault_at_once_and_the_request_is_still_served(faulty) -> None:
    proxy, stalled, work = faulty
    resp = httpx.post(f"{proxy.base_url}/v1/chat/completions", headers=proxy.headers, timeout=120,
                      json={"model": "adaptive-router", "messages": [{"role": "user", "content": PROMPT}]})
    assert resp.status_code == 200, resp.text[:1000]
    body = resp.json()
    # the chosen deployment (refused) failed, the next (stalled) timed out: weak x3 served it
    assert resp.headers.get("x-litellm-model-group") == "weak-replay"
    routed = body["adaptive_router"]
    assert routed["model"] == "weak" and routed["n"] == 3
    # what was decided, what failed and what served it
    assert routed["decision"]["candidate"] == "weak#3"
    assert "failover: refused#1 failed, served by weak#3" in routed["decision"]["reason"], routed
    assert stalled.accepted >= 1  # the stalled deployment really was tried
    # the reward model is broken: the first sample, with the reason
    assert "reward model" in routed["selection_fallback"]
    assert routed["chosen_index"] == 0
    assert len(body["choices"]) == 1
    assert body["choices"][0]["message"]["content"] in ANSWERS
    # cost of what was really served: weak's price, 3 samples
    assert routed["output_tokens"] == [40, 40, 40]
    assert routed["cost_usd"] == pytest.approx(routed["prompt_tokens"] * 1.5e-07 + 120 * 6.0e-07)
    log = proxy.log_text()
    assert "failover: refused#1" in log.lower()
    assert "reward model unavailable" in log
    assert "could not write the traffic log" in log
    assert not (work / "a-file" / "traffic.jsonl").exists()
    assert proxy.alive()


def test_upstream_key_of_a_failing_deployment_is_not_leaked(faulty) -> None:
    proxy, _, _ = faulty
    resp = httpx.post(f"{proxy.base_url}/v1/chat/completions", headers=proxy.headers, timeout=120,
                      json={"model": "refused-group", "messages": [{"role": "user", "content": PROMPT}]})
    assert resp.status_code >= 400  # asked for the broken deployment directly: no routing, no fallback
    assert "sk-fake-upstream-key" not in resp.text
    assert resp.json()["error"]


def test_fallback_order_is_logged_with_the_decision(faulty) -> None:
    """A second request takes the same path (the failing deployments are not remembered as
    healthy) and the proxy keeps serving."""
    proxy, _, _ = faulty
    for _ in range(2):
        resp = httpx.post(f"{proxy.base_url}/v1/chat/completions", headers=proxy.headers, timeout=120,
                          json={"model": "adaptive-router",
                                "messages": [{"role": "user", "content": PROMPT}]})
        assert resp.status_code == 200, resp.text[:500]
        assert resp.json()["adaptive_router"]["model"] == "weak"
    assert proxy.alive()


def test_stalled_server_double_really_stalls() -> None:
    """The test double behaves like a hung upstream: connects, then no byte comes back."""
    server = StalledServer()
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"http://127.0.0.1:{server.port}/", timeout=httpx.Timeout(1.0, connect=2.0))
    finally:
        server.close()
