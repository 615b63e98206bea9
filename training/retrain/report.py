"""The retraining report: a quality-against-cost plot and a markdown account of the evidence.

The report shows the estimates with their standard errors, the decisive paired difference and
how to read them, so that whoever deploys the router can check why it was (not) promoted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adaptive_router.training.retrain.evaluation import ESTIMATORS, OfflineComparison


def plot_quality_cost(summary: Mapping[str, Any], cmp: OfflineComparison, path: Path) -> Path:
    """Quality against dollars per 1,000 requests, old vs new, from DR estimates on held-out
    traffic: threshold sweeps as lines, the served knobs as points with 95% intervals."""
    from adaptive_router.training.plots import finish_figure, plt  # Agg backend, set there

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    colours = {"old": "#7f7f7f", "new": "#1f77b4"}
    method = "fleet heads" if summary.get("method") == "heads" else "feedback-tuned"
    labels = {"old": f"base ({summary['base_type']})", "new": f"retrained ({method})"}
    for name in ("old", "new"):
        pts = sorted(summary["curves"][name], key=lambda p: p["cost_usd"])  # estimates are noisy:
        ax.plot([p["cost_usd"] * 1000 for p in pts], [p["quality"] for p in pts], "-o", ms=3,
                lw=0.8, color=colours[name], alpha=0.6,  # drawn in cost order, not knob order
                label=f"{labels[name]}: threshold sweep (0.05-0.95)")
    for name, attr in (("old", "old"), ("new", "new")):
        q = getattr(cmp.quality["dr"], attr)
        c = getattr(cmp.cost["dr"], attr)
        ax.errorbar([c.value * 1000], [q.value], xerr=[[1.96 * c.std_error * 1000]],
                    yerr=[[1.96 * q.std_error]], fmt="s", ms=8, capsize=4, color=colours[name],
                    label=f"{labels[name]} at the served knobs (95% CI)")
    ax.plot([cmp.logged_cost * 1000], [cmp.logged_quality], "*", ms=14, color="#d62728",
            label="served traffic (logged average, with exploration)")
    ax.set_xlabel("dollars per 1,000 requests (DR estimate)")
    ax.set_ylabel("quality (DR estimate)")
    verdict = "PROMOTED" if summary["promoted"] else "kept the base"
    ax.set_title(f"Retraining on {summary['held_out']} held-out logged requests: {verdict}")
    return finish_figure(fig, ax, path, legend_size=7)


def _fmt(est: Any, scale: float = 1.0, digits: int = 4) -> str:
    return f"{est.value * scale:.{digits}f} ± {est.std_error * scale:.{digits}f}"


def _fine_tune_section(summary: Mapping[str, Any]) -> list[str]:
    fi = summary["fine_tune"]
    return [
        "## Fine-tuning (warm start)",
        f"Base router: `{summary['base']}` ({summary['base_type']}). The retrained router starts at "
        "the base router's predictions and learns a penalised logit correction on MiniLM prompt "
        "embeddings from the (prompt, served candidate, quality) triples of the train traffic "
        f"(generation {fi['generation']}). L2 strength {fi['l2']:g}, chosen on a validation slice "
        "by cross-entropy: " + ", ".join(f"{k:g} -> {v:.4f}" for k, v in fi["l2_search_val_bce"].items())
        + f" (the base router's: {fi['base_val_bce']:.4f}).",
        "",
    ]


def _heads_section(summary: Mapping[str, Any]) -> list[str]:
    """Every fleet candidate with its learned head: how much the log says about it, and where
    its prior came from."""
    hi = summary["heads"]
    feats = []
    if hi["base_columns"]:
        feats.append(f"the base router's logits on {', '.join(hi['base_columns'])}")
    if hi["tasks"]:
        feats.append(f"predicted probabilities of {len(hi['tasks'])} logged task tags "
                     f"({', '.join(hi['tasks'])})")
    feats.append(f"{hi['components']} principal components of the {hi['encoder']} prompt embedding")
    search = ", ".join(f"{k} -> {v:.4f}" for k, v in hi["lambda_search_val_log_loss"].items())
    lines = [
        "## Fleet heads (one learned head per candidate)",
        f"Base: {summary['base_description']}; fleet: {summary['fleet']} ({len(summary['candidate_keys'])} "
        f"candidates, reference model `{summary['reference_model']}`); expected costs filled in "
        f"for {summary['expected_costs_filled']} (line, candidate) pairs the log did not price; "
        f"{summary['tagged_requests']} requests carry a task tag. Generation {hi['generation']}.",
        "",
        "Each head is a logistic regression on " + "; ".join(feats) + ", fitted on the requests "
        "that served its candidate, each weighted by 1 / its logged propensity (IPS), and "
        "penalised toward its prior: the per-prompt weights toward the prior head, the intercept "
        f"toward the candidate's logged mean shrunk toward its role's by {hi['kappa']:g} "
        "pseudo-requests. A role's prior is a head pooled over its candidates, itself shrunk "
        f"toward one head pooled over every request. Penalty {hi['lambda']:g} pseudo-requests per "
        f"weight ({hi['task_lambda']:g} on task weights), chosen by the propensity-weighted log loss "
        f"on a validation slice (embedding/task penalty -> loss): "
        f"{search or 'too little data, the largest'} (priors alone: {hi['prior_val_log_loss']:.4f}).",
        "",
        "| candidate | role | prior | served | explored | mean propensity | logged mean (SNIPS) ± se | "
        "ESS | shrunk mean | learned head: mean prediction |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for h in hi["heads"]:
        logged = (f"{h['logged_mean']:.3f} ± {h['logged_se']:.3f}" if h["served"] else "—")
        prop = f"{h['mean_propensity']:.3f}" if h["served"] else "—"
        lines.append(f"| `{h['candidate']}` | {h['role']} | {h['prior']} | {h['served']} | "
                     f"{h['explored']} | {prop} | {logged} | {h['effective_sample_size']:.1f} | "
                     f"{h['shrunk_mean']:.3f} | {h['predicted_mean']:.3f} |")
    lines.append("")
    if not summary.get("router_written", True):
        lines += ["With `--base none` and no promotion there is no router to deploy: `router/` "
                  "was not written (the candidate is in `candidate/`).", ""]
    return lines


def write_report(summary: Mapping[str, Any], cmp: OfflineComparison, path: Path, plot_name: str) -> Path:
    """The markdown report: data, labels, fine-tuning, estimates with standard errors, verdict."""
    est = summary["estimator"].upper()
    lines = [
        "# Retraining report",
        "",
        f"**Verdict: {'PROMOTED the retrained router' if summary['promoted'] else 'kept the base router'}.** "
        f"Rule: {summary['decision_rule']}.",
        "",
        "## Data",
        f"- logs: {', '.join(summary['logs'])}",
        f"- {summary['traffic_lines']} traffic-log lines, {summary['litellm_payloads']} LiteLLM "
        f"standard logging payloads ({summary['skipped_payloads']} payloads skipped: not chat)",
        f"- feedback joined: {summary['feedback_joined']}; quality labels by source: "
        + ", ".join(f"{k} {v}" for k, v in summary["label_sources"].items()),
        f"- usable labelled requests: {summary['usable']} (train {summary['train']}, held out "
        f"{summary['held_out']}, split by prompt); left out: "
        + (", ".join(f"{v} x {k}" for k, v in summary["dropped"].items()) or "none"),
        f"- explored (epsilon) share of the served requests: {summary['explored_share']:.1%}",
        "- served share per candidate: " + ", ".join(
            f"{k} {v:.1%}" for k, v in summary["served_share"].items()),
        "",
        *(_heads_section(summary) if summary.get("method") == "heads" else _fine_tune_section(summary)),
        "## Old vs new on held-out traffic",
        f"Each held-out request is re-decided by each router under the knob it was served with "
        f"({cmp.agreement:.1%} of them both decide alike; the base router reproduces "
        f"{cmp.replay_fidelity:.1%} of the logged unexplored decisions; 100% means it is the "
        "router that served them). Values are off-policy estimates from "
        "the logged propensities, ± one standard error; DR is the decisive estimator unless "
        "`--estimator` says otherwise.",
        "",
        "| estimator | quality old | quality new | $/1k req old | $/1k req new | ESS new / N |",
        "|---|---|---|---|---|---|",
    ]
    for m in ESTIMATORS:
        q, c = cmp.quality[m], cmp.cost[m]
        lines.append(f"| {m.upper()} | {_fmt(q.old)} | {_fmt(q.new)} | {_fmt(c.old, 1000)} | "
                     f"{_fmt(c.new, 1000)} | {q.new.effective_sample_size:.0f} / {q.new.n} |")
    lines += [
        "",
        f"Logged (served) traffic on the same requests: quality {cmp.logged_quality:.4f}, "
        f"${cmp.logged_cost * 1000:.4f} per 1k requests. DR's outcome model: each candidate's "
        "mean quality on the train traffic, shrunk towards the overall mean by 5 pseudo-requests ("
        + ", ".join(f"{k} {v:.3f}" for k, v in summary["dr_outcome_model"].items())
        + "), and the expected cost of each candidate the serving policy logged.",
        "",
        "Paired differences (new - old), estimated from per-request differences on the same log:",
        "",
        "| quantity | estimator | difference | std. error | variance | z | 95% CI |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, group, scale in (("quality", cmp.quality, 1.0), ("$/1k requests", cmp.cost, 1000.0),
                               ("utility", cmp.utility, 1.0)):
        for m in ESTIMATORS:
            p = group[m]
            lo, hi = p.ci95
            lines.append(f"| {name} | {m.upper()} | {p.difference * scale:+.5f} | "
                         f"{p.std_error * scale:.5f} | {(p.std_error * scale) ** 2:.3g} | {p.z:+.2f} | "
                         f"[{lo * scale:+.5f}, {hi * scale:+.5f}] |")
    dec = cmp.utility[summary["estimator"]]
    lines += [
        "",
        f"Decisive: {est} utility difference {dec.difference:+.5f} ± {dec.std_error:.5f} "
        f"(z = {dec.z:+.2f}).",
        "",
        f"![quality and cost, old vs new]({plot_name})",
        "",
        "## How to read this",
        "- Logged traffic holds only the served candidate's answer, so the value of a router that "
        "would have served another candidate is estimated, not replayed. IPS reweights each "
        "logged outcome by pi_new(a|x) / p_logged(a|x) (Horvitz-Thompson; Li et al. 2011); SNIPS "
        "normalises by the sum of the weights (Swaminathan & Joachims 2015); DR adds a model of "
        "every candidate's outcome and corrects it with the weighted residual (Dudik, Langford & "
        "Li 2011), unbiased if either the propensities or the model are right.",
        "- Standard errors are the sample standard deviation of the per-request terms over "
        "sqrt(N) (delta method for SNIPS); the effective sample size (sum w)^2 / sum w^2 says how "
        "many logged requests effectively inform the new policy's estimate.",
        "- Quality labels are only as good as their source: feedback is the user's word, a reward "
        "score is the proxy reward model's opinion (sigmoid of its score), a judge is another model's.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
