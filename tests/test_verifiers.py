"""Verifiers: agreement, answer features, the trained verifier (fit, calibration, persistence),
loading by name, and the metrics that judge them (ROC AUC, APGR by cost)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from adaptive_router.training import metrics

from adaptive_router.errors import CheckpointError, ConfigError
from adaptive_router.verifiers import AgreementVerifier, Evidence, load_verifier
from adaptive_router.verifiers.features import FEATURE_NAMES, step_features
from adaptive_router.verifiers.trained import POOLED, TrainedVerifier


def test_agreement_counts_other_samples_and_earlier_models() -> None:
    v = AgreementVerifier()
    ev = Evidence("q", ("so it is 12", "#### 12", "#### 13", "The answer is 12."), chosen=0)
    assert v.score(ev) == pytest.approx(2 / 3)
    assert v.score(Evidence("q", ("#### 7",), earlier=("#### 7", "#### 8"))) == pytest.approx(0.5)
    # nothing to agree with: the router's prior, else 0.5
    assert v.score(Evidence("q", ("#### 7",), prior=0.8)) == pytest.approx(0.8)
    assert v.score(Evidence("q", ("#### 7",))) == pytest.approx(0.5)
    # a kept sample without a final answer never agrees
    assert v.score(Evidence("q", ("I am not sure", "#### 3"))) == 0.0


def test_evidence_rejects_bad_steps() -> None:
    with pytest.raises(ConfigError):
        Evidence("q", ())
    with pytest.raises(ConfigError):
        Evidence("q", ("a",), chosen=3)


def test_features_see_false_arithmetic_and_unused_quantities() -> None:
    names = list(FEATURE_NAMES)
    good = step_features(Evidence("Tom has 3 apples and 4 pears. How many fruits?", ("3 + 4 = 7\n#### 7",)))
    bad = step_features(Evidence("Tom has 3 apples and 4 pears. How many fruits?", ("3 + 5 = 9\n#### 9",)))
    assert good[names.index("any_false_statement")] == 0.0
    assert bad[names.index("any_false_statement")] == 1.0
    assert good[names.index("unused_prompt_numbers")] == 0.0
    assert bad[names.index("unused_prompt_numbers")] == pytest.approx(0.5)
    assert len(good) == len(names)


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURE_NAMES)))
    models = ["small" if i % 2 else "large" for i in range(n)]
    sign = np.array([1.0 if m == "small" else -1.0 for m in models])
    y = (rng.random(n) < 1 / (1 + np.exp(-2.5 * sign * x[:, 0]))).astype(float)
    return x, y, models


def test_trained_verifier_learns_a_head_per_model_and_round_trips(tmp_path: Path) -> None:
    x, y, m = _synthetic(800, 0)
    xv, yv, mv = _synthetic(300, 1)
    xt, yt, mt = _synthetic(400, 2)
    v = TrainedVerifier.fit(x, y, m, xv, yv, mv, l2=1.0)
    assert set(v.heads) == {POOLED, "small", "large"}
    p = v.proba_from_features(xt, mt)
    # the per-model heads see the opposite signs; the pooled head alone cannot
    assert metrics.roc_auc(yt, p) > 0.8
    assert metrics.roc_auc(yt, v.proba_from_features(xt, [None] * len(xt))) < 0.65
    v.save_pretrained(tmp_path / "v")
    again = load_verifier(str(tmp_path / "v"))
    assert isinstance(again, TrainedVerifier)
    np.testing.assert_allclose(again.proba_from_features(xt, mt), p)


def test_trained_verifier_refuses_one_class_and_foreign_checkpoints(tmp_path: Path) -> None:
    x, _, m = _synthetic(50, 0)
    with pytest.raises(Exception, match="correct and incorrect"):
        TrainedVerifier.fit(x, np.ones(50), m)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text('{"format": "adaptive-router", "format_version": 1, '
                                                  '"kind": "verifier", "verifier_type": "trained", '
                                                  '"feature_names": ["x"], "heads": ["*"]}')
    with pytest.raises(CheckpointError, match="retrain"):
        load_verifier(str(tmp_path / "bad"))


def test_load_verifier_by_name() -> None:
    assert isinstance(load_verifier("agreement"), AgreementVerifier)
    assert load_verifier("judge:gpt-4o-mini").describe() == "judge(gpt-4o-mini)"
    with pytest.raises(ConfigError, match="agreement"):
        load_verifier("/no/such/folder")


def test_roc_auc_and_apgr_by_cost() -> None:
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert metrics.roc_auc([1, 1], [0.2, 0.3]) is None
    assert metrics.roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    # the straight line from the weak model (cost ~0) to the strong one: APGR 0.5
    assert metrics.apgr_by_cost([0.0, 1.0], [0.6, 0.8], 0.6, 0.8, 1.0) == pytest.approx(0.5, abs=1e-3)
    # strong quality already at a quarter of the strong cost: most of the area is recovered
    assert metrics.apgr_by_cost([0.0, 0.25, 1.0], [0.6, 0.8, 0.8], 0.6, 0.8, 1.0) == pytest.approx(0.875, abs=1e-3)
