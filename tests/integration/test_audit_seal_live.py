"""The sealed trail and its checkpoints as a privacy officer would check them: the real
agent against a real Mosquitto, the checkpoints taken from what the backend received."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from certs.pki import Pki, issue_device_files
from edge.config import AuditConfig
from edge.inputs import StatusDue
from firmware_sim.broker import MosquittoBroker
from firmware_sim.harness import (
    AgentHarness,
    SimClock,
    agent_config,
    backend_observer,
    prepare_device,
)
from tests.cli import run_edge

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def test_a_live_trail_verifies_against_its_seals_and_checkpoints(
    pki: Pki, shared_broker: MosquittoBroker, tmp_path: Path
) -> None:
    serial = "SN0020"  # its own device: the shared broker keeps retained messages per topic
    issue_device_files(pki, serial)
    backend = backend_observer(pki, shared_broker.host, shared_broker.port, f"devices/{serial}/#")
    backend.start()
    setup = prepare_device(pki, serial, tmp_path / serial)
    base = agent_config(setup, [(shared_broker.host, shared_broker.port)], "en-2023-01-10")
    audit = AuditConfig(seal_every_records=10, checkpoint_every_records=15)
    harness = AgentHarness(setup, replace(base, audit=audit), SimClock())
    harness.start()
    try:
        assert harness.wait_connected(15)
        for _ in range(20):
            harness.put(StatusDue(harness.clock.now()))
        assert harness.wait_drained(30)
    finally:
        harness.stop()  # a clean stop signs a final checkpoint (sent at the next start)
    harness.start()
    assert harness.wait_drained(30)
    harness.stop()
    topic = f"devices/{serial}/audit/checkpoint"
    got = backend.wait_for(lambda ms: sum(m.topic == topic for m in ms) >= 3, 10)
    backend.stop()  # and every message it received matched docs/asyncapi.yaml
    checkpoints = [
        json.loads(m.payload)["data"]["audit_checkpoint"] for m in got if m.topic == topic
    ]
    assert len(checkpoints) >= 3
    received = tmp_path / "checkpoints.jsonl"
    received.write_text("".join(json.dumps(c) + "\n" for c in checkpoints))
    state = tmp_path / serial / "state"
    keys = [
        "--seal-key", str(setup.seal_verify_key),
        "--checkpoints", str(received),
        "--device-key", str(setup.signing_public_key),
    ]  # fmt: skip
    result = run_edge("audit", "verify", str(state), *keys)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "seals:" in result.stdout
    assert result.stdout.count(": consistent") == len(checkpoints)
    # Cut the trail back to before the last checkpoint: the backend's anchor shows it.
    lines = (state / "audit.jsonl").read_text().splitlines()
    last = checkpoints[-1]["seq"]
    kept = [line for line in lines if json.loads(line)["seq"] < last - 1]
    (state / "audit.jsonl").write_text("".join(line + "\n" for line in kept))
    result = run_edge("audit", "verify", str(state), *keys)
    assert result.returncode == 1
    assert "truncated" in result.stdout
