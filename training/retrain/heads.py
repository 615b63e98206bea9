"""Learning a quality head for every fleet candidate from logged bandit feedback.

A traffic log observes, per request, only the served candidate's quality, and the serving
policy chose that candidate for a reason: the default sends easy-looking prompts to the cheap
model, so the cheap model's logged mean is flattering. Three things keep the heads honest:

1. **Propensity weighting (IPS).** Each head is a logistic regression fitted on the requests
   that served its candidate, each weighted by 1 / its logged propensity: the weighted loss is
   an unbiased estimate of the loss over *all* logged prompts (Horvitz-Thompson), so the head
   describes the candidate on the whole traffic, not on the prompts the old router sent it.
   Each candidate's logged mean is the self-normalised (SNIPS) version, with Kish's effective
   sample size saying how many requests it really rests on.
2. **Shrinkage toward the candidate's logged mean.** The per-prompt weights are penalised toward
   a prior pattern, and the intercept toward the logit of the candidate's shrunk logged mean, so
   a candidate seen 30 times gets its own level but little per-prompt detail.
3. **Shrinkage toward the base's role prior.** The prior pattern is the pooled head of the
   candidate's role (the default router's roles: the fleet's reference model plays *strong*,
   the rest *weak*), fitted the same way on every request of that role and itself shrunk toward
   one head pooled over every request (what is hard for every model); the candidate's mean is
   shrunk toward its role's mean by ``kappa`` pseudo-requests. A candidate the base router
   predicts itself starts at the base's own prediction instead, and one the previous
   ``fleet-heads`` router already learned starts at that head. A model added to the fleet later
   falls in a role and is learned the same way as soon as exploration serves it.

The penalty strength is chosen from a grid by the propensity-weighted log loss on a validation
slice of the train traffic (split by prompt). Penalties are in *pseudo-requests* (a log-loss
curvature of 1/4 per request), and the losses are sums, so the prior fades as data accumulates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from adaptive_router.training.retrain.bandit import LoggedBandit, split_by_prompt, unique_prompts

from adaptive_router.routers.base import Router
from adaptive_router.routers.feedback_tuned import logit, sigmoid
from adaptive_router.routers.fleet_heads import FleetHeadsRouter, softmax

#: Fewest tagged prompts (and distinct tags) for the task tags to become features.
MIN_TAGGED = 20
#: Newton steps per head (the penalised logistic loss is strictly convex: a handful suffice).
NEWTON_STEPS = 25


@dataclass
class HeadSummary:
    """What the report shows for one candidate's learned head."""

    candidate: str
    role: str
    prior: str
    served: int
    explored: int
    mean_propensity: float
    logged_mean: float  # SNIPS: the candidate's mean quality over all logged prompts
    logged_se: float
    effective_sample_size: float
    shrunk_mean: float  # the intercept's prior level, after shrinkage toward the role
    predicted_mean: float  # the learned head's mean prediction on the train prompts


def snips_mean(labels: np.ndarray, weights: np.ndarray) -> tuple[float, float, float]:
    """Self-normalised weighted mean, its delta-method standard error, and Kish's ESS."""
    if labels.size == 0:
        return float("nan"), float("inf"), 0.0
    total = float(weights.sum())
    mean = float(np.sum(weights * labels) / total)
    se = float(np.sqrt(np.sum(weights**2 * (labels - mean) ** 2)) / total)
    ess = float(total**2 / np.sum(weights**2))
    return mean, se, ess


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, beta0: np.ndarray,
                 precision: np.ndarray, steps: int = NEWTON_STEPS) -> np.ndarray:
    """argmin sum_i w_i BCE(y_i, sigmoid(x_i . b)) + 1/2 sum_j precision_j (b_j - beta0_j)^2.

    Damped Newton (halving the step until the objective falls); ``y`` may be soft labels in
    [0, 1]. With no rows the prior ``beta0`` is the answer.
    """
    beta = beta0.astype(np.float64).copy()
    if x.shape[0] == 0:
        return beta

    def objective(b: np.ndarray) -> float:
        z = x @ b
        return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) + 0.5 * np.sum(precision * (b - beta0) ** 2))

    f = objective(beta)
    for _ in range(steps):
        p = sigmoid(x @ beta)
        grad = x.T @ (w * (p - y)) + precision * (beta - beta0)
        hess = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(precision)
        step = np.linalg.solve(hess, grad)
        t, improved = 1.0, False
        while t > 1e-4:
            cand = beta - t * step
            fc = objective(cand)
            if fc <= f:
                improved = True
                break
            t /= 2
        if not improved:
            break
        done = f - fc < 1e-9 * (1 + abs(f))
        beta, f = cand, fc
        if done:
            break
    return beta


