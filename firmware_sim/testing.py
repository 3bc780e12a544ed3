"""Shell: simulated doorbells for a backend team's own MQTT integration tests.

The public API of the ``firmware_sim`` pytest plugin (``firmware_sim.pytest_plugin``,
registered as a ``pytest11`` entry point; guide: docs/testing-with-simulated-devices.md).
Each ``SimulatedDevice`` is the production agent (policy gate, encrypted outbox, audit
trail, mutual-TLS transport) on a thread, behind a relay that can cut, drop or hang its
link; the backend is an MQTT client with its own certificate that sends the user's app
commands (consent receipts signed with the device's enrolled app key) and checks every
message it sees against docs/asyncapi.yaml.

Against a broker of yours: a ``BrokerTarget`` with its CA, a backend identity (may read
``devices/#`` and write ``devices/<serial>/cmd``) and a folder of device certificates
(``<serial>.pem`` and ``<serial>.key``). Without one: ``local_broker`` starts Mosquitto
with throwaway certificates on a free loopback port and issues device certificates on
demand.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from certs.issue import validate_serial
from certs.pki import Identity, Pki, issue_device_files, provision
from edge.inputs import DiagnosticsSampled, MotionAlarm, StatusDue
from firmware_sim.broker import BrokerTls, start_mosquitto
from firmware_sim.device import SimDevice, diagnostics_values
from firmware_sim.errors import SimError
from firmware_sim.harness import AgentHarness, SimClock, agent_config, prepare_device
from firmware_sim.link import LinkRelay
from firmware_sim.observer import Observed, Observer, client_context
from firmware_sim.runner import RunRecord, run_scenario
from firmware_sim.scenarios import STREET as STREET_STYLES
from firmware_sim.scenarios import get_scenario
from firmware_sim.scene import render_street

__all__ = [
    "BrokerTarget",
    "CommandRefusedError",
    "Observed",
    "SimError",
    "SimFleet",
    "SimulatedDevice",
    "broker_from_files",
    "local_broker",
]

DEFAULT_POLICY = "en-2023-01-10"


class CommandRefusedError(SimError):
    """The device answered a command with ``ok: false`` (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class BrokerTarget:
    """Where the devices connect and who the backend is."""

    host: str
    port: int
    ca: Path
    backend: Identity
    device_identity: Callable[[str], Identity]  # serial -> its client certificate
    serials: Sequence[str] = ()  # serials with a certificate ready ([] : issued on demand)
    # Issued on demand: a new serial each time, for the whole session, so that no test
    # sees the retained messages (birth, availability) of an earlier test's device.
    new_serial: Callable[[], str] | None = None


@contextlib.contextmanager
def local_broker(workdir: Path) -> Iterator[BrokerTarget]:
    """Mosquitto over mutual TLS on a free loopback port, throwaway CA, per-device ACL."""
    pki = provision(workdir / "pki", (), observers=("backend",))
    tls = BrokerTls(pki.ca_cert, pki.server_cert, pki.server_key)
    broker = start_mosquitto(workdir / "broker", tls, observers=("backend",))
    lock = threading.Lock()

    def identity(serial: str) -> Identity:
        with lock:
            if serial not in pki.devices:
                issue_device_files(pki, serial)
            return pki.devices[serial]

    numbers = itertools.count(1)

    def new_serial() -> str:
        with lock:
            return f"SIM{next(numbers):05d}"

    backend = pki.observers["backend"]
    try:
        yield BrokerTarget(
            broker.host, broker.port, pki.ca_cert, backend, identity, new_serial=new_serial
        )
    finally:
        broker.stop()


def broker_from_files(
    address: str, ca: Path, backend_cert: Path, backend_key: Path, device_certs: Path
) -> BrokerTarget:
    """A broker of yours. ``address``: ``HOST:PORT`` (``mqtts://`` allowed);
    ``device_certs``: a folder of ``<serial>.pem`` and ``<serial>.key``.

    Raises:
        SimError: a malformed address or a missing file, said in one line.
    """
    host, _, port = address.removeprefix("mqtts://").rpartition(":")
    if not host or not port.isdigit():
        raise SimError(f"broker address: expected HOST:PORT, got {address!r}")
    for path in (ca, backend_cert, backend_key):
        if not path.is_file():
            raise SimError(f"no such file: {path}")
    if not device_certs.is_dir():
        raise SimError(f"device certificates: not a folder: {device_certs}")
    serials = sorted(p.stem for p in device_certs.glob("*.pem") if p.with_suffix(".key").is_file())

    def identity(serial: str) -> Identity:
        ident = Identity(device_certs / f"{serial}.pem", device_certs / f"{serial}.key")
        if not ident.cert.is_file() or not ident.key.is_file():
            raise SimError(f"no certificate for device {serial} in {device_certs}")
        return ident

    return BrokerTarget(host, int(port), ca, Identity(backend_cert, backend_key), identity, serials)


class SimulatedDevice:
    """One simulated doorbell: its agent, its link, and the backend's view of it."""

    def __init__(self, harness: AgentHarness, relay: LinkRelay, backend: Observer) -> None:
        self.harness = harness
        self.relay = relay
        self.backend = backend
        self.serial = harness.setup.serial
        self._frames = SimDevice(self.serial)
        self._rng = np.random.default_rng([ord(c) for c in self.serial])

    # -- what the device's sensors do ------------------------------------------------------

    def status_report(self) -> None:
        """The row-6 status report (serial, model, firmware, MAC, online status)."""
        self.harness.put(StatusDue(self.harness.clock.now()))

    def alarm(self, plates: int = 1) -> None:
        """A motion alarm whose snapshot shows ``plates`` parked cars (their plates must
        arrive unreadable unless the user consented)."""
        styles = [STREET_STYLES[i % len(STREET_STYLES)] for i in range(plates)]
        scene = render_street(self._rng, 1280, 720, styles)
        self.harness.put(MotionAlarm(self.harness.clock.now(), scene.frame))

    def diagnostics(self) -> None:
        """A diagnostics sample (EN 2023 row 18: consent): sent only while granted, on a
        retained topic that a withdrawal clears."""
        values = diagnostics_values(self._rng)
        self.harness.put(DiagnosticsSampled(self.harness.clock.now(), values))

    def play(self, scenario: str, speed: float | None = None) -> RunRecord:
        """Play one of ``python -m firmware_sim list``'s scenarios, the app's steps sent by
        the backend; returns what happened and what the backend received."""
        plan = get_scenario(scenario)
        pace = speed or max(1.0, plan.duration_s / 3.0)
        return run_scenario(self.harness, self.relay, self.backend, self._frames, plan, pace)

    # -- what the user's app does, through the broker ----------------------------------------

    def command(
        self, name: str, argument: str | bool = "", timeout_s: float = 10.0
    ) -> dict[str, object]:
        """Send one app command (``consent.grant`` is signed with the enrolled app key) and
        return the device's ``command_result``.

        Raises:
            CommandRefusedError: the device said no (``ok: false``), with its reason.
            SimError: no answer within ``timeout_s``.
        """
        payload = self.harness.command_payload(name, argument)
        command_id = json.loads(payload)["id"]
        self.backend.publish(f"devices/{self.serial}/cmd", payload)
        topic = f"devices/{self.serial}/cmd/result"

        def answer(messages: list[Observed]) -> dict[str, object] | None:
            for message in messages:
                if message.topic == topic and message.payload:
                    result = json.loads(message.payload)["data"]["command_result"]
                    if result["id"] == command_id:
                        return dict(result)
            return None

        got = answer(self.backend.wait_for(lambda ms: answer(ms) is not None, timeout_s))
        if got is None:
            raise SimError(f"{self.serial} did not answer {name} within {timeout_s} s")
        if not got["ok"]:
            raise CommandRefusedError(f"{self.serial} refused {name}: {got['reason']}")
        return got

    def grant(self, purpose: str) -> dict[str, object]:
        return self.command("consent.grant", purpose)

    def withdraw(self, purpose: str) -> dict[str, object]:
        return self.command("consent.withdraw", purpose)

    def set_audio(self, on: bool) -> dict[str, object]:
        return self.command("audio.set", on)

    def accept_policy(self, version: str) -> dict[str, object]:
        return self.command("policy.accept", version)

    # -- what the backend received -------------------------------------------------------------

    def messages(self, channel: str | None = None) -> list[Observed]:
        """Everything the backend received from this device (``channel``: ``alarm/event``...)."""
        prefix = f"devices/{self.serial}/"
        wanted = None if channel is None else prefix + channel
        return [
            m
            for m in self.backend.snapshot()
            if m.topic.startswith(prefix) and (wanted is None or m.topic == wanted)
        ]

    def wait_for(self, channel: str, count: int = 1, timeout_s: float = 10.0) -> list[Observed]:
        """Wait until ``count`` messages arrived on ``channel``; return them.

        Raises:
            SimError: fewer arrived within ``timeout_s``.
        """
        topic = f"devices/{self.serial}/{channel}"
        self.backend.wait_for(lambda ms: sum(m.topic == topic for m in ms) >= count, timeout_s)
        got = self.messages(channel)
        if len(got) < count:
            raise SimError(f"{self.serial}: {len(got)} of {count} message(s) on {channel}")
        return got

    def wait_for_record(self, record_id: str, timeout_s: float = 10.0) -> Observed:
        """The message with this envelope ``record_id`` (e.g. one seen in an audit trail)."""
        marker = f'"record_id":"{record_id}"'.encode()

        def found(messages: list[Observed]) -> bool:
            return any(marker in m.payload.replace(b" ", b"") for m in messages)

        for message in self.backend.wait_for(found, timeout_s):
            if marker in message.payload.replace(b" ", b""):
                return message
        raise SimError(f"{self.serial}: no message with record_id {record_id} in {timeout_s} s")

    def wait_drained(self, timeout_s: float = 30.0) -> bool:
        """True once the device has nothing queued or in flight."""
        return self.harness.wait_drained(timeout_s)

    # -- faults -------------------------------------------------------------------------------

    def network_down(self) -> None:
        """Cut the link (connections reset, new ones refused) until ``network_up``."""
        self.relay.down()

    def network_up(self) -> None:
        self.relay.up()

    def drop_connection(self) -> None:
        """Reset the current connection once (the device reconnects)."""
        self.relay.drop()

    def hang(self) -> None:
        """Stop relaying bytes without closing (a dead NAT): keepalives time out."""
        self.relay.hang()

    def resume(self) -> None:
        self.relay.resume()

    def power_cut(self) -> None:
        """The agent dies mid-flight (the broker sends its Will) and boots again."""
        self.harness.kill()
        self.harness.start()

    def stop(self) -> None:
        self.harness.stop()
        self.relay.close()


class SimFleet:
    """Simulated devices against one ``BrokerTarget``, sharing one backend client."""

    def __init__(self, target: BrokerTarget, workdir: Path) -> None:
        self.target = target
        self.workdir = workdir
        context = client_context(target.ca, target.backend.cert, target.backend.key)
        name = f"backend-{workdir.name[-12:]}".replace("_", "-")
        self.backend = Observer(target.host, target.port, context, name, "devices/#").start()
        self.devices: list[SimulatedDevice] = []

    def start(
        self,
        count: int = 1,
        policy: str = DEFAULT_POLICY,
        consents: Sequence[str] = (),
        audio: bool | None = None,
        serials: Sequence[str] = (),
    ) -> list[SimulatedDevice]:
        """Start ``count`` devices (or one per serial in ``serials``), connected, with
        ``consents`` granted through the broker as the app would."""
        chosen = list(serials) or self._serials(count)
        started: list[SimulatedDevice] = []
        for serial in chosen:
            validate_serial(serial)
            relay = LinkRelay(self.target.host, self.target.port)
            ident = self.target.device_identity(serial)
            pki = Pki(ident.cert.parent, self.target.ca, Path(), Path(), Path(), {serial: ident})
            setup = prepare_device(pki, serial, self.workdir / serial)
            config = agent_config(setup, [(relay.host, relay.port)], policy, audio)
            device = SimulatedDevice(AgentHarness(setup, config, SimClock()), relay, self.backend)
            device.harness.start(tick_s=0.2)
            started.append(device)
            self.devices.append(device)
        for device in started:
            if not device.harness.wait_connected(30):
                raise SimError(
                    f"{device.serial} did not connect to {self.target.host}:{self.target.port}"
                )
            for purpose in consents:
                device.grant(purpose)
        return started

    def _serials(self, count: int) -> list[str]:
        if self.target.serials:
            taken = {d.serial for d in self.devices}
            free = [s for s in self.target.serials if s not in taken]
            if len(free) < count:
                raise SimError(f"{count} device(s) wanted, {len(free)} certificate(s) left")
            return free[:count]
        if self.target.new_serial is None:
            raise SimError("this broker target has neither fixed serials nor a way to issue them")
        return [self.target.new_serial() for _ in range(count)]

    def close(self) -> None:
        """Stop every device cleanly, then the backend (``ContractError`` if any message
        it received broke docs/asyncapi.yaml)."""
        stoppers = [threading.Thread(target=d.stop) for d in self.devices]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join(30)
        self.backend.stop()
