"""``make bench``: routing overhead, batching and proxy throughput, measured side by side.

One run, one table (printed, and written to ``docs/bench.md`` with the raw figures in
``docs/bench.json``):

1. **Decision latency** per router (p50/p99 of ``RoutingEngine.decide`` on one fresh 100-word
   prompt: prompt checks, router, token counts and policy), next to the encoder's forward pass
   alone (the floor; ``encode_uncached``), and the ratio routing/encoder. Two encoders: MiniLM
   (the transformer; its fp32 pass is the floor the targets name) and the static table
   distilled from it (``minilm-static``), which the bundled default router reads. Every repetition uses
   a prompt never seen before, so no embedding cache flatters the figures; the subjects are
   measured in interleaved order so that background load hits them alike. **Batched
   throughput**: ``decide_batch`` over 32 fresh prompts against the encoder's batched pass.
   Learned routers are trained once on routellm-gsm8k (cached); the in-process part also
   measures micro-batching (32 concurrent ``adecide``) and the int8 encoder with its agreement.
2. **The proxy**: real ``litellm`` proxy processes on 127.0.0.1 over the same replay
   deployments, one plain and one per plugin variant (the shipped default router; the bundled
   MiniLM router, micro-batched, fp32 and int8); requests/s and p50/p99 latency at
   concurrency 1, 8 and 32, from our asyncio + httpx client (client time included), in
   alternating rounds so that both proxies see the same background load.
3. **Memory**: resident size of each proxy after its load (the plugin's with the router loaded).
4. **The plugin's added p50** at concurrency 1 for a 20-word prompt.
5. **A cascade** (issue 14) through the proxy against always calling the top model, on replay
   deployments with set latencies: p50 / p99 latency and mean cost per request.
6. **Failover latency** (issue 16): p50 / p99 of a routed request whose first candidate's
   deployment is down (connection refused on 127.0.0.1), against the same proxy asked for the
   healthy model directly, and against LiteLLM's default retries (``failover_num_retries: null``).

Run ``.venv/bin/python benchmarks/bench.py --help`` for the knobs (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# what adaptive_router.encoders sets before torch loads (it is read once, at torch's import)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# the serving path has no disk cache unless configured: never let one flatter the figures
os.environ.pop("ADAPTIVE_ROUTER_EMBED_CACHE", None)

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from adaptive_router.cost import CostModel  # noqa: E402
from adaptive_router.domain import Fleet  # noqa: E402
from adaptive_router.engine import RoutingEngine  # noqa: E402
from adaptive_router.policy import ThresholdPolicy  # noqa: E402
from adaptive_router.routers.base import Router  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
LEARNED_ROUTERS = ("linear-probe", "mf", "sw_ranking", "hybrid-prob", "arllm-nir")
BASELINE_ROUTERS = ("cheapest", "random")
TARGET_ROUTING_RATIO = 1.2
TARGET_THROUGHPUT_SHARE = 0.80
TARGET_ADDED_P50_MS = 10.0



# -- prompts ---------------------------------------------------------------------------------------
class PromptPool:
    """Distinct English prompts of a fixed word count, never handed out twice.

    Built from GSM8K questions when the shared data is present (real text), else from a
    deterministic word list. Consecutive questions are joined and cut to ``words`` words, each
    prompt starting at a different question, so no two prompts are equal.
    """

    def __init__(self, words: int, seed: int = 0, tag: str = "") -> None:
        self.words = words
        self.tag = tag
        self.source, self._questions = _question_texts()
        rng = np.random.default_rng(seed)
        self._order = rng.permutation(len(self._questions))
        self._next = 0

    def take(self, count: int = 1) -> list[str]:
        out = []
        for _ in range(count):
            i = self._next
            self._next += 1
            start = int(self._order[i % len(self._order)])
            words: list[str] = []
            j = start
            while len(words) < self.words:
                words.extend(self._questions[j % len(self._questions)].split())
                j += 1
            text = " ".join(words[: self.words])
            if i >= len(self._order):  # pool exhausted: keep prompts distinct anyway
                text = f"{text} ({self.tag}{i})"
            out.append(text)
        return out

    def one(self) -> str:
        return self.take(1)[0]


_QUESTIONS: tuple[str, list[str]] | None = None


def _question_texts() -> tuple[str, list[str]]:
    global _QUESTIONS
    if _QUESTIONS is None:
        root = _data_root()
        path = root / "routellm" / "gsm8k" / "train.jsonl" if root else None
        if path is not None and path.exists():
            qs = [json.loads(line)["question"].replace("\n", " ") for line in path.open(encoding="utf-8")]
            _QUESTIONS = ("GSM8K train questions", qs)
        else:
            from adaptive_router.fast_encoder import sample_texts

            _QUESTIONS = ("synthetic word lists (no shared data)", list(sample_texts(40, 4000, seed=7)))
    return _QUESTIONS


def _data_root() -> Path | None:
    env = os.environ.get("ADAPTIVE_ROUTER_DATA")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


# -- statistics ------------------------------------------------------------------------------------
def pct_ms(xs: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs) * 1000.0, q)) if len(xs) else float("nan")


@dataclass
class Subject:
    """One thing whose single-prompt latency and batched throughput are measured."""

    name: str
    kind: str  # "encoder" | "router"
    single: Callable[[str], Any]
    batch: Callable[[list[str]], Any]
    note: str = ""
    encoder: str | None = None  # the sentence encoder a router reads (None: none)
    latencies: list[float] = field(default_factory=list)
    batch_rates: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "p50_ms": pct_ms(self.latencies, 50),
                "p99_ms": pct_ms(self.latencies, 99), "reps": len(self.latencies),
                "batch_prompts_per_s": float(np.median(self.batch_rates)) if self.batch_rates else None,
                "note": self.note, "encoder": self.encoder}


# -- routers ---------------------------------------------------------------------------------------
def bench_dir() -> Path:
    from adaptive_router.local_models import cache_dir

    d = Path(os.environ.get("ADAPTIVE_ROUTER_BENCH_DIR", cache_dir() / "bench"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def gsm8k_dataset() -> Any | None:
    root = _data_root()
    if root is None:
        return None
    try:
        from adaptive_router.training.loaders import load_dataset

        return load_dataset("routellm-gsm8k", data_dir=root)
    except Exception as exc:  # noqa: BLE001 - the bench reports what it could not measure
        print(f"[bench] routellm-gsm8k unavailable: {exc}", file=sys.stderr)
        return None


def learned_router(name: str, dataset: Any, checkpoints: Path) -> tuple[Router | None, str]:
    """A trained router: ``checkpoints/name`` when saved, else trained once on gsm8k and saved."""
    path = checkpoints / name
    if (path / "config.json").exists():
        try:
            return Router.from_pretrained(path), f"checkpoint {path}"
        except Exception as exc:  # noqa: BLE001
            return None, f"checkpoint {path} unreadable: {exc}"
    if dataset is None:
        return None, "no data to train on"
    try:
        from adaptive_router.training.train import train_router

        train, val, _ = dataset.splits(seed=0)
        print(f"[bench] training {name} on {dataset.name} ({len(train)} prompts), once", file=sys.stderr)
        router = train_router(name, train, val, dataset.fleet.candidate_keys, dataset.quality_score,
                              out_dir=path, seed=0, progress=False)
        return router, f"trained on {dataset.name} train split"
    except Exception as exc:  # noqa: BLE001
        return None, f"could not train: {type(exc).__name__}: {str(exc)[:120]}"


def bind(router: Router, fleet: Fleet) -> Router:
    binder = getattr(router, "bind_fleet", None)
    return binder(fleet) if binder is not None else router


def default_router(fleet: Fleet, name: str = "default") -> tuple[Router | None, str]:
    try:
        from adaptive_router.routers import load_router

        r = bind(load_router(name, fleet=fleet), fleet)
        r.restrict(fleet.candidate_keys)  # knows the fleet's candidates?
        return r, f"the bundled {name} router"
    except Exception as exc:  # noqa: BLE001
        return None, f"unavailable: {type(exc).__name__}: {str(exc)[:120]}"


# -- part 1: in-process ------------------------------------------------------------------------------
def measure_in_process(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from adaptive_router.batching import MicroBatchingEngine
    from adaptive_router.encoders import router_encoder_name, shared_encoder
    from adaptive_router.routers import load_router

    dataset = gsm8k_dataset()
    fleet = dataset.fleet if dataset is not None else Fleet.from_dict({
        "reference": "strong", "models": [
            {"name": "strong", "price": {"input_per_million": 10, "output_per_million": 30}},
            {"name": "weak", "price": {"input_per_million": 0.6, "output_per_million": 0.6}}]})
    encoder = shared_encoder("minilm")
    encoder.encode_uncached(["warm up the encoder"])
    pool = PromptPool(100, seed=1, tag="p")
    cost = CostModel(fleet)

    static = shared_encoder("minilm-static")
    static.encode_uncached(["load the static table"])
    subjects = [Subject("encoder forward pass (MiniLM, fp32)", "encoder",
                        lambda p: encoder.encode_uncached([p]), lambda ps: encoder.encode_uncached(ps),
                        encoder="minilm"),
                Subject("encoder (static, distilled from MiniLM)", "encoder",
                        lambda p: static.encode_uncached([p]), lambda ps: static.encode_uncached(ps),
                        encoder="minilm-static")]
    int8_floor = None
    if not args.skip_int8:
        from adaptive_router.fast_encoder import QuantizedSentenceEncoder

        q_encoder = QuantizedSentenceEncoder("minilm")
        q_encoder.encode_uncached(["warm up the int8 encoder"])
        int8_floor = Subject("encoder forward pass (MiniLM, int8)", "encoder",
                             lambda p: q_encoder.encode_uncached([p]), lambda ps: q_encoder.encode_uncached(ps))
        subjects.append(int8_floor)
    notes: dict[str, str] = {}
    routers: dict[str, Router] = {}
    for name in BASELINE_ROUTERS:
        routers[name] = load_router(name, fleet=fleet)
    for bundled in ("default", "default-minilm"):
        r, note = default_router(fleet, bundled)
        notes[bundled] = note
        if r is not None:
            routers[bundled] = r
    for name in args.routers:
        r, note = learned_router(name, dataset, args.checkpoints)
        notes[name] = note
        if r is not None:
            try:
                routers[name] = bind(r, fleet)
                RoutingEngine(fleet, routers[name])
            except Exception as exc:  # noqa: BLE001
                notes[name] = f"does not fit the fleet: {exc}"
                routers.pop(name, None)
    engines = {}
    for name, router in routers.items():
        engine = RoutingEngine(fleet, router, ThresholdPolicy(0.5), cost)
        engines[name] = engine
        subjects.append(Subject(f"router {name}", "router", engine.decide, engine.decide_batch,
                                note=notes.get(name, "baseline"), encoder=router_encoder_name(router)))
    cached_name = "default-minilm" if "default-minilm" in engines else next(iter(engines))
    repeated = pool.one()
    cached_engine = engines[cached_name]
    subjects.append(Subject(f"router {cached_name}, a repeated prompt (embedding cache hit)", "router",
                            lambda _p: cached_engine.decide(repeated),
                            lambda ps: cached_engine.decide_batch([repeated] * len(ps)),
                            note="the in-memory LRU of the shared encoder",
                            encoder=router_encoder_name(routers[cached_name])))
    for s in subjects[2:]:  # warm every path once (lazy imports, tokenizers)
        s.single(pool.one())

    print(f"[bench] decision latency: {args.reps} reps x {len(subjects)} subjects (100-word prompts)",
          file=sys.stderr)
    for _ in range(args.reps):
        for s in subjects:
            p = pool.one()
            t0 = time.perf_counter()
            s.single(p)
            s.latencies.append(time.perf_counter() - t0)
    for _ in range(args.batch_reps):
        for s in subjects:
            ps = pool.take(args.batch_size)
            t0 = time.perf_counter()
            s.batch(ps)
            s.batch_rates.append(len(ps) / (time.perf_counter() - t0))

    # micro-batching: 32 concurrent decisions, thread-pool engine vs micro-batching engine (it
    # shares a transformer pass, so it is measured on the MiniLM router)
    mb_name = "default-minilm" if "default-minilm" in routers else next(
        (n for n in args.routers if n in routers), None)
    micro: dict[str, Any] = {}
    if mb_name is not None:
        plain = engines[mb_name]
        batched = MicroBatchingEngine(fleet, routers[mb_name], ThresholdPolicy(0.5), cost,
                                      max_batch_size=32, max_wait_ms=args.micro_batch_ms)

        async def concurrent(engine: RoutingEngine, prompts: list[str]) -> tuple[float, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(engine.adecide(p) for p in prompts))
            return time.perf_counter() - t0, time.process_time() - c0

        rates: dict[str, list[float]] = {"thread pool": [], "micro-batched": []}
        cpu: dict[str, list[float]] = {"thread pool": [], "micro-batched": []}
        for _ in range(args.batch_reps):
            for label, eng in (("thread pool", plain), ("micro-batched", batched)):
                ps = pool.take(32)
                wall, cpu_s = asyncio.run(concurrent(eng, ps))
                rates[label].append(32 / wall)
                cpu[label].append(cpu_s * 1000 / 32)
        stats = batched.batcher.stats
        micro = {"router": mb_name, "concurrency": 32,
                 "thread_pool_prompts_per_s": float(np.median(rates["thread pool"])),
                 "micro_batched_prompts_per_s": float(np.median(rates["micro-batched"])),
                 "thread_pool_cpu_ms_per_prompt": float(np.median(cpu["thread pool"])),
                 "micro_batched_cpu_ms_per_prompt": float(np.median(cpu["micro-batched"])),
                 "mean_batch": stats.mean_batch, "largest_batch": stats.largest_batch}
        batched.router.close()  # type: ignore[attr-defined]

    # the int8 encoder: its floor was measured with the others (its own instance); routing on it
    # is measured last, because quantising switches the routers' shared encoder in place
    int8: dict[str, Any] = {}
    probe_name = "linear-probe" if "linear-probe" in routers else mb_name
    if int8_floor is not None:
        from adaptive_router.fast_encoder import decision_agreement, embedding_agreement, quantize_encoder

        agree_prompts = pool.take(200)
        fp32_emb = encoder.encode_uncached(agree_prompts)
        fp32_preds = fp32_choice = None
        if probe_name:
            fp32_preds = routers[probe_name].predict_batch(agree_prompts)
            fp32_choice = ThresholdPolicy(0.5).choose(fp32_preds, engines[probe_name].cost_matrix(agree_prompts))
        quantize_encoder(encoder)
        q_subjects = [Subject(int8_floor.name + " (again)", "encoder", int8_floor.single, int8_floor.batch)]
        if probe_name:
            eng = engines[probe_name]
            eng.decide(pool.one())
            q_subjects.append(Subject(f"router {probe_name} on the int8 encoder", "router", eng.decide,
                                      eng.decide_batch))
        for _ in range(args.reps):
            for s in q_subjects:
                p = pool.one()
                t0 = time.perf_counter()
                s.single(p)
                s.latencies.append(time.perf_counter() - t0)
        int8_emb = encoder.encode_uncached(agree_prompts)
        sims = embedding_agreement(fp32_emb, int8_emb)
        int8 = {"cosine_min": float(sims.min()), "cosine_mean": float(sims.mean()),
                "prompts": len(agree_prompts), "subjects": [s.summary() for s in q_subjects]}
        if probe_name:
            int8_preds = routers[probe_name].predict_batch(agree_prompts)
            int8_choice = ThresholdPolicy(0.5).choose(int8_preds, engines[probe_name].cost_matrix(agree_prompts))
            int8["router"] = probe_name
            int8["decision_agreement"] = float(np.mean(fp32_choice == int8_choice))
            int8["prediction_argmax_agreement"] = decision_agreement(fp32_preds, int8_preds)
            int8["max_abs_prediction_change"] = float(np.abs(fp32_preds - int8_preds).max())

    return {
        "fleet": fleet.candidate_keys,
        "prompt_source": pool.source,
        "torch_threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "subjects": [s.summary() for s in subjects],
        "unavailable": {k: v for k, v in notes.items() if not any(
            s.name == f"router {k}" for s in subjects)},
        "micro_batching": micro,
        "int8": int8,
    }


# -- part 2: the proxy ------------------------------------------------------------------------------
def write_proxy_workspace(work: Path, prompts: list[str], router: str,
                          variants: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Records, fleet and one config.yaml per variant: ``plain`` (no plugin) and each plugin
    variant (its extra plugin settings), all over the same replay deployments."""
    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        replay_deployment,
        write_proxy_config,
        write_replay_records,
    )

    write_replay_records(work / "records.jsonl", prompts, ["strong", "weak"])
    (work / "fleet.yaml").write_text(yaml.safe_dump({
        "reference": "strong", "selector": "first",
        "models": [{"name": "strong", "litellm_model": "strong-replay", "n": [1], "expected_output_tokens": 40},
                   {"name": "weak", "litellm_model": "weak-replay", "n": [1], "expected_output_tokens": 40}],
    }), encoding="utf-8")
    deployments = [replay_deployment("strong-replay", "strong", 2.5e-06, 1.0e-05),
                   replay_deployment("weak-replay", "weak", 1.5e-07, 6.0e-07)]
    paths = {"records": work / "records.jsonl", "fleet": work / "fleet.yaml"}
    for i, (name, extra) in enumerate(variants.items()):
        cfg = work / f"proxy-{i}.yaml"
        if name == "plain":
            write_proxy_config(cfg, deployments)
        else:
            write_proxy_config(cfg, deployments, plugin={
                "fleet": str(work / "fleet.yaml"), "router": router, "policy": {"threshold": 0.5},
                "traffic_log": str(work / f"traffic-{i}.jsonl"), **extra})
            paths[f"log:{name}"] = work / f"traffic-{i}.jsonl"
        paths[name] = cfg
    return paths


