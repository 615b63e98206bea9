"""The whole retraining job: read, label, split, fine-tune, evaluate, promote, report."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from adaptive_router.training.retrain.bandit import build_bandit, split_by_prompt
from adaptive_router.training.retrain.evaluation import (
    ESTIMATORS,
    compare_offline,
    outcome_model,
    promotion_rule,
    should_promote,
    threshold_curve,
)
from adaptive_router.training.retrain.fine_tune import fine_tune_router
from adaptive_router.training.retrain.labels import label_quality
from adaptive_router.training.retrain.logs import LogReadStats, join_feedback, read_feedback, read_logs
from adaptive_router.training.retrain.report import plot_quality_cost, write_report

from adaptive_router.errors import ConfigError, DataError
from adaptive_router.policy import ThresholdPolicy
from adaptive_router.routers.base import Router

#: Fewest labelled requests on each side of the train / held-out split.
MIN_REQUESTS = 10


@dataclass
class RetrainResult:
    """What :func:`retrain` did; ``summary`` is also written as ``retrain.json``."""

    promoted: bool
    out_dir: Path
    candidate_dir: Path
    router_dir: Path
    report_path: Path
    plot_path: Path
    summary: dict[str, Any]


def write_routers(base: Router, candidate: Router, out_dir: Path, promoted: bool,
                  promote_to: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``candidate/`` (the retrained router, kept either way for inspection) and
    ``router/`` (the one to deploy: the candidate if promoted, else the base, so a deployment
    can always point at ``router/``); a promoted router is also copied to ``promote_to``."""
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
    else:
        base.save_pretrained(router_dir)
    return candidate_dir, router_dir


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
) -> RetrainResult:
    """Retrain ``base`` on ``logs`` and write the report into ``out`` (the steps are described in
    :mod:`adaptive_router.training.retrain`)."""
    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown estimator {estimator!r}; use one of {ESTIMATORS}")
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_router = Router.from_pretrained(base)
    stats = LogReadStats()
    lines = read_logs(list(logs), stats)
    matched = join_feedback(lines, read_feedback(feedback)) if feedback else 0
    labels, sources = label_quality(lines, label_source, judge=judge, progress=progress)
    default_policy = ThresholdPolicy(default_threshold) if default_threshold is not None else None
    bandit, dropped = build_bandit(lines, labels, base_router.candidate_keys, default_policy)
    train_idx, held_idx = split_by_prompt(bandit.prompts, holdout, seed=seed)
    if len(train_idx) < MIN_REQUESTS or len(held_idx) < MIN_REQUESTS:
        raise DataError(f"only {len(bandit)} usable logged requests ({len(train_idx)} train, "
                        f"{len(held_idx)} held out); retraining needs at least {MIN_REQUESTS} on "
                        "each side. "
                        "Collect more traffic, or lower --holdout.")
    train, held = bandit.subset(train_idx), bandit.subset(held_idx)
    if progress:
        print(f"retrain: {len(bandit)} labelled requests ({len(train)} train, {len(held)} held out)")
    new_router, fit_info = fine_tune_router(base_router, train, seed=seed)
    q_old = base_router.predict_batch(held.prompts)
    q_new = new_router.predict_batch(held.prompts)
    candidate_quality = outcome_model(train)
    cmp = compare_offline(base_router, new_router, held, cost_weight=cost_weight, q_old=q_old,
                          q_new=q_new, candidate_quality=candidate_quality)
    promoted = should_promote(cmp, estimator, min_z)
    candidate_dir, router_dir = write_routers(base_router, new_router, out_dir, promoted, promote_to)
    thresholds = np.linspace(0.05, 0.95, 19)
    q_quality = np.tile(candidate_quality, (len(held), 1))
    curves = {"old": threshold_curve(base_router, held, q_old, q_quality, thresholds),
              "new": threshold_curve(new_router, held, q_new, q_quality, thresholds)}
    label_counts = Counter(s for s in sources if s)
    summary: dict[str, Any] = {
        "promoted": promoted,
        "decision_rule": promotion_rule(estimator, min_z, cost_weight, cmp.cost_scale),
        "estimator": estimator,
        "logs": stats.files, "traffic_lines": stats.traffic_lines,
        "litellm_payloads": stats.litellm_payloads, "skipped_payloads": stats.skipped,
        "feedback_joined": matched, "label_sources": dict(label_counts),
        "dropped": dict(dropped), "usable": len(bandit), "train": len(train), "held_out": len(held),
        "explored_share": float(bandit.explored.mean()),
        "base": str(base), "base_type": base_router.name, "candidate_keys": bandit.candidate_keys,
        "fine_tune": fit_info, "comparison": cmp.as_dict(), "curves": curves,
        "dr_outcome_model": dict(zip(bandit.candidate_keys, candidate_quality.tolist(), strict=True)),
        "served_share": {k: float(np.mean(bandit.actions == j))
                         for j, k in enumerate(bandit.candidate_keys)},
    }
    plot_path = plot_quality_cost(summary, cmp, out_dir / "quality_cost.png")
    (out_dir / "retrain.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    report_path = write_report(summary, cmp, out_dir / "report.md", plot_path.name)
    return RetrainResult(promoted, out_dir, candidate_dir, router_dir, report_path, plot_path, summary)
