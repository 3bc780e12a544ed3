"""The same agent, unchanged, on a three-node NATS cluster (MQTT 3.1.1 on JetStream)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from certs.acl import nats_accounts
from certs.pki import Pki
from edge.inputs import StatusDue
from edge.session import Protocol
from firmware_sim.broker import BrokerTls
from firmware_sim.harness import AgentHarness, SimClock, agent_config, prepare_device
from firmware_sim.nats_cluster import NatsCluster, start_nats_cluster
from firmware_sim.observer import Observer, client_context

pytestmark = [pytest.mark.nats, pytest.mark.timeout(120)]


@pytest.fixture
def cluster(nats_binary: str, pki: Pki, tmp_path: Path) -> Iterator[NatsCluster]:
    users = nats_accounts(["SN0001", "SN0002"], ["observer"])
    ident = pki.observers["observer"]
    instance = start_nats_cluster(
        tmp_path / "nats",
        BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key),
        users,
        warm_up=(client_context(pki.ca_cert, ident.cert, ident.key), "warm-up"),
        binary=nats_binary,
    )
    try:
        yield instance
    finally:
        instance.stop()


def _observer(pki: Pki, host: str, port: int, topic_filter: str = "devices/#") -> Observer:
    ident = pki.observers["observer"]
    context = client_context(pki.ca_cert, ident.cert, ident.key)
    return Observer(
        host,
        port,
        context,
        "observer",
        topic_filter,
        protocol=MQTTProtocolVersion.MQTTv311,
        persistent=True,
    )


def _agent(pki: Pki, tmp_path: Path, endpoints: list[tuple[str, int]]) -> AgentHarness:
    setup = prepare_device(pki, "SN0001", tmp_path / "dev")
    harness = AgentHarness(
        setup, agent_config(setup, endpoints, "en-2020-01-19", keepalive_s=3), SimClock()
    )
    harness.start()
    assert harness.wait_connected(30), "the agent did not connect to the cluster"
    return harness


def test_agent_falls_back_to_mqtt311_and_delivers_across_nodes(
    cluster: NatsCluster, pki: Pki, tmp_path: Path
) -> None:
    (h1, p1), _, (h3, p3) = cluster.endpoints()
    with _observer(pki, h3, p3).start() as observer:
        harness = _agent(pki, tmp_path, [(h1, p1)])
        try:
            agent = harness.agent
            assert agent is not None
            assert harness.agent.transport.protocol is Protocol.MQTT311  # type: ignore[union-attr]
            for _ in range(10):
                harness.put(StatusDue(harness.clock.now()))
            assert harness.wait_drained(30)
            got = observer.wait_for(
                lambda ms: sum(m.topic.endswith("telemetry") for m in ms) >= 10, 20
            )
            assert sum(m.topic.endswith("telemetry") for m in got) == 10
            births = [json.loads(m.payload) for m in got if m.topic.endswith("birth")]
            assert births
            assert births[-1]["data"]["declaration"]["protocol"] == "3.1.1"
        finally:
            harness.kill()  # vanish: the Will must reach the observer on another node
    with _observer(pki, h3, p3, "devices/SN0001/availability").start() as late:
        got = late.wait_for(
            lambda ms: any(json.loads(m.payload)["state"] == "offline" for m in ms), 20
        )
        assert [json.loads(m.payload)["state"] for m in got][-1] == "offline"


def test_node_failover_loses_nothing(cluster: NatsCluster, pki: Pki, tmp_path: Path) -> None:
    endpoints = cluster.endpoints()
    (h3, p3) = endpoints[2]  # the backend stays on node 3; the device may use nodes 1 and 2
    with _observer(pki, h3, p3).start() as observer:
        harness = _agent(pki, tmp_path, endpoints[:2])
        try:
            for _ in range(20):
                harness.put(StatusDue(harness.clock.now()))
            assert harness.wait_drained(30)
            first = observer.wait_for(
                lambda ms: sum(m.topic.endswith("telemetry") for m in ms) >= 20, 20
            )
            assert sum(m.topic.endswith("telemetry") for m in first) == 20, [m.topic for m in first]
            agent = harness.agent
            assert agent is not None
            connected_to = agent.session.endpoint
            node = next(n for n in cluster.nodes if n.mqtt_port == connected_to.port)
            cluster.kill_node(node)  # the node the agent is connected to
            for _ in range(20):
                harness.put(StatusDue(harness.clock.now()))
            assert harness.wait_drained(60)
            got = observer.wait_for(
                lambda ms: (
                    len(
                        {
                            json.loads(m.payload)["record_id"]
                            for m in ms
                            if m.topic.endswith("telemetry")
                        }
                    )
                    >= 40
                ),
                30,
            )
            ids = {json.loads(m.payload)["record_id"] for m in got if m.topic.endswith("telemetry")}
            assert len(ids) == 40  # duplicates allowed on the wire, none lost
        finally:
            harness.stop()


def test_cluster_acl_confines_a_device_to_its_own_subjects(cluster: NatsCluster, pki: Pki) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    (h1, p1), _, (h3, p3) = cluster.endpoints()
    ident = pki.devices["SN0002"]
    granted: list[list[int]] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="SN0002", protocol=MQTTProtocolVersion.MQTTv311
    )
    client.tls_set_context(client_context(pki.ca_cert, ident.cert, ident.key))
    client.on_subscribe = lambda c, u, mid, codes, props: granted.append(
        [int(x.value) for x in codes]
    )
    with _observer(pki, h3, p3, "devices/SN0001/#").start() as observer:
        client.connect(h1, p1)
        client.loop_start()
        try:
            deadline = time.monotonic() + 10
            while not client.is_connected() and time.monotonic() < deadline:
                time.sleep(0.05)
            client.subscribe("devices/SN0001/cmd", qos=1)
            info = client.publish("devices/SN0001/telemetry", b'{"spoof":true}', qos=1)
            info.wait_for_publish(10)
            while not granted and time.monotonic() < deadline:
                time.sleep(0.05)
            assert granted
            assert granted[0][0] >= 0x80  # reading another device's commands is refused
            assert observer.wait_for(lambda ms: len(ms) > 0, 1.5) == []  # the spoof went nowhere
        finally:
            client.disconnect()
            client.loop_stop()


@pytest.mark.parametrize("scenario", ["street_parked_cars", "consent_withdrawn_mid_queue"])
def test_leak_audit_passes_on_the_cluster(
    cluster: NatsCluster, pki: Pki, tmp_path: Path, scenario: str
) -> None:
    from firmware_sim.device import SimDevice
    from firmware_sim.leak_audit import audit_run
    from firmware_sim.link import LinkRelay
    from firmware_sim.runner import run_scenario
    from firmware_sim.scenarios import get_scenario

    (h1, p1), _, (h3, p3) = cluster.endpoints()
    relay = LinkRelay(h1, p1)
    with _observer(pki, h3, p3).start() as observer:
        setup = prepare_device(pki, "SN0001", tmp_path / "dev")
        config = agent_config(setup, [(relay.host, relay.port)], "en-2023-01-10", keepalive_s=3)
        harness = AgentHarness(setup, config, SimClock())
        harness.start()
        try:
            assert harness.wait_connected(30)
            speed = max(1.0, get_scenario(scenario).duration_s / 3.0)
            record = run_scenario(
                harness,
                relay,
                observer,
                SimDevice("SN0001"),
                get_scenario(scenario),
                speed,
                ("device_ai",),
            )
        finally:
            harness.stop()
            relay.close()
    audit = audit_run(record)
    assert record.drained
    assert audit.checked > 0
    assert [f.problem for f in audit.findings] == []
