"""The one exception hierarchy of adaptive-router.

Every error the project raises on purpose derives from :class:`AdaptiveRouterError`, so a caller
(the LiteLLM proxy hook, a LangChain chain, the CLI) can catch one type and turn it into an
HTTP 4xx, a chain error or a non-zero exit. Every message says what went wrong *and what to do*.

- ``ConfigError``: a fleet file, config.yaml section or CLI flag is malformed.
  - ``FleetError``: the fleet is empty, names a candidate twice, or a field is invalid.
- ``PriceNotFoundError``: a model has no price in LiteLLM's map and none was given.
- ``CheckpointError``: a router/reward checkpoint is missing, of the wrong schema, or unsafe
  (a pickle); we never unpickle user files.
- ``InvalidRequestError``: a request cannot be routed as sent (empty prompt, no user turn,
  knob out of bounds, n above a provider's maximum, negative budget).
- ``DataError``: a data set or records file is missing, malformed, or lacks a model.
- ``RoutingError``: a router cannot predict for the fleet it was given (unknown candidate).
- ``SamplingError``: every attempt to draw samples from a deployment failed.
- ``RewardModelError``: a reward model could not score (the caller falls back to sample 0).
"""

from __future__ import annotations


class AdaptiveRouterError(Exception):
    """Base of every error adaptive-router raises deliberately."""

    #: HTTP status a server should answer with when this error reaches a client.
    http_status: int = 400


class ConfigError(AdaptiveRouterError, ValueError):
    """A configuration (fleet file, proxy settings, CLI flags) is invalid."""


class FleetError(ConfigError):
    """A fleet definition is invalid (empty, duplicated candidate, bad field)."""


class PriceNotFoundError(ConfigError, KeyError):
    """No price is known for a model.

    KeyError's repr would quote the message; we keep ``str()`` readable instead.
    """

    def __str__(self) -> str:  # pragma: no cover - trivial
        return str(self.args[0]) if self.args else ""


class CheckpointError(AdaptiveRouterError):
    """A saved router or reward model cannot be loaded safely."""


class InvalidRequestError(AdaptiveRouterError, ValueError):
    """A request cannot be routed as sent."""


class DataError(AdaptiveRouterError, ValueError):
    """A data set or records file is missing or malformed."""


class RoutingError(AdaptiveRouterError):
    """A router cannot produce predictions for the requested candidates."""

    http_status = 500


class SamplingError(AdaptiveRouterError):
    """Drawing samples from a model failed after retries."""

    http_status = 502


class RewardModelError(AdaptiveRouterError):
    """A reward model failed to score; callers fall back to the first sample."""

    http_status = 500


__all__ = [
    "AdaptiveRouterError",
    "ConfigError",
    "FleetError",
    "PriceNotFoundError",
    "CheckpointError",
    "InvalidRequestError",
    "DataError",
    "RoutingError",
    "SamplingError",
    "RewardModelError",
]
