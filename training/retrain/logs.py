"""Reading what was served: traffic logs, LiteLLM logging payloads, and late feedback.

The project's traffic log (:mod:`adaptive_router.traffic`, rotated files included) and LiteLLM's
``StandardLoggingPayload`` JSON lines may both hold the traffic to retrain on, so the format is
detected per line; feedback that arrives after the fact is joined on by ``request_id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adaptive_router.errors import DataError
from adaptive_router.traffic import TrafficLogLine, traffic_log_files


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def _decoded(value: Any, plain: Callable[[str], Any]) -> Any:
    """A payload field LiteLLM may store as a JSON string: decoded; a string that is not JSON
    goes through ``plain``; anything else as is."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return plain(value)


def _find_key(obj: Any, key: str, depth: int = 4) -> Any:
    """The first value under ``key`` in nested mappings (LiteLLM nests metadata variously)."""
    if depth < 0 or not isinstance(obj, Mapping):
        return None
    if key in obj and obj[key] is not None:
        return obj[key]
    for v in obj.values():
        found = _find_key(v, key, depth - 1)
        if found is not None:
            return found
    return None


def is_standard_logging_payload(data: Mapping[str, Any]) -> bool:
    """Whether a JSON object is a LiteLLM ``StandardLoggingPayload`` (or wraps one)."""
    if "standard_logging_object" in data:
        return True
    return "call_type" in data and "response_cost" in data and "decision" not in data


def from_standard_logging_payload(data: Mapping[str, Any]) -> TrafficLogLine | None:
    """A traffic log line from one LiteLLM ``StandardLoggingPayload`` (field names from
    ``litellm/types/utils.py``): ``messages``, ``response`` (the chat completion, its choices
    are the samples), ``model_group``, ``prompt_tokens``, ``completion_tokens``,
    ``response_cost``, ``response_time``, ``status``, ``error_str`` and ``metadata``.

    The routing decision and its propensity are read from an ``adaptive_router`` entry wherever
    the plugin put it in the payload (metadata, hidden params or the response); without one the
    request counts as routed deterministically to the model that served it (propensity 1).
    Returns None for payloads that are not chat completions with a prompt.
    """
    payload = data.get("standard_logging_object", data)
    if not isinstance(payload, Mapping):
        return None
    messages = _decoded(payload.get("messages"), lambda text: [{"role": "user", "content": text}])
    if isinstance(messages, Mapping):
        messages = [messages]
    if not isinstance(messages, list) or not messages:
        return None
    users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
    prompt = _message_text(users[-1].get("content")) if users else ""
    if not prompt.strip():
        return None
    response = _decoded(payload.get("response"), lambda text: {"choices": [{"message": {"content": text}}]})
    choices = response.get("choices", []) if isinstance(response, Mapping) else []
    samples = [_message_text((c.get("message") or {}).get("content")) for c in choices
               if isinstance(c, Mapping)]
    meta = payload.get("metadata") or {}
    info = _find_key(payload, "adaptive_router") or {}
    decision = dict(info.get("decision", info)) if isinstance(info, Mapping) else {}
    model = decision.get("model") or payload.get("model_group") or payload.get("model")
    params = payload.get("model_parameters") or {}
    decision.setdefault("model", model)
    decision.setdefault("n", int(params.get("n") or len(samples) or 1))
    n_out = max(1, len(samples))
    completion = int(payload.get("completion_tokens") or 0)
    per_sample = [completion // n_out] * n_out
    failed = payload.get("status") == "failure" or bool(payload.get("error_str"))
    feedback = _find_key(meta, "feedback")
    try:
        return TrafficLogLine(
            request_id=str(payload.get("id") or payload.get("litellm_call_id") or ""),
            prompt=prompt,
            messages=[dict(m) for m in messages if isinstance(m, Mapping)],
            decision=decision,
            samples=samples,
            reward_scores=[float(s) for s in (info.get("scores") or [])] if isinstance(info, Mapping) else [],
            chosen_index=int(info.get("chosen_index", 0)) if isinstance(info, Mapping) else 0,
            prompt_tokens=int(payload.get("prompt_tokens") or 0),
            output_tokens=per_sample if samples else [],
            cost_usd=float(payload.get("response_cost") or 0.0),
            latency_s=float(payload.get("response_time") or 0.0),
            model_group=payload.get("model_group"),
            explored=bool(decision.get("explored", False)),
            propensity=float(decision.get("propensity", 1.0)),
            feedback=feedback if isinstance(feedback, Mapping) else None,
            error=str(payload.get("error_str") or "failed") if failed else None,
        )
    except ValidationError:
        return None


def _iter_json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{lineno}: not a JSON line; is this a traffic log or a "
                                "file of LiteLLM StandardLoggingPayload JSON lines?") from None
            if isinstance(obj, dict):
                yield lineno, obj


@dataclass
class LogReadStats:
    """What reading the logs found (reported)."""

    files: list[str] = field(default_factory=list)
    traffic_lines: int = 0
    litellm_payloads: int = 0
    skipped: int = 0


def iter_logs(paths: Sequence[str | Path], stats: LogReadStats | None = None) -> Iterator[TrafficLogLine]:
    """Every request in the given logs (traffic logs with their rotations, or LiteLLM standard
    logging payloads, detected per line), oldest file first, one at a time.

    A generator, so that a log of a million requests is never held whole: the retraining job
    keeps only the compact arrays it learns from (:mod:`.compact`). ``stats`` is filled in as
    the lines are read."""
    stats = stats if stats is not None else LogReadStats()
    for path in paths:
        files = traffic_log_files(path)
        if not files:
            raise DataError(f"log {path} does not exist; pass the traffic log the plugin writes "
                            "(ADAPTIVE_ROUTER_TRAFFIC_LOG) or a file of LiteLLM logging payloads")
        for file in files:
            stats.files.append(str(file))
            for lineno, obj in _iter_json_lines(file):
                if is_standard_logging_payload(obj):
                    line = from_standard_logging_payload(obj)
                    if line is None:
                        stats.skipped += 1
                        continue
                    stats.litellm_payloads += 1
                    yield line
                    continue
                try:
                    parsed = TrafficLogLine.model_validate(obj)
                except ValidationError as exc:
                    raise DataError(f"{file}:{lineno}: neither a traffic log line nor a LiteLLM "
                                    f"logging payload: {exc.errors()[0]['msg']}") from None
                stats.traffic_lines += 1
                yield parsed


def read_logs(paths: Sequence[str | Path], stats: LogReadStats | None = None) -> list[TrafficLogLine]:
    """Every request in the given logs, as a list (small logs and tests; the retraining job
    streams them with :func:`iter_logs`)."""
    return list(iter_logs(paths, stats))


def read_feedback(path: str | Path) -> dict[str, dict[str, Any]]:
    """Feedback that arrived after the fact: JSON lines ``{"request_id": ..., <fields>}``."""
    out: dict[str, dict[str, Any]] = {}
    for lineno, obj in _iter_json_lines(Path(path)):
        rid = obj.get("request_id")
        if not rid:
            raise DataError(f"{path}:{lineno}: feedback lines need a request_id")
        out[str(rid)] = {k: v for k, v in obj.items() if k != "request_id"}
    return out


def join_feedback(lines: list[TrafficLogLine], feedback: Mapping[str, Mapping[str, Any]]) -> int:
    """Attach feedback to the lines with those request ids; returns how many matched."""
    matched = 0
    for line in lines:
        fb = feedback.get(line.request_id)
        if fb:
            line.feedback = {**(line.feedback or {}), **fb}
            matched += 1
    return matched
