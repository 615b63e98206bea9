"""The trained verifier: P(correct | prompt, answer, agreement, the router's prior, answer length).

FrugalGPT's scorer, kept small enough to run on every request without a model load: an
L2-regularised logistic regression over :mod:`adaptive_router.verifiers.features`, fitted on
(step, correct) pairs from Records with responses, then recalibrated on a validation split (Platt
scaling: one slope and offset on the logit), so that a score of 0.8 means about 80% of such
answers were correct on data the fit never saw. Saved as ``config.json`` + ``model.safetensors``
like every checkpoint of the project; ``adaptive-router train-verifier`` builds one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.errors import CheckpointError, DataError
from adaptive_router.persistence import load_config, load_tensors, save_checkpoint
from adaptive_router.verifiers.base import Evidence, Verifier
from adaptive_router.verifiers.features import FEATURE_NAMES, feature_matrix

CHECKPOINT_KIND = "verifier"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, sample_weight: np.ndarray | None = None,
                 iterations: int = 50) -> tuple[np.ndarray, float]:
    """(weights, bias) of an L2-regularised logistic regression, by Newton's method.

    The bias is not penalised. ``l2`` is the penalty on the summed squared weights, in units of
    one example's log-loss (scikit-learn's ``1 / C``).
    """
    n, d = x.shape
    w = np.zeros(d + 1)
    xb = np.hstack([x, np.ones((n, 1))])
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = _sigmoid(xb @ w)
        grad = xb.T @ (sw * (p - y)) + penalty * w
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[:-1], float(w[-1])


class TrainedVerifier(Verifier):
    """Logistic regression over step features, Platt-calibrated on validation."""

    name = "trained"

    def __init__(self, weights: Sequence[float], bias: float, mean: Sequence[float],
                 scale: Sequence[float], calibration: tuple[float, float] = (1.0, 0.0),
                 feature_names: Sequence[str] = FEATURE_NAMES, report: dict[str, Any] | None = None) -> None:
        if list(feature_names) != list(FEATURE_NAMES):
            raise CheckpointError(
                f"this verifier was trained on features {list(feature_names)}, but this version of "
                f"adaptive-router computes {list(FEATURE_NAMES)}; retrain it with "
                "`adaptive-router train-verifier`")
        self.weights = np.asarray(weights, dtype=np.float64)
        self.bias = float(bias)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.calibration = (float(calibration[0]), float(calibration[1]))
        self.report = dict(report or {})

    # -- scoring ---------------------------------------------------------------------------------
    def logits(self, features: np.ndarray) -> np.ndarray:
        """Uncalibrated logits of a feature matrix."""
        return ((features - self.mean) / self.scale) @ self.weights + self.bias

    def proba_from_features(self, features: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return _sigmoid(a * self.logits(features) + b)

    def _score_batch(self, evidence: Sequence[Evidence]) -> np.ndarray:
        return self.proba_from_features(feature_matrix(evidence))

    # -- fitting ---------------------------------------------------------------------------------
    @classmethod
    def fit(cls, features: np.ndarray, correct: np.ndarray, val_features: np.ndarray | None = None,
            val_correct: np.ndarray | None = None, l2: float = 1.0,
            sample_weight: np.ndarray | None = None) -> TrainedVerifier:
        """Fit on (features, correct); recalibrate on the validation pair when given."""
        y = np.asarray(correct, dtype=np.float64)
        if len(y) < 10 or len(np.unique(y)) < 2:
            raise DataError(
                f"a verifier needs correct and incorrect answers to learn from; got {len(y)} steps "
                f"with {int(y.sum())} correct. Use records with more prompts (or a quality score "
                "that varies)")
        mean = features.mean(axis=0)
        scale = features.std(axis=0)
        scale[scale < 1e-9] = 1.0
        w, b = fit_logistic((features - mean) / scale, y, l2=l2, sample_weight=sample_weight)
        model = cls(w, b, mean, scale)
        if val_features is not None and val_correct is not None and len(np.unique(val_correct)) == 2:
            z = model.logits(val_features)[:, None]
            a, c = fit_logistic(z, np.asarray(val_correct, dtype=np.float64), l2=1e-3)
            if a[0] > 0:  # a calibration that reverses the ranking means the fit did not transfer
                model.calibration = (float(a[0]), float(c))
        return model

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        cfg = {"verifier_type": self.name, "feature_names": list(FEATURE_NAMES),
               "calibration": list(self.calibration), "report": self.report}
        tensors = {"weights": self.weights, "bias": np.array([self.bias]), "mean": self.mean,
                   "scale": self.scale}
        return save_checkpoint(directory, CHECKPOINT_KIND, cfg, tensors)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> TrainedVerifier:
        cfg = load_config(directory, expect_kind=CHECKPOINT_KIND)
        if cfg.get("verifier_type") != cls.name:
            raise CheckpointError(f"{directory} holds a {cfg.get('verifier_type')!r} verifier, "
                                  f"not a {cls.name!r} one")
        t = load_tensors(directory)
        missing = [k for k in ("weights", "bias", "mean", "scale") if k not in t]
        if missing:
            raise CheckpointError(f"{directory}/model.safetensors lacks {missing}; retrain the verifier")
        d = len(FEATURE_NAMES)
        if not (t["weights"].shape == t["mean"].shape == t["scale"].shape == (d,)):
            raise CheckpointError(f"{directory}: weights of the wrong shape for {d} features; "
                                  "retrain the verifier")
        cal = cfg.get("calibration", [1.0, 0.0])
        return cls(t["weights"], float(t["bias"][0]), t["mean"], t["scale"],
                   calibration=(float(cal[0]), float(cal[1])),
                   feature_names=cfg.get("feature_names", FEATURE_NAMES), report=cfg.get("report"))

    def feature_weights(self) -> dict[str, float]:
        """Each feature's weight on the standardised scale (what the report shows)."""
        return {n: float(w) for n, w in zip(FEATURE_NAMES, self.weights, strict=True)}

    def describe(self) -> str:
        return "trained"
