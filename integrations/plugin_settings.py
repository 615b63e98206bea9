"""The LiteLLM plugin's settings: one validated object from config.yaml and the environment.

In a proxy config.yaml the settings sit under ``litellm_settings: adaptive_router: {...}``; LiteLLM
turns unknown ``litellm_settings`` keys into attributes of the ``litellm`` module, so the plugin
reads them from ``litellm.adaptive_router``. Environment variables override the file, so one
config.yaml serves several environments (and tests point it at their own files)::

    ADAPTIVE_ROUTER_FLEET            fleet YAML file                     (fleet)
    ADAPTIVE_ROUTER_ROUTER           checkpoint folder | baseline name   (router)
    ADAPTIVE_ROUTER_REWARD_MODEL     reward model folder or name         (reward_model)
    ADAPTIVE_ROUTER_SELECTOR         reward | majority | first           (selector)
    ADAPTIVE_ROUTER_TRAFFIC_LOG      traffic log JSONL path              (traffic_log)
    ADAPTIVE_ROUTER_REPLAY_RECORDS   Records JSONL for replay/ models    (replay_records)
    ADAPTIVE_ROUTER_EPSILON          exploration probability            (explore_epsilon)

A value written ``os.environ/NAME`` (LiteLLM's own convention) is read from that variable.
Relative paths are tried against the working directory, then against config.yaml's folder.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adaptive_router.errors import ConfigError, InvalidRequestError
from adaptive_router.policy import EXTRA_KNOBS, POLICY_KNOBS, check_knob

#: settings field -> environment variable that overrides it.
ENV_OVERRIDES: dict[str, str] = {
    "fleet": "ADAPTIVE_ROUTER_FLEET",
    "router": "ADAPTIVE_ROUTER_ROUTER",
    "reward_model": "ADAPTIVE_ROUTER_REWARD_MODEL",
    "selector": "ADAPTIVE_ROUTER_SELECTOR",
    "traffic_log": "ADAPTIVE_ROUTER_TRAFFIC_LOG",
    "replay_records": "ADAPTIVE_ROUTER_REPLAY_RECORDS",
    "explore_epsilon": "ADAPTIVE_ROUTER_EPSILON",
}
_NUMBER = re.compile(r"^[0-9]*\.?[0-9]+(e-?[0-9]+)?$", re.IGNORECASE)


class CascadeSettings(BaseModel):
    """``cascade:`` under the plugin settings: escalate when a verifier doubts step 1's answer.

    ``verifier``: ``agreement``, ``judge:<model>`` (a model group of the proxy, or any model
    LiteLLM reaches) or a folder (``adaptive-router train-verifier``'s output, or a reward
    model). ``accept``: the default acceptance level (a request's ``accept`` knob wins).
    ``max_steps``, ``skip_below`` and ``steps`` are :class:`adaptive_router.cascade.CascadePolicy`'s.
    The knob ``budget_usd`` of a request caps the summed expected cost of its steps.
    """

    model_config = ConfigDict(extra="forbid")

    verifier: str = "agreement"
    accept: float = Field(default=0.5, ge=0.0, le=1.0)
    max_steps: int = Field(default=2, ge=1, le=8)
    skip_below: float | None = Field(default=None, ge=0.0, le=1.0)
    steps: list[str] | None = None

    @field_validator("steps")
    @classmethod
    def _candidate_keys(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        bad = [k for k in v if not isinstance(k, str) or "#" not in k]
        if bad or not v:
            raise ValueError(f"steps must be a non-empty list of candidate keys such as "
                             f"['weak#3', 'strong#1']; got {v!r}")
        return v


class RedactionSettings(BaseModel):
    """``redaction:`` under the plugin settings: what the traffic log keeps and masks (issue 16).

    ``keys`` (true): secrets masked. ``personal_data`` (false): emails, card and phone numbers
    masked in the request's and the answers' text. ``keep``: ``everything`` (prompt, messages,
    samples), ``prompt`` (the router's input only) or ``none`` (no text: decisions, costs, tokens).
    See :class:`adaptive_router.traffic.RedactionPolicy`.
    """

    model_config = ConfigDict(extra="forbid")

    keys: bool = True
    personal_data: bool = False
    keep: Literal["everything", "prompt", "none"] = "everything"


class ApiKeySettings(BaseModel):
    """One API key the example's database-free ``custom_auth`` accepts besides the master key,
    with the identity and metadata LiteLLM would otherwise read from its key and team tables
    (issue 17, item 6). ``key`` may be ``os.environ/NAME``: the key is then that variable's value,
    and the entry is inactive while the variable is unset (one config.yaml for every machine).
    An entry without a key is inactive too.

    ``metadata.adaptive_router`` / ``team_metadata.adaptive_router`` hold the key's and team's
    defaults: one knob (threshold, tradeoff or budget_usd) and ``explore_epsilon`` (or
    ``epsilon``). With a database, the same keys in LiteLLM's own key and team metadata work too.
    """

    model_config = ConfigDict(extra="forbid")

    # None: LiteLLM itself resolves ``os.environ/NAME`` values under litellm_settings when it
    # loads the config, and an unset variable arrives as None: that entry is inactive
    key: str | None = None
    key_alias: str | None = None
    team_id: str | None = None
    team_alias: str | None = None
    user_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    team_metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _defaults_are_knobs(self) -> ApiKeySettings:
        for where, md in (("metadata", self.metadata), ("team_metadata", self.team_metadata)):
            defaults_knob(md.get("adaptive_router"), where=f"api_keys[{self.key_alias or '?'}].{where}.adaptive_router")
        return self

    def resolved_key(self, env: Mapping[str, str] | None = None) -> str | None:
        """The key's value; None when it names an environment variable that is not set."""
        env = os.environ if env is None else env
        if not self.key:
            return None
        if self.key.startswith("os.environ/"):
            return env.get(self.key[len("os.environ/"):]) or None
        return self.key


def defaults_knob(raw: Any, where: str) -> dict[str, float]:
    """A key's or team's ``adaptive_router`` metadata as a knob: ``explore_epsilon`` (the plugin
    setting's name, which an operator writing per-team defaults reaches for) is ``epsilon``."""
    if raw is None:
        return {}
    if isinstance(raw, Mapping) and "explore_epsilon" in raw:
        raw = {**{k: v for k, v in raw.items() if k != "explore_epsilon"}, "epsilon": raw["explore_epsilon"]}
    return validate_knob(raw, where=where)


class PluginSettings(BaseModel):
    """What the proxy plugin and the SDK strategy need to route.

    ``model_name`` is the public alias clients send (``adaptive-router``); ``alias_prefix`` makes
    ``<prefix><number>`` an alias with that threshold (``adaptive-0.3`` -> threshold 0.3), and
    ``aliases`` names any other knob (``adaptive-cheap: {budget_usd: 0.0005}``). ``policy`` is the
    knob used when a request gives none. ``selector`` and ``reward_model`` default to the fleet's.
    """

    model_config = ConfigDict(extra="forbid")

    fleet: str
    router: str = "default"
    model_name: str = "adaptive-router"
    alias_prefix: str | None = "adaptive-"
    aliases: dict[str, dict[str, float]] = Field(default_factory=dict)
    # None: the router checkpoint's validated default_knob (``adaptive-router train``), else threshold 0.5
    policy: dict[str, float] | None = None
    explore_epsilon: float = Field(default=0.0, ge=0.0, le=1.0)
    explore_seed: int | None = None
    # how exploration draws a candidate: uniformly, or less often the dearer it is (issue 15;
    # adaptive_router.policy.CostAwareExploration, every propensity logged and >= eps/(4K))
    explore_strategy: Literal["uniform", "cost-aware"] = "uniform"
    selector: Literal["reward", "majority", "first"] | None = None
    reward_model: str | None = None
    traffic_log: str | None = None
    traffic_log_max_bytes: int = Field(default=100 * 1024 * 1024, ge=0)
    traffic_log_backups: int = Field(default=5, ge=0)
    # false = keep no text in the traffic log (redaction.keep: none); kept for older configs
    log_messages: bool = True
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    count_tokens: bool = True
    # per-request LiteLLM `fallbacks` (the next-best candidates) for routed chat calls (issue 9);
    # false leaves failover to LiteLLM's own router_settings and spares LiteLLM's per-request
    # fallback handling (make bench: 82% instead of 78% of plain throughput at 32 concurrent)
    failover: bool = True
    # retries of the chosen deployment before LiteLLM fails over to the next candidate (issue
    # 16): LiteLLM's num_retries for the routed call, unless the request sets its own. 0 fails
    # over at the first error (one connect attempt); None keeps router_settings.num_retries
    failover_num_retries: int | None = Field(default=0, ge=0, le=10)
    replay_records: str | None = None
    # micro-batching of concurrent requests' router inputs (adaptive_router/batching.py, issue 10)
    micro_batching: bool = True
    micro_batch_ms: float = Field(default=2.0, ge=0.0, le=100.0)
    micro_batch_size: int = Field(default=32, ge=1, le=1024)
    # int8 encoder (adaptive_router/fast_encoder.py): faster, decisions agree on ~98% of prompts
    quantize_encoder: bool = False
    # hot reload (issue 16): seconds between looks at the router folder; a changed folder is
    # loaded, checked and swapped in without a restart (a broken one keeps the old router); 0 = off
    reload_check_s: float = Field(default=5.0, ge=0.0, le=3600.0)
    # answer-aware cascades on non-streamed chat completions (issue 14); None = off
    cascade: CascadeSettings | None = None
    config_dir: str | None = Field(default=None, description="folder of config.yaml, for relative paths")
    # keys the database-free custom_auth (litellm_auth.master_key_auth) accepts, each with its
    # key and team metadata (per-team defaults, issue 17)
    api_keys: list[ApiKeySettings] = Field(default_factory=list)

    @field_validator("policy")
    @classmethod
    def _one_knob(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return None if v is None else validate_knob(v, where="policy")

    @model_validator(mode="after")
    def _log_messages_is_keep_none(self) -> PluginSettings:
        """``log_messages: false`` predates ``redaction.keep``; it means no text at all (not
        the prompt, not the samples), and cannot be combined with a keep that writes text."""
        if not self.log_messages:
            if "keep" in self.redaction.model_fields_set and self.redaction.keep != "none":
                raise ValueError(f"log_messages: false keeps no text, but redaction.keep is "
                                 f"{self.redaction.keep!r}; remove one of them")
            self.redaction = self.redaction.model_copy(update={"keep": "none"})
        return self

    def redaction_policy(self) -> Any:
        """The traffic log's :class:`adaptive_router.traffic.RedactionPolicy`."""
        from adaptive_router.traffic import RedactionPolicy

        r = self.redaction
        return RedactionPolicy(keys=r.keys, personal_data=r.personal_data, keep=r.keep)

    @field_validator("aliases")
    @classmethod
    def _alias_knobs(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        return {name: validate_knob(knob, where=f"aliases.{name}") for name, knob in v.items()}

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def load(cls, raw: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
             config_dir: str | Path | None = None) -> PluginSettings:
        """Settings from ``raw`` (default: ``litellm.adaptive_router``) with env overrides.

        Raises :class:`ConfigError` listing every problem and how to fix it.
        """
        env = os.environ if env is None else env
        if raw is None:
            raw = _litellm_settings()
        if not isinstance(raw, Mapping):
            raise ConfigError(
                "litellm_settings.adaptive_router must be a mapping, e.g.\n"
                "  litellm_settings:\n    adaptive_router:\n      fleet: examples/litellm/fleet.yaml\n"
                f"got {type(raw).__name__}"
            )
        data = {k: _resolve_env_ref(v, env, k) for k, v in raw.items()}
        for field, var in ENV_OVERRIDES.items():
            if env.get(var):
                data[field] = env[var]
        if config_dir is None and not data.get("config_dir"):
            config_dir = proxy_config_dir()
        if config_dir is not None:
            data["config_dir"] = str(config_dir)
        if not data.get("fleet"):
            raise ConfigError(
                "adaptive_router needs a fleet: set litellm_settings.adaptive_router.fleet in "
                "config.yaml or the ADAPTIVE_ROUTER_FLEET environment variable to a fleet YAML "
                "file (see examples/litellm/fleet.yaml)"
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
                problems.append(f"  - adaptive_router.{loc}: {err['msg']}")
            raise ConfigError("invalid adaptive_router settings:\n" + "\n".join(problems) +
                              "\nsee docs/litellm.md") from None

    # -- queries ------------------------------------------------------------------------------
    def path(self, value: str | None) -> Path | None:
        """A settings path resolved against the working directory, then config.yaml's folder."""
        if not value:
            return None
        p = Path(value).expanduser()
        if p.is_absolute() or p.exists() or not self.config_dir:
            return p
        beside = Path(self.config_dir) / p
        return beside if beside.exists() else p

    def router_spec(self) -> str:
        """The router to load: a checkpoint path (resolved) or a baseline name."""
        p = self.path(self.router)
        return str(p) if p is not None and p.exists() else self.router

    def is_routed(self, model: str | None) -> bool:
        return isinstance(model, str) and self.knob_for_alias(model) is not None

    def knob_for_alias(self, model: str) -> dict[str, float] | None:
        """The knob an alias stands for; ``{}`` = the default policy; None = not ours.

        ``adaptive-router`` -> ``{}``; ``adaptive-0.3`` -> ``{"threshold": 0.3}``; a name in
        ``aliases`` -> its knob. A name with the prefix but no valid number is an error, not a
        pass-through (``adaptive-1.7`` must not silently reach nothing).
        """
        if model == self.model_name:
            return {}
        if model in self.aliases:
            return dict(self.aliases[model])
        if self.alias_prefix and model.startswith(self.alias_prefix):
            rest = model[len(self.alias_prefix):]
            if _NUMBER.match(rest):
                return {"threshold": check_knob("threshold", float(rest))}
            if rest.replace(".", "").replace("-", "").isdigit():
                raise InvalidRequestError(
                    f"model {model!r}: the threshold after {self.alias_prefix!r} must be a "
                    "number within [0, 1], e.g. adaptive-0.3"
                )
        return None


def validate_knob(knob: Any, where: str = "knob") -> dict[str, float]:
    """A knob mapping with at most one of threshold / tradeoff / budget_usd (+ optional epsilon
    and a cascade's ``accept``).

    Raises :class:`InvalidRequestError` (an HTTP 400 in the proxy) saying the allowed form.
    """
    if knob is None:
        return {}
    if isinstance(knob, str):
        import json

        try:
            knob = json.loads(knob)
        except ValueError:
            raise InvalidRequestError(
                f"{where} must be an object such as {{\"threshold\": 0.3}}, got {knob!r}"
            ) from None
    if not isinstance(knob, Mapping):
        raise InvalidRequestError(
            f"{where} must be an object such as {{\"threshold\": 0.3}}, {{\"tradeoff\": 0.5}} "
            f"or {{\"budget_usd\": 0.001}}, got {type(knob).__name__}"
        )
    unknown = [k for k in knob if k not in POLICY_KNOBS and k not in EXTRA_KNOBS]
    if unknown:
        raise InvalidRequestError(
            f"{where} has unknown key(s) {unknown}; use one of threshold, tradeoff, budget_usd "
            "(and optionally epsilon, and accept for a cascade)"
        )
    given = [k for k in POLICY_KNOBS if knob.get(k) is not None]
    if len(given) > 1:
        raise InvalidRequestError(f"{where} gives {given}; give exactly one of threshold, tradeoff, budget_usd")
    out: dict[str, float] = {}
    for k in given:
        out[k] = check_knob(k, knob[k])
    if knob.get("epsilon") is not None:
        eps = knob["epsilon"]
        if not isinstance(eps, int | float) or isinstance(eps, bool) or not (0 <= eps <= 1) or math.isnan(eps):
            raise InvalidRequestError(f"{where}.epsilon must be a number within [0, 1], got {eps!r}")
        out["epsilon"] = float(eps)
    if knob.get("accept") is not None:
        acc = knob["accept"]
        if not isinstance(acc, int | float) or isinstance(acc, bool) or not (0 <= acc <= 1) or math.isnan(acc):
            raise InvalidRequestError(f"{where}.accept (a cascade's acceptance level, a verifier "
                                      f"score) must be a number within [0, 1], got {acc!r}")
        out["accept"] = float(acc)
    return out


def _resolve_env_ref(value: Any, env: Mapping[str, str], key: str) -> Any:
    """LiteLLM's ``os.environ/NAME`` convention for the plugin's own settings."""
    if isinstance(value, str) and value.startswith("os.environ/"):
        name = value[len("os.environ/"):]
        if name not in env:
            raise ConfigError(f"adaptive_router.{key} reads the environment variable {name}, "
                              "which is not set")
        return env[name]
    return value


def _litellm_settings() -> Any:
    import sys

    litellm = sys.modules.get("litellm")
    raw = getattr(litellm, "adaptive_router", None) if litellm is not None else None
    return {} if raw is None else raw


def proxy_config_dir() -> Path | None:
    """The folder of the proxy's config.yaml, when running inside the proxy."""
    import sys

    server = sys.modules.get("litellm.proxy.proxy_server")
    path = getattr(server, "user_config_file_path", None) if server is not None else None
    if path:
        return Path(path).resolve().parent
    env_path = os.environ.get("CONFIG_FILE_PATH")
    return Path(env_path).resolve().parent if env_path else None


__all__ = ["ENV_OVERRIDES", "ApiKeySettings", "defaults_knob", "CascadeSettings", "PluginSettings", "RedactionSettings",
           "validate_knob"]
