"""Retraining at scale (issue "Scale past one process", item 3): the log is streamed, not loaded
whole, and the compact retraining path gives the same result as the line-by-line one did.

The reference numbers in ``REFERENCE`` were computed by the retraining job *before* it streamed
(commit 9502cb5, which held every ``TrafficLogLine`` in a list) on the log :func:`write_log`
builds; the log has repeated prompts, failed and unlabelled requests, a candidate priced only on
later lines, task tags, and feedback both inline and in a separate file, so that every step the
compact path replaces (feedback join, labels, cost filling, dedupe before embedding, weighted
PCA and task classifier) is exercised.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
import weakref
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from adaptive_router.training.retrain.job import retrain
from adaptive_router.training.retrain.logs import iter_logs, read_logs

from adaptive_router.routers.base import Router
from adaptive_router.traffic import TrafficLogLine

PRICES = {"cheap": 0.1, "mid": 0.4, "strong": 2.0}  # dollars per million tokens
EASY = "What is {a} plus {b}?"
HARD = "Prove that there are infinitely many primes congruent to {a} modulo {b}."
TRUTH = {"easy": {"cheap": 0.9, "mid": 0.9, "strong": 0.95},
         "hard": {"cheap": 0.1, "mid": 0.4, "strong": 0.85}}
KEYS = ["cheap#1", "mid#1", "strong#1"]
STAMP = datetime(2026, 1, 1, tzinfo=timezone.utc)


def write_fleet(path: Path) -> Path:
    data = {"models": [{"name": m, "price": {"input_per_million": p, "output_per_million": p},
                        "expected_output_tokens": 200} for m, p in PRICES.items()], "reference": "strong"}
    path.write_text(yaml.safe_dump(data))
    return path


def write_log(path: Path, feedback: Path, n: int = 600, distinct: int = 80, seed: int = 3) -> None:
    """A deterministic traffic log of ``n`` requests over ``distinct`` prompts, served by a
    20%-exploring threshold policy (uniform exploration: propensity 0.8 + 0.2 / 3 for the greedy
    pick, 0.2 / 3 otherwise)."""
    rng = np.random.default_rng(seed)
    pool = []
    for i in range(distinct):
        kind = "easy" if i % 2 == 0 else "hard"
        pool.append(((EASY if kind == "easy" else HARD).format(a=i + 2, b=3 * i + 5), kind))
    with path.open("w", encoding="utf-8") as log, feedback.open("w", encoding="utf-8") as fb:
        for i in range(n):
            prompt, kind = pool[int(rng.integers(distinct))]
            preds = {"cheap#1": 0.8 if kind == "easy" else 0.3, "mid#1": 0.6, "strong#1": 1.0}
            greedy = "cheap#1" if kind == "easy" else "strong#1"
            explored = bool(rng.random() < 0.2)
            key = KEYS[int(rng.integers(3))] if explored else greedy
            prop = 0.2 / 3 + (0.8 if key == greedy else 0.0)
            costs = {k: PRICES[k.split("#")[0]] * 220 / 1e6 for k in KEYS}
            if i < 150:  # "mid" joined the fleet later: older lines never priced it
                costs.pop("mid#1")
                if key == "mid#1":
                    key = greedy
            model = key.split("#")[0]
            correct = bool(rng.random() < TRUTH[kind][model])
            line: dict[str, Any] = dict(
                request_id=f"req-{i}", timestamp=STAMP, prompt=prompt,
                decision={"candidate": key, "model": model, "n": 1, "predictions": preds,
                          "expected_costs_usd": costs, "policy": "epsilon(0.2, threshold(0.5))",
                          "explored": explored, "propensity": prop},
                samples=["answer"], prompt_tokens=20, output_tokens=[200],
                cost_usd=costs.get(key, 0.0), explored=explored, propensity=prop,
                metadata={"task": "arithmetic" if kind == "easy" else "proofs"})
            if i % 37 == 5:
                line["error"] = "upstream timeout"
            if i % 3 == 0:
                line["feedback"] = {"correct": correct}
            elif i % 3 == 1:
                fb.write(json.dumps({"request_id": f"req-{i}", "score": float(correct)}) + "\n")
            # i % 3 == 2 and no reward score: unlabelled
            log.write(TrafficLogLine(**line).model_dump_json() + "\n")


def fingerprint(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers a retraining run is judged by: counts, the off-policy comparison, the heads."""
    cmp = summary["comparison"]
    heads = summary["heads"]
    return {
        "usable": summary["usable"], "train": summary["train"], "held_out": summary["held_out"],
        "dropped": summary["dropped"], "label_sources": summary["label_sources"],
        "feedback_joined": summary["feedback_joined"],
        "expected_costs_filled": summary["expected_costs_filled"],
        "tagged_requests": summary["tagged_requests"], "candidate_keys": summary["candidate_keys"],
        "reference_model": summary["reference_model"], "method": summary["method"],
        "promoted": summary["promoted"],
        "quality_dr": [cmp["quality"]["dr"][k]["value"] for k in ("old", "new")],
        "cost_dr": [cmp["cost_usd"]["dr"][k]["value"] for k in ("old", "new")],
        "utility_dr": [cmp["utility"]["dr"]["difference"], cmp["utility"]["dr"]["std_error"]],
        "agreement": cmp["agreement"],
        "lambda": [heads.get("lambda"), heads.get("task_lambda")],
        "predicted_mean": [h["predicted_mean"] for h in heads.get("heads", [])],
        "curve_quality": [p["quality"] for p in summary["curves"]["new"]],
    }


