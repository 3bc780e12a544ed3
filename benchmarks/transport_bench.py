"""Benchmark: durable QoS 1 throughput of the agent vs raw paho, same broker, same run.

Both send N messages, QoS 1, over mutual TLS to one local Mosquitto and stop the clock
when the last one has been acknowledged (raw paho: its last PUBACK; agent: the outbox is
empty and nothing is in flight). The agent path is the real one: each message is a
status report decided by the policy gate, enveloped (~300 bytes, against raw paho's 200),
queued in the encrypted SQLite outbox (synchronous=FULL), sent, and deleted on PUBACK,
with an audit record for each step. Runs alternate raw/agent so noise hits both.

    .venv/bin/python benchmarks/transport_bench.py [--messages 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from certs.pki import provision
from edge.inputs import StatusDue
from edge.shell.audit_log import read_records
from edge.shell.store import SqliteOutboxStore
from firmware_sim.broker import BrokerTls, start_mosquitto
from firmware_sim.harness import AgentHarness, SimClock, agent_config, prepare_device
from firmware_sim.link import LinkRelay

PAYLOAD = b"x" * 200


def raw_paho(host: str, port: int, context: ssl.SSLContext, count: int, inflight: int) -> float:
    """msg/s for plain paho (loop_start thread): publish everything, wait for every PUBACK."""
    done = threading.Event()
    acked = 0

    def on_publish(
        client: mqtt.Client, userdata: object, mid: int, rc: object, props: object
    ) -> None:
        nonlocal acked
        acked += 1
        if acked == count:
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="SN0002", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.tls_set_context(context)
    client.max_inflight_messages_set(inflight)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect(host, port)
    client.loop_start()
    time.sleep(0.2)
    start = time.perf_counter()
    for _ in range(count):
        client.publish("devices/SN0002/telemetry", PAYLOAD, qos=1)
    if not done.wait(300):
        raise SystemExit(f"raw paho: only {acked}/{count} PUBACKs")
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def agent_run(harness: AgentHarness, count: int) -> tuple[float, list[float]]:
    agent = harness.agent
    if agent is None:
        raise SystemExit("agent not started")
    now = harness.clock.now()
    start = time.perf_counter()
    for _ in range(count):
        agent.events.put(StatusDue(now))
    if not harness.wait_drained(300):
        raise SystemExit("agent: not drained")
    elapsed = time.perf_counter() - start - 0.05  # wait_drained's settle pause
    queued: dict[str, datetime] = {}
    latencies: list[float] = []
    for record in read_records(agent.audit.path).records:
        if record.event.value == "queued":
            queued[record.record_id] = datetime.fromisoformat(record.time)
        elif record.event.value == "acked" and record.record_id in queued:
            latencies.append(
                (datetime.fromisoformat(record.time) - queued[record.record_id]).total_seconds()
            )
    return count / elapsed, latencies


def disk_per_message(harness: AgentHarness, relay: LinkRelay, count: int) -> float:
    agent = harness.agent
    if agent is None:
        raise SystemExit("agent not started")
    relay.down()
    time.sleep(0.3)
    store = agent.outbox.store
    if not isinstance(store, SqliteOutboxStore):
        raise SystemExit("expected the SQLite store")
    before = store.disk_bytes()
    for _ in range(count):
        agent.events.put(StatusDue(harness.clock.now()))
    while agent.outbox.pending_count() < count:
        time.sleep(0.05)
    after = store.disk_bytes()
    relay.up()
    harness.wait_drained(120)
    return (after - before) / count


def main() -> int:
    parser = argparse.ArgumentParser(description="agent vs raw paho, QoS 1 over mutual TLS")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki = provision(work / "pki", ["SN0001", "SN0002"], observers=("observer",))
        broker = start_mosquitto(
            work / "broker", BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
        )
        try:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(str(pki.ca_cert))
            ident = pki.devices["SN0002"]
            context.load_cert_chain(str(ident.cert), str(ident.key))
            raw: list[float] = []
            agent: list[float] = []
            latencies: list[float] = []
            for run in range(args.runs):
                raw.append(
                    raw_paho(broker.host, broker.port, context, args.messages, args.inflight)
                )
                relay = LinkRelay(broker.host, broker.port)
                setup = prepare_device(pki, "SN0001", work / f"agent-{run}")
                config = agent_config(
                    setup, [(broker.host, broker.port)], "en-2020-01-19", max_inflight=args.inflight
                )
                harness = AgentHarness(setup, config, SimClock())
                harness.start()
                harness.wait_connected()
                rate, lat = agent_run(harness, args.messages)
                agent.append(rate)
                latencies += lat
                harness.stop()
                relay.close()
                print(
                    f"run {run + 1}: raw paho {raw[-1]:7.0f} msg/s   "
                    f"agent {rate:7.0f} msg/s   ratio {rate / raw[-1]:.2f}",
                    flush=True,
                )
            relay = LinkRelay(broker.host, broker.port)
            setup = prepare_device(pki, "SN0001", work / "disk")
            harness = AgentHarness(
                setup, agent_config(setup, [(relay.host, relay.port)], "en-2020-01-19"), SimClock()
            )
            harness.start()
            harness.wait_connected()
            per_message = disk_per_message(harness, relay, 2000)
            harness.stop()
            relay.close()
        finally:
            broker.stop()
    lat = sorted(latencies)
    print(f"median raw paho   : {statistics.median(raw):7.0f} msg/s")
    print(f"median agent      : {statistics.median(agent):7.0f} msg/s")
    ratio = statistics.median(a / r for a, r in zip(agent, raw, strict=True))
    print(f"median ratio      : {ratio:.2f}")
    p50, p95 = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95)] * 1000
    print(f"enqueue -> PUBACK : p50 {p50:.0f} ms, p95 {p95:.0f} ms (burst of {args.messages})")
    print(
        f"outbox on disk    : {per_message:.0f} bytes per queued message (SQLite + WAL, encrypted)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
