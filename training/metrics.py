"""Routing metrics, each a named function whose docstring cites its definition.

Vocabulary. A router swept over its knob yields *operating points*; each point has a share of
calls sent to the strong (reference) model, a mean dollar cost per prompt and a mean quality.

- Two-model data (RouteLLM, Ong et al., "RouteLLM: Learning to Route LLMs with Preference
  Data", ICLR 2025, section 5.1):
  :func:`deferral_curve` (quality against the share of strong-model calls), :func:`pgr`
  (performance gap recovered), :func:`apgr` (average PGR, the normalised area under the deferral
  curve) and :func:`cpt` (call-performance threshold: the smallest strong share that recovers
  x% of the gap).
- Any number of models (RouterBench, Hu et al., "RouterBench: A Benchmark for Multi-LLM Routing
  System", 2024, section 3): :func:`quality_cost_curve`, :func:`non_decreasing_convex_hull` and
  :func:`normalised_area` (the AIQ-like area under the hull, extended flat to the largest cost),
  :func:`saving_at_quality` (the cost saved relative to the best single model at >= 99% / 100%
  of its quality) and :func:`pareto_front` (the single models no other beats on both axes).
- Baselines: :func:`oracle_deferral_curve` and :func:`oracle_quality_cost_curve` (the best any
  router could do with the recorded labels), :func:`random_deferral_curve` (the straight line).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "deferral_curve", "pgr", "apgr", "cpt", "quality_cost_curve", "non_decreasing_convex_hull",
    "normalised_area", "saving_at_quality", "pareto_front", "oracle_deferral_curve",
    "oracle_quality_cost_curve", "random_deferral_curve",
]


def deferral_curve(shares: Sequence[float], qualities: Sequence[float], q_weak: float,
                   q_strong: float) -> tuple[np.ndarray, np.ndarray]:
    """The deferral curve: quality as a function of the share of calls to the strong model.

    Definition (RouteLLM, section 5.1; Hybrid LLM, Ding et al. ICLR 2024, uses the same curve
    under the name "quality drop vs cost advantage"): sweep the router's threshold; each
    threshold gives (share of strong calls, mean quality). The end points (0, weak quality) and
    (1, strong quality) are always attainable (all-weak, all-strong), so they are added; points
    are sorted by share, and of several points at one share the best is kept (it is attainable).
    Between points the curve is linear: mixing two operating points at random attains every
    point on the chord.
    """
    s = np.concatenate([[0.0], np.asarray(shares, float), [1.0]])
    q = np.concatenate([[q_weak], np.asarray(qualities, float), [q_strong]])
    uniq, inv = np.unique(s, return_inverse=True)
    best = np.full(len(uniq), -np.inf)
    np.maximum.at(best, inv, q)
    return uniq, best


def pgr(quality: float, q_weak: float, q_strong: float) -> float:
    """Performance gap recovered: ``(quality - q_weak) / (q_strong - q_weak)``.

    Definition: RouteLLM, section 5.1 (PGR). 0 means the weak model's quality, 1 the strong's.
    """
    gap = q_strong - q_weak
    if abs(gap) < 1e-12:
        return float("nan")
    return float((quality - q_weak) / gap)


def apgr(shares: np.ndarray, qualities: np.ndarray, q_weak: float, q_strong: float) -> float:
    """Average performance gap recovered: the area under the deferral curve, normalised.

    Definition (RouteLLM, section 5.1): ``APGR = (integral_0^1 q(s) ds - q_weak) /
    (q_strong - q_weak)``, where ``q(s)`` is the deferral curve (see :func:`deferral_curve`;
    trapezoidal integration). A random router scores 0.5, a perfect one close to 1.
    """
    s, q = np.asarray(shares, float), np.asarray(qualities, float)
    area = float(np.sum((s[1:] - s[:-1]) * (q[1:] + q[:-1]) / 2.0))
    return pgr(area, q_weak, q_strong)


def cpt(shares: np.ndarray, qualities: np.ndarray, q_weak: float, q_strong: float,
        fraction: float) -> float:
    """Call-performance threshold CPT(x): the smallest share of strong-model calls at which the
    deferral curve recovers ``fraction`` (e.g. 0.5 for CPT(50%)) of the weak-to-strong gap.

    Definition: RouteLLM, section 5.1 (CPT). The curve is linear between operating points, so
    the crossing is interpolated. Returns a share in [0, 1] (1.0 when only all-strong reaches it).
    """
    s, q = np.asarray(shares, float), np.asarray(qualities, float)
    target = q_weak + fraction * (q_strong - q_weak)
    reached = q >= target - 1e-12
    if not reached.any():
        return 1.0
    i = int(np.argmax(reached))
    if i == 0:
        return float(s[0])
    s0, s1, q0, q1 = s[i - 1], s[i], q[i - 1], q[i]
    if q1 == q0:
        return float(s1)
    return float(s0 + (target - q0) * (s1 - s0) / (q1 - q0))


def quality_cost_curve(costs: Sequence[float], qualities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Operating points sorted by cost (RouterBench's quality-cost plane); equal costs averaged."""
    c, q = np.asarray(costs, float), np.asarray(qualities, float)
    uniq, inv = np.unique(c, return_inverse=True)
    return uniq, np.bincount(inv, weights=q) / np.bincount(inv)


