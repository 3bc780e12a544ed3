"""The real daemon reads a real RTSP camera (GStreamer's RTSP server, tests/rtsp_server.py)
and raises alarms with snapshots through a real Mosquitto set up by ``provision``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_sim.broker import find_mosquitto, free_port
from tests.conftest import running_under_ci

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER = Path(__file__).resolve().parents[1] / "rtsp_server.py"


def _missing(what: str) -> None:
    if running_under_ci():
        pytest.fail(f"{what} is missing (run scripts/setup.sh)")
    pytest.skip(f"{what} is not installed (run scripts/setup.sh)")


@pytest.fixture
def rtsp_url() -> Iterator[str]:
    """rtsp://127.0.0.1:PORT/cam served by a child process, stopped by its pid."""
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        _missing("GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0)")
    port = free_port()
    server = subprocess.Popen(
        [SYSTEM_PYTHON, str(SERVER), str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        yield f"rtsp://127.0.0.1:{port}/cam"
    finally:
        server.kill()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()


@pytest.mark.slow
def test_daemon_raises_alarms_with_snapshots_from_rtsp(tmp_path: Path, rtsp_url: str) -> None:
    mosquitto = find_mosquitto()
    if mosquitto is None:
        _missing("mosquitto")
        return
    out = tmp_path / "dev"
    port = free_port()
    args = ["provision", str(out), "--broker", f"127.0.0.1:{port}", "--source", rtsp_url]
    subprocess.run(
        [sys.executable, "-m", "edge", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )
    conf = out / "mosquitto.conf"
    conf.write_text(conf.read_text() + "log_type all\n")
    log_path = tmp_path / "mosquitto.log"
    log = log_path.open("w")
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log)
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(out / "agent.toml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while "devices/SN0001/alarm/snapshot" not in log_path.read_text():
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
        assert "devices/SN0001/alarm/event" in log_path.read_text()
    finally:
        agent.send_signal(signal.SIGINT)
        agent.wait(timeout=20)
        broker.kill()
        broker.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_daemon_retries_a_dead_camera_and_reconnects_after_a_restart(tmp_path: Path) -> None:
    """No server yet: a clear error and a retry. Then a server, killed and restarted on the
    same port: the daemon counts the gap, reopens it, and keeps its one MQTT session."""
    mosquitto = find_mosquitto()
    if mosquitto is None:
        _missing("mosquitto")
        return
    cam_port, port = free_port(), free_port()
    url = f"rtsp://127.0.0.1:{cam_port}/cam"
    out = tmp_path / "dev"
    args = ["provision", str(out), "--broker", f"127.0.0.1:{port}", "--source", url]
    subprocess.run([sys.executable, "-m", "edge", *args], check=True, capture_output=True)
    conf = out / "mosquitto.conf"
    conf.write_text(conf.read_text() + "log_type all\n")
    log_path, agent_log_path = tmp_path / "mosquitto.log", tmp_path / "agent.log"
    log, agent_log = log_path.open("w"), agent_log_path.open("w")
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log)
    agent = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(out / "agent.toml")],
        stdout=agent_log,
        stderr=agent_log,
    )

    def wait_for(path: Path, text: str, count: int = 1, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while path.read_text().count(text) < count:
            assert time.monotonic() < deadline, path.read_text()
            time.sleep(0.2)

    def serve() -> subprocess.Popen[str]:
        server = subprocess.Popen(
            [SYSTEM_PYTHON, str(SERVER), str(cam_port)], stdout=subprocess.PIPE, text=True
        )
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        server.stdout.close()
        return server

    server: subprocess.Popen[str] | None = None
    try:
        wait_for(agent_log_path, "retrying in")
        assert agent.poll() is None
        server = serve()
        wait_for(log_path, "devices/SN0001/alarm/snapshot")
        server.kill()
        server.wait(timeout=10)
        wait_for(agent_log_path, "camera: stream lost; reconnecting", timeout_s=30)
        before = log_path.read_text().count("devices/SN0001/alarm/snapshot")
        server = serve()
        wait_for(log_path, "devices/SN0001/alarm/snapshot", before + 1)
        assert log_path.read_text().count("New client connected") == 1  # one MQTT session
        assert "Traceback" not in agent_log_path.read_text()
    finally:
        agent.send_signal(signal.SIGINT)
        agent.wait(timeout=20)
        if server is not None:
            server.kill()
            server.wait(timeout=10)
        broker.kill()
        broker.wait(timeout=10)
        log.close()
        agent_log.close()
