"""The traffic log: concurrency across threads and processes, rotation, redaction, Records."""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
from pathlib import Path

import pytest

from adaptive_router.errors import DataError
from adaptive_router.traffic import (
    REDACTED,
    TrafficLogLine,
    TrafficLogWriter,
    read_traffic_log,
    redact,
    traffic_log_files,
    traffic_to_records,
)


def _line(i: int, writer_id: str = "t", model: str = "small", n: int = 2) -> TrafficLogLine:
    # a long prompt makes a torn or interleaved write visible as a JSON error
    return TrafficLogLine(
        request_id=f"{writer_id}-{i}",
        prompt=f"question {i} from {writer_id}: " + "why is the sky blue? " * 40,
        decision={"model": model, "n": n, "candidate": f"{model}#{n}", "policy": "threshold(0.5)"},
        samples=[f"answer {j} to {i}" for j in range(n)],
        reward_scores=[0.1 * j for j in range(n)],
        chosen_index=n - 1,
        prompt_tokens=12,
        output_tokens=[5 + j for j in range(n)],
        cost_usd=0.0001 * (i + 1),
        latency_s=0.01,
        model_group=model,
    )


def _write_many(path: str, writer_id: str, count: int, threads: int, max_bytes: int, backups: int) -> None:
    writer = TrafficLogWriter(path, max_bytes=max_bytes, backups=backups)

    def work(t: int) -> None:
        for i in range(t, count, threads):
            writer.write(_line(i, writer_id))

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()


def _all_ids(path: Path) -> list[str]:
    return [ln.request_id for ln in read_traffic_log(path)]


def test_threads_and_processes_lose_and_interleave_nothing(tmp_path: Path) -> None:
    """8 threads in this process and 2 other processes x 4 threads write into one log."""
    log = tmp_path / "traffic.jsonl"
    per_writer = 150
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(log), f"p{k}", per_writer, 4, 0, 0))
             for k in range(2)]
    for p in procs:
        p.start()
    _write_many(str(log), "main", per_writer, 8, 0, 0)
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    raw = log.read_text(encoding="utf-8").splitlines()
    assert len(raw) == 3 * per_writer
    for r in raw:  # every physical line is exactly one whole JSON object
        json.loads(r)
    ids = _all_ids(log)
    assert len(ids) == len(set(ids)) == 3 * per_writer
    assert {i.split("-")[0] for i in ids} == {"main", "p0", "p1"}


def test_rotation_keeps_backups_and_reads_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    one = len(_line(0).to_json()) + 1
    writer = TrafficLogWriter(log, max_bytes=one * 10 + 5, backups=3)
    for i in range(45):
        writer.write(_line(i))
    files = traffic_log_files(log)
    assert [f.name for f in files] == ["t.jsonl.3", "t.jsonl.2", "t.jsonl.1", "t.jsonl"]
    for f in files:
        assert f.stat().st_size <= one * 10 + 5
    ids = [int(x.split("-")[1]) for x in _all_ids(log)]
    # about 10 lines per file (ids differ in length): the oldest rotated away, the rest in order
    assert ids == list(range(ids[0], 45))
    assert 3 * 9 < len(ids) <= 40


def test_rotation_is_process_safe(tmp_path: Path) -> None:
    """Two processes rotating the same log lose no line that a kept file should hold."""
    log = tmp_path / "r.jsonl"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(log), f"p{k}", 100, 2, 20_000, 50))
             for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    assert len(traffic_log_files(log)) > 3
    ids = _all_ids(log)
    assert len(ids) == len(set(ids)) == 200


def test_secrets_are_redacted_before_the_disk(tmp_path: Path) -> None:
    log = tmp_path / "s.jsonl"
    secret = "sk-" + "a1B2" * 8
    line = _line(0)
    line.prompt = f"my key is {secret}, please keep it"
    line.messages = [{"role": "user", "content": line.prompt}]
    line.decision["api_key"] = "plain-secret-value"
    extra = {"headers": {"Authorization": "Bearer abcdefghijklmnop", "x-api-key": "zzz",
                         "Content-Type": "application/json"},
             "litellm_params": {"api_key": "secret2", "api_base": "http://x"}}
    writer = TrafficLogWriter(log)
    writer.write({**line.model_dump(), **extra})
    text = log.read_text(encoding="utf-8")
    for s in (secret, "plain-secret-value", "abcdefghijklmnop", "zzz", "secret2"):
        assert s not in text
    back = next(read_traffic_log(log))
    assert back.decision["api_key"] == REDACTED
    assert REDACTED in back.prompt and "please keep it" in back.prompt
    assert back.model_extra["headers"]["Content-Type"] == "application/json"
    assert back.model_extra["litellm_params"]["api_base"] == "http://x"
    # token counts are not secrets
    assert back.prompt_tokens == 12 and back.output_tokens == [5, 6]


def test_redact_leaves_ordinary_values() -> None:
    data = {"prompt_tokens": 3, "model": "gpt-4o", "text": "sk-short", "nested": [{"secret": "x"}]}
    out = redact(data)
    assert out == {"prompt_tokens": 3, "model": "gpt-4o", "text": "sk-short",
                   "nested": [{"secret": REDACTED}]}


def test_traffic_to_records_merges_models_of_one_prompt(tmp_path: Path) -> None:
    log = tmp_path / "m.jsonl"
    writer = TrafficLogWriter(log)
    a = _line(1, "a", model="small", n=3)
    b = _line(1, "b", model="large", n=1)
    b.prompt = a.prompt
    c = _line(2, "c", model="small", n=1)
    failed = _line(3, "d")
    failed.error = "upstream 500"
    for ln in (a, b, c, failed):
        writer.write(ln)
    records = traffic_to_records(read_traffic_log(log))
    assert len(records) == 2
    r = records[0]
    assert set(r.models) == {"small", "large"}
    assert r.models["small"].responses == a.samples
    assert r.models["small"].token_num_responses == [5, 6, 7]
    assert r.models["small"].scores["reward"] == pytest.approx([0.0, 0.1, 0.2])
    assert r.models["large"].token_num_prompt == 12
    assert r.meta["request_ids"] == ["a-1", "b-1"]
    separate = traffic_to_records(read_traffic_log(log), merge_same_prompt=False)
    assert len(separate) == 3


def test_missing_and_malformed_logs_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        list(read_traffic_log(tmp_path / "nothing.jsonl"))
    log = tmp_path / "bad.jsonl"
    TrafficLogWriter(log).write(_line(0))
    with log.open("a") as fh:
        fh.write('{"request_id": "torn", "prom\n')
    with pytest.raises(DataError, match="bad.jsonl:2"):
        list(read_traffic_log(log))
    assert len(list(read_traffic_log(log, strict=False))) == 1
