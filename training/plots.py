"""Plots of evaluation results (PNG, matplotlib's Agg backend: no display needed).

- :func:`plot_quality_cost`: every router's operating points and their non-decreasing convex
  hull, the single models as labelled points (Pareto front marked), and the oracle's frontier,
  on one quality-vs-dollars plane.
- :func:`plot_deferral`: two-model data: quality against the share of strong-model calls, with
  the weak and strong models' quality as horizontal lines (RouteLLM's presentation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

_COLOURS = plt.get_cmap("tab10").colors


def finish_figure(fig: Any, ax: Any, path: Path, legend_size: float = 8) -> Path:
    """The house style every quality plot ends with (grid, legend lower right), saved and closed
    (an open figure per plot would pile up in long evaluation runs)."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=legend_size, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _dollars(x: float, _pos: Any = None) -> str:
    if x == 0:
        return "$0"
    if x >= 10:
        return f"${x:,.0f}"
    if x >= 0.1:
        return f"${x:.2f}"
    return f"${x:.3g}"


def _dense(costs: list[float], qualities: list[float]) -> tuple[list[float], list[float]]:
    """Hull vertices (dollars per prompt) -> many points per 1k prompts along each chord, so the
    chords (straight in dollars: random mixing of two operating points) draw true on a log axis."""
    if len(costs) < 2:
        return [1000 * c for c in costs], list(qualities)
    xs = np.concatenate([np.linspace(a, b, 40, endpoint=False) for a, b in zip(costs[:-1], costs[1:], strict=True)]
                        + [np.array([costs[-1]])])
    return (1000 * xs).tolist(), np.interp(xs, costs, qualities).tolist()


def plot_quality_cost(results: dict[str, Any], path: str | Path, title: str | None = None) -> Path:
    """Quality against dollars per 1,000 prompts for every router, single model and the oracle.

    ``results`` is the dict written to ``results.json`` by :func:`run_evaluation`
    (keys ``routers``, ``single_models``, ``quality_score``, ``data``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    routers = results["routers"]
    colour_i = 0
    for name, res in routers.items():
        hull_c, hull_q = _dense(res["hull"]["cost_usd"], res["hull"]["quality"])
        if res.get("knob") == "oracle":
            ax.plot(hull_c, hull_q, "-", color="black", lw=1.6, label=f"{name} (frontier)")
            continue
        colour = _COLOURS[colour_i % len(_COLOURS)]
        colour_i += 1
        pts_c = [1000 * p["cost_usd"] for p in res["curve"]]
        pts_q = [p["quality"] for p in res["curve"]]
        ax.scatter(pts_c, pts_q, s=8, color=colour, alpha=0.35)
        ax.plot(hull_c + [max(pts_c)] if hull_c and max(pts_c) > hull_c[-1] else hull_c,
                hull_q + [hull_q[-1]] if hull_c and max(pts_c) > hull_c[-1] else hull_q,
                "-", color=colour, lw=1.6, label=f"{name} (points and hull)")
    singles = results["single_models"]
    for m, v in singles.items():
        marker = "*" if v.get("pareto") else "o"
        ax.scatter([v["cost_per_1k_usd"]], [v["quality"]], marker=marker, s=90 if marker == "*" else 40,
                   color="tab:red", edgecolor="black", zorder=5)
        ax.annotate(m.split("/")[-1], (v["cost_per_1k_usd"], v["quality"]), textcoords="offset points",
                    xytext=(5, -10), fontsize=7)
    ax.scatter([], [], marker="*", s=90, color="tab:red", edgecolor="black", label="single model (Pareto: star)")
    costs = [v["cost_per_1k_usd"] for v in singles.values()]
    log_scale = max(costs) / max(min(costs), 1e-12) > 30
    if log_scale:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_dollars))
    ax.set_xlabel("cost per 1,000 prompts (US dollars" + (", log scale)" if log_scale else ")"))
    ax.set_ylabel(f"mean quality ({results['quality_score']})")
    ax.set_title(title or f"Quality vs cost: {results['data']} ({results['split']}, {results['n_prompts']} prompts)")
    return finish_figure(fig, ax, path)


def plot_deferral(results: dict[str, Any], path: str | Path, title: str | None = None) -> Path | None:
    """Quality against the share of strong-model calls (two-model data only; else None)."""
    summary = results["summary"]
    if "weak" not in summary:
        return None
    path = Path(path)
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    colour_i = 0
    for name, res in results["routers"].items():
        curve = res.get("deferral_curve")
        if not curve:
            continue
        xs = [100 * s for s in curve["share_strong"]]
        if res.get("knob") == "oracle":
            ax.plot(xs, curve["quality"], "-", color="black", lw=1.5, label=name)
        else:
            ax.plot(xs, curve["quality"], ".-", color=_COLOURS[colour_i % 10], lw=1.2, ms=3,
                    label=f"{name} (APGR {res['apgr']:.3f})")
            colour_i += 1
    single = summary["single"]
    ax.axhline(single[summary["weak"]]["quality"], color="grey", ls="--", label=f"weak: {summary['weak']}")
    ax.axhline(single[summary["strong"]]["quality"], color="tab:red", ls="--", label=f"strong: {summary['strong']}")
    ax.set_xlabel("calls to the strong model (%)")
    ax.set_ylabel(f"mean quality ({results['quality_score']})")
    ax.set_title(title or f"Deferral curves: {results['data']} ({results['split']})")
    return finish_figure(fig, ax, path)
