"""Loaders: the five routing data sets, generic tables, data-root resolution, splits and
decontamination."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from adaptive_router.training.loaders import RoutingDataset, decontaminate_records, load_dataset
from adaptive_router.training.loaders import paths as data_paths

from adaptive_router.errors import DataError
from adaptive_router.records import ModelSamples, Record, write_records

WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"


@functools.cache
def _load(name: str, root: str) -> RoutingDataset:
    return load_dataset(name, data_dir=root)


def test_routellm_mmlu(shared_data: Path) -> None:
    ds = _load("routellm-mmlu", str(shared_data))
    assert len(ds) == 14042 - 5 and ds.models == [WEAK, STRONG] and ds.quality_score == "correct"
    assert ds.quality(WEAK) == pytest.approx(0.681, abs=0.001)
    assert ds.quality(STRONG) == pytest.approx(0.806, abs=0.001)
    bad = {json.loads(x)["eval_prompt"] for x in
           (shared_data / "routellm/mmlu/contaminated_prompts.jsonl").read_text().splitlines() if x}
    assert not bad & {r.prompt for r in ds.records}
    sample = ds.records[0].models[STRONG]
    assert sample.estimated_tokens and sample.token_num_prompt > 10
    assert any("estimated" in n for n in ds.notes)
    assert ds.reference == STRONG and len({r.id for r in ds.records}) == len(ds)


def test_routellm_gsm8k(shared_data: Path) -> None:
    ds = _load("routellm-gsm8k", str(shared_data))
    assert len(ds) == 1319 - 12
    assert ds.quality(WEAK) == pytest.approx(0.637, abs=0.001)
    assert ds.quality(STRONG) == pytest.approx(0.858, abs=0.001)
    s = ds.records[0].models[WEAK]
    assert s.responses and not s.estimated_tokens and s.token_num_responses[0] > 20
    assert ds.records[0].meta.get("answer")


def test_routellm_mtbench(shared_data: Path) -> None:
    ds = _load("routellm-mtbench", str(shared_data))
    assert len(ds) == 72 and ds.quality_score == "judge"
    judge = np.array([r.models[m].scores["judge"][0] for r in ds.records for m in ds.models])
    assert judge.min() >= 0.1 and judge.max() <= 1.0
    assert ds.quality(WEAK) == pytest.approx(0.828, abs=0.001)
    assert ds.quality(STRONG) == pytest.approx(0.921, abs=0.001)
    assert all(r.models[STRONG].token_num_responses[0] > 0 for r in ds.records)


def test_llmrouter(shared_data: Path) -> None:
    ds = _load("llmrouter", str(shared_data))
    assert len(ds) == 6108 and len(ds.models) == 9 and ds.quality_score == "score"
    assert {r.split for r in ds.records} == {"train", "test"}
    assert sum(r.split == "test" for r in ds.records) == 500
    assert all(r.models[m].estimated_tokens for r in ds.records[:50] for m in ds.models)
    assert any("ESTIMATED" in n for n in ds.notes)
    table = json.loads((shared_data / "llmrouter/default_llm.json").read_text())
    for name, price in ds.fleet.prices().items():
        assert price.input_per_token == pytest.approx(table[name]["input_price"] / 1e6)
        assert price.output_per_token == pytest.approx(table[name]["output_price"] / 1e6)
    assert max(ds.models, key=ds.quality) == "llama-3.1-nemotron-51b-instruct" == ds.reference
    math_tokens = {r.models[ds.models[0]].token_num_responses[0] for r in ds.records if r.task == "math"}
    mmlu_tokens = {r.models[ds.models[0]].token_num_responses[0] for r in ds.records if r.task == "mmlu"}
    assert max(mmlu_tokens) < min(math_tokens)  # estimated per task


def test_champ() -> None:
    from adaptive_router.training.loaders.champ import SAMPLE_SETTINGS

    ds = load_dataset("champ")
    assert len(ds) == 270 and len(ds.models) == 4
    assert not any("Soln" in s or "w/ H" in s for s in SAMPLE_SETTINGS) and len(SAMPLE_SETTINGS) == 9
    rec = ds.records[0]
    for m in ds.models:
        s = rec.models[m]
        assert s.num_samples == 9 and len(s.responses) == 9 and all(t > 0 for t in s.token_num_responses)
        assert not s.estimated_tokens
    acc = {m: ds.quality(m) for m in ds.models}
    assert acc["gpt-4-turbo"] > acc["gpt-3.5-turbo"] > acc["palm-2-medium"]
    assert 0.1 < acc["palm-2-medium"] < 0.25 and 0.3 < acc["gpt-4-turbo"] < 0.6
    assert ds.fleet.model("palm-2-medium").price_model == "gemini-2.5-flash-lite"


def test_generic_csv_with_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "big_ok", "small_ok", "small_text", "split"])
        w.writerow(["What is 2+2?", "1", "1", "4", "train"])
        w.writerow(["Prove Fermat's last theorem.", "0.5", "0", "I cannot.", "test"])
    ds = load_dataset(path, prompt_column="question",
                      model_columns={"gpt-4o": "big_ok", "gpt-4o-mini": "small_ok"},
                      response_columns={"gpt-4o-mini": "small_text"}, quality_score="correct",
                      reference="gpt-4o")
    assert ds.models == ["gpt-4o", "gpt-4o-mini"] and len(ds) == 2
    assert ds.records[1].models["gpt-4o"].scores["correct"] == [0.5]
    assert ds.records[0].models["gpt-4o-mini"].token_num_responses == [1]  # counted from "4"
    assert ds.records[0].models["gpt-4o"].estimated_tokens  # no response column: estimated
    assert [r.split for r in ds.records] == ["train", "test"]
    assert ds.fleet.prices()["gpt-4o"].input_per_token > 0  # LiteLLM's map
    with pytest.raises(DataError, match="prompt column"):
        load_dataset(path)


def test_generic_default_columns_and_records_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": f"q{i}", "model-a": i % 2, "model-b": 1}) for i in range(4)))
    ds = load_dataset(path, prices={"model-a": {"input_per_million": 1, "output_per_million": 2},
                                    "model-b": {"input_per_million": 3, "output_per_million": 4}})
    assert ds.models == ["model-a", "model-b"] and ds.quality("model-a") == 0.5
    out = tmp_path / "records.jsonl"
    write_records(ds.records, out)
    again = load_dataset(out, prices={"model-a": {"input_per_million": 1, "output_per_million": 2},
                                      "model-b": {"input_per_million": 3, "output_per_million": 4}})
    assert [r.prompt for r in again.records] == [r.prompt for r in ds.records]
    assert again.quality_score == "score"


def test_unknown_name_and_missing_file() -> None:
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("no-such-set")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("/nonexistent/file.csv")


def test_data_root_resolution(shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DataError, match="lacks the files"):
        load_dataset("routellm-gsm8k", data_dir=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("routellm-gsm8k", data_dir=tmp_path / "missing")
    monkeypatch.setenv("ADAPTIVE_ROUTER_DATA", str(shared_data))
    assert len(load_dataset("routellm-mtbench")) == 72


def test_download_offline_error_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADAPTIVE_ROUTER_DATA", raising=False)
    monkeypatch.setenv("ADAPTIVE_ROUTER_CACHE", str(tmp_path / "cache"))
    # a port nothing listens on: the connection is refused at once, as when offline
    monkeypatch.setattr(data_paths, "upstream_url", lambda source, rel: f"http://127.0.0.1:9/{rel}")
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("routellm-mtbench")


def _serve_as_upstream(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A real HTTP server over ``folder`` standing in for the data sets' upstream, with the cache
    in ``tmp_path`` and no local data folder: the download path runs end to end."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    monkeypatch.delenv("ADAPTIVE_ROUTER_DATA", raising=False)
    monkeypatch.setenv("ADAPTIVE_ROUTER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data_paths, "upstream_url", lambda source, rel: f"http://127.0.0.1:{port}/{rel}")
    return server


def test_download_into_cache_from_a_server(shared_data: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The download path end to end, against a real HTTP server holding upstream's layout."""
    upstream = tmp_path / "upstream"
    for rel, up in data_paths.UPSTREAM_FILES["routellm-mtbench"].items():
        (upstream / up).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / rel, upstream / up)
    server = _serve_as_upstream(upstream, tmp_path, monkeypatch)
    try:
        ds = load_dataset("routellm-mtbench")
        assert len(ds) == 72
        assert (tmp_path / "cache/data/routellm/mt_bench/judgements.jsonl").exists()
        server.shutdown()
        assert len(load_dataset("routellm-mtbench")) == 72  # served from the cache now
    finally:
        server.server_close()


