"""The savings report: what routing spent against always calling the reference model.

Why it can be computed from the logs alone: every routed request's decision carries the
expected cost of *every* candidate (``decision.expected_costs_usd``), the reference model's
included, priced by the same cost model that served the request. So the counterfactual "we
always called the reference" needs no prices and no replay: it is the reference candidate's
expected cost (prompt tokens counted, output at the fleet's expected length), request by
request. When the reference itself answered (it was chosen, or a cascade escalated to it), its
logged real cost is that request's baseline instead: no invented saving from an answer shorter
than expected. What routing spent is the logged ``cost_usd`` (real token counts; a cascade's
line holds the sum over every step it took).

Inputs are the traffic logs of several replicas (rotated files too) and/or LiteLLM
``StandardLoggingPayload`` JSON lines (the plugin puts its decision under ``adaptive_router``
in the request metadata, which the payload copies); a request seen twice (a replica's traffic
log and its payload) counts once. Quality comes from feedback (on the line, or joined from a
feedback file by ``request_id``), read as :func:`adaptive_router.training.retrain.labels.feedback_quality`
reads it for retraining.

Left out of the comparison, and reported: requests without a routing decision (nothing to
compare with) and failed requests (their cost, if any, is still shown).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adaptive_router.errors import DataError
from adaptive_router.traffic import TrafficLogLine, traffic_log_files

NO_ALIAS = "(no alias)"


@dataclass
class Request:
    """One request as the report counts it."""

    request_id: str
    timestamp: datetime
    alias: str
    candidate: str
    cost_usd: float
    reference_usd: float | None
    steps: int = 1
    explored: bool = False
    quality: float | None = None
    error: str | None = None

    @property
    def day(self) -> str:
        return self.timestamp.astimezone(timezone.utc).date().isoformat()

    @property
    def compared(self) -> bool:
        """Counted in spend-vs-reference: routed (a reference cost is known) and served."""
        return self.reference_usd is not None and self.error is None


@dataclass
class ReadStats:
    """What reading found (reported beside the tables)."""

    files: list[str] = field(default_factory=list)
    traffic_lines: int = 0
    litellm_payloads: int = 0
    cascade_step_payloads: int = 0
    duplicates: int = 0
    unreadable: int = 0
    feedback_matched: int = 0


# ---------------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------------


def reference_key(expected: Mapping[str, Any], reference: str | None) -> str | None:
    """The reference candidate among a decision's expected costs: ``<reference>#1`` when a
    reference model is named, else the dearest single-sample candidate (a fleet's default
    reference is its dearest model)."""
    if not expected:
        return None
    if reference:
        key = reference if "#" in reference else f"{reference}#1"
        return key if key in expected else None
    singles = [k for k in expected if k.endswith("#1")] or list(expected)
    return max(singles, key=lambda k: float(expected[k]))


def _epoch(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _payload_line(obj: Mapping[str, Any]) -> tuple[TrafficLogLine | None, str | None, bool]:
    """(line, alias, is a cascade's inner step) of one LiteLLM logging payload."""
    from adaptive_router.training.retrain.logs import _find_key, from_standard_logging_payload

    payload = obj.get("standard_logging_object", obj)
    if not isinstance(payload, Mapping):
        return None, None, False
    if _find_key(payload.get("metadata") or {}, "adaptive_router_cascade_step") is not None:
        return None, None, True  # its cost is in the routed request's payload
    line = from_standard_logging_payload(obj)
    if line is None:
        return None, None, False
    when = _epoch(payload.get("startTime")) or _epoch(payload.get("endTime"))
    if when is not None:
        line.timestamp = when
    info = _find_key(payload, "adaptive_router")
    alias = info.get("alias") if isinstance(info, Mapping) else None
    return line, alias, False


def _json_objects(path: Path, stats: ReadStats, progress: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    from tqdm.auto import tqdm

    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(tqdm(fh, desc=f"reading {path.name}", unit=" lines",
                                          disable=None if progress else True, leave=False), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                stats.unreadable += 1  # e.g. a truncated last line after a crash
                continue
            if isinstance(obj, dict):
                yield lineno, obj


def _request(line: TrafficLogLine, alias: str | None, reference: str | None) -> Request:
    decision = line.decision or {}
    expected = decision.get("expected_costs_usd") or {}
    ref_key = reference_key(expected, reference)
    steps = (line.cascade or {}).get("steps") or []
    cost = float(line.cost_usd)
    if steps and cost == 0.0:  # a line that kept only the steps' costs
        cost = sum(float(s.get("cost_usd") or 0.0) for s in steps)
    baseline = float(expected[ref_key]) if ref_key is not None else None
    if ref_key is not None and line.error is None:  # the reference answered: its real cost
        ref_steps = [s for s in steps if s.get("candidate") == ref_key and s.get("cost_usd") is not None]
        if ref_steps:
            baseline = float(ref_steps[0]["cost_usd"])
        elif not steps and f"{decision.get('model')}#{decision.get('n') or 1}" == ref_key:
            baseline = cost
    from adaptive_router.training.retrain.labels import feedback_quality

    try:
        quality = feedback_quality(line.feedback)
    except DataError:
        quality = None
    extra = line.model_extra or {}
    candidate = decision.get("candidate") or f"{decision.get('model')}#{decision.get('n') or 1}"
    if isinstance(candidate, Mapping):
        candidate = f"{candidate.get('model')}#{candidate.get('n', 1)}"
    return Request(
        request_id=line.request_id, timestamp=line.timestamp,
        alias=str(alias or extra.get("alias") or NO_ALIAS), candidate=str(candidate), cost_usd=cost,
        reference_usd=baseline,
        steps=max(1, len(steps)), explored=bool(line.explored), quality=quality, error=line.error)


def read_requests(
    logs: Sequence[str | Path],
    feedback: Sequence[str | Path] = (),
    reference: str | None = None,
    progress: bool = True,
) -> tuple[list[Request], ReadStats]:
    """Every request of the logs (rotated files included, oldest first), deduplicated by
    request id, with feedback joined on; sorted by time."""
    from adaptive_router.training.retrain.logs import is_standard_logging_payload, read_feedback

    stats = ReadStats()
    late: dict[str, dict[str, Any]] = {}
    for path in feedback:
        late.update(read_feedback(path))
    seen: set[str] = set()
    out: list[Request] = []
    for path in logs:
        files = traffic_log_files(path)
        if not files:
            raise DataError(f"log {path} does not exist (nor any rotated {path}.N); pass the traffic "
                            "log the plugin writes (ADAPTIVE_ROUTER_TRAFFIC_LOG) or a file of LiteLLM "
                            "StandardLoggingPayload JSON lines")
        for file in files:
            stats.files.append(str(file))
            for lineno, obj in _json_objects(file, stats, progress):
                alias = None
                if is_standard_logging_payload(obj):
                    line, alias, inner = _payload_line(obj)
                    if inner:
                        stats.cascade_step_payloads += 1
                        continue
                    if line is None:
                        stats.unreadable += 1
                        continue
                    stats.litellm_payloads += 1
                else:
                    try:
                        line = TrafficLogLine.model_validate(obj)
                    except ValidationError as exc:
                        raise DataError(f"{file}:{lineno}: neither a traffic log line nor a LiteLLM "
                                        f"logging payload: {exc.errors()[0]['msg']}") from None
                    stats.traffic_lines += 1
                if line.request_id and line.request_id in seen:
                    stats.duplicates += 1
                    continue
                seen.add(line.request_id)
                if line.request_id in late:
                    line.feedback = {**(line.feedback or {}), **late[line.request_id]}
                    stats.feedback_matched += 1
                out.append(_request(line, alias, reference))
    out.sort(key=lambda r: r.timestamp)
    return out, stats


# ---------------------------------------------------------------------------------------------
# summarising
# ---------------------------------------------------------------------------------------------


def _group(requests: Iterable[Request]) -> dict[str, Any]:
    """Spend, always-reference spend and saving of some requests, with quality where labelled."""
    reqs = list(requests)
    compared = [r for r in reqs if r.compared]
    spent = sum(r.cost_usd for r in compared)
    ref = sum(r.reference_usd or 0.0 for r in compared)
    labelled = [r.quality for r in compared if r.quality is not None]
    return {
        "requests": len(compared),
        "spend_usd": spent,
        "reference_usd": ref,
        "saved_usd": ref - spent,
        "saved_pct": 100 * (1 - spent / ref) if ref > 0 else None,
        "escalated": sum(r.steps > 1 for r in compared),
        "explored": sum(r.explored for r in compared),
        "quality": sum(labelled) / len(labelled) if labelled else None,
        "labelled": len(labelled),
    }


def summarise(requests: Sequence[Request], stats: ReadStats | None = None,
              reference: str | None = None) -> dict[str, Any]:
    """The report's numbers: totals, by day, by alias, by day and alias, by candidate served."""
    def by(key: Any) -> dict[str, Any]:
        keys = sorted({key(r) for r in requests})
        return {k: _group(r for r in requests if key(r) == k) for k in keys}

    unrouted = [r for r in requests if r.reference_usd is None and r.error is None]
    failed = [r for r in requests if r.error is not None]
    return {
        "reference": reference or "the dearest single-sample candidate of each decision",
        "total": _group(requests),
        "by_day": by(lambda r: r.day),
        "by_alias": by(lambda r: r.alias),
        "by_day_alias": by(lambda r: f"{r.day} {r.alias}"),
        "by_candidate": by(lambda r: r.candidate),
        "left_out": {"unrouted": {"requests": len(unrouted), "spend_usd": sum(r.cost_usd for r in unrouted)},
                     "failed": {"requests": len(failed), "spend_usd": sum(r.cost_usd for r in failed)}},
        "first": requests[0].timestamp.isoformat() if requests else None,
        "last": requests[-1].timestamp.isoformat() if requests else None,
        "read": asdict(stats) if stats is not None else None,
    }


def _money(v: float) -> str:
    return f"${v:,.4f}" if abs(v) < 100 else f"${v:,.2f}"


def format_table(groups: Mapping[str, Mapping[str, Any]], first: str, markdown: bool = False) -> str:
    """One table of groups (rows) x spend, always-reference, saved, quality."""
    header = [first, "requests", "spend", "always-reference", "saved", "saved %", "escalated", "quality (n)"]
    rows = []
    for name, g in groups.items():
        pct = "-" if g["saved_pct"] is None else f"{g['saved_pct']:.1f}%"
        qual = "-" if g["quality"] is None else f"{g['quality']:.3f} ({g['labelled']})"
        rows.append([name, str(g["requests"]), _money(g["spend_usd"]), _money(g["reference_usd"]),
                     _money(g["saved_usd"]), pct, str(g["escalated"]), qual])
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in [header] + rows)


def format_report(summary: Mapping[str, Any], markdown: bool = False) -> str:
    """The printed (or markdown) report: totals, by day, by alias, by day and alias, by candidate."""
    h = (lambda t: f"\n## {t}\n") if markdown else (lambda t: f"\n{t}")
    t = summary["total"]
    pct = "-" if t["saved_pct"] is None else f"{t['saved_pct']:.1f}%"
    out = [("# " if markdown else "") + "Savings against always calling the reference",
           f"\n{t['requests']} routed requests from {summary['first']} to {summary['last']}: spent "
           f"{_money(t['spend_usd'])}, always-reference {_money(t['reference_usd'])}, saved "
           f"{_money(t['saved_usd'])} ({pct}). Reference: {summary['reference']}; its cost per request "
           "is the expected cost the decision logged for it (its real cost where it answered)."]
    for title, key, first in (("By day (UTC)", "by_day", "day"), ("By alias", "by_alias", "alias"),
                              ("By day and alias", "by_day_alias", "day alias"),
                              ("By candidate served (step 1)", "by_candidate", "candidate")):
        out += [h(title), format_table(summary[key], first, markdown)]
    left = summary["left_out"]
    notes = []
    if left["unrouted"]["requests"]:
        notes.append(f"{left['unrouted']['requests']} requests carry no routing decision (not routed by "
                     f"the plugin, or no reference candidate): {_money(left['unrouted']['spend_usd'])}, "
                     "left out of the comparison")
    if left["failed"]["requests"]:
        notes.append(f"{left['failed']['requests']} failed requests: {_money(left['failed']['spend_usd'])} "
                     "spent, left out of the comparison")
    read = summary.get("read") or {}
    if read.get("duplicates"):
        notes.append(f"{read['duplicates']} requests seen twice (traffic log and logging payload) counted once")
    if read.get("cascade_step_payloads"):
        notes.append(f"{read['cascade_step_payloads']} payloads of cascade steps folded into their request")
    if read.get("unreadable"):
        notes.append(f"{read['unreadable']} unreadable lines skipped")
    if not summary["total"]["labelled"]:
        notes.append("no feedback: quality is shown where requests carry feedback (pass --feedback FILE "
                     "of {request_id, score|correct|rating|thumbs} lines)")
    if notes:
        out += [h("Notes")] + [("- " if markdown else "note: ") + n for n in notes]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# the plot and the files
# ---------------------------------------------------------------------------------------------


def plot_cumulative(requests: Sequence[Request], path: str | Path) -> Path:
    """Cumulative spend over time: what routing spent and what always calling the reference
    would have (both lines), on the compared requests."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import numpy as np
    from adaptive_router.training.plots import _dollars

    compared = [r for r in requests if r.compared]
    if not compared:
        raise DataError("no routed, served request in the logs: nothing to plot (are these the "
                        "plugin's traffic logs, with decisions?)")
    times = [r.timestamp for r in compared]
    spent = np.cumsum([r.cost_usd for r in compared])
    ref = np.cumsum([r.reference_usd or 0.0 for r in compared])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.step(times, ref, where="post", color="tab:red", label=f"always the reference: {_dollars(float(ref[-1]))}")
    ax.step(times, spent, where="post", color="tab:blue", label=f"routed (what was spent): {_dollars(float(spent[-1]))}")
    ax.fill_between(times, spent, ref, step="post", color="tab:green", alpha=0.15,
                    label=f"saved: {_dollars(float(ref[-1] - spent[-1]))}"
                          + (f" ({100 * (1 - spent[-1] / ref[-1]):.1f}%)" if ref[-1] > 0 else ""))
    ax.set_ylabel("cumulative spend (USD)")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(_dollars))
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_title(f"Cumulative spend, {len(compared)} routed requests")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def savings_report(
    logs: Sequence[str | Path],
    out: str | Path,
    feedback: Sequence[str | Path] = (),
    reference: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Read the logs, write ``report.md``, ``report.json`` and ``savings.png`` into ``out``;
    return the summary (with ``text``, the printed report, and ``files``)."""
    requests, stats = read_requests(logs, feedback=feedback, reference=reference, progress=progress)
    if not requests:
        raise DataError(f"the logs {[str(p) for p in logs]} hold no requests")
    summary = summarise(requests, stats, reference)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(summary, indent=2, default=str))
    (out_dir / "report.md").write_text(format_report(summary, markdown=True))
    plot = plot_cumulative(requests, out_dir / "savings.png")
    summary["text"] = format_report(summary)
    summary["files"] = [str(out_dir / "report.md"), str(out_dir / "report.json"), str(plot)]
    return summary
