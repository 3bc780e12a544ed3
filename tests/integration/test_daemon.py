"""The daemon as an operator runs it: a config file, a real camera source (a video file
made here), a real broker; clear errors for bad configs; a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from certs.pki import Pki
from firmware_sim.broker import MosquittoBroker
from firmware_sim.scene import PlateStyle, render_street
from tests.cli import run_edge
from tests.integration.conftest import observer_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.broker, pytest.mark.timeout(90)]


def _video(path: Path, frames: int = 40) -> Path:
    """A street that is empty, then has a car with a plate drive in: motion."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (640, 360))
    empty = render_street(np.random.default_rng(1), 640, 360, [], night=False).frame
    busy = render_street(
        np.random.default_rng(1), 640, 360, [PlateStyle.EU, PlateStyle.US], night=False
    ).frame
    for i in range(frames):
        writer.write(empty if i < frames // 2 else busy)
    writer.release()
    return path


def _start_daemon(config: Path) -> subprocess.Popen[str]:
    """``python -m edge run --config CONFIG`` as an operator starts it, output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _config(tmp_path: Path, pki: Pki, broker: MosquittoBroker, source: str, **extra: str) -> Path:
    ident = pki.devices["SN0001"]
    text = f"""
[device]
serial = "SN0001"
state_dir = "{tmp_path / "state"}"
status_every_s = {extra.get("status_every_s", "60")}
[policy]
version = "en-2020-01-19"
[broker]
endpoints = ["{broker.host}:{broker.port}"]
keepalive_s = 5
[tls]
ca = "{pki.ca_cert}"
cert = "{ident.cert}"
key = "{extra.get("key", ident.key)}"
[media]
source = "{source}"
clip_fps = 5
"""
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_check_config_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[device]\nserial = "x y"\n[broker]\nport = "x"\n[policy]\nversion = "de-1999"\n'
    )
    result = run_edge("check-config", str(bad))
    assert result.returncode == 2
    assert "broker.port: expected an integer 1..65535, got 'x'" in result.stderr
    assert "device.serial: expected" in result.stderr
    assert "tls.ca: required, missing" in result.stderr
    assert "Traceback" not in result.stderr
    missing = run_edge("check-config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2
    assert "config file not found" in missing.stderr


def test_check_config_refuses_unknown_version_and_readable_key(
    tmp_path: Path, pki: Pki, shared_broker: MosquittoBroker
) -> None:
    key = tmp_path / "open.key"
    key.write_bytes(pki.devices["SN0001"].key.read_bytes())
    os.chmod(key, 0o644)
    config = _config(tmp_path, pki, shared_broker, "sim", key=str(key))
    config.write_text(config.read_text().replace("en-2020-01-19", "de-1999-01-01"))
    result = run_edge("check-config", str(config))
    assert result.returncode == 2
    assert "policy.version: unknown policy version 'de-1999-01-01'" in result.stderr
    assert "tls.key: key file" in result.stderr
    assert "chmod 600" in result.stderr
    run = run_edge("run", "--config", str(config))
    assert run.returncode == 2


def test_daemon_reads_a_video_file_sends_blurred_alarms_and_stops_cleanly(
    tmp_path: Path, pki: Pki, broker: MosquittoBroker
) -> None:
    video = _video(tmp_path / "street.avi")
    config = _config(tmp_path, pki, broker, str(video))
    assert run_edge("check-config", str(config)).returncode == 0
    with observer_for(broker, pki, "devices/SN0001/#") as observer:
        proc = _start_daemon(config)
        try:
            got = observer.wait_for(
                lambda ms: any(m.topic.endswith("alarm/snapshot") for m in ms), 30
            )
            assert any(m.topic.endswith("alarm/snapshot") for m in got), "no alarm from the video"
            time.sleep(1.0)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr
        states = observer.wait_for(
            lambda ms: any(
                json.loads(m.payload).get("state") == "stopped"
                for m in ms
                if m.topic.endswith("availability")
            ),
            5,
        )
        last = [json.loads(m.payload)["state"] for m in states if m.topic.endswith("availability")][
            -1
        ]
        assert last == "stopped"
    for line in stderr.splitlines():
        record = json.loads(line)  # structured logs: one JSON object a line
        assert "b64" not in record["msg"]
    verify = run_edge("audit", "verify", str(tmp_path / "state" / "audit.jsonl"))
    assert verify.returncode == 0, verify.stdout


def test_daemon_with_the_sim_source_sends_its_status_report_at_start_and_after(
    tmp_path: Path, pki: Pki, broker: MosquittoBroker
) -> None:
    """Row 6 telemetry must not depend on the camera: with ``media.source = "sim"`` (the
    default) the daemon used to send its birth and never a status report."""
    config = _config(tmp_path, pki, broker, "sim", status_every_s="1.5")
    with observer_for(broker, pki, "devices/SN0001/telemetry") as observer:
        proc = _start_daemon(config)
        try:
            got = observer.wait_for(lambda ms: len(ms) >= 2, 20)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 0, stderr
    assert len(got) >= 2
    fields = json.loads(got[0].payload)["data"]
    assert fields["serial_number"] == "SN0001"
    assert fields["online_status"] == "online"


def test_daemon_killed_mid_work_restarts_with_nothing_lost(
    tmp_path: Path, pki: Pki, broker: MosquittoBroker
) -> None:
    from edge.shell.audit_log import read_records

    video = _video(tmp_path / "street.avi", frames=60)
    config = _config(tmp_path, pki, broker, str(video))
    with observer_for(broker, pki, "devices/SN0001/#") as observer:
        first = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        observer.wait_for(lambda ms: any(m.topic.endswith("alarm/event") for m in ms), 30)
        first.kill()  # kill -9, mid-work: no goodbye, whatever was not committed is gone
        first.wait(10)
        second = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(8)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        received = {
            json.loads(m.payload)["record_id"]
            for m in observer.snapshot()
            if m.payload and "record_id" in json.loads(m.payload)
        }
    trail = read_records(tmp_path / "state" / "audit.jsonl").records
    queued = {r.record_id for r in trail if r.event.value == "queued"}
    dropped = {
        r.record_id
        for r in trail
        if r.event.value in {"expired", "purged", "dropped", "refused_by_broker"}
    }
    assert queued  # the first run did queue alarms
    assert queued - dropped <= received  # everything committed before the kill was delivered
