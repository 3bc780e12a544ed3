"""Shell: ``python -m firmware_sim fleet --devices N``: N simulated devices on one broker.

Each device is a real agent (policy gate, encrypted outbox, audit trail, transport) with
its own certificate and serial. paho waits on sockets with ``select()``, which cannot
watch a descriptor numbered 1024 or more, and each agent holds about seven (socket,
socket pair, SQLite database, WAL and shared memory, audit trail): so devices run in
worker processes of at most ``PER_WORKER`` agents each, as separate devices would.

They connect, each publishes ``--messages`` status reports, and an independent observer
counts what arrived per device: connected / sent / delivered / lost. Without
``--broker`` a local mutual-TLS Mosquitto is started with throwaway certificates.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import random
import resource
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from paho.mqtt.enums import MQTTProtocolVersion

from certs.acl import nats_accounts
from certs.pki import Identity, Pki, provision
from edge.inputs import StatusDue
from firmware_sim.broker import BrokerTls, MosquittoBroker, start_mosquitto
from firmware_sim.errors import SimError
from firmware_sim.harness import (
    AgentHarness,
    SimClock,
    agent_config,
    backend_observer,
    prepare_device,
)
from firmware_sim.nats_cluster import (
    JS_API_TIMEOUT,
    NatsCluster,
    choose_victim,
    start_nats_cluster,
)
from firmware_sim.observer import Observer, client_context

MAX_DEVICES = 5000
PER_WORKER = 100


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
    # cluster mode: seconds from the stop of a node until each device's next publish was
    # acknowledged, for the devices on the stopped node (failover) and on the others (stall)
    failover_s: list[float]
    stall_s: list[float] = field(default_factory=list)
    # cluster mode: the node stopped, the devices on it, what it led in JetStream
    killed: tuple[str, int, tuple[str, ...]] | None = None
    server: str = ""  # cluster mode: the nats-server version
    stop: str = "kill"


def _usage() -> tuple[float, float]:
    """(CPU seconds, peak RSS MB) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    return cpu, max(own.ru_maxrss, kids.ru_maxrss) / 1024


def _publishing_again(
    harnesses: list[AgentHarness], port_at_half: dict[str, int], killed_port: int, kill_at: float
) -> list[tuple[bool, float]]:
    """Each device publishes one status right after the kill; per device: (was it on the
    killed node, seconds from the kill until that status was acknowledged by the broker).

    This is "publishing again", not "connected again": a device on a surviving node can
    stay connected and still wait seconds for an acknowledgement while a stream leader is
    re-elected, and a device that reconnected may still wait for its session."""
    for harness in harnesses:
        harness.put(StatusDue(harness.clock.now()))
    waiting = {h.setup.serial: h for h in harnesses}
    found: list[tuple[bool, float]] = []
    deadline = time.monotonic() + 90
    while waiting and time.monotonic() < deadline:
        for serial, harness in list(waiting.items()):
            if harness.agent is not None and harness.agent.is_idle():
                found.append((port_at_half.get(serial) == killed_port, time.monotonic() - kill_at))
                del waiting[serial]
        time.sleep(0.01)
    found += [(port_at_half.get(s) == killed_port, float("inf")) for s in waiting]
    return found


