"""Replaying cascades on recorded responses, with full information.

Every model's recorded samples are known for every prompt, so a cascade can be replayed exactly:
step ``(model, n)`` draws n of the model's recorded samples (fresh ones for a later step of the
same model), keeps one by the fleet's selector, the verifier scores it, and the acceptance level
decides whether the next step runs. Every step taken is paid for: the prompt once per step plus
each sample's output tokens (the model's mean recorded output length, as
:func:`~adaptive_router.training.evaluate.cost_matrix` prices candidates).

Which recorded samples a step draws is random; the replay averages ``permutations`` seeded
orderings of each model's samples, so a step with n = 1 is worth the model's mean sample quality,
as in the single-model rows. One set of per-step arrays serves every acceptance level: sweeping
the level costs a vectorised pass, not a new replay.

The same :class:`StepTable` gives the trained verifier its training pairs
(:mod:`adaptive_router.training.verifier_training`): the steps' evidence and whether the kept
answer was correct.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptive_router.cascade import CascadePolicy
from adaptive_router.domain import Candidate, Fleet
from adaptive_router.errors import DataError
from adaptive_router.records import Record
from adaptive_router.verifiers.agreement import final_answer
from adaptive_router.verifiers.base import Evidence, Verifier

#: Orderings of each model's recorded samples averaged per replay (1 when every model has one).
PERMUTATIONS = 10
#: Quality at or above which a kept answer counts as correct (0/1 scores; graded scores >= 0.5).
CORRECT_AT = 0.5


def kept_index(texts: Sequence[str], selector: str, scores: Sequence[float] | None = None) -> int:
    """The sample a step keeps: the highest recorded selector score, the majority final answer
    (ties: the earliest), or the first."""
    if len(texts) <= 1:
        return 0
    if scores is not None:
        return int(np.argmax(np.asarray(scores, dtype=np.float64)))
    if selector == "majority":
        answers = [final_answer(t) for t in texts]
        counts = Counter(a for a in answers if a is not None)
        if counts:
            top = max(counts.values())
            return next(i for i, a in enumerate(answers) if a is not None and counts[a] == top)
    return 0


@dataclass
class StepTable:
    """Per (ordering p, record r, step s): the step's evidence, kept-answer quality, and cost.

    ``plans[r]`` lists record r's steps (candidate keys, cheapest first); arrays are padded to the
    longest plan with NaN quality and zero cost; ``valid[r, s]`` marks real steps.
    """

    plans: list[list[str]]
    evidence: list[list[list[Evidence]]]  # [p][r][s]
    quality: np.ndarray  # (P, R, S)
    cost: np.ndarray  # (R, S)
    valid: np.ndarray  # (R, S) bool

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.quality.shape  # type: ignore[return-value]

    def flat_evidence(self) -> tuple[list[Evidence], np.ndarray]:
        """Every real step's evidence with its kept answer's quality (for training)."""
        evs, qs = [], []
        for p, per_p in enumerate(self.evidence):
            for r, steps in enumerate(per_p):
                for s, ev in enumerate(steps):
                    evs.append(ev)
                    qs.append(self.quality[p, r, s])
        return evs, np.asarray(qs)

    def scores(self, verifier: Verifier, progress: bool = False) -> np.ndarray:
        """(P, R, S) verifier scores (NaN where there is no step)."""
        evs, _ = self.flat_evidence()
        flat = _score_in_chunks(verifier, evs, progress)
        out = np.full(self.quality.shape, np.nan)
        i = 0
        for p, per_p in enumerate(self.evidence):
            for r, steps in enumerate(per_p):
                for s in range(len(steps)):
                    out[p, r, s] = flat[i]
                    i += 1
        return out


def _score_in_chunks(verifier: Verifier, evs: list[Evidence], progress: bool, chunk: int = 256) -> np.ndarray:
    starts = range(0, len(evs), chunk)
    if progress and len(evs) > chunk:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"verifying ({verifier.describe()})", unit="batch")
    parts = [verifier.score_batch(evs[i:i + chunk]) for i in starts]
    return np.concatenate(parts) if parts else np.zeros(0)


def step_cost(record: Record, cand: Candidate, fleet: Fleet) -> float:
    """One step's dollars: the answers' recorded cost when the record has it, else the prompt
    once and n outputs of the model's mean recorded length."""
    from adaptive_router.training.recorded_cost import candidate_cost, resolve_prices

    return candidate_cost(record.samples(cand.model), cand.n,
                          resolve_prices(fleet, [record], [cand.model])[cand.model])


