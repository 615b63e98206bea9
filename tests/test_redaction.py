"""The traffic log's redaction policy (issue 16, item 6): a table of shapes, each with what the
default policy (keys masked, personal data kept) and the personal-data switch do to it, and
what each ``keep`` choice leaves in a written line."""

from __future__ import annotations

import json

import pytest

from adaptive_router.errors import ConfigError
from adaptive_router.traffic import REDACTED, RedactionPolicy, TrafficLogLine, TrafficLogWriter

# fake credentials of the real shapes (none of them valid anywhere)
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
GITHUB_PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
GOOGLE = "AIza" + "SyA-1234567890abcdefghijklmnopqrstu"
SLACK = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
AWS_ID = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
OPENAI = "sk-proj-FAKEfake0123456789ABCDEF"

#: (shape, text, the part that must go, "key" or "personal")
SHAPES = [
    ("OpenAI-style key", f"my key is {OPENAI}", OPENAI, "key"),
    ("bearer token", "Authorization: Bearer abcdef0123456789xyz", "abcdef0123456789xyz", "key"),
    ("AWS access key id", f"id {AWS_ID} here", AWS_ID, "key"),
    ("AWS secret key, bare", f"secret {AWS_SECRET} here", AWS_SECRET, "key"),
    ("AWS secret key, assigned", f"aws_secret_access_key={AWS_SECRET}", AWS_SECRET, "key"),
    ("GitHub token", f"token {GITHUB}", GITHUB, "key"),
    ("GitHub fine-grained token", GITHUB_PAT, GITHUB_PAT, "key"),
    ("Google API key", f"key={GOOGLE}", GOOGLE, "key"),
    ("Slack token", f"slack {SLACK}", SLACK, "key"),
    ("JWT", f"session {JWT}", JWT, "key"),
    ("password pair", "login with password=hunter2!", "hunter2!", "key"),
    ("password pair, quoted", 'db_password: "s3cr3t pass"', "s3cr3t pass", "key"),
    ("client secret pair", "client_secret=abc123XYZ", "abc123XYZ", "key"),
    ("email", "write to jane.doe+tag@example.co.uk today", "jane.doe+tag@example.co.uk", "personal"),
    ("card number, spaced", "card 4111 1111 1111 1111 exp 12/29", "4111 1111 1111 1111", "personal"),
    ("card number, plain", "card 5500005555555559", "5500005555555559", "personal"),
    ("phone, international", "call +44 20 7946 0958", "7946 0958", "personal"),
    ("phone, US", "call (415) 555-0132 now", "555-0132", "personal"),
]

#: (shape, text) that no policy may change: ordinary content
ORDINARY = [
    ("a question", "What is 6 times 7? Answer in one sentence."),
    ("a git sha", "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12 fixed it"),
    ("a date and a time", "on 2024-12-05 at 10:30"),
    ("numbers", "between 12345 and 3.14159, 16 digits: 1234 5678 9012 3456 (not a card: Luhn)"),
    ("a word named like a secret", "the token count and the password policy"),
    ("code", "def f(x):\n    return x * 2  # doubles"),
]


@pytest.mark.parametrize("shape,text,secret,kind", SHAPES, ids=[s[0] for s in SHAPES])
def test_each_shape_under_each_switch(shape, text, secret, kind) -> None:
    default, personal, off = RedactionPolicy(), RedactionPolicy(personal_data=True), RedactionPolicy(keys=False)
    if kind == "key":
        assert secret not in default.text(text) and REDACTED in default.text(text)
        assert off.text(text) == text  # keys: false keeps them (a user's explicit choice)
    else:  # personal data is kept by default, masked by the one switch
        assert default.text(text) == text
        assert secret not in personal.text(text) and "[REDACTED:" in personal.text(text)
    assert secret not in personal.text(text)


@pytest.mark.parametrize("shape,text", ORDINARY, ids=[o[0] for o in ORDINARY])
def test_ordinary_text_is_left_alone(shape, text) -> None:
    assert RedactionPolicy(personal_data=True).text(text) == text


def _line() -> TrafficLogLine:
    text = f"email jane@example.com, key {GITHUB}"
    return TrafficLogLine(
        prompt=text, messages=[{"role": "user", "content": text}], samples=[f"ok {OPENAI}", "jane@example.com"],
        decision={"model": "weak", "n": 2, "reason": "cheapest"}, output_tokens=[3, 4], cost_usd=0.01,
        request_id="abc-123", cascade={"steps": [{"candidate": "weak#2", "samples": ["jane@example.com"]}]})


@pytest.mark.parametrize("keep,prompt,messages,samples", [
    ("everything", True, True, True), ("prompt", True, False, False), ("none", False, False, False)])
def test_keep_choices_in_written_lines(tmp_path, keep, prompt, messages, samples) -> None:
    log = tmp_path / "traffic.jsonl"
    TrafficLogWriter(log, redaction=RedactionPolicy(personal_data=True, keep=keep)).write(_line())
    raw = log.read_text(encoding="utf-8")
    data = json.loads(raw)
    assert bool(data["prompt"]) is prompt
    assert (data["messages"] is not None) is messages
    assert bool(data["samples"]) is samples
    assert ("samples" in data["cascade"]["steps"][0]) is samples
    for gone in (GITHUB, OPENAI, "jane@example.com"):
        assert gone not in raw
    # what every choice keeps: the decision, costs, tokens and ids (what spend audits read)
    assert data["decision"]["model"] == "weak" and data["output_tokens"] == [3, 4]
    assert data["cost_usd"] == 0.01 and data["request_id"] == "abc-123"


def test_default_writer_masks_keys_and_keeps_personal_data(tmp_path) -> None:
    log = tmp_path / "traffic.jsonl"
    TrafficLogWriter(log).write(_line())
    raw = log.read_text(encoding="utf-8")
    assert GITHUB not in raw and OPENAI not in raw
    assert "jane@example.com" in raw


def test_keep_must_be_a_known_choice() -> None:
    with pytest.raises(ConfigError, match="everything, prompt, none"):
        RedactionPolicy(keep="all")
