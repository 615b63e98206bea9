"""Replay evaluation of routers on recorded data.

Every router is evaluated the same way, offline, on Records: the quality and the dollar cost of
every (model, n) candidate for every prompt are read off the records (:func:`quality_matrix`,
:func:`cost_matrix`), the router predicts, the policy's knob is swept, and each knob value gives
one operating point (share of strong-model calls, mean cost, mean quality). The metrics of
:mod:`adaptive_router.training.metrics` summarise the points.

Best of n on recorded samples: a candidate (model, n) draws n of the model's recorded samples
without replacement and keeps the one with the highest ``selector_score`` (e.g. a reward
model's score); its expected quality is computed exactly from order statistics
(:func:`expected_best_of_n`), so no sampling noise enters the comparison of routers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from adaptive_router.training import metrics

from adaptive_router.domain import Candidate, Fleet
from adaptive_router.errors import DataError, RoutingError
from adaptive_router.persistence import json_default
from adaptive_router.policy import Policy, ThresholdPolicy, TradeoffPolicy
from adaptive_router.records import Record
from adaptive_router.routers.base import Router

#: Knob values swept per router (at most; fewer when the router's predictions take fewer values).
SWEEP_POINTS = 201
#: The knob value whose operating point is reported as the router's ``quality`` / cost.
DEFAULT_THRESHOLD = 0.5


# ---------------------------------------------------------------------------------------------
# quality and cost of candidates
# ---------------------------------------------------------------------------------------------


def expected_best_of_n(quality: Sequence[float], selector: Sequence[float] | None, n: int) -> float:
    """Expected quality of the sample kept out of ``n`` drawn from recorded samples.

    Without a selector the kept sample is a uniformly random one of the n, whose expectation is
    the mean of all samples. With a selector, rank the S samples by selector score (highest
    first); drawing n without replacement, the sample of rank i (0-based) is the best drawn with
    probability ``C(S-1-i, n-1) / C(S, n)`` (the other n-1 all come from the S-1-i below it).
    Tied selector scores form a group whose kept member is uniform, so the group contributes its
    mean quality. When n > S the n draws are made with replacement (probability of rank i
    being the best: ``((S-i)/S)^n - ((S-i-1)/S)^n``).
    """
    q = np.asarray(quality, dtype=np.float64)
    s_count = len(q)
    if s_count == 0:
        raise DataError("no recorded samples to draw from")
    if n <= 1 or selector is None:
        return float(q.mean())
    sel = np.asarray(selector, dtype=np.float64)
    if len(sel) != s_count:
        raise DataError(f"{len(sel)} selector scores for {s_count} samples")
    order = np.argsort(-sel, kind="stable")
    q_sorted, sel_sorted = q[order], sel[order]
    ranks = np.arange(s_count)
    if n <= s_count:
        total = math.comb(s_count, n)
        p = np.array([math.comb(s_count - 1 - i, n - 1) for i in ranks], dtype=np.float64) / total
    else:
        p = ((s_count - ranks) / s_count) ** n - ((s_count - ranks - 1) / s_count) ** n
    value = 0.0
    start = 0
    while start < s_count:  # walk the groups of tied selector scores
        end = start + 1
        while end < s_count and sel_sorted[end] == sel_sorted[start]:
            end += 1
        value += p[start:end].sum() * q_sorted[start:end].mean()
        start = end
    return float(value)


def quality_matrix(
    records: Sequence[Record],
    candidate_keys: Sequence[str],
    quality_score: str,
    selector_score: str | None = None,
) -> np.ndarray:
    """(R, K) expected quality of every candidate for every record.

    n = 1: the mean single-sample quality; n > 1: the expected quality of the sample kept out of
    n drawn from the recorded samples, by the argmax of ``selector_score`` when given, else a
    uniformly random one (:func:`expected_best_of_n`).
    """
    cands = [Candidate.from_key(k) for k in candidate_keys]
    out = np.empty((len(records), len(cands)), dtype=np.float64)
    for r_i, rec in enumerate(records):
        for c_i, cand in enumerate(cands):
            samples = rec.samples(cand.model)
            q = samples.score(quality_score)
            sel = samples.score(selector_score) if (selector_score and cand.n > 1) else None
            out[r_i, c_i] = expected_best_of_n(q, sel, cand.n)
    return out


def cost_matrix(records: Sequence[Record], candidate_keys: Sequence[str], fleet: Fleet) -> np.ndarray:
    """(R, K) dollar cost of every candidate for every record.

    Where a record carries the real cost of each answer (``ModelSamples.cost_usd``) that cost
    is used; otherwise BEST-Route's accounting: the prompt is paid once (one call asking for n
    samples) and each of the n outputs is paid; a sample's output length is the model's mean
    recorded output tokens for that prompt: ``prompt_tokens x input price + n x mean_output_tokens
    x output price`` (:func:`~adaptive_router.training.recorded_cost.candidate_cost`).
    """
    from adaptive_router.training.recorded_cost import candidate_cost, resolve_prices

    cands = [Candidate.from_key(k) for k in candidate_keys]
    prices = resolve_prices(fleet, records, [c.model for c in cands])
    out = np.empty((len(records), len(cands)), dtype=np.float64)
    for r_i, rec in enumerate(records):
        for c_i, cand in enumerate(cands):
            out[r_i, c_i] = candidate_cost(rec.samples(cand.model), cand.n, prices[cand.model])
    return out


# ---------------------------------------------------------------------------------------------
# sweeping a router's knob
# ---------------------------------------------------------------------------------------------


def _threshold_grid(predictions: np.ndarray, points: int = SWEEP_POINTS) -> np.ndarray:
    """Threshold values that visit every distinct decision (up to ``points`` quantiles)."""
    values = np.unique(np.clip(predictions.ravel(), 0.0, 1.0))
    if len(values) > points:
        values = np.unique(np.quantile(values, np.linspace(0, 1, points)))
    # midpoints separate neighbouring predictions; add both ends
    mids = (values[1:] + values[:-1]) / 2 if len(values) > 1 else np.array([])
    return np.unique(np.concatenate([[0.0, 1.0], values, mids]))


def _tradeoff_grid(points: int = SWEEP_POINTS) -> np.ndarray:
    return np.concatenate([[0.0], np.geomspace(1e-3, 1e3, points - 1)])


def operating_point(choice: np.ndarray, quality: np.ndarray, cost: np.ndarray,
                    strong_columns: np.ndarray | None) -> dict[str, float]:
    """Mean quality, mean cost and strong share of one vector of per-prompt choices."""
    rows = np.arange(len(choice))
    point = {"quality": float(quality[rows, choice].mean()), "cost_usd": float(cost[rows, choice].mean())}
    if strong_columns is not None:
        point["share_strong"] = float(np.isin(choice, strong_columns).mean())
    return point


def sweep(
    predictions: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    knob: str = "threshold",
    strong_columns: np.ndarray | None = None,
    grid: Sequence[float] | None = None,
) -> list[dict[str, float]]:
    """One operating point per knob value: the policy chooses on predictions and expected
    costs; quality and cost are read off the recorded tables."""
    if knob == "threshold":
        values = np.asarray(grid if grid is not None else _threshold_grid(predictions))

        def make(v: float) -> Policy:
            return ThresholdPolicy(float(np.clip(v, 0.0, 1.0)))
    elif knob == "tradeoff":
        values = np.asarray(grid if grid is not None else _tradeoff_grid())

        def make(v: float) -> Policy:
            return TradeoffPolicy(float(v))
    else:
        raise RoutingError(f"unknown knob {knob!r}; sweep 'threshold' or 'tradeoff'")
    points = []
    for v in values:
        choice = make(v).choose(predictions, cost)
        points.append({"knob": float(v), **operating_point(choice, quality, cost, strong_columns)})
    return points


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


def _two_model_roles(candidate_keys: Sequence[str], fleet: Fleet) -> tuple[str, str] | None:
    """(weak, strong) when the candidates span exactly two models; the strong one is the
    fleet's reference (else the dearer)."""
    models = list(dict.fromkeys(Candidate.from_key(k).model for k in candidate_keys))
    if len(models) != 2:
        return None
    ref = fleet.reference_model()
    strong = ref if ref in models else max(models, key=lambda m: fleet.model(m).resolved_price().output_per_token)
    weak = next(m for m in models if m != strong)
    return weak, strong


