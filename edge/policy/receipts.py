"""Pure: signed consent receipts (Ed25519), their canonical form, parsing and verification.

A receipt is what the user's app sends to grant a consent::

    {"body": {"device_serial": "SN0001", "purpose": "diagnostics",
              "policy_version": "en-2023-01-10",
              "issued_at": "2026-11-23T12:00:00+00:00", "counter": 4},
     "signature": "<base64 Ed25519 signature over the canonical body>"}

The canonical body is its JSON with sorted keys and no spaces, UTF-8. The app's key is
provisioned at enrolment; only its public half is on the device.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import InputError

MAX_COUNTER = 2**53  # JSON-safe integers only


@dataclass(frozen=True, slots=True)
class ReceiptBody:
    device_serial: str
    purpose: str
    policy_version: str
    issued_at: datetime
    counter: int

    def canonical(self) -> bytes:
        return canonical_body(
            {
                "device_serial": self.device_serial,
                "purpose": self.purpose,
                "policy_version": self.policy_version,
                "issued_at": self.issued_at.isoformat(),
                "counter": self.counter,
            }
        )


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    body: ReceiptBody
    signed_bytes: bytes  # the canonical body exactly as signed
    signature: bytes

    def to_json(self) -> dict[str, object]:
        return {
            "body": json.loads(self.signed_bytes),
            "signature": base64.b64encode(self.signature).decode("ascii"),
        }


def canonical_body(body: Mapping[str, object]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_receipt(key: Ed25519PrivateKey, body: ReceiptBody) -> SignedReceipt:
    """What the user's app does (used by the simulator and the tests)."""
    data = body.canonical()
    return SignedReceipt(body, data, key.sign(data))


def parse_receipt(obj: object) -> SignedReceipt:
    """Validate a receipt's shape at the boundary.

    Raises:
        InputError: a missing or mistyped member, with its name.
    """
    if not isinstance(obj, Mapping):
        raise InputError("receipt: expected an object with 'body' and 'signature'")
    body = obj.get("body")
    signature = obj.get("signature")
    if not isinstance(body, Mapping):
        raise InputError("receipt.body: expected an object")
    if not isinstance(signature, str):
        raise InputError("receipt.signature: expected base64 text")
    try:
        raw_signature = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InputError("receipt.signature: not valid base64") from err
    if len(raw_signature) != 64:
        raise InputError(f"receipt.signature: expected 64 bytes, got {len(raw_signature)}")
    texts = {}
    for key in ("device_serial", "purpose", "policy_version", "issued_at"):
        value = body.get(key)
        if not isinstance(value, str) or not value or len(value) > 64:
            raise InputError(f"receipt.body.{key}: expected a short non-empty string")
        texts[key] = value
    counter = body.get("counter")
    if isinstance(counter, bool) or not isinstance(counter, int) or not 0 < counter < MAX_COUNTER:
        raise InputError("receipt.body.counter: expected a positive integer")
    try:
        issued_at = datetime.fromisoformat(texts["issued_at"])
    except ValueError as err:
        raise InputError("receipt.body.issued_at: expected an ISO 8601 time") from err
    if issued_at.tzinfo is None:
        raise InputError("receipt.body.issued_at: expected a time with a UTC offset")
    parsed = ReceiptBody(
        texts["device_serial"], texts["purpose"], texts["policy_version"], issued_at, counter
    )
    return SignedReceipt(parsed, canonical_body(body), raw_signature)


def verify_signature(receipt: SignedReceipt, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(receipt.signature, receipt.signed_bytes)
    except InvalidSignature:
        return False
    return True
