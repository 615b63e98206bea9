"""Retrain a router on the traffic it served, evaluate it honestly, promote it only if better.

``adaptive-router retrain --logs FILE --base DIR --out DIR`` runs :func:`retrain`:

1. **Read the log**: the project's traffic log (:mod:`adaptive_router.traffic`, one line per
   routed request, rotated files included) and/or LiteLLM's standard logging payloads
   (``StandardLoggingPayload`` JSON lines, as LiteLLM's loggers write them); the format is
   detected per line. Later feedback (``--feedback``, JSON lines keyed by ``request_id``) is
   joined on.
2. **Label quality** of each served answer, from (in ``auto`` order) explicit user feedback, the
   reward score logged for the chosen sample, or an LLM judge called through
   ``litellm.completion`` (any model LiteLLM can reach, e.g. a local one).
3. **Split** by prompt (a hash, so one prompt never lands on both sides) into train and
   held-out traffic.
4. **Warm-start fine-tune**: a :class:`~adaptive_router.routers.feedback_tuned.FeedbackTunedRouter`
   starts exactly at the base router's predictions and learns a penalised logit correction from
   the observed (prompt, served candidate, quality) triples; the penalty is chosen on a
   validation slice of the train traffic.
5. **Evaluate old against new** on the held-out traffic with off-policy estimators
   (:mod:`adaptive_router.training.offpolicy`): each logged request is re-decided by each router
   under the knob it was served with, and the value of both policies is estimated from the
   logged propensities (doubly robust by default; IPS and SNIPS reported too), for quality and
   for dollar cost, with standard errors and a paired difference.
6. **Promote** the new router only when its estimated utility (quality minus a cost weight
   times relative cost) beats the old one's by at least ``min_z`` standard errors.
7. **Report**: ``report.md``, ``quality_cost.png`` and ``retrain.json`` in the output folder;
   ``candidate/`` is the retrained router, ``router/`` the one to deploy (the candidate if
   promoted, else a copy of the base).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from adaptive_router.training.offpolicy import (
    PolicyComparison,
    compare_policies,
    deterministic_policy,
    estimate_value,
)
from pydantic import ValidationError

from adaptive_router.domain import Candidate
from adaptive_router.errors import ConfigError, DataError
from adaptive_router.policy import BudgetPolicy, Policy, ThresholdPolicy, TradeoffPolicy
from adaptive_router.routers.base import Router
from adaptive_router.routers.feedback_tuned import FeedbackTunedRouter, sigmoid
from adaptive_router.traffic import TrafficLogLine, traffic_log_files

LABEL_SOURCES = ("auto", "feedback", "reward", "judge")
ESTIMATORS = ("dr", "ips", "snips")
#: Fewest labelled requests on each side of the train / held-out split.
MIN_REQUESTS = 10

# -- 1. reading logs -------------------------------------------------------------------------------


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def _find_key(obj: Any, key: str, depth: int = 4) -> Any:
    """The first value under ``key`` in nested mappings (LiteLLM nests metadata variously)."""
    if depth < 0 or not isinstance(obj, Mapping):
        return None
    if key in obj and obj[key] is not None:
        return obj[key]
    for v in obj.values():
        found = _find_key(v, key, depth - 1)
        if found is not None:
            return found
    return None


def is_standard_logging_payload(data: Mapping[str, Any]) -> bool:
    """Whether a JSON object is a LiteLLM ``StandardLoggingPayload`` (or wraps one)."""
    if "standard_logging_object" in data:
        return True
    return "call_type" in data and "response_cost" in data and "decision" not in data


def from_standard_logging_payload(data: Mapping[str, Any]) -> TrafficLogLine | None:
    """A traffic log line from one LiteLLM ``StandardLoggingPayload`` (field names from
    ``litellm/types/utils.py``): ``messages``, ``response`` (the chat completion, its choices
    are the samples), ``model_group``, ``prompt_tokens``, ``completion_tokens``,
    ``response_cost``, ``response_time``, ``status``, ``error_str`` and ``metadata``.

    The routing decision and its propensity are read from an ``adaptive_router`` entry wherever
    the plugin put it in the payload (metadata, hidden params or the response); without one the
    request counts as routed deterministically to the model that served it (propensity 1).
    Returns None for payloads that are not chat completions with a prompt.
    """
    payload = data.get("standard_logging_object", data)
    if not isinstance(payload, Mapping):
        return None
    messages = payload.get("messages")
    if isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError:
            messages = [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping):
        messages = [messages]
    if not isinstance(messages, list) or not messages:
        return None
    users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
    prompt = _message_text(users[-1].get("content")) if users else ""
    if not prompt.strip():
        return None
    response = payload.get("response")
    if isinstance(response, str):
        try:
            response = json.loads(response)
        except json.JSONDecodeError:
            response = {"choices": [{"message": {"content": response}}]}
    choices = response.get("choices", []) if isinstance(response, Mapping) else []
    samples = [_message_text((c.get("message") or {}).get("content")) for c in choices
               if isinstance(c, Mapping)]
    meta = payload.get("metadata") or {}
    info = _find_key(payload, "adaptive_router") or {}
    decision = dict(info.get("decision", info)) if isinstance(info, Mapping) else {}
    model = decision.get("model") or payload.get("model_group") or payload.get("model")
    params = payload.get("model_parameters") or {}
    decision.setdefault("model", model)
    decision.setdefault("n", int(params.get("n") or len(samples) or 1))
    n_out = max(1, len(samples))
    completion = int(payload.get("completion_tokens") or 0)
    per_sample = [completion // n_out] * n_out
    failed = payload.get("status") == "failure" or bool(payload.get("error_str"))
    feedback = _find_key(meta, "feedback")
    try:
        return TrafficLogLine(
            request_id=str(payload.get("id") or payload.get("litellm_call_id") or ""),
            prompt=prompt,
            messages=[dict(m) for m in messages if isinstance(m, Mapping)],
            decision=decision,
            samples=samples,
            reward_scores=[float(s) for s in (info.get("scores") or [])] if isinstance(info, Mapping) else [],
            chosen_index=int(info.get("chosen_index", 0)) if isinstance(info, Mapping) else 0,
            prompt_tokens=int(payload.get("prompt_tokens") or 0),
            output_tokens=per_sample if samples else [],
            cost_usd=float(payload.get("response_cost") or 0.0),
            latency_s=float(payload.get("response_time") or 0.0),
            model_group=payload.get("model_group"),
            explored=bool(decision.get("explored", False)),
            propensity=float(decision.get("propensity", 1.0)),
            feedback=feedback if isinstance(feedback, Mapping) else None,
            error=str(payload.get("error_str") or "failed") if failed else None,
        )
    except ValidationError:
        return None


def _iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{lineno}: not a JSON line; is this a traffic log or a "
                                "file of LiteLLM StandardLoggingPayload JSON lines?") from None
            if isinstance(obj, dict):
                yield lineno, obj


@dataclass
class LogReadStats:
    """What reading the logs found (reported)."""

    files: list[str] = field(default_factory=list)
    traffic_lines: int = 0
    litellm_payloads: int = 0
    skipped: int = 0


def read_logs(paths: Sequence[str | Path], stats: LogReadStats | None = None) -> list[TrafficLogLine]:
    """Every request in the given logs (traffic logs with their rotations, or LiteLLM standard
    logging payloads, detected per line), oldest file first."""
    stats = stats if stats is not None else LogReadStats()
    lines: list[TrafficLogLine] = []
    for path in paths:
        files = traffic_log_files(path)
        if not files:
            raise DataError(f"log {path} does not exist; pass the traffic log the plugin writes "
                            "(ADAPTIVE_ROUTER_TRAFFIC_LOG) or a file of LiteLLM logging payloads")
        for file in files:
            stats.files.append(str(file))
            for lineno, obj in _iter_json_lines(file):
                if is_standard_logging_payload(obj):
                    line = from_standard_logging_payload(obj)
                    if line is None:
                        stats.skipped += 1
                        continue
                    stats.litellm_payloads += 1
                    lines.append(line)
                    continue
                try:
                    lines.append(TrafficLogLine.model_validate(obj))
                    stats.traffic_lines += 1
                except ValidationError as exc:
                    raise DataError(f"{file}:{lineno}: neither a traffic log line nor a LiteLLM "
                                    f"logging payload: {exc.errors()[0]['msg']}") from None
    return lines


def read_feedback(path: str | Path) -> dict[str, dict[str, Any]]:
    """Feedback that arrived after the fact: JSON lines ``{"request_id": ..., <fields>}``."""
    out: dict[str, dict[str, Any]] = {}
    for lineno, obj in _iter_json_lines(Path(path)):
        rid = obj.get("request_id")
        if not rid:
            raise DataError(f"{path}:{lineno}: feedback lines need a request_id")
        out[str(rid)] = {k: v for k, v in obj.items() if k != "request_id"}
    return out


def join_feedback(lines: list[TrafficLogLine], feedback: Mapping[str, Mapping[str, Any]]) -> int:
    """Attach feedback to the lines with those request ids; returns how many matched."""
    matched = 0
    for line in lines:
        fb = feedback.get(line.request_id)
        if fb:
            line.feedback = {**(line.feedback or {}), **fb}
            matched += 1
    return matched


# -- 2. quality labels -----------------------------------------------------------------------------


def feedback_quality(feedback: Mapping[str, Any] | None) -> float | None:
    """Quality in [0, 1] from explicit feedback fields, or None.

    Understood: ``score`` / ``quality`` (already in [0, 1]), ``correct`` (bool), ``thumbs``
    (``"up"``/``"down"``) or ``thumbs_up`` (bool), ``rating`` (1-5 stars).
    """
    if not feedback:
        return None
    for key in ("score", "quality"):
        if feedback.get(key) is not None:
            v = float(feedback[key])
            if not 0.0 <= v <= 1.0:
                raise DataError(f"feedback {key} must be within [0, 1], got {v}")
            return v
    if feedback.get("correct") is not None:
        return float(bool(feedback["correct"]))
    if feedback.get("thumbs_up") is not None:
        return float(bool(feedback["thumbs_up"]))
    thumbs = feedback.get("thumbs")
    if isinstance(thumbs, str) and thumbs.lower() in ("up", "down"):
        return 1.0 if thumbs.lower() == "up" else 0.0
    if feedback.get("rating") is not None:
        r = float(feedback["rating"])
        if not 1.0 <= r <= 5.0:
            raise DataError(f"feedback rating must be 1-5 stars, got {r}")
        return (r - 1.0) / 4.0
    return None


def reward_quality(line: TrafficLogLine, temperature: float = 1.0) -> float | None:
    """Quality in [0, 1] from the reward score logged for the served sample: the logistic of
    the score. A Bradley-Terry reward model's score difference is a log-odds of preference, so
    ``sigmoid(score)`` is the probability of beating a response scored 0. Lines whose scores
    came from another selector (majority-vote counts) carry no reward score."""
    selector = (line.model_extra or {}).get("selector", "reward")
    if selector != "reward":
        return None
    if line.chosen_index < len(line.reward_scores):
        s = float(line.reward_scores[line.chosen_index])
        if math.isfinite(s):
            return float(sigmoid(np.array(s / temperature)))
    return None


JUDGE_PROMPT = """You are grading an AI assistant's answer. Rate how correct and helpful the \
answer is on a scale from 1 (wrong or useless) to 10 (fully correct and helpful).

