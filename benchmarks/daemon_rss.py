"""Benchmark: the daemon's peak RSS while it works.

``python -m edge run`` reads a 1080p video file with motion (through cv2.VideoCapture,
as from a real camera) against a local mutual-TLS Mosquitto: alarms, anonymised
snapshots and event clips (PyAV) are made and sent. VmRSS is sampled from /proc every
0.1 s; the peak and the kernel's VmHWM are printed.

    .venv/bin/python benchmarks/daemon_rss.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from certs.pki import provision
from firmware_sim.broker import BrokerTls, start_mosquitto
from firmware_sim.scene import PlateStyle, render_street

ROOT = Path(__file__).resolve().parents[1]


def make_video(path: Path, seconds: int, fps: int = 10) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (1920, 1080))
    rng = np.random.default_rng(3)
    empty = render_street(rng, 1920, 1080, [], night=False).frame
    scenes = [
        render_street(rng, 1920, 1080, [PlateStyle.US, PlateStyle.EU]).frame for _ in range(3)
    ]
    for i in range(seconds * fps):
        writer.write(scenes[(i // (4 * fps)) % 3] if (i // (2 * fps)) % 2 else empty)
    writer.release()


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki = provision(work / "pki", ["SN0001"])
        broker = start_mosquitto(
            work / "broker", BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
        )
        video = work / "street.avi"
        make_video(video, args.seconds)
        ident = pki.devices["SN0001"]
        config = work / "agent.toml"
        config.write_text(
            f'[device]\nserial = "SN0001"\nstate_dir = "{work / "state"}"\n'
            f'[policy]\nversion = "en-2020-01-19"\n'
            f'[broker]\nendpoints = ["{broker.host}:{broker.port}"]\n'
            f'[tls]\nca = "{pki.ca_cert}"\ncert = "{ident.cert}"\nkey = "{ident.key}"\n'
            f'[media]\nsource = "{video}"\n'
        )
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "edge", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        peak = 0
        hwm = 0
        peak_anon = 0
        peak_file = 0
        deadline = time.monotonic() + args.seconds + 5
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                peak = max(peak, status_kb(proc.pid, "VmRSS"))
                peak_anon = max(peak_anon, status_kb(proc.pid, "RssAnon"))
                peak_file = max(peak_file, status_kb(proc.pid, "RssFile"))
                hwm = status_kb(proc.pid, "VmHWM")
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(20)
            broker.stop()
        print(
            f"daemon peak RSS: {peak / 1024:.1f} MB sampled, VmHWM {hwm / 1024:.1f} MB "
            f"({args.seconds} s of 1080p video with alarms, snapshots and clips)"
        )
        print(
            f"  of which at most {peak_anon / 1024:.1f} MB anonymous (heap, frames) and "
            f"{peak_file / 1024:.1f} MB file-backed (shared libraries, shareable)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