def data_summary(records: Sequence[Record], fleet: Fleet, quality_score: str,
                 candidate_keys: Sequence[str]) -> dict[str, Any]:
    """Single-model quality and cost, the best single model, the Pareto front, and (two-model
    data) the weak and strong models' quality: the yardsticks every router is compared with."""
    models = list(dict.fromkeys(Candidate.from_key(k).model for k in candidate_keys))
    singles = [f"{m}#1" for m in models]
    q1 = quality_matrix(records, singles, quality_score)
    c1 = cost_matrix(records, singles, fleet)
    single = {m: {"quality": float(q1[:, i].mean()), "cost_usd": float(c1[:, i].mean()),
                  "cost_per_1k_usd": 1000 * float(c1[:, i].mean())} for i, m in enumerate(models)}
    best = max(models, key=lambda m: (single[m]["quality"], -single[m]["cost_usd"]))
    out: dict[str, Any] = {
        "models": models,
        "single": single,
        "best_single": best,
        "pareto_front": metrics.pareto_front(models, [single[m]["cost_usd"] for m in models],
                                             [single[m]["quality"] for m in models]),
        "cost_range_usd": [min(v["cost_usd"] for v in single.values()),
                           max(v["cost_usd"] for v in single.values())],
    }
    roles = _two_model_roles(candidate_keys, fleet)
    if roles:
        out["weak"], out["strong"] = roles
    return out


