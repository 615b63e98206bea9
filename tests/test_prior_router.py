"""The prior router: expected quality of the kept sample, fitting, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adaptive_router.records import ModelSamples, Record
from adaptive_router.routers import load_router
from adaptive_router.routers.prior import (
    PriorRouter,
    expected_majority_quality,
    expected_selected_quality,
)


def test_expected_selected_quality_matches_enumeration() -> None:
    from itertools import combinations

    quality = [1.0, 0.0, 1.0, 0.0, 0.5]
    selector = [0.9, 0.1, 0.3, 0.8, 0.5]
    for n in (1, 2, 3, 5):
        if n == 1:
            want = float(np.mean(quality))
        else:
            picks = [quality[max(s, key=lambda i: selector[i])] for s in combinations(range(5), n)]
            want = float(np.mean(picks))
        assert expected_selected_quality(quality, n, selector) == pytest.approx(want)
    assert expected_selected_quality(quality, 3) == pytest.approx(np.mean(quality))  # no selector


def test_majority_vote_quality() -> None:
    texts = ["The answer is 4.", "The answer is 5.", "The answer is 4."]
    assert expected_majority_quality([1, 0, 1], texts, 3) == 1.0
    # pairs: (4,5)->first=4 ok, (4,4) ok, (5,4)->first=5 wrong
    assert expected_majority_quality([1, 0, 1], texts, 2) == pytest.approx(2 / 3)


def test_fit_save_load(tmp_path: Path) -> None:
    recs = [Record(id=str(i), prompt=f"p{i}", models={
        "big": ModelSamples(responses=["x"], scores={"correct": [1.0]}, token_num_responses=[3]),
        "small": ModelSamples(responses=["a", "b", "c"], scores={"correct": [float(i % 2), 0.0, 1.0],
                                                                  "reward": [0.1, 0.2, 0.9]},
                              token_num_responses=[1, 1, 1]),
    }) for i in range(4)]
    keys = ["big#1", "small#1", "small#3"]
    r = PriorRouter.fit(recs, keys, "correct", selector_score="reward")
    assert r.predict("anything") == pytest.approx({"big#1": 1.0, "small#1": 0.5, "small#3": 1.0})
    r.save_pretrained(tmp_path / "prior")
    back = load_router(tmp_path / "prior")
    assert isinstance(back, PriorRouter) and back.priors == r.priors
