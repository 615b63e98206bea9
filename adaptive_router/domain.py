"""The domain model: prices, models, candidates, fleets, cost breakdowns and decisions.

One vocabulary for every router, policy and integration (see DESIGN.md):

- a :class:`Model` is a deployment the user can call, with its :class:`Price`;
- a :class:`Candidate` is a (model, n) pair: call ``model`` once with ``n`` samples and keep the
  best; a :class:`Fleet` is the list of candidates a router chooses among;
- a :class:`CostBreakdown` prices one request: the prompt once, every sample's output;
- a :class:`Decision` is what a policy chose, the predictions it saw, and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from adaptive_router.errors import FleetError

#: Default number of output tokens expected from one sample when nothing better is known
#: (a fleet may set it per model; training records give the observed mean).
DEFAULT_OUTPUT_TOKENS = 256


class Price(BaseModel):
    """Dollars per token, for input (prompt) and output (completion) tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input_per_token: float = Field(ge=0)
    output_per_token: float = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _accept_per_million(cls, data: Any) -> Any:
        """Accept ``{input_per_million, output_per_million}`` (how price sheets quote them)
        and LiteLLM's ``{input_cost_per_token, output_cost_per_token}``."""
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if "input_per_million" in data or "output_per_million" in data:
            data["input_per_token"] = float(data.pop("input_per_million", 0.0)) / 1e6
            data["output_per_token"] = float(data.pop("output_per_million", 0.0)) / 1e6
        if "input_cost_per_token" in data or "output_cost_per_token" in data:
            data["input_per_token"] = float(data.pop("input_cost_per_token", 0.0))
            data["output_per_token"] = float(data.pop("output_cost_per_token", 0.0))
        return data

    @classmethod
    def from_litellm(cls, model: str) -> Price:
        """The price of ``model`` in LiteLLM's price map (raises PriceNotFoundError)."""
        from adaptive_router.pricing import lookup_price

        inp, out = lookup_price(model)
        return cls(input_per_token=inp, output_per_token=out)

    def cost(self, prompt_tokens: int, output_tokens: int) -> float:
        return prompt_tokens * self.input_per_token + output_tokens * self.output_per_token


class Model(BaseModel):
    """A deployment the user can call.

    ``name`` is what routers and records call the model; ``litellm_model`` is what to send to
    LiteLLM (a model name, a provider-prefixed name, or a proxy model group); it defaults to
    ``name``. ``price`` overrides LiteLLM's price map; ``price_model`` looks a price up under
    another name (e.g. a replayed model priced as the real one).
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    litellm_model: str | None = None
    price: Price | None = None
    price_model: str | None = None
    n: list[int] = Field(default_factory=lambda: [1])
    max_n: int | None = Field(default=None, ge=1, description="provider's maximum n per call")
    tokenizer: str | None = None
    expected_output_tokens: float = Field(default=DEFAULT_OUTPUT_TOKENS, gt=0)
    sampler: Literal["litellm", "local", "vllm"] | None = Field(
        default=None, description="how samples are drawn when executing: LiteLLM (default), a "
        "local transformers model (default for `local/<name>`), or vLLM's offline engine")
    sampler_options: dict[str, Any] = Field(
        default_factory=dict, description="keyword arguments of the sampler (max_new_tokens, ...)")

    @field_validator("n", mode="before")
    @classmethod
    def _n_list(cls, v: Any) -> Any:
        if isinstance(v, int):
            return [v]
        return v

    @field_validator("n")
    @classmethod
    def _n_positive(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("must list at least one sample count, e.g. n: [1, 3]")
        if any(k < 1 for k in v):
            raise ValueError(f"sample counts must be >= 1, got {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"sample counts repeat: {v}")
        return sorted(v)

    @model_validator(mode="after")
    def _n_within_max(self) -> Model:
        if self.max_n is not None and max(self.n) > self.max_n:
            raise ValueError(
                f"n {max(self.n)} exceeds the provider's maximum max_n={self.max_n}; "
                "lower n or raise max_n"
            )
        return self

    @property
    def call_name(self) -> str:
        return self.litellm_model or self.name

    def resolved_price(self) -> Price:
        """The model's price: the fleet's override, else LiteLLM's map."""
        if self.price is not None:
            return self.price
        return Price.from_litellm(self.price_model or self.call_name)


class Candidate(BaseModel):
    """A (model, n) pair: one call to ``model`` drawing ``n`` samples, the best one kept."""

    model_config = ConfigDict(frozen=True)

    model: str
    n: int = Field(default=1, ge=1)

    @property
    def key(self) -> str:
        """A stable string key, ``"<model>#<n>"`` (used in predictions and checkpoints)."""
        return f"{self.model}#{self.n}"

    @classmethod
    def from_key(cls, key: str) -> Candidate:
        model, sep, n = key.rpartition("#")
        if not sep or not n.isdigit():
            return cls(model=key, n=1)
        return cls(model=model, n=int(n))

    def __str__(self) -> str:
        return f"{self.model} x{self.n}"