Question:
{prompt}

Answer:
{answer}

Reply with the number only."""


@dataclass
class JudgeLabeler:
    """An LLM judge called through ``litellm.completion``: any model LiteLLM reaches (a hosted
    model, a proxy via ``api_base``, or an in-process ``local/`` model registered in
    ``litellm.custom_provider_map``). The first integer 1-10 in its reply becomes
    ``(score - 1) / 9``; a reply without one leaves the request unlabelled."""

    model: str
    api_base: str | None = None
    api_key: str | None = None
    max_tokens: int = 8
    max_chars: int = 4000
    template: str = JUDGE_PROMPT
    calls: int = 0
    unparsed: int = 0

    def messages(self, prompt: str, answer: str) -> list[dict[str, str]]:
        text = self.template.format(prompt=prompt[: self.max_chars], answer=answer[: self.max_chars])
        return [{"role": "user", "content": text}]

    @staticmethod
    def parse(reply: str) -> float | None:
        m = re.search(r"\b(10|[1-9])\b", reply or "")
        return None if m is None else (int(m.group(1)) - 1) / 9.0

    def __call__(self, prompt: str, answer: str) -> float | None:
        import litellm

        kwargs: dict[str, Any] = {"model": self.model, "messages": self.messages(prompt, answer),
                                  "max_tokens": self.max_tokens, "temperature": 0.0}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        resp = litellm.completion(**kwargs)
        self.calls += 1
        score = self.parse(resp.choices[0].message.content or "")
        if score is None:
            self.unparsed += 1
        return score


def label_quality(
    lines: Sequence[TrafficLogLine],
    source: str = "auto",
    judge: Callable[[str, str], float | None] | None = None,
    reward_temperature: float = 1.0,
    progress: bool = True,
) -> tuple[np.ndarray, list[str | None]]:
    """A quality label in [0, 1] for each line's served answer (NaN when none) and its source.

    ``auto`` takes feedback when a line has it, else the logged reward score, else the judge
    (when one is given).
    """
    if source not in LABEL_SOURCES:
        raise ConfigError(f"unknown label source {source!r}; use one of {LABEL_SOURCES}")
    if source == "judge" and judge is None:
        raise ConfigError("--label-source judge needs a judge model: pass --judge-model MODEL "
                          "(any model litellm.completion can call)")
    labels = np.full(len(lines), np.nan)
    sources: list[str | None] = [None] * len(lines)
    needs_judge = []
    for i, line in enumerate(lines):
        if line.error or not line.samples:
            continue
        value, src = None, None
        if source in ("auto", "feedback"):
            value, src = feedback_quality(line.feedback), "feedback"
        if value is None and source in ("auto", "reward"):
            value, src = reward_quality(line, reward_temperature), "reward"
        if value is None and judge is not None and source in ("auto", "judge"):
            needs_judge.append(i)
            continue
        if value is not None:
            labels[i], sources[i] = value, src
    if needs_judge:
        from tqdm.auto import tqdm

        for i in tqdm(needs_judge, desc="judging answers", unit="answer", disable=not progress):
            line = lines[i]
            answer = line.samples[min(line.chosen_index, len(line.samples) - 1)]
            value = judge(line.prompt, answer)  # type: ignore[misc]
            if value is not None:
                labels[i], sources[i] = value, "judge"
    return labels, sources


# -- 3. the logged bandit data -------------------------------------------------------------------------


_KNOB_RE = re.compile(r"(threshold|tradeoff|budget)\(\$?([0-9.eE+-]+)\)")


def policy_from_description(description: str) -> Policy | None:
    """The greedy policy a logged ``Decision.policy`` string describes (exploration stripped):
    ``threshold(0.6)``, ``tradeoff(0.5)``, ``budget($0.01)``, ``epsilon(0.1, threshold(0.6))``."""
    m = _KNOB_RE.search(description or "")
    if m is None:
        return None
    kind, value = m.group(1), float(m.group(2))
    return {"threshold": ThresholdPolicy, "tradeoff": TradeoffPolicy, "budget": BudgetPolicy}[kind](value)


@dataclass
class LoggedBandit:
    """Labelled logged requests as bandit data over a router's candidates."""

    prompts: list[str]
    actions: np.ndarray  # index of the served candidate
    propensities: np.ndarray
    labels: np.ndarray  # quality of the served answer, [0, 1]
    costs: np.ndarray  # realised dollars
    expected_costs: np.ndarray  # (N, K) dollars, as the serving policy priced every candidate
    policies: list[Policy]  # the knob each request was served with (exploration stripped)
    explored: np.ndarray
    request_ids: list[str]
    candidate_keys: list[str]

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, idx: np.ndarray) -> LoggedBandit:
        idx = np.asarray(idx, dtype=int)
        return LoggedBandit(
            prompts=[self.prompts[i] for i in idx], actions=self.actions[idx],
            propensities=self.propensities[idx], labels=self.labels[idx], costs=self.costs[idx],
            expected_costs=self.expected_costs[idx], policies=[self.policies[i] for i in idx],
            explored=self.explored[idx], request_ids=[self.request_ids[i] for i in idx],
            candidate_keys=self.candidate_keys)


