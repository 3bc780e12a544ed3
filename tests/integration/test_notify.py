"""The daemon under ``Type=notify``: this test plays systemd with a real datagram socket,
including ``systemctl reload`` (SIGHUP re-reads the config and names the changed keys)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_sim.broker import free_port


def _receive_until(sock: socket.socket, wanted: str, seen: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(wanted in s for s in seen):
        left = deadline - time.monotonic()
        assert left > 0, f"no {wanted} in {seen}"
        sock.settimeout(left)
        seen.append(sock.recv(4096).decode())


def _provision(out: Path) -> None:
    """A device and its broker config, pointed at a free loopback port."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "provision",
            str(out),
            "--broker",
            f"127.0.0.1:{free_port()}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _systemd_socket(tmp_path: Path, abstract: bool = False) -> tuple[socket.socket, str]:
    """The datagram socket systemd would listen on, and the ``NOTIFY_SOCKET`` naming it."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"@edge-notify-test-{os.getpid()}" if abstract else str(tmp_path / "notify.sock")
    notify.bind("\0" + name[1:] if abstract else name)
    return notify, name


@pytest.mark.parametrize("abstract", [False, True])
def test_ready_watchdog_stopping(tmp_path: Path, abstract: bool, mosquitto_binary: str) -> None:
    mosquitto = mosquitto_binary
    out = tmp_path / "dev"
    _provision(out)
    broker = subprocess.Popen(
        [mosquitto, "-c", str(out / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    notify, name = _systemd_socket(tmp_path, abstract)
    env = {**os.environ, "NOTIFY_SOCKET": name}
    env["WATCHDOG_USEC"] = "1000000"
    log_path = tmp_path / "agent.log"
    log = log_path.open("w")
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(out / "agent.toml")],
        env=env,
        stdout=log,
        stderr=log,
    )
    seen: list[str] = []
    try:
        _receive_until(notify, "READY=1", seen, 30)
        _receive_until(notify, "WATCHDOG=1", seen, 10)
        toml = out / "agent.toml"
        toml.write_text(toml.read_text().replace("Front door", "Back door"))
        agent.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "SIGHUP: changed device.device_name" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        assert agent.poll() is None  # a reload never stops the agent
        agent.send_signal(signal.SIGTERM)
        _receive_until(notify, "STOPPING=1", seen, 20)
        assert agent.wait(timeout=20) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
        broker.kill()
        broker.wait(timeout=10)
        notify.close()
        log.close()


def test_ready_while_the_broker_is_unreachable_once_the_first_status_is_queued(
    tmp_path: Path,
) -> None:
    """A camera that boots without network must still tell systemd it is up (or the unit
    fails its start timeout and restarts in a loop): READY once its first status report
    is safely queued."""
    out = tmp_path / "dev"
    _provision(out)  # no broker is started: nothing listens on its port
    notify, name = _systemd_socket(tmp_path)
    env = {**os.environ, "NOTIFY_SOCKET": name}
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(out / "agent.toml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    seen: list[str] = []
    try:
        _receive_until(notify, "READY=1", seen, 30)
        agent.send_signal(signal.SIGTERM)
        _receive_until(notify, "STOPPING=1", seen, 20)
        assert agent.wait(timeout=20) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
        notify.close()
