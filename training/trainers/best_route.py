"""Training BEST-Route's multi-head (model, n) router.

Labels (BEST-Route, Ding et al., ICML 2025, section 3): for every prompt and candidate
(model, n), *bootstrap best-of-n on the recorded samples*: draw n of the model's recorded
samples, keep the one the proxy reward model scores highest (the ``selector_score`` stored in
the records, e.g. ``proxy_rm``; a uniformly random one when there is none), read its oracle
quality, and compare it with a recorded sample of the reference model. Averaged over
``n_boot`` draws this is the soft label ``P[q(model, n) >= q(reference) - t]`` (``label="match"``)
or the expected kept quality (``label="quality"``).

The network: the prompt's frozen MiniLM embedding, one shared hidden layer, one sigmoid head
per candidate, trained with the sum over heads of binary cross-entropy against the soft labels
(the multi-head loss), Adam, early stopping on the validation loss.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from adaptive_router.domain import Candidate
from adaptive_router.errors import DataError
from adaptive_router.records import Record
from adaptive_router.routers.best_route import BestRouteRouter

_EPS = 1e-9


def _samples(record: Record, model: str, quality_score: str,
             selector_score: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    ms = record.samples(model)
    q = np.asarray(ms.score(quality_score), dtype=np.float64)
    if q.size == 0:
        raise DataError(f"record {record.id!r} has no {quality_score!r} scores for {model}")
    sel = None
    if selector_score is not None and selector_score in ms.scores:
        sel = np.asarray(ms.scores[selector_score], dtype=np.float64)
    return q, sel


def bootstrap_best_of_n(q: np.ndarray, sel: np.ndarray | None, n: int, n_boot: int,
                        rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` draws of the quality a selector keeps from ``n`` recorded samples.

    Samples are drawn without replacement when there are at least ``n`` of them (a real call's
    n samples are distinct draws), with replacement otherwise. Ties of the selector are broken
    uniformly at random; without a selector the kept sample is a uniformly random one.
    """
    s = q.size
    if n == 1 or sel is None:
        return q[rng.integers(0, s, size=n_boot)]
    if n <= s:
        idx = np.argsort(rng.random((n_boot, s)), axis=1)[:, :n]
    else:
        idx = rng.integers(0, s, size=(n_boot, n))
    jitter = rng.random(idx.shape) * 1e-9
    kept = np.argmax(sel[idx] + jitter, axis=1)
    return q[idx[np.arange(n_boot), kept]]


def bootstrap_labels(
    records: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    reference: str | None = None,
    selector_score: str | None = None,
    relaxation: float = 0.0,
    label: str = "match",
    n_boot: int = 64,
    seed: int = 0,
) -> np.ndarray:
    """(R, K) BEST-Route labels from bootstrapped best-of-n (see the module docstring).

    ``reference`` is a candidate key whose model's samples are the comparison (ignored for
    ``label="quality"``).
    """
    rng = np.random.default_rng(seed)
    keys = list(candidate_keys)
    cands = [Candidate.from_key(k) for k in keys]
    ref_model = Candidate.from_key(reference).model if reference else None
    if label == "match" and ref_model is None:
        raise DataError("match labels need a reference candidate")
    y = np.zeros((len(records), len(keys)))
    for i, rec in enumerate(records):
        ref_draws = None
        if label == "match":
            rq, _ = _samples(rec, ref_model, quality_score, None)
            ref_draws = rq[rng.integers(0, rq.size, size=n_boot)]
        for j, c in enumerate(cands):
            q, sel = _samples(rec, c.model, quality_score, selector_score)
            kept = bootstrap_best_of_n(q, sel, c.n, n_boot, rng)
            if label == "match":
                y[i, j] = np.mean(kept >= ref_draws - relaxation - _EPS)
            else:
                y[i, j] = np.mean(kept)
    return y


