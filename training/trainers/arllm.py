"""Training AR-LLM's HDP and NIR routers.

1. **Domains**: the records' ``task`` when they carry one (llmrouter's 14 tasks), else k-means
   clusters of the prompt embeddings (``n_domains``).
2. **Query vector**: a domain classifier (multinomial logistic regression on the MiniLM
   embedding) and a difficulty regressor (logistic regression on the embedding, target
   ``1 - mean quality over the candidates``).
3. **Model vectors**: every candidate's accuracy per domain on the training records, shrunk
   towards its overall accuracy with ``smoothing`` pseudo-counts (small domains are noisy).
4. **HDP**: ``gamma`` chosen on a grid to minimise the squared error of the HDP score against
   the training qualities. **NIR**: a small MLP over (query vector, model vector, interactions,
   candidate identity) trained with binary cross-entropy against the candidates' qualities.

Candidate qualities are the bootstrapped best-of-n qualities of
:func:`~adaptive_router.training.trainers.best_route.bootstrap_labels` (``label="quality"``),
so (model, n) candidates with n > 1 get their own model vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from adaptive_router.training.trainers.best_route import bootstrap_labels, default_selector_score

from adaptive_router.errors import DataError
from adaptive_router.records import Record
from adaptive_router.routers.arllm import HDPRouter, NIRRouter


def kmeans(x: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Cluster labels of ``x`` (k-means++ initialisation, Lloyd iterations)."""
    rng = np.random.default_rng(seed)
    k = min(k, len(x))
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d2 = np.min(((x[:, None, :] - np.array(centres)[None]) ** 2).sum(-1), axis=1)
        centres.append(x[rng.choice(len(x), p=d2 / d2.sum() if d2.sum() > 0 else None)])
    c = np.array(centres)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iters):
        new = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        for j in range(k):
            if np.any(labels == j):
                c[j] = x[labels == j].mean(axis=0)
    return labels


def assign_domains(records: Sequence[Record], x: np.ndarray, n_domains: int,
                   seed: int) -> tuple[np.ndarray, list[str], str]:
    """Domain ids of the records, the domain names, and where they came from."""
    tasks = [r.task for r in records]
    if all(tasks) and len(set(tasks)) >= 2:
        names = sorted(set(tasks))  # type: ignore[type-var]
        return np.array([names.index(t) for t in tasks]), names, "task"
    labels = kmeans(x, n_domains, seed=seed)
    names = [f"cluster{j}" for j in range(int(labels.max()) + 1)]
    return labels, names, "kmeans"


