"""Consent: grants only with a valid signed receipt; withdrawal at once; state survives restart."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.errors import InputError, StoreError
from edge.model import Purpose
from edge.policy.audio import default_audio_on, may_open_microphone
from edge.policy.consent import (
    ConsentState,
    GrantResult,
    consent_status,
    from_json,
    grant,
    is_granted,
    switch_version,
    to_json,
    withdraw,
)
from edge.policy.receipts import ReceiptBody, parse_receipt, sign_receipt
from edge.shell.consent_file import load_consent, save_consent
from edge.shell.shipped import load_manifest

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
APP = Ed25519PrivateKey.generate()
V2023 = load_manifest("en-2023-01-10")
V2020 = load_manifest("en-2020-01-19")
DAY = timedelta(days=1)


def _receipt(**overrides: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "device_serial": "SN0001",
        "purpose": "diagnostics",
        "policy_version": "en-2023-01-10",
        "issued_at": NOW,
        "counter": 1,
    }
    fields.update(overrides)
    body = ReceiptBody(**fields)  # type: ignore[arg-type]
    return sign_receipt(APP, body).to_json()


def _grant(
    receipt: dict[str, object], state: ConsentState | None = None, key: Ed25519PrivateKey = APP
) -> GrantResult:
    return grant(
        state or ConsentState(), parse_receipt(receipt), key.public_key(), "SN0001", V2023, NOW, DAY
    )


def test_grant_accepts_a_valid_receipt() -> None:
    result = _grant(_receipt())
    assert result.accepted, result.reason
    assert is_granted(result.state, Purpose.DIAGNOSTICS, V2023)
    assert not is_granted(result.state, Purpose.DEVICE_AI, V2023)


@pytest.mark.parametrize(
    ("receipt", "fragment"),
    [
        (_receipt(device_serial="SN0002"), "wrong device"),
        (_receipt(policy_version="en-2020-01-19"), "names policy en-2020-01-19"),
        (_receipt(purpose="notification"), "no consent-based purpose"),
        (_receipt(purpose="marketing"), "unknown purpose"),
        (_receipt(issued_at=NOW - timedelta(days=2)), "expired"),
        (_receipt(issued_at=NOW + timedelta(hours=1)), "future"),
    ],
)
def test_grant_refuses_bad_receipts_with_reason(receipt: dict[str, object], fragment: str) -> None:
    result = _grant(receipt)
    assert not result.accepted
    assert fragment in result.reason
    assert result.state == ConsentState()


def test_grant_refuses_forged_and_tampered_receipts() -> None:
    forged = _grant(_receipt(), key=APP)
    other = Ed25519PrivateKey.generate()
    result = grant(
        ConsentState(), parse_receipt(_receipt()), other.public_key(), "SN0001", V2023, NOW, DAY
    )
    assert forged.accepted
    assert not result.accepted
    assert "forged" in result.reason
    tampered = _receipt()
    body = dict(tampered["body"])  # type: ignore[call-overload]
    body["purpose"] = "device_ai"
    tampered["body"] = body
    assert "forged" in _grant(tampered).reason


def test_grant_refuses_replayed_counter() -> None:
    first = _grant(_receipt(counter=5))
    assert first.accepted
    replay = _grant(_receipt(counter=5), first.state)
    older = _grant(_receipt(counter=4, purpose="device_ai"), first.state)
    assert "replayed" in replay.reason
    assert "replayed" in older.reason
    assert _grant(_receipt(counter=6, purpose="device_ai"), first.state).accepted


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ("text", "expected an object"),
        ({"body": {}, "signature": 5}, "signature: expected base64"),
        ({"body": {}, "signature": "!!"}, "not valid base64"),
        ({"body": {}, "signature": base64.b64encode(b"x" * 10).decode()}, "expected 64 bytes"),
        (
            {"body": {"device_serial": "S"}, "signature": base64.b64encode(b"x" * 64).decode()},
            "receipt.body.purpose",
        ),
    ],
)
def test_parse_receipt_refuses_malformed(obj: object, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_receipt(obj)


def test_withdraw_takes_effect_at_once_without_signature() -> None:
    state = _grant(_receipt()).state
    state, was = withdraw(state, Purpose.DIAGNOSTICS, NOW, "device button")
    assert was
    assert consent_status(state, Purpose.DIAGNOSTICS, V2023) == "withdrawn"
    _, again = withdraw(state, Purpose.DIAGNOSTICS, NOW, "device button")
    assert not again


def test_switch_version_lets_consent_lapse_where_the_purpose_is_not_disclosed() -> None:
    state = _grant(_receipt()).state
    to_2020 = switch_version(state, V2023, V2020, NOW)
    assert consent_status(to_2020, Purpose.DIAGNOSTICS, V2020) == "lapsed"
    back = switch_version(to_2020, V2020, V2023, NOW)
    assert not is_granted(back, Purpose.DIAGNOSTICS, V2023)  # does not silently come back


def test_switch_version_carries_consent_to_a_version_with_the_same_purpose() -> None:
    state = _grant(_receipt()).state
    same = switch_version(state, V2023, V2023, NOW)
    assert is_granted(same, Purpose.DIAGNOSTICS, V2023)


def test_consent_state_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "consent.json"
    state = _grant(_receipt(counter=9)).state
    save_consent(path, state)
    assert load_consent(path) == state
    assert path.stat().st_mode & 0o777 == 0o600
    assert from_json(to_json(state)) == state


def test_consent_file_corrupt_is_an_error_not_a_reset(tmp_path: Path) -> None:
    path = tmp_path / "consent.json"
    path.write_text("{not json")
    with pytest.raises(StoreError, match="move the file aside"):
        load_consent(path)
    assert load_consent(tmp_path / "missing.json") == ConsentState()


def test_audio_default_on_only_where_disclosed_and_toggle_obeyed() -> None:
    assert default_audio_on(V2023)
    assert not default_audio_on(V2020)
    assert may_open_microphone(V2023, None)
    assert not may_open_microphone(V2023, False)
    assert not may_open_microphone(V2020, True)