def fit_task_classifier(emb: np.ndarray, tags: Sequence[str | None], l2: float = 1e-2,
                        steps: int = 400, lr: float = 0.05, counts: np.ndarray | None = None,
                        max_rows: int | None = None, seed: int = 0, rows: np.ndarray | None = None,
                        ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """A softmax classifier of the log's task tags on the embedding: (tasks, weight, bias).

    Serving sees only the prompt, so the tag becomes a feature through its predicted
    probabilities (full-batch Adam on the penalised cross-entropy; convex). The embedding is
    standardised per dimension while fitting (unit-norm sentence embeddings have components of
    ~0.05, which a small step size would take thousands of steps to separate); the scaling is
    folded back into the returned weights. ``counts`` (default 1) says how many logged requests
    each row stands for: a repeated (prompt, tag) is one weighted row, the same loss as its
    repeats, so the cost grows with distinct prompts, not with traffic. ``max_rows``: with more
    tagged rows than this, a seeded uniform sample of them (with their counts) is fitted -- an
    unbiased estimate of the same loss, at a cost that stops growing with the log. ``rows``:
    the row of ``emb`` of each tag (default: the same row), so that no copy is made first."""
    counts = np.ones(len(tags)) if counts is None else np.asarray(counts, dtype=np.float64)
    idx = [i for i, t in enumerate(tags) if t]
    tasks = sorted({tags[i] for i in idx})  # type: ignore[misc]
    c = counts[idx]
    total = float(c.sum())
    if total < MIN_TAGGED or len(tasks) < 2:
        return [], np.zeros((0, emb.shape[1])), np.zeros(0)
    if max_rows is not None and len(idx) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(idx), size=max_rows, replace=False))
        idx = [idx[i] for i in keep]
        c = counts[idx]
        total = float(c.sum())
    e = np.asarray(emb[idx] if rows is None else emb[np.asarray(rows)[idx]], dtype=np.float64)
    mean = (e * c[:, None]).sum(axis=0) / total
    dev = e - mean
    scale = np.maximum(np.sqrt(((dev * dev) * c[:, None]).sum(axis=0) / total), 1e-8)
    x = dev / scale
    y = np.zeros((len(idx), len(tasks)))
    y[np.arange(len(idx)), [tasks.index(tags[i]) for i in idx]] = 1.0  # type: ignore[arg-type]
    w, b = np.zeros((len(tasks), x.shape[1])), np.zeros(len(tasks))
    mw, sw, mb, sb = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    for t in range(1, steps + 1):
        g = (softmax(x @ w.T + b) - y) * c[:, None] / total
        gw, gb = g.T @ x + l2 * w, g.sum(axis=0)
        for p, gr, m, s in ((w, gw, mw, sw), (b, gb, mb, sb)):
            m *= 0.9
            m += 0.1 * gr
            s *= 0.999
            s += 0.001 * gr**2
            p -= lr * (m / (1 - 0.9**t)) / (np.sqrt(s / (1 - 0.999**t)) + 1e-8)
    return tasks, w / scale, b - (w / scale) @ mean


#: Rows of embeddings widened to float64 at a time (features, means, covariance).
CHUNK = 8192
#: The task-tag classifier is fitted on at most this many distinct (prompt, tag) pairs (a
#: seeded sample beyond): its full-batch Adam costs rows x dim x tags x 400 steps.
TASK_MAX_ROWS = 20_000
#: Up to this many distinct prompts the principal components come from an SVD of the weighted
#: rows (exactly the SVD of every logged row); beyond, from the eigenvectors of the weighted
#: covariance accumulated in chunks, so memory stays at dim x dim.
SVD_MAX_ROWS = 50_000


