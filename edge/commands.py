"""Pure: inbound commands, validated at the boundary into typed values.

A command arrives on ``devices/<serial>/cmd`` as a JSON object::

    {"id": "c-17", "command": "consent.grant", "receipt": {...signed receipt...}}
    {"id": "c-18", "command": "consent.withdraw", "purpose": "diagnostics"}
    {"id": "c-19", "command": "audio.set", "on": false}
    {"id": "c-20", "command": "policy.accept", "version": "en-2023-01-10"}
    {"id": "c-21", "command": "status"}

Rules:
1. Anything malformed, unknown or larger than ``MAX_COMMAND_BYTES`` is refused with a
   reason and changes nothing (``Refused``); parsing never raises.
2. ``id`` is echoed in the result so the sender can match it; it is optional.
3. A grant carries the signed receipt as an opaque object; its signature is checked by
   the consent state machine, not here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from edge.model import Purpose

MAX_COMMAND_BYTES = 16 * 1024
MAX_ID_CHARS = 64


@dataclass(frozen=True, slots=True)
class GrantConsent:
    id: str
    receipt: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class WithdrawConsent:
    id: str
    purpose: Purpose | None  # None: withdraw every consent


@dataclass(frozen=True, slots=True)
class SetAudio:
    id: str
    on: bool


@dataclass(frozen=True, slots=True)
class AcceptPolicy:
    id: str
    version: str


@dataclass(frozen=True, slots=True)
class RequestStatus:
    id: str


@dataclass(frozen=True, slots=True)
class Refused:
    """A command that was not understood; nothing changed."""

    id: str
    reason: str


Command = GrantConsent | WithdrawConsent | SetAudio | AcceptPolicy | RequestStatus
KNOWN_COMMANDS = ("consent.grant", "consent.withdraw", "audio.set", "policy.accept", "status")


def parse_command(payload: bytes) -> Command | Refused:
    """Parse one command payload (rule 1: never raises)."""
    if len(payload) > MAX_COMMAND_BYTES:
        return Refused("", f"command too large: {len(payload)} bytes (limit {MAX_COMMAND_BYTES})")
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return Refused("", f"command is not valid UTF-8 JSON: {err}")
    if not isinstance(body, dict):
        return Refused("", f"command must be a JSON object, got {type(body).__name__}")
    raw_id = body.get("id", "")
    if not isinstance(raw_id, str) or len(raw_id) > MAX_ID_CHARS:
        return Refused("", f"id: expected a string of at most {MAX_ID_CHARS} characters")
    name = body.get("command")
    if not isinstance(name, str):
        return Refused(raw_id, f"command: expected one of {', '.join(KNOWN_COMMANDS)}")
    if name == "consent.grant":
        receipt = body.get("receipt")
        if not isinstance(receipt, dict):
            return Refused(raw_id, "receipt: expected the signed receipt object")
        return GrantConsent(raw_id, receipt)
    if name == "consent.withdraw":
        purpose = body.get("purpose", "all")
        if purpose == "all":
            return WithdrawConsent(raw_id, None)
        if not isinstance(purpose, str) or purpose not in Purpose.__members__.values():
            return Refused(raw_id, f"purpose: unknown purpose {purpose!r}")
        return WithdrawConsent(raw_id, Purpose(purpose))
    if name == "audio.set":
        on = body.get("on")
        if not isinstance(on, bool):
            return Refused(raw_id, f"on: expected true or false, got {on!r}")
        return SetAudio(raw_id, on)
    if name == "policy.accept":
        version = body.get("version")
        if not isinstance(version, str) or not version or len(version) > 32:
            return Refused(raw_id, f"version: expected a policy version id, got {version!r}")
        return AcceptPolicy(raw_id, version)
    if name == "status":
        return RequestStatus(raw_id)
    return Refused(
        raw_id, f"command: unknown command {name!r} (known: {', '.join(KNOWN_COMMANDS)})"
    )
