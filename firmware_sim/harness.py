"""Shell: runs the real agent for one simulated device, in this process, against a broker.

The agent is the production ``edge.shell.agent.Agent`` with its real transport, store, audit
trail and policy gate; only its clock is simulated (``SimClock``: time can run faster and
jump, as an RTC does). The simulated user's app holds an Ed25519 key whose public half
is the agent's enrolled app key, and sends commands through the broker like a backend.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from certs.pki import Identity, Pki
from edge.config import (
    AgentConfig,
    AudioConfig,
    BrokerConfig,
    DeviceConfig,
    MediaConfig,
    OutboxConfig,
    PolicyConfig,
    TlsConfig,
)
from edge.inputs import DeviceInput
from edge.policy.receipts import ReceiptBody, sign_receipt
from edge.session import Endpoint
from edge.shell.agent import Agent, Stop
from edge.shell.seal_key import provision_keys
from edge.shell.tls import TlsFiles, TlsIdentity
from edge.shell.transport import MqttTransport
from firmware_sim.errors import SimError
from firmware_sim.observer import Observer, client_context


class SimClock:
    """Wall time that runs ``speed`` times faster than real time and can jump (RTC skew)."""

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._mono0 = time.monotonic()
        self.skew = timedelta(0)

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._mono0) * self.speed
        return self._start + timedelta(seconds=elapsed) + self.skew

    def monotonic(self) -> float:
        return time.monotonic()

    def jump(self, seconds: float) -> None:
        self.skew += timedelta(seconds=seconds)


@dataclass
class DeviceSetup:
    """Everything one simulated device needs on disk."""

    serial: str
    workdir: Path
    identity: Identity
    ca_cert: Path
    app_key: Ed25519PrivateKey = field(repr=False)
    app_public_key_path: Path
    # The audit trail's verifier side (edge/seal.py): K0 and the checkpoint signing key's
    # public half, as provisioning hands them to a privacy officer / the backend.
    seal_verify_key: Path = Path()
    signing_public_key: Path = Path()


def prepare_device(pki: Pki, serial: str, workdir: Path) -> DeviceSetup:
    """State folder and the app key pair of a simulated device (the user's enrolment)."""
    workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if serial not in pki.devices:
        raise SimError(f"no certificate for device {serial} in {pki.directory}")
    app_key = Ed25519PrivateKey.generate()
    public = workdir / "app.pub"
    public.write_bytes(
        app_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    verify, signing = provision_keys(workdir / "state", workdir / "verifier")
    ident = pki.devices[serial]
    return DeviceSetup(serial, workdir, ident, pki.ca_cert, app_key, public, verify, signing)


def agent_config(
    setup: DeviceSetup,
    endpoints: list[tuple[str, int]],
    policy: str,
    audio: bool | None = None,
    keepalive_s: int = 5,
    max_inflight: int = 100,
    backoff_max_s: float = 2.0,
) -> AgentConfig:
    return AgentConfig(
        device=DeviceConfig(
            serial=setup.serial,
            model="DB-200",
            firmware_version="1.4.2",
            mac_address="02:00:00:00:00:01",
            state_dir=setup.workdir / "state",
        ),
        policy=PolicyConfig(version=policy, app_public_key=setup.app_public_key_path),
        broker=BrokerConfig(
            endpoints=tuple(Endpoint(h, p) for h, p in endpoints),
            keepalive_s=keepalive_s,
            max_inflight=max_inflight,
            backoff_base_s=0.1,
            backoff_max_s=backoff_max_s,
        ),
        tls=TlsConfig(ca=setup.ca_cert, cert=setup.identity.cert, key=setup.identity.key),
        outbox=OutboxConfig(),
        media=MediaConfig(clip_fps=5, anonymiser_budget_ms=1000),
        audio=AudioConfig(enabled=audio),
    )


class AgentHarness:
    """The real agent on a thread; start, stop cleanly, kill (power cut), restart."""

    def __init__(
        self,
        setup: DeviceSetup,
        config: AgentConfig,
        clock: SimClock | None = None,
        synchronous: str = "FULL",
    ) -> None:
        self.setup = setup
        self.config = config
        self.clock = clock or SimClock()
        self.synchronous = synchronous
        self._identity = TlsIdentity(TlsFiles(config.tls.ca, config.tls.cert, config.tls.key))
        self._identity.context()  # fail now on unusable files
        self.agent: Agent | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0
        self.errors: list[BaseException] = []

    def _factory(self, client_id: str, events: object) -> MqttTransport:
        return MqttTransport(
            client_id,
            self._identity.context,
            events,  # type: ignore[arg-type]
            self.config.broker.keepalive_s,
            self.config.broker.max_inflight,
            connect_timeout_s=3.0,
        )

    def start(self, tick_s: float = 0.05) -> Agent:
        from edge.cli.daemon import load_app_key

        key = load_app_key(self.setup.app_public_key_path)
        agent = Agent(
            self.config, self.clock, self._factory, app_public_key=key, synchronous=self.synchronous
        )
        self.agent = agent

        def loop() -> None:
            try:
                agent.run(tick_s=tick_s)
            except BaseException as err:  # noqa: BLE001 - reported to the test/runner
                self.errors.append(err)

        self._thread = threading.Thread(target=loop, name=f"agent-{self.setup.serial}", daemon=True)
        self._thread.start()
        return agent

    def put(self, value: DeviceInput) -> None:
        if self.agent is not None:
            self.agent.events.put(value)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Clean shutdown: 'stopped' is published, the audit trail flushed."""
        if self.agent is not None and self._thread is not None:
            self.agent.events.put(Stop())
            self._thread.join(timeout_s)
        self.agent = None

    def kill(self) -> None:
        """Power cut: the process dies mid-flight; only committed state survives."""
        agent, thread = self.agent, self._thread
        self.agent = None
        if agent is not None and thread is not None:
            agent.stopped = True
            thread.join(5)
            agent.kill()

    def restart(self) -> Agent:
        return self.start()

    def wait_drained(self, timeout_s: float = 30.0) -> bool:
        """Wait until nothing is waiting: no event unhandled, nothing queued, nothing in flight."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            agent = self.agent
            if agent is not None and agent.is_idle():
                time.sleep(0.05)  # a PUBACK handled in this very batch is committed next
                if agent.is_idle():
                    return True
            time.sleep(0.02)
        return False

    def wait_handled(self, timeout_s: float = 10.0) -> bool:
        """Wait until every input put so far is handled and committed (connected or not)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            agent = self.agent
            if agent is None or agent.events.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def wait_connected(self, timeout_s: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.agent is not None and self.agent.session.connected:
                return True
            time.sleep(0.02)
        return False

    # -- the user's app, through the broker ------------------------------------------------

    def receipt(
        self, purpose: str, policy: str, issued_at: datetime | None = None
    ) -> dict[str, object]:
        self._counter += 1
        body = ReceiptBody(
            self.setup.serial, purpose, policy, issued_at or self.clock.now(), self._counter
        )
        return sign_receipt(self.setup.app_key, body).to_json()

    def command_payload(self, command: str, argument: str | bool) -> bytes:
        body: dict[str, object] = {"id": f"c-{uuid.uuid4().hex[:8]}", "command": command}
        if command == "consent.grant":
            version = self.agent.manifest.version if self.agent else self.config.policy.version
            body["receipt"] = self.receipt(str(argument), version)
        elif command == "consent.withdraw":
            body["purpose"] = argument
        elif command == "audio.set":
            body["on"] = bool(argument)
        elif command == "policy.accept":
            body["version"] = argument
        return json.dumps(body).encode()

    def __enter__(self) -> AgentHarness:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def backend_observer(pki: Pki, host: str, port: int, topic_filter: str = "devices/#") -> Observer:
    """An observer that is also the backend: it sees everything and may send commands."""
    ident = pki.observers["observer"]
    context = client_context(pki.ca_cert, ident.cert, ident.key)
    return Observer(host, port, context, f"observer-{uuid.uuid4().hex[:6]}", topic_filter)