def build_bandit(lines: Sequence[TrafficLogLine], labels: np.ndarray, candidate_keys: Sequence[str],
                 default_policy: Policy | None = None) -> tuple[LoggedBandit, Counter[str]]:
    """Bandit data from labelled lines; also counts why lines were left out."""
    keys = list(candidate_keys)
    index = {k: j for j, k in enumerate(keys)}
    dropped: Counter[str] = Counter()
    rows: list[tuple[TrafficLogLine, int, float, np.ndarray, Policy]] = []
    for line, y in zip(lines, labels, strict=True):
        if line.error:
            dropped["request failed"] += 1
            continue
        if not np.isfinite(y):
            dropped["no quality label"] += 1
            continue
        d = line.decision
        key = d.get("candidate") or Candidate(model=str(d.get("model")), n=int(d.get("n") or 1)).key
        if key not in index:
            dropped["served candidate unknown to the base router"] += 1
            continue
        exp = d.get("expected_costs_usd") or {}
        if not all(k in exp for k in keys):
            dropped["no expected cost of every candidate in the decision"] += 1
            continue
        policy = policy_from_description(str(d.get("policy", ""))) or default_policy
        if policy is None:
            dropped["no policy knob in the decision (pass --threshold)"] += 1
            continue
        rows.append((line, index[key], float(y), np.array([float(exp[k]) for k in keys]), policy))
    if not rows:
        raise DataError(
            "no logged request is usable for retraining: "
            + ", ".join(f"{v} x {k}" for k, v in dropped.items())
            + ". Log through the adaptive-router plugin (its decision carries the candidates' "
            "expected costs and the policy), and label quality with feedback, reward scores or a judge."
        )
    bandit = LoggedBandit(
        prompts=[r[0].prompt for r in rows],
        actions=np.array([r[1] for r in rows], dtype=int),
        propensities=np.array([r[0].propensity for r in rows], dtype=np.float64),
        labels=np.array([r[2] for r in rows]),
        costs=np.array([r[0].cost_usd for r in rows]),
        expected_costs=np.stack([r[3] for r in rows]),
        policies=[r[4] for r in rows],
        explored=np.array([r[0].explored for r in rows], dtype=bool),
        request_ids=[r[0].request_id for r in rows],
        candidate_keys=keys,
    )
    return bandit, dropped


