"""Benchmark: days of a doorbell's life at high speed: does anything grow or get lost?

The daemon (``edge.cli.daemon.run``, as ``python -m edge run`` runs it: gate, encrypted
outbox, sealed audit trail with rotation and its cap, mutual-TLS transport, its status
timer) runs in a child process of its own, on a simulated clock (``--day-s`` real seconds
per simulated day) against a local Mosquitto; the child puts the camera's inputs on its
queue.
Each simulated hour: a status report, two motion alarms with snapshot and clip, a
diagnostics sample (sent only while consented). Each day: the app grants diagnostics
(a signed receipt, through the broker) and later withdraws it, the link drops once and
is down for two hours, and every other day the broker restarts. The parent samples the
child's RSS and open file descriptors from /proc and the state folder's files at the
start and end of each day, and a backend client with a persistent session counts every
record it receives; at the end, each record the audit trail says was queued must have
arrived, unless the trail says it expired, was purged or dropped.

    .venv/bin/python benchmarks/soak.py [--days 9] [--day-s 15]

Targets (issue 17): RSS growth over the last 6 days <= 2 MB, file descriptors constant,
disk use bounded by the configured caps, 0 messages lost.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from paho.mqtt.enums import MQTTProtocolVersion

from certs.pki import Identity, Pki, provision
from edge.audit import AuditEvent
from edge.cli.daemon import run as run_daemon
from edge.config import AuditConfig, OutboxConfig
from edge.inputs import ButtonPressed, DiagnosticsSampled, MotionAlarm, StatusDue
from edge.policy.receipts import ReceiptBody, sign_receipt
from edge.shell.agent import Agent
from edge.shell.audit_log import read_trail
from firmware_sim.broker import BrokerTls, start_mosquitto
from firmware_sim.device import diagnostics_values
from firmware_sim.harness import SimClock, agent_config, prepare_device
from firmware_sim.link import LinkRelay
from firmware_sim.observer import Observer, client_context
from firmware_sim.scene import PlateStyle, render_street

ROOT = Path(__file__).resolve().parents[1]
SERIAL = "SN0001"
AUDIT = AuditConfig(segment_bytes=128 * 1024, max_bytes=1024 * 1024, keep_days=1)
OUTBOX = OutboxConfig(max_queue_bytes=8 * 1024 * 1024)
GONE = {AuditEvent.EXPIRED, AuditEvent.PURGED, AuditEvent.DROPPED, AuditEvent.REFUSED_BY_BROKER}


# -- the child: one device ---------------------------------------------------------------


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def child(args: argparse.Namespace) -> None:
    """The daemon (``edge.cli.daemon.run``: the agent, its loop, its status timer) on a
    fast clock, with the hardware's inputs put on its queue as the camera would."""
    import numpy as np

    folder = Path(args.pki)
    pki = Pki(folder, folder / "ca.pem", Path(), Path(), Path())
    pki.devices[SERIAL] = Identity(
        folder / "devices" / f"{SERIAL}.pem", folder / "devices" / f"{SERIAL}.key"
    )
    relay = LinkRelay(args.host, args.port)
    setup = prepare_device(pki, SERIAL, Path(args.work))
    config = agent_config(setup, [(relay.host, relay.port)], "en-2023-01-10", audio=False)
    config = replace(config, audit=AUDIT, outbox=OUTBOX)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    clock = SimClock(86400.0 / args.day_s, start)
    started: list[Agent] = []
    stop = threading.Event()
    daemon = threading.Thread(
        target=run_daemon, args=(config, stop), kwargs={"clock": clock, "on_start": started.append}
    )
    daemon.start()
    while not started:
        time.sleep(0.01)
    agent = started[0]
    rng = np.random.default_rng(7)
    frames = [render_street(rng, 320, 180, [PlateStyle.EU]).frame for _ in range(4)]

    def at(hours: float) -> None:
        due = start + timedelta(hours=hours)
        while clock.now() < due:
            time.sleep(0.005)

    def idle(timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if agent.is_idle():
                time.sleep(0.05)  # a PUBACK handled in this very batch is committed next
                if agent.is_idle():
                    return True
            time.sleep(0.02)
        return False

    for day in range(args.days):
        say(day=day, phase="start", sim=clock.now().isoformat())
        for hour in range(24):
            at(day * 24 + hour)
            now = clock.now()
            agent.events.put(StatusDue(now))
            for k in range(2):
                frame = frames[(hour + k) % len(frames)]
                agent.events.put(MotionAlarm(now, frame, tuple(frames[:3])))
            agent.events.put(DiagnosticsSampled(now, diagnostics_values(rng)))
            if hour == 2:
                body = ReceiptBody(SERIAL, "diagnostics", "en-2023-01-10", now, day + 1)
                receipt = sign_receipt(setup.app_key, body).to_json()
                command = {"id": f"grant-{day}", "command": "consent.grant", "receipt": receipt}
                payload = json.dumps(command).encode()
                say(publish=f"devices/{SERIAL}/cmd", payload=base64.b64encode(payload).decode())
            if hour == 14:
                agent.events.put(ButtonPressed(now))  # withdraws every consent held
            if hour == 8:
                relay.drop()
            if hour == 18:
                relay.down()
            if hour == 20:
                relay.up()
            if hour == 12 and day % 2 == 1:
                say(restart_broker=True)
        at((day + 1) * 24)
        say(day=day, phase="end", sim=clock.now().isoformat())
    relay.up()
    drained = idle(60)
    counters = {k: v for k, v in agent.counters.items() if v}
    stop.set()
    daemon.join(30)
    relay.close()
    say(done=True, drained=drained, counters=counters)


# -- the parent: broker, backend, measurements ------------------------------------------


def _proc(pid: int) -> tuple[float, int]:
    rss_kb = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def _sizes(state: Path) -> dict[str, int]:
    def size(name: str) -> int:
        path = state / name
        return path.stat().st_size if path.exists() else 0

    audit = sum(p.stat().st_size for p in state.glob("audit*.jsonl"))
    return {
        "queue": size("outbox.sqlite3"),
        "wal": size("outbox.sqlite3-wal"),
        "audit": audit,
        "segments": len(list(state.glob("audit.*.jsonl"))),
    }


def parent(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        pki = provision(work / "pki", [SERIAL], observers=("observer",))
        tls = BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
        broker = start_mosquitto(work / "broker", tls, persistence=True)
        ident = pki.observers["observer"]
        context = client_context(pki.ca_cert, ident.cert, ident.key)
        backend = Observer(
            broker.host,
            broker.port,
            context,
            "soak-backend",
            f"devices/{SERIAL}/#",
            protocol=MQTTProtocolVersion.MQTTv311,
            persistent=True,
            check_contract=False,
        ).start()
        command = [
            sys.executable,
            __file__,
            "--child",
            "--pki",
            str(work / "pki"),
            "--work",
            str(work / "device"),
            "--host",
            broker.host,
            "--port",
            str(broker.port),
            "--days",
            str(args.days),
            "--day-s",
            str(args.day_s),
        ]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)  # noqa: S603
        state = work / "device" / "state"
        rows: list[tuple[str, float, int, dict[str, int]]] = []  # phase, RSS MB, fds, sizes
        queued: set[str] = set()
        gone: set[str] = set()
        cleared: set[str] = set()
        acked: set[str] = set()
        done: dict[str, object] = {}
        restarts = 0

        def harvest() -> None:
            for segment in read_trail(state):
                for record in segment.records:
                    if (
                        record.event is AuditEvent.QUEUED
                        and record.detail == "clear retained topic"
                    ):
                        cleared.add(record.record_id)  # an empty payload: no record_id on the wire
                    elif record.event is AuditEvent.QUEUED and record.record_id:
                        queued.add(record.record_id)
                    elif record.event is AuditEvent.ACKED:
                        acked.add(record.record_id)
                    elif record.event in GONE and record.record_id:
                        gone.add(record.record_id)

        if proc.stdout is None:
            raise SystemExit("the device process has no output pipe")
        print(f"soak: {args.days} simulated days, {args.day_s} s each, one doorbell", flush=True)
        print(f"{'day':>4} {'phase':>5} {'RSS MB':>7} {'fds':>4} {'queue':>8} {'WAL':>8} "
              f"{'audit':>8} {'segs':>4}", flush=True)  # fmt: skip
        for line in proc.stdout:
            event = json.loads(line)
            if "publish" in event:
                payload = base64.b64decode(str(event["payload"]))
                threading.Thread(
                    target=backend.publish, args=(str(event["publish"]), payload), daemon=True
                ).start()
            elif "restart_broker" in event:
                broker.restart()
                restarts += 1
            elif "day" in event:
                rss, fds = _proc(proc.pid)
                sizes = _sizes(state)
                harvest()
                rows.append((str(event["phase"]), rss, fds, sizes))
                print(f"{event['day']:>4} {event['phase']:>5} {rss:7.1f} {fds:>4} "
                      f"{sizes['queue']:>8} {sizes['wal']:>8} {sizes['audit']:>8} "
                      f"{sizes['segments']:>4}", flush=True)  # fmt: skip
            elif "done" in event:
                done = event
        proc.wait(60)
        time.sleep(1.0)
        harvest()
        received = set()
        for message in backend.snapshot():
            if message.payload and message.topic.split("/")[-1] not in {"availability"}:
                body = json.loads(message.payload)
                received.add(str(body.get("record_id")))
        backend.stop()
        broker.stop()
    lost = queued - received - gone
    if lost:
        print(f"lost record ids: {sorted(lost)[:10]}")
    ends = [row for row in rows if row[0] == "end"]
    base = ends[max(0, len(ends) - 7)]  # the end of the day before the last six
    growth = ends[-1][1] - base[1]
    fd_counts = sorted({row[2] for row in ends})
    audit_max = max(row[3]["audit"] for row in rows)
    print(f"\nbroker restarts: {restarts}; drained at the end: {done.get('drained')}")
    print(f"records queued {len(queued)}, received {len(queued & received)}, "
          f"expired/purged/dropped {len(queued & gone)}, lost {len(lost)}")  # fmt: skip
    days = len(ends) - 1 - max(0, len(ends) - 7)
    print(
        f"retained topics cleared {len(cleared)}, acknowledged by the broker {len(cleared & acked)}"
    )
    print(f"RSS growth over the last {days} days: {growth:+.2f} MB (target <= 2)")
    print(f"open fds at day ends: {fd_counts} (target: one value)")
    print(f"audit trail peak {audit_max} bytes, cap {AUDIT.max_bytes} + one segment "
          f"{AUDIT.segment_bytes}; queue cap {OUTBOX.max_queue_bytes}")  # fmt: skip
    print(f"agent counters: {done.get('counters')}")
    return 0 if not lost and cleared <= acked and done.get("drained") else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=9)
    parser.add_argument("--day-s", type=float, default=15.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pki", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    return parent(args)


if __name__ == "__main__":
    raise SystemExit(main())
