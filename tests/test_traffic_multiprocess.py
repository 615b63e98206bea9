"""The traffic log with several OS processes writing at once, across rotations (issue "Scale
past one process", item 3): what LiteLLM's ``--num_workers``, gunicorn workers and replicas do.

Every line must parse, none may be lost or written twice, no file may grow past ``max_bytes``, and
each writer's lines must keep their order (a line appended into a file that another process had
already rotated away would surface out of order, or be lost when that file is deleted).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from adaptive_router.file_lock import exclusive_file_lock
from adaptive_router.traffic import (
    TrafficLogLine,
    TrafficLogWriter,
    read_traffic_log,
    traffic_log_files,
)

WRITERS = 4
LINES = 400


def _line(writer: int, i: int) -> TrafficLogLine:
    # ~1 KB: a torn or interleaved write shows as a JSON error, and rotations come often
    return TrafficLogLine(request_id=f"w{writer}-{i:05d}", prompt=f"writer {writer} line {i} " + "x" * 900,
                          decision={"model": "small", "n": 1, "candidate": "small#1"}, samples=["ok"],
                          output_tokens=[3], prompt_tokens=5, cost_usd=1e-6, model_group="small")


def _writer(path: str, writer: int, count: int, max_bytes: int, backups: int, start: float) -> None:
    log = TrafficLogWriter(path, max_bytes=max_bytes, backups=backups)
    while time.time() < start:  # all processes begin together: the most contention
        time.sleep(0.001)
    for i in range(count):
        log.write(_line(writer, i))


def _run_writers(path: Path, max_bytes: int, backups: int, count: int = LINES) -> None:
    ctx = mp.get_context("spawn")
    start = time.time() + 3.0  # spawned interpreters need a moment to import
    procs = [ctx.Process(target=_writer, args=(str(path), w, count, max_bytes, backups, start))
             for w in range(WRITERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
        assert p.exitcode == 0, f"writer {p.pid} exited with {p.exitcode}"


def _check_whole(path: Path, max_bytes: int) -> list[str]:
    """Every physical line parses; no file is over the cap; the ids in reading order."""
    ids = []
    for f in traffic_log_files(path):
        assert f.stat().st_size <= max_bytes, f"{f.name} is {f.stat().st_size} bytes"
        for raw in f.read_text(encoding="utf-8").splitlines():
            ids.append(json.loads(raw)["request_id"])
    assert ids == [ln.request_id for ln in read_traffic_log(path)]
    return ids


@pytest.mark.timeout(300)
def test_processes_rotating_one_log_lose_nothing(tmp_path: Path) -> None:
    """4 processes x 400 lines of ~1 KB, rotating every ~20 KB: ~80 rotations, none lost."""
    log = tmp_path / "traffic.jsonl"
    max_bytes = 20_000
    _run_writers(log, max_bytes, backups=200)  # room for every line: nothing may be missing
    ids = _check_whole(log, max_bytes)
    assert len(traffic_log_files(log)) > 50  # many rotations really happened
    assert len(ids) == len(set(ids)) == WRITERS * LINES
    for w in range(WRITERS):  # each writer's lines in the order written, across every file
        mine = [i for i in ids if i.startswith(f"w{w}-")]
        assert mine == sorted(mine) and len(mine) == LINES


@pytest.mark.timeout(300)
def test_few_backups_drop_only_the_oldest_lines(tmp_path: Path) -> None:
    """With 3 backups most lines are rotated out; what remains is, for every writer, an unbroken
    run of its latest lines (a line written into a renamed-away file would leave a gap)."""
    log = tmp_path / "traffic.jsonl"
    max_bytes = 20_000
    _run_writers(log, max_bytes, backups=3)
    files = traffic_log_files(log)
    assert [f.name for f in files] == ["traffic.jsonl.3", "traffic.jsonl.2", "traffic.jsonl.1",
                                       "traffic.jsonl"]
    ids = _check_whole(log, max_bytes)
    assert len(ids) == len(set(ids))
    line = len(_line(0, 0).to_json()) + 1
    assert len(ids) >= 3 * (max_bytes // line - 1)  # three full rotated files and the current one
    for w in range(WRITERS):
        mine = [int(i.split("-")[1]) for i in ids if i.startswith(f"w{w}-")]
        # the newest lines kept, oldest first, no gap (a writer that finished early may have been
        # rotated out entirely)
        assert mine == list(range(mine[0], LINES)) if mine else True, f"writer {w}: {mine}"


def _hold(path: str, seconds: float, ready: str) -> None:
    with exclusive_file_lock(path):
        Path(ready).touch()
        time.sleep(seconds)


def test_the_lock_excludes_another_process(tmp_path: Path) -> None:
    """The filelock-based lock really excludes another OS process, and waits for it."""
    lock = tmp_path / "x.lock"
    ready = tmp_path / "ready"
    p = mp.get_context("spawn").Process(target=_hold, args=(str(lock), 1.5, str(ready)))
    p.start()
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert time.monotonic() < deadline and p.is_alive()
            time.sleep(0.01)
        from filelock import Timeout

        with pytest.raises(Timeout):
            with exclusive_file_lock(lock, timeout_s=0.2):
                pass
        t0 = time.monotonic()
        with exclusive_file_lock(lock):  # waits for the other process to let go
            waited = time.monotonic() - t0
        assert 0.3 < waited < 5.0
    finally:
        p.join(timeout=30)
    assert p.exitcode == 0
    assert lock.exists() and os.path.getsize(lock) == 0  # left in place, never deleted