def split_by_prompt(prompts: Sequence[str], holdout: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train / held-out indices by a hash of the prompt: repeats of a prompt stay together."""
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"holdout must be within (0, 1), got {holdout}")
    u = np.array([int(hashlib.sha1(f"{seed}\0{p}".encode()).hexdigest()[:8], 16) / 16**8
                  for p in prompts])
    held = u < holdout
    return np.flatnonzero(~held), np.flatnonzero(held)


# -- 4. warm-started fine-tuning ------------------------------------------------------------------------


def _fit_correction(base_logits: np.ndarray, emb: np.ndarray, actions: np.ndarray, labels: np.ndarray,
                    l2: float, init: tuple[np.ndarray, np.ndarray, np.ndarray], steps: int,
                    lr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimise mean binary cross-entropy of the served candidates' corrected predictions plus
    ``l2/2`` x the squared norm of the correction (full-batch Adam; the problem is convex)."""
    u, v, b = (x.copy() for x in init)
    n = len(actions)
    rows = np.arange(n)
    z0 = base_logits[rows, actions]
    params = [u, v, b]
    m = [np.zeros_like(p) for p in params]
    s = [np.zeros_like(p) for p in params]
    beta1, beta2 = 0.9, 0.999
    for t in range(1, steps + 1):
        z = z0 + emb @ u + np.einsum("nd,nd->n", emb, v[actions]) + b[actions]
        g = (sigmoid(z) - labels) / n
        grads = [emb.T @ g + l2 * u, np.zeros_like(v), np.zeros_like(b)]
        np.add.at(grads[1], actions, g[:, None] * emb)
        grads[1] += l2 * v
        np.add.at(grads[2], actions, g)
        grads[2] += l2 * b
        for p, gr, mm, ss in zip(params, grads, m, s, strict=True):
            mm *= beta1
            mm += (1 - beta1) * gr
            ss *= beta2
            ss += (1 - beta2) * gr**2
            p -= lr * (mm / (1 - beta1**t)) / (np.sqrt(ss / (1 - beta2**t)) + 1e-8)
    return u, v, b


def _bce(p: np.ndarray, y: np.ndarray) -> float:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def fine_tune_router(
    base: Router,
    bandit: LoggedBandit,
    l2_grid: Sequence[float] = (1e-3, 1e-2, 1e-1, 1.0),
    steps: int = 400,
    lr: float = 0.05,
    val_share: float = 0.2,
    seed: int = 0,
    encoder: str = "minilm",
) -> tuple[FeedbackTunedRouter, dict[str, Any]]:
    """Warm-start a feedback-tuned router from ``base`` and fit it on the logged triples.

    The L2 strength is chosen from ``l2_grid`` by the held-out cross-entropy of a validation
    slice of the train traffic (split by prompt), then the correction is refit on all of it.
    If ``base`` is itself feedback-tuned, training continues from its correction weights.
    """
    if isinstance(base, FeedbackTunedRouter):
        start = FeedbackTunedRouter(base.candidate_keys, base.base, encoder=base.encoder,
                                    shared_weight=base.shared_weight,
                                    candidate_weights=base.candidate_weights, bias=base.bias,
                                    generation=base.generation + 1)
    else:
        start = FeedbackTunedRouter(base.candidate_keys, base, encoder=encoder)
    from adaptive_router.encoders import shared_encoder, training_cache_path

    start.use_encoder(shared_encoder(start.encoder, disk_cache=training_cache_path()))
    cols = start.restrict(bandit.candidate_keys)
    emb = start.embed(bandit.prompts)
    base_logits = start.base_logits(bandit.prompts)
    # the correction learned so far (zero for a fresh start) is folded into the starting point
    k, d = len(start.candidate_keys), emb.shape[1]
    init = (start.shared_weight if start.shared_weight is not None else np.zeros(d),
            start.candidate_weights if start.candidate_weights is not None else np.zeros((k, d)),
            start.bias.copy())
    actions = cols[bandit.actions]
    y = bandit.labels
    fit_idx, val_idx = split_by_prompt(bandit.prompts, val_share, seed=seed + 1)
    base_val_loss = _bce(sigmoid(base_logits[val_idx, actions[val_idx]]
                                 + start.correction(emb[val_idx])[np.arange(val_idx.size), actions[val_idx]]),
                         y[val_idx]) if val_idx.size else float("nan")
    search: dict[float, float] = {}
    if len(fit_idx) >= 10 and len(val_idx) >= 5:
        for l2 in l2_grid:
            u, v, b = _fit_correction(base_logits[fit_idx], emb[fit_idx], actions[fit_idx],
                                      y[fit_idx], l2, init, steps, lr)
            z = (base_logits[val_idx, actions[val_idx]] + emb[val_idx] @ u
                 + np.einsum("nd,nd->n", emb[val_idx], v[actions[val_idx]]) + b[actions[val_idx]])
            search[float(l2)] = _bce(sigmoid(z), y[val_idx])
        best_l2 = min(search, key=lambda key: search[key])
    else:
        best_l2 = float(max(l2_grid))
    u, v, b = _fit_correction(base_logits, emb, actions, y, best_l2, init, steps, lr)
    router = FeedbackTunedRouter(start.candidate_keys, start.base, encoder=start.encoder,
                                 shared_weight=u, candidate_weights=v, bias=b,
                                 generation=start.generation)
    router.use_encoder(start._encoder_obj)
    info = {"l2": best_l2, "l2_search_val_bce": search, "base_val_bce": base_val_loss,
            "generation": router.generation, "train_requests": len(bandit),
            "base_type": start.base.name}
    return router, info


# -- 5. off-policy evaluation --------------------------------------------------------------------------


def policy_actions(router: Router, bandit: LoggedBandit, predictions: np.ndarray | None = None,
                   policy: Policy | None = None) -> np.ndarray:
    """The candidate ``router`` would serve for each logged prompt under each request's knob
    (or under ``policy`` for all), priced as the serving policy priced them."""
    preds = predictions if predictions is not None else router.predict_batch(bandit.prompts)
    preds = preds[:, router.restrict(bandit.candidate_keys)]  # columns in the log's order
    if policy is not None:
        return policy.choose(preds, bandit.expected_costs)
    out = np.empty(len(bandit), dtype=int)
    by_policy: dict[str, list[int]] = {}
    for i, p in enumerate(bandit.policies):
        by_policy.setdefault(p.describe(), []).append(i)
    for idxs in by_policy.values():
        ii = np.array(idxs)
        out[ii] = bandit.policies[idxs[0]].choose(preds[ii], bandit.expected_costs[ii])
    return out


@dataclass
class OfflineComparison:
    """Old vs new on held-out traffic: quality, cost and utility, by several estimators."""

    quality: dict[str, PolicyComparison]
    cost: dict[str, PolicyComparison]
    utility: dict[str, PolicyComparison]
    cost_scale: float
    cost_weight: float
    agreement: float  # share of held-out requests both routers decide alike
    replay_fidelity: float  # share of greedy (unexplored) logged decisions the base reproduces
    logged_quality: float
    logged_cost: float

    def as_dict(self) -> dict[str, Any]:
        return {"quality": {k: v.as_dict() for k, v in self.quality.items()},
                "cost_usd": {k: v.as_dict() for k, v in self.cost.items()},
                "utility": {k: v.as_dict() for k, v in self.utility.items()},
                "cost_scale_usd": self.cost_scale, "cost_weight": self.cost_weight,
                "agreement": self.agreement, "replay_fidelity": self.replay_fidelity,
                "logged_quality": self.logged_quality,
                "logged_cost_usd": self.logged_cost}


def outcome_model(train: LoggedBandit, prior_requests: float = 5.0) -> np.ndarray:
    """Mean quality of each candidate on the train traffic, shrunk towards the overall mean by
    ``prior_requests`` pseudo-requests: the doubly robust estimator's model of the quality of
    every candidate.

    Why not a router's predictions: they are whatever the router predicts (BEST-Route's are
    probabilities of matching the reference, not quality), so their level can be far from the
    labels'; with importance weights of 1 / propensity, an offset in the model becomes a large
    variance in DR. Calibrated means fitted on other traffic keep DR centred.
    """
    k = len(train.candidate_keys)
    overall = float(train.labels.mean())
    sums = np.bincount(train.actions, weights=train.labels, minlength=k)
    counts = np.bincount(train.actions, minlength=k).astype(np.float64)
    return (sums + prior_requests * overall) / (counts + prior_requests)


def compare_offline(old: Router, new: Router, held: LoggedBandit, cost_weight: float = 0.5,
                    q_old: np.ndarray | None = None, q_new: np.ndarray | None = None,
                    candidate_quality: np.ndarray | None = None) -> OfflineComparison:
    """Estimate old and new routers' value on held-out logged traffic.

    The direct-model part of the doubly robust estimator uses ``candidate_quality`` (each
    candidate's quality on the train traffic, :func:`outcome_model`; the held-out mean label
    when not given) and the serving policy's expected costs; both policies are evaluated with
    the same models so that the paired difference is fair.
    Utility = quality - ``cost_weight`` x cost / ``cost_scale``, where ``cost_scale`` is the mean
    expected cost of the dearest candidate on these prompts (so 1.0 = "always the dearest").
    """
    k = len(held.candidate_keys)
    q_old = old.predict_batch(held.prompts) if q_old is None else q_old
    q_new = new.predict_batch(held.prompts) if q_new is None else q_new
    a_old = policy_actions(old, held, q_old)
    a_new = policy_actions(new, held, q_new)
    t_old, t_new = deterministic_policy(a_old, k), deterministic_policy(a_new, k)
    cost_scale = float(np.mean(held.expected_costs.max(axis=1))) or 1.0
    if candidate_quality is None:
        candidate_quality = np.full(k, float(held.labels.mean()))
    q_quality = np.tile(np.asarray(candidate_quality, dtype=np.float64), (len(held), 1))
    q_cost = held.expected_costs
    utility = held.labels - cost_weight * held.costs / cost_scale
    q_utility = q_quality - cost_weight * q_cost / cost_scale
    out: dict[str, dict[str, PolicyComparison]] = {"quality": {}, "cost": {}, "utility": {}}
    for method in ESTIMATORS:
        for name, r, q in (("quality", held.labels, q_quality), ("cost", held.costs, q_cost),
                           ("utility", utility, q_utility)):
            out[name][method] = compare_policies(method, r, held.actions, held.propensities,
                                                 t_new, t_old, reward_predictions=q)
    greedy = ~held.explored
    fidelity = float(np.mean(a_old[greedy] == held.actions[greedy])) if greedy.any() else float("nan")
    return OfflineComparison(out["quality"], out["cost"], out["utility"], cost_scale, cost_weight,
                             float(np.mean(a_old == a_new)), fidelity, float(held.labels.mean()),
                             float(held.costs.mean()))


def threshold_curve(router: Router, held: LoggedBandit, preds: np.ndarray, q_quality: np.ndarray,
                    thresholds: Iterable[float]) -> list[dict[str, float]]:
    """DR estimates of quality and cost of ``router`` under a sweep of threshold knobs."""
    k = len(held.candidate_keys)
    points = []
    for t in thresholds:
        acts = policy_actions(router, held, preds, policy=ThresholdPolicy(float(t)))
        target = deterministic_policy(acts, k)
        q = estimate_value("dr", held.labels, held.actions, held.propensities, target, q_quality)
        c = estimate_value("dr", held.costs, held.actions, held.propensities, target,
                           held.expected_costs)
        points.append({"threshold": float(t), "quality": q.value, "quality_se": q.std_error,
                       "cost_usd": c.value, "cost_se": c.std_error})
    return points


# -- 6-7. the whole job --------------------------------------------------------------------------------


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
    """Retrain ``base`` on ``logs`` and write the report into ``out`` (see the module docstring)."""
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
    decisive = cmp.utility[estimator]
    promoted = bool(decisive.difference > 0 and decisive.z >= min_z)
    candidate_dir = new_router.save_pretrained(out_dir / "candidate")
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
        base_router.save_pretrained(router_dir)
    thresholds = np.linspace(0.05, 0.95, 19)
    q_quality = np.tile(candidate_quality, (len(held), 1))
    curves = {"old": threshold_curve(base_router, held, q_old, q_quality, thresholds),
              "new": threshold_curve(new_router, held, q_new, q_quality, thresholds)}
    label_counts = Counter(s for s in sources if s)
    summary: dict[str, Any] = {
        "promoted": promoted,
        "decision_rule": (f"promote iff the {estimator.upper()} estimate of utility(new) - "
                          f"utility(old) > 0 with z >= {min_z:g}; utility = quality - "
                          f"{cost_weight:g} x cost / {cmp.cost_scale:.6g} USD"),
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


# -- reporting -----------------------------------------------------------------------------------------


def plot_quality_cost(summary: Mapping[str, Any], cmp: OfflineComparison, path: Path) -> Path:
    """Quality against dollars per 1,000 requests, old vs new, from DR estimates on held-out
    traffic: threshold sweeps as lines, the served knobs as points with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    colours = {"old": "#7f7f7f", "new": "#1f77b4"}
    labels = {"old": f"base ({summary['base_type']})", "new": "retrained (feedback-tuned)"}
    for name in ("old", "new"):
        pts = sorted(summary["curves"][name], key=lambda p: p["cost_usd"])  # estimates are noisy:
        ax.plot([p["cost_usd"] * 1000 for p in pts], [p["quality"] for p in pts], "-o", ms=3,
                lw=0.8, color=colours[name], alpha=0.6,  # drawn in cost order, not knob order
                label=f"{labels[name]}: threshold sweep (0.05-0.95)")
    for name, attr in (("old", "old"), ("new", "new")):
        q = getattr(cmp.quality["dr"], attr)
        c = getattr(cmp.cost["dr"], attr)
        ax.errorbar([c.value * 1000], [q.value], xerr=[[1.96 * c.std_error * 1000]],
                    yerr=[[1.96 * q.std_error]], fmt="s", ms=8, capsize=4, color=colours[name],
                    label=f"{labels[name]} at the served knobs (95% CI)")
    ax.plot([cmp.logged_cost * 1000], [cmp.logged_quality], "*", ms=14, color="#d62728",
            label="served traffic (logged average, with exploration)")
    ax.set_xlabel("dollars per 1,000 requests (DR estimate)")
    ax.set_ylabel("quality (DR estimate)")
    verdict = "PROMOTED" if summary["promoted"] else "kept the base"
    ax.set_title(f"Retraining on {summary['held_out']} held-out logged requests: {verdict}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(est: Any, scale: float = 1.0, digits: int = 4) -> str:
    return f"{est.value * scale:.{digits}f} ± {est.std_error * scale:.{digits}f}"


def write_report(summary: Mapping[str, Any], cmp: OfflineComparison, path: Path, plot_name: str) -> Path:
    """The markdown report: data, labels, fine-tuning, estimates with standard errors, verdict."""
    fi = summary["fine_tune"]
    est = summary["estimator"].upper()
    lines = [
        "# Retraining report",
        "",
        f"**Verdict: {'PROMOTED the retrained router' if summary['promoted'] else 'kept the base router'}.** "
        f"Rule: {summary['decision_rule']}.",
        "",
        "## Data",
        f"- logs: {', '.join(summary['logs'])}",
        f"- {summary['traffic_lines']} traffic-log lines, {summary['litellm_payloads']} LiteLLM "
        f"standard logging payloads ({summary['skipped_payloads']} payloads skipped: not chat)",
        f"- feedback joined: {summary['feedback_joined']}; quality labels by source: "
        + ", ".join(f"{k} {v}" for k, v in summary["label_sources"].items()),
        f"- usable labelled requests: {summary['usable']} (train {summary['train']}, held out "
        f"{summary['held_out']}, split by prompt); left out: "
        + (", ".join(f"{v} x {k}" for k, v in summary["dropped"].items()) or "none"),
        f"- explored (epsilon) share of the served requests: {summary['explored_share']:.1%}",
        "- served share per candidate: " + ", ".join(
            f"{k} {v:.1%}" for k, v in summary["served_share"].items()),
        "",
        "## Fine-tuning (warm start)",
        f"Base router: `{summary['base']}` ({summary['base_type']}). The retrained router starts at "
        "the base router's predictions and learns a penalised logit correction on MiniLM prompt "
        "embeddings from the (prompt, served candidate, quality) triples of the train traffic "
        f"(generation {fi['generation']}). L2 strength {fi['l2']:g}, chosen on a validation slice "
        "by cross-entropy: " + ", ".join(f"{k:g} -> {v:.4f}" for k, v in fi["l2_search_val_bce"].items())
        + f" (the base router's: {fi['base_val_bce']:.4f}).",
        "",
        "## Old vs new on held-out traffic",
        f"Each held-out request is re-decided by each router under the knob it was served with "
        f"({cmp.agreement:.1%} of them both decide alike; the base router reproduces "
        f"{cmp.replay_fidelity:.1%} of the logged unexplored decisions; 100% means it is the "
        "router that served them). Values are off-policy estimates from "
        "the logged propensities, ± one standard error; DR is the decisive estimator unless "
        "`--estimator` says otherwise.",
        "",
        "| estimator | quality old | quality new | $/1k req old | $/1k req new | ESS new / N |",
        "|---|---|---|---|---|---|",
    ]
    for m in ESTIMATORS:
        q, c = cmp.quality[m], cmp.cost[m]
        lines.append(f"| {m.upper()} | {_fmt(q.old)} | {_fmt(q.new)} | {_fmt(c.old, 1000)} | "
                     f"{_fmt(c.new, 1000)} | {q.new.effective_sample_size:.0f} / {q.new.n} |")
    lines += [
        "",
        f"Logged (served) traffic on the same requests: quality {cmp.logged_quality:.4f}, "
        f"${cmp.logged_cost * 1000:.4f} per 1k requests. DR's outcome model: each candidate's "
        "mean quality on the train traffic, shrunk towards the overall mean by 5 pseudo-requests ("
        + ", ".join(f"{k} {v:.3f}" for k, v in summary["dr_outcome_model"].items())
        + "), and the expected cost of each candidate the serving policy logged.",
        "",
        "Paired differences (new - old), estimated from per-request differences on the same log:",
        "",
        "| quantity | estimator | difference | std. error | variance | z | 95% CI |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, group, scale in (("quality", cmp.quality, 1.0), ("$/1k requests", cmp.cost, 1000.0),
                               ("utility", cmp.utility, 1.0)):
        for m in ESTIMATORS:
            p = group[m]
            lo, hi = p.ci95
            lines.append(f"| {name} | {m.upper()} | {p.difference * scale:+.5f} | "
                         f"{p.std_error * scale:.5f} | {(p.std_error * scale) ** 2:.3g} | {p.z:+.2f} | "
                         f"[{lo * scale:+.5f}, {hi * scale:+.5f}] |")
    dec = cmp.utility[summary["estimator"]]
    lines += [
        "",
        f"Decisive: {est} utility difference {dec.difference:+.5f} ± {dec.std_error:.5f} "
        f"(z = {dec.z:+.2f}).",
        "",
        f"![quality and cost, old vs new]({plot_name})",
        "",
        "## How to read this",
        "- Logged traffic holds only the served candidate's answer, so the value of a router that "
        "would have served another candidate is estimated, not replayed. IPS reweights each "
        "logged outcome by pi_new(a|x) / p_logged(a|x) (Horvitz-Thompson; Li et al. 2011); SNIPS "
        "normalises by the sum of the weights (Swaminathan & Joachims 2015); DR adds a model of "
        "every candidate's outcome and corrects it with the weighted residual (Dudik, Langford & "
        "Li 2011), unbiased if either the propensities or the model are right.",
        "- Standard errors are the sample standard deviation of the per-request terms over "
        "sqrt(N) (delta method for SNIPS); the effective sample size (sum w)^2 / sum w^2 says how "
        "many logged requests effectively inform the new policy's estimate.",
        "- Quality labels are only as good as their source: feedback is the user's word, a reward "
        "score is the proxy reward model's opinion (sigmoid of its score), a judge is another model's.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
