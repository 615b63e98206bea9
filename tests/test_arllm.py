"""AR-LLM: query vector (domain classifier + difficulty), per-domain model vectors, HDP and NIR,
and the beta knob."""

from __future__ import annotations

import numpy as np
import pytest
from adaptive_router.training.trainers.arllm import fit_arllm_hdp, fit_arllm_nir, kmeans

from adaptive_router.errors import InvalidRequestError
from adaptive_router.records import ModelSamples, Record
from adaptive_router.routers.arllm import HDPRouter, NIRRouter, arllm_policy
from adaptive_router.routers.base import Router

KEYS = ["coder#1", "mathematician#1", "generalist#1"]
ACCURACY = {"code": {"coder": 0.9, "mathematician": 0.2, "generalist": 0.6},
            "math": {"coder": 0.2, "mathematician": 0.9, "generalist": 0.6}}


def specialised_records(n: int = 120, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        task = "code" if i % 2 else "math"
        prompt = (f"Write a python function number {i} that reverses a linked list." if task == "code"
                  else f"Find the integral number {i} of x squared times sine of x.")
        models = {m.split("#")[0]: ModelSamples(
            responses=["r"] * 4,
            scores={"correct": (rng.random(4) < ACCURACY[task][m.split("#")[0]]).astype(float).tolist()})
            for m in KEYS}
        recs.append(Record(id=str(i), prompt=prompt, task=task, models=models))
    return recs


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return specialised_records()


CODE = "Write a python function number 999 that reverses a linked list."
MATH = "Find the integral number 999 of x squared times sine of x."


def test_hdp_routes_each_domain_to_its_specialist(records, tmp_path) -> None:
    r = fit_arllm_hdp(records[:100], records[100:], KEYS, "correct", progress=False)
    assert r.domains == ["code", "math"] and r.report["domain_source"] == "task"
    p = r.predict_batch([CODE, MATH])
    assert np.argmax(p[0]) == 0 and np.argmax(p[1]) == 1
    acc = r.weights["model_acc"]
    assert acc[0, 0] > 0.75 and acc[1, 1] > 0.75  # per-domain accuracy learned from records
    r.save_pretrained(tmp_path / "hdp")
    loaded = Router.from_pretrained(tmp_path / "hdp")
    assert isinstance(loaded, HDPRouter) and loaded.gamma == r.gamma
    np.testing.assert_allclose(loaded.predict_batch([CODE]), r.predict_batch([CODE]), atol=1e-5)


def test_nir_predicts_p_correct_per_model(records, tmp_path) -> None:
    r = fit_arllm_nir(records[:100], records[100:], KEYS, "correct", progress=False, epochs=400)
    p = r.predict_batch([CODE, MATH])
    assert p.shape == (2, 3) and np.all((p > 0) & (p < 1))
    assert p[0, 0] > p[0, 1] + 0.3 and p[1, 1] > p[1, 0] + 0.3
    r.save_pretrained(tmp_path / "nir")
    loaded = Router.from_pretrained(tmp_path / "nir")
    assert isinstance(loaded, NIRRouter)
    np.testing.assert_allclose(loaded.predict_batch([MATH]), p[1:], atol=1e-5)


def test_beta_trades_quality_for_cost() -> None:
    preds = np.array([[0.9, 0.6, 0.3]])
    costs = np.array([[10.0, 2.0, 1.0]])
    assert arllm_policy(0.0).choose(preds, costs)[0] == 0  # quality only
    assert arllm_policy(0.5).choose(preds, costs)[0] == 1
    assert arllm_policy(0.9).choose(preds, costs)[0] == 2  # cost dominates
    with pytest.raises(InvalidRequestError):
        arllm_policy(1.0)


def test_kmeans_domains_when_records_have_no_task() -> None:
    x = np.concatenate([np.zeros((10, 3)), np.ones((10, 3)) * 5]) + np.random.default_rng(0).normal(0, .1, (20, 3))
    labels = kmeans(x, 2)
    assert len(set(labels[:10])) == 1 and len(set(labels[10:])) == 1 and labels[0] != labels[10]


def test_nir_with_neighbour_priors_round_trips(records, tmp_path) -> None:
    r = fit_arllm_nir(records[:100], records[100:], KEYS, "correct", progress=False, epochs=300,
                      pair_features=["neighbours"], neighbours=5)
    p = r.predict_batch([CODE, MATH])
    assert p[0, 0] > p[0, 1] + 0.3 and p[1, 1] > p[1, 0] + 0.3
    assert r.pair_features is not None and r.pair_features.tensors["qf_bank_q"].shape == (100, 3)
    r.save_pretrained(tmp_path / "nir")
    loaded = Router.from_pretrained(tmp_path / "nir")
    np.testing.assert_allclose(loaded.predict_batch([CODE, MATH]), p, atol=1e-3)
