"""A traffic log read once, streamed, into the compact arrays retraining learns from.

Why: a parsed :class:`~adaptive_router.traffic.TrafficLogLine` (messages, samples, the decision
with its predictions and prices) weighs kilobytes in Python, so a million logged requests held
as a list took more memory than the machine has. Retraining needs far less per request: the
prompt (deduplicated: traffic repeats prompts, and each distinct one is embedded once), the
served candidate, its propensity, the quality label, the realised and expected costs, the knob
and the task tag. :func:`read_compact` streams the log (:func:`.logs.iter_logs`), joins late
feedback and labels each line as it goes, and keeps one row of numbers per request in growable
arrays; the methods below do what :mod:`.fleet` and :mod:`.bandit` do on lists of lines, with
the same results (``tests/test_retrain_streaming.py`` checks it against the list-based job).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from adaptive_router.training.retrain.bandit import LoggedBandit, policy_from_description
from adaptive_router.training.retrain.fleet import task_tag
from adaptive_router.training.retrain.labels import (
    check_label_source,
    judge_answers,
    line_label,
    served_answer,
)
from adaptive_router.training.retrain.logs import LogReadStats, iter_logs

from adaptive_router.domain import Candidate, Fleet
from adaptive_router.errors import DataError
from adaptive_router.policy import Policy
from adaptive_router.traffic import TrafficLogLine

#: Why a logged request is left out of the bandit data, in the order the checks run.
DROP_REASONS = (
    "request failed",
    "no quality label",
    "served candidate unknown to the base router (pass --fleet or --base none to learn it)",
    "no expected cost of every candidate in the decision",
    "no policy knob in the decision (pass --threshold)",
)


class _Interner:
    """Distinct values and their ids, in first-seen order (a string table)."""

    def __init__(self) -> None:
        self.ids: dict[Any, int] = {}
        self.values: list[Any] = []

    def __call__(self, value: Any) -> int:
        i = self.ids.get(value)
        if i is None:
            i = self.ids[value] = len(self.values)
            self.values.append(value)
        return i


class _CostColumns:
    """Each candidate's logged expected cost per line, NaN where a line did not price it (a
    candidate added to the fleet later appears as a new column, back-filled with NaN)."""

    def __init__(self) -> None:
        self.cols: dict[str, array] = {}
        self.n = 0

    def append(self, costs: Mapping[str, Any]) -> None:
        for key, value in costs.items():
            col = self.cols.get(key)
            if col is None:
                col = self.cols[key] = array("d", [math.nan]) * self.n
            col.append(float(value))
        self.n += 1
        for col in self.cols.values():
            if len(col) < self.n:
                col.append(math.nan)

    def column(self, key: str) -> np.ndarray:
        col = self.cols.get(key)
        return np.full(self.n, np.nan) if col is None else _np(col, np.float64)


@dataclass
class CompactLog:
    """One row per logged request (every line read, usable or not)."""

    stats: LogReadStats
    prompts: list[str]  # the distinct prompts, first-seen order
    prompt_ids: np.ndarray  # (N,) index into ``prompts``
    request_ids: list[str]
    error: np.ndarray  # (N,) bool
    labels: np.ndarray  # (N,) quality in [0, 1], NaN when none
    served_keys: list[str]  # distinct served candidate keys
    served_ids: np.ndarray  # (N,) index into ``served_keys``
    named_served: set[str]  # served keys that a decision named (candidate or model)
    policy_texts: list[str]  # distinct logged policy descriptions
    policy_ids: np.ndarray
    explored: np.ndarray
    propensities: np.ndarray
    costs: np.ndarray  # realised dollars
    prompt_tokens: np.ndarray
    task_names: list[str | None]  # distinct task tags (None first)
    task_ids: np.ndarray
    expected: dict[str, np.ndarray]  # candidate -> (N,) logged expected cost, NaN when unpriced
    predictions_by_prompt: dict[str, dict[str, float]]  # the last logged predictions per prompt
    predicted_seen: Counter[str] = field(default_factory=Counter)
    predicted_one: Counter[str] = field(default_factory=Counter)
    label_sources: Counter[str] = field(default_factory=Counter)
    feedback_joined: int = 0

    def __len__(self) -> int:
        return int(self.prompt_ids.shape[0])

    def _medians(self) -> dict[str, float]:
        out = {}
        for key, col in self.expected.items():
            vals = col[~np.isnan(col)]
            if vals.size:
                out[key] = float(np.median(vals))
        return out

    def fleet_keys(self) -> list[str]:
        """As :func:`.fleet.fleet_keys_from_logs`: every candidate priced or served, cheapest
        (median expected cost) first."""
        keys = set(self.expected) | self.named_served
        if not keys:
            raise DataError("the log names no candidates: pass --fleet (the plugin's fleet file)")
        medians = self._medians()
        return sorted(keys, key=lambda k: (medians.get(k, np.inf), k))

    def reference(self, keys: Sequence[str]) -> str:
        """As :func:`.fleet.reference_from_logs`."""
        ones = [k for k in keys if self.predicted_seen[k] and self.predicted_one[k] == self.predicted_seen[k]]
        if ones and len(ones) < len(keys):
            return Candidate.from_key(ones[0]).model
        medians = self._medians()
        priced = [k for k in keys if k in medians]
        if not priced:
            return Candidate.from_key(keys[-1]).model
        return Candidate.from_key(max(priced, key=lambda k: medians[k])).model

    def fill_expected_costs(self, keys: Sequence[str], fleet: Fleet | None) -> int:
        """As :func:`.fleet.fill_expected_costs`: price every candidate on every line that
        missed it (from the fleet's prices and the line's prompt tokens, else the candidate's
        median logged cost); returns how many prices were filled."""
        medians = self._medians()
        filled = 0
        for key in keys:
            col = self.expected.get(key)
            col = np.full(len(self), np.nan) if col is None else col
            missing = np.flatnonzero(np.isnan(col))
            if missing.size == 0:
                self.expected[key] = col
                continue
            cand = Candidate.from_key(key)
            model = fleet.model(cand.model) if fleet is not None and cand.model in fleet.model_names else None
            tokens = self.prompt_tokens[missing]
            by_price = tokens > 0 if model is not None else np.zeros(missing.size, dtype=bool)
            if (~by_price).any() and key not in medians:
                raise DataError(f"candidate {key} has no expected cost in the log and no price: pass "
                                "--fleet (the plugin's fleet file) so that its cost can be estimated")
            if model is not None:
                price, out_tokens = model.resolved_price(), int(cand.n * model.expected_output_tokens)
                cost_of = {int(t): price.cost(int(t), out_tokens) for t in np.unique(tokens[by_price])}
                col[missing[by_price]] = [cost_of[int(t)] for t in tokens[by_price]]
            if (~by_price).any():
                col[missing[~by_price]] = medians[key]
            self.expected[key] = col
            filled += int(missing.size)
        return filled

    def bandit(self, keys: Sequence[str], default_policy: Policy | None = None,
               with_tasks: bool = True) -> tuple[LoggedBandit, Counter[str]]:
        """As :func:`.bandit.build_bandit`: the usable requests as bandit data, and why the
        others were left out (reasons in the order they first occur in the log)."""
        keys = list(keys)
        index = {k: j for j, k in enumerate(keys)}
        action_of = np.array([index.get(k, -1) for k in self.served_keys], dtype=np.int64)
        actions = action_of[self.served_ids] if len(self) else np.zeros(0, dtype=np.int64)
        exp = (np.stack([self.expected.get(k, np.full(len(self), np.nan)) for k in keys], axis=1)
               if keys else np.zeros((len(self), 0)))
        policies = [policy_from_description(t) or default_policy for t in self.policy_texts]
        no_policy = np.array([p is None for p in policies], dtype=bool)
        checks = [self.error, ~np.isfinite(self.labels), actions < 0, np.isnan(exp).any(axis=1),
                  no_policy[self.policy_ids] if len(policies) else np.zeros(len(self), dtype=bool)]
        reason = np.full(len(self), -1, dtype=np.int64)
        for r, bad in enumerate(checks):
            reason[(reason < 0) & bad] = r
        dropped: Counter[str] = Counter()
        present = [r for r in range(len(checks)) if (reason == r).any()]
        for r in sorted(present, key=lambda r: int(np.argmax(reason == r))):
            dropped[DROP_REASONS[r]] = int((reason == r).sum())
        rows = np.flatnonzero(reason < 0)
        if rows.size == 0:
            raise DataError(
                "no logged request is usable for retraining: "
                + ", ".join(f"{v} x {k}" for k, v in dropped.items())
                + ". Log through the adaptive-router plugin (its decision carries the candidates' "
                "expected costs and the policy), and label quality with feedback, reward scores or a judge."
            )
        pid, tid, pol = self.prompt_ids[rows], self.task_ids[rows], self.policy_ids[rows]
        bandit = LoggedBandit(
            prompts=[self.prompts[i] for i in pid],
            actions=actions[rows].astype(int),
            propensities=self.propensities[rows].astype(np.float64),
            labels=self.labels[rows].astype(np.float64),
            costs=self.costs[rows].astype(np.float64),
            expected_costs=exp[rows],
            policies=[policies[i] for i in pol],  # type: ignore[misc]  # None ruled out above
            explored=self.explored[rows].astype(bool),
            request_ids=[self.request_ids[i] for i in rows],
            candidate_keys=keys,
            tasks=[self.task_names[i] for i in tid] if with_tasks else None,
        )
        return bandit, dropped


def _np(values: array, dtype: Any) -> np.ndarray:
    """A growable array's contents as a numpy array (a copy, so the buffer can be freed)."""
    return np.frombuffer(values, dtype=dtype).copy() if len(values) else np.zeros(0, dtype=dtype)


