"""Mutual TLS against a real Mosquitto: who gets in, who is refused, and how we say so."""

from __future__ import annotations

import json
import queue
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import UnionType

import pytest

from certs.pki import Identity, Pki, issue_device_files, issue_server_files, provision
from edge.session import (
    Connect,
    ConnectFailed,
    ConnectSucceeded,
    Endpoint,
    Protocol,
    PublishAcked,
    TransportEvent,
)
from edge.shell.tls import TlsFiles, build_ssl_context
from edge.shell.transport import MqttTransport
from firmware_sim.broker import BrokerTls, MosquittoBroker, start_mosquitto
from tests.integration.conftest import observer_for
from tests.messages import availability_message, telemetry_message

pytestmark = [pytest.mark.broker, pytest.mark.timeout(60)]


def _context(pki: Pki, ident: Identity, ca: Path | None = None) -> ssl.SSLContext:
    return build_ssl_context(TlsFiles(ca or pki.ca_cert, ident.cert, ident.key))


def _next(
    events: queue.Queue[TransportEvent], kind: type | UnionType, timeout_s: float = 10.0
) -> object:
    while True:
        event = events.get(timeout=timeout_s)
        if isinstance(event, kind):
            return event


def _connect(
    broker: MosquittoBroker,
    serial: str,
    context: ssl.SSLContext,
    host: str | None = None,
    keepalive_s: int = 30,
) -> tuple[MqttTransport, queue.Queue[TransportEvent]]:
    events: queue.Queue[TransportEvent] = queue.Queue()
    transport = MqttTransport(serial, context, events, keepalive_s=keepalive_s)
    will = availability_message(serial, "offline")
    transport.connect(
        Connect(Endpoint(host or broker.host, broker.port), Protocol.MQTT5, 0.0), will
    )
    return transport, events


