"""The trained verifier: P(correct | prompt, answer, agreement, the router's prior, answer length).

FrugalGPT's scorer, kept small enough to run on every request without a model load: an
L2-regularised logistic regression over :mod:`adaptive_router.verifiers.features`, fitted on
(step, correct) pairs from Records with responses, then recalibrated on a validation split (Platt
scaling: one slope and offset on the logit), so that a score of 0.8 means about 80% of such
answers were correct on data the fit never saw.

Models fail differently (a small model's wrong answers look unlike a large one's), so there is one
head per model the verifier was trained on, and a pooled head for any other model. Saved as
``config.json`` + ``model.safetensors`` like every checkpoint of the project;
``adaptive-router train-verifier`` builds one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.errors import CheckpointError, DataError
from adaptive_router.persistence import load_config, load_tensors, save_checkpoint
from adaptive_router.verifiers.base import Evidence, Verifier
from adaptive_router.verifiers.features import FEATURE_NAMES, feature_matrix

CHECKPOINT_KIND = "verifier"
#: The head used for a model the verifier has no head of its own for.
POOLED = "*"
#: A model needs this many training pairs of both kinds for a head of its own.
MIN_PAIRS_PER_CLASS = 20


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 50) -> tuple[np.ndarray, float]:
    """(weights, bias) of an L2-regularised logistic regression, by Newton's method.

    The bias is not penalised. ``l2`` is the penalty on the summed squared weights, in units of
    one example's log-loss (scikit-learn's ``1 / C``).
    """
    n, d = x.shape
    w = np.zeros(d + 1)
    xb = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = _sigmoid(xb @ w)
        grad = xb.T @ (p - y) + penalty * w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return w[:-1], float(w[-1])


@dataclass
class Head:
    """One logistic regression over standardised features, with its Platt calibration."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray
    calibration: tuple[float, float] = (1.0, 0.0)

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.weights + self.bias

    def proba(self, features: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return _sigmoid(a * self.logits(features) + b)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
            l2: float) -> Head:
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-9] = 1.0
        w, b = fit_logistic((x - mean) / scale, y, l2=l2)
        head = cls(w, b, mean, scale)
        if x_val is not None and y_val is not None and len(np.unique(y_val)) == 2:
            a, c = fit_logistic(head.logits(x_val)[:, None], y_val, l2=1e-3)
            if a[0] > 0:  # a calibration that reverses the ranking means the fit did not transfer
                head.calibration = (float(a[0]), float(c))
        return head


def _both_classes(y: np.ndarray, minimum: int) -> bool:
    return int(y.sum()) >= minimum and int((1 - y).sum()) >= minimum