def proxy_router_spec(work: Path) -> tuple[str, str]:
    """The router the plugin loads: the bundled default if it fits the bench fleet, else a
    linear probe over the same encoder (same compute) saved in the workspace."""
    fleet = Fleet.from_yaml(work / "fleet.yaml")
    r, note = default_router(fleet)
    if r is not None:
        return "default", note
    from adaptive_router.routers.linear_probe import LinearProbeRouter

    probe = LinearProbeRouter(fleet.candidate_keys, reference="strong#1")
    probe.weight = np.random.default_rng(0).normal(0, 1, probe.weight.shape).astype(np.float32)
    probe.save_pretrained(work / "router")
    return str(work / "router"), f"default router {note}; a linear probe on MiniLM stands in (same compute)"


PLUGIN = "plugin"
NO_FAILOVER = "plugin, failover off"
MINILM = "plugin, MiniLM router"
NO_BATCHING = "plugin, MiniLM router without micro-batching"
INT8 = "plugin, MiniLM router, int8 encoder"


def proxy_variants(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The proxies measured side by side: plain LiteLLM, the plugin as shipped (the default router
    on the static encoder), the same without per-request failover (what LiteLLM's fallback
    handling costs), and the bundled MiniLM router with the settings that change its speed
    (micro-batching on -- its default -- or off; the opt-in int8 encoder)."""
    variants: dict[str, dict[str, Any]] = {"plain": {}, PLUGIN: {}}
    if args.compare_failover:
        variants[NO_FAILOVER] = {"failover": False}
    if args.compare_minilm:
        variants[MINILM] = {"router": "default-minilm"}
        if args.compare_batching:
            variants[NO_BATCHING] = {"router": "default-minilm", "micro_batching": False}
        if args.compare_int8:
            variants[INT8] = {"router": "default-minilm", "quantize_encoder": True}
    return variants


def measure_proxy(args: argparse.Namespace) -> dict[str, Any]:
    from contextlib import ExitStack

    from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy, LoadResult, run_load

    work = Path(tempfile.mkdtemp(prefix="adaptive-router-bench-"))
    levels = {1: args.requests_c1, 8: args.requests_c8, 32: args.requests_c32}
    variants = proxy_variants(args)
    warmup = 16
    per_variant = warmup + sum(levels.values()) + 32
    prompts = PromptPool(20, seed=2, tag="q").take(per_variant * len(variants))
    write_proxy_workspace(work, prompts, "default", variants)
    router_spec, router_note = proxy_router_spec(work)
    paths = write_proxy_workspace(work, prompts, router_spec, variants)
    env = {"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(paths["records"])}
    # each variant has its own slice of prompts: a plugin never sees a prompt twice (no
    # embedding-cache hits flatter it)
    offset = {name: i * per_variant for i, name in enumerate(variants)}
    cursor = dict.fromkeys(variants, 0)

    def payloads(which: str, count: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            i = offset[which] + cursor[which]
            cursor[which] += 1
            model = "adaptive-router" if which != "plain" else ("weak-replay" if i % 2 else "strong-replay")
            out.append({"model": model, "messages": [{"role": "user", "content": prompts[i]}]})
        return out

    results: dict[str, dict[int, list[LoadResult]]] = {name: {} for name in variants}
    rss: dict[str, int] = {}
    print(f"[bench] proxy: starting {len(variants)} proxies {list(variants)} (router: {router_note})",
          file=sys.stderr)
    with ExitStack() as stack:
        proxies = {name: stack.enter_context(LiteLLMProxy(paths[name], env=env,
                                                          log_path=work / f"{name.replace(' ', '-')}.log"))
                   for name in variants}
        for which, proxy in proxies.items():  # warm-up: a plugin loads its router here
            res = asyncio.run(run_load(proxy.base_url, proxy.master_key, payloads(which, warmup),
                                       concurrency=4, total=warmup, time_limit_s=300))
            if res.errors:
                raise RuntimeError(f"{which} proxy failed its warm-up: {res.errors[:3]}\n"
                                   f"{proxy.log_text()[-3000:]}")
        for c, total in levels.items():
            per_round = max(c, total // args.rounds)
            print(f"[bench] proxy: concurrency {c}, {args.rounds} rounds x {per_round} requests per proxy",
                  file=sys.stderr)
            for _ in range(args.rounds):
                for which, proxy in proxies.items():
                    res = asyncio.run(run_load(proxy.base_url, proxy.master_key,
                                               payloads(which, per_round), concurrency=c,
                                               total=per_round, time_limit_s=args.time_limit))
                    results[which].setdefault(c, []).append(res)
        for which, proxy in proxies.items():
            gc.collect()
            rss[which] = proxy.rss_bytes()
    log_lines = {name: sum(1 for _ in path.open(encoding="utf-8")) if path.exists() else 0
                 for key, path in paths.items() if key.startswith("log:") for name in [key[4:]]}

    out: dict[str, Any] = {"router": router_spec, "router_note": router_note, "levels": {},
                           "variants": variants, "rss_mb": {k: v / 2**20 for k, v in rss.items()},
                           "traffic_log_lines": log_lines, "requests_sent": cursor, "workspace": str(work)}
    for c in levels:
        row: dict[str, Any] = {}
        for which in variants:
            runs = results[which][c]
            lat = [x for r in runs for x in r.latencies_s]
            n = sum(r.requests for r in runs)
            wall = sum(r.wall_s for r in runs)
            row[which] = {"requests": n, "errors": sum(len(r.errors) for r in runs),
                          "rps": n / wall if wall else 0.0, "p50_ms": pct_ms(lat, 50),
                          "p99_ms": pct_ms(lat, 99),
                          "first_errors": [e for r in runs for e in r.errors][:3]}
        for which in variants:
            if which == "plain":
                continue
            row[which]["throughput_share"] = (row[which]["rps"] / row["plain"]["rps"]
                                              if row["plain"]["rps"] else 0.0)
            row[which]["added_p50_ms"] = row[which]["p50_ms"] - row["plain"]["p50_ms"]
        out["levels"][c] = row
    return out


# -- 5. a cascade against always calling the top model ----------------------------------------------
def write_cascade_workspace(work: Path, prompts: list[str], escalate_every: int,
                            weak_ms: float, strong_ms: float) -> dict[str, Path]:
    """Records, fleet, a prior router and a proxy config with the plugin's cascade on.

    The weak model's three recorded samples agree on most prompts (the cascade stops at step 1)
    and give three different answers on every ``escalate_every``-th one (step 2, the strong
    model, runs); each replay deployment answers after its set latency (``latency_ms``).
    """
    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        replay_deployment,
        write_proxy_config,
    )

    from adaptive_router.records import ModelSamples, Record, write_records
    from adaptive_router.routers.prior import PriorRouter

    records = []
    for i, prompt in enumerate(prompts):
        answers = [i, i + 1, i + 2] if i % escalate_every == 0 else [i, i, i]
        records.append(Record(id=f"c{i}", prompt=prompt, source="bench", models={
            "weak": ModelSamples(responses=[f"Working it through, the answer is {a}." for a in answers],
                                 token_num_prompt=30, token_num_responses=[40, 40, 40]),
            "strong": ModelSamples(responses=[f"Step by step, the answer is {i}."], token_num_prompt=30,
                                   token_num_responses=[40])}))
    write_records(records, work / "cascade-records.jsonl")
    (work / "cascade-fleet.yaml").write_text(yaml.safe_dump({
        "reference": "strong", "selector": "majority",
        "models": [{"name": "weak", "litellm_model": "weak-replay", "n": [3], "expected_output_tokens": 40},
                   {"name": "strong", "litellm_model": "strong-replay", "n": [1], "expected_output_tokens": 40}],
    }), encoding="utf-8")
    priors = {"weak#3": 0.6, "strong#1": 0.9}
    PriorRouter(list(priors), priors).save_pretrained(work / "cascade-router")
    deployments = [replay_deployment("strong-replay", "strong", 2.5e-06, 1.0e-05, latency_ms=strong_ms),
                   replay_deployment("weak-replay", "weak", 1.5e-07, 6.0e-07, latency_ms=weak_ms)]
    config = write_proxy_config(work / "cascade.yaml", deployments, plugin={
        "fleet": str(work / "cascade-fleet.yaml"), "router": str(work / "cascade-router"),
        "traffic_log": str(work / "cascade-traffic.jsonl"),
        "cascade": {"verifier": "agreement", "accept": 0.6, "max_steps": 2}},
        router_settings={"num_retries": 0})
    return {"config": config, "records": work / "cascade-records.jsonl"}


def measure_cascade(args: argparse.Namespace) -> dict[str, Any]:
    """p50 latency and cost per request of the proxy's cascade against always calling the top
    model, through ONE proxy (the top model is asked by its model-group name, which the plugin
    passes through), in interleaved requests at concurrency 1 so both see the same load."""
    import httpx
    from adaptive_router.integrations.litellm_plugin.proxy_process import LiteLLMProxy

    work = Path(tempfile.mkdtemp(prefix="adaptive-router-bench-cascade-"))
    warmup, n = 4, args.cascade_requests
    prompts = PromptPool(20, seed=4, tag="c").take(warmup + n)
    paths = write_cascade_workspace(work, prompts, args.cascade_escalate_every,
                                    args.cascade_weak_ms, args.cascade_strong_ms)
    env = {"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(paths["records"])}
    runs: dict[str, dict[str, list[Any]]] = {k: {"latency_s": [], "cost_usd": [], "steps": []}
                                             for k in ("cascade", "top")}
    errors: list[str] = []
    print(f"[bench] cascade: {n} interleaved requests each (weak {args.cascade_weak_ms:g} ms, "
          f"strong {args.cascade_strong_ms:g} ms)", file=sys.stderr)
    with LiteLLMProxy(paths["config"], env=env, log_path=work / "cascade-proxy.log") as proxy, \
            httpx.Client(base_url=proxy.base_url, headers=proxy.headers, timeout=120) as client:
        for i, prompt in enumerate(prompts):
            for which, model in (("cascade", "adaptive-router"), ("top", "strong-replay")):
                t0 = time.perf_counter()
                r = client.post("/v1/chat/completions",
                                json={"model": model, "messages": [{"role": "user", "content": prompt}]})
                took = time.perf_counter() - t0
                if r.status_code != 200:
                    errors.append(f"{which}: {r.status_code} {r.text[:200]}")
                    continue
                if i < warmup:
                    continue
                cost = r.headers.get("x-adaptive-router-cost-usd" if which == "cascade"
                                     else "x-litellm-response-cost")
                runs[which]["latency_s"].append(took)
                runs[which]["cost_usd"].append(float(cost) if cost else float("nan"))
                runs[which]["steps"].append(r.headers.get("x-adaptive-router-steps", "strong#1"))
    out: dict[str, Any] = {"requests": n, "escalate_every": args.cascade_escalate_every,
                           "weak_latency_ms": args.cascade_weak_ms,
                           "strong_latency_ms": args.cascade_strong_ms, "errors": errors[:5],
                           "error_count": len(errors), "workspace": str(work)}
    for which, r in runs.items():
        out[which] = {"p50_ms": pct_ms(r["latency_s"], 50), "p99_ms": pct_ms(r["latency_s"], 99),
                      "mean_cost_usd": float(np.nanmean(r["cost_usd"])) if r["cost_usd"] else float("nan"),
                      "escalated_share": (float(np.mean([">" in s for s in r["steps"]]))
                                          if which == "cascade" and r["steps"] else None),
                      "requests": len(r["latency_s"])}
    return out


def measure_failover(args: argparse.Namespace) -> dict[str, Any]:
    """p50 / p99 of a routed request whose cheapest candidate's deployment refuses connections
    (the plugin fails over to the next-best), interleaved at concurrency 1 with the healthy
    model asked by its group name through the same proxy; then a few requests through a proxy
    that keeps LiteLLM's default retries (``failover_num_retries: null``), the old behaviour.
    No cooldown is configured: every routed request meets the dead deployment."""
    import httpx
    from adaptive_router.integrations.litellm_plugin.proxy_process import (
        LiteLLMProxy,
        free_port,
        replay_deployment,
        write_proxy_config,
        write_replay_records,
    )

    work = Path(tempfile.mkdtemp(prefix="adaptive-router-bench-failover-"))
    warmup, n = 3, args.failover_requests
    prompts = PromptPool(20, seed=6, tag="f").take(warmup + n)
    write_replay_records(work / "records.jsonl", prompts, ["weak", "strong"])
    (work / "fleet.yaml").write_text(yaml.safe_dump({
        "reference": "strong", "selector": "first",
        "models": [{"name": "down", "litellm_model": "down-group", "n": [1]},
                   {"name": "weak", "litellm_model": "weak-replay", "n": [1]},
                   {"name": "strong", "litellm_model": "strong-replay", "n": [1]}]}), encoding="utf-8")
    deployments = [
        {"model_name": "down-group",
         "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "sk-bench-fake-0123456789abcdef",
                            "api_base": f"http://127.0.0.1:{free_port()}/v1"},
         "model_info": {"input_cost_per_token": 1e-08, "output_cost_per_token": 1e-08}},
        replay_deployment("weak-replay", "weak", 1.5e-07, 6.0e-07),
        replay_deployment("strong-replay", "strong", 2.5e-06, 1.0e-05)]
    env = {"ADAPTIVE_ROUTER_REPLAY_RECORDS": str(work / "records.jsonl")}
    out: dict[str, Any] = {"requests": n, "workspace": str(work)}

    def run(config: Path, label: str, count: int, with_direct: bool) -> None:
        times: dict[str, list[float]] = {"failover": [], "direct": []}
        errors: list[str] = []
        with LiteLLMProxy(config, env=env, log_path=work / f"{label}.log") as proxy, \
                httpx.Client(base_url=proxy.base_url, headers=proxy.headers, timeout=120) as client:
            for i, prompt in enumerate(prompts[:warmup + count]):
                pairs = [("failover", "adaptive-router")] + ([("direct", "weak-replay")] if with_direct else [])
                for which, model in pairs:
                    t0 = time.perf_counter()
                    r = client.post("/v1/chat/completions",
                                    json={"model": model, "messages": [{"role": "user", "content": prompt}]})
                    took = time.perf_counter() - t0
                    if r.status_code != 200 or (which == "failover" and
                                                r.headers.get("x-litellm-model-group") != "weak-replay"):
                        errors.append(f"{which}: {r.status_code} {r.text[:200]}")
                    elif i >= warmup:
                        times[which].append(took)
        out[label] = {k: {"p50_ms": pct_ms(v, 50), "p99_ms": pct_ms(v, 99), "requests": len(v)}
                      for k, v in times.items() if v}
        out[label]["errors"] = errors[:5]
        out[label]["error_count"] = len(errors)

    plugin = {"fleet": str(work / "fleet.yaml"), "router": "cheapest",
              "traffic_log": str(work / "traffic.jsonl")}
    print(f"[bench] failover: {n} requests whose first candidate is down", file=sys.stderr)
    run(write_proxy_config(work / "failover.yaml", deployments, plugin=plugin), "plugin", n, True)
    if args.failover_defaults_requests > 0:
        run(write_proxy_config(work / "defaults.yaml", deployments,
                               plugin={**plugin, "failover_num_retries": None}),
            "litellm_defaults", args.failover_defaults_requests, False)
    return out


# -- the table ---------------------------------------------------------------------------------------
def _ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


def build_table(inproc: dict[str, Any] | None, proxy: dict[str, Any] | None,
                cascade: dict[str, Any] | None = None, failover: dict[str, Any] | None = None) -> str:
    rows = ["| # | measure | adaptive-router | reference | ratio | target |",
            "|---|---|---|---|---|---|"]
    if inproc:
        floor = inproc["subjects"][0]
        fp = floor["p50_ms"]
        rows.append(f"| 1 | {floor['name']}, 1 prompt of 100 words: p50 / p99 | "
                    f"{fp:.1f} / {floor['p99_ms']:.1f} ms | (the floor) | 1.00x | |")
        own = {s.get("encoder"): s["p50_ms"] for s in inproc["subjects"] if s["kind"] == "encoder"}
        for s in inproc["subjects"][1:]:
            ratio = s["p50_ms"] / fp
            name = s["name"].removeprefix("router ")
            reference = f"fp32 encoder {fp:.1f} ms"
            if s["kind"] == "encoder":
                target = ""
            elif name in BASELINE_ROUTERS:
                target = "(reads no prompt)"
            elif "cache hit" in name:
                target = "(no forward pass)"
            else:
                target = f"<= {TARGET_ROUTING_RATIO}x: {_ok(ratio <= TARGET_ROUTING_RATIO)}"
                enc = s.get("encoder")
                if enc != "minilm" and enc in own:
                    # a router on another encoder: the MiniLM floor stays the yardstick, and its
                    # own encoder's time is shown beside it so the overhead is visible too
                    reference += f"; its own encoder ({enc}) {own[enc]:.2f} ms"
                    target += f" (+{s['p50_ms'] - own[enc]:.2f} ms over its own encoder)"
            label = s["name"] if s["kind"] == "encoder" else f"decision latency, {s['name']}"
            if s.get("encoder") and s["kind"] == "router":
                label += f" [{s['encoder']}]"
            digits = 2 if s["p50_ms"] < 2 else 1
            rows.append(f"| 1 | {label}: p50 / p99 | {s['p50_ms']:.{digits}f} / {s['p99_ms']:.{digits}f} ms | "
                        f"{reference} | {ratio:.2f}x | {target} |")
        fb = floor["batch_prompts_per_s"]
        for s in inproc["subjects"][1:]:
            if (s["name"].removeprefix("router ") in BASELINE_ROUTERS or not s["batch_prompts_per_s"]
                    or "cache hit" in s["name"]):
                continue
            label = s["name"] if s["kind"] == "encoder" else f"batched decisions, {s['name']}"
            rows.append(f"| 1 | {label}, batches of {inproc['batch_size']} prompts | {s['batch_prompts_per_s']:.0f} prompts/s | "
                        f"fp32 encoder {fb:.0f} prompts/s | {s['batch_prompts_per_s'] / fb:.2f}x | |")
        mb = inproc.get("micro_batching") or {}
        if mb:
            rows.append(f"| 1 | 32 concurrent `adecide` ({mb['router']}): micro-batched vs thread pool, "
                        f"wall throughput | {mb['micro_batched_prompts_per_s']:.0f} prompts/s (mean batch "
                        f"{mb['mean_batch']:.1f}) | {mb['thread_pool_prompts_per_s']:.0f} prompts/s | "
                        f"{mb['micro_batched_prompts_per_s'] / mb['thread_pool_prompts_per_s']:.2f}x | |")
            rows.append(f"| 1 | 32 concurrent `adecide` ({mb['router']}): CPU time per decision | "
                        f"{mb['micro_batched_cpu_ms_per_prompt']:.1f} ms | thread pool "
                        f"{mb['thread_pool_cpu_ms_per_prompt']:.1f} ms | "
                        f"{mb['micro_batched_cpu_ms_per_prompt'] / mb['thread_pool_cpu_ms_per_prompt']:.2f}x | |")
        q = inproc.get("int8") or {}
        subs = q.get("subjects", [])
        if len(subs) == 2:
            qf, qr = subs
            rows.append(f"| 1 | decision latency, {qr['name']}: p50 / p99 | {qr['p50_ms']:.1f} / "
                        f"{qr['p99_ms']:.1f} ms | int8 encoder {qf['p50_ms']:.1f} ms | "
                        f"{qr['p50_ms'] / qf['p50_ms']:.2f}x | <= {TARGET_ROUTING_RATIO}x: "
                        f"{_ok(qr['p50_ms'] / qf['p50_ms'] <= TARGET_ROUTING_RATIO)} |")
        if q.get("router"):
            rows.append(f"| 1 | int8 vs fp32 on {q['prompts']} prompts: same decision ({q['router']}) | "
                        f"{q['decision_agreement']:.1%} (embedding cosine min {q['cosine_min']:.3f}, "
                        f"mean {q['cosine_mean']:.4f}) | fp32 | | |")
    if proxy:
        plugins = [v for v in proxy["variants"] if v != "plain"]
        for c, row in proxy["levels"].items():
            pl = row["plain"]
            for which in plugins:
                pg = row[which]
                target = ""
                if int(c) == 32 and which == PLUGIN:
                    target = (f">= {TARGET_THROUGHPUT_SHARE:.0%} of plain: "
                              f"{_ok(pg['throughput_share'] >= TARGET_THROUGHPUT_SHARE)}")
                rows.append(f"| 2 | proxy, concurrency {c}, {which}: req/s, p50 / p99 | {pg['rps']:.1f} req/s, "
                            f"{pg['p50_ms']:.1f} / {pg['p99_ms']:.1f} ms ({pg['errors']} errors / "
                            f"{pg['requests']}) | plain LiteLLM {pl['rps']:.1f} req/s, {pl['p50_ms']:.1f} / "
                            f"{pl['p99_ms']:.1f} ms ({pl['errors']} errors) | {pg['throughput_share']:.2f}x | "
                            f"{target} |")
        rss = proxy["rss_mb"]
        for which in plugins:
            router = proxy["variants"][which].get("router", proxy["router"])
            rows.append(f"| 3 | proxy resident memory, {which} (router: {router}) | "
                        f"{rss[which]:.0f} MB | plain LiteLLM {rss['plain']:.0f} MB | "
                        f"{rss[which] / rss['plain']:.2f}x | |")
        c1 = proxy["levels"][1]
        for which in plugins:
            added = c1[which]["added_p50_ms"]
            target = f"<= {TARGET_ADDED_P50_MS:g} ms: {_ok(added <= TARGET_ADDED_P50_MS)}"
            rows.append(f"| 4 | {which}: added p50 at concurrency 1, 20-word prompt | {added:+.1f} ms | "
                        f"plain LiteLLM p50 {c1['plain']['p50_ms']:.1f} ms | | {target} |")
    if cascade:
        cs, top = cascade["cascade"], cascade["top"]
        rows.append(
            f"| 5 | proxy cascade weak#3 > strong#1 (agreement >= 0.6; weak {cascade['weak_latency_ms']:g} ms, "
            f"strong {cascade['strong_latency_ms']:g} ms), concurrency 1: p50 / p99, mean cost | "
            f"{cs['p50_ms']:.0f} / {cs['p99_ms']:.0f} ms, ${cs['mean_cost_usd']:.6f} "
            f"({cs['escalated_share']:.0%} escalated; {cascade['error_count']} errors) | always the top "
            f"model: {top['p50_ms']:.0f} / {top['p99_ms']:.0f} ms, ${top['mean_cost_usd']:.6f} | "
            f"p50 {cs['p50_ms'] / top['p50_ms']:.2f}x, cost {cs['mean_cost_usd'] / top['mean_cost_usd']:.2f}x | |")
    if failover and failover.get("plugin", {}).get("failover"):
        fo, direct = failover["plugin"]["failover"], failover["plugin"].get("direct", {})
        old = failover.get("litellm_defaults", {}).get("failover")
        reference = f"healthy model asked directly: p50 {direct.get('p50_ms', float('nan')):.0f} ms"
        if old:
            reference += f"; LiteLLM's default retries: p50 {old['p50_ms']:.0f} ms ({old['requests']} requests)"
        ratio = f"{fo['p50_ms'] / direct['p50_ms']:.2f}x" if direct.get("p50_ms") else ""
        rows.append(
            f"| 6 | proxy, first candidate down (connection refused), concurrency 1: failover p50 / p99 | "
            f"{fo['p50_ms']:.0f} / {fo['p99_ms']:.0f} ms ({fo['requests']} requests, "
            f"{failover['plugin']['error_count']} errors) | {reference} | {ratio} | "
            f"<= 1 s (one connect attempt): {_ok(fo['p50_ms'] <= 1000)} |")
    return "\n".join(rows)


def machine_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                             "platform": platform.platform()}
    try:
        facts["load_average_1m_at_end"] = os.getloadavg()[0]
    except OSError:
        pass
    for pkg in ("torch", "litellm", "sentence_transformers"):
        try:
            facts[pkg] = __import__(pkg).__version__
        except Exception:  # noqa: BLE001
            pass
    return facts


def write_docs(table: str, data: dict[str, Any], out_md: Path, out_json: Path, command: str) -> None:
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    inproc = data.get("in_process") or {}
    proxy = data.get("proxy") or {}
    notes = []
    if inproc:
        notes.append(f"- Prompts: {inproc['prompt_source']}; every repetition a prompt never seen before "
                     f"(no cache hits); torch threads: {inproc['torch_threads']}.")
        for name, why in (inproc.get("unavailable") or {}).items():
            notes.append(f"- Router `{name}` not measured: {why}.")
    if proxy:
        logged = ", ".join(f"{name}: {proxy['traffic_log_lines'].get(name, 0)} traffic-log lines for "
                           f"{proxy['requests_sent'][name]} requests" for name in proxy["variants"] if name != "plain")
        notes.append(f"- Proxy router: {proxy['router_note']}. Replay deployments on 127.0.0.1 (no "
                     f"network), the same for every proxy; plugin settings {proxy['variants']}; {logged}.")
    failover = data.get("failover") or {}
    if failover:
        notes.append("- Failover (6): one proxy whose cheapest fleet model is served by a deployment "
                     "on a 127.0.0.1 port nothing listens on, over the same replay deployments; no "
                     "cooldown configured, so every routed request meets the dead deployment first; "
                     "the plugin's `failover_num_retries: 0` against LiteLLM's default retries "
                     "(`failover_num_retries: null`, a second proxy).")
    cascade = data.get("cascade") or {}
    if cascade:
        notes.append(f"- Cascade (5): one proxy with `cascade: {{verifier: agreement, accept: 0.6}}` over replay "
                     f"deployments with set latencies; one prompt in {cascade['escalate_every']} has weak samples that "
                     f"disagree; {cascade['requests']} requests each, the cascade and the top model "
                     f"(asked by its group name through the same proxy) interleaved; cost from "
                     f"`x-adaptive-router-cost-usd` (all steps) and `x-litellm-response-cost`.")
    m = data["machine"]
    notes.append(f"- Machine: {m.get('cpus')} CPUs, load average {m.get('load_average_1m_at_end', '?'):.1f} "
                 f"at the end (the CPUs are shared; ratios come from interleaved measurements of one run).")
    text = (f"# Benchmark: routing overhead and proxy throughput\n\n"
            f"Produced by `{command}` on {data['finished']} (UTC). Raw figures: "
            f"[`{out_json.name}`]({out_json.name}).\n\n{table}\n\n" + "\n".join(notes) + "\n")
    out_md.write_text(text, encoding="utf-8")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few repetitions (a smoke run, not figures)")
    ap.add_argument("--routers", default=",".join(LEARNED_ROUTERS),
                    help="learned routers to measure (trained once on routellm-gsm8k when no checkpoint)")
    ap.add_argument("--checkpoints", type=Path, default=None,
                    help="folder with <router>/ checkpoints (default: the cache's bench folder)")
    ap.add_argument("--reps", type=int, default=30, help="single-prompt repetitions per subject")
    ap.add_argument("--batch-reps", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--micro-batch-ms", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=5, help="alternating plain/plugin rounds per level")
    ap.add_argument("--requests-c1", type=int, default=100)
    ap.add_argument("--requests-c8", type=int, default=600)
    ap.add_argument("--requests-c32", type=int, default=1600)
    ap.add_argument("--time-limit", type=float, default=90.0, help="seconds per load round at most")
    ap.add_argument("--compare-failover", action=argparse.BooleanOptionalAction, default=True,
                    help="also run a plugin proxy without per-request fallbacks (failover: false)")
    ap.add_argument("--compare-minilm", action=argparse.BooleanOptionalAction, default=True,
                    help="also run proxies with the bundled MiniLM router (default-minilm)")
    ap.add_argument("--compare-batching", action=argparse.BooleanOptionalAction, default=False,
                    help="also run a plugin proxy with micro-batching off (micro_batching: false)")
    ap.add_argument("--compare-int8", action=argparse.BooleanOptionalAction, default=True,
                    help="also run a plugin proxy with the int8 encoder (quantize_encoder: true)")
    ap.add_argument("--skip-proxy", action="store_true")
    ap.add_argument("--skip-cascade", action="store_true", help="no cascade row (5)")
    ap.add_argument("--cascade-requests", type=int, default=60,
                    help="requests each for the cascade and the always-top baseline")
    ap.add_argument("--cascade-escalate-every", type=int, default=3,
                    help="every k-th prompt's weak samples disagree (the cascade escalates)")
    ap.add_argument("--cascade-weak-ms", type=float, default=150.0, help="the weak replay model's latency")
    ap.add_argument("--cascade-strong-ms", type=float, default=600.0, help="the strong replay model's latency")
    ap.add_argument("--skip-failover", action="store_true", help="no failover row (6)")
    ap.add_argument("--failover-requests", type=int, default=30,
                    help="routed requests whose first candidate is down (and as many direct ones)")
    ap.add_argument("--failover-defaults-requests", type=int, default=3,
                    help="requests through a proxy with LiteLLM's default retries (4-7 s each)")
    ap.add_argument("--skip-in-process", action="store_true")
    ap.add_argument("--skip-int8", action="store_true")
    ap.add_argument("--out", type=Path, default=DOCS / "bench.md")
    ap.add_argument("--json", type=Path, default=DOCS / "bench.json")
    args = ap.parse_args(argv)
    args.routers = [r for r in args.routers.split(",") if r]
    if args.quick:
        args.reps, args.batch_reps, args.rounds = 8, 1, 1
        args.requests_c1, args.requests_c8, args.requests_c32 = 10, 40, 64
        args.cascade_requests = 12
        args.failover_requests, args.failover_defaults_requests = 8, 1
    args.checkpoints = args.checkpoints or bench_dir() / "checkpoints"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "make bench" if argv is None and len(sys.argv) == 1 else "python benchmarks/bench.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    started = time.time()
    inproc = None if args.skip_in_process else measure_in_process(args)
    proxy = None if args.skip_proxy else measure_proxy(args)
    cascade = None if args.skip_cascade else measure_cascade(args)
    failover = None if args.skip_failover else measure_failover(args)
    table = build_table(inproc, proxy, cascade, failover)
    data = {"command": command, "started": started,
            "finished": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "duration_s": time.time() - started, "machine": machine_facts(),
            "in_process": inproc, "proxy": proxy, "cascade": cascade, "failover": failover,
            "table": table}
    print(table)
    write_docs(table, data, args.out, args.json, command)
    print(f"\nwritten: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}, "
          f"{args.json.name} ({data['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
