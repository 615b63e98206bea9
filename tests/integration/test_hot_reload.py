"""Hot reload of the router folder through a real LiteLLM proxy (issue 16, item 8).

Requests run at 8 concurrent while the folder the proxy serves is replaced the way ``retrain
--promote-to`` replaces it (remove, then copy): no request fails, decisions switch to the new
router within a few seconds, and a broken folder copied over it afterwards keeps the router
that serves, with the reason in the proxy's log.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    run_load,
    write_proxy_config,
    write_replay_records,
)

from adaptive_router.routers.baselines import CheapestRouter, StrongestRouter
from tests.integration.test_proxy_bad_inputs import OK_PROMPT, deployments, fleet_yaml

KEYS = ["weak#1", "weak#3", "strong#1"]


def replace_folder(src: Path, dst: Path) -> None:
    """What ``retrain --promote-to`` does: remove the folder, then copy the new one in."""
    shutil.rmtree(dst)
    shutil.copytree(src, dst)


def reload_workspace(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, str]]:
    """A proxy config serving the cheapest router from a folder (checked every 0.5 s) over replay
    deployments: (config, the strongest router's folder to swap in, the served folder, env)."""
    cheap = CheapestRouter(KEYS).save_pretrained(tmp_path / "cheap")
    strong = StrongestRouter(KEYS, strongest="strong#1").save_pretrained(tmp_path / "strong")
    served = tmp_path / "serving-router"
    shutil.copytree(cheap, served)
    records = write_replay_records(tmp_path / "records.jsonl", [OK_PROMPT], ["weak", "strong"])
    config = write_proxy_config(tmp_path / "config.yaml", deployments(), plugin={
        "fleet": str(fleet_yaml(tmp_path / "fleet.yaml")), "router": str(served),
        "traffic_log": str(tmp_path / "traffic.jsonl"), "reload_check_s": 0.5})
    return config, strong, served, {"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)}


def test_router_folder_replaced_under_load(tmp_path) -> None:
    config, strong, served, env = reload_workspace(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(strong, broken)
    cfg = json.loads((broken / "config.json").read_text(encoding="utf-8"))
    cfg["params"]["surprise"] = 1
    (broken / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    body = {"model": "adaptive-router", "messages": [{"role": "user", "content": OK_PROMPT}]}
    seen: list[tuple[float, str]] = []

    def record(_i: int, resp) -> None:
        if resp.status_code == 200:
            seen.append((time.monotonic(), resp.json()["adaptive_router"]["decision"]["candidate"]))

    with LiteLLMProxy(config, env=env, log_path=tmp_path / "proxy.log") as proxy:
        def swap() -> None:
            time.sleep(3.0)
            replace_folder(strong, served)
            swapped_at.append(time.monotonic())

        swapped_at: list[float] = []
        swapper = threading.Thread(target=swap)
        swapper.start()
        result = asyncio.run(run_load(proxy.base_url, proxy.master_key, [body], concurrency=8,
                                      total=100_000, time_limit_s=10.0, on_response=record))
        swapper.join()
        assert result.errors == [], result.errors[:3]
        assert result.ok == result.requests and result.requests > 50
        before = [c for t, c in seen if t < swapped_at[0]]
        after = [c for t, c in seen if t > swapped_at[0] + 3.0]
        assert before and set(before) == {"weak#1"}  # cheapest router
        assert after and set(after) == {"strong#1"}  # the new router serves
        assert "reloaded the router" in proxy.log_text()

        # a broken folder over it: the strongest router keeps serving, the log says why
        seen.clear()
        replace_folder(broken, served)
        result = asyncio.run(run_load(proxy.base_url, proxy.master_key, [body], concurrency=8,
                                      total=100_000, time_limit_s=4.0, on_response=record))
        assert result.errors == [], result.errors[:3]
        assert {c for _, c in seen} == {"strong#1"}
        text = proxy.log_text()
        assert "changed but cannot be loaded; keeping the current router" in text
        assert "surprise" in text
        assert proxy.alive()
    assert not proxy.alive()


@pytest.mark.parametrize("same", [True, False])
def test_folder_hash_sees_content_not_times(tmp_path, same) -> None:
    from adaptive_router.integrations.litellm_plugin.runtime_holder import folder_hash

    a = CheapestRouter(KEYS).save_pretrained(tmp_path / "a")
    b = tmp_path / "b"
    time.sleep(0.01)
    if same:
        shutil.copytree(a, b)  # a copy: new times, same content
    else:
        StrongestRouter(KEYS, strongest="strong#1").save_pretrained(b)
    assert (folder_hash(a) == folder_hash(b)) is same
