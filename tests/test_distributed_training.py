"""Distributed training that has run: ``bert`` trained by two CPU processes (gloo) through
``accelerate launch`` is saved once, by rank 0, and is the same router a single process trains.

Why the comparison can be tight: the trainer keeps ``batch_size`` as the *global* batch (each of
N processes takes ``batch_size / N``), drops the short last batch of an epoch, and Accelerate
hands rank 0 the first half of every one-process batch and rank 1 the second. DDP averages the
two half-batch gradient means, which is the one-process gradient of the whole batch. The test's
tiny backbone has dropout off (otherwise each process draws its own dropout masks, a legitimate
difference), so the two runs differ only by float32 summation order (and per-half padding, which
the attention mask hides): measured 1.2e-7 at most on the routing scores after 40 steps. The
tolerance below (1e-4 on every routing score) leaves that ~1000x headroom, yet real faults move
the scores far more: measured 0.065 with each rank taking a whole batch (no split_batches) and
0.021 with the short last batch kept (padded with repeated prompts to split evenly).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.needs_data

#: Small settings: 400 gsm8k records (280 train = 17 full batches, so 40 steps cross an epoch
#: boundary and the reshuffle), a 48-token cut, validation on 40 prompts at step 40 only, so the
#: saved weights are the step-40 ones (earlier validations could restore an earlier best step and
#: hide a fault that starts at the epoch boundary).
TRAIN_ARGS = ["train", "--router", "bert", "--data", "routellm-gsm8k", "--max-records", "400",
              "--param", "max_steps=40", "--param", "eval_every=40", "--param", "batch_size=16",
              "--param", "lr=0.001", "--param", "max_length=48", "--param", "val_size=64"]
SCORE_TOLERANCE = 1e-4  # see the module docstring
CHECKPOINT_FILES = {"config.json", "model.safetensors", "training_report.json", "training_report.md"}


def _tiny_backbone(path: Path) -> Path:
    """A random 1-layer BERT with the MiniLM tokenizer and no dropout: trains in seconds, and two
    runs of the same steps give the same weights."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from adaptive_router.encoders import default_encoder_path

    tok = AutoTokenizer.from_pretrained(str(default_encoder_path()))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0)).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def _free_port() -> int:
    """A free TCP port for the rendezvous: torchrun's default 29500 may be taken by another job."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(data: Path, tmp: Path) -> dict[str, str]:
    return {**os.environ, "ADAPTIVE_ROUTER_DATA": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TOKENIZERS_PARALLELISM": "false",
            "ADAPTIVE_ROUTER_EMBED_CACHE": str(tmp / "emb.sqlite")}


def _launch(processes: int, extra: list[str]) -> list[str]:
    """``accelerate launch`` of the CLI; ``--multi_gpu`` is what makes Accelerate start several
    processes (torchrun) — on a machine without GPUs they are CPU processes on gloo."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(_free_port()), *extra, "-m", "adaptive_router.cli"]


def _run_both(multi: list[str], single: list[str], env: dict[str, str], logs: Path) -> dict[str, float]:
    """Run the launch and the one-process run side by side (their results do not depend on
    timing); fail with the tail of the log of a run that fails. Returns wall seconds."""
    procs, walls = {}, {}
    for name, cmd in (("multi", multi), ("single", single)):
        log = (logs / f"{name}.log").open("w")
        procs[name] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log, time.perf_counter())
    for name, (proc, log, start) in procs.items():
        try:
            rc = proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            log.close()
        walls[name] = time.perf_counter() - start
        assert rc == 0, f"{name} run failed:\n" + (logs / f"{name}.log").read_text()[-4000:]
    return walls


