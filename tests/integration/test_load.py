"""Load (issue 9): 1,000 requests at 32 concurrent through a real proxy with the plugin, against
replay deployments: no errors, 1,000 traffic-log lines, p50/p99 reported.

    .venv/bin/pytest -q -s tests/integration/test_load.py     # prints the figures
"""

from __future__ import annotations

import asyncio
import json

import pytest
from adaptive_router.integrations.litellm_plugin.proxy_process import run_load
from load_support import chat, log_lines, prompts, start_load_proxy

REQUESTS = 1000
CONCURRENCY = 32


@pytest.mark.timeout(600)
def test_1000_requests_at_32_concurrent(tmp_path, capsys) -> None:
    texts = prompts(REQUESTS + 8)
    proxy = start_load_proxy(tmp_path, texts)
    try:
        warm = asyncio.run(run_load(proxy.base_url, proxy.master_key, [chat(t) for t in texts[:8]],
                                    concurrency=4, total=8, time_limit_s=300))
        assert not warm.errors, warm.errors[:3]
        before = log_lines(tmp_path / "traffic.jsonl")
        result = asyncio.run(run_load(proxy.base_url, proxy.master_key, [chat(t) for t in texts[8:]],
                                      concurrency=CONCURRENCY, total=REQUESTS, time_limit_s=300))
        summary = result.summary()
        with capsys.disabled():
            print(f"\nload through the proxy with the plugin: {json.dumps(summary)}")
        assert result.requests == REQUESTS, summary
        assert result.errors == [], result.errors[:5]
        assert result.ok == REQUESTS
        assert log_lines(tmp_path / "traffic.jsonl") - before == REQUESTS
        ids = [json.loads(line)["request_id"] for line in (tmp_path / "traffic.jsonl").open()]
        assert len(set(ids)) == len(ids)  # one line per request, none written twice
        assert proxy.alive()
    finally:
        proxy.stop()
