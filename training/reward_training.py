"""Training the proxy reward model with a pairwise (Bradley-Terry) loss.

BEST-Route trains its proxy reward model on pairs of responses to the same prompt ranked by an
oracle score: for each prompt, pool every recorded sample of every model, and take the samples
with the maximum, median and minimum oracle score; the pairs are (max > mid) and (mid > min),
each kept only when the oracle strictly prefers its first element. With a binary oracle
(correct / incorrect) one of the two pairs is a tie, so ``extra_pairs`` adds that many further
random (better, worse) pairs per prompt (documented in the report; 0 = BEST-Route's pairs only).

The loss is Bradley-Terry's: ``-log sigmoid(r(chosen) - r(rejected))``. The model is
:class:`~adaptive_router.reward_models.ProxyRewardModel` (frozen MiniLM features, an MLP head).
Prompts are split into training and held-out prompts (no prompt in both), and the report gives
the pairwise accuracy on the held-out prompts' pairs, next to a length baseline (the longer
response wins) so the number can be judged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.errors import DataError
from adaptive_router.records import Record
from adaptive_router.reward_models import ProxyRewardModel


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    kind: str  # "max>mid", "mid>min" or "extra"


def pooled_samples(record: Record, quality_score: str) -> list[tuple[str, float]]:
    """Every (response, oracle score) of every model of one record."""
    out = []
    for ms in record.models.values():
        if not ms.responses or quality_score not in ms.scores:
            continue
        out += [(t, float(s)) for t, s in zip(ms.responses, ms.scores[quality_score], strict=True)
                if t and t.strip()]
    return out


def build_pairs(records: Sequence[Record], quality_score: str, extra_pairs: int = 4,
                seed: int = 0) -> list[Pair]:
    """BEST-Route's (max > mid), (mid > min) pairs per prompt, plus ``extra_pairs`` random ones."""
    rng = np.random.default_rng(seed)
    pairs: list[Pair] = []
    for rec in records:
        pool = pooled_samples(rec, quality_score)
        if len(pool) < 2:
            continue
        order = sorted(range(len(pool)), key=lambda i: (pool[i][1], rng.random()))
        lo, mid, hi = order[0], order[len(order) // 2], order[-1]
        seen = set()
        for a, b, kind in ((hi, mid, "max>mid"), (mid, lo, "mid>min")):
            if pool[a][1] > pool[b][1]:
                pairs.append(Pair(rec.prompt, pool[a][0], pool[b][0], kind))
                seen.add((a, b))
        if extra_pairs:
            scores = np.array([s for _, s in pool])
            better = [(i, j) for i in range(len(pool)) for j in range(len(pool))
                      if scores[i] > scores[j] and (i, j) not in seen]
            if better:
                pick = rng.choice(len(better), size=min(extra_pairs, len(better)), replace=False)
                pairs += [Pair(rec.prompt, pool[better[k][0]][0], pool[better[k][1]][0], "extra")
                          for k in pick]
    return pairs


def split_prompts(records: Sequence[Record], held_out: float, seed: int) -> tuple[list[Record], list[Record]]:
    """Records split by prompt (deterministic): (training, held-out)."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(records))
    cut = int(round(len(records) * (1 - held_out)))
    return [records[i] for i in idx[:cut]], [records[i] for i in idx[cut:]]


def _pair_features(model: ProxyRewardModel, pairs: Sequence[Pair],
                   progress: bool) -> tuple[np.ndarray, np.ndarray]:
    prompts = [p.prompt for p in pairs] * 2
    responses = [p.chosen for p in pairs] + [p.rejected for p in pairs]
    feats = []
    step = 512
    chunks = range(0, len(prompts), step)
    if progress and len(prompts) > step:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc="reward features", unit="chunk")
    for i in chunks:
        feats.append(model.features(prompts[i:i + step], responses[i:i + step]))
    x = np.concatenate(feats) if feats else np.zeros((0, 1), np.float32)
    return x[: len(pairs)], x[len(pairs):]


def pairwise_accuracy(model: ProxyRewardModel, xc: np.ndarray, xr: np.ndarray) -> float:
    """Share of pairs whose chosen response scores strictly higher (ties count half)."""
    if len(xc) == 0:
        return float("nan")
    d = model.score_features(xc) - model.score_features(xr)
    return float(np.mean((d > 0) + 0.5 * (d == 0)))


def length_baseline(pairs: Sequence[Pair]) -> float:
    """Pairwise accuracy of "the longer response is better" (a reference point)."""
    if not pairs:
        return float("nan")
    return float(np.mean([(len(p.chosen) > len(p.rejected)) + 0.5 * (len(p.chosen) == len(p.rejected))
                          for p in pairs]))


def train_reward_model(
    records: Sequence[Record],
    quality_score: str,
    out_dir: str | Path | None = None,
    encoder: str = "minilm",
    hidden: int = 64,
    extra_pairs: int = 4,
    held_out: float = 0.2,
    epochs: int = 200,
    lr: float = 3e-3,
    weight_decay: float = 1e-3,
    patience: int = 20,
    seed: int = 0,
    progress: bool = True,
    eval_records: Sequence[Record] | None = None,
) -> ProxyRewardModel:
    """Fit a :class:`ProxyRewardModel` with the Bradley-Terry loss; save it when ``out_dir``.

    ``eval_records`` (optional) are used as the held-out prompts instead of a split of
    ``records`` (e.g. a data set's test split). 10% of the training prompts serve for early
    stopping. The report is in ``model.metrics`` (and in ``config.json``).
    """
    import torch
    from adaptive_router.training.trainers.best_route import single_thread
    from adaptive_router.training.trainers.common import EarlyStopping, limit_cpu_threads

    from adaptive_router.encoders import training_cache_path

    limit_cpu_threads()
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    records = list(records)
    if eval_records is None:
        fit_recs, test_recs = split_prompts(records, held_out, seed)
    else:
        fit_recs, test_recs = records, list(eval_records)
    fit_recs, stop_recs = split_prompts(fit_recs, 0.1, seed + 1)
    train_pairs = build_pairs(fit_recs, quality_score, extra_pairs, seed)
    stop_pairs = build_pairs(stop_recs, quality_score, extra_pairs, seed + 1)
    test_pairs = build_pairs(test_recs, quality_score, extra_pairs, seed + 2)
    if len(train_pairs) < 10:
        raise DataError(
            f"only {len(train_pairs)} training pairs from {len(fit_recs)} prompts: the reward "
            f"model needs records with several responses per prompt whose {quality_score!r} "
            "scores differ (e.g. `adaptive-router data build --n 8 ...`)"
        )
    model = ProxyRewardModel(encoder=encoder, hidden=hidden, disk_cache=training_cache_path())
    tc, tr = _pair_features(model, train_pairs, progress)
    sc, sr = _pair_features(model, stop_pairs, progress)
    hc, hr = _pair_features(model, test_pairs, progress)
    net = torch.nn.Sequential(torch.nn.Linear(tc.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Dropout(0.1), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    xc, xr = torch.tensor(tc), torch.tensor(tr)
    vc, vr = torch.tensor(sc), torch.tensor(sr)

    def bt_loss(c: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return -torch.nn.functional.logsigmoid(net(c) - net(r)).mean()

    stop = EarlyStopping(patience=patience)
    steps = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="train-reward", unit="epoch")
    with single_thread():
        for epoch in steps:
            net.train()
            opt.zero_grad()
            loss = bt_loss(xc, xr)
            loss.backward()
            opt.step()
            net.eval()
            with torch.no_grad():
                val = bt_loss(vc, vr).item() if len(vc) else loss.item()
            if stop.update(val, epoch, lambda: {k: v.clone() for k, v in net.state_dict().items()}):
                break
    if stop.best_state is not None:
        net.load_state_dict(stop.best_state)
    sd = net.state_dict()
    model.weights = {"w1": sd["0.weight"].numpy().astype(np.float64),
                     "b1": sd["0.bias"].numpy().astype(np.float64),
                     "w2": sd["3.weight"].numpy().astype(np.float64),
                     "b2": sd["3.bias"].numpy().astype(np.float64)}
    kinds = {k: sum(p.kind == k for p in test_pairs) for k in ("max>mid", "mid>min", "extra")}
    best_route_idx = np.array([p.kind != "extra" for p in test_pairs])
    model.metrics = {
        "quality_score": quality_score,
        "loss": "bradley-terry",
        "pairs": "best-route (max>mid, mid>min)" + (f" + {extra_pairs} random per prompt" if extra_pairs else ""),
        "train_prompts": len(fit_recs), "heldout_prompts": len(test_recs),
        "train_pairs": len(train_pairs), "heldout_pairs": len(test_pairs), "heldout_pair_kinds": kinds,
        "train_pairwise_accuracy": pairwise_accuracy(model, tc, tr),
        "heldout_pairwise_accuracy": pairwise_accuracy(model, hc, hr),
        "heldout_pairwise_accuracy_best_route_pairs": pairwise_accuracy(
            model, hc[best_route_idx], hr[best_route_idx]) if best_route_idx.any() else float("nan"),
        "heldout_length_baseline_accuracy": length_baseline(test_pairs),
        "epochs_run": len(stop.history), "best_epoch": stop.best_step,
        "seconds": round(time.perf_counter() - t0, 1), "encoder": encoder, "seed": seed,
    }
    if out_dir is not None:
        model.save_pretrained(out_dir)
    return model


def score_records(records: Sequence[Record], reward_model: Any, name: str = "proxy_rm",
                  progress: bool = True) -> list[Record]:
    """Store the reward model's score of every recorded response as score ``name`` (in place;
    returns the records), so that ``quality_matrix(..., selector_score=name)`` and the BEST-Route
    labels evaluate best-of-n with this reward model."""
    jobs = [(rec, m) for rec in records for m, ms in rec.models.items() if ms.responses]
    prompts = [rec.prompt for rec, m in jobs for _ in rec.models[m].responses]
    texts = [t for rec, m in jobs for t in rec.models[m].responses]
    scores: list[np.ndarray] = []
    step = 1024
    chunks = range(0, len(texts), step)
    if progress and len(texts) > step:
        from tqdm.auto import tqdm

        chunks = tqdm(chunks, desc=f"scoring ({name})", unit="chunk")
    for i in chunks:
        scores.append(reward_model.score(prompts[i:i + step], texts[i:i + step]))
    flat = np.concatenate(scores) if scores else np.zeros(0)
    k = 0
    for rec, m in jobs:
        ms = rec.models[m]
        n = len(ms.responses)
        ms.scores[name] = [float(v) for v in flat[k:k + n]]
        k += n
    return list(records)