@pytest.fixture(scope="module")
def cpu_runs(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("distributed")
    backbone = _tiny_backbone(tmp / "tiny-bert")
    args = [*TRAIN_ARGS, "--param", f"backbone={backbone}", "--param", "device=cpu"]
    (tmp / "two").mkdir()
    (tmp / "one").mkdir()
    walls = _run_both(_launch(2, []) + [*args, "--out", str(tmp / "two" / "router")],
                      [sys.executable, "-m", "adaptive_router.cli", *args, "--no-evaluate",  # compared by scores
                       "--out", str(tmp / "one" / "router")],
                      _env(shared_data, tmp), tmp)
    return SimpleNamespace(data=shared_data, two=tmp / "two", one=tmp / "one", walls=walls)


def _val_and_test_prompts(data: Path) -> list[str]:
    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.train import subsample_dataset

    _, val, test = subsample_dataset(load_dataset("routellm-gsm8k", data_dir=str(data)), 400).splits(seed=0)
    return [r.prompt for r in val + test]


def test_two_cpu_processes_save_one_checkpoint_from_rank_0(cpu_runs):
    assert [p.name for p in cpu_runs.two.iterdir()] == ["router"]  # one checkpoint folder, nothing beside it
    out = cpu_runs.two / "router"
    assert {p.name for p in out.iterdir()} == CHECKPOINT_FILES  # no partial, temporary or duplicate files
    report = json.loads((out / "training_report.json").read_text())
    assert report["processes"] == 2 and report["batch_size"] == 16 and report["batch_per_process"] == 8
    assert report["device"] == "cpu" and report["mixed_precision"] == "no"
    # written by rank 0 after its evaluation (the other rank returns before evaluating and saving)
    assert report["test_metrics"]["routellm-gsm8k"]["n_prompts"] > 0 and "default_knob" in report
    assert "# Training report: bert" in (out / "training_report.md").read_text()


def test_two_cpu_processes_train_the_one_process_router(cpu_runs):
    from adaptive_router.routers.base import Router

    two = json.loads((cpu_runs.two / "router" / "training_report.json").read_text())
    one = json.loads((cpu_runs.one / "router" / "training_report.json").read_text())
    assert one["processes"] == 1
    assert two["steps_run"] == one["steps_run"] == 40 and two["best_step"] == one["best_step"] == 40
    # the validation loss is sharded over the ranks and summed back: the same value as one process
    np.testing.assert_allclose(two["val_loss_history"], one["val_loss_history"], atol=1e-5)
    prompts = _val_and_test_prompts(cpu_runs.data)
    p_two = Router.from_pretrained(cpu_runs.two / "router").predict_batch(prompts)
    p_one = Router.from_pretrained(cpu_runs.one / "router").predict_batch(prompts)
    assert p_two.shape == (len(prompts), 2)
    assert float(np.abs(p_two - p_one).max()) <= SCORE_TOLERANCE
    assert float(p_one.std(axis=0).max()) > 1e-3  # the router learnt something prompt-dependent to compare


def test_ranks_other_than_0_write_nothing(shared_data, tmp_path, monkeypatch):
    """The rank gate itself, without a launch: rank 1 returns its report and writes no file."""
    from adaptive_router.training import train as train_mod

    monkeypatch.setenv("RANK", "1")
    stub = SimpleNamespace(training_report={"processes": 2})
    monkeypatch.setattr(train_mod, "train_router", lambda *a, **k: stub)
    report = train_mod.train_on_datasets("bert", ["routellm-gsm8k"], tmp_path / "out", data_dir=str(shared_data),
                                         max_records=100, progress=False)
    assert report == {"processes": 2}
    assert list(tmp_path.iterdir()) == []


def test_validation_shards_cover_every_prompt_once():
    from adaptive_router.training.trainers.transformer import _shard

    for n in (0, 1, 7, 64):
        for world in (1, 2, 3):
            covered = [i for rank in range(world) for i in range(*_shard(n, rank, world))]
            assert covered == list(range(n))


@pytest.mark.gpu
def test_several_gpus_train_the_one_gpu_router(shared_data, tmp_path):
    """The same comparison on CUDA (up to two GPUs, NCCL, mixed precision). The tolerance is looser:
    bf16/fp16 autocast keeps ~3 significant digits per operation and CUDA kernels may reduce in a
    different order per batch shape, so 40 steps can drift by ~1e-2 in a routing score."""
    import torch

    from adaptive_router.routers.base import Router

    gpus = min(2, torch.cuda.device_count())
    backbone = _tiny_backbone(tmp_path / "tiny-bert")
    args = [*TRAIN_ARGS, "--param", f"backbone={backbone}"]
    multi = (_launch(gpus, []) if gpus > 1 else
             [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1", "-m", "adaptive_router.cli"])
    (tmp_path / "many").mkdir()
    _run_both(multi + [*args, "--out", str(tmp_path / "many" / "router")],
              [sys.executable, "-m", "adaptive_router.cli", *args, "--out", str(tmp_path / "one")],
              _env(shared_data, tmp_path), tmp_path)
    assert [p.name for p in (tmp_path / "many").iterdir()] == ["router"]
    assert {p.name for p in (tmp_path / "many" / "router").iterdir()} == CHECKPOINT_FILES
    report = json.loads((tmp_path / "many" / "router" / "training_report.json").read_text())
    assert report["processes"] == gpus and report["device"] == "cuda"
    prompts = _val_and_test_prompts(shared_data)
    p_many = Router.from_pretrained(tmp_path / "many" / "router").predict_batch(prompts)
    p_one = Router.from_pretrained(tmp_path / "one").predict_batch(prompts)
    assert float(np.abs(p_many - p_one).max()) <= 2e-2