def run(tmp_path: Path, base: str) -> dict[str, Any]:
    log, fb = tmp_path / "traffic.jsonl", tmp_path / "feedback.jsonl"
    write_log(log, fb)
    res = retrain([log], base, tmp_path / f"out-{base}", feedback=fb, fleet=write_fleet(tmp_path / "fleet.yaml"),
                  encoder="minilm-static", progress=False, min_z=0.0)
    return fingerprint(res.summary)


REFERENCE: dict[str, dict[str, Any]] = {
    "default": {
        "usable": 389,
        "train": 261,
        "held_out": 128,
        "dropped": {
            "no quality label": 194,
            "request failed": 17
        },
        "label_sources": {
            "feedback": 389
        },
        "feedback_joined": 200,
        "expected_costs_filled": 150,
        "tagged_requests": 389,
        "candidate_keys": [
            "cheap#1",
            "mid#1",
            "strong#1"
        ],
        "reference_model": "strong",
        "method": "heads",
        "promoted": True,
        "quality_dr": [
            0.019540595581734228,
            0.881585228276969
        ],
        "cost_dr": [
            2.1999999999999996e-05,
            0.00018304687499999997
        ],
        "utility_dr": [
            0.6790368201952348,
            0.2839245735323804
        ],
        "agreement": 0.3515625,
        "lambda": [
            256.0,
            1.0
        ],
        "predicted_mean": [
            0.4674375786625998,
            0.7257333563017646,
            0.8707012188885197
        ],
        "curve_quality": [
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8412756396883221,
            0.8793959222951074,
            0.881585228276969,
            0.9125694398573232,
            0.9207704366980044,
            0.9212791354254897,
            0.9688180002670933,
            0.9407176737110429,
            0.9401489937790519,
            0.9379699994292103,
            0.9206389765375524,
            0.9221175443607286
        ]
    },
    "none": {
        "usable": 389,
        "train": 261,
        "held_out": 128,
        "dropped": {
            "no quality label": 194,
            "request failed": 17
        },
        "label_sources": {
            "feedback": 389
        },
        "feedback_joined": 200,
        "expected_costs_filled": 150,
        "tagged_requests": 389,
        "candidate_keys": [
            "cheap#1",
            "mid#1",
            "strong#1"
        ],
        "reference_model": "strong",
        "method": "heads",
        "promoted": False,
        "quality_dr": [
            0.8299581746431393,
            0.8299581746431393
        ],
        "cost_dr": [
            6.4796875e-05,
            6.4796875e-05
        ],
        "utility_dr": [
            0.0,
            0.0
        ],
        "agreement": 1.0,
        "lambda": [
            1024.0,
            1.0
        ],
        "predicted_mean": [
            0.4615948490678409,
            0.7625701374020559,
            0.8576668916713006
        ],
        "curve_quality": [
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.8299581746431393,
            0.9065039942166109,
            0.9309932487522563,
            0.9255502378254274,
            0.9255502378254274,
            0.9136744044802736,
            0.9270776309444787,
            0.9200702966055615,
            0.914200322130626
        ]
    }
}


