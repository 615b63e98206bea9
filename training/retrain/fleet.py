"""What retraining needs to know about the fleet and the base router, from files or from the log.

``--base`` may name anything the plugin's ``router:`` accepts (a bundled router such as
``default``, a baseline, a checkpoint folder) or ``none``; the fleet comes from the plugin's
fleet file or, without one, from the candidates and expected costs the log lines carry. A
candidate the log prices on some lines only (a model added to the fleet later) gets its expected
cost on the other lines from the fleet's prices, or else from its median logged expected cost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptive_router.domain import Candidate, Fleet
from adaptive_router.errors import ConfigError, DataError
from adaptive_router.routers.base import Router
from adaptive_router.routers.embedding import EmbeddingRouter
from adaptive_router.routers.fleet_heads import FleetHeadsRouter
from adaptive_router.traffic import TrafficLogLine

#: Log metadata keys read as a request's task / category tag, in this order.
TASK_KEYS = ("task", "category", "task_name")


@dataclass
class BaseSpec:
    """The resolved ``--base``: the router to learn from and the one to compare against."""

    spec: str
    router: Router | None  # unbound (its own candidates): features and priors come from it
    serving: Router | None  # bound to the fleet: what the base would serve (None for ``none``)
    description: str


def resolve_base(spec: str | Path, fleet: Fleet | None) -> BaseSpec:
    """``none``, a bundled router name, a baseline name, or a checkpoint folder."""
    from adaptive_router.routers import BASELINES, load_router
    from adaptive_router.routers.pretrained import BUNDLED_ROUTERS, default_router_path

    text = str(spec)
    if text.lower() == "none":
        return BaseSpec(text, None, None, "none (heads learned from the log alone)")
    path = Path(text)
    if path.exists():
        unbound = Router.from_pretrained(path)
        where = f"checkpoint {path}"
    elif text in BUNDLED_ROUTERS:
        unbound = Router.from_pretrained(default_router_path(text))
        where = f"bundled router {text!r}"
    elif text in BASELINES:
        if fleet is None:
            raise ConfigError(f"--base {text} is a baseline built for a fleet: pass --fleet")
        serving = load_router(text, fleet=fleet)
        return BaseSpec(text, None, serving, f"baseline {text!r} (no prompt features)")
    else:
        raise ConfigError(f"--base {text!r} is neither a checkpoint folder, a bundled router "
                          f"({', '.join(BUNDLED_ROUTERS)}), a baseline ({', '.join(BASELINES)}) nor "
                          "'none'")
    serving = load_router(path if path.exists() else text, fleet=fleet) if fleet is not None else unbound
    return BaseSpec(text, unbound, serving, f"{where} ({unbound.name})")


def fleet_keys_from_logs(lines: Sequence[TrafficLogLine]) -> list[str]:
    """Every candidate the log's decisions priced or served, cheapest (median cost) first."""
    costs: dict[str, list[float]] = {}
    for line in lines:
        for key, value in (line.decision.get("expected_costs_usd") or {}).items():
            costs.setdefault(str(key), []).append(float(value))
        served = _served_key(line)
        if served:
            costs.setdefault(served, [])
    if not costs:
        raise DataError("the log names no candidates: pass --fleet (the plugin's fleet file)")
    return sorted(costs, key=lambda k: (float(np.median(costs[k])) if costs[k] else np.inf, k))


def reference_from_logs(lines: Sequence[TrafficLogLine], keys: Sequence[str]) -> str:
    """The model that played *strong* when the log was served: the one a generic-role router
    predicted 1 on every line (the default binds the fleet's reference that way), else the one
    with the highest median expected cost."""
    always_one = Counter[str]()
    seen = Counter[str]()
    costs: dict[str, list[float]] = {}
    for line in lines:
        for key, value in (line.decision.get("predictions") or {}).items():
            seen[key] += 1
            always_one[key] += float(value) >= 1.0 - 1e-9
        for key, value in (line.decision.get("expected_costs_usd") or {}).items():
            costs.setdefault(key, []).append(float(value))
    ones = [k for k in keys if seen[k] and always_one[k] == seen[k]]
    if ones and len(ones) < len(keys):
        return Candidate.from_key(ones[0]).model
    priced = [k for k in keys if costs.get(k)]
    if not priced:
        return Candidate.from_key(keys[-1]).model
    return Candidate.from_key(max(priced, key=lambda k: float(np.median(costs[k])))).model


def candidate_roles(base: Router | None, keys: Sequence[str], reference: str) -> dict[str, str]:
    """Each candidate's role, the group whose pooled head is its prior.

    A generic strong/weak router (the default) and a ``fleet-heads`` router learned from one:
    the reference model's candidates play ``strong``, the others ``weak`` (as the plugin binds
    them). A router trained on the fleet: ``base`` for candidates it predicts, ``new`` for the
    rest. No base: one role, ``any``.
    """
    if base is None:
        return {k: "any" for k in keys}
    generic = isinstance(base, EmbeddingRouter) and base.has_generic_roles
    if generic or isinstance(base, FleetHeadsRouter):
        known = base.roles if isinstance(base, FleetHeadsRouter) else {}
        return {k: known.get(k) or ("strong" if Candidate.from_key(k).model == reference else "weak")
                for k in keys}
    return {k: ("base" if k in base.candidate_keys else "new") for k in keys}


