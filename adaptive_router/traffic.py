"""The traffic log: one JSON line per routed request, to audit spend and to retrain on.

Integrations (the LiteLLM proxy hook, the LangChain chat model) write it; training's retraining
reads it back with :func:`read_traffic_log` and :func:`traffic_to_records`. It is a core type so
that neither side imports the other.

Why the writer looks the way it does:

- **Safe across threads and processes.** A proxy runs many requests at once, and LiteLLM's
  ``--num_workers N``, gunicorn workers and separate replicas are several processes on one log.
  Each line is written with ONE ``os.write`` to a file opened with ``O_APPEND`` (the kernel
  appends it at the end), while holding an exclusive lock on a sidecar lock file
  (``<log>.lock``, :func:`adaptive_router.file_lock.exclusive_file_lock`: the ``filelock``
  library's native lock, so Windows is covered too). The lock also makes the size check, the
  rotation and the append one step: two processes never both rotate (the second sees the fresh,
  small file), and no process writes into a file another has renamed away, because the log is
  opened by path for every append, under the lock, never kept open.
- **Size-rotated, with** ``logging.handlers.RotatingFileHandler`` **'s naming and trigger**
  (``max_bytes`` is its ``maxBytes``, ``backups`` its ``backupCount``). When a line would bring
  the log to ``max_bytes`` or more, ``log.N-1`` becomes ``log.N`` ... ``log`` becomes ``log.1`` and
  the oldest beyond ``backups`` is deleted; :func:`read_traffic_log` reads ``log.N`` ... ``log.1``,
  ``log``, oldest first. One difference, on purpose: ``backups: 0`` with a ``max_bytes`` starts
  the log afresh when it is full, where ``RotatingFileHandler`` with ``backupCount=0`` never rolls
  over and lets the file grow without bound; a size cap on a log of every request must hold.
  The handler itself is not used: it keeps its file open and rotates without a cross-process
  lock, so two processes would both rotate and keep writing into renamed files.
- **Secrets redacted, by a policy users set** (:class:`RedactionPolicy`, issue 16). Keys (on by
  default): values under keys such as ``api_key`` or ``Authorization`` become ``"[REDACTED]"``
  anywhere in the line, and key-shaped strings inside any text (``sk-...``, ``Bearer ...``, AWS
  access key ids and secret keys, GitHub, Google and Slack tokens, JWTs, ``password=...`` pairs)
  are masked. Personal data (off by default, one switch): emails, card numbers (Luhn-checked)
  and phone numbers in the request's and the answers' text. What text is kept at all: none,
  the prompt only, or everything (prompt, messages, samples).
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from adaptive_router.errors import ConfigError, DataError
from adaptive_router.file_lock import exclusive_file_lock
from adaptive_router.records import ModelSamples, Record

#: The environment variable that names the traffic log when the settings do not.
TRAFFIC_LOG_ENV = "ADAPTIVE_ROUTER_TRAFFIC_LOG"
#: What a redacted secret is replaced by.
REDACTED = "[REDACTED]"
DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_BACKUPS = 5

# Keys whose values are secrets whatever they hold (compared lower-cased, "-" read as "_").
_SECRET_KEYS = frozenset({
    "api_key", "apikey", "x_api_key", "api_token", "authorization", "proxy_authorization",
    "x_goog_api_key", "anthropic_api_key", "openai_api_key", "azure_ad_token", "access_token",
    "refresh_token", "id_token", "client_secret", "secret", "secret_key", "password", "passwd",
    "aws_secret_access_key", "aws_session_token", "master_key", "litellm_master_key",
    "user_api_key", "cookie", "set_cookie", "x_litellm_api_key",
})
# Secret-looking substrings inside free text, as one alternation so that each string is scanned
# once (every log line is redacted on the request path): OpenAI/LiteLLM/Anthropic style keys,
# bearer tokens, AWS access key ids, GitHub, Google and Slack tokens, JWTs, `name=value` pairs
# whose name says secret (the name is kept, the value masked), and AWS-secret-shaped 40-character
# base64 words (kept unless they mix upper case, lower case, digits and / or +, as those do).
_SECRET_NAME = r"[A-Za-z_\-]*(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key)"
_ANY_SECRET = re.compile(
    r"\bsk-[A-Za-z0-9_\-]{12,}"
    r"|(?i:\bbearer\s+[A-Za-z0-9._~+/=\-]{8,})"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"
    r"|\bAIza[0-9A-Za-z_\-]{35}"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    rf"|(?P<name>(?i:\b{_SECRET_NAME}))(?P<sep>\s*[:=]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
    r"|(?<![A-Za-z0-9/+=])(?P<b64>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
)
_EMAIL = r"(?P<email>\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b)"
_CARD = r"(?P<card>(?<![\d\-])\d(?:[ \-]?\d){12,18}(?![\d\-]))"
_PHONE = (r"(?P<phone>(?<![\w+])(?:\+\d{1,3}[ .\-]?)?(?:\(\d{2,4}\)[ .\-]?|\d{2,4}[ .\-])"
          r"\d{3,4}[ .\-]?\d{3,4}\b)")
_PERSONAL = re.compile("|".join((_EMAIL, _CARD, _PHONE)))


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_secret(m: re.Match[str]) -> str:
    if m.group("name") is not None:
        return f"{m.group('name')}{m.group('sep')}{REDACTED}"
    b64 = m.group("b64")
    if b64 is not None:  # an AWS secret access key's shape; a hash or a word is left alone
        kinds = (any(c.isupper() for c in b64), any(c.islower() for c in b64),
                 any(c.isdigit() for c in b64), any(c in "/+" for c in b64))
        return REDACTED if all(kinds) else b64
    return REDACTED


def _mask_personal(m: re.Match[str]) -> str:
    if m.group("email") is not None:
        return "[REDACTED:email]"
    card = m.group("card")
    if card is not None:
        digits = card.replace(" ", "").replace("-", "")
        return "[REDACTED:card]" if _luhn(digits) else card
    return "[REDACTED:phone]"


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    k = key.lower().replace("-", "_")
    return k in _SECRET_KEYS or k.endswith("_api_key") or k.endswith("_secret")


def redact_text(text: str) -> str:
    """``text`` with key-shaped substrings (``sk-...``, ``Bearer ...``, AWS keys, GitHub, Google
    and Slack tokens, JWTs, ``password=...`` values) masked."""
    return _ANY_SECRET.sub(_mask_secret, text)


def redact_personal_text(text: str) -> str:
    """``text`` with emails, card numbers (those passing the Luhn check) and phone numbers masked
    as ``[REDACTED:email]``, ``[REDACTED:card]``, ``[REDACTED:phone]``."""
    return _PERSONAL.sub(_mask_personal, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like) with secrets redacted at any depth."""
    kind = type(value)
    if kind is str:  # the common cases first: ABC isinstance checks are slow on the request path
        return redact_text(value)
    if kind in (int, float, bool) or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(k, str) and _is_secret_key(k) and v not in (None, "")
                    else redact(v))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