def _served_key(decision: Mapping[str, Any], memo: dict[tuple[str, int], str]) -> tuple[str, bool]:
    """The served candidate's key as :func:`.bandit.build_bandit` reads it, and whether the
    decision named it (what :func:`.fleet.fleet_keys_from_logs` counts)."""
    if decision.get("candidate"):
        return decision["candidate"], True
    model, n = str(decision.get("model")), int(decision.get("n") or 1)
    key = memo.get((model, n))
    if key is None:
        key = memo[(model, n)] = Candidate(model=model, n=n).key
    return key, bool(decision.get("model"))


def read_compact(
    logs: Sequence[str | Path],
    feedback: Mapping[str, Mapping[str, Any]] | None = None,
    label_source: str = "auto",
    judge: Callable[[str, str], float | None] | None = None,
    reward_temperature: float = 1.0,
    progress: bool = True,
    lines: Sequence[TrafficLogLine] | None = None,
    keep_predictions: bool = True,
) -> CompactLog:
    """Stream ``logs`` (or take ``lines``) into a :class:`CompactLog`: feedback joined by
    request id, each served answer labelled (:func:`.labels.line_label`; the judge, if any, is
    asked after the read, for the lines nothing else labels). ``keep_predictions``: keep each
    prompt's last logged predictions (only ``--base none`` replays them; with many distinct
    prompts they are the largest thing kept)."""
    check_label_source(label_source, judge)
    stats = LogReadStats()
    source = lines if lines is not None else iter_logs(list(logs), stats)
    if progress and lines is None:
        from tqdm.auto import tqdm

        source = tqdm(source, desc="reading the log", unit="line", mininterval=2.0)
    prompts, served, policies, tasks = _Interner(), _Interner(), _Interner(), _Interner()
    tasks(None)
    pid, sid, polid, tid = array("q"), array("q"), array("q"), array("q")
    error, explored = array("b"), array("b")
    labels, props, costs, tokens = array("d"), array("d"), array("d"), array("q")
    request_ids: list[str] = []
    named: set[str] = set()
    expected = _CostColumns()
    by_prompt: dict[str, dict[str, float]] = {}
    seen, ones, sources = Counter[str](), Counter[str](), Counter[str]()
    judge_rows: list[int] = []
    judge_items: list[tuple[str, str]] = []
    key_memo: dict[tuple[str, int], str] = {}
    matched = 0
    for i, line in enumerate(source):
        if feedback:
            fb = feedback.get(line.request_id)
            if fb:
                line.feedback = {**(line.feedback or {}), **fb}
                matched += 1
        value, src, ask = line_label(line, label_source, judge is not None, reward_temperature)
        if ask:
            judge_rows.append(i)
            judge_items.append((line.prompt, served_answer(line)))
        if src is not None:
            sources[src] += 1
        d = line.decision
        key, is_named = _served_key(d, key_memo)
        if is_named:
            named.add(key)
        preds = d.get("predictions") or {}
        for k, v in preds.items():
            seen[k] += 1
            ones[k] += float(v) >= 1.0 - 1e-9
        if keep_predictions:
            by_prompt[line.prompt] = preds
        pid.append(prompts(line.prompt))
        sid.append(served(key))
        polid.append(policies(str(d.get("policy", ""))))
        tid.append(tasks(task_tag(line)))
        request_ids.append(line.request_id)
        error.append(bool(line.error))
        explored.append(bool(line.explored))
        labels.append(math.nan if value is None else float(value))
        props.append(float(line.propensity))
        costs.append(float(line.cost_usd))
        tokens.append(int(line.prompt_tokens))
        expected.append(d.get("expected_costs_usd") or {})
    label_arr = _np(labels, np.float64)
    if judge_items:
        for i, v in zip(judge_rows, judge_answers(judge_items, judge, progress), strict=True):  # type: ignore[arg-type]
            if v is not None:
                label_arr[i] = v
                sources["judge"] += 1
    return CompactLog(
        stats=stats, prompts=prompts.values, prompt_ids=_np(pid, np.int64),
        request_ids=request_ids, error=_np(error, np.int8).astype(bool), labels=label_arr,
        served_keys=served.values, served_ids=_np(sid, np.int64), named_served=named,
        policy_texts=policies.values, policy_ids=_np(polid, np.int64),
        explored=_np(explored, np.int8).astype(bool),
        propensities=_np(props, np.float64),
        costs=_np(costs, np.float64),
        prompt_tokens=_np(tokens, np.int64),
        task_names=tasks.values, task_ids=_np(tid, np.int64),
        expected={k: expected.column(k) for k in expected.cols},
        predictions_by_prompt=by_prompt, predicted_seen=seen, predicted_one=ones,
        label_sources=sources, feedback_joined=matched)