def _principal_components(emb: np.ndarray, k: int, counts: np.ndarray | None = None,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` principal directions of the embeddings and their mean; ``counts`` says how
    many logged requests each (distinct-prompt) row stands for."""
    counts = np.ones(emb.shape[0]) if counts is None else np.asarray(counts, dtype=np.float64)
    total = float(counts.sum())
    mean = np.zeros(emb.shape[1])
    for i in range(0, emb.shape[0], CHUNK):
        mean += (emb[i:i + CHUNK] * counts[i:i + CHUNK, None]).sum(axis=0)
    mean = mean / total if total else mean
    k = max(0, min(k, int(total) - 1, emb.shape[1]))
    if k == 0:
        return np.zeros((emb.shape[1], 0)), mean
    if emb.shape[0] <= SVD_MAX_ROWS:
        _, _, vt = np.linalg.svd((emb - mean) * np.sqrt(counts)[:, None], full_matrices=False)
        vecs = vt[:k].T
    else:
        cov = np.zeros((emb.shape[1], emb.shape[1]))
        for i in range(0, emb.shape[0], CHUNK):
            d = emb[i:i + CHUNK] - mean
            cov += (d * counts[i:i + CHUNK, None]).T @ d
        _, v = np.linalg.eigh(cov)
        vecs = v[:, ::-1][:, :k]
    if vecs.shape[1] < k:  # fewer distinct prompts than components: the rest carry nothing
        vecs = np.concatenate([vecs, np.zeros((emb.shape[1], k - vecs.shape[1]))], axis=1)
    return vecs, mean


def _raw_features(router: FleetHeadsRouter, prompts: Sequence[str], emb: np.ndarray) -> np.ndarray:
    """``router.raw_features`` a chunk of prompts at a time, so that the float64 copy of the
    embeddings (and the base router's batch) is one chunk, not all of them."""
    parts = [router.raw_features(prompts[i:i + CHUNK], np.asarray(emb[i:i + CHUNK], dtype=np.float64))
             for i in range(0, len(prompts), CHUNK)]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, router.num_features))


def _weighted_std(values: np.ndarray, counts: np.ndarray, mean: np.ndarray) -> np.ndarray:
    d = values - mean
    return np.sqrt(((d * d) * counts[:, None]).sum(axis=0) / counts.sum())


def _new_pipeline(keys: Sequence[str], base: Router | None, prompts: Sequence[str], emb: np.ndarray,
                  tags: Sequence[str | None], encoder: str, components: int,
                  roles: Mapping[str, str], counts: np.ndarray | None = None,
                  tag_rows: tuple[np.ndarray, list[str | None], np.ndarray] | None = None,
                  ) -> tuple[FleetHeadsRouter, np.ndarray]:
    """The feature pipeline fitted on these prompts (heads still at zero). ``prompts`` may be
    the distinct prompts, with ``counts`` logged requests each; ``tag_rows`` is then the
    distinct (prompt index, tag) pairs and their counts (default: ``tags`` per prompt). Also
    returns the prompts' raw features (the heads are fitted on them)."""
    counts = np.ones(len(prompts)) if counts is None else counts
    columns: list[str] = []
    if base is not None:
        z = logit(base.predict_batch(prompts))
        z_std = _weighted_std(z, counts, (z * counts[:, None]).sum(axis=0) / counts.sum())
        columns = [k for j, k in enumerate(base.candidate_keys) if z_std[j] > 1e-3]
    rows, row_tags, row_counts = tag_rows if tag_rows is not None else (np.arange(len(prompts)), list(tags), counts)
    tasks, tw, tb = fit_task_classifier(emb, row_tags, counts=row_counts, max_rows=TASK_MAX_ROWS,
                                        rows=rows)
    proj, proj_mean = _principal_components(emb, components, counts)
    router = FleetHeadsRouter(keys, base=base if columns else None, base_columns=columns,
                              encoder=encoder, tasks=tasks, roles=dict(roles), dim=emb.shape[1],
                              components=proj.shape[1], projection=proj, projection_mean=proj_mean,
                              task_weight=tw, task_bias=tb)
    raw = _raw_features(router, prompts, emb)
    router.feature_mean = (raw * counts[:, None]).sum(axis=0) / counts.sum()
    scale = _weighted_std(raw, counts, router.feature_mean)
    router.feature_scale = np.where(scale > 1e-8, scale, 1.0)
    return router, raw


def _embed_distinct(enc: Any, prompts: Sequence[str], batch: int = 4096, progress: bool = False) -> np.ndarray:
    """Embeddings of distinct prompts, in batches through the encoder (and its disk cache), into
    one float32 array (what the encoders return; widened to float64 chunk by chunk where used):
    peak memory is the result plus one batch."""
    out = None
    starts = range(0, len(prompts), batch)
    if progress and len(prompts) > batch:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="embedding prompts", unit="batch")
    for i in starts:
        part = np.asarray(enc.encode(list(prompts[i:i + batch])), dtype=np.float32)
        if out is None:
            out = np.empty((len(prompts), part.shape[1]), dtype=np.float32)
        out[i:i + part.shape[0]] = part
    return out if out is not None else np.asarray(enc.encode([]), dtype=np.float32)


@dataclass
class _Design:
    """The heads' design matrix, one row per distinct prompt (``xu``: intercept, then the
    standardised features) and each logged request's row (``pid``).

    A request's features are its prompt's, so the weighted logistic loss over requests equals
    the loss over distinct prompts with summed weights and weight-averaged (soft) labels:
    sum_i w_i (log(1 + e^z) - y_i z) = W (log(1 + e^z) - Y z), W = sum_i w_i, Y = sum_i w_i y_i / W.
    Fitting on that costs per distinct prompt, not per request, and no (requests x features)
    matrix is ever built."""

    xu: np.ndarray
    pid: np.ndarray

    def subset(self, idx: np.ndarray) -> _Design:
        return _Design(self.xu, self.pid[np.asarray(idx, dtype=int)])

    def fit(self, rows: np.ndarray | None, y: np.ndarray, w: np.ndarray, beta0: np.ndarray,
            precision: np.ndarray) -> np.ndarray:
        """:func:`fit_logistic` on the requests ``rows`` (all when None), aggregated by prompt."""
        pid = self.pid if rows is None else self.pid[rows]
        total = np.bincount(pid, weights=w, minlength=len(self.xu))
        keep = np.flatnonzero(total > 0)
        soft = np.bincount(pid, weights=w * y, minlength=len(self.xu))[keep] / total[keep]
        return fit_logistic(self.xu[keep], soft, total[keep], beta0, precision)

    def logits(self, beta: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Each request's logit under the head of ``actions`` (its served candidate)."""
        return (self.xu @ beta.T)[self.pid, actions]


@dataclass
class _Priors:
    beta0: np.ndarray  # (K, F + 1): intercept first
    kinds: list[str]
    role_heads: dict[str, np.ndarray]  # each role's pooled head (what a new candidate starts at)
    shrunk_means: np.ndarray


def _head_priors(router: FleetHeadsRouter, x: _Design, bandit: LoggedBandit, w: np.ndarray,
                 lam: tuple[float, float], kappa: float, previous: FleetHeadsRouter | None) -> _Priors:
    """Each candidate's prior head: the previous router's head, the base's own prediction, or
    its role's pooled head with the intercept moved to the candidate's shrunk logged mean. Role
    heads are in turn shrunk toward one pooled head over every request: three levels, so that a
    role seen only through exploration (the reference model) still inherits which prompts are
    hard for every model."""
    keys = bandit.candidate_keys
    k, f1 = len(keys), x.xu.shape[1]
    prec = _precision(router.feature_names(), lam, kappa)
    overall, _, _ = snips_mean(bandit.labels, w)
    overall = float(np.clip(overall, 0.02, 0.98))
    # the top level: one head over every logged request (what is hard for every model)
    top = np.zeros(f1)
    top[0] = logit(np.array(overall))
    top = x.fit(None, bandit.labels, _normalised(w), top, prec)
    role_of = [router.roles.get(key, "any") for key in keys]
    in_role: dict[str, np.ndarray] = {}
    role_head: dict[str, np.ndarray] = {}
    role_mean: dict[str, float] = {}
    for role in sorted(set(role_of)):
        members = [j for j, r in enumerate(role_of) if r == role]
        rows = np.flatnonzero(np.isin(bandit.actions, members))
        in_role[role] = rows
        m, _, ess = snips_mean(bandit.labels[rows], w[rows])
        mu = overall if rows.size == 0 else (ess * m + kappa * overall) / (ess + kappa)
        role_mean[role] = float(np.clip(mu, 0.02, 0.98))
        beta0 = top.copy()
        beta0[0] += float(logit(np.array(role_mean[role])) - logit(np.array(overall)))
        role_head[role] = x.fit(rows, bandit.labels[rows], _normalised(w[rows]), beta0, prec)
    beta = np.zeros((k, f1))
    kinds: list[str] = []
    shrunk = np.zeros(k)
    names = router.feature_names()
    for j, key in enumerate(keys):
        rows = np.flatnonzero(bandit.actions == j)
        m, _, ess = snips_mean(bandit.labels[rows], w[rows])
        role = role_of[j]
        mu = role_mean[role] if rows.size == 0 else (ess * m + kappa * role_mean[role]) / (ess + kappa)
        shrunk[j] = float(np.clip(mu, 0.02, 0.98))
        if previous is not None and key in previous.candidate_keys:
            i = previous.candidate_keys.index(key)
            beta[j, 0], beta[j, 1:] = previous.bias[i], previous.theta[i]
            kinds.append(f"previous head (generation {previous.generation})")
        elif f"base:{key}" in names:
            c = names.index(f"base:{key}")  # the base's own logit: theta = scale, c = mean
            beta[j, 0], beta[j, 1 + c] = router.feature_mean[c], router.feature_scale[c]
            kinds.append("the base router's own prediction")
        else:
            beta[j] = role_head[role]
            beta[j, 0] += float(logit(np.array(shrunk[j])) - logit(np.array(role_mean[role])))
            kinds.append(f"role '{role}' pooled head")
    return _Priors(beta0=beta, kinds=kinds, shrunk_means=shrunk, role_heads=role_head)


def _normalised(w: np.ndarray) -> np.ndarray:
    """Weights rescaled to mean 1, so that penalties count in pseudo-requests."""
    return w / w.mean() if w.size else w


def _precision(names: Sequence[str], lam: tuple[float, float], kappa: float) -> np.ndarray:
    """Penalty per coefficient (intercept first): ``kappa`` pseudo-requests on the intercept,
    ``lam[1]`` on the task-tag weights (a candidate's per-task level is worth learning from few
    requests), ``lam[0]`` on every other weight."""
    per = [lam[1] if n.startswith("task:") else lam[0] for n in names]
    return 0.25 * np.array([kappa, *per], dtype=np.float64)


def _fit_heads(x: _Design, bandit: LoggedBandit, w: np.ndarray, priors: _Priors,
               prec: np.ndarray) -> np.ndarray:
    out = priors.beta0.copy()
    for j in range(len(bandit.candidate_keys)):
        rows = np.flatnonzero(bandit.actions == j)
        out[j] = x.fit(rows, bandit.labels[rows], _normalised(w[rows]), priors.beta0[j], prec)
    return out


def _weighted_log_loss(beta: np.ndarray, x: _Design, bandit: LoggedBandit, w: np.ndarray) -> float:
    p = np.clip(sigmoid(x.logits(beta, bandit.actions)), 1e-6, 1 - 1e-6)
    y = bandit.labels
    return float(np.sum(w * -(y * np.log(p) + (1 - y) * np.log(1 - p))) / np.sum(w))


def learn_heads(
    bandit: LoggedBandit,
    base: Router | None,
    roles: Mapping[str, str],
    tasks: Sequence[str | None] | None = None,
    previous: FleetHeadsRouter | None = None,
    encoder: str = "minilm",
    components: int = 32,
    lambdas: Sequence[float] = (4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0),
    task_lambdas: Sequence[float] = (1.0, 4.0, 16.0, 64.0),
    kappa: float = 10.0,
    val_share: float = 0.2,
    seed: int = 0,
    progress: bool = False,
) -> tuple[FleetHeadsRouter, dict[str, Any]]:
    """A :class:`FleetHeadsRouter` over ``bandit.candidate_keys`` learned from the logged triples.

    ``base`` is the unbound base router (its informative columns become features; None for
    ``--base none``), ``roles`` maps each candidate to its role, ``tasks`` the task tag of each
    logged request (or None). With ``previous`` (a fleet-heads router being retrained) its feature
    pipeline is kept and its heads are the priors of the candidates it knows.
    """
    from adaptive_router.encoders import shared_encoder, training_cache_path

    keys = bandit.candidate_keys
    tags = list(tasks) if tasks is not None else [None] * len(bandit)
    enc = shared_encoder(previous.encoder if previous is not None else encoder,
                         disk_cache=training_cache_path())
    # every distinct prompt is embedded and featurised once; rows index into them
    distinct, inverse = unique_prompts(bandit.prompts)
    counts = np.bincount(inverse, minlength=len(distinct)).astype(np.float64)
    emb = _embed_distinct(enc, distinct, progress=progress)
    raw = None
    if previous is not None:
        router = FleetHeadsRouter(
            keys, base=previous.base, base_columns=previous.base_columns, encoder=previous.encoder,
            tasks=previous.tasks, roles={**previous.roles, **roles}, generation=previous.generation + 1,
            dim=previous.dim, components=previous.components, projection=previous.projection,
            projection_mean=previous.projection_mean, task_weight=previous.task_weight,
            task_bias=previous.task_bias, feature_mean=previous.feature_mean,
            feature_scale=previous.feature_scale)
    else:
        pairs: dict[tuple[int, str | None], int] = {}
        for p, t in zip(inverse.tolist(), tags, strict=True):
            pairs[(p, t)] = pairs.get((p, t), 0) + 1
        tag_rows = (np.array([p for p, _ in pairs], dtype=np.int64), [t for _, t in pairs],
                    np.array(list(pairs.values()), dtype=np.float64))
        router, raw = _new_pipeline(keys, base, distinct, emb, tags, encoder, components, roles,
                                    counts=counts, tag_rows=tag_rows)
    router.use_encoder(enc)
    phi = router.standardise(raw if raw is not None else _raw_features(router, distinct, emb))
    x = _Design(np.concatenate([np.ones((len(distinct), 1)), phi], axis=1), inverse)
    del phi, emb
    w = 1.0 / bandit.propensities
    fit_idx, val_idx = split_by_prompt(bandit.prompts, val_share, seed=seed + 1)
    names = router.feature_names()
    grid = [(float(a), float(b)) for a in lambdas for b in (task_lambdas if router.tasks else [a])]
    search: dict[tuple[float, float], float] = {}
    prior_val = float("nan")
    if len(fit_idx) >= 20 and len(val_idx) >= 10:
        fit, val = bandit.subset(fit_idx), bandit.subset(val_idx)
        x_fit, x_val = x.subset(fit_idx), x.subset(val_idx)
        from tqdm.auto import tqdm

        for lam in tqdm(grid, desc="choosing the heads' penalties", unit="setting", disable=not progress):
            pri = _head_priors(router, x_fit, fit, w[fit_idx], lam, kappa, previous)
            beta = _fit_heads(x_fit, fit, w[fit_idx], pri, _precision(names, lam, kappa))
            search[lam] = _weighted_log_loss(beta, x_val, val, w[val_idx])
        best = min(search, key=lambda v: search[v])
        prior_val = _weighted_log_loss(
            _head_priors(router, x_fit, fit, w[fit_idx], best, kappa, previous).beta0,
            x_val, val, w[val_idx])
    else:
        best = grid[-1]
    priors = _head_priors(router, x, bandit, w, best, kappa, previous)
    beta = _fit_heads(x, bandit, w, priors, _precision(names, best, kappa))
    router.bias, router.theta = beta[:, 0].copy(), beta[:, 1:].copy()
    router.set_role_heads(priors.role_heads)
    predicted = sigmoid(x.xu @ beta.T)[x.pid].mean(axis=0)
    heads = []
    for j, key in enumerate(keys):
        rows = bandit.actions == j
        m, se, ess = snips_mean(bandit.labels[rows], w[rows])
        heads.append(HeadSummary(
            candidate=key, role=router.roles.get(key, "any"), prior=priors.kinds[j],
            served=int(rows.sum()), explored=int((rows & bandit.explored).sum()),
            mean_propensity=float(bandit.propensities[rows].mean()) if rows.any() else float("nan"),
            logged_mean=m, logged_se=se, effective_sample_size=ess,
            shrunk_mean=float(priors.shrunk_means[j]), predicted_mean=float(predicted[j])))
    info = {"lambda": best[0], "task_lambda": best[1], "kappa": kappa,
            "lambda_search_val_log_loss": {f"{a:g}/{b:g}": v for (a, b), v in search.items()},
            "prior_val_log_loss": prior_val, "features": len(router.feature_names()),
            "base_columns": router.base_columns, "tasks": router.tasks,
            "components": router.components, "encoder": router.encoder,
            "generation": router.generation, "train_requests": len(bandit),
            "base_type": base.name if base is not None else "none",
            "heads": [asdict(h) for h in heads]}
    return router, info