def _worker(
    pki_dir: str,
    serials: list[str],
    endpoints: list[tuple[str, int]],
    messages: int,
    workdir: str,
    go: multiprocessing.synchronize.Event,
    results: multiprocessing.queues.Queue[object],
    kill_at: multiprocessing.sharedctypes.Synchronized[float] | None = None,
    go_again: multiprocessing.synchronize.Event | None = None,
    killed_port: multiprocessing.sharedctypes.Synchronized[int] | None = None,
) -> None:
    """One worker process: its agents connect, wait for ``go``, publish, drain, stop.

    With ``kill_at``/``go_again`` (cluster mode) it publishes half the messages, waits
    while the parent stops a node, reports each device's time until it publishes again
    (``_publishing_again``, on the shared CLOCK_MONOTONIC), then publishes the rest."""
    directory = Path(pki_dir)
    pki = Pki(
        directory,
        directory / "ca.pem",
        directory / "ca.key",
        directory / "server.pem",
        directory / "server.key",
    )
    for serial in serials:
        pki.devices[serial] = Identity(
            directory / "devices" / f"{serial}.pem", directory / "devices" / f"{serial}.key"
        )
    harnesses: list[AgentHarness] = []
    for index, serial in enumerate(serials):
        setup = prepare_device(pki, serial, Path(workdir) / serial)
        shift = int(serial[-5:]) % len(endpoints)  # spread devices over the nodes
        order = endpoints[shift:] + endpoints[:shift]
        del index
        config = agent_config(setup, order, "en-2020-01-19", keepalive_s=60, backoff_max_s=2.0)
        harness = AgentHarness(setup, config, SimClock(), synchronous="NORMAL")
        harness.start(tick_s=1.0)
        harnesses.append(harness)
    for harness in harnesses:
        harness.wait_connected(60)
    connected = [
        h.setup.serial for h in harnesses if h.agent is not None and h.agent.session.connected
    ]
    results.put(("connected", connected))
    go.wait(300)
    first = messages // 2 if go_again is not None else messages
    for harness in harnesses:
        for _ in range(first):
            harness.put(StatusDue(harness.clock.now()))
    if go_again is not None and kill_at is not None and killed_port is not None:
        for harness in harnesses:
            harness.wait_drained(60)
        port_at_half = {
            h.setup.serial: h.agent.session.endpoint.port
            for h in harnesses
            if h.agent is not None and h.agent.session.connected
        }
        results.put(("half", dict(Counter(port_at_half.values()))))
        go_again.wait(300)
        results.put(
            (
                "failover",
                _publishing_again(harnesses, port_at_half, killed_port.value, kill_at.value),
            )
        )
        for harness in harnesses:
            for _ in range(messages - first - 1):
                harness.put(StatusDue(harness.clock.now()))
    for harness in harnesses:
        harness.wait_drained(60)
    results.put(("drained", len(serials)))
    go.clear()
    stoppers = [threading.Thread(target=h.stop) for h in harnesses]
    for thread in stoppers:
        thread.start()
    for thread in stoppers:
        thread.join(30)


STOPS = ("kill", "term")


