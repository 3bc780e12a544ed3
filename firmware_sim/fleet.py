"""Shell: ``python -m firmware_sim fleet --devices N``: N simulated devices on one broker.

Each device is a real agent (policy gate, encrypted outbox, audit trail, transport) with
its own certificate and serial, in this process. They connect, each publishes
``--messages`` status reports, and an independent observer counts what arrived per
device: connected / sent / delivered / lost. Without ``--broker`` a local mutual-TLS
Mosquitto is started with throwaway certificates.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from certs.pki import provision
from edge.inputs import StatusDue
from firmware_sim.broker import BrokerTls, start_mosquitto
from firmware_sim.errors import SimError
from firmware_sim.harness import (
    AgentHarness,
    SimClock,
    agent_config,
    backend_observer,
    prepare_device,
)

MAX_DEVICES = 5000


@dataclass
class FleetResult:
    devices: int
    connected: int
    sent: int
    delivered: int
    lost: int
    duplicates: int
    connect_s: float
    run_s: float
    msgs_per_s: float
    peak_rss_mb: float
    cpu_s: float
    per_device: dict[str, tuple[bool, int, int]]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fleet_run(workdir: Path, devices: int, messages: int, progress: bool = True) -> FleetResult:
    if not 1 <= devices <= MAX_DEVICES:
        raise SimError(f"--devices: expected 1..{MAX_DEVICES}, got {devices}")
    serials = [f"FLEET{i:05d}" for i in range(devices)]
    t0 = time.monotonic()
    pki = provision(workdir / "pki", serials, observers=("observer",), days=2)
    if progress:
        print(f"  {devices} device certificates ready in {time.monotonic() - t0:.1f} s", flush=True)
    broker = start_mosquitto(
        workdir / "broker", BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
    )
    observer = backend_observer(pki, broker.host, broker.port, "devices/+/telemetry").start()
    harnesses: list[AgentHarness] = []
    cpu0 = _cpu_s()
    try:
        start = time.monotonic()
        for i, serial in enumerate(serials):
            setup = prepare_device(pki, serial, workdir / "devices" / serial)
            config = agent_config(
                setup,
                [(broker.host, broker.port)],
                "en-2020-01-19",
                keepalive_s=60,
                backoff_max_s=5.0,
            )
            harness = AgentHarness(setup, config, SimClock(), synchronous="NORMAL")
            harness.start(tick_s=1.0)
            harnesses.append(harness)
            if progress and (i + 1) % 100 == 0:
                print(f"  started {i + 1}/{devices} agents", flush=True)
        deadline = time.monotonic() + 60 + devices * 0.05
        while time.monotonic() < deadline:
            up = sum(1 for h in harnesses if h.agent is not None and h.agent.session.connected)
            if up == devices:
                break
            time.sleep(0.2)
        connect_s = time.monotonic() - start
        connected = {
            h.setup.serial for h in harnesses if h.agent is not None and h.agent.session.connected
        }
        if progress:
            print(
                f"  {len(connected)}/{devices} connected over mutual TLS in {connect_s:.1f} s",
                flush=True,
            )
        run0 = time.monotonic()
        for harness in harnesses:
            for _ in range(messages):
                harness.put(StatusDue(harness.clock.now()))
        expected = devices * messages
        observer.wait_for(lambda ms: len(ms) >= expected, timeout_s=60 + devices * messages * 0.005)
        run_s = time.monotonic() - run0
        for harness in harnesses:
            harness.wait_drained(2)
        time.sleep(0.5)
        got: Counter[str] = Counter()
        ids: Counter[str] = Counter()
        for message in observer.snapshot():
            serial = message.topic.split("/")[1]
            record_id = json.loads(message.payload)["record_id"]
            ids[record_id] += 1
            if ids[record_id] == 1:
                got[serial] += 1
        per_device = {s: (s in connected, messages, got[s]) for s in serials}
        delivered = sum(got.values())
        return FleetResult(
            devices=devices,
            connected=len(connected),
            sent=expected,
            delivered=delivered,
            lost=expected - delivered,
            duplicates=sum(c - 1 for c in ids.values()),
            connect_s=connect_s,
            run_s=run_s,
            msgs_per_s=delivered / run_s if run_s > 0 else 0.0,
            peak_rss_mb=_rss_mb(),
            cpu_s=_cpu_s() - cpu0,
            per_device=per_device,
        )
    finally:
        stoppers = [threading.Thread(target=h.stop) for h in harnesses]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(30)
        observer.stop()
        broker.stop()


def run_fleet(args: argparse.Namespace) -> int:
    if args.broker:
        raise SimError("fleet against an external broker is not supported yet: omit --broker")
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        result = fleet_run(Path(args.out) if args.out else Path(tmp), args.devices, args.messages)
    worst = sorted(result.per_device.items(), key=lambda kv: kv[1][2] - kv[1][1])[:5]
    print(
        f"devices {result.devices}  connected {result.connected}  sent {result.sent}  "
        f"delivered {result.delivered}  lost {result.lost}  duplicates {result.duplicates}"
    )
    print(
        f"connect all: {result.connect_s:.1f} s   publish+deliver: {result.run_s:.1f} s "
        f"({result.msgs_per_s:.0f} msg/s)   peak RSS {result.peak_rss_mb:.0f} MB   "
        f"CPU {result.cpu_s:.1f} s"
    )
    print("per device (serial: connected sent delivered), fewest delivered first:")
    for serial, (up, sent, delivered) in worst:
        print(f"  {serial}: {'yes' if up else 'no'} {sent} {delivered}")
    return 0 if result.lost == 0 and result.connected == result.devices else 1
