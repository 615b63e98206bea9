"""The savings report (issue 17, item 5): spend against always calling the reference model, from
real traffic log lines of two replicas (rotated) and LiteLLM logging payloads."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from adaptive_router.training.savings_report import read_requests, reference_key, savings_report
from typer.testing import CliRunner

from adaptive_router.cli import app
from adaptive_router.cost import CostModel
from adaptive_router.domain import Fleet
from adaptive_router.engine import RoutingEngine
from adaptive_router.errors import DataError
from adaptive_router.routers import load_router
from adaptive_router.traffic import TrafficLogLine, TrafficLogWriter, traffic_log_files

FLEET = Fleet.from_dict({
    "models": [{"name": "small", "n": [1, 3], "expected_output_tokens": 200,
                "price": {"input_per_million": 0.15, "output_per_million": 0.60}},
               {"name": "large", "expected_output_tokens": 200,
                "price": {"input_per_million": 2.50, "output_per_million": 10.0}}],
    "reference": "large",
})
START = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


def _engine(router: str) -> RoutingEngine:
    return RoutingEngine(FLEET, load_router(router, fleet=FLEET), cost_model=CostModel(FLEET, count_tokens=False))


def _served(engine: RoutingEngine, i: int, alias: str, when: datetime, **extra) -> TrafficLogLine:
    """A line as the routing service writes it: the engine's real decision, real token counts."""
    prompt = f"Question {i}: what is {i} times {i + 7}? Explain briefly."
    decision = engine.decide(prompt)
    price = FLEET.model(decision.model).resolved_price()
    outs = [120 + 10 * k for k in range(decision.n)]
    return TrafficLogLine(
        request_id=f"req-{i}", timestamp=when, prompt=prompt, decision=decision.as_dict(),
        samples=[f"answer {k}" for k in range(decision.n)], prompt_tokens=len(prompt) // 4,
        output_tokens=outs, cost_usd=price.cost(len(prompt) // 4, sum(outs)), model_group=decision.model,
        explored=decision.explored, propensity=decision.propensity, alias=alias, **extra)


def write_logs(tmp_path: Path) -> tuple[list[TrafficLogLine], list[Path], dict]:
    """Two replicas' traffic logs (small files, so they rotate) over three days and two aliases,
    with a cascade that escalated, a failed request, and line-level feedback."""
    cheap, strong = _engine("cheapest"), _engine("strongest")
    replicas = [TrafficLogWriter(tmp_path / f"replica{k}" / "traffic.jsonl", max_bytes=4000, backups=20)
                for k in (1, 2)]
    lines = []
    for i in range(24):
        when = START + timedelta(days=i // 8, minutes=37 * i)
        alias = "adaptive-router" if i % 3 else "adaptive-0.3"
        engine = strong if i % 4 == 0 else cheap
        fb = {"feedback": {"score": 0.5}} if i == 5 else {}
        lines.append(_served(engine, i, alias, when, **fb))
    # a cascade: small#1 first, not believed, then large#1; the line holds the sum of both steps
    cascade = _served(cheap, 100, "adaptive-router", START + timedelta(hours=5))
    step1, step2 = cascade.cost_usd, 0.0042
    cascade.cost_usd = step1 + step2
    cascade.cascade = {"steps": [{"candidate": "small#1", "cost_usd": step1, "accepted": False},
                                 {"candidate": "large#1", "cost_usd": step2, "accepted": True}],
                       "served_step": 2}
    failed = _served(cheap, 200, "adaptive-router", START + timedelta(hours=6))
    failed.error, failed.samples, failed.cost_usd = "upstream timeout", [], 0.0
    lines += [cascade, failed]
    for k, line in enumerate(lines):
        replicas[k % 2].write(line)
    return lines, [w.path for w in replicas], {"cascade": cascade, "failed": failed}


def _payload(line: TrafficLogLine, alias: str, **metadata) -> dict:
    """A StandardLoggingPayload as LiteLLM logs a request the plugin routed (the hook puts its
    report under metadata.requester_metadata.adaptive_router)."""
    return {"id": line.request_id, "call_type": "acompletion", "response_cost": line.cost_usd,
            "startTime": line.timestamp.timestamp(), "endTime": line.timestamp.timestamp() + 0.5,
            "model_group": line.model_group, "prompt_tokens": line.prompt_tokens,
            "completion_tokens": sum(line.output_tokens), "status": "success",
            "messages": [{"role": "user", "content": line.prompt}],
            "response": {"choices": [{"message": {"content": s}} for s in line.samples]},
            "metadata": {"requester_metadata": {"adaptive_router": {"decision": line.decision,
                                                                    "knob": {"threshold": 0.5},
                                                                    "alias": alias}}, **metadata}}


def test_spend_against_the_reference_by_day_and_alias(tmp_path: Path) -> None:
    lines, logs, special = write_logs(tmp_path)
    assert any(len(traffic_log_files(p)) > 2 for p in logs)  # rotated: the report reads every file
    # a third replica ships LiteLLM logging payloads: one new request, one already in a traffic
    # log (counted once), and the inner call of a cascade step (its cost is in its request's)
    extra = _served(_engine("cheapest"), 300, "adaptive-0.3", START + timedelta(days=2, hours=3))
    payloads = tmp_path / "replica3_payloads.jsonl"
    payloads.write_text("\n".join(json.dumps(p) for p in (
        _payload(extra, "adaptive-0.3"),
        {"standard_logging_object": _payload(lines[3], "adaptive-router")},
        _payload(special["cascade"], "adaptive-router", adaptive_router_cascade_step=2),
    )) + "\n")
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("\n".join(json.dumps(f) for f in (
        {"request_id": "req-1", "correct": True}, {"request_id": "req-2", "correct": False},
        {"request_id": "req-4", "thumbs": "up"}, {"request_id": "nobody", "score": 1.0})) + "\n")

    summary = savings_report(logs + [payloads], tmp_path / "report", feedback=[feedback], progress=False)

    served = [ln for ln in lines if ln.error is None] + [extra]
    spent = sum(ln.cost_usd for ln in served)
    total = summary["total"]
    assert total["requests"] == len(served) == 26
    assert total["spend_usd"] == pytest.approx(spent)
    # where the reference answered, its real cost is the baseline: no saving on those requests,
    # and the escalated cascade paid its first step on top of the reference's answer
    assert summary["by_candidate"]["large#1"]["saved_usd"] == pytest.approx(0.0)
    cascade = special["cascade"]
    expected_ref = sum(ln.decision["expected_costs_usd"]["large#1"] for ln in served
                       if ln.decision["candidate"] != "large#1" and ln is not cascade)
    ref = expected_ref + 0.0042 + sum(ln.cost_usd for ln in served if ln.decision["candidate"] == "large#1")
    assert 0 < total["saved_pct"] < 100 and total["escalated"] == 1
    assert summary["left_out"]["failed"]["requests"] == 1
    read = summary["read"]
    assert read["duplicates"] == 1 and read["cascade_step_payloads"] == 1 and read["litellm_payloads"] == 2
    assert read["feedback_matched"] == 3
    # by day (UTC) and by alias add up to the total
    assert set(summary["by_day"]) == {"2026-12-01", "2026-12-02", "2026-12-03"}
    assert set(summary["by_alias"]) == {"adaptive-router", "adaptive-0.3"}
    assert total["reference_usd"] == pytest.approx(ref)
    for key in ("by_day", "by_alias", "by_day_alias", "by_candidate"):
        assert sum(g["spend_usd"] for g in summary[key].values()) == pytest.approx(spent)
        assert sum(g["reference_usd"] for g in summary[key].values()) == pytest.approx(ref)
    day3 = [ln for ln in served if ln.timestamp.date().isoformat() == "2026-12-03"]
    assert summary["by_day"]["2026-12-03"]["spend_usd"] == pytest.approx(sum(ln.cost_usd for ln in day3))
    # quality where feedback exists: req-1 (1), req-2 (0), req-4 (thumbs up), req-5 (score 0.5)
    assert total["labelled"] == 4 and total["quality"] == pytest.approx(2.5 / 4)
    report = tmp_path / "report"
    assert {p.name for p in report.iterdir()} == {"report.md", "report.json", "savings.png"}
    assert (report / "savings.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 2026-12-01 |" in (report / "report.md").read_text()
    assert "By day (UTC)" in summary["text"] and "always-reference" in summary["text"]


def test_report_cli(tmp_path: Path) -> None:
    _, logs, _ = write_logs(tmp_path)
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["report", "--logs", str(logs[0]), "--logs", str(logs[1]),
                                      "--reference", "large", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Savings against always calling the reference" in result.output
    assert "By alias" in result.output and "adaptive-0.3" in result.output
    assert "1 failed requests" in result.output and "0.500 (1)" in result.output
    assert (out / "savings.png").exists()


def test_reference_choice_and_unusable_logs(tmp_path: Path) -> None:
    expected = {"small#1": 0.001, "small#3": 0.004, "large#1": 0.003}
    assert reference_key(expected, None) == "large#1"  # the dearest single-sample candidate
    assert reference_key(expected, "small") == "small#1" and reference_key(expected, "other") is None
    with pytest.raises(DataError, match="does not exist"):
        read_requests([tmp_path / "missing.jsonl"])
    log = tmp_path / "t.jsonl"
    log.write_text(json.dumps({"decision": {"model": "x"}}) + "\n")  # no prompt
    with pytest.raises(DataError, match="neither a traffic log line nor a LiteLLM"):
        read_requests([log])
    unrouted = tmp_path / "u.jsonl"
    TrafficLogWriter(unrouted).write(TrafficLogLine(prompt="hi", decision={"model": "m", "n": 1},
                                                    samples=["hello"], cost_usd=0.01))
    with pytest.raises(DataError, match="no routed, served request"):
        savings_report([unrouted], tmp_path / "o", progress=False)


def test_the_readme_example(repo_root: Path, tmp_path: Path) -> None:
    """`python examples/savings/make_traffic.py DIR` then `adaptive-router report` as the docs say."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_traffic", repo_root / "examples" / "savings" / "make_traffic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path, requests=120)
    summary = savings_report([tmp_path / "replica1.jsonl", tmp_path / "replica2.jsonl"], tmp_path / "out",
                             feedback=[tmp_path / "feedback.jsonl"], progress=False)
    assert summary["total"]["requests"] == 120 and summary["total"]["saved_usd"] > 0
    assert set(summary["by_alias"]) == {"adaptive-router", "adaptive-0.3", "support-bot"}
    assert summary["total"]["labelled"] > 0
    docs = (repo_root / "docs" / "training-and-evaluation.md").read_text()
    assert "python examples/savings/make_traffic.py runs/savings" in docs


async def test_a_real_litellm_payload_counts_with_its_own_time(tmp_path: Path, litellm_payload) -> None:
    """A payload LiteLLM itself built (a CustomLogger capturing the standard_logging_object of a
    mock call), with the plugin's report added where the proxy puts it."""
    payload = await litellm_payload("What is 17 times 23?", "391")
    decision = _engine("cheapest").decide("What is 17 times 23?").as_dict()
    payload["metadata"]["requester_metadata"] = {"adaptive_router": {"decision": decision, "alias": "adaptive-router"}}
    path = tmp_path / "payloads.jsonl"
    path.write_text(json.dumps(payload) + "\n")
    (req,), stats = read_requests([path], progress=False)
    assert stats.litellm_payloads == 1 and req.alias == "adaptive-router" and req.candidate == "small#1"
    assert req.cost_usd == pytest.approx(payload["response_cost"])
    assert req.reference_usd == pytest.approx(decision["expected_costs_usd"]["large#1"])
    assert abs(req.timestamp.timestamp() - float(payload["startTime"])) < 1e-3


def test_lines_that_keep_no_prompt_still_count(tmp_path: Path) -> None:
    """With the plugin's redaction keeping nothing (no prompt, no samples), the decision and the
    cost are still on the line: the savings report needs nothing else."""
    line = _served(_engine("cheapest"), 1, "adaptive-router", START)
    redacted = line.model_copy(update={"prompt": "", "samples": [], "messages": None})
    TrafficLogWriter(tmp_path / "t.jsonl").write(redacted)
    summary = savings_report([tmp_path / "t.jsonl"], tmp_path / "o", progress=False)
    assert summary["total"]["requests"] == 1
    assert summary["total"]["reference_usd"] == pytest.approx(line.decision["expected_costs_usd"]["large#1"])
