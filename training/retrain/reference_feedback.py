"""Feedback from reference answers: grade each served answer of a traffic log against the known
answer to its prompt, and write the ``--feedback`` file ``adaptive-router retrain`` joins.

For traffic whose prompts have reference answers (a benchmark replayed through the proxy, a
curated evaluation set, the demo's CHAMP problems) this stands in for users' thumbs: the label
is whether the served (chosen) sample's final answer matches the reference
(:func:`adaptive_router.grading.grade`), keyed by the request id every routed response carries.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from adaptive_router.grading import grade
from adaptive_router.traffic import read_traffic_log


def grade_against_references(traffic_log: str | Path, references: Mapping[str, str],
                             out_path: str | Path) -> tuple[Path, float]:
    """Write one ``{"request_id", "correct"}`` JSON line per served request whose prompt has a
    reference answer; returns the file and the share graded correct (NaN when none was graded).

    Failed requests, lines without samples (``keep: none`` redaction) and prompts without a
    reference are skipped: there is nothing to grade, and a guess would be a wrong label.
    """
    rows = []
    for line in read_traffic_log(traffic_log):
        if line.error or not line.samples or line.prompt not in references:
            continue
        answer = line.samples[min(line.chosen_index, len(line.samples) - 1)]
        rows.append({"request_id": line.request_id,
                     "correct": bool(grade(answer, references[line.prompt]))})
    out = Path(out_path)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    share = sum(row["correct"] for row in rows) / len(rows) if rows else float("nan")
    return out, share