def build_step_table(
    records: Sequence[Record],
    plans: Sequence[Sequence[str]],
    fleet: Fleet,
    quality_score: str,
    selector: str = "majority",
    selector_score: str | None = None,
    priors: Sequence[dict[str, float]] | None = None,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> StepTable:
    """Replay every record's plan under ``permutations`` orderings of the recorded samples."""
    records = list(records)
    if len(plans) != len(records):
        raise DataError(f"{len(plans)} plans for {len(records)} records")
    missing = next((r.id for r, plan in zip(records, plans, strict=True) for k in plan
                    if not (r.models.get(Candidate.from_key(k).model)
                            and r.models[Candidate.from_key(k).model].responses)), None)
    if missing is not None:
        raise DataError(
            "cascades replay recorded answers, and these records have no response texts for "
            f"their steps (e.g. record {missing!r}); use data with responses (routellm-gsm8k, "
            "champ, or a table with MODEL.response columns). MMLU's tables hold correctness only")
    short = next(((r.id, k) for r, plan in zip(records, plans, strict=True) for k in plan
                  if Candidate.from_key(k).n > r.samples(Candidate.from_key(k).model).num_samples), None)
    if short is not None:
        raise DataError(f"step {short[1]!r} asks for more samples than record {short[0]!r} has recorded; "
                        "lower n in the cascade (a replay never reuses a sample)")
    single = all(r.samples(Candidate.from_key(k).model).num_samples <= 1
                 for r, plan in zip(records, plans, strict=True) for k in plan)
    n_perm = 1 if single else max(1, permutations)
    rng = np.random.default_rng(seed)
    width = max(len(p) for p in plans)
    quality = np.full((n_perm, len(records), width), np.nan)
    cost = np.zeros((len(records), width))
    valid = np.zeros((len(records), width), dtype=bool)
    orders = [[{m: rng.permutation(max(1, rec.samples(m).num_samples))
                for m in {Candidate.from_key(k).model for k in plans[r_i]}}
               for r_i, rec in enumerate(records)] for _ in range(n_perm)]
    evidence: list[list[list[Evidence]]] = []
    for p in range(n_perm):
        per_p = []
        for r_i, rec in enumerate(records):
            offsets: dict[str, int] = {}
            kept: list[str] = []
            steps = []
            for s_i, key in enumerate(plans[r_i]):
                cand = Candidate.from_key(key)
                samples = rec.samples(cand.model)
                order = orders[p][r_i][cand.model]
                start = offsets.get(cand.model, 0)
                idx = [int(order[(start + j) % len(order)]) for j in range(cand.n)]
                offsets[cand.model] = start + cand.n
                texts = [samples.responses[i] for i in idx]
                sel = [samples.score(selector_score)[i] for i in idx] if selector_score else None
                k = kept_index(texts, selector, sel)
                q = samples.score(quality_score)[idx[k]]
                prior = priors[r_i].get(key) if priors is not None else None
                steps.append(Evidence(prompt=rec.prompt, samples=tuple(texts), chosen=k,
                                      earlier=tuple(kept), prior=prior, model=cand.model))
                kept.append(texts[k])
                quality[p, r_i, s_i] = q
                if p == 0:
                    cost[r_i, s_i] = step_cost(rec, cand, fleet)
                    valid[r_i, s_i] = True
            per_p.append(steps)
        evidence.append(per_p)
    return StepTable(plans=[list(p) for p in plans], evidence=evidence, quality=quality, cost=cost,
                     valid=valid)


def served(scores: np.ndarray, table: StepTable, accept: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quality, cost, steps taken) per (ordering, record) at acceptance level ``accept``."""
    n_steps = table.valid.sum(axis=1)  # (R,)
    last = np.zeros_like(table.valid)
    last[np.arange(len(n_steps)), n_steps - 1] = True
    stop = (np.nan_to_num(scores, nan=-1.0) >= accept) | last[None, :, :]
    stop &= table.valid[None, :, :]
    idx = np.argmax(stop, axis=2)  # first step that stops: (P, R)
    quality = np.take_along_axis(table.quality, idx[..., None], axis=2)[..., 0]
    cum = np.cumsum(table.cost, axis=1)  # (R, S)
    cost = cum[np.arange(cum.shape[0])[None, :], idx]
    return quality, cost, idx + 1


def accept_grid(scores: np.ndarray, points: int = 101) -> np.ndarray:
    """Acceptance levels that visit every distinct outcome (up to ``points`` quantiles), plus a
    level above every score (always escalate to the last step)."""
    values = np.unique(scores[np.isfinite(scores)])
    if len(values) > points:
        values = np.unique(np.quantile(values, np.linspace(0, 1, points)))
    return np.unique(np.concatenate([[0.0], values, [1.0 + 1e-9]]))


def sweep_cascade(scores: np.ndarray, table: StepTable, levels: Sequence[float] | None = None,
                  top_model: str | None = None) -> list[dict[str, float]]:
    """One operating point per acceptance level: mean quality, mean cost, mean steps taken, the
    share escalated past step 1, and (with ``top_model``) the share of requests calling it."""
    levels = accept_grid(scores) if levels is None else np.asarray(levels)
    top_cols = None
    if top_model is not None:
        top_cols = np.array([[Candidate.from_key(k).model == top_model for k in plan]
                             + [False] * (table.valid.shape[1] - len(plan)) for plan in table.plans])
    points = []
    for level in levels:
        q, c, taken = served(scores, table, float(level))
        point = {"knob": float(min(level, 1.0)), "quality": float(q.mean()), "cost_usd": float(c.mean()),
                 "steps": float(taken.mean()), "escalated": float((taken > 1).mean())}
        if top_cols is not None:
            reached = np.arange(top_cols.shape[1])[None, None, :] < taken[..., None]
            point["share_strong"] = float((reached & top_cols[None]).any(axis=2).mean())
        points.append(point)
    return points


def router_plans(records: Sequence[Record], fleet: Fleet, router: Any, policy: CascadePolicy,
                 progress: bool = False) -> tuple[list[list[str]], list[dict[str, float]]]:
    """Each record's router-proposed steps (:meth:`CascadePolicy.plan`) and the router's priors."""
    from adaptive_router.training.evaluate import cost_matrix

    keys = fleet.candidate_keys
    preds = router.predict_batch([r.prompt for r in records], progress=progress)[:, router.restrict(keys)]
    costs = cost_matrix(records, keys, fleet)
    plans, priors = [], []
    for row_q, row_c in zip(preds, costs, strict=True):
        pq = dict(zip(keys, row_q.tolist(), strict=True))
        pc = dict(zip(keys, row_c.tolist(), strict=True))
        plans.append([c.key for c in policy.plan(pq, pc)])
        priors.append(pq)
    return plans, priors


def parse_chain(spec: str, fleet: Fleet) -> list[str]:
    """``"weak#3>strong#1"`` (or model names, n = 1) -> candidate keys, checked against the fleet."""
    keys = [Candidate.from_key(part.strip()).key for part in spec.split(">") if part.strip()]
    if not keys:
        raise DataError(f"cascade {spec!r} has no steps; write e.g. 'cheap-model#3>strong-model#1'")
    for k in keys:
        c = Candidate.from_key(k)
        if c.model not in fleet.model_names:
            raise DataError(f"cascade step {k!r}: {c.model!r} is not a model of this data set "
                            f"({fleet.model_names})")
    return keys


def default_chain(fleet: Fleet, records: Sequence[Record], n: int = 1) -> list[str]:
    """The cheapest model (with ``n`` samples, for agreement) then the reference model."""
    from adaptive_router.training.evaluate import cost_matrix

    singles = [f"{m}#1" for m in fleet.model_names]
    mean_cost = cost_matrix(records, singles, fleet).mean(axis=0)
    cheapest = fleet.model_names[int(np.argmin(mean_cost))]
    ref = fleet.reference_model()
    if cheapest == ref:
        raise DataError("the cheapest model is the reference model: there is nothing to cascade to")
    return [f"{cheapest}#{n}", f"{ref}#1"]


def evaluate_cascade(
    name: str,
    records: Sequence[Record],
    fleet: Fleet,
    quality_score: str,
    verifier: Verifier,
    plans: Sequence[Sequence[str]],
    priors: Sequence[dict[str, float]] | None = None,
    selector: str = "majority",
    selector_score: str | None = None,
    default_accept: float = 0.5,
    progress: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Replay a cascade over ``records``, sweep its acceptance level, and summarise it exactly as
    :func:`~adaptive_router.training.evaluate.evaluate_router` summarises a router (same keys:
    quality and cost at ``default_accept``, AIQ, savings at the best single model's quality,
    APGR by cost for two-model data, curve and hull), plus the escalation rate."""
    from adaptive_router.training.evaluate import _summarise, data_summary

    records = list(records)
    keys = sorted({k for plan in plans for k in plan} | {f"{m}#1" for m in fleet.model_names
                                                         if records and m in records[0].models})
    summary = data_summary(records, fleet, quality_score, keys)
    table = build_step_table(records, plans, fleet, quality_score, selector=selector,
                             selector_score=selector_score, priors=priors, seed=seed)
    scores = table.scores(verifier, progress=progress)
    top = summary.get("strong") or fleet.reference_model()
    points = sweep_cascade(scores, table, top_model=top)
    default = sweep_cascade(scores, table, levels=[default_accept], top_model=top)[0]
    result = _summarise(name, points, default, summary, None, len(records), keys)
    result.update({"kind": "cascade", "knob": "accept", "default_knob": default_accept,
                   "verifier": verifier.describe(), "escalated": default["escalated"],
                   "steps": default["steps"], "plans": sorted({" > ".join(p) for p in plans})[:20],
                   "permutations": int(table.quality.shape[0])})
    return result


def cascade_entries(specs: Sequence[str], verifier_specs: Sequence[str], records: Sequence[Record],
                    fleet: Fleet, quality_score: str, selector_score: str | None,
                    train: Sequence[Record], val: Sequence[Record], checkpoints: str | None,
                    seed: int, progress: bool) -> dict[str, dict[str, Any]]:
    """``eval``'s cascade rows: every cascade spec with every verifier, named
    ``cascade[<steps>|<verifier>]``."""
    from pathlib import Path

    from adaptive_router.training.evaluate import resolve_router

    from adaptive_router.verifiers import load_verifier

    selector = fleet.selector if fleet.selector in ("majority", "first") else "majority"
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        priors = None
        if spec.startswith("router="):
            rname = spec.split("=", 1)[1]
            router = resolve_router(rname, fleet, records, quality_score, selector_score, train, val,
                                    checkpoints, seed, progress)
            plans, priors = router_plans(records, fleet, router, CascadePolicy(), progress=progress)
            label_steps = f"{Path(rname).name} plans"
        else:
            chain = default_chain(fleet, records) if spec == "auto" else parse_chain(spec, fleet)
            plans = [chain] * len(records)
            label_steps = ">".join(chain)
        for vspec in verifier_specs:
            verifier = load_verifier(vspec)
            label = f"cascade[{label_steps}|{Path(vspec).name if Path(vspec).is_dir() else vspec}]"
            out[label] = evaluate_cascade(label, records, fleet, quality_score, verifier, plans,
                                          priors=priors, selector=selector, selector_score=selector_score,
                                          progress=progress, seed=seed)
    return out
