"""Only the release path can make a message the transport will publish (pure, plus the
in-memory transport, which applies the same check as the MQTT one)."""

from __future__ import annotations

import ast
import dataclasses
import queue
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.model import Purpose
from edge.policy.catalogue import FieldName
from edge.policy.consent import ConsentState
from edge.policy.gate import Candidate, decide
from edge.release import Sendable, availability, only_sendable
from edge.session import Connect, Endpoint, Protocol, TransportEvent
from edge.shell.shipped import load_manifest
from firmware_sim.memory_link import MemoryBroker, MemoryTransport
from tests.messages import availability_message, telemetry_message

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_a_sendable_cannot_be_built_outside_the_release_module() -> None:
    with pytest.raises(TypeError, match="only by edge"):
        Sendable("devices/SN1/telemetry", b"{}", 1, False)
    with pytest.raises(TypeError, match="only by edge"):
        Sendable("devices/SN1/telemetry", b"{}", 1, False, object())


def test_a_released_message_cannot_be_given_a_new_payload() -> None:
    """``dataclasses.replace`` re-runs the constructor with the old permit: used up."""
    message = telemetry_message("devices/SN1/telemetry", "SN1")
    with pytest.raises(TypeError, match="only by edge"):
        dataclasses.replace(message, payload=b'{"mac_address": "00:11:22:33:44:55"}')


def test_the_transport_publishes_nothing_but_a_sendable() -> None:
    broker = MemoryBroker()
    events: queue.Queue[TransportEvent] = queue.Queue()
    transport = MemoryTransport("SN1", events, broker)
    connect = Connect(Endpoint("127.0.0.1", 1883), Protocol.MQTT5, 0.0)
    with pytest.raises(TypeError, match="only a Sendable"):
        # a bug elsewhere hands it a tuple: refused at run time, whatever the type checker saw
        transport.connect(connect, ("devices/SN1/availability", b"offline"))  # type: ignore[arg-type]
    transport.connect(connect, availability_message("SN1", "offline"))
    raw = ("devices/SN1/telemetry", b'{"serial_number": "SN1"}', 1, False)
    with pytest.raises(TypeError, match="only a Sendable"):
        transport.publish(raw)  # type: ignore[arg-type]  # the same, on publish
    assert transport.publish(telemetry_message("devices/SN1/telemetry", "SN1")) == 1
    assert only_sendable(availability_message("SN1", "online")).retain is True


def test_no_availability_leaves_where_the_gate_removed_online_status() -> None:
    """The status field under a purpose that does not disclose it: removed, so no
    availability (and no Will) may say it."""
    manifest = load_manifest("en-2023-01-10")
    candidate = Candidate(Purpose.NOTIFICATION, {FieldName.ONLINE_STATUS: "online"}, NOW)
    decision = decide(candidate, manifest, ConsentState(), False, NOW)
    assert FieldName.ONLINE_STATUS not in decision.kept
    assert availability("devices/SN1/availability", decision, 1) is None


def _calls_to(tree: ast.AST, names: set[str]) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in names:
                lines.append(node.lineno)
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            if name in {"_PERMITS", "_Permit", "_sendable"}:
                lines.append(node.lineno)
    return lines


def test_only_the_release_module_builds_releases_and_sendables() -> None:
    """The call-site rule behind the type check: no other module of the product calls
    the constructors or touches the permits."""
    offenders: list[str] = []
    for folder in ("edge", "firmware_sim", "certs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "edge" / "release.py":
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"))
            lines = _calls_to(tree, {"Sendable", "Release"})
            offenders.extend(f"{path.relative_to(ROOT)}:{line}" for line in lines)
    assert offenders == []