def _summarise(name: str, points: list[dict[str, float]], default: dict[str, float],
               summary: dict[str, Any], deferral: tuple[np.ndarray, np.ndarray] | None,
               n_prompts: int, candidate_keys: Sequence[str]) -> dict[str, Any]:
    best = summary["single"][summary["best_single"]]
    costs = [p["cost_usd"] for p in points]
    quals = [p["quality"] for p in points]
    hull_c, hull_q = metrics.non_decreasing_convex_hull(costs, quals)
    result: dict[str, Any] = {
        "name": name,
        "n_prompts": n_prompts,
        "candidates": list(candidate_keys),
        "quality": default["quality"],
        "cost_usd": default["cost_usd"],
        "cost_per_1k_usd": 1000 * default["cost_usd"],
        "share_strong": default.get("share_strong"),
        "max_quality": float(max(quals)),
        "aiq": metrics.normalised_area(costs, quals, tuple(summary["cost_range_usd"])),
        "saving_at_99": metrics.saving_at_quality(costs, quals, 0.99 * best["quality"], best["cost_usd"]),
        "saving_at_100": metrics.saving_at_quality(costs, quals, best["quality"], best["cost_usd"]),
        "apgr": None, "cpt_50": None, "cpt_80": None,
        "curve": points,
        "hull": {"cost_usd": hull_c.tolist(), "quality": hull_q.tolist()},
    }
    if "weak" in summary:
        result["apgr_cost"] = metrics.apgr_by_cost(
            costs, quals, summary["single"][summary["weak"]]["quality"],
            summary["single"][summary["strong"]]["quality"], summary["single"][summary["strong"]]["cost_usd"])
    if deferral is not None and "weak" in summary:
        qw = summary["single"][summary["weak"]]["quality"]
        qs = summary["single"][summary["strong"]]["quality"]
        s, q = deferral
        result["apgr"] = metrics.apgr(s, q, qw, qs)
        result["cpt_50"] = metrics.cpt(s, q, qw, qs, 0.5)
        result["cpt_80"] = metrics.cpt(s, q, qw, qs, 0.8)
        result["deferral_curve"] = {"share_strong": s.tolist(), "quality": q.tolist()}
    return result