def _served_key(line: TrafficLogLine) -> str | None:
    d = line.decision
    if d.get("candidate"):
        return str(d["candidate"])
    if d.get("model"):
        return Candidate(model=str(d["model"]), n=int(d.get("n") or 1)).key
    return None


def fill_expected_costs(lines: Sequence[TrafficLogLine], keys: Sequence[str],
                        fleet: Fleet | None) -> int:
    """Price every candidate on every line that misses it; returns how many prices were filled.

    With a fleet: prompt tokens x input price + n x expected output tokens x output price (the
    plugin's own estimate). Without: the candidate's median expected cost over the lines that
    priced it. A candidate priced nowhere and absent from the fleet cannot be evaluated."""
    logged: dict[str, list[float]] = {}
    for line in lines:
        for k, v in (line.decision.get("expected_costs_usd") or {}).items():
            logged.setdefault(k, []).append(float(v))
    medians = {k: float(np.median(v)) for k, v in logged.items() if v}
    filled = 0
    for line in lines:
        exp: dict[str, Any] = dict(line.decision.get("expected_costs_usd") or {})
        missing = [k for k in keys if k not in exp]
        if not missing:
            continue
        for k in missing:
            exp[k] = _estimate(k, line, fleet, medians)
            filled += 1
        line.decision = {**line.decision, "expected_costs_usd": exp}
    return filled


def _estimate(key: str, line: TrafficLogLine, fleet: Fleet | None, medians: Mapping[str, float]) -> float:
    cand = Candidate.from_key(key)
    if fleet is not None and cand.model in fleet.model_names and line.prompt_tokens:
        model = fleet.model(cand.model)
        return model.resolved_price().cost(line.prompt_tokens, int(cand.n * model.expected_output_tokens))
    if key in medians:
        return medians[key]
    raise DataError(f"candidate {key} has no expected cost in the log and no price: pass --fleet "
                    "(the plugin's fleet file) so that its cost can be estimated")


def task_tag(line: TrafficLogLine) -> str | None:
    """The request's task / category tag from the log metadata, when it carries one."""
    extra = line.model_extra or {}
    for source in (extra, extra.get("metadata") or {}, line.feedback or {}):
        if isinstance(source, Mapping):
            for key in TASK_KEYS:
                value = source.get(key)
                if isinstance(value, str) and value.strip():
                    return value.strip()
    return None


class LoggedDecisionsRouter(Router):
    """The router that served the log, replayed from the predictions each decision logged.

    With ``--base none`` there is no base to re-decide the held-out traffic with; comparing the
    new router against what actually served (under the same knob) is the honest alternative.
    A candidate the serving router did not predict gets -1: it is never chosen."""

    name = "logged-decisions"

    def __init__(self, candidate_keys: Sequence[str],
                 lines: Sequence[TrafficLogLine] | Mapping[str, Mapping[str, Any]]) -> None:
        """``lines``: the log's lines, or (what a streamed log keeps) each prompt's last logged
        predictions."""
        super().__init__(candidate_keys)
        self._by_prompt: dict[str, np.ndarray] = {}
        pairs = (lines.items() if isinstance(lines, Mapping) else
                 ((line.prompt, line.decision.get("predictions") or {}) for line in lines))
        for prompt, preds in pairs:
            self._by_prompt[prompt] = np.array([float(preds.get(k, -1.0)) for k in self.candidate_keys])

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        missing = np.full(len(self.candidate_keys), -1.0)
        return np.stack([self._by_prompt.get(p, missing) for p in prompts])

    def save_pretrained(self, directory: str | Path) -> Path:
        raise ConfigError("the logged decisions are not a router to deploy; with --base none "
                          "only a promoted router is written to router/")


class PartialRouter(Router):
    """A base router over a fleet it only partly knows: -1 (never chosen) for the rest."""

    def __init__(self, inner: Router, candidate_keys: Sequence[str]) -> None:
        super().__init__(candidate_keys)
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self._cols = [inner.candidate_keys.index(k) if k in inner.candidate_keys else -1
                      for k in self.candidate_keys]

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        preds = self.inner.predict_batch(prompts)
        out = np.full((len(prompts), len(self._cols)), -1.0)
        for j, c in enumerate(self._cols):
            if c >= 0:
                out[:, j] = preds[:, c]
        return out

    def save_pretrained(self, directory: str | Path) -> Path:
        return self.inner.save_pretrained(directory)


def comparison_router(base: BaseSpec, keys: Sequence[str],
                      lines: Sequence[TrafficLogLine] | Mapping[str, Mapping[str, Any]]) -> Router:
    """The *old* side of the off-policy comparison: the base as it would serve these candidates,
    or (``--base none``) the logged decisions (``lines``, or each prompt's logged predictions)."""
    if base.serving is None:
        return LoggedDecisionsRouter(keys, lines)
    if all(k in base.serving.candidate_keys for k in keys):
        return base.serving
    return PartialRouter(base.serving, keys)
