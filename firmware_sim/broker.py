"""Shell: start and stop a local Mosquitto with mutual TLS, for tests, the demo and HIL runs.

The broker is the real Debian ``mosquitto`` (2.0.x) run in the foreground as our child
process, with a config we write: a TLS listener on a loopback address only,
``require_certificate true``, ``use_identity_as_username true`` (CN = device serial),
``allow_anonymous false`` and an ACL that confines each device to its own prefix.
We stop exactly the process we started, by its pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from certs.acl import mosquitto_acl
from firmware_sim.errors import SimError

LOOPBACK = "127.0.0.1"


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (Debian puts it in /usr/sbin, often not on PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class BrokerTls:
    """The files the broker's TLS listener needs."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    crl: Path | None = None


@dataclass
class MosquittoBroker:
    """A running Mosquitto child process; use ``start_mosquitto`` to make one."""

    host: str
    port: int
    workdir: Path
    tls: BrokerTls
    observers: tuple[str, ...]
    persistence: bool
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.workdir / "mosquitto.log"

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def write_config(self) -> None:
        acl_path = self.workdir / "acl"
        acl_path.write_text(mosquitto_acl(list(self.observers)))
        lines = [
            "# Written by firmware_sim.broker: mutual TLS only, loopback only.",
            "per_listener_settings false",
            "allow_anonymous false",
            f"acl_file {acl_path}",
            f"listener {self.port} {self.host}",
            "protocol mqtt",
            f"cafile {self.tls.ca_cert}",
            f"certfile {self.tls.server_cert}",
            f"keyfile {self.tls.server_key}",
            "require_certificate true",
            "use_identity_as_username true",
            "tls_version tlsv1.2",
            # Nagle off: connect drops from ~50 ms to ~8 ms (design.md §4).
            "set_tcp_nodelay true",
            "max_inflight_messages 0",
            "max_queued_messages 100000",
            "max_queued_bytes 0",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
        ]
        if self.tls.crl is not None:
            lines.append(f"crlfile {self.tls.crl}")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        else:
            lines.append("persistence false")
        if os.geteuid() == 0:
            # As root, mosquitto drops to user 'mosquitto' and can no longer read our key.
            lines.append("user root")
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until its TLS port accepts connections."""
        binary = find_mosquitto()
        if binary is None:
            raise SimError(
                "mosquitto is not installed (run scripts/setup.sh, or apt-get install mosquitto)"
            )
        self.write_config()
        offset = len(self.log_text())
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our own config file
            [binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.workdir,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise SimError(
                    f"mosquitto exited with code {self.process.returncode} at start-up:\n"
                    f"{err}{self.log_text()[offset:]}"
                )
            if "running" in self.log_text()[offset:] and _port_open(self.host, self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise SimError(
            f"mosquitto did not accept connections on {self.host}:{self.port} within "
            f"{timeout_s:.0f} s; log:\n{self.log_text()[offset:]}"
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the process we started (SIGTERM, then SIGKILL after ``timeout_s``)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)
        if proc.stderr is not None:
            proc.stderr.close()

    def kill(self) -> None:
        """Kill -9: the broker dies without closing anything cleanly."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def reload(self) -> None:
        """Re-read the ACL and CRL (SIGHUP)."""
        if self.process is not None:
            self.write_config()
            self.process.send_signal(signal.SIGHUP)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def start_mosquitto(
    workdir: Path,
    tls: BrokerTls,
    observers: tuple[str, ...] = ("observer",),
    port: int | None = None,
    persistence: bool = False,
) -> MosquittoBroker:
    """Write a config into ``workdir``, start Mosquitto on a free loopback port, return it.

    Raises:
        SimError: mosquitto is missing, exits at start-up, or never accepts connections
            (the message carries the broker log).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    broker = MosquittoBroker(
        host=LOOPBACK,
        port=port if port is not None else free_port(),
        workdir=workdir,
        tls=tls,
        observers=observers,
        persistence=persistence,
    )
    broker.start()
    return broker
