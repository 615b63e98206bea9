"""The plugin's ``cascade:`` settings and the ``accept`` knob: bad values are errors that name
the field (a startup error for the settings, an HTTP 400 for a request's knob)."""

from __future__ import annotations

import pytest
from adaptive_router.integrations.plugin_settings import PluginSettings, validate_knob

from adaptive_router.errors import ConfigError, InvalidRequestError


@pytest.mark.parametrize("cascade, field", [
    ({"accept": 2}, "cascade.accept"), ({"max_steps": 0}, "cascade.max_steps"),
    ({"verifer": "agreement"}, "cascade.verifer"), ({"steps": ["weak"]}, "cascade.steps"),
    ("agreement", "cascade"),
])
def test_bad_cascade_settings_name_the_field(cascade, field) -> None:
    with pytest.raises(ConfigError, match=f"adaptive_router.{field}"):
        PluginSettings.load({"fleet": "fleet.yaml", "cascade": cascade}, env={})


def test_cascade_settings_defaults() -> None:
    s = PluginSettings.load({"fleet": "fleet.yaml", "cascade": {}}, env={})
    assert (s.cascade.verifier, s.cascade.accept, s.cascade.max_steps) == ("agreement", 0.5, 2)
    assert PluginSettings.load({"fleet": "fleet.yaml"}, env={}).cascade is None


@pytest.mark.parametrize("value", ["high", 1.5, -0.1, True, float("nan"), [0.5]])
def test_bad_accept_knob(value) -> None:
    with pytest.raises(InvalidRequestError, match=r"metadata\.adaptive_router\.accept"):
        validate_knob({"accept": value}, where="metadata.adaptive_router")


def test_accept_goes_beside_a_policy_knob_and_in_aliases() -> None:
    assert validate_knob({"threshold": 0.3, "accept": 0.7}) == {"threshold": 0.3, "accept": 0.7}
    s = PluginSettings.load({"fleet": "fleet.yaml", "aliases": {"adaptive-careful": {"accept": 0.9}}}, env={})
    assert s.knob_for_alias("adaptive-careful") == {"accept": 0.9}
