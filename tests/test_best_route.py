"""BEST-Route: bootstrapped best-of-n labels, the multi-head router, its persistence and the
threshold policy's choice of the cheapest passing (model, n) candidate."""

from __future__ import annotations

import numpy as np
import pytest
from adaptive_router.training.trainers.best_route import (
    bootstrap_best_of_n,
    bootstrap_labels,
    default_selector_score,
    fit_best_route,
)

from adaptive_router.errors import CheckpointError, RoutingError
from adaptive_router.policy import ThresholdPolicy
from adaptive_router.records import ModelSamples, Record
from adaptive_router.routers.base import Router
from adaptive_router.routers.best_route import BestRouteRouter

KEYS = ["small#1", "small#3", "small#5", "large#1"]


def synthetic_records(n: int = 160, seed: int = 0) -> list[Record]:
    """Two kinds of prompt: arithmetic (the small model is right 70% of the time) and proofs
    (10%); the large model is right 80% on both. The proxy score is the correctness plus noise."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        easy = i % 2 == 0
        prompt = (f"Compute {i} plus {i + 3} and give the number." if easy
                  else f"Prove that the sequence number {i} converges, with a rigorous argument.")
        models = {}
        for m, p in (("small", 0.7 if easy else 0.1), ("large", 0.8)):
            q = (rng.random(8) < p).astype(float)
            models[m] = ModelSamples(responses=[f"{m}{k}" for k in range(8)],
                                     scores={"correct": q.tolist(),
                                             "proxy_rm": (q + rng.normal(0, 0.3, 8)).tolist()},
                                     token_num_prompt=20, token_num_responses=[40] * 8)
        recs.append(Record(id=str(i), prompt=prompt, models=models))
    return recs


def test_bootstrap_best_of_n_with_a_perfect_selector_finds_any_correct_sample() -> None:
    rng = np.random.default_rng(0)
    q = np.array([0, 0, 1, 0, 0.0])
    kept = bootstrap_best_of_n(q, q.copy(), 5, 200, rng)
    assert np.all(kept == 1.0)  # n = all samples: the selector always finds the correct one
    kept3 = bootstrap_best_of_n(q, q.copy(), 3, 4000, rng)
    assert kept3.mean() == pytest.approx(3 / 5, abs=0.03)  # P(the correct one is among 3 of 5)
    random_pick = bootstrap_best_of_n(q, None, 3, 4000, rng)
    assert random_pick.mean() == pytest.approx(1 / 5, abs=0.03)  # no selector: a random sample


def test_labels_grow_with_n_and_relaxation() -> None:
    recs = synthetic_records(40)
    assert default_selector_score(recs, KEYS) == "proxy_rm"
    y = bootstrap_labels(recs, KEYS, "correct", reference="large#1", selector_score="proxy_rm")
    assert y.shape == (40, 4) and np.all((y >= 0) & (y <= 1))
    means = y.mean(axis=0)
    assert means[0] < means[1] < means[2]  # best-of-n with a good selector matches more often
    loose = bootstrap_labels(recs, KEYS, "correct", reference="large#1",
                             selector_score="proxy_rm", relaxation=1.0)
    assert np.all(loose == 1.0)  # t = 1 forgives any gap on a 0/1 score
    quality = bootstrap_labels(recs, KEYS, "correct", selector_score="proxy_rm", label="quality")
    assert quality[:, 3].mean() == pytest.approx(0.8, abs=0.1)


@pytest.fixture(scope="module")
def trained() -> BestRouteRouter:
    recs = synthetic_records()
    return fit_best_route(recs[:130], recs[130:], KEYS, "correct", progress=False, epochs=300)


def test_router_learns_which_prompts_best_of_n_can_handle(trained) -> None:
    assert trained.reference == "large#1" and trained.report["selector_score"] == "proxy_rm"
    easy = "Compute 500 plus 503 and give the number."
    hard = "Prove that the sequence number 501 converges, with a rigorous argument."
    p = trained.predict_batch([easy, hard])
    assert p[:, 3].tolist() == [1.0, 1.0]  # the reference matches itself
    assert p[0, 2] > p[1, 2] + 0.2  # small x5 matches the large model on arithmetic, not proofs
    costs = np.array([[1.0, 3.0, 5.0, 20.0]] * 2)
    choice = ThresholdPolicy(0.85).choose(p, costs)
    assert KEYS[choice[1]] == "large#1"
    assert KEYS[choice[0]].startswith("small")


def test_router_round_trips_and_refuses_broken_checkpoints(trained, tmp_path) -> None:
    trained.save_pretrained(tmp_path / "r")
    loaded = Router.from_pretrained(tmp_path / "r")
    assert isinstance(loaded, BestRouteRouter) and loaded.candidate_keys == KEYS
    prompt = ["Compute 1 plus 4 and give the number."]
    np.testing.assert_allclose(loaded.predict_batch(prompt), trained.predict_batch(prompt), atol=1e-5)
    with pytest.raises(CheckpointError):
        BestRouteRouter(KEYS, reference="large#1").set_tensors({"w1": np.zeros((2, 2))})
    with pytest.raises(RoutingError, match="untrained"):
        BestRouteRouter(KEYS, reference="large#1").predict_batch(prompt)
    with pytest.raises(RoutingError, match="reference"):
        BestRouteRouter(KEYS, label="match")


def test_majority_vote_labels_match_the_exact_expectation() -> None:
    from adaptive_router.training.trainers.best_route import expected_majority_of_n, majority_pick

    rng = np.random.default_rng(0)
    assert majority_pick(np.array([2.0, 1.0, 1.0, 2.0, 1.0]), rng) == 1  # answer 1 wins 3:2
    assert majority_pick(np.array([-1.0, -1.0]), rng) == 0  # no answer extracted: the first
    # three of five samples agree on the right answer (id 0), two give different wrong ones
    q, ids = np.array([1, 1, 1, 0, 0.0]), np.array([0, 0, 0, 1, 2.0])
    assert expected_majority_of_n(q, ids, 1) == pytest.approx(0.6)
    exact = expected_majority_of_n(q, ids, 3)
    assert exact > 0.6  # voting helps when the right answer is the most common one
    drawn = bootstrap_best_of_n(q, ids, 3, 4000, rng, majority=True)
    assert drawn.mean() == pytest.approx(exact, abs=0.03)
    assert expected_majority_of_n(q, ids, 5) == 1.0


def test_majority_selector_trains_from_answer_ids() -> None:
    from adaptive_router.training.trainers.best_route import ANSWER_ID_SCORE, MAJORITY, add_answer_ids

    from adaptive_router.errors import DataError

    recs = synthetic_records(40)
    with pytest.raises(DataError, match="add_answer_ids"):
        bootstrap_labels(recs, KEYS, "correct", label="quality", selector_score=MAJORITY)
    for r in recs:  # right answers all say 42, wrong ones differ: majority vote can find 42
        for ms in r.models.values():
            ms.responses = [f"The answer is {42 if c else 100 + k}."
                            for k, c in enumerate(ms.scores["correct"])]
    add_answer_ids(recs)
    assert set(recs[0].models["small"].scores[ANSWER_ID_SCORE]) >= {0.0}
    y = bootstrap_labels(recs, KEYS, "correct", label="quality", selector_score=MAJORITY)
    assert y[:, 2].mean() > y[:, 0].mean() + 0.05  # small x5 by majority beats one sample


def test_query_features_round_trip_with_neighbours_and_domains(tmp_path) -> None:
    from adaptive_router.routers.query_features import neighbour_prior

    bank = np.eye(4)
    q = np.array([[1.0], [0.0], [1.0], [0.0]])
    # each row's nearest other row (k=1) among the bank; itself left out
    near = neighbour_prior(bank + 0.1 * np.eye(4)[[1, 0, 3, 2]], bank, q, k=1, exclude_self=True)
    assert near[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]
    recs = synthetic_records()
    for r in recs:
        r.task = "arithmetic" if r.prompt.startswith("Compute") else "proof"
    router = fit_best_route(recs[:130], recs[130:], KEYS, "correct", progress=False, epochs=200,
                            features=["embedding", "domains", "neighbours"], neighbours=5,
                            n_seeds=2)
    assert router.weights["w1"].ndim == 3 and router.report["n_seeds"] == 2
    easy, hard = "Compute 500 plus 503 and give the number.", "Prove that the sequence number 501 converges, with a rigorous argument."
    p = router.predict_batch([easy, hard])
    assert p[0, 2] > p[1, 2] + 0.2
    router.save_pretrained(tmp_path / "r")
    loaded = Router.from_pretrained(tmp_path / "r")
    np.testing.assert_allclose(loaded.predict_batch([easy, hard]), p, atol=1e-3)