def test_download_of_a_missing_file_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An HTTP error status (here 404 from a real server with nothing to serve) is a failed
    download, not a file of error text written into the cache."""
    (tmp_path / "empty").mkdir()
    server = _serve_as_upstream(tmp_path / "empty", tmp_path, monkeypatch)
    try:
        with pytest.raises(DataError, match="404"):
            load_dataset("routellm-mtbench")
        assert not list((tmp_path / "cache").rglob("*.jsonl"))
    finally:
        server.shutdown()
        server.server_close()


def _toy(n: int, split: str | None = None) -> RoutingDataset:
    from adaptive_router.domain import Fleet

    recs = [Record(id=str(i), prompt=f"prompt number {i}", split=split,
                   models={"a": ModelSamples(scores={"correct": [1.0]}, token_num_prompt=3,
                                             token_num_responses=[2])})
            for i in range(n)]
    fleet = Fleet.from_dict({"models": [{"name": "a", "price": {"input_per_million": 1,
                                                                  "output_per_million": 1}}]})
    return RoutingDataset("toy", recs, ["a"], "correct", fleet)


def test_splits_are_deterministic_and_disjoint() -> None:
    ds = _toy(100)
    a = ds.splits(seed=1, decontaminate=False)
    b = _toy(100).splits(seed=1, decontaminate=False)
    c = _toy(100).splits(seed=2, decontaminate=False)
    assert [[r.id for r in part] for part in a] == [[r.id for r in part] for part in b]
    assert [r.id for r in a[2]] != [r.id for r in c[2]]
    assert [len(p) for p in a] == [70, 10, 20]
    ids = [r.id for part in a for r in part]
    assert len(ids) == len(set(ids)) == 100
    with pytest.raises(DataError):
        ds.splits(val=0.6, test=0.5)


def test_splits_keep_a_given_test_split() -> None:
    ds = _toy(10, split="train")
    for r in ds.records[:3]:
        r.split = "test"
    train, val, test = ds.splits(seed=0, val=0.2, decontaminate=False)
    assert {r.id for r in test} == {"0", "1", "2"} and len(val) == 1 and len(train) == 6


def test_decontamination_drops_near_duplicates() -> None:
    def rec(i: int, prompt: str) -> Record:
        return Record(id=str(i), prompt=prompt)

    test = [rec(0, "What is the capital city of France?"),
            rec(1, "Explain how quantum tunnelling lets electrons cross a barrier."),
            rec(2, "Write a haiku about autumn leaves.")]
    train = [rec(3, "What is the capital city of France ?"), rec(4, "How do I bake sourdough bread?")]
    kept, dropped = decontaminate_records(test, train)
    assert [r.id for r in dropped] == ["0"] and [r.id for r in kept] == ["1", "2"]


def test_mtbench_split_is_decontaminated(shared_data: Path) -> None:
    ds = load_dataset("routellm-mtbench", data_dir=shared_data)
    train, val, test = ds.splits(seed=0)
    assert len(train) + len(val) + len(test) + len(ds.dropped_contaminated) == 72
    assert ds.splits(seed=0) is ds.splits(seed=0)  # cached


@pytest.mark.slow
def test_mmlu_full_decontamination(shared_data: Path) -> None:
    """Embeds all 14k MMLU prompts once (cached on disk afterwards) and drops near-duplicates."""
    ds = load_dataset("routellm-mmlu", data_dir=shared_data)
    train, val, test = ds.splits(seed=0)
    assert len(train) + len(val) + len(test) + len(ds.dropped_contaminated) == len(ds)
    assert len(test) >= 0.19 * len(ds)