def evaluate_router(
    router: Router,
    records: Sequence[Record],
    fleet: Fleet,
    quality_score: str,
    selector_score: str | None = None,
    name: str | None = None,
    knob: str = "threshold",
    default_knob: float = DEFAULT_THRESHOLD,
    progress: bool = False,
    repeats: int = 1,
) -> dict[str, Any]:
    """Sweep ``router``'s knob over ``records``; return its metrics and curve points.

    ``repeats`` > 1 predicts that many times and averages each knob value's operating point:
    for a stochastic router (``random``) this estimates its expected curve instead of one noisy
    draw (the expected deferral curve of the random router is the straight line).

    Keys: ``quality``, ``cost_per_1k_usd`` and ``share_strong`` at ``default_knob``; ``apgr``,
    ``cpt_50``, ``cpt_80`` (two-model candidates, else None); ``aiq`` (normalised area of the
    quality-cost hull over the single models' cost range); ``saving_at_99`` / ``saving_at_100``
    (percent of the best single model's cost saved at >= 99% / 100% of its quality, None if
    never reached); ``max_quality``; ``curve`` (every operating point); ``hull``;
    ``deferral_curve`` (two-model). A router with ``uses_labels`` (the oracle) is evaluated by
    its exact curves (:func:`metrics.oracle_deferral_curve`, :func:`metrics.oracle_quality_cost_curve`).
    """
    records = list(records)
    if not records:
        raise DataError("no records to evaluate on")
    if knob == "best":
        return _best_knob_family(router, records, fleet, quality_score, selector_score, name, progress, repeats)
    own = getattr(router, "default_knob", None) or {}
    if knob in own and default_knob == DEFAULT_THRESHOLD:  # the checkpoint's validated default
        default_knob = float(own[knob])
    keys = list(router.candidate_keys)
    quality = quality_matrix(records, keys, quality_score, selector_score)
    cost = cost_matrix(records, keys, fleet)
    summary = data_summary(records, fleet, quality_score, keys)
    strong_cols = None
    if "strong" in summary:
        strong_cols = np.array([i for i, k in enumerate(keys) if Candidate.from_key(k).model == summary["strong"]])
    label = name or router.name
    if router.uses_labels:
        return _evaluate_oracle(label, quality, cost, keys, summary, strong_cols, len(records))
    prompts = [r.prompt for r in records]
    default_policy: Policy = ThresholdPolicy(default_knob) if knob == "threshold" else TradeoffPolicy(default_knob)
    runs, defaults = [], []
    for i in range(max(1, repeats)):
        preds = router.predict_batch(prompts, progress=progress and i == 0)
        grid = np.linspace(0.0, 1.0, SWEEP_POINTS) if repeats > 1 and knob == "threshold" else None
        runs.append(sweep(preds, quality, cost, knob=knob, strong_columns=strong_cols, grid=grid))
        defaults.append(operating_point(default_policy.choose(preds, cost), quality, cost, strong_cols))
    points = [{k: float(np.mean([run[j][k] for run in runs])) for k in runs[0][j]} for j in range(len(runs[0]))]
    default = {k: float(np.mean([d[k] for d in defaults])) for k in defaults[0]}
    deferral = None
    if strong_cols is not None:
        qw = summary["single"][summary["weak"]]["quality"]
        qs = summary["single"][summary["strong"]]["quality"]
        deferral = metrics.deferral_curve([p["share_strong"] for p in points],
                                          [p["quality"] for p in points], qw, qs)
    result = _summarise(label, points, default, summary, deferral, len(records), keys)
    result["knob"] = knob
    result["default_knob"] = default_knob
    result["repeats"] = max(1, repeats)
    return result


def _best_knob_family(router: Router, records: Sequence[Record], fleet: Fleet, quality_score: str,
                      selector_score: str | None, name: str | None, progress: bool,
                      repeats: int) -> dict[str, Any]:
    """Both knob families swept; the one with the larger saving at the best single model's
    quality (then the larger AIQ) is reported, the other's summary beside it."""
    runs = {family: evaluate_router(router, records, fleet, quality_score, selector_score, name=name,
                                    knob=family, progress=progress and family == "threshold",
                                    repeats=repeats)
            for family in ("threshold", "tradeoff")}
    if router.uses_labels:
        return runs["threshold"]

    def merit(res: dict[str, Any]) -> tuple[float, float]:
        saving = res.get("saving_at_100")
        return (saving if saving is not None else -np.inf, res.get("aiq") or -np.inf)

    best = max(runs, key=lambda f: merit(runs[f]))
    result = runs[best]
    result["knob_families"] = {f: {k: r.get(k) for k in ("saving_at_99", "saving_at_100", "aiq", "apgr",
                                                         "apgr_cost", "quality", "cost_per_1k_usd")}
                               for f, r in runs.items()}
    return result