def assert_same(got: Any, want: Any, path: str = "") -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), path
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert len(got) == len(want), path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-6, abs=1e-9), path
    else:
        assert got == want, path


@pytest.mark.parametrize("base", ["default", "none"])
def test_streamed_retrain_matches_the_list_based_job(tmp_path, base):
    """The same counts, off-policy comparison, learned heads and threshold curve as the job
    that held every parsed line (``REFERENCE``), on a log with repeated prompts."""
    assert_same(run(tmp_path, base), REFERENCE[base])


def test_reader_is_a_generator_that_holds_no_lines(tmp_path):
    """``iter_logs`` yields lines one at a time: after the first line only that line has been
    parsed (the file is not read ahead), and the lines it yields are not kept alive by it."""
    log = tmp_path / "traffic.jsonl"
    write_log(log, tmp_path / "feedback.jsonl", n=200)
    it = iter_logs([log])
    assert iter(it) is it and not isinstance(it, list | tuple)
    first = next(it)
    assert first.request_id == "req-0"
    ref = weakref.ref(first)
    del first
    second = next(it)
    gc.collect()
    assert ref() is None, "the reader keeps the lines it has yielded"
    assert second.request_id == "req-1"
    assert sum(1 for _ in it) == 198
    assert len(read_logs([log])) == 200  # the list API is kept for small logs


