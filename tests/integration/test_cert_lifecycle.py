"""Certificate rotation while running, revocation through a CRL the broker loads, and
that a device cannot read another device's commands."""

from __future__ import annotations

import json
import queue
import time
from pathlib import Path

import pytest

from certs.pki import Pki, issue_device_files, provision, revoke
from edge.inputs import StatusDue
from edge.session import (
    Connect,
    ConnectFailed,
    ConnectSucceeded,
    Endpoint,
    Protocol,
    TransportEvent,
)
from edge.shell.tls import TlsFiles, build_ssl_context
from edge.shell.transport import MqttTransport
from firmware_sim.broker import BrokerTls, MosquittoBroker, start_mosquitto
from firmware_sim.harness import (
    AgentHarness,
    SimClock,
    agent_config,
    backend_observer,
    prepare_device,
)
from firmware_sim.link import LinkRelay
from firmware_sim.observer import Observer, client_context
from tests.messages import availability_message

pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def _outcome(
    broker: MosquittoBroker, pki: Pki, cert: Path, key: Path, serial: str
) -> TransportEvent:
    events: queue.Queue[TransportEvent] = queue.Queue()
    transport = MqttTransport(serial, build_ssl_context(TlsFiles(pki.ca_cert, cert, key)), events)
    transport.connect(
        Connect(Endpoint(broker.host, broker.port), Protocol.MQTT5, 0.0),
        availability_message(serial, "offline"),
    )
    try:
        while True:
            event = events.get(timeout=10)
            if isinstance(event, ConnectSucceeded | ConnectFailed):
                return event
    finally:
        transport.disconnect()
        transport.close()


def test_rotation_while_running_then_revocation_of_the_old_certificate(
    mosquitto_binary: str, tmp_path: Path
) -> None:
    pki = provision(tmp_path / "pki", ["SN0001"], observers=("observer",))
    old = tmp_path / "old"
    old.mkdir()
    old_cert, old_key = old / "SN0001.pem", old / "SN0001.key"
    old_cert.write_bytes(pki.devices["SN0001"].cert.read_bytes())
    old_key.write_bytes(pki.devices["SN0001"].key.read_bytes())
    old_key.chmod(0o600)
    broker = start_mosquitto(
        tmp_path / "broker",
        BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key),
        persistence=True,
    )
    relay = LinkRelay(broker.host, broker.port)
    setup = prepare_device(pki, "SN0001", tmp_path / "dev")
    harness = AgentHarness(
        setup, agent_config(setup, [(relay.host, relay.port)], "en-2020-01-19"), SimClock()
    )
    try:
        harness.start()
        assert harness.wait_connected(15)
        # Rotation: a new certificate and key, written in place while the agent runs.
        time.sleep(0.05)
        issue_device_files(pki, "SN0001")
        # Revocation: the broker now loads a CRL naming the old certificate.
        revoke(pki, [old_cert])
        broker.stop()
        broker.tls = BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key, crl=pki.crl)
        broker.start()
        relay.drop()
        assert harness.wait_connected(20), "the agent did not reconnect with its new certificate"
        harness.put(StatusDue(harness.clock.now()))
        assert harness.wait_drained(20)
        refused = _outcome(broker, pki, old_cert, old_key, "SN0001")
        assert isinstance(refused, ConnectFailed)
        assert "revoked" in refused.reason
        accepted = _outcome(
            broker, pki, pki.devices["SN0001"].cert, pki.devices["SN0001"].key, "SN0001"
        )
        assert isinstance(accepted, ConnectSucceeded)
    finally:
        harness.stop()
        relay.close()
        broker.stop()


def test_a_device_cannot_read_another_devices_commands(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    spy_ident = pki.devices["SN0002"]
    spy = Observer(
        shared_broker.host,
        shared_broker.port,
        client_context(pki.ca_cert, spy_ident.cert, spy_ident.key),
        "SN0002",
        "devices/SN0003/cmd",
    ).start()
    backend = backend_observer(
        pki, shared_broker.host, shared_broker.port, "devices/SN0003/cmd"
    ).start()
    try:
        backend.publish(
            "devices/SN0003/cmd", json.dumps({"id": "secret", "command": "status"}).encode()
        )
        assert backend.wait_for(lambda ms: len(ms) >= 1, 5)  # the command was there to read
        assert spy.wait_for(lambda ms: len(ms) > 0, 1.5) == []
    finally:
        spy.stop()
        backend.stop()


def test_certificate_expiring_while_connected_queues_until_renewed(
    mosquitto_binary: str, tmp_path: Path
) -> None:
    from datetime import UTC, datetime, timedelta

    pki = provision(tmp_path / "pki", ["SN0001"], observers=("observer",))
    now = datetime.now(UTC)
    issue_device_files(
        pki, "SN0001", now=now, days=1, not_before=now - timedelta(days=1) + timedelta(seconds=4)
    )
    broker = start_mosquitto(
        tmp_path / "broker",
        BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key),
        persistence=True,
    )
    relay = LinkRelay(broker.host, broker.port)
    backend = backend_observer(pki, broker.host, broker.port, "devices/SN0001/telemetry").start()
    setup = prepare_device(pki, "SN0001", tmp_path / "dev")
    harness = AgentHarness(
        setup, agent_config(setup, [(relay.host, relay.port)], "en-2020-01-19"), SimClock()
    )
    try:
        harness.start()
        assert harness.wait_connected(15)
        time.sleep(5)  # the certificate expires; the established session goes on
        relay.drop()  # the next handshake must fail: the broker refuses an expired certificate
        for _ in range(5):
            harness.put(StatusDue(harness.clock.now()))
        time.sleep(2)
        agent = harness.agent
        assert agent is not None
        assert not agent.session.connected
        assert "expired" in agent.session.last_error
        assert agent.outbox.pending_count() == 5  # queued, not lost
        issue_device_files(pki, "SN0001")  # renewal, in place
        assert harness.wait_drained(20)
        got = backend.wait_for(lambda ms: len(ms) >= 5, 10)
        assert len({json.loads(m.payload)["record_id"] for m in got}) == 5
    finally:
        harness.stop()
        backend.stop()
        relay.close()
        broker.stop()