def _evaluate_oracle(label: str, quality: np.ndarray, cost: np.ndarray, keys: Sequence[str],
                     summary: dict[str, Any], strong_cols: np.ndarray | None, n: int) -> dict[str, Any]:
    costs, quals = metrics.oracle_quality_cost_curve(quality, cost)
    points = [{"knob": float(i), "cost_usd": float(c), "quality": float(q)}
              for i, (c, q) in enumerate(zip(costs, quals, strict=True))]
    # the oracle's operating point: the best candidate per prompt, the cheapest among ties
    best = quality.max(axis=1, keepdims=True)
    choice = np.argmin(np.where(np.isclose(quality, best, rtol=0, atol=1e-12), cost, np.inf), axis=1)
    default = operating_point(choice, quality, cost, strong_cols)
    deferral = None
    if strong_cols is not None:
        weak_col = keys.index(f"{summary['weak']}#1")
        strong_col = keys.index(f"{summary['strong']}#1")
        deferral = metrics.oracle_deferral_curve(quality[:, weak_col], quality[:, strong_col])
    result = _summarise(label, points, default, summary, deferral, n, keys)
    result["knob"] = "oracle"
    return result


def oracle_for(records: Sequence[Record], candidate_keys: Sequence[str], quality_score: str,
               selector_score: str | None = None) -> Router:
    """The oracle router over ``records`` (labels = the candidates' recorded quality)."""
    from adaptive_router.routers.baselines import OracleRouter

    q = quality_matrix(records, candidate_keys, quality_score, selector_score)
    return OracleRouter(list(candidate_keys), {r.prompt: q[i] for i, r in enumerate(records)})


def evaluate_single_models(records: Sequence[Record], fleet: Fleet, quality_score: str,
                           candidate_keys: Sequence[str]) -> dict[str, dict[str, float]]:
    """Quality, cost per 1k prompts, and savings of every single model (always calling it)."""
    summary = data_summary(records, fleet, quality_score, candidate_keys)
    best = summary["single"][summary["best_single"]]
    out = {}
    for m, v in summary["single"].items():
        out[m] = {
            **v,
            "saving_at_99": 100 * (1 - v["cost_usd"] / best["cost_usd"]) if v["quality"] >= 0.99 * best["quality"] - 1e-12 else None,
            "saving_at_100": 100 * (1 - v["cost_usd"] / best["cost_usd"]) if v["quality"] >= best["quality"] - 1e-12 else None,
            "pareto": m in summary["pareto_front"],
        }
    return out


# ---------------------------------------------------------------------------------------------
# the `adaptive-router eval` pipeline
# ---------------------------------------------------------------------------------------------

#: Baselines that need no training (the oracle reads the evaluated labels).
UNTRAINED = ("random", "cheapest", "strongest", "oracle")


def fleet_with_n(fleet: Fleet, n: Sequence[int]) -> Fleet:
    """The fleet with sample counts ``n`` for every model but the reference (which keeps n=1):
    BEST-Route's candidates, the small models with best-of-n against the large one once."""
    ref = fleet.reference_model()
    data = fleet.to_dict()
    for m in data["models"]:
        m["n"] = [1] if m["name"] == ref else sorted(set(int(k) for k in n))
    data["reference"] = ref
    return Fleet.from_dict(data, source=fleet.source)