def _peak_while_streaming(log: Path) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        count = sum(1 for _ in iter_logs([log]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count > 0
    return peak


def test_reader_memory_does_not_grow_with_the_log(tmp_path):
    """Streaming 8x more lines costs about the same peak memory (a list of lines would cost 8x)."""
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    write_log(small, tmp_path / "fb1.jsonl", n=250)
    write_log(large, tmp_path / "fb2.jsonl", n=2000)
    p_small, p_large = _peak_while_streaming(small), _peak_while_streaming(large)
    assert p_large < 1.5 * p_small + 200_000, (p_small, p_large)
    gc.collect()
    tracemalloc.start()
    try:
        held = read_logs([large])
        _, p_list = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(held) == 2000 and p_list > 4 * p_large  # the check can tell the two apart


def test_task_classifier_cap_samples_rows_but_keeps_every_tag():
    """Past ``max_rows`` distinct (prompt, tag) pairs the classifier fits a seeded sample (its cost
    stops growing with the log) yet still knows every tag; under the cap nothing changes."""
    from adaptive_router.training.retrain.heads import fit_task_classifier

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    labels = rng.integers(3, size=600)
    emb = centres[labels] + 0.3 * rng.normal(size=(600, 16))
    tags = [f"t{k}" for k in labels]
    tags[7] = "rare"  # one row: a sample of 100 most likely misses it
    full = fit_task_classifier(emb, tags, steps=60)
    same = fit_task_classifier(emb, tags, steps=60, max_rows=600)
    capped = fit_task_classifier(emb, tags, steps=60, max_rows=100, seed=1)
    assert same[0] == full[0] and np.allclose(same[1], full[1]) and np.allclose(same[2], full[2])
    assert capped[0] == full[0] == ["rare", "t0", "t1", "t2"]
    assert not np.allclose(capped[1], full[1])  # the sample was used
    pred = np.argmax(emb @ capped[1].T + capped[2], axis=1)
    truth = np.array([full[0].index(t) for t in tags])
    assert np.mean(pred == truth) > 0.9  # and it still separates the tags


class _Constant(Router):
    """A base router that predicts every candidate the same for every prompt (what ``FixedRouter``
    in test_retrain.py does), not registered as a router type."""

    name = "test-constant"

    def _predict(self, prompts):
        return np.tile(np.array([0.7, 0.75, 0.8]), (len(prompts), 1))


KEYS_FT = ["cheap#1", "cheap#3", "strong#1"]
#: fine_tune_router on the bandit below, computed per request before the fit was grouped by
#: (prompt, candidate) (commit 4ba6b26): bias, sum of the shared weights, sum of |candidate
#: weights|, the L2 search and the base's validation loss
FINE_TUNE_REFERENCE = {
    "bias": [-0.254497891244073, 0.17847736092300753, 0.4437948876054206],
    "u_sum": 0.08597054115110891, "v_abs_sum": 104.31325404313266, "l2": 0.001,
    "search": {"0.001": 0.32445051147804704, "0.01": 0.352280384299574, "0.1": 0.48093886612834286,
               "1.0": 0.5765560578407956},
    "base_val": 0.6017745237557,
}


def test_fine_tune_grouped_by_prompt_matches_the_per_request_fit():
    """The warm-started fine-tune sums its loss over (prompt, candidate) groups; on 700 requests
    over 60 prompts it learns exactly what the per-request fit learned."""
    from adaptive_router.training.retrain.bandit import LoggedBandit
    from adaptive_router.training.retrain.fine_tune import fine_tune_router

    from adaptive_router.policy import ThresholdPolicy

    easy = ["What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}, please.", "How much is {a} times 2?"]
    hard = ["Prove that there are infinitely many primes congruent to {a} modulo {b}.",
            "Show rigorously that the series of 1/n^{a} converges, with an epsilon-delta proof for case {b}.",
            "Derive a closed form for the number of lattice paths avoiding {a} forbidden points in a {b}x{b} grid.",
            "Prove the inequality between the arithmetic and geometric means of {a} positive reals, case {b}."]
    truth = {"easy": [0.9, 0.95, 0.95], "hard": [0.1, 0.25, 0.85]}
    rng = np.random.default_rng(5)
    pool = [(easy[i % 4] if i % 2 == 0 else hard[i % 4]).format(a=i + 2, b=i + 7) for i in range(60)]
    n = 700
    pick, acts = rng.integers(60, size=n), rng.integers(3, size=n)
    kinds = ["easy" if p % 2 == 0 else "hard" for p in pick]
    labels = np.array([float(rng.random() < truth[k][a]) for k, a in zip(kinds, acts, strict=True)])
    bandit = LoggedBandit(prompts=[pool[p] for p in pick], actions=acts, propensities=np.full(n, 0.5),
                          labels=labels, costs=np.zeros(n), expected_costs=np.zeros((n, 3)),
                          policies=[ThresholdPolicy(0.6)] * n, explored=np.zeros(n, bool),
                          request_ids=[str(i) for i in range(n)], candidate_keys=KEYS_FT)
    router, info = fine_tune_router(_Constant(KEYS_FT), bandit, encoder="minilm-static")
    ref = FINE_TUNE_REFERENCE
    assert info["l2"] == ref["l2"]
    assert info["base_val_bce"] == pytest.approx(ref["base_val"], rel=1e-9)
    assert {str(k): v for k, v in info["l2_search_val_bce"].items()} == pytest.approx(ref["search"], rel=1e-9)
    assert router.bias.tolist() == pytest.approx(ref["bias"], rel=1e-9, abs=1e-12)
    assert float(np.sum(router.shared_weight)) == pytest.approx(ref["u_sum"], rel=1e-7)
    assert float(np.sum(np.abs(router.candidate_weights))) == pytest.approx(ref["v_abs_sum"], rel=1e-9)
