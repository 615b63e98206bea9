"""Retraining from traffic logs: reading both log formats, labels, warm start, promotion."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from adaptive_router.training.retrain.bandit import policy_from_description, split_by_prompt
from adaptive_router.training.retrain.job import retrain
from adaptive_router.training.retrain.labels import JudgeLabeler, feedback_quality, label_quality
from adaptive_router.training.retrain.logs import from_standard_logging_payload, read_logs

from adaptive_router.domain import Candidate, Decision
from adaptive_router.errors import DataError
from adaptive_router.policy import EpsilonExploration, ThresholdPolicy
from adaptive_router.routers import register_router
from adaptive_router.routers.base import Router
from adaptive_router.routers.feedback_tuned import FeedbackTunedRouter
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter

KEYS = ["cheap#1", "cheap#3", "strong#1"]
COST = {"cheap#1": 0.0001, "cheap#3": 0.0003, "strong#1": 0.002}


class FixedRouter(Router):
    """A real (if simple) router: the same predictions for every prompt."""

    name = "test-fixed"

    def __init__(self, candidate_keys: Sequence[str], values: Sequence[float]) -> None:
        super().__init__(candidate_keys)
        self.values = list(values)

    def _predict(self, prompts: Sequence[str]) -> np.ndarray:
        return np.tile(np.asarray(self.values, dtype=float), (len(prompts), 1))

    def get_config(self):
        return {**super().get_config(), "values": self.values}


register_router(FixedRouter.name, f"{__name__}:FixedRouter")

EASY = ["What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}, please.",
        "How much is {a} times 2?"]
HARD = ["Prove that there are infinitely many primes congruent to {a} modulo {b}.",
        "Show rigorously that the series of 1/n^{a} converges, with an epsilon-delta proof for case {b}.",
        "Derive a closed form for the number of lattice paths avoiding {a} forbidden points in a {b}x{b} grid.",
        "Prove the inequality between the arithmetic and geometric means of {a} positive reals, case {b}."]
# true P(correct): cheap models are fine on easy prompts, only the strong one on hard ones
TRUTH = {"easy": [0.9, 0.95, 0.95], "hard": [0.1, 0.25, 0.85]}


def synthetic_traffic(path: Path, n: int, seed: int = 0, epsilon: float = 0.3) -> list[TrafficLogLine]:
    """Traffic served by a constant base router with epsilon-exploration; feedback = correct."""
    rng = np.random.default_rng(seed)
    policy = EpsilonExploration(ThresholdPolicy(0.6), epsilon, seed=seed)
    writer = TrafficLogWriter(path)
    lines = []
    for i in range(n):
        kind = "easy" if i % 2 == 0 else "hard"
        templates = EASY if kind == "easy" else HARD
        prompt = templates[i % 4].format(a=int(rng.integers(2, 90)), b=int(rng.integers(2, 90)))
        d: Decision = policy.decide(dict(zip(KEYS, [0.7, 0.75, 0.8], strict=True)), COST, router="test-fixed")
        j = KEYS.index(d.candidate.key)
        correct = bool(rng.random() < TRUTH[kind][j])
        line = TrafficLogLine(prompt=prompt, decision=d.as_dict(), samples=["answer"] * d.n,
                              reward_scores=[0.0] * d.n, chosen_index=0, prompt_tokens=20,
                              output_tokens=[50] * d.n, cost_usd=COST[d.candidate.key],
                              explored=d.explored, propensity=d.propensity,
                              feedback={"correct": correct})
        writer.write(line)
        lines.append(line)
    return lines


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("base")
    FixedRouter(KEYS, [0.7, 0.75, 0.8]).save_pretrained(d)
    return d


def test_retrain_learns_from_feedback_and_promotes(tmp_path, base_dir):
    log = tmp_path / "traffic.jsonl"
    synthetic_traffic(log, 400, seed=0)
    res = retrain([log], base_dir, tmp_path / "out", progress=False)
    s = res.summary
    assert s["usable"] == 400 and s["label_sources"] == {"feedback": 400}
    q = res.summary["comparison"]["quality"]["dr"]
    # the base always serves cheap#1 (quality ~0.5 on this mix); the retrained router learns to
    # send the hard prompts to the strong model
    assert q["old"]["value"] < 0.65
    assert q["new"]["value"] > q["old"]["value"] + 0.15
    assert res.promoted
    new = Router.from_pretrained(res.router_dir)
    assert isinstance(new, FeedbackTunedRouter) and isinstance(new.base, FixedRouter)
    hard, easy = HARD[0].format(a=3, b=4), EASY[0].format(a=3, b=4)
    p = new.predict_batch([hard, easy])
    assert p[0, 0] < 0.6 < p[1, 0]  # cheap#1 now fails the 0.6 knob on hard prompts only
    report = res.report_path.read_text()
    assert "PROMOTED" in report and "| DR |" in report and "variance" in report
    assert res.plot_path.stat().st_size > 10_000
    # retraining the retrained router continues from its correction weights
    res2 = retrain([log], res.router_dir, tmp_path / "out2", progress=False)
    assert res2.summary["fine_tune"]["generation"] == 2


def test_no_promotion_when_the_log_says_the_base_is_right(tmp_path, base_dir):
    """Every candidate equally good: the cheap choice of the base cannot be beaten."""
    log = tmp_path / "traffic.jsonl"
    lines = synthetic_traffic(log, 400, seed=0)  # the same prompts: embeddings are cached
    rng = np.random.default_rng(5)
    fb = tmp_path / "feedback.jsonl"
    fb.write_text("".join(json.dumps({"request_id": ln.request_id, "correct": bool(rng.random() < 0.9)})
                          + "\n" for ln in lines))
    res = retrain([log], base_dir, tmp_path / "out", feedback=fb, progress=False)
    assert res.summary["feedback_joined"] == 400
    assert not res.promoted
    assert Router.from_pretrained(res.router_dir).name == "test-fixed"
    assert "kept the base router" in res.report_path.read_text()


def test_feedback_fields_and_policy_descriptions():
    assert feedback_quality({"thumbs": "up"}) == 1.0
    assert feedback_quality({"rating": 4}) == 0.75
    assert feedback_quality({"correct": False}) == 0.0
    assert feedback_quality({"comment": "meh"}) is None
    with pytest.raises(DataError):
        feedback_quality({"score": 3})
    assert policy_from_description("epsilon(0.1, threshold(0.6))").describe() == "threshold(0.6)"
    assert policy_from_description("budget($0.002)").describe() == "budget($0.002)"
    assert policy_from_description("tradeoff(0.5)").describe() == "tradeoff(0.5)"
    assert policy_from_description("") is None


def test_reward_labels_and_split_keeps_prompts_together():
    line = TrafficLogLine(prompt="q", decision={"model": "m", "n": 2}, samples=["a", "b"],
                          reward_scores=[-1.0, 2.0], chosen_index=1)
    labels, sources = label_quality([line], "reward", progress=False)
    assert labels[0] == pytest.approx(1 / (1 + np.exp(-2.0))) and sources == ["reward"]
    votes = TrafficLogLine(prompt="q", decision={"model": "m", "n": 2}, samples=["a", "b"],
                           reward_scores=[1.0, 1.0], selector="majority")
    labels, _ = label_quality([votes], "reward", progress=False)
    assert np.isnan(labels[0])  # vote counts are not reward scores
    prompts = [f"p{i % 50}" for i in range(500)]
    tr, ho = split_by_prompt(prompts, 0.3)
    assert not {prompts[i] for i in tr} & {prompts[i] for i in ho}
    assert 0.15 < len(ho) / 500 < 0.45


def test_judge_reply_parsing():
    assert JudgeLabeler.parse("8") == pytest.approx(7 / 9)
    assert JudgeLabeler.parse("Score: 10/10") == 1.0
    assert JudgeLabeler.parse("I cannot say") is None


async def test_reads_real_litellm_standard_logging_payloads(tmp_path, litellm_payload):
    """Payloads produced by litellm itself (a CustomLogger capturing the standard_logging_object
    of a real SDK call), mixed with traffic-log lines in one file."""
    prompt = "What is 2+2? (retrain payload test)"
    payload = await litellm_payload(prompt, "4")
    line = from_standard_logging_payload(payload)
    assert line is not None and line.prompt == prompt and line.samples == ["4"]
    assert line.model == "gpt-4o-mini" and line.propensity == 1.0  # no decision logged
    assert line.cost_usd == pytest.approx(payload["response_cost"]) and line.prompt_tokens == 10
    # behind the proxy, the request's metadata arrives as metadata.requester_metadata
    payload["metadata"]["requester_metadata"] = {
        "adaptive_router": {"model": "gpt-4o-mini", "n": 1, "candidate": "gpt-4o-mini#1",
                            "propensity": 0.9, "policy": "threshold(0.5)"},
        "feedback": {"thumbs": "up"}}
    line = from_standard_logging_payload(payload)
    assert line.propensity == pytest.approx(0.9) and line.feedback == {"thumbs": "up"}
    log = tmp_path / "mixed.jsonl"
    own = TrafficLogLine(prompt="hello", decision={"model": "m", "n": 1}, samples=["hi"])
    log.write_text(json.dumps(payload) + "\n" + own.to_json() + "\n"
                   + json.dumps({"standard_logging_object": payload}) + "\n")
    lines = read_logs([log])
    assert [ln.prompt for ln in lines] == [prompt, "hello", prompt]


def test_unusable_logs_say_why(tmp_path, base_dir):
    log = tmp_path / "t.jsonl"
    TrafficLogWriter(log).write(TrafficLogLine(prompt="x", decision={"model": "other", "n": 1},
                                               samples=["y"], feedback={"score": 1.0}))
    with pytest.raises(DataError, match="no expected cost in the log and no price"):
        retrain([log], base_dir, tmp_path / "o", progress=False)
    with pytest.raises(DataError, match="does not exist"):
        retrain([tmp_path / "missing.jsonl"], base_dir, tmp_path / "o", progress=False)


def test_candidate_key_roundtrip():
    assert Candidate.from_key("cheap#3").n == 3


@pytest.mark.slow
def test_llm_judge_through_litellm_with_a_real_local_model():
    """The judge labeller calls litellm.completion on a real in-process SmolLM2 (the project's
    local/ provider): every call is made and every reply is parsed or counted as unparsed."""
    import litellm
    from adaptive_router.integrations.litellm_plugin.providers import provider_map

    saved = list(litellm.custom_provider_map)
    litellm.custom_provider_map = provider_map()
    litellm.utils.custom_llm_setup()
    try:
        judge = JudgeLabeler("local/smollm2-135m-instruct", max_tokens=6)
        lines = [TrafficLogLine(prompt=f"What is {a} + {a}?", decision={"model": "m", "n": 1},
                                samples=[f"The answer is {2 * a}."]) for a in (2, 5)]
        labels, sources = label_quality(lines, "judge", judge=judge, progress=False)
    finally:
        litellm.custom_provider_map = saved
    assert judge.calls == 2
    parsed = [x for x in labels if np.isfinite(x)]
    assert len(parsed) + judge.unparsed == 2
    assert all(0.0 <= x <= 1.0 for x in parsed)
    assert sources.count("judge") == len(parsed)


def test_retrain_cli(tmp_path, base_dir):
    """`adaptive-router retrain` end to end on a traffic log (the same prompts as above: cached)."""
    from typer.testing import CliRunner

    from adaptive_router.cli import app

    log = tmp_path / "traffic.jsonl"
    synthetic_traffic(log, 400, seed=0)
    result = CliRunner().invoke(app, ["retrain", "--logs", str(log), "--base", str(base_dir),
                                      "--out", str(tmp_path / "out"), "--estimator", "snips"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["usable_requests"] == 400 and summary["promoted"] is True
    assert (tmp_path / "out" / "report.md").exists() and (tmp_path / "out" / "router" / "config.json").exists()
    bad = CliRunner().invoke(app, ["retrain", "--logs", str(log), "--base", str(base_dir),
                                   "--out", str(tmp_path / "o2"), "--estimator", "magic"])
    assert bad.exit_code != 0