def resolve_router(
    name: str,
    fleet: Fleet,
    records: Sequence[Record],
    quality_score: str,
    selector_score: str | None = None,
    train: Sequence[Record] = (),
    val: Sequence[Record] = (),
    checkpoints: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> Router:
    """A router by name: a baseline, ``oracle``, a checkpoint folder, or a trainable name.

    A trainable name (``adaptive_router.training.train.TRAINERS``) loads ``<checkpoints>/<name>``
    when it exists, else is trained on ``train`` (selection on ``val``) and saved there.
    """
    from pathlib import Path

    from adaptive_router.routers import BASELINES, load_router

    keys = fleet.candidate_keys
    if name == "oracle":
        return oracle_for(records, keys, quality_score, selector_score)
    if name in BASELINES:
        return load_router(name, fleet=fleet, seed=seed) if name == "random" else load_router(name, fleet=fleet)
    path = Path(name)
    if path.is_dir():
        return Router.from_pretrained(path)
    from adaptive_router.training.train import TRAINERS, train_router

    if name not in TRAINERS:
        raise RoutingError(
            f"--routers {name!r} is not a baseline ({', '.join(UNTRAINED)}), a checkpoint folder, "
            f"or a trainable router ({', '.join(sorted(TRAINERS))})")
    target = Path(checkpoints) / name if checkpoints else None
    if target is not None and (target / "config.json").exists():
        return Router.from_pretrained(target)
    return train_router(name, list(train), list(val), keys, quality_score, out_dir=target, seed=seed,
                        progress=progress)


#: Draws of the random router averaged in ``run_evaluation`` (its expected curve).
RANDOM_REPEATS = 20


def run_evaluation(
    data: str,
    routers: Sequence[str],
    out: str | None = None,
    data_dir: str | None = None,
    split: str = "auto",
    seed: int = 0,
    n: Sequence[int] | None = None,
    selector_score: str | None = None,
    checkpoints: str | None = None,
    knob: str = "threshold",
    decontaminate: bool = True,
    progress: bool = True,
    dataset: Any = None,
    load_kwargs: dict[str, Any] | None = None,
    cascades: Sequence[str] = (),
    verifiers: Sequence[str] = ("agreement",),
    fleet: Fleet | None = None,
) -> dict[str, Any]:
    """Load a data set, resolve the routers, evaluate each on one split, write the results.

    ``cascades`` (each ``auto``, a chain ``a#3>b#1``, or ``router=NAME`` for the steps a router
    proposes per prompt) are replayed on the recorded responses with each of ``verifiers``
    (``agreement``, a verifier or reward-model folder, ``judge:<model>``) and reported beside the
    routers (:func:`adaptive_router.training.cascade_eval.evaluate_cascade`).

    ``split``: ``test`` (the decontaminated test split), ``val``, ``train``, ``all``, or ``auto``
    = ``all`` when every router is an untrained baseline (nothing was fitted, so every record is
    fair to evaluate on, which reproduces the published oracle figures) and ``test`` otherwise.
    The random router is averaged over :data:`RANDOM_REPEATS` draws (its expected curve).
    With ``out`` writes ``results.json``, ``quality_cost.png`` and (two-model data)
    ``deferral.png``. ``load_kwargs`` go to the loader (a table's column mapping).

    ``fleet`` (the user's fleet file) wins over the data's and LiteLLM's prices and names the
    reference and the allowed sample counts; ``n`` (when given) replaces the non-reference
    models' sample counts. ``results["cost_basis"]`` says, per model, whether the recorded cost
    of each answer or price x tokens was used (and a note repeats it).
    """
    import json
    from pathlib import Path

    from adaptive_router.training.loaders import load_dataset
    from adaptive_router.training.recorded_cost import cost_basis, resolve_prices

    ds = dataset if dataset is not None else load_dataset(data, data_dir=data_dir, **(load_kwargs or {}))
    if fleet is not None:
        ds = ds.with_fleet(fleet)
    fleet = ds.fleet
    resolve_prices(fleet, ds.records, fleet.model_names)  # before anything prices: name every unpriced model
    if n is not None and not (tuple(n) == (1,) and all(m.n == [1] for m in fleet.models)):
        fleet = fleet_with_n(fleet, n)
    if split == "auto":
        split = "all" if all(r in UNTRAINED for r in routers) else "test"
    if split == "all":
        train, val, evaluated = [], [], list(ds.records)
    else:
        train, val, test = ds.splits(seed=seed, decontaminate=decontaminate)
        evaluated = {"test": test, "val": val, "train": train}.get(split)
        if evaluated is None:
            raise DataError(f"--split {split!r}: use test, val, train, all or auto")
    keys = fleet.candidate_keys
    basis = cost_basis(evaluated, fleet.model_names)
    results: dict[str, Any] = {
        "data": ds.name, "split": split, "seed": seed, "n_prompts": len(evaluated),
        "quality_score": ds.quality_score, "selector_score": selector_score, "candidates": keys,
        "notes": list(ds.notes) + [cost_note(basis, fleet)], "cost_basis": basis,
        "reference": fleet.reference_model(),
        "summary": data_summary(evaluated, fleet, ds.quality_score, keys),
        "single_models": evaluate_single_models(evaluated, fleet, ds.quality_score, keys),
        "routers": {},
    }
    if split != "all" and decontaminate:
        results["dropped_contaminated_test_prompts"] = len(ds.dropped_contaminated)
    for name in routers:
        router = resolve_router(name, fleet, evaluated, ds.quality_score, selector_score, train, val,
                                checkpoints, seed, progress)
        label = name if name in UNTRAINED or not Path(name).is_dir() else Path(name).name
        results["routers"][label] = evaluate_router(router, evaluated, fleet, ds.quality_score,
                                                    selector_score, name=label, knob=knob,
                                                    progress=progress,
                                                    repeats=RANDOM_REPEATS if name == "random" else 1)
    if cascades:
        from adaptive_router.training.cascade_eval import cascade_entries

        results["routers"].update(cascade_entries(
            cascades, verifiers, evaluated, fleet, ds.quality_score, selector_score, train, val,
            checkpoints, seed, progress))
    if out is not None:
        from adaptive_router.training.plots import plot_deferral, plot_quality_cost

        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=json_default))
        plot_quality_cost(results, out_dir / "quality_cost.png")
        plot_deferral(results, out_dir / "deferral.png")
        results["files"] = sorted(str(p) for p in out_dir.iterdir() if p.suffix in (".json", ".png"))
    return results


