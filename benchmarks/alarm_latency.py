"""Benchmark: alarm -> PUBACK latency at 1080p.

The real agent (in-process) gets 1080p street frames with plates as motion
   alarms, one every 0.5 s; for each, the time from the alarm to the PUBACK of its
   anonymised snapshot (from the agent's audit trail) is taken. Clips are off here so the
   figure is the snapshot path (detect, blur, JPEG, gate, outbox, TLS, PUBACK).

    .venv/bin/python benchmarks/alarm_latency.py [--alarms 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from certs.pki import provision
from edge.inputs import MotionAlarm
from edge.shell.audit_log import read_records
from firmware_sim.broker import BrokerTls, start_mosquitto
from firmware_sim.harness import AgentHarness, SimClock, agent_config, prepare_device
from firmware_sim.scene import PlateStyle, render_street


def latency(work: Path, host: str, port: int, alarms: int) -> list[float]:
    """Seconds from each motion alarm to the PUBACK of its snapshot (the i-th snapshot
    acknowledged belongs to the i-th alarm: one snapshot per alarm, 0.5 s apart)."""
    pki = provision(work / "pki", ["SN0001"])
    setup = prepare_device(pki, "SN0001", work / "lat")
    harness = AgentHarness(setup, agent_config(setup, [(host, port)], "en-2020-01-19"), SimClock())
    agent = harness.start()
    harness.wait_connected()
    rng = np.random.default_rng(7)
    styles = [PlateStyle.US, PlateStyle.EU, PlateStyle.THAI]
    frames = [render_street(rng, 1920, 1080, styles).frame for _ in range(5)]
    sent: list[datetime] = []
    for i in range(alarms):
        sent.append(harness.clock.now())
        harness.put(MotionAlarm(sent[-1], frames[i % len(frames)]))
        time.sleep(0.5)
    harness.wait_drained(60)
    records = read_records(agent.audit.path).records
    harness.stop()
    acked = [
        datetime.fromisoformat(r.time)
        for r in records
        if r.event.value == "acked" and r.topic.endswith("alarm/snapshot")
    ]
    return [(done - at).total_seconds() for at, done in zip(sent, acked, strict=True)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alarms", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki = provision(work / "pki", ["SN0001"])
        broker = start_mosquitto(
            work / "broker", BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
        )
        try:
            lat = sorted(latency(work, broker.host, broker.port, args.alarms))
            p50, p95 = statistics.median(lat) * 1000, lat[int(len(lat) * 0.95)] * 1000
            print(f"motion alarm -> snapshot PUBACK at 1080p: p50 {p50:.0f} ms, p95 {p95:.0f} ms")
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
