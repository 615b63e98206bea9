"""The whole retraining job: read, label, split, learn (fine-tune or fleet heads), evaluate,
promote, report."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from adaptive_router.training.retrain.bandit import predict_unique, split_by_prompt
from adaptive_router.training.retrain.compact import read_compact
from adaptive_router.training.retrain.evaluation import (
    ESTIMATORS,
    compare_offline,
    outcome_model,
    promotion_rule,
    should_promote,
    threshold_curve,
)
from adaptive_router.training.retrain.fine_tune import fine_tune_router
from adaptive_router.training.retrain.fleet import (
    BaseSpec,
    candidate_roles,
    comparison_router,
    resolve_base,
)
from adaptive_router.training.retrain.heads import learn_heads
from adaptive_router.training.retrain.logs import read_feedback
from adaptive_router.training.retrain.report import plot_quality_cost, write_report

from adaptive_router.domain import Candidate, Fleet
from adaptive_router.errors import ConfigError, DataError
from adaptive_router.policy import ThresholdPolicy
from adaptive_router.routers.base import Router
from adaptive_router.routers.fleet_heads import FleetHeadsRouter

#: Fewest labelled requests on each side of the train / held-out split.
MIN_REQUESTS = 10


@dataclass
class RetrainResult:
    """What :func:`retrain` did; ``summary`` is also written as ``retrain.json``."""

    promoted: bool
    out_dir: Path
    candidate_dir: Path
    router_dir: Path | None
    report_path: Path
    plot_path: Path
    summary: dict[str, Any]


def write_routers(base: Router | None, candidate: Router, out_dir: Path, promoted: bool,
                  promote_to: str | Path | None = None) -> tuple[Path, Path | None]:
    """Write ``candidate/`` (the retrained router, kept either way for inspection) and
    ``router/`` (the one to deploy: the candidate if promoted, else the base, so a deployment
    can always point at ``router/``); a promoted router is also copied to ``promote_to``.
    With no base (``--base none``) and no promotion there is nothing to deploy: ``router/`` is
    not written and None is returned for it."""
    candidate_dir = candidate.save_pretrained(out_dir / "candidate")
    router_dir = out_dir / "router"
    if router_dir.exists():
        shutil.rmtree(router_dir)
    if promoted:
        shutil.copytree(candidate_dir, router_dir)
        if promote_to is not None:
            target = Path(promote_to)
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(candidate_dir, target)
    elif base is not None:
        base.save_pretrained(router_dir)
    else:
        return candidate_dir, None
    return candidate_dir, router_dir


METHODS = ("auto", "fine-tune", "heads")


def _choose_method(method: str, base: BaseSpec, keys: Sequence[str]) -> str:
    """``auto``: keep fine-tuning a base that predicts every candidate itself; learn fleet heads
    when it does not (the default's generic roles, a smaller fleet) or when it is a heads router."""
    if method not in METHODS:
        raise ConfigError(f"unknown retraining method {method!r}; use one of {METHODS}")
    if method != "auto":
        if method == "fine-tune" and (base.router is None or
                                      any(k not in base.router.candidate_keys for k in keys)):
            raise ConfigError("--method fine-tune needs a base router that predicts every fleet "
                              "candidate; use --method heads to learn the others from the log")
        return method
    if base.router is None or isinstance(base.router, FleetHeadsRouter):
        return "heads"
    return "fine-tune" if all(k in base.router.candidate_keys for k in keys) else "heads"


def retrain(
    logs: Sequence[str | Path],
    base: str | Path,
    out: str | Path,
    label_source: str = "auto",
    feedback: str | Path | None = None,
    judge: Callable[[str, str], float | None] | None = None,
    holdout: float = 0.3,
    estimator: str = "dr",
    cost_weight: float = 0.5,
    min_z: float = 1.0,
    default_threshold: float | None = None,
    promote_to: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    fleet: str | Path | None = None,
    method: str = "auto",
    encoder: str = "minilm",
) -> RetrainResult:
    """Retrain ``base`` on ``logs`` and write the report into ``out`` (the steps are described in
    :mod:`adaptive_router.training.retrain`).

    ``base`` is a checkpoint folder, a name the plugin's ``router:`` accepts (``default``...) or
    ``none``; ``fleet`` the plugin's fleet file (else the candidates the log lines price).
    ``method``: ``fine-tune`` (a warm-started correction of a base that knows every candidate),
    ``heads`` (a learned head per fleet candidate, :mod:`.heads`), or ``auto``.
    """
    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown estimator {estimator!r}; use one of {ESTIMATORS}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    # one streamed pass: feedback joined and answers labelled as the lines are read; only the
    # compact per-request arrays are kept (compact.py), never the parsed lines
    clock = _Clock()
    log = read_compact(list(logs), read_feedback(feedback) if feedback else None, label_source,
                       judge=judge, progress=progress, keep_predictions=str(base).lower() == "none")
    stats, matched = log.stats, log.feedback_joined
    clock.lap("read_and_label")
    fleet_obj = Fleet.from_yaml(fleet) if fleet is not None else None
    keys = fleet_obj.candidate_keys if fleet_obj is not None else log.fleet_keys()
    reference = fleet_obj.reference_model() if fleet_obj is not None else log.reference(keys)
    base_spec = resolve_base(base, fleet_obj or _pseudo_fleet(keys, reference))
    chosen = _choose_method(method, base_spec, keys)
    if chosen == "fine-tune" and fleet_obj is None:
        keys = base_spec.router.candidate_keys  # type: ignore[union-attr]  # as before: the base's
    filled = log.fill_expected_costs(keys, fleet_obj) if chosen == "heads" else 0
    default_policy = ThresholdPolicy(default_threshold) if default_threshold is not None else None
    bandit, dropped = log.bandit(keys, default_policy)
    train_idx, held_idx = split_by_prompt(bandit.prompts, holdout, seed=seed)
    if len(train_idx) < MIN_REQUESTS or len(held_idx) < MIN_REQUESTS:
        raise DataError(f"only {len(bandit)} usable logged requests ({len(train_idx)} train, "
                        f"{len(held_idx)} held out); retraining needs at least {MIN_REQUESTS} on "
                        "each side. "
                        "Collect more traffic, or lower --holdout.")
    train, held = bandit.subset(train_idx), bandit.subset(held_idx)
    clock.lap("bandit_data")
    if progress:
        print(f"retrain ({chosen}): {len(bandit)} labelled requests ({len(train)} train, "
              f"{len(held)} held out) over {len(keys)} candidates")
    old_router = comparison_router(base_spec, keys, log.predictions_by_prompt)
    if isinstance(old_router, FleetHeadsRouter):  # embeddings from the training cache, as the new one's
        from adaptive_router.encoders import shared_encoder, training_cache_path

        old_router.use_encoder(shared_encoder(old_router.encoder, disk_cache=training_cache_path()))
    fit_info: dict[str, Any] = {}
    heads_info: dict[str, Any] = {}
    if chosen == "fine-tune":
        new_router: Router
        new_router, fit_info = fine_tune_router(base_spec.router, train, seed=seed)  # type: ignore[arg-type]
    else:
        roles = candidate_roles(base_spec.router, keys, reference)
        previous = base_spec.router if isinstance(base_spec.router, FleetHeadsRouter) else None
        feature_base = previous.base if previous is not None else base_spec.router
        new_router, heads_info = learn_heads(train, feature_base, roles, tasks=train.tasks,
                                             previous=previous, encoder=encoder, seed=seed,
                                             progress=progress)
    clock.lap("learn")
    q_old = predict_unique(old_router, held.prompts)
    q_new = predict_unique(new_router, held.prompts)
    candidate_quality = outcome_model(train)
    cmp = compare_offline(old_router, new_router, held, cost_weight=cost_weight, q_old=q_old,
                          q_new=q_new, candidate_quality=candidate_quality)
    promoted = should_promote(cmp, estimator, min_z)
    deployable = None if base_spec.serving is None else old_router
    candidate_dir, router_dir = write_routers(deployable, new_router, out_dir, promoted, promote_to)
    thresholds = np.linspace(0.05, 0.95, 19)
    q_quality = np.tile(candidate_quality, (len(held), 1))
    curves = {"old": threshold_curve(old_router, held, q_old, q_quality, thresholds),
              "new": threshold_curve(new_router, held, q_new, q_quality, thresholds)}
    clock.lap("off_policy_eval")
    label_counts = log.label_sources
    tagged = sum(1 for t in (bandit.tasks or []) if t)
    summary: dict[str, Any] = {
        "promoted": promoted,
        "decision_rule": promotion_rule(estimator, min_z, cost_weight, cmp.cost_scale),
        "estimator": estimator, "method": chosen,
        "logs": stats.files, "traffic_lines": stats.traffic_lines,
        "litellm_payloads": stats.litellm_payloads, "skipped_payloads": stats.skipped,
        "feedback_joined": matched, "label_sources": dict(label_counts),
        "dropped": dict(dropped), "usable": len(bandit), "train": len(train), "held_out": len(held),
        "explored_share": float(bandit.explored.mean()),
        "base": str(base), "base_type": old_router.name, "base_description": base_spec.description,
        "fleet": str(fleet) if fleet is not None else "from the log lines",
        "reference_model": reference, "expected_costs_filled": filled, "tagged_requests": tagged,
        "candidate_keys": bandit.candidate_keys,
        "fine_tune": fit_info, "heads": heads_info, "comparison": cmp.as_dict(), "curves": curves,
        "dr_outcome_model": dict(zip(bandit.candidate_keys, candidate_quality.tolist(), strict=True)),
        "served_share": {k: float(np.mean(bandit.actions == j))
                         for j, k in enumerate(bandit.candidate_keys)},
        "router_written": router_dir is not None,
        "timings_s": clock.laps,
    }
    plot_path = plot_quality_cost(summary, cmp, out_dir / "quality_cost.png")
    (out_dir / "retrain.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    report_path = write_report(summary, cmp, out_dir / "report.md", plot_path.name)
    return RetrainResult(promoted, out_dir, candidate_dir, router_dir, report_path, plot_path, summary)


class _Clock:
    """Wall seconds per step (``retrain.json``'s ``timings_s``): where a large log's time goes."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _pseudo_fleet(keys: Sequence[str], reference: str) -> Fleet:
    """A price-less fleet of the logged candidates, only to bind a generic-role base to them."""
    ns: dict[str, list[int]] = {}
    for k in keys:
        c = Candidate.from_key(k)
        ns.setdefault(c.model, []).append(c.n)
    return Fleet.from_dict({"models": [{"name": m, "n": sorted(n)} for m, n in ns.items()],
                            "reference": reference})
