"""A bad router checkpoint through a real LiteLLM proxy (issue 16, item 5).

The plugin loads and checks the whole router when the proxy starts (a probe prompt reaches the
encoder the checkpoint names). A bad checkpoint is logged at startup as "the plugin cannot
start", every routed request is answered 500 "misconfigured" (the server's fault, never the
client's 400), no client error body shows an absolute server path, and models the plugin does
not route keep working.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    write_proxy_config,
    write_replay_records,
)

from tests.integration.test_proxy_bad_inputs import OK_PROMPT, chat, deployments, fleet_yaml

BUNDLED = Path(__file__).resolve().parents[2] / "adaptive_router" / "pretrained" / "default"


def bad_checkpoint(folder: Path, edit: str) -> Path:
    """The bundled router with one hand edit to its config.json."""
    shutil.copytree(BUNDLED, folder)
    cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if edit == "encoder path":
        cfg["params"]["encoder"] = "../../etc/passwd"
    else:
        cfg["params"]["surprise"] = 1
    (folder / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    return folder


def wait_for(proxy: LiteLLMProxy, phrase: str, timeout_s: float = 60.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = proxy.log_text()
        if phrase in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{phrase!r} not in the proxy log:\n{proxy.log_text()[-3000:]}")


@pytest.mark.parametrize("edit,reason", [("encoder path", "etc/passwd"), ("unknown keyword", "surprise")])
def test_a_bad_checkpoint_stops_the_plugin_at_startup(tmp_path, edit, reason) -> None:
    router = bad_checkpoint(tmp_path / "router", edit)
    records = write_replay_records(tmp_path / "records.jsonl", [OK_PROMPT], ["weak", "strong"])
    config = write_proxy_config(tmp_path / "config.yaml", deployments(), plugin={
        "fleet": str(fleet_yaml(tmp_path / "fleet.yaml")), "router": str(router),
        "traffic_log": str(tmp_path / "traffic.jsonl")})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                      log_path=tmp_path / "proxy.log") as proxy:
        # before any request: the startup check found it and said so in the server's log
        text = wait_for(proxy, "the plugin cannot start")
        assert reason in text
        for body in (chat(OK_PROMPT), chat(OK_PROMPT, stream=True)):
            resp = httpx.post(f"{proxy.base_url}/v1/chat/completions", json=body,
                              headers=proxy.headers, timeout=60)
            assert resp.status_code == 500, resp.text[:500]
            err = resp.json()["error"]
            assert "misconfigured" in err["message"], err
            assert reason in err["message"]  # what is wrong, for the operator the client tells
            assert err.get("type") != "invalid_request_error"
            assert str(tmp_path) not in resp.text  # no absolute server path
            assert "/tmp/" not in resp.text and "Traceback" not in resp.text
        direct = httpx.post(f"{proxy.base_url}/v1/chat/completions",
                            json=chat(OK_PROMPT, model="weak-replay"), headers=proxy.headers, timeout=60)
        assert direct.status_code == 200, direct.text[:300]
        assert proxy.alive()
    assert not proxy.alive()