def fleet_run(
    workdir: Path,
    devices: int,
    messages: int,
    progress: bool = True,
    cluster: bool = False,
    kill: str = "random",
    stop: str = "kill",
    nats_binary: str | None = None,
    seed: int | None = None,
    js_api_timeout: str = JS_API_TIMEOUT,
) -> FleetResult:
    """Run the fleet; with ``cluster``, stop the node chosen by ``kill`` (a role, see
    ``choose_victim``) with SIGKILL (``stop="kill"``) or SIGTERM (``"term"``: NATS hands
    its leaderships over first) after half the messages.

    Raises:
        SimError: bad arguments, or the broker or cluster cannot start.
    """
    if not 1 <= devices <= MAX_DEVICES:
        raise SimError(f"--devices: expected 1..{MAX_DEVICES}, got {devices}")
    if stop not in STOPS:
        raise SimError(f"--stop: expected one of {', '.join(STOPS)}, got {stop!r}")
    if cluster and messages < 3:
        raise SimError("--messages: a cluster run needs at least 3 (before, at and after the stop)")
    rng = random.Random(seed)  # noqa: S311 - which node to stop, not cryptography
    serials = [f"FLEET{i:05d}" for i in range(devices)]
    t0 = time.monotonic()
    pki = provision(workdir / "pki", serials, observers=("observer",), days=2)
    if progress:
        print(f"  {devices} device certificates ready in {time.monotonic() - t0:.1f} s", flush=True)
    tls = BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
    nats: NatsCluster | None = None
    broker: MosquittoBroker | None = None
    names: list[str] = []
    planned = backend_name = ""
    if cluster:
        ident = pki.observers["observer"]
        nats = start_nats_cluster(
            workdir / "nats",
            tls,
            nats_accounts(serials, ["observer"]),
            warm_up=(client_context(pki.ca_cert, ident.cert, ident.key), "warm-up"),
            binary=nats_binary,
            js_api_timeout=js_api_timeout,
        )
        names = [node.name for node in nats.nodes]
        planned = choose_victim(kill, names, nats.stream_leaders(), rng)  # checked again later
        if progress:
            print(f"  nats-server {nats.version_text} ({nats.binary})", flush=True)
        endpoints = nats.endpoints()
        # The backend sits on a node that is not about to be stopped.
        backend = next(n for n in nats.nodes if n.name != planned)
        backend_name = backend.name
        observer = Observer(
            nats.host,
            backend.mqtt_port,
            client_context(pki.ca_cert, ident.cert, ident.key),
            "observer",
            "devices/+/telemetry",
            protocol=MQTTProtocolVersion.MQTTv311,
            persistent=True,
        ).start()
    else:
        broker = start_mosquitto(workdir / "broker", tls)
        endpoints = [(broker.host, broker.port)]
        observer = backend_observer(pki, broker.host, broker.port, "devices/+/telemetry").start()
    context = multiprocessing.get_context("spawn")
    go = context.Event()
    go_again = context.Event() if cluster else None
    kill_at = context.Value("d", 0.0) if cluster else None
    killed_port = context.Value("i", 0) if cluster else None
    failover: list[float] = []
    stall: list[float] = []
    killed: tuple[str, int, tuple[str, ...]] | None = None
    results: multiprocessing.queues.Queue[object] = context.Queue()
    chunks = [serials[i : i + PER_WORKER] for i in range(0, devices, PER_WORKER)]
    workers = [
        context.Process(
            target=_worker,
            args=(
                str(pki.directory),
                chunk,
                endpoints,
                messages,
                str(workdir / "devices"),
                go,
                results,
                kill_at,
                go_again,
                killed_port,
            ),
            daemon=True,
        )
        for chunk in chunks
    ]
    cpu0, _ = _usage()
    try:
        start = time.monotonic()
        for worker in workers:
            worker.start()
        connected: set[str] = set()
        for _ in workers:
            message = results.get(timeout=300)
            if isinstance(message, tuple) and message[0] == "connected":
                connected.update(message[1])
                if progress:
                    print(f"  {len(connected)}/{devices} connected over mutual TLS", flush=True)
        connect_s = time.monotonic() - start
        expected = len(connected) * messages
        run0 = time.monotonic()
        go.set()
        if nats is not None and go_again is not None and kill_at is not None:
            on_port: Counter[int] = Counter()
            for _ in workers:
                message = results.get(timeout=300)  # first half drained
                if isinstance(message, tuple) and message[0] == "half":
                    on_port.update(message[1])
            leaders = nats.stream_leaders()
            victim_name = choose_victim(kill, names, leaders, rng)
            if victim_name == backend_name:  # leadership moved onto the backend's node
                victim_name = planned
            victim = next(n for n in nats.nodes if n.name == victim_name)
            led = sorted(what for what, name in leaders.items() if name == victim.name)
            if killed_port is not None:
                killed_port.value = victim.mqtt_port
            kill_at.value = time.monotonic()
            if stop == "kill":
                nats.kill_node(victim)
            else:
                nats.terminate_node(victim)  # the measurement starts now, not at its exit
            killed_name = victim.name
            killed = (victim.name, on_port[victim.mqtt_port], tuple(led))
            if progress:
                spread = ", ".join(f"{n.name}: {on_port[n.mqtt_port]}" for n in nats.nodes)
                print(
                    f"  devices per node ({spread}); node {killed_name} stopped by "
                    f"{'SIGKILL' if stop == 'kill' else 'SIGTERM'} "
                    f"(it led: {', '.join(led) or 'nothing'})",
                    flush=True,
                )
            go_again.set()
            for _ in workers:
                message = results.get(timeout=300)
                if isinstance(message, tuple) and message[0] == "failover":
                    for on_victim, seconds in message[1]:
                        (failover if on_victim else stall).append(seconds)
            nats.stop_node(victim)  # reaps a node stopped by SIGTERM
            nats.start_node(victim)  # the node comes back while the rest is sent
            if progress:
                print(f"  node {killed_name} restarted", flush=True)
        observer.wait_for(
            lambda ms: len(ms) >= devices * messages, timeout_s=60 + devices * messages * 0.01
        )
        run_s = time.monotonic() - run0
        for _ in workers:
            results.get(timeout=300)
        time.sleep(0.5)
        got: Counter[str] = Counter()
        ids: Counter[str] = Counter()
        for message in observer.snapshot():
            serial = message.topic.split("/")[1]
            record_id = json.loads(message.payload)["record_id"]
            ids[record_id] += 1
            if ids[record_id] == 1:
                got[serial] += 1
        for worker in workers:
            worker.join(60)
        cpu1, rss = _usage()
        delivered = sum(got.values())
        sent = devices * messages
        return FleetResult(
            devices=devices,
            connected=len(connected),
            sent=sent,
            delivered=delivered,
            lost=sent - delivered,
            duplicates=sum(c - 1 for c in ids.values()),
            connect_s=connect_s,
            run_s=run_s,
            msgs_per_s=min(delivered, expected) / run_s if run_s > 0 else 0.0,
            peak_rss_mb=rss,
            cpu_s=cpu1 - cpu0,
            per_device={s: (s in connected, messages, got[s]) for s in serials},
            failover_s=sorted(failover),
            stall_s=sorted(stall),
            killed=killed,
            server=nats.version_text if nats is not None else "",
            stop=stop,
        )
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        observer.stop()
        if broker is not None:
            broker.stop()
        if nats is not None:
            nats.stop()


