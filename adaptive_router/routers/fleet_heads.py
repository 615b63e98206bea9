"""``fleet-heads``: one learned quality head per fleet candidate, learned from the traffic log.

Why it exists: the bundled default knows only generic ``strong#1`` / ``weak#1`` roles, and a
warm-started correction (:mod:`~adaptive_router.routers.feedback_tuned`) can only adjust
candidates its base already predicts. Served traffic, with its exploration, holds a few labelled
requests of *every* candidate; this router turns them into a head per candidate

    p(a | x) = sigmoid( c_a + theta_a . phi(x) ),   phi(x) = [ s(x), t(x), e(x) ]

where ``s(x)`` are the base router's logits on its informative columns (the default's
P(weak >= strong) is a difficulty signal every head may use), ``t(x)`` the probabilities of the
task / category tags seen in the log (a small softmax classifier on the embedding, so serving
needs only the prompt, as AR-LLM's domain probabilities do), and ``e(x)`` the prompt embedding's
leading principal components on the logged prompts (a few dozen numbers: explored candidates have
only tens of labelled requests, too few for 384 free weights). Features are standardised with the training log's mean and scale. How the heads are fitted
(propensity weighting, shrinkage toward each candidate's logged mean and its role's prior) is in
:mod:`adaptive_router.training.retrain.heads`; this module only predicts and persists.

Predictions are absolute expected quality in [0, 1] (no reference column). The base router, when
there is one, is saved inside the checkpoint (``base/``) so the folder is self-contained.

Each role's pooled head is kept too (``role_names``, ``role_theta``, ``role_bias``): bound to a
fleet that grew (:meth:`FleetHeadsRouter.bind_fleet`, which the plugin calls on load), a model the
router has not learned yet is predicted by its role's head, so it can be served and explored at
once, and the next retraining learns its own head.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptive_router.domain import Candidate
from adaptive_router.errors import CheckpointError, RoutingError
from adaptive_router.routers.base import Router
from adaptive_router.routers.feedback_tuned import logit, sigmoid

if TYPE_CHECKING:
    from adaptive_router.domain import Fleet

BASE_DIR = "base"


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class FleetHeadsRouter(Router):
    """A logistic quality head per candidate over base logits, task probabilities and embedding."""

    name = "fleet-heads"

    def __init__(
        self,
        candidate_keys: Sequence[str],
        base: Router | None = None,
        base_columns: Sequence[str] = (),
        encoder: str = "minilm",
        tasks: Sequence[str] = (),
        roles: dict[str, str] | None = None,
        generation: int = 1,
        theta: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        feature_mean: np.ndarray | None = None,
        feature_scale: np.ndarray | None = None,
        task_weight: np.ndarray | None = None,
        task_bias: np.ndarray | None = None,
        dim: int = 384,
        components: int = 0,
        projection: np.ndarray | None = None,
        projection_mean: np.ndarray | None = None,
        role_names: Sequence[str] = (),
        role_theta: np.ndarray | None = None,
        role_bias: np.ndarray | None = None,
    ) -> None:
        super().__init__(candidate_keys)
        self.base = base
        self.base_columns = list(base_columns)
        if self.base_columns and base is None:
            raise RoutingError("base_columns given without a base router")
        self._base_idx = base.restrict(self.base_columns) if base is not None and self.base_columns else None
        self.encoder = encoder
        self.tasks = list(tasks)
        self.roles = dict(roles or {})
        self.generation = int(generation)
        self.dim = int(dim)
        self.components = int(components)
        self.projection = (np.zeros((self.dim, self.components)) if projection is None
                           else np.asarray(projection, np.float64))
        self.projection_mean = (np.zeros(self.dim) if projection_mean is None
                                else np.asarray(projection_mean, np.float64))
        k, f = len(self.candidate_keys), self.num_features
        self.theta = np.zeros((k, f)) if theta is None else np.asarray(theta, np.float64)
        self.bias = np.zeros(k) if bias is None else np.asarray(bias, np.float64)
        self.feature_mean = np.zeros(f) if feature_mean is None else np.asarray(feature_mean, np.float64)
        self.feature_scale = np.ones(f) if feature_scale is None else np.asarray(feature_scale, np.float64)
        t = len(self.tasks)
        self.task_weight = np.zeros((t, self.dim)) if task_weight is None else np.asarray(task_weight, np.float64)
        self.task_bias = np.zeros(t) if task_bias is None else np.asarray(task_bias, np.float64)
        if self.theta.shape != (k, f) or self.bias.shape != (k,):
            raise RoutingError(f"heads have shapes {self.theta.shape} / {self.bias.shape}, "
                               f"expected ({k}, {f}) / ({k},)")
        self.role_names = list(role_names)
        self.role_theta = (np.zeros((len(self.role_names), f)) if role_theta is None
                           else np.asarray(role_theta, np.float64))
        self.role_bias = (np.zeros(len(self.role_names)) if role_bias is None
                          else np.asarray(role_bias, np.float64))
        self._encoder_obj: Any = None

    def set_role_heads(self, heads: dict[str, np.ndarray]) -> None:
        """Keep each role's pooled head (intercept first), for candidates added to the fleet later."""
        self.role_names = sorted(heads)
        self.role_bias = np.array([heads[r][0] for r in self.role_names])
        self.role_theta = np.stack([heads[r][1:] for r in self.role_names]) if heads else \
            np.zeros((0, self.num_features))

    def bind_fleet(self, fleet: Fleet) -> Router:
        """This router for ``fleet``: itself when it knows every candidate; else a copy whose
        unknown candidates are predicted by their role's pooled head (the fleet's reference model
        plays ``strong``, the others ``weak``, as the default binds them)."""
        keys = fleet.candidate_keys
        if all(k in self.candidate_keys for k in keys):
            return self
        reference = fleet.reference_model()
        theta, bias, roles = [], [], dict(self.roles)
        for key in keys:
            if key in self.candidate_keys:
                i = self.candidate_keys.index(key)
                theta.append(self.theta[i])
                bias.append(self.bias[i])
                continue
            role = "strong" if Candidate.from_key(key).model == reference else "weak"
            if role not in self.role_names:
                role = "any" if "any" in self.role_names else (self.role_names or [None])[0]
            if role is None:
                raise RoutingError(f"router {self.name} has no prediction for {key} and no role "
                                   "head to start it from; retrain it with the grown fleet")
            r = self.role_names.index(role)
            theta.append(self.role_theta[r])
            bias.append(self.role_bias[r])
            roles[key] = role
        bound = FleetHeadsRouter(
            keys, base=self.base, base_columns=self.base_columns, encoder=self.encoder,
            tasks=self.tasks, roles=roles, generation=self.generation, theta=np.stack(theta),
            bias=np.array(bias), feature_mean=self.feature_mean, feature_scale=self.feature_scale,
            task_weight=self.task_weight, task_bias=self.task_bias, dim=self.dim,
            components=self.components, projection=self.projection,
            projection_mean=self.projection_mean, role_names=self.role_names,
            role_theta=self.role_theta, role_bias=self.role_bias)
        bound.use_encoder(self._encoder_obj)
        return bound

    # -- features -------------------------------------------------------------------------------
    @property
    def num_features(self) -> int:
        return len(self.base_columns) + len(self.tasks) + self.components

    def feature_names(self) -> list[str]:
        """One name per feature column (the report and the priors' mapping use them)."""
        return ([f"base:{c}" for c in self.base_columns] + [f"task:{t}" for t in self.tasks]
                + [f"pc:{i}" for i in range(self.components)])

    def use_encoder(self, encoder: Any) -> None:
        """Embed with this encoder object (e.g. one with the training disk cache)."""
        self._encoder_obj = encoder

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        if self._encoder_obj is None:
            import os

            from adaptive_router.encoders import shared_encoder

            self._encoder_obj = shared_encoder(self.encoder,
                                               disk_cache=os.environ.get("ADAPTIVE_ROUTER_EMBED_CACHE"))
        return np.asarray(self._encoder_obj.encode(list(prompts)), dtype=np.float64)

    def task_probabilities(self, emb: np.ndarray) -> np.ndarray:
        """(n, T) probabilities of the log's task tags, predicted from the embedding."""
        if not self.tasks:
            return np.zeros((emb.shape[0], 0))
        return softmax(emb @ self.task_weight.T + self.task_bias)

    def raw_features(self, prompts: Sequence[str], emb: np.ndarray | None = None) -> np.ndarray:
        """Unstandardised ``[s(x), t(x), e(x)]`` for these prompts."""
        emb = self.embed(prompts) if emb is None else emb
        parts = []
        if self._base_idx is not None:
            parts.append(logit(self.base.predict_batch(prompts)[:, self._base_idx]))  # type: ignore[union-attr]
        parts.append(self.task_probabilities(emb))
        parts.append((emb - self.projection_mean) @ self.projection)
        return np.concatenate(parts, axis=1)

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        return (raw - self.feature_mean) / self.feature_scale

    def predict_features(self, phi: np.ndarray) -> np.ndarray:
        """Predictions from standardised features (training and evaluation reuse them)."""
        return sigmoid(phi @ self.theta.T + self.bias)

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        return self.predict_features(self.standardise(self.raw_features(prompts)))

    # -- persistence ----------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "base_columns": self.base_columns, "encoder": self.encoder,
                "tasks": self.tasks, "roles": self.roles, "generation": self.generation,
                "dim": self.dim, "components": self.components, "role_names": self.role_names,
                "base_type": self.base.name if self.base is not None else None}

    def get_tensors(self) -> dict[str, np.ndarray]:
        t = {"theta": self.theta, "bias": self.bias, "feature_mean": self.feature_mean,
             "feature_scale": self.feature_scale, "projection": self.projection,
             "projection_mean": self.projection_mean}
        if self.role_names:
            t.update(role_theta=self.role_theta, role_bias=self.role_bias)
        if self.tasks:
            t.update(task_weight=self.task_weight, task_bias=self.task_bias)
        return {k: np.asarray(v, np.float32) for k, v in t.items()}

    def save_pretrained(self, directory: str | Path) -> Path:
        d = Path(directory)
        base_dir = d / BASE_DIR
        if base_dir.exists():
            shutil.rmtree(base_dir)
        if self.base is not None:
            self.base.save_pretrained(base_dir)
        return super().save_pretrained(d)

    @classmethod
    def from_state(cls, config: dict[str, Any], tensors: dict[str, np.ndarray],
                   directory: Path) -> FleetHeadsRouter:
        cfg = {k: v for k, v in config.items() if k != "base_type"}
        base = None
        if cfg.get("base_columns"):
            base_dir = Path(directory) / BASE_DIR
            if not base_dir.is_dir():
                raise CheckpointError(f"{directory} is a fleet-heads router without its base router "
                                      f"folder {base_dir}; copy the whole checkpoint folder")
            base = Router.from_pretrained(base_dir)
        return cls(base=base, **cfg, **{k: tensors.get(k) for k in (
            "theta", "bias", "feature_mean", "feature_scale", "task_weight", "task_bias",
            "projection", "projection_mean", "role_theta", "role_bias")})
