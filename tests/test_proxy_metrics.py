"""The plugin's Prometheus counters from traffic log lines (issue 17, item 4): escalations,
fallbacks, failures and the saving against the reference, which a short proxy test does not
provoke (tests/integration/test_example_proxy.py scrapes a real proxy's /metrics).

The lines are real :class:`TrafficLogLine` objects and the counters live in prometheus_client's
real default registry, read back with ``get_sample_value``."""

from __future__ import annotations

import pytest

pytest.importorskip("prometheus_client")
from adaptive_router.integrations.litellm_plugin.metrics import observe_decision, observe_outcome  # noqa: E402
from prometheus_client import REGISTRY  # noqa: E402

from adaptive_router.traffic import TrafficLogLine  # noqa: E402


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def line(**kw) -> TrafficLogLine:
    decision = {"model": "mini", "n": 3, "candidate": "mini#3", "explored": False,
                "expected_costs_usd": {"big#1": 0.001, "mini#3": 0.0002}}
    return TrafficLogLine(prompt="p", decision={**decision, **kw.pop("decision", {})}, **kw)


def test_cost_reference_and_saving() -> None:
    before = (value("adaptive_router_cost_usd_total", model="mini"),
              value("adaptive_router_reference_cost_usd_total"), value("adaptive_router_saving_usd"))
    observe_outcome(line(cost_usd=0.0003, model_group="mini-group"), "big", "mini-group")
    assert value("adaptive_router_cost_usd_total", model="mini") - before[0] == pytest.approx(0.0003)
    assert value("adaptive_router_reference_cost_usd_total") - before[1] == pytest.approx(0.001)
    assert value("adaptive_router_saving_usd") - before[2] == pytest.approx(0.0007)


def test_reference_served_saves_nothing() -> None:
    before = value("adaptive_router_saving_usd")
    observe_outcome(line(decision={"model": "big", "n": 1, "candidate": "big#1"}, cost_usd=0.0012,
                         model_group="big-group"), "big", "big-group")
    assert value("adaptive_router_saving_usd") == pytest.approx(before)  # realised == reference


def test_escalations_fallbacks_failures_and_explorations() -> None:
    cascade = {"steps": [{"model": "mini", "n": 3}, {"model": "big", "n": 1}], "served_step": 2}
    esc = value("adaptive_router_escalations_total", from_model="mini", to_model="big")
    observe_outcome(line(cost_usd=0.001, model_group="mini-group", cascade=cascade), "big", "mini-group")
    assert value("adaptive_router_escalations_total", from_model="mini", to_model="big") == esc + 1

    fb = value("adaptive_router_failovers_total", from_group="mini-group", to_group="big-group")
    observe_outcome(line(cost_usd=0.001, model_group="big-group"), "big", "mini-group")
    assert value("adaptive_router_failovers_total", from_group="mini-group", to_group="big-group") == fb + 1

    failed = value("adaptive_router_failures_total")
    observe_outcome(line(error="APIError: boom", model_group="mini-group"), "big", "mini-group")
    assert value("adaptive_router_failures_total") == failed + 1

    ex = value("adaptive_router_explorations_total", model="mini", n="1")
    n = value("adaptive_router_routing_latency_seconds_count")
    observe_decision("adaptive-router", {"model": "mini", "n": 1, "explored": True}, 0.003)
    assert value("adaptive_router_explorations_total", model="mini", n="1") == ex + 1
    assert value("adaptive_router_routing_latency_seconds_count") == n + 1