def summarize(seconds: list[float]) -> str:
    """``n, p50, p95, max`` of sorted durations (nearest rank), ``inf`` for never."""
    if not seconds:
        return "no devices"
    ordered = sorted(seconds)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    return (
        f"{len(ordered)} devices, p50 {rank(0.5):.2f} s, p95 {rank(0.95):.2f} s, "
        f"max {ordered[-1]:.2f} s"
    )


def run_fleet(args: argparse.Namespace) -> int:
    if args.broker:
        raise SimError("fleet against an external broker is not supported yet: omit --broker")
    with tempfile.TemporaryDirectory(prefix="fleet-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        result = fleet_run(
            out,
            args.devices,
            args.messages,
            cluster=args.cluster,
            kill=args.kill,
            stop=args.stop,
            seed=args.seed,
            js_api_timeout=args.js_api_timeout,
        )
    worst = sorted(result.per_device.items(), key=lambda kv: kv[1][2] - kv[1][1])[:5]
    print(
        f"devices {result.devices}  connected {result.connected}  sent {result.sent}  "
        f"delivered {result.delivered}  lost {result.lost}  duplicates {result.duplicates}"
    )
    print(
        f"connect all: {result.connect_s:.1f} s   publish+deliver: {result.run_s:.1f} s "
        f"({result.msgs_per_s:.0f} msg/s)   peak RSS per worker {result.peak_rss_mb:.0f} MB   "
        f"CPU {result.cpu_s:.1f} s (workers: {-(-result.devices // PER_WORKER)})"
    )
    if result.killed is not None:
        name, _, led = result.killed
        signal_name = "SIGKILL" if result.stop == "kill" else "SIGTERM"
        print(
            f"nats-server {result.server}: node {name} stopped by {signal_name} "
            f"(it led: {', '.join(led) or 'no JetStream stream'}); kill -> first acknowledged "
            "publish:"
        )
        print(f"  devices on the stopped node: {summarize(result.failover_s)}")
        print(f"  devices on the other nodes:  {summarize(result.stall_s)}")
    print("per device (serial: connected sent delivered), fewest delivered first:")
    for serial, (up, sent, delivered) in worst:
        print(f"  {serial}: {'yes' if up else 'no'} {sent} {delivered}")
    return 0 if result.lost == 0 and result.connected == result.devices else 1
