"""A disk that fills up: the agent keeps running, never fills the disk itself, keeps the
most important items, counts what it refuses, and drains when the link is back.

The device's state folder is put on a 3 MB tmpfs (mounted by the test: root only) that
another file (a ballast, as recordings on an SD card would be) nearly fills.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from certs.pki import Pki
from edge.inputs import MotionAlarm
from edge.shell.audit_log import verify_file
from firmware_sim.broker import MosquittoBroker
from firmware_sim.harness import (
    AgentHarness,
    SimClock,
    agent_config,
    backend_observer,
    prepare_device,
)
from firmware_sim.link import LinkRelay

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    why = ""
    if os.geteuid() != 0:
        why = "needs root to mount a small tmpfs"
    else:
        command = ["/bin/mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0:
            why = f"cannot mount a tmpfs: {result.stderr.decode().strip()}"
    if why:
        # A machine that may not mount (no root, no CAP_SYS_ADMIN) cannot run this test;
        # that is the sandbox's limit, not a missing install step, so it is a skip.
        pytest.skip(why)
    try:
        yield mount
    finally:
        subprocess.run(["/bin/umount", "-l", str(mount)], check=False)


def test_disk_nearly_full_keeps_alarms_refuses_the_rest_and_drains(
    small_disk: Path, pki: Pki, broker: MosquittoBroker, tmp_path: Path
) -> None:
    relay = LinkRelay(broker.host, broker.port)
    backend = backend_observer(pki, broker.host, broker.port, "devices/SN0001/alarm/#").start()
    setup = prepare_device(pki, "SN0001", tmp_path / "dev")
    base = agent_config(setup, [(relay.host, relay.port)], "en-2020-01-19")
    config = type(base)(
        device=type(base.device)(serial="SN0001", state_dir=small_disk / "state"),
        policy=base.policy,
        broker=base.broker,
        tls=base.tls,
        outbox=base.outbox,
        media=base.media,
        audio=base.audio,
    )
    harness = AgentHarness(setup, config, SimClock())
    noise = np.random.default_rng(1).integers(0, 255, (180, 320, 3), dtype=np.uint8)  # big JPEGs
    try:
        harness.start()
        assert harness.wait_connected(15)
        stat = os.statvfs(small_disk)
        ballast = small_disk / "recordings.bin"
        ballast.write_bytes(os.urandom(stat.f_bavail * stat.f_frsize - 400 * 1024))
        relay.down()
        for _ in range(40):
            harness.put(MotionAlarm(harness.clock.now(), noise))
        agent = harness.agent
        assert agent is not None
        deadline = time.monotonic() + 60
        while agent.outbox.counters().get("refused", 0) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        refused = agent.outbox.counters().get("refused", 0)
        assert refused >= 1, "nothing was refused: the disk never got tight"
        assert os.statvfs(small_disk).f_bavail > 0  # the agent never filled the disk itself
        relay.up()
        assert harness.wait_drained(30)
        got = backend.wait_for(
            lambda ms: sum(m.topic.endswith("alarm/event") for m in ms) >= 40, 15
        )
        assert sum(m.topic.endswith("alarm/event") for m in got) == 40  # every alarm kept
        snapshots = sum(m.topic.endswith("alarm/snapshot") for m in got)
        counters = agent.outbox.counters()
        # each snapshot is sent, or refused, or evicted for an alarm event (the overflow
        # rule), and counted either way
        dropped = counters.get("refused", 0) + counters.get("overflow", 0)
        assert snapshots + dropped + agent.counters["dropped_disk_full"] == 40
        assert harness.errors == []
    finally:
        harness.stop()
        backend.stop()
        relay.close()
    assert verify_file(small_disk / "state" / "audit.jsonl").ok