def default_selector_score(records: Sequence[Record], candidate_keys: Sequence[str],
                           name: str = "proxy_rm") -> str | None:
    """``name`` when every model of every record carries it (the proxy RM was run), else None."""
    models = {Candidate.from_key(k).model for k in candidate_keys}
    ok = all(name in r.models[m].scores for r in records for m in models if m in r.models)
    return name if records and ok else None


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread: these networks are tiny, and on a busy shared CPU two spinning
    OpenMP threads make each step ~100x slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_multihead(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
    hidden: int = 128, epochs: int = 400, lr: float = 1e-3, weight_decay: float = 1e-4,
    dropout: float = 0.1, patience: int = 30, seed: int = 0, progress: bool = True,
    desc: str = "training",
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A one-hidden-layer network with K sigmoid heads, fitted full-batch with the summed
    binary cross-entropy against soft labels in [0, 1]. Returns numpy weights and a log."""
    import torch
    from adaptive_router.training.trainers.common import EarlyStopping

    torch.manual_seed(seed)
    xt = torch.tensor(x, dtype=torch.float32)
    yt = torch.tensor(y, dtype=torch.float32)
    has_val = x_val is not None and y_val is not None and len(x_val) > 0
    if has_val:
        xv = torch.tensor(x_val, dtype=torch.float32)
        yv = torch.tensor(y_val, dtype=torch.float32)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                              torch.nn.Dropout(dropout), torch.nn.Linear(hidden, y.shape[1]))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    stop = EarlyStopping(patience=patience)
    steps = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc=desc, unit="epoch", leave=False)

    def state() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in net.state_dict().items()}

    train_loss = float("nan")
    with single_thread():
        for epoch in steps:
            net.train()
            opt.zero_grad()
            loss = loss_fn(net(xt), yt).sum(dim=1).mean()  # multi-head: sum over heads
            loss.backward()
            opt.step()
            train_loss = loss.item()
            net.eval()
            with torch.no_grad():
                val = float(loss_fn(net(xv), yv).sum(dim=1).mean()) if has_val else train_loss
            if stop.update(val, epoch, state):
                break
    if stop.best_state is not None:
        net.load_state_dict(stop.best_state)
    sd = net.state_dict()
    weights = {"w1": sd["0.weight"].numpy().astype(np.float64), "b1": sd["0.bias"].numpy().astype(np.float64),
               "w2": sd["3.weight"].numpy().astype(np.float64), "b2": sd["3.bias"].numpy().astype(np.float64)}
    log = {"epochs_run": len(stop.history), "best_epoch": stop.best_step,
           "best_val_loss": stop.best, "final_train_loss": train_loss,
           "val_loss_history": stop.history}
    return weights, log


def fit_best_route(
    train: Sequence[Record],
    val: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    seed: int = 0,
    progress: bool = True,
    reference: str | None = None,
    selector_score: str | None = "auto",
    relaxation: float = 0.0,
    label: str = "match",
    n_boot: int = 64,
    hidden: int = 128,
    epochs: int = 400,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    encoder: str = "minilm",
    **_: Any,
) -> BestRouteRouter:
    """Fit a :class:`BestRouteRouter` on records (see the module docstring).

    ``reference`` defaults to the n = 1 candidate with the best mean kept quality on ``train``;
    ``selector_score="auto"`` uses ``proxy_rm`` when every record carries it.
    """
    from adaptive_router.training.trainers.common import embed_prompts

    keys = list(candidate_keys)
    if not train:
        raise DataError("BEST-Route needs training records")
    if selector_score == "auto":
        selector_score = default_selector_score(list(train) + list(val), keys)
    if reference is None and label == "match":
        qual = bootstrap_labels(train, keys, quality_score, label="quality", n_boot=16, seed=seed)
        singles = [j for j, k in enumerate(keys) if Candidate.from_key(k).n == 1]
        reference = keys[max(singles, key=lambda j: qual[:, j].mean())]
    elif reference is not None and reference not in keys:
        reference = Candidate(model=reference, n=1).key
    kw = dict(reference=reference, selector_score=selector_score, relaxation=relaxation,
              label=label, n_boot=n_boot)
    y = bootstrap_labels(train, keys, quality_score, seed=seed, **kw)
    y_val = bootstrap_labels(val, keys, quality_score, seed=seed + 1, **kw) if val else None
    x = embed_prompts([r.prompt for r in train], encoder, progress=progress)
    x_val = embed_prompts([r.prompt for r in val], encoder, progress=progress) if val else None
    weights, log = fit_multihead(x, y, x_val, y_val, hidden=hidden, epochs=epochs, lr=lr,
                                 weight_decay=weight_decay, seed=seed, progress=progress,
                                 desc="best-route")
    report = {"label": label, "reference": reference, "relaxation": relaxation,
              "selector_score": selector_score, "n_boot": n_boot,
              "label_means": dict(zip(keys, np.round(y.mean(axis=0), 4).tolist(), strict=True)),
              "n_train": len(train), "n_val": len(val), **{k: v for k, v in log.items()
                                                           if k != "val_loss_history"}}
    router = BestRouteRouter(keys, reference=reference if label == "match" else None,
                             relaxation=relaxation, label=label, encoder=encoder, hidden=hidden,
                             report=report)
    router.set_tensors(weights)
    router.training_log = log  # type: ignore[attr-defined]
    return router
