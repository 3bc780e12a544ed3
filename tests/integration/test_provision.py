"""``python -m edge provision``: idempotent, private files private, and a broker plus the
real daemon started from its output alone exchange the device's first messages."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_sim.broker import free_port


def _provision(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge", "provision", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _snapshot(root: Path) -> dict[Path, tuple[int, bytes]]:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.rglob("*") if p.is_file()}


def test_provision_is_idempotent_private_and_accepted_by_check_config(tmp_path: Path) -> None:
    out = tmp_path / "dev"
    first = _provision(str(out), "--serial", "SN0042")
    assert first.returncode == 0, first.stderr
    before = _snapshot(out)
    second = _provision(str(out), "--serial", "SN0042")
    assert second.returncode == 0, second.stderr
    assert "wrote" not in second.stdout
    assert "kept" in second.stdout
    assert _snapshot(out) == before
    for path in [*out.rglob("*.key"), out / "app-signing-key.PRIVATE-FOR-THE-APP.pem"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700, path.parent
    assert "PRIVATE-FOR-THE-APP" not in (out / "agent.toml").read_text()
    check = subprocess.run(
        [sys.executable, "-m", "edge", "check-config", str(out / "agent.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize(
    "args",
    [["--broker", "nope"], ["--serial", "bad serial!"], ["--ca-dir", "/nonexistent"]],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, args: list[str]) -> None:
    result = _provision(str(tmp_path / "dev"), *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr


def test_daemon_publishes_through_the_provisioned_broker(
    tmp_path: Path, mosquitto_binary: str
) -> None:
    mosquitto = mosquitto_binary
    out = tmp_path / "dev"
    port = free_port()
    assert _provision(str(out), "--broker", f"127.0.0.1:{port}").returncode == 0
    conf = out / "mosquitto.conf"
    conf.write_text(conf.read_text() + "log_type all\n")
    log = (tmp_path / "mosquitto.log").open("w")
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=log, stderr=log)
    agent: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.5)
        agent = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(out / "agent.toml")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline and "devices/SN0001/birth" not in text:
            time.sleep(0.3)
            text = (tmp_path / "mosquitto.log").read_text()
        assert "Received PUBLISH from SN0001" in text, text
        assert "devices/SN0001/birth" in text, text
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGINT)
            agent.wait(timeout=20)
        broker.kill()
        broker.wait(timeout=10)
        log.close()
