"""Prometheus metrics of the proxy plugin (issue 17, item 4).

LiteLLM's own Prometheus integration (``litellm_settings: callbacks: ["prometheus"]``, not
enterprise-gated in 1.106.2) mounts ``GET /metrics`` on the proxy and serves
``prometheus_client``'s default registry. Its metrics are LiteLLM's (spend, tokens, latency per
model group and key); the only custom labels it can add are string values copied from request
metadata (``custom_prometheus_metadata_labels``), which cannot carry a saving, a sample count as
a number, or a cascade's escalations. So the plugin registers its own collectors in that same
default registry: one scrape of LiteLLM's ``/metrics`` returns both sets. Without the
``prometheus`` callback nothing mounts ``/metrics``: the plugin then mounts the same registry
there itself when the proxy starts (:func:`mount_metrics_route`), so the counters are never
unreachable. Without ``prometheus-client`` installed (``pip install ".[proxy]"`` brings it),
every function here is a no-op and the proxy log says so once.

Metrics (all prefixed ``adaptive_router_``):

- ``decisions_total{alias, model, n}``: routed requests by the chosen candidate.
- ``explorations_total{model, n}``: decisions taken by exploration (``explore_epsilon``).
- ``cost_usd_total{model}``: realised dollar cost (every sample and every cascade step).
- ``reference_cost_usd_total``: what the same requests would have cost on the fleet's reference
  model with n = 1 (the decision's ``expected_costs_usd`` entry for it; the realised cost when
  the reference itself served).
- ``saving_usd``: reference cost minus realised cost, cumulative (a gauge: a request routed to a
  dear best-of-n can cost more than the reference, so the sum can fall).
- ``escalations_total{from_model, to_model}``: cascade steps taken after the first.
- ``failovers_total{from_group, to_group}``: requests served by another group than the one
  decided (failover after an error, or a group LiteLLM was cooling down).
- ``failures_total``: routed requests that failed after the decision.
- ``routing_latency_seconds``: time from the pre-call hook's start to the decision (router,
  policy, fallback planning), a histogram.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("adaptive_router.litellm")

_LOCK = threading.Lock()
_METRICS: dict[str, Any] | None = None
_UNAVAILABLE = False

#: Routing takes milliseconds; LiteLLM's default buckets start at 5 ms and are too coarse.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def metrics() -> dict[str, Any] | None:
    """The collectors, registered once per process in the default registry; None without
    ``prometheus_client``. Registering twice would raise, and the plugin module can be imported
    by several LiteLLM code paths: hence one lazily built set behind a lock."""
    global _METRICS, _UNAVAILABLE
    if _METRICS is not None or _UNAVAILABLE:
        return _METRICS
    with _LOCK:
        if _METRICS is not None or _UNAVAILABLE:
            return _METRICS
        try:
            from prometheus_client import Counter, Gauge, Histogram
        except ImportError:
            _UNAVAILABLE = True
            log.warning("adaptive_router: prometheus-client is not installed; no metrics "
                        "(pip install 'adaptive-router[proxy]')")
            return None
        p = "adaptive_router_"
        _METRICS = {
            "decisions": Counter(p + "decisions_total", "Routed requests by chosen candidate",
                                 ["alias", "model", "n"]),
            "explorations": Counter(p + "explorations_total", "Decisions taken by exploration",
                                    ["model", "n"]),
            "cost": Counter(p + "cost_usd_total", "Realised cost in US dollars", ["model"]),
            "reference_cost": Counter(p + "reference_cost_usd_total",
                                      "Cost of the same requests on the reference model (n = 1)"),
            # several workers (PROMETHEUS_MULTIPROC_DIR): the page shows the sum over processes
            "saving": Gauge(p + "saving_usd", "Reference cost minus realised cost, cumulative",
                            multiprocess_mode="sum"),
            "escalations": Counter(p + "escalations_total", "Cascade steps taken after the first",
                                   ["from_model", "to_model"]),
            "failovers": Counter(p + "failovers_total", "Requests served by another group than decided",
                                 ["from_group", "to_group"]),
            "failures": Counter(p + "failures_total", "Routed requests that failed after the decision"),
            "latency": Histogram(p + "routing_latency_seconds", "Time to take the routing decision",
                                 buckets=LATENCY_BUCKETS),
        }
        return _METRICS


def observe_decision(alias: str, decision: Mapping[str, Any], latency_s: float) -> None:
    """Count one decision (``Decision.as_dict()``) and how long it took."""
    m = metrics()
    if m is None:
        return
    model, n = str(decision.get("model")), str(decision.get("n"))
    m["decisions"].labels(alias=alias, model=model, n=n).inc()
    if decision.get("explored"):
        m["explorations"].labels(model=model, n=n).inc()
    m["latency"].observe(max(0.0, float(latency_s)))


def observe_outcome(line: Any, reference_model: str, decided_group: str | None) -> None:
    """Count what one request cost, against the reference, and any escalation or fallback.

    ``line`` is the request's :class:`~adaptive_router.traffic.TrafficLogLine` (the one record
    of what was served and paid); ``decided_group`` is the group chosen before any failover."""
    m = metrics()
    if m is None:
        return
    if line.error:
        m["failures"].inc()
        return
    decision = line.decision or {}
    model = str(decision.get("model"))
    cost = float(line.cost_usd or 0.0)
    m["cost"].labels(model=model).inc(cost)
    expected = decision.get("expected_costs_usd") or {}
    served_reference = model == reference_model and int(decision.get("n") or 1) == 1 and not line.cascade
    reference = cost if served_reference else expected.get(f"{reference_model}#1")
    if reference is not None:
        m["reference_cost"].inc(float(reference))
        m["saving"].inc(float(reference) - cost)
    steps = (line.cascade or {}).get("steps") or []
    for before, after in zip(steps, steps[1:], strict=False):
        m["escalations"].labels(from_model=str(before.get("model")), to_model=str(after.get("model"))).inc()
    if decided_group and line.model_group and line.model_group != decided_group:
        m["failovers"].labels(from_group=decided_group, to_group=line.model_group).inc()


def mount_metrics_route() -> bool:
    """Serve the metrics at ``/metrics`` on the running proxy unless something (LiteLLM's
    ``prometheus`` callback) already does; True when this call mounted it.

    With several workers (``PROMETHEUS_MULTIPROC_DIR`` set, as LiteLLM requires for them) each
    worker's page collects every worker's samples from that folder, so a scrape that reaches any
    worker reads the whole proxy; otherwise the process's default registry."""
    if metrics() is None:
        return False
    import sys

    server = sys.modules.get("litellm.proxy.proxy_server")
    app = getattr(server, "app", None)
    if app is None:
        return False
    with _LOCK:
        if any(getattr(r, "path", None) == "/metrics" for r in app.routes):
            return False
        from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app, multiprocess

        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        app.mount("/metrics", make_asgi_app(registry))
    log.info("adaptive_router: serving Prometheus metrics at /metrics")
    return True


__all__ = ["mount_metrics_route", "metrics", "observe_decision", "observe_outcome"]