#: What text a traffic log line keeps: ``everything`` (prompt, messages, samples), ``prompt``
#: (the router's input only: enough to retrain the router, not to audit the answers) or ``none``.
KEEP_CHOICES = ("everything", "prompt", "none")
#: The line fields that hold the request's or the answers' own text.
_TEXT_FIELDS = ("prompt", "messages", "samples", "error", "notes", "cascade")


class RedactionPolicy:
    """What the traffic log keeps of a request's text, and what it masks.

    Parameters
    ----------
    keys: mask secrets (on by default): values under secret-named keys anywhere in the line and
        key-shaped strings inside any text (see :func:`redact_text`).
    personal_data: mask emails, card numbers and phone numbers in the prompt, the messages, the
        samples and error texts (off by default: they are often what a prompt is about, and
        retraining reads the text; turn it on where the log must not hold them).
    keep: ``everything`` (default), ``prompt`` (no messages, no samples: a cascade's step
        samples go too) or ``none`` (prompt written as ``""``: the log then holds decisions,
        costs and token counts only, and cannot be retrained on).
    """

    def __init__(self, keys: bool = True, personal_data: bool = False, keep: str = "everything") -> None:
        if keep not in KEEP_CHOICES:
            raise ConfigError(f"redaction keep must be one of {', '.join(KEEP_CHOICES)}, got {keep!r}")
        self.keys = bool(keys)
        self.personal_data = bool(personal_data)
        self.keep = keep

    def text(self, value: str) -> str:
        if self.keys:
            value = redact_text(value)
        if self.personal_data:
            value = redact_personal_text(value)
        return value

    def _deep(self, value: Any, personal: bool) -> Any:
        kind = type(value)
        if kind is str:
            value = redact_text(value) if self.keys else value
            return redact_personal_text(value) if personal else value
        if kind in (int, float, bool) or value is None:
            return value
        if isinstance(value, Mapping):
            return {k: (REDACTED if self.keys and isinstance(k, str) and _is_secret_key(k)
                        and v not in (None, "") else self._deep(v, personal))
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._deep(v, personal) for v in value]
        return value

    def trim(self, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` (a line's fields) without the text ``keep`` leaves out."""
        if self.keep == "everything":
            return data
        data = dict(data)
        data["messages"] = None
        data["samples"] = []
        if isinstance(data.get("cascade"), Mapping):
            cascade = dict(data["cascade"])
            cascade["steps"] = [{k: v for k, v in step.items() if k != "samples"}
                                for step in cascade.get("steps") or [] if isinstance(step, Mapping)]
            data["cascade"] = cascade
        if self.keep == "none":
            data["prompt"] = ""
        return data

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """A line's fields as they may be written: trimmed, then masked."""
        data = self.trim(data)
        if not self.keys and not self.personal_data:
            return data
        return {k: self._deep(v, self.personal_data and k in _TEXT_FIELDS) for k, v in data.items()}

    def describe(self) -> str:
        return (f"keys {'masked' if self.keys else 'kept'}, personal data "
                f"{'masked' if self.personal_data else 'kept'}, text kept: {self.keep}")

    def __repr__(self) -> str:
        return (f"RedactionPolicy(keys={self.keys}, personal_data={self.personal_data}, "
                f"keep={self.keep!r})")


#: Keys masked, personal data kept, every text kept: the default.
DEFAULT_REDACTION = RedactionPolicy()


def _now() -> datetime:
    return datetime.now(timezone.utc)


class TrafficLogLine(BaseModel):
    """One routed request: what was asked, what was decided, what it cost, what came back.

    ``decision`` is :meth:`adaptive_router.domain.Decision.as_dict` (model, n, predictions,
    expected costs, policy, reason...). ``samples`` are the n texts drawn, ``reward_scores`` the
    selector's score of each (empty when none scored), ``chosen_index`` the one returned.
    ``prompt_tokens`` is paid once, ``output_tokens`` lists every sample's. ``explored`` and
    ``propensity`` come from an exploring policy (off-policy evaluation needs them).
    ``feedback`` is for what a user or a grader says later (e.g. ``{"score": 1.0}``).

    ``cascade`` (issue 14; absent from older lines and from requests without a cascade): every
    step taken, as :func:`adaptive_router.served_cascade.cascade_report` writes it: candidate,
    model group, samples, tokens, cost, verifier score, accepted, propensity. With a cascade the
    line's own fields describe step 1 (the router's action, whose propensity ``propensity`` is),
    ``cost_usd`` is the sum over the steps, and ``cascade["served_step"]`` (1-based) says whose
    answer the client received.
    """

    model_config = ConfigDict(extra="allow")

    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: datetime = Field(default_factory=_now)
    prompt: str
    messages: list[dict[str, Any]] | None = None
    decision: dict[str, Any] = Field(default_factory=dict)
    samples: list[str] = Field(default_factory=list)
    reward_scores: list[float] = Field(default_factory=list)
    chosen_index: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    output_tokens: list[int] = Field(default_factory=list)
    cost_usd: float = Field(default=0.0, ge=0)
    latency_s: float = Field(default=0.0, ge=0)
    model_group: str | None = None
    explored: bool = False
    propensity: float = Field(default=1.0, ge=0, le=1)
    feedback: dict[str, Any] | None = None
    error: str | None = None
    cascade: dict[str, Any] | None = None

    def cascade_step_lines(self) -> list[TrafficLogLine]:
        """The cascade's later steps (2, 3...) as lines of their own: their candidate, samples
        and tokens (retraining reads every model asked, not only step 1's)."""
        out = []
        for step in (self.cascade or {}).get("steps", [])[1:]:
            samples = step.get("samples")
            if not isinstance(samples, list) or not samples:
                continue
            scores = step.get("selector_scores") or []
            outs = step.get("output_tokens") or []
            out.append(self.model_copy(update={
                "decision": {**self.decision, "model": step.get("model"), "n": step.get("n"),
                             "candidate": step.get("candidate")},
                "samples": [str(x) for x in samples],
                "reward_scores": [float(x) for x in scores] if len(scores) == len(samples) else [],
                "output_tokens": [int(x) for x in outs],
                "prompt_tokens": int(step.get("prompt_tokens") or 0),
                "chosen_index": int(step.get("chosen_index") or 0),
                "cost_usd": float(step.get("cost_usd") or 0.0),
                "model_group": step.get("model_group"),
                "propensity": float(step.get("propensity", 1.0)),
                "explored": False,
                "cascade": None,
            }))
        return out

    @property
    def model(self) -> str | None:
        """The fleet model that served the request (from the decision)."""
        return self.decision.get("model")

    @property
    def n(self) -> int:
        return int(self.decision.get("n") or len(self.samples) or 1)

    def to_json(self, redaction: RedactionPolicy | None = None) -> str:
        """The JSON line (without the newline) as ``redaction`` (default: keys masked) lets it be
        written."""
        data = (redaction or DEFAULT_REDACTION).apply(self.model_dump(mode="json"))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


class TrafficLogWriter:
    """Appends :class:`TrafficLogLine` s to a JSONL file; safe across threads and processes.

    Parameters
    ----------
    path: the log file (its folder is created).
    max_bytes: rotate when a line would bring the file to this size or more; 0 never rotates.
    backups: how many rotated files (``path.1`` ... ``path.N``) to keep.
    redaction: what a line keeps and masks (:class:`RedactionPolicy`; default: keys masked,
        everything else kept).
    """

    def __init__(self, path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES,
                 backups: int = DEFAULT_BACKUPS, redaction: RedactionPolicy | None = None) -> None:
        if max_bytes < 0 or backups < 0:
            raise ConfigError(f"traffic log max_bytes and backups must be >= 0, got "
                              f"{max_bytes} and {backups}")
        self.redaction = redaction or DEFAULT_REDACTION
        self.path = Path(path).expanduser()
        self.max_bytes = int(max_bytes)
        self.backups = int(backups)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the traffic log folder {self.path.parent}: {exc}; "
                              f"set {TRAFFIC_LOG_ENV} or traffic_log to a writable path") from None

    @classmethod
    def from_env(cls, **kwargs: Any) -> TrafficLogWriter | None:
        """A writer for ``$ADAPTIVE_ROUTER_TRAFFIC_LOG``, or None when it is unset."""
        path = os.environ.get(TRAFFIC_LOG_ENV)
        return cls(path, **kwargs) if path else None

    def write(self, line: TrafficLogLine | Mapping[str, Any]) -> None:
        """Append one line (redacted) atomically; rotates first when the file is full."""
        if not isinstance(line, TrafficLogLine):
            line = TrafficLogLine.model_validate(dict(line))
        data = (line.to_json(self.redaction) + "\n").encode("utf-8")
        with self._thread_lock, exclusive_file_lock(self.lock_path):
            self._rotate_if_needed(len(data))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                written = os.write(fd, data)
                while written < len(data):  # only on a full disk or a signal; finish the line
                    written += os.write(fd, data[written:])
            finally:
                os.close(fd)

    def _rotate_if_needed(self, incoming: int) -> None:
        if not self.max_bytes:
            return
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size == 0 or size + incoming < self.max_bytes:  # RotatingFileHandler's test
            return
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
            return
        oldest = rotated_path(self.path, self.backups)
        oldest.unlink(missing_ok=True)
        for i in range(self.backups - 1, 0, -1):
            src = rotated_path(self.path, i)
            if src.exists():
                os.replace(src, rotated_path(self.path, i + 1))
        os.replace(self.path, rotated_path(self.path, 1))

    def __repr__(self) -> str:
        return f"TrafficLogWriter({str(self.path)!r}, max_bytes={self.max_bytes}, backups={self.backups})"


def rotated_path(path: str | Path, index: int) -> Path:
    p = Path(path)
    return p.with_name(f"{p.name}.{index}")


def traffic_log_files(path: str | Path) -> list[Path]:
    """The log and its rotated files, oldest first (``log.N`` ... ``log.1``, ``log``)."""
    p = Path(path).expanduser()
    rotated = []
    for cand in p.parent.glob(p.name + ".*"):
        suffix = cand.name[len(p.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), cand))
    files = [c for _, c in sorted(rotated, reverse=True)]
    if p.exists():
        files.append(p)
    return files


def read_traffic_log(path: str | Path, strict: bool = True) -> Iterator[TrafficLogLine]:
    """Every line of the log and its rotated files, oldest first.

    ``strict=False`` skips lines that do not parse (e.g. a truncated last line after a crash)
    instead of raising a :class:`DataError` naming the file and line.
    """
    files = traffic_log_files(path)
    if not files:
        raise DataError(f"traffic log {path} does not exist (nor any rotated {path}.N); set "
                        f"{TRAFFIC_LOG_ENV} or the plugin's traffic_log and send some requests")
    for file in files:
        with file.open(encoding="utf-8") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    yield TrafficLogLine.model_validate_json(raw)
                except (ValidationError, ValueError) as exc:
                    if strict:
                        raise DataError(f"{file}:{lineno}: not a traffic log line: {exc}") from None


def traffic_to_records(
    lines: Iterable[TrafficLogLine],
    merge_same_prompt: bool = True,
    score_name: str = "reward",
) -> list[Record]:
    """Records for retraining, from traffic log lines.

    Each served line becomes the samples of its decision's model (texts, reward scores under
    ``score_name``, real token counts). Lines with an error or without samples are skipped.
    With ``merge_same_prompt`` the lines of one prompt text become one Record holding every
    model that answered it (and a model that answered twice contributes all its samples), which
    is what a router learns comparisons from. A score is kept only when every merged line of that
    model has it. ``meta`` keeps the request ids, decisions, costs, propensities and feedback.
    """
    groups: dict[str, list[TrafficLogLine]] = {}
    order: list[str] = []
    for line in lines:
        if line.error or not line.samples or not line.model:
            continue
        key = line.prompt if merge_same_prompt else line.request_id
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(line)
    records = []
    for key in order:
        group = groups[key]
        per_model: dict[str, list[TrafficLogLine]] = {}
        for line in group:
            for ln in (line, *line.cascade_step_lines()):
                if ln.model:
                    per_model.setdefault(str(ln.model), []).append(ln)
        models = {}
        for model, mlines in per_model.items():
            responses: list[str] = []
            tokens: list[int] = []
            scores: list[float] = []
            has_scores = all(len(ln.reward_scores) == len(ln.samples) for ln in mlines)
            for ln in mlines:
                responses.extend(ln.samples)
                outs = list(ln.output_tokens)
                tokens.extend(outs if len(outs) == len(ln.samples) else [0] * len(ln.samples))
                if has_scores:
                    scores.extend(ln.reward_scores)
            models[model] = ModelSamples(
                responses=responses,
                scores={score_name: scores} if has_scores else {},
                token_num_prompt=mlines[0].prompt_tokens,
                token_num_responses=tokens,
            )
        first = group[0]
        records.append(Record(
            id=first.request_id if len(group) == 1 else f"traffic-{uuid.uuid5(uuid.NAMESPACE_OID, key).hex[:16]}",
            prompt=first.prompt,
            source="traffic",
            models=models,
            meta={
                "request_ids": [ln.request_id for ln in group],
                "timestamps": [ln.timestamp.isoformat() for ln in group],
                "decisions": [ln.decision for ln in group],
                "chosen_index": [ln.chosen_index for ln in group],
                "cost_usd": [ln.cost_usd for ln in group],
                "explored": [ln.explored for ln in group],
                "propensity": [ln.propensity for ln in group],
                "feedback": [ln.feedback for ln in group],
            },
        ))
    return records


def monotonic_latency(start: float) -> float:
    """Seconds since ``start`` (a ``time.perf_counter()`` value), never negative."""
    return max(0.0, time.perf_counter() - start)


__all__ = [
    "TRAFFIC_LOG_ENV",
    "REDACTED",
    "TrafficLogLine",
    "TrafficLogWriter",
    "read_traffic_log",
    "traffic_log_files",
    "traffic_to_records",
    "redact",
    "redact_text",
]