def non_decreasing_convex_hull(costs: Sequence[float], qualities: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The non-decreasing convex hull of (cost, quality) points.

    Definition (RouterBench, section 3.2): a router's attainable frontier. Mixing two operating
    points at random attains their chord (convexity); paying more must never be required to
    keep quality, so the hull is made non-decreasing (a dearer point with lower quality is
    dominated). Computed as the upper hull (monotone chain) of the points that are not
    dominated, starting at the cheapest point.
    """
    c, q = quality_cost_curve(costs, qualities)
    # keep only points that improve quality as cost grows (dominance)
    keep_c, keep_q = [], []
    best = -np.inf
    for ci, qi in zip(c, q, strict=True):
        if qi > best + 1e-15:
            keep_c.append(ci)
            keep_q.append(qi)
            best = qi
    hull: list[tuple[float, float]] = []
    for p in zip(keep_c, keep_q, strict=True):
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            # drop the middle point when it lies on or below the chord (upper hull)
            if (x2 - x1) * (p[1] - y1) - (y2 - y1) * (p[0] - x1) >= 0:
                hull.pop()
            else:
                break
        hull.append(p)
    hc = np.array([h[0] for h in hull])
    hq = np.array([h[1] for h in hull])
    return hc, hq


def hull_quality_at(hull_costs: np.ndarray, hull_qualities: np.ndarray, cost: float) -> float:
    """Quality of the hull at ``cost`` (flat beyond the dearest point; -inf below the cheapest)."""
    if cost < hull_costs[0] - 1e-15:
        return float("-inf")
    if cost >= hull_costs[-1]:
        return float(hull_qualities[-1])
    return float(np.interp(cost, hull_costs, hull_qualities))


def normalised_area(costs: Sequence[float], qualities: Sequence[float],
                    cost_range: tuple[float, float] | None = None) -> float:
    """AIQ-like normalised area under the quality-cost frontier.

    Definition (RouterBench's Average Improvement in Quality, section 3.2): take the
    non-decreasing convex hull of the router's (cost, quality) points, extend it flat to the
    largest cost, and divide the area under it by the cost range:
    ``AIQ = 1/(c_max - c_min) * integral_{c_min}^{c_max} hull(c) dc``. With ``cost_range`` the
    same range is used for every router of a comparison (we use the single models' range);
    where the router cannot operate (below its cheapest point) it earns no area. The result is
    in quality units: the hull's mean quality over the cost range.
    """
    hc, hq = non_decreasing_convex_hull(costs, qualities)
    lo, hi = cost_range if cost_range is not None else (float(hc[0]), float(max(hc[-1], hc[0])))
    if hi <= lo:
        return float(hq[-1])
    grid_c = np.unique(np.clip(np.concatenate([[lo, hi], hc]), lo, hi))
    grid_q = np.array([hull_quality_at(hc, hq, x) for x in grid_c])
    grid_q = np.where(np.isfinite(grid_q), grid_q, 0.0)
    area = float(np.sum((grid_c[1:] - grid_c[:-1]) * (grid_q[1:] + grid_q[:-1]) / 2.0))
    # a router whose cheapest point lies inside the range earns nothing left of it: the
    # trapezoid above spans [left grid point, cheapest point] with a 0 left end; remove it
    if hc[0] > lo:
        first = int(np.searchsorted(grid_c, hc[0]))
        left = grid_c[first - 1] if first > 0 else lo
        area -= float((hc[0] - left) * (grid_q[first]) / 2.0)
    return area / (hi - lo)


def saving_at_quality(costs: Sequence[float], qualities: Sequence[float], target_quality: float,
                      reference_cost: float) -> float | None:
    """Percent of ``reference_cost`` saved at the cheapest point reaching ``target_quality``.

    Definition (the "cost saving at matched quality" of RouteLLM's abstract and of Hybrid LLM,
    applied to RouterBench's frontier): on the non-decreasing convex hull of the router's
    points (random mixing of two operating points attains the chord), find the smallest cost
    whose quality is >= the target, and report ``100 * (1 - cost / reference_cost)``. The
    target is 99% or 100% of the best single model's quality; the reference cost is that
    model's. None when the router never reaches the target; negative when it costs more.
    """
    hc, hq = non_decreasing_convex_hull(costs, qualities)
    if hq[-1] < target_quality - 1e-12:
        return None
    if hq[0] >= target_quality - 1e-12:
        cost = float(hc[0])
    else:
        i = int(np.argmax(hq >= target_quality - 1e-12))
        c0, c1, q0, q1 = hc[i - 1], hc[i], hq[i - 1], hq[i]
        cost = float(c0 + (target_quality - q0) * (c1 - c0) / (q1 - q0))
    if reference_cost <= 0:
        return None
    return 100.0 * (1.0 - cost / reference_cost)


def pareto_front(names: Sequence[str], costs: Sequence[float], qualities: Sequence[float]) -> list[str]:
    """The single models on the Pareto front: no other is at most as dear and strictly better,
    or strictly cheaper and at least as good (the standard non-dominated set, as drawn in
    RouterBench's Figure 3). Returned cheapest first."""
    c, q = np.asarray(costs, float), np.asarray(qualities, float)
    front = []
    for i in range(len(names)):
        dominated = np.any(((c <= c[i]) & (q > q[i])) | ((c < c[i]) & (q >= q[i])))
        if not dominated:
            front.append(i)
    return [names[i] for i in sorted(front, key=lambda i: c[i])]


def oracle_deferral_curve(q_weak: np.ndarray, q_strong: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's deferral curve on two-model data.

    The oracle knows every prompt's labels. It sends to the strong model first the prompts where
    only the strong model is right (for graded scores: in decreasing order of the strong model's
    gain), then the prompts where the two tie, then those where the weak model was better. After
    k of N prompts the share is k/N and the quality is the weak mean plus the gains so far / N.
    """
    qw, qs = np.asarray(q_weak, float), np.asarray(q_strong, float)
    gain = qs - qw
    order = np.argsort(-gain, kind="stable")
    n = len(gain)
    shares = np.arange(n + 1) / n
    quality = qw.mean() + np.concatenate([[0.0], np.cumsum(gain[order])]) / n
    return shares, quality


def random_deferral_curve(q_weak: float, q_strong: float, points: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """The random router's expected deferral curve: the straight line from (0, weak) to
    (1, strong). Sending a random share s of prompts to the strong model yields, in expectation,
    ``(1 - s) q_weak + s q_strong``, so its APGR is exactly 0.5 (RouteLLM, section 5.1)."""
    s = np.linspace(0.0, 1.0, points)
    return s, (1 - s) * q_weak + s * q_strong


def oracle_quality_cost_curve(quality: np.ndarray, cost: np.ndarray,
                              tradeoffs: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's quality-cost frontier on a (prompts x candidates) table.

    For each price of quality lambda, every prompt takes the candidate maximising
    ``quality - lambda * cost`` (ties: the cheaper). The Lagrangian relaxation of "best mean
    quality within a mean budget" decomposes per prompt, so sweeping lambda traces the upper
    convex frontier any router using the same candidates could reach with perfect knowledge.
    """
    qm, cm = np.asarray(quality, float), np.asarray(cost, float)
    if tradeoffs is None:
        scale = max(float(np.median(cm[cm > 0])) if np.any(cm > 0) else 1.0, 1e-18)
        tradeoffs = np.concatenate([[0.0], np.geomspace(1e-4, 1e4, 121) / scale])
    costs, quals = [], []
    rows = np.arange(len(qm))
    for lam in tradeoffs:
        util = qm - lam * cm
        best = util.max(axis=1, keepdims=True)
        masked = np.where(np.isclose(util, best, rtol=0, atol=1e-12), cm, np.inf)
        choice = np.argmin(masked, axis=1)
        costs.append(float(cm[rows, choice].mean()))
        quals.append(float(qm[rows, choice].mean()))
    return quality_cost_curve(costs, quals)


def roc_auc(labels: Sequence[float], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative, ties counting half (Hanley and McNeil 1982, via the Mann-Whitney U statistic).
    How a verifier's ranking of right over wrong answers is measured. None with one class only."""
    y = np.asarray(labels, dtype=np.float64) >= 0.5
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    sorted_s = s[order]
    i = 0
    while i < len(s):  # average ranks over ties
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def apgr_by_cost(costs: Sequence[float], qualities: Sequence[float], q_weak: float, q_strong: float,
                 strong_cost: float) -> float | None:
    """APGR with cost on the x-axis: the share of the strong model's cost, every call included.

    RouteLLM's APGR (:func:`apgr`) integrates quality over the share of strong-model calls, which
    hides what the weak calls, and a cascade's extra steps, cost. Here ``x = cost / strong_cost``
    and ``q(x)`` is the non-decreasing convex hull of the operating points (mixing two operating
    points at random attains the chord, as in :func:`saving_at_quality`), ``q_weak`` left of the
    cheapest point and flat right of the dearest; ``APGR = (integral_0^1 q(x) dx - q_weak) /
    (q_strong - q_weak)``.
    """
    if strong_cost <= 0 or q_strong == q_weak:
        return None
    hc, hq = non_decreasing_convex_hull(np.asarray(costs, float) / strong_cost, qualities)
    xs = np.linspace(0.0, 1.0, 2001)
    q = np.where(xs < hc[0], q_weak, np.interp(xs, hc, hq, right=hq[-1]))
    area = float(np.sum((xs[1:] - xs[:-1]) * (q[1:] + q[:-1]) / 2.0))
    return pgr(area, q_weak, q_strong)