class TrainedVerifier(Verifier):
    """Logistic regression heads (one per model, one pooled) over step features, calibrated."""

    name = "trained"

    def __init__(self, heads: Mapping[str, Head], report: dict[str, Any] | None = None) -> None:
        if POOLED not in heads:
            raise CheckpointError("a trained verifier needs a pooled head ('*'); retrain it")
        self.heads = dict(heads)
        self.report = dict(report or {})

    # -- scoring ---------------------------------------------------------------------------------
    def proba_from_features(self, features: np.ndarray, models: Sequence[str | None] | None = None) -> np.ndarray:
        """Calibrated P(correct) of a feature matrix, each row by its model's head."""
        models = list(models) if models is not None else [None] * len(features)
        out = np.empty(len(features))
        names = np.array([m if m in self.heads else POOLED for m in models], dtype=object)
        for name in set(names.tolist()):
            rows = names == name
            out[rows] = self.heads[name].proba(features[rows])
        return out

    def _score_batch(self, evidence: Sequence[Evidence]) -> np.ndarray:
        return self.proba_from_features(feature_matrix(evidence), [ev.model for ev in evidence])

    # -- fitting ---------------------------------------------------------------------------------
    @classmethod
    def fit(cls, features: np.ndarray, correct: np.ndarray, models: Sequence[str | None],
            val_features: np.ndarray | None = None, val_correct: np.ndarray | None = None,
            val_models: Sequence[str | None] | None = None, l2: float = 1.0) -> TrainedVerifier:
        """Fit the pooled head and a head per model with enough right and wrong answers;
        calibrate each on its validation rows when given."""
        y = np.asarray(correct, dtype=np.float64)
        if len(y) < 10 or len(np.unique(y)) < 2:
            raise DataError(
                f"a verifier needs correct and incorrect answers to learn from; got {len(y)} steps "
                f"with {int(y.sum())} correct. Use records with more prompts (or a quality score "
                "that varies)")
        m_tr = np.array([str(m) for m in models], dtype=object)
        has_val = val_features is not None and val_correct is not None
        y_va = np.asarray(val_correct, dtype=np.float64) if has_val else None
        m_va = np.array([str(m) for m in (val_models or [])], dtype=object) if has_val else None
        heads = {POOLED: Head.fit(features, y, val_features, y_va, l2)}
        for model in sorted(set(m_tr.tolist()) - {"None"}):
            rows = m_tr == model
            if not _both_classes(y[rows], MIN_PAIRS_PER_CLASS):
                continue
            vx = vy = None
            if has_val and m_va is not None and y_va is not None:
                vrows = m_va == model
                vx, vy = val_features[vrows], y_va[vrows]  # type: ignore[index]
            heads[model] = Head.fit(features[rows], y[rows], vx, vy, l2)
        return cls(heads)

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        names = list(self.heads)
        cfg = {"verifier_type": self.name, "feature_names": list(FEATURE_NAMES), "heads": names,
               "calibration": {n: list(self.heads[n].calibration) for n in names}, "report": self.report}
        tensors = {}
        for i, n in enumerate(names):
            h = self.heads[n]
            tensors.update({f"head{i}.weights": h.weights, f"head{i}.bias": np.array([h.bias]),
                            f"head{i}.mean": h.mean, f"head{i}.scale": h.scale})
        return save_checkpoint(directory, CHECKPOINT_KIND, cfg, tensors)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> TrainedVerifier:
        cfg = load_config(directory, expect_kind=CHECKPOINT_KIND)
        if cfg.get("verifier_type") != cls.name:
            raise CheckpointError(f"{directory} holds a {cfg.get('verifier_type')!r} verifier, "
                                  f"not a {cls.name!r} one")
        if list(cfg.get("feature_names", [])) != list(FEATURE_NAMES):
            raise CheckpointError(
                f"{directory} was trained on other features than this version of adaptive-router "
                "computes; retrain it with `adaptive-router train-verifier`")
        names = cfg.get("heads")
        cal = cfg.get("calibration")
        if not isinstance(names, list) or not isinstance(cal, dict):
            raise CheckpointError(f"{directory}/config.json lacks its heads; retrain the verifier")
        t = load_tensors(directory)
        d = len(FEATURE_NAMES)
        heads = {}
        for i, n in enumerate(names):
            parts = [t.get(f"head{i}.{k}") for k in ("weights", "bias", "mean", "scale")]
            if any(p is None for p in parts) or any(p.shape != (d,) for p in (parts[0], parts[2], parts[3])):
                raise CheckpointError(f"{directory}: head {n!r} is missing or of the wrong shape; "
                                      "retrain the verifier")
            a, b = cal.get(n, [1.0, 0.0])
            heads[str(n)] = Head(parts[0], float(parts[1][0]), parts[2], parts[3], (float(a), float(b)))
        return cls(heads, report=cfg.get("report"))

    def feature_weights(self) -> dict[str, dict[str, float]]:
        """Each head's weight per feature (standardised scale), for the report."""
        return {name: {f: float(w) for f, w in zip(FEATURE_NAMES, h.weights, strict=True)}
                for name, h in self.heads.items()}

    def describe(self) -> str:
        return "trained"
