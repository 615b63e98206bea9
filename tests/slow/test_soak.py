"""Soak (issue 9, slow): 10 minutes of steady traffic through the proxy with the plugin; the
proxy's resident memory stays flat and no request fails.

    .venv/bin/pytest -q -s -m slow tests/slow/test_soak.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from adaptive_router.integrations.litellm_plugin.proxy_process import run_load  # noqa: E402
from load_support import chat, log_lines, prompts, start_load_proxy  # noqa: E402

SOAK_S = 600
WINDOW_S = 30
CONCURRENCY = 8
#: Allowed growth of resident memory between the end of the warm-up and the end of the soak.
MAX_GROWTH_MB = 64


@pytest.mark.slow
@pytest.mark.timeout(SOAK_S + 300)
def test_ten_minute_soak_memory_stays_flat(tmp_path, capsys) -> None:
    texts = prompts(20_000, seed=1)
    proxy = start_load_proxy(tmp_path, texts)
    samples: list[tuple[float, float]] = []
    errors: list[str] = []
    sent = 0
    try:
        start = time.monotonic()
        cursor = 0
        while time.monotonic() - start < SOAK_S:
            batch = [chat(texts[(cursor + i) % len(texts)]) for i in range(2000)]
            res = asyncio.run(run_load(proxy.base_url, proxy.master_key, batch, concurrency=CONCURRENCY,
                                       total=len(batch), time_limit_s=WINDOW_S))
            cursor += res.requests
            sent += res.requests
            errors.extend(res.errors)
            samples.append((time.monotonic() - start, proxy.rss_bytes() / 2**20))
        with capsys.disabled():
            print("\nsoak: " + json.dumps({"requests": sent, "errors": len(errors),
                                           "rss_mb": [(round(t), round(m, 1)) for t, m in samples]}))
        assert not errors, errors[:5]
        assert log_lines(tmp_path / "traffic.jsonl") >= sent
        warm = [m for t, m in samples if t >= 120] or [samples[-1][1]]
        assert warm[-1] - warm[0] <= MAX_GROWTH_MB, samples
        assert proxy.alive()
    finally:
        proxy.stop()
