"""The plugin under LiteLLM's multi-process modes (issue "Scale past one process", item 1).

A real proxy with ``--num_workers 2`` (uvicorn workers) and one with ``--run_gunicorn
--num_workers 2``, each over replay deployments with a baseline router in a folder:

- every request is served, and every worker served some (per-process counters: the proxies run
  with a Prometheus multiprocess folder of their own, where each worker writes its own file);
- each worker loads the router exactly once (the plugin's start-up log line, with its pid);
- the traffic log is whole: one parsable line per request, none lost, none twice;
- hot reload reaches every worker: after the router folder is replaced, every worker logs the
  reload once and the decisions of requests served by each worker come from the new router.

    .venv/bin/pytest -q tests/integration/test_multiworker.py
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from adaptive_router.integrations.litellm_plugin.proxy_process import (
    LiteLLMProxy,
    run_load,
)

from tests.integration.test_hot_reload import reload_workspace
from tests.integration.test_proxy_bad_inputs import OK_PROMPT

WORKERS = 2
BODY = {"model": "adaptive-router", "messages": [{"role": "user", "content": OK_PROMPT}]}


def decisions_per_worker(proxy: LiteLLMProxy) -> dict[int, Counter[str]]:
    """pid -> {candidate: decisions}, from the files each worker writes into the proxy's
    Prometheus multiprocess folder (``adaptive_router_decisions_total``)."""
    import tempfile

    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    folder = proxy.prometheus_dir
    assert folder is not None and folder.is_dir()
    pids = {int(f.stem.rsplit("_", 1)[1]) for f in folder.glob("*.db") if f.stem.rsplit("_", 1)[1].isdigit()}
    out: dict[int, Counter[str]] = {}
    for pid in pids:
        with tempfile.TemporaryDirectory() as one:
            for f in folder.glob(f"*_{pid}.db"):
                shutil.copy(f, one)
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=one)
            counts: Counter[str] = Counter()
            for metric in registry.collect():
                for s in metric.samples:
                    if s.name == "adaptive_router_decisions_total" and s.value:
                        counts[f"{s.labels['model']}#{s.labels['n']}"] += int(s.value)
            if counts:
                out[pid] = counts
    return out


def _load(proxy: LiteLLMProxy, total: int) -> None:
    result = asyncio.run(run_load(proxy.base_url, proxy.master_key, [BODY], concurrency=16,
                                  total=total, time_limit_s=120))
    assert result.errors == [], result.errors[:3]
    assert result.ok == total


def _check(proxy: LiteLLMProxy, tmp_path: Path, strong: Path, served: Path, pids_logged: bool) -> None:
    """Serve, check loads and the log, replace the router, check every worker reloads."""
    workers = proxy.worker_pids()
    assert len(workers) == WORKERS, workers
    # the proxy answers as soon as ONE worker is up; on a busy machine the other may still be
    # importing litellm and loading the router: wait until every worker has started
    deadline = time.monotonic() + 180
    while proxy.log_text().count("Application startup complete") < WORKERS and time.monotonic() < deadline:
        time.sleep(0.5)

    # 1. served by both workers, each loading the router once; the log is whole
    ids: list[str] = []
    for _ in range(20):  # the kernel, not us, spreads connections over the workers: until all served
        result = asyncio.run(run_load(proxy.base_url, proxy.master_key, [BODY], concurrency=16, total=200,
                                      time_limit_s=120, ramp_s=2.0, on_response=lambda _i, r: ids.append(
                                          r.json()["adaptive_router"]["request_id"])))
        assert result.errors == [], result.errors[:3]
        per_worker = decisions_per_worker(proxy)
        if len(ids) >= 400 and set(per_worker) == set(workers):
            break
    n_served = len(ids)
    assert len(set(ids)) == n_served
    assert set(per_worker) == set(workers), (per_worker, workers, proxy.log_text()[-3000:])
    assert sum(c["weak#1"] for c in per_worker.values()) == n_served  # the cheapest router everywhere
    for _ in range(3):  # whichever worker answers the scrape, it reports the whole proxy
        page = httpx.get(f"{proxy.base_url}/metrics", headers=proxy.headers, timeout=10,
                         follow_redirects=True)
        assert page.status_code == 200, page.text[:300]
        assert sum(float(row.rsplit(" ", 1)[1]) for row in page.text.splitlines()
                   if row.startswith("adaptive_router_decisions_total{")) == n_served
    if pids_logged:
        loads = Counter(pid for pid, _ in proxy.plugin_log("adaptive_router: routing"))
        assert loads == dict.fromkeys(workers, 1), loads
    raw = (tmp_path / "traffic.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(raw) == n_served
    assert sorted(json.loads(r)["request_id"] for r in raw) == sorted(ids)

    # 2. a new router folder: every worker's watcher reloads it, and every worker serves it
    shutil.rmtree(served)
    shutil.copytree(strong, served)
    swapped = time.monotonic()
    deadline = swapped + 60
    recent: list[str] = []
    while time.monotonic() < deadline:  # until 64 requests in a row see the new router
        recent.clear()
        asyncio.run(run_load(proxy.base_url, proxy.master_key, [BODY], concurrency=16, total=64,
                             time_limit_s=60, on_response=lambda _i, r: recent.append(
                                 r.json()["adaptive_router"]["decision"]["candidate"])))
        if set(recent) == {"strong#1"}:
            break
    assert set(recent) == {"strong#1"}, Counter(recent)
    reload_s = time.monotonic() - swapped
    # further requests until every worker has served some (the kernel, not us, spreads the
    # connections over the workers): all of them decided by the new router
    mid = decisions_per_worker(proxy)
    for _ in range(20):
        _load(proxy, 100)
        after = decisions_per_worker(proxy)
        new = {pid: after.get(pid, Counter()) - mid.get(pid, Counter()) for pid in workers}
        if all(new.values()):
            break
    for pid in workers:
        assert new[pid] and set(new[pid]) == {"strong#1"}, (pid, new)
    text = proxy.log_text()
    assert text.count("reloaded the router") == WORKERS, text[-3000:]
    if pids_logged:
        reloads = Counter(pid for pid, _ in proxy.plugin_log("reloaded the router"))
        assert reloads == dict.fromkeys(workers, 1), reloads
        loads = Counter(pid for pid, _ in proxy.plugin_log("adaptive_router: routing"))
        assert loads == dict.fromkeys(workers, 1), loads  # a reload is no second start-up
    assert proxy.worker_pids() == workers  # no worker died or was replaced
    assert reload_s < 30, reload_s


@pytest.mark.timeout(600)
def test_uvicorn_workers(tmp_path: Path) -> None:
    config, strong, served, env = reload_workspace(tmp_path)
    with LiteLLMProxy(config, env=env, log_path=tmp_path / "proxy.log", num_workers=WORKERS,
                      plugin_log_level="INFO") as proxy:
        _check(proxy, tmp_path, strong, served, pids_logged=True)
        assert "died" not in proxy.log_text()


@pytest.mark.timeout(600)
def test_gunicorn_workers(tmp_path: Path) -> None:
    config, strong, served, env = reload_workspace(tmp_path)
    with LiteLLMProxy(config, env=env, log_path=tmp_path / "proxy.log", num_workers=WORKERS,
                      server="gunicorn") as proxy:
        _check(proxy, tmp_path, strong, served, pids_logged=False)