def _fit_linear(x: np.ndarray, target: np.ndarray, kind: str, weight_decay: float, epochs: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial (kind='softmax', integer targets) or binary-logistic (kind='sigmoid', soft
    targets in [0, 1]) regression, full-batch L-BFGS."""
    import torch

    torch.manual_seed(seed)
    xt = torch.tensor(x, dtype=torch.float32)
    out = int(target.max()) + 1 if kind == "softmax" else 1
    lin = torch.nn.Linear(x.shape[1], out)
    opt = torch.optim.LBFGS(lin.parameters(), lr=0.5, max_iter=epochs)
    if kind == "softmax":
        yt = torch.tensor(target, dtype=torch.long)
        lf = torch.nn.CrossEntropyLoss()
    else:
        yt = torch.tensor(target, dtype=torch.float32)[:, None]
        lf = torch.nn.BCEWithLogitsLoss()

    def closure() -> Any:
        opt.zero_grad()
        loss = lf(lin(xt), yt) + weight_decay * (lin.weight ** 2).sum()
        loss.backward()
        return loss

    from adaptive_router.training.trainers.best_route import single_thread

    with single_thread():
        opt.step(closure)
    w = lin.weight.detach().numpy().astype(np.float64)
    b = lin.bias.detach().numpy().astype(np.float64)
    return (w, b) if kind == "softmax" else (w[0], b)


def _query_model(train: Sequence[Record], candidate_keys: Sequence[str], quality_score: str,
                 seed: int, n_domains: int, smoothing: float, weight_decay: float, n_boot: int,
                 selector_score: str | None, encoder: str, progress: bool) -> dict[str, Any]:
    from adaptive_router.training.trainers.common import embed_prompts, limit_cpu_threads

    limit_cpu_threads()
    keys = list(candidate_keys)
    x = embed_prompts([r.prompt for r in train], encoder, progress=progress).astype(np.float64)
    q = bootstrap_labels(train, keys, quality_score, selector_score=selector_score,
                         label="quality", n_boot=n_boot, seed=seed)
    dom, names, source = assign_domains(train, x, n_domains, seed)
    d_count = len(names)
    strength = q.mean(axis=0)
    acc = np.zeros((len(keys), d_count))
    for j in range(d_count):
        m = dom == j
        acc[:, j] = (q[m].sum(axis=0) + smoothing * strength) / (m.sum() + smoothing)
    if d_count > 1:
        dom_w, dom_b = _fit_linear(x, dom, "softmax", weight_decay, 200, seed)
    else:
        dom_w, dom_b = np.zeros((1, x.shape[1])), np.zeros(1)
    difficulty = 1.0 - q.mean(axis=1)
    diff_w, diff_b = _fit_linear(x, difficulty, "sigmoid", weight_decay, 200, seed)
    weights = {"dom_w": dom_w, "dom_b": dom_b, "diff_w": diff_w, "diff_b": diff_b,
               "model_acc": acc, "model_strength": strength}
    return {"x": x, "q": q, "weights": weights, "domains": names, "domain_source": source}


def _common_kw(train: Sequence[Record], val: Sequence[Record], candidate_keys: Sequence[str],
               selector_score: str | None) -> str | None:
    if not train:
        raise DataError("AR-LLM needs training records")
    if selector_score == "auto":
        return default_selector_score(list(train) + list(val), list(candidate_keys))
    return selector_score


def fit_arllm_hdp(
    train: Sequence[Record], val: Sequence[Record], candidate_keys: Sequence[str], quality_score: str,
    seed: int = 0, progress: bool = True, n_domains: int = 8, smoothing: float = 5.0,
    weight_decay: float = 1e-3, n_boot: int = 64, selector_score: str | None = "auto",
    gamma_grid: Sequence[float] = tuple(np.round(np.linspace(0, 2, 21), 2)),
    encoder: str = "minilm", **_: Any,
) -> HDPRouter:
    """Fit AR-LLM's HDP router (query vector, model vectors, difficulty penalty ``gamma``)."""
    selector_score = _common_kw(train, val, candidate_keys, selector_score)
    qm = _query_model(train, candidate_keys, quality_score, seed, n_domains, smoothing,
                      weight_decay, n_boot, selector_score, encoder, progress)
    router = HDPRouter(list(candidate_keys), domains=qm["domains"], encoder=encoder)
    router.set_tensors(qm["weights"])
    p, d = router.query_vector(qm["x"])
    errors = {}
    for g in gamma_grid:
        router.gamma = float(g)
        errors[float(g)] = float(np.mean((router.scores_from_query(p, d) - qm["q"]) ** 2))
    router.gamma = min(errors, key=errors.get)
    router.report = {"domains": qm["domains"], "domain_source": qm["domain_source"],
                     "gamma": router.gamma, "train_mse": errors[router.gamma],
                     "selector_score": selector_score, "n_train": len(train)}
    return router


def fit_arllm_nir(
    train: Sequence[Record], val: Sequence[Record], candidate_keys: Sequence[str], quality_score: str,
    seed: int = 0, progress: bool = True, n_domains: int = 8, smoothing: float = 5.0,
    weight_decay: float = 1e-3, n_boot: int = 64, selector_score: str | None = "auto",
    hidden: int = 64, epochs: int = 600, lr: float = 3e-3, encoder: str = "minilm",
    pair_features: Sequence[str] = (), neighbours: int = 25, n_seeds: int = 1, **_: Any,
) -> NIRRouter:
    """Fit AR-LLM's NIR router: the query model as for HDP, then the interaction network.

    ``pair_features`` (e.g. ``("neighbours",)``): per-candidate prior blocks of
    :class:`~adaptive_router.routers.query_features.QueryFeatures` added to every pair
    (``neighbours`` = their k); ``n_seeds``: ensemble size.
    """
    from adaptive_router.training.trainers.best_route import candidate_quality, fit_ensemble
    from adaptive_router.training.trainers.common import embed_prompts

    selector_score = _common_kw(train, val, candidate_keys, selector_score)
    keys = list(candidate_keys)
    qm = _query_model(train, keys, quality_score, seed, n_domains, smoothing, weight_decay,
                      n_boot, selector_score, encoder, progress)
    router = NIRRouter(keys, domains=qm["domains"], hidden=hidden, encoder=encoder)
    w = qm["weights"]
    router.weights = {k: np.asarray(v, np.float64) for k, v in w.items()}
    if pair_features:
        from adaptive_router.training.trainers.query_features import fit_query_features

        qual = candidate_quality(train, keys, quality_score, selector_score)
        router.pair_features = fit_query_features(train, qm["x"], qual, pair_features,
                                                  neighbours=neighbours, n_domains=n_domains,
                                                  smoothing=smoothing, seed=seed)
    z, y = router.pair_inputs(qm["x"], exclude_self=True), qm["q"].reshape(-1, 1)
    z_val = y_val = None
    if val:
        xv = embed_prompts([r.prompt for r in val], encoder, progress=progress).astype(np.float64)
        qv = bootstrap_labels(val, keys, quality_score, selector_score=selector_score,
                              label="quality", n_boot=n_boot, seed=seed + 1)
        z_val, y_val = router.pair_inputs(xv), qv.reshape(-1, 1)
    net, log = fit_ensemble(z, y, z_val, y_val, n_seeds=n_seeds, hidden=hidden, epochs=epochs,
                            lr=lr, weight_decay=1e-4, seed=seed, progress=progress, desc="arllm-nir")
    router.weights.update({f"nir_{k}": np.asarray(v, np.float64) for k, v in net.items()})
    router.report = {"domains": qm["domains"], "domain_source": qm["domain_source"],
                     "selector_score": selector_score, "n_train": len(train), "n_val": len(val),
                     "pair_features": list(pair_features), "neighbours": neighbours,
                     "n_seeds": n_seeds, **{k: v for k, v in log.items() if k != "val_loss_history"}}
    return router
