"""Inbound commands are validated at the boundary; nothing malformed gets through."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.commands import (
    MAX_COMMAND_BYTES,
    AcceptPolicy,
    GrantConsent,
    Refused,
    RequestStatus,
    SetAudio,
    WithdrawConsent,
    parse_command,
)
from edge.model import Purpose


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"id": "1", "command": "status"}, RequestStatus("1")),
        ({"command": "audio.set", "on": False}, SetAudio("", False)),
        (
            {"id": "2", "command": "policy.accept", "version": "en-2023-01-10"},
            AcceptPolicy("2", "en-2023-01-10"),
        ),
        (
            {"id": "3", "command": "consent.withdraw", "purpose": "diagnostics"},
            WithdrawConsent("3", Purpose.DIAGNOSTICS),
        ),
        ({"id": "4", "command": "consent.withdraw"}, WithdrawConsent("4", None)),
        ({"id": "5", "command": "consent.grant", "receipt": {"a": 1}}, GrantConsent("5", {"a": 1})),
    ],
)
def test_parse_command_accepts_valid_commands(body: dict[str, object], expected: object) -> None:
    assert parse_command(json.dumps(body).encode()) == expected


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"not json", "not valid UTF-8 JSON"),
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b'{"command": "reboot"}', "unknown command 'reboot'"),
        (b'{"command": 7}', "command: expected one of"),
        (b'{"command": "audio.set", "on": "no"}', "on: expected true or false"),
        (b'{"command": "consent.withdraw", "purpose": "marketing"}', "unknown purpose"),
        (b'{"command": "consent.grant"}', "receipt: expected"),
        (b'{"command": "policy.accept", "version": 3}', "version: expected"),
        (b'{"id": 5, "command": "status"}', "id: expected a string"),
        (b"{" + b" " * MAX_COMMAND_BYTES + b"}", "command too large"),
    ],
)
def test_parse_command_refuses_bad_input_with_reason(payload: bytes, fragment: str) -> None:
    result = parse_command(payload)
    assert isinstance(result, Refused)
    assert fragment in result.reason


@given(st.binary(max_size=512))
def test_parse_command_never_raises_on_random_bytes(payload: bytes) -> None:
    parse_command(payload)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_parse_command_never_raises_on_random_json(value: object) -> None:
    parse_command(json.dumps(value).encode())
