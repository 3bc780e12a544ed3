"""Shell: the MQTT contract (docs/asyncapi.yaml, read from disk) as a validator of traffic.

The observer checks every message it receives against the schema of its channel, so the
published contract is tested against what really reaches the broker, not against prose.
The channel is found by the topic's suffix after ``<prefix>/<serial>/`` (the prefix is
configurable, the suffix is the contract).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from firmware_sim.errors import SimError

ASYNCAPI_PATH = Path(__file__).resolve().parents[1] / "docs" / "asyncapi.yaml"
_TOPIC = re.compile(r"^[^/#+]+/(?P<serial>[A-Z0-9][A-Z0-9_-]{2,31})/(?P<suffix>.+)$")


class ContractError(SimError):
    """A message on the broker that the published contract does not allow."""


@dataclass(frozen=True, slots=True)
class Contract:
    """Channel suffix -> the JSON Schemas of the messages that channel may carry."""

    document: dict[str, Any]
    schemas: dict[str, tuple[dict[str, Any], ...]]

    def channel_of(self, topic: str) -> str | None:
        """The channel suffix (``alarm/event``) of a device topic, or None."""
        match = _TOPIC.match(topic)
        if match is None or match["suffix"] not in self.schemas:
            return None
        return match["suffix"]

    def check(self, topic: str, payload: bytes) -> None:
        """Raise ContractError unless ``payload`` is allowed on ``topic``."""
        suffix = self.channel_of(topic)
        if suffix is None:
            raise ContractError(f"{topic}: not a channel of docs/asyncapi.yaml")
        try:
            value: object = json.loads(payload) if payload else ""
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ContractError(f"{topic}: payload is not JSON: {err}") from err
        errors: list[str] = []
        for validator in _validators(self, suffix):
            found = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
            if not found:
                return
            errors.extend(f"{list(e.absolute_path)}: {e.message}" for e in found[:3])
        raise ContractError(f"{topic}: payload does not match its schema: {errors}")


_VALIDATORS: dict[tuple[int, str], tuple[jsonschema.Draft202012Validator, ...]] = {}


def _validators(contract: Contract, suffix: str) -> tuple[jsonschema.Draft202012Validator, ...]:
    """Built once per channel: the observer validates in paho's network thread."""
    key = (id(contract), suffix)
    if key not in _VALIDATORS:
        checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
        _VALIDATORS[key] = tuple(
            jsonschema.Draft202012Validator(s, format_checker=checker)
            for s in contract.schemas[suffix]
        )
    return _VALIDATORS[key]


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    """Inline every local ``$ref`` (the AsyncAPI document has no recursive schemas)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part]
            return _resolve(target, root)
        return {k: _resolve(v, root) for k, v in node.items() if not k.startswith("x-")}
    if isinstance(node, list):
        return [_resolve(v, root) for v in node]
    return node


def load_contract(path: Path = ASYNCAPI_PATH) -> Contract:
    """Read the AsyncAPI document and index each channel's payload schemas by suffix."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    schemas: dict[str, tuple[dict[str, Any], ...]] = {}
    for channel in document["channels"].values():
        suffix = str(channel["address"]).split("{serial}/", 1)[1]
        messages = _resolve(channel["messages"], document)
        schemas[suffix] = tuple(m["payload"] for m in messages.values())
    return Contract(document, schemas)


@cache
def default_contract() -> Contract:
    """The repository's contract, loaded once per process."""
    return load_contract()