def cost_note(basis: dict[str, str], fleet: Fleet) -> str:
    """One line saying which cost every model's dollars are: recorded, or price x tokens (and
    whose prices)."""
    from adaptive_router.training.recorded_cost import RECORDED

    by: dict[str, list[str]] = {}
    for m, b in basis.items():
        by.setdefault(b, []).append(m)
    where = f"the fleet {fleet.source}" if fleet.source else "LiteLLM's price map unless the data prices them"
    parts = [f"{b}: {', '.join(ms)}" if b == RECORDED else f"{b} (prices from {where}): {', '.join(ms)}"
             for b, ms in by.items()]
    return "cost: " + "; ".join(parts)


TABLE_COLUMNS = ("quality", "cost_per_1k_usd", "apgr", "apgr_cost", "cpt_50", "cpt_80", "aiq",
                 "saving_at_99", "saving_at_100")


def format_table(results: dict[str, Any], markdown: bool = False) -> str:
    """The single models and routers as a text (or markdown) table.

    CPT values are shown as percentages of calls to the strong model; savings as percentages of
    the best single model's cost. APGR integrates quality over the share of strong calls,
    APGR($) over the share of the strong model's cost (every call included; cascades pay every
    step).
    """
    header = ["", "quality", "$/1k prompts", "APGR", "APGR($)", "CPT(50%)", "CPT(80%)", "AIQ", "save@99%",
              "save@100%"]

    def fmt(key: str, v: Any) -> str:
        if v is None:
            return "-"
        if key in ("cpt_50", "cpt_80"):
            return f"{100 * v:.1f}%"
        if key.startswith("saving"):
            return f"{v:.1f}%" if abs(v) >= 0.05 else "0.0%"
        if key == "cost_per_1k_usd":
            return f"${v:.4g}"
        return f"{v:.3f}"

    rows = []
    for m, v in results["single_models"].items():
        rows.append([f"{m} (always)"] + [fmt(k, v.get(k)) for k in TABLE_COLUMNS])
    for name, res in results["routers"].items():
        rows.append([name] + [fmt(k, res.get(k)) for k in TABLE_COLUMNS])
    if markdown:
        lines = ["| router / model | " + " | ".join(header[1:]) + " |",
                 "|---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths, strict=True)))]
    for r in rows:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    return "\n".join(out)
