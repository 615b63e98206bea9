"""Fleets, candidates, records and decisions: validation errors name the field and the file."""

from __future__ import annotations

import json

import pytest

from adaptive_router.domain import Candidate, Fleet
from adaptive_router.errors import FleetError
from adaptive_router.records import Record, read_records, write_records


def test_fleet_expands_models_times_n(repo_root):
    fleet = Fleet.from_yaml(repo_root / "examples" / "fleet.yaml")
    assert fleet.candidate_keys == [
        "gpt-4o#1", "gpt-4o-mini#1", "gpt-4o-mini#3", "gpt-4o-mini#5",
        "llama-3.1-8b#1", "llama-3.1-8b#3", "llama-3.1-8b#5",
    ]
    assert fleet.reference_model() == "gpt-4o"
    assert fleet.model("llama-3.1-8b").call_name.startswith("together_ai/")


def test_candidate_key_roundtrip():
    c = Candidate(model="ollama/llama3:8b", n=3)
    assert Candidate.from_key(c.key) == c


@pytest.mark.parametrize(
    "text, needle",
    [
        ("models: []\n", "no models"),
        ("models:\n  - name: a\n    n: [0]\n", "models.0.n"),
        ("models:\n  - name: a\n  - name: a\n", "repeat"),
        ("models:\n  - name: a\n    colour: red\n", "models.0.colour"),
        ("models: [\n", "not valid YAML"),
        ("", "empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("models:\n  - name: a\n    n: [8]\n    max_n: 4\n", "max_n"),
    ],
)
def test_malformed_fleet_names_field_and_file(tmp_path, text, needle):
    path = tmp_path / "bad_fleet.yaml"
    path.write_text(text)
    with pytest.raises(FleetError) as exc:
        Fleet.from_yaml(path)
    assert needle in str(exc.value)
    if needle not in ("not valid YAML", "empty"):
        assert "bad_fleet.yaml" in str(exc.value)


def test_records_roundtrip_and_flat_layout(tmp_path):
    flat = {
        "id": 7, "prompt": "2+2?",
        "small": {"responses": ["4", "5"], "correct_scores": [1, 0],
                  "token_num_prompt": 4, "token_num_responses": [1, 1]},
    }
    rec = Record.model_validate(flat)
    assert rec.id == "7" and rec.samples("small").score("correct") == [1, 0]
    path = tmp_path / "r.jsonl"
    write_records([rec, rec.model_copy(update={"id": "8"})], path)
    back = read_records(path)
    assert [r.id for r in back] == ["7", "8"]
    assert back[0].models["small"].token_num_responses == [1, 1]
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(ValueError) as exc:
        read_records(path)
    assert "r.jsonl:3" in str(exc.value)


def test_record_rejects_inconsistent_lengths():
    with pytest.raises(ValueError):
        Record.model_validate({"id": "1", "prompt": "p", "models": {"m": {
            "responses": ["a"], "scores": {"correct": [1, 0]}, "token_num_responses": [3]}}})
    assert json.loads(Record(id="1", prompt="p").model_dump_json())["models"] == {}
