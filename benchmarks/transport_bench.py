"""Benchmark: durable QoS 1 publish throughput through the agent vs raw paho, same broker, same run.

Both publish N messages of 200 bytes, QoS 1, over mutual TLS to one local Mosquitto, and
stop the clock when the last PUBACK is in. The agent path is the real one: the policy
gate, the encrypted SQLite outbox (insert, mark in flight, delete on PUBACK) and the
transport. Runs alternate (raw, agent, raw, agent, ...) so that machine noise hits both.

    .venv/bin/python benchmarks/transport_bench.py [--messages 5000] [--runs 3]

Prints msg/s per run, the medians, the ratio agent/raw, the p50/p95 enqueue-to-PUBACK
latency of the agent path, and the outbox's bytes on disk per queued message.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from certs.pki import Pki, provision  # noqa: E402
from firmware_sim.broker import BrokerTls, start_mosquitto  # noqa: E402
from firmware_sim.harness import AgentHarness  # noqa: E402

PAYLOAD = b"x" * 200


def raw_paho(host: str, port: int, context: ssl.SSLContext, count: int, inflight: int) -> float:
    """msg/s for plain paho: publish ``count`` QoS 1 messages, wait for every PUBACK."""
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
    start = time.perf_counter()
    for i in range(count):
        client.publish("devices/SN0002/telemetry", PAYLOAD, qos=1)
        del i
    if not done.wait(120):
        raise SystemExit(f"raw paho: only {acked}/{count} PUBACKs")
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return count / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--inflight", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki: Pki = provision(work / "pki", ["SN0001", "SN0002"], observers=("observer",))
        broker = start_mosquitto(
            work / "broker", BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
        )
        try:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.load_verify_locations(str(pki.ca_cert))
            ident = pki.devices["SN0002"]
            context.load_cert_chain(str(ident.cert), str(ident.key))
            raw_rates: list[float] = []
            agent_rates: list[float] = []
            latencies: list[float] = []
            bytes_per_msg: list[float] = []
            for run in range(args.runs):
                raw_rates.append(
                    raw_paho(broker.host, broker.port, context, args.messages, args.inflight)
                )
                with AgentHarness(
                    pki, broker, "SN0001", work / f"agent-{run}", max_inflight=args.inflight
                ) as harness:
                    rate, lat, per_msg = harness.throughput(args.messages, len(PAYLOAD))
                agent_rates.append(rate)
                latencies.extend(lat)
                bytes_per_msg.append(per_msg)
                print(
                    f"run {run + 1}: raw paho {raw_rates[-1]:8.0f} msg/s   agent {rate:8.0f} msg/s"
                )
        finally:
            broker.stop()
    raw_med = statistics.median(raw_rates)
    agent_med = statistics.median(agent_rates)
    lat_sorted = sorted(latencies)
    p50 = lat_sorted[len(lat_sorted) // 2] * 1000
    p95 = lat_sorted[int(len(lat_sorted) * 0.95)] * 1000
    print(f"median raw paho : {raw_med:8.0f} msg/s")
    print(f"median agent    : {agent_med:8.0f} msg/s")
    print(f"ratio agent/raw : {agent_med / raw_med:.2f}")
    print(f"enqueue->PUBACK : p50 {p50:.1f} ms   p95 {p95:.1f} ms")
    print(f"outbox on disk  : {statistics.median(bytes_per_msg):.0f} bytes per queued message")
    return 0


if __name__ == "__main__":
    sys.exit(main())