def test_transport_connects_with_device_certificate(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    transport, events = _connect(shared_broker, "SN0001", _context(pki, pki.devices["SN0001"]))
    try:
        event = _next(events, ConnectSucceeded | ConnectFailed)
        assert isinstance(event, ConnectSucceeded), event
        assert event.protocol is Protocol.MQTT5
    finally:
        transport.disconnect()
        transport.close()


def test_transport_publish_arrives_at_observer(shared_broker: MosquittoBroker, pki: Pki) -> None:
    # A transport test: its hand-made payload is not the agent's, so no contract check.
    with observer_for(shared_broker, pki, "devices/SN0002/#", check_contract=False) as observer:
        transport, events = _connect(shared_broker, "SN0002", _context(pki, pki.devices["SN0002"]))
        try:
            assert isinstance(_next(events, ConnectSucceeded | ConnectFailed), ConnectSucceeded)
            mid = transport.publish(availability_message("SN0002", "online", 4))
            ack = _next(events, PublishAcked)
            assert isinstance(ack, PublishAcked)
            assert ack.mid == mid
            assert not ack.refused
            got = observer.wait_for(lambda ms: len(ms) >= 1)
            assert [json.loads(m.payload) for m in got] == [{"state": "online", "session": 4}]
        finally:
            transport.disconnect()
            transport.close()


def test_transport_refuses_connection_without_client_certificate(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(pki.ca_cert))
    transport, events = _connect(shared_broker, "SN0001", context)
    try:
        event = _next(events, ConnectSucceeded | ConnectFailed)
        assert isinstance(event, ConnectFailed)
        assert "certificate" in event.reason
    finally:
        transport.close()


def test_transport_refused_with_certificate_from_another_ca(
    shared_broker: MosquittoBroker, pki: Pki, tmp_path: Path
) -> None:
    rogue = provision(tmp_path / "rogue", ["SN0001"], observers=())
    context = build_ssl_context(
        TlsFiles(pki.ca_cert, rogue.devices["SN0001"].cert, rogue.devices["SN0001"].key)
    )
    transport, events = _connect(shared_broker, "SN0001", context)
    try:
        event = _next(events, ConnectSucceeded | ConnectFailed)
        assert isinstance(event, ConnectFailed)
        assert "not signed by a CA the broker trusts" in event.reason
    finally:
        transport.close()


def test_transport_refused_with_expired_certificate(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    now = datetime.now(UTC)
    expired = issue_device_files(
        pki, "SN0009", now=now, days=1, not_before=now - timedelta(days=10), name="SN0009-expired"
    )
    transport, events = _connect(shared_broker, "SN0009", _context(pki, expired))
    try:
        event = _next(events, ConnectSucceeded | ConnectFailed)
        assert isinstance(event, ConnectFailed)
        assert "expired" in event.reason
    finally:
        transport.close()


def test_transport_rejects_broker_from_another_ca(
    shared_broker: MosquittoBroker, pki: Pki, tmp_path: Path
) -> None:
    rogue = provision(tmp_path / "rogue", [], observers=())
    context = _context(pki, pki.devices["SN0001"], ca=rogue.ca_cert)
    transport, events = _connect(shared_broker, "SN0001", context)
    try:
        event = _next(events, ConnectSucceeded | ConnectFailed)
        assert isinstance(event, ConnectFailed)
        assert "broker certificate rejected" in event.reason
        assert event.fatal
    finally:
        transport.close()


def test_transport_rejects_broker_certificate_for_another_host(
    mosquitto_binary: str, pki: Pki, tmp_path: Path
) -> None:
    # Same CA (so only the host name is wrong): the broker's certificate is for another host.
    server = issue_server_files(pki, sans=("broker.invalid",), name="server-broker-invalid")
    tls = BrokerTls(pki.ca_cert, server.cert, server.key)
    broker = start_mosquitto(tmp_path / "broker", tls)
    try:
        transport, events = _connect(broker, "SN0001", _context(pki, pki.devices["SN0001"]))
        try:
            event = _next(events, ConnectSucceeded | ConnectFailed)
            assert isinstance(event, ConnectFailed)
            assert "does not match 127.0.0.1" in event.reason
        finally:
            transport.close()
    finally:
        broker.stop()


def test_acl_refuses_publish_under_another_device_prefix(
    shared_broker: MosquittoBroker, pki: Pki
) -> None:
    with observer_for(shared_broker, pki, "devices/SN0003/#") as observer:
        transport, events = _connect(shared_broker, "SN0001", _context(pki, pki.devices["SN0001"]))
        try:
            assert isinstance(_next(events, ConnectSucceeded | ConnectFailed), ConnectSucceeded)
            mid = transport.publish(telemetry_message("devices/SN0003/telemetry", "SN0001"))
            ack = _next(events, PublishAcked)
            assert isinstance(ack, PublishAcked)
            assert ack.mid == mid
            assert ack.refused, "MQTT 5 PUBACK must carry a refusal reason code"
            assert ack.reason_code == 0x87  # Not authorized
            # And nothing arrived under the other device's prefix.
            assert observer.wait_for(lambda ms: len(ms) > 0, timeout_s=0.5) == []
        finally:
            transport.disconnect()
            transport.close()


def test_last_will_offline_is_retained_when_connection_dies(
    broker: MosquittoBroker, pki: Pki
) -> None:
    transport, events = _connect(broker, "SN0002", _context(pki, pki.devices["SN0002"]))
    try:
        assert isinstance(_next(events, ConnectSucceeded | ConnectFailed), ConnectSucceeded)
        transport.publish(availability_message("SN0002", "online"))
        _next(events, PublishAcked)
        transport.drop()  # the socket dies without DISCONNECT: the broker must send the Will
    finally:
        transport.close()
    # A backend that connects afterwards sees the retained Will.
    with observer_for(broker, pki, "devices/SN0002/availability") as observer:
        got = observer.wait_for(
            lambda ms: any(json.loads(m.payload).get("state") == "offline" for m in ms)
        )
        states = [json.loads(m.payload)["state"] for m in got]
        assert states[-1] == "offline"
        assert got[-1].retain