class CostBreakdown(BaseModel):
    """The dollar cost of one request.

    BEST-Route's accounting: the prompt is paid once (one call with ``n`` samples) and every
    sample's output tokens are paid; a priced reward model adds its own cost.
    """

    model: str
    n: int
    prompt_tokens: int
    output_tokens: list[int]
    input_cost_usd: float
    output_cost_usd: float
    reward_cost_usd: float = 0.0

    @property
    def total_usd(self) -> float:
        return self.input_cost_usd + self.output_cost_usd + self.reward_cost_usd

    @property
    def total_output_tokens(self) -> int:
        return int(sum(self.output_tokens))

    @classmethod
    def compute(
        cls,
        model: str,
        price: Price,
        prompt_tokens: int,
        output_tokens: Sequence[int],
        reward_cost_usd: float = 0.0,
    ) -> CostBreakdown:
        outs = [int(t) for t in output_tokens]
        return cls(
            model=model,
            n=len(outs),
            prompt_tokens=int(prompt_tokens),
            output_tokens=outs,
            input_cost_usd=prompt_tokens * price.input_per_token,
            output_cost_usd=sum(outs) * price.output_per_token,
            reward_cost_usd=reward_cost_usd,
        )

    def as_dict(self) -> dict[str, Any]:
        d = self.model_dump()
        d["total_usd"] = self.total_usd
        return d


class Decision(BaseModel):
    """What a policy chose for one prompt, and why."""

    candidate: Candidate
    predictions: dict[str, float] = Field(description="predicted quality per candidate key")
    expected_costs_usd: dict[str, float] = Field(description="expected cost per candidate key")
    policy: str = Field(description="the policy and its knob, e.g. 'threshold(0.6)'")
    reason: str
    router: str = ""
    explored: bool = False
    propensity: float = 1.0
    propensities: dict[str, float] | None = Field(
        default=None, description="an exploring policy's probability of every candidate")

    @property
    def model(self) -> str:
        return self.candidate.model

    @property
    def n(self) -> int:
        return self.candidate.n

    @property
    def expected_cost_usd(self) -> float:
        return self.expected_costs_usd[self.candidate.key]

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n": self.n,
            "candidate": self.candidate.key,
            "expected_cost_usd": self.expected_cost_usd,
            "predicted_quality": self.predictions.get(self.candidate.key),
            "predictions": self.predictions,
            "expected_costs_usd": self.expected_costs_usd,
            "policy": self.policy,
            "router": self.router,
            "reason": self.reason,
            "explored": self.explored,
            "propensity": self.propensity,
            **({"propensities": self.propensities} if self.propensities is not None else {}),
        }


Selector = Literal["reward", "majority", "first"]


class Fleet(BaseModel):
    """The models a router chooses among, expanded into (model, n) candidates.

    ``reference`` is the model the others are measured against (RouteLLM's "strong" model,
    BEST-Route's large model); it defaults to the most expensive model. ``selector`` says how
    the best of n samples is kept: by a ``reward`` model, by ``majority`` vote over extracted
    final answers (self-consistency), or ``first`` (no selection).
    """

    model_config = ConfigDict(extra="forbid")

    models: list[Model]
    reference: str | None = None
    selector: Selector = "reward"
    reward_model: str | None = None
    source: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _check(self) -> Fleet:
        if not self.models:
            raise ValueError("the fleet has no models; list at least one under `models:`")
        names = [m.name for m in self.models]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"model names repeat: {dup}; give each deployment its own name")
        if self.reference is not None and self.reference not in names:
            raise ValueError(f"reference {self.reference!r} is not one of the models {names}")
        return self

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> Fleet:
        """Validate a fleet mapping; errors name the field and the file."""
        where = f" in {source}" if source else ""
        if not isinstance(data, Mapping):
            raise FleetError(
                f"the fleet{where} must be a mapping with a `models:` list, got "
                f"{type(data).__name__}; see examples/fleet.yaml"
            )
        try:
            fleet = cls.model_validate(dict(data))
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
                problems.append(f"  - {loc}: {err['msg']}")
            raise FleetError(
                f"invalid fleet{where}:\n" + "\n".join(problems) + "\nsee examples/fleet.yaml "
                "for a valid fleet"
            ) from None
        fleet.source = source
        return fleet

    @classmethod
    def from_yaml(cls, path: str | Path) -> Fleet:
        """Load a fleet from a YAML file."""
        import yaml

        p = Path(path)
        if not p.exists():
            raise FleetError(f"fleet file {p} does not exist; pass a path such as examples/fleet.yaml")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise FleetError(f"fleet file {p} is not valid YAML: {exc}") from None
        if data is None:
            raise FleetError(f"fleet file {p} is empty; list the models under `models:`")
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_names(cls, names: Iterable[str], n: Sequence[int] = (1,), **kw: Any) -> Fleet:
        return cls.from_dict({"models": [{"name": x, "n": list(n)} for x in names], **kw})

    # -- queries ------------------------------------------------------------------------------
    def model(self, name: str) -> Model:
        for m in self.models:
            if m.name == name:
                return m
        raise FleetError(f"model {name!r} is not in the fleet {self.model_names}")

    @property
    def model_names(self) -> list[str]:
        return [m.name for m in self.models]

    @property
    def candidates(self) -> list[Candidate]:
        """Every (model, n) pair, in the fleet's model order and ascending n."""
        return [Candidate(model=m.name, n=k) for m in self.models for k in m.n]

    @property
    def candidate_keys(self) -> list[str]:
        return [c.key for c in self.candidates]

    def prices(self) -> dict[str, Price]:
        """Every model's price (raises PriceNotFoundError naming the fix)."""
        return {m.name: m.resolved_price() for m in self.models}

    def reference_model(self) -> str:
        """The reference model: as declared, else the one with the highest output price."""
        if self.reference:
            return self.reference
        prices = self.prices()
        return max(self.models, key=lambda m: (prices[m.name].output_per_token,
                                               prices[m.name].input_per_token)).name

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True, exclude={"source"})
