"""Training BEST-Route's multi-head (model, n) router.

Labels (BEST-Route, Ding et al., ICML 2025, section 3): for every prompt and candidate
(model, n), *bootstrap best-of-n on the recorded samples*: draw n of the model's recorded
samples, keep the one the proxy reward model scores highest (the ``selector_score`` stored in
the records, e.g. ``proxy_rm``; a uniformly random one when there is none), read its oracle
quality, and compare it with a recorded sample of the reference model. Averaged over
``n_boot`` draws this is the soft label ``P[q(model, n) >= q(reference) - t]`` (``label="match"``)
or the expected kept quality (``label="quality"``).

The network: the prompt's frozen MiniLM embedding (optionally with the extra prompt features
of :class:`~adaptive_router.routers.query_features.QueryFeatures`: domain probabilities, the
per-domain and nearest-neighbour quality priors), one shared hidden layer, one sigmoid head per
candidate, trained with the sum over heads of binary cross-entropy against the soft labels (the
multi-head loss), Adam, early stopping on the validation loss. ``n_seeds`` > 1 trains that many
networks from different seeds and averages their logits (an ensemble).
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
#: ``selector_score`` value meaning "majority vote over extracted final answers"
#: (self-consistency); the records then carry, per sample, the score :data:`ANSWER_ID_SCORE`.
MAJORITY = "majority"
#: Per-sample integer id of the normalised extracted final answer (-1: none extracted); samples
#: with the same id gave the same answer. Written by :func:`add_answer_ids`.
ANSWER_ID_SCORE = "answer_id"


def add_answer_ids(records: Sequence[Record]) -> None:
    """Store every sample's extracted, normalised final answer as an integer id (in place), so
    that majority-vote best-of-n can be bootstrapped without re-parsing responses."""
    from adaptive_router.grading import extract_answer, normalise_answer

    for rec in records:
        for ms in rec.models.values():
            ids: dict[str, int] = {}
            answers = [normalise_answer(extract_answer(t)) for t in ms.responses]
            ms.scores[ANSWER_ID_SCORE] = [float(ids.setdefault(a, len(ids))) if a is not None else -1.0
                                          for a in answers]


def majority_pick(answer_ids: np.ndarray, rng: np.random.Generator) -> int:
    """Index of the sample majority vote keeps among ``answer_ids`` (one draw of n samples in
    draw order): the earliest sample of the most frequent extracted answer (as
    :func:`adaptive_router.best_of_n.select_best`); the first sample when none has an answer."""
    valid = answer_ids >= 0
    if not valid.any():
        return 0
    vals, counts = np.unique(answer_ids[valid], return_counts=True)
    top = set(vals[counts == counts.max()].tolist())
    return int(next(i for i, a in enumerate(answer_ids) if a in top))


def expected_majority_of_n(quality: np.ndarray, answer_ids: np.ndarray, n: int) -> float:
    """Exact expected quality of majority vote over ``n`` of the recorded samples drawn without
    replacement in random order (enumerates the subsets; ties between equally frequent answers
    go to each with equal chance, which is what "the earliest" means under a random order)."""
    from itertools import combinations

    q = np.asarray(quality, np.float64)
    ids = np.asarray(answer_ids, np.float64)
    if n <= 1 or len(q) <= 1:
        return float(q.mean())
    n = min(n, len(q))
    total = 0.0
    subsets = list(combinations(range(len(q)), n))
    for sub in subsets:
        sub_ids = ids[list(sub)]
        valid = sub_ids >= 0
        if not valid.any():
            total += q[list(sub)].mean()
            continue
        vals, counts = np.unique(sub_ids[valid], return_counts=True)
        top = vals[counts == counts.max()]
        total += np.mean([q[[i for i in sub if ids[i] == a]].mean() for a in top])
    return total / len(subsets)


def _samples(record: Record, model: str, quality_score: str,
             selector_score: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    ms = record.samples(model)
    q = np.asarray(ms.score(quality_score), dtype=np.float64)
    if q.size == 0:
        raise DataError(f"record {record.id!r} has no {quality_score!r} scores for {model}")
    sel = None
    name = ANSWER_ID_SCORE if selector_score == MAJORITY else selector_score
    if name is not None and name in ms.scores:
        sel = np.asarray(ms.scores[name], dtype=np.float64)
    elif selector_score == MAJORITY:
        raise DataError(f"majority vote needs the {ANSWER_ID_SCORE!r} score; run add_answer_ids first")
    return q, sel


def bootstrap_best_of_n(q: np.ndarray, sel: np.ndarray | None, n: int, n_boot: int,
                        rng: np.random.Generator, majority: bool = False) -> np.ndarray:
    """``n_boot`` draws of the quality a selector keeps from ``n`` recorded samples.

    Samples are drawn without replacement when there are at least ``n`` of them (a real call's
    n samples are distinct draws), with replacement otherwise. Ties of the selector are broken
    uniformly at random; without a selector the kept sample is a uniformly random one. With
    ``majority``, ``sel`` holds answer ids and the kept sample is :func:`majority_pick`'s.
    """
    s = q.size
    if n == 1 or sel is None:
        return q[rng.integers(0, s, size=n_boot)]
    if n <= s:
        idx = np.argsort(rng.random((n_boot, s)), axis=1)[:, :n]
    else:
        idx = rng.integers(0, s, size=(n_boot, n))
    if majority:
        return np.array([q[row[majority_pick(sel[row], rng)]] for row in idx])
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
            kept = bootstrap_best_of_n(q, sel, c.n, n_boot, rng, majority=selector_score == MAJORITY)
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


def fit_ensemble(x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
                 n_seeds: int = 1, seed: int = 0, **kw: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """:func:`fit_multihead` for ``n_seeds`` seeds; with more than one the weights are stacked
    along a leading member axis (see :func:`~adaptive_router.routers.best_route.mlp_forward`)."""
    if n_seeds <= 1:
        return fit_multihead(x, y, x_val, y_val, seed=seed, **kw)
    members = [fit_multihead(x, y, x_val, y_val, seed=seed + 1000 * i, **kw) for i in range(n_seeds)]
    weights = {k: np.stack([m[0][k] for m in members]) for k in members[0][0]}
    log = {**members[0][1], "members": n_seeds,
           "best_val_loss": float(np.mean([m[1]["best_val_loss"] for m in members])),
           "epochs_run": [m[1]["epochs_run"] for m in members]}
    return weights, log


def candidate_quality(records: Sequence[Record], candidate_keys: Sequence[str], quality_score: str,
                      selector_score: str | None) -> np.ndarray:
    """(R, K) exact expected best-of-n quality (the neighbour bank's and domain prior's table)."""
    from adaptive_router.training.evaluate import quality_matrix

    if selector_score == MAJORITY:
        cands = [Candidate.from_key(k) for k in candidate_keys]
        return np.array([[expected_majority_of_n(*_samples(r, c.model, quality_score, MAJORITY), c.n)
                          for c in cands] for r in records])
    return quality_matrix(list(records), list(candidate_keys), quality_score, selector_score=selector_score)


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
    features: Sequence[str] = ("embedding",),
    neighbours: int = 25,
    n_seeds: int = 1,
    **_: Any,
) -> BestRouteRouter:
    """Fit a :class:`BestRouteRouter` on records (see the module docstring).

    ``reference`` defaults to the n = 1 candidate with the best mean kept quality on ``train``;
    ``selector_score="auto"`` uses ``proxy_rm`` when every record carries it. ``features``: the
    :class:`~adaptive_router.routers.query_features.QueryFeatures` blocks the trunk reads
    (``neighbours`` = their k); ``n_seeds``: ensemble size.
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
    emb = embed_prompts([r.prompt for r in train], encoder, progress=progress)
    emb_val = embed_prompts([r.prompt for r in val], encoder, progress=progress) if val else None
    router = BestRouteRouter(keys, reference=reference if label == "match" else None,
                             relaxation=relaxation, label=label, encoder=encoder, hidden=hidden)
    if tuple(features) != ("embedding",):
        from adaptive_router.training.trainers.query_features import fit_query_features

        qual = candidate_quality(train, keys, quality_score, selector_score)
        router.features = fit_query_features(train, emb.astype(np.float64), qual, features,
                                             neighbours=neighbours, seed=seed)
    x = router.trunk_input(emb, exclude_self=True)
    x_val = router.trunk_input(emb_val) if val else None
    weights, log = fit_ensemble(x, y, x_val, y_val, n_seeds=n_seeds, hidden=hidden, epochs=epochs,
                                lr=lr, weight_decay=weight_decay, seed=seed, progress=progress,
                                desc="best-route")
    report = {"label": label, "reference": reference, "relaxation": relaxation,
              "selector_score": selector_score, "n_boot": n_boot, "features": list(features),
              "neighbours": neighbours, "n_seeds": n_seeds,
              "label_means": dict(zip(keys, np.round(y.mean(axis=0), 4).tolist(), strict=True)),
              "n_train": len(train), "n_val": len(val), **{k: v for k, v in log.items()
                                                           if k != "val_loss_history"}}
    router.report = report
    router.weights = {k: np.asarray(v, np.float64) for k, v in weights.items()}
    router.training_log = log  # type: ignore[attr-defined]
    return router
