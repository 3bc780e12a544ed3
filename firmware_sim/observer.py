"""Shell: an independent MQTT observer (a backend's view), subscribed to a filter such as ``#``.

It shares no code with the agent's transport or policy gate on purpose: the leak audit
and the tests must see what really arrived at the broker, not what the agent believes it
sent. It connects with an observer identity (mutual TLS) and records every message.

Every message is also checked against the published contract (docs/asyncapi.yaml, see
``firmware_sim.contract``): an unknown topic or a payload its channel's schema refuses is
recorded in ``violations`` and makes ``stop()`` raise, so each test, demo run and leak audit
that observes the broker also tests the contract. Inbound commands (``cmd``) are exempt:
tests send malformed ones on purpose.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from firmware_sim.contract import ContractError, default_contract
from firmware_sim.errors import SimError


@dataclass(frozen=True, slots=True)
class Observed:
    """One message as the observer received it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int
    received_monotonic: float


def client_context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """A mutual-TLS client context (hostname checked)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cafile=str(ca))
    if cert is not None and key is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


class Observer:
    """Subscribes to ``topic_filter`` and keeps every message in arrival order."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        client_id: str = "observer",
        topic_filter: str = "#",
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        persistent: bool = False,
        check_contract: bool = True,
    ) -> None:
        """``persistent`` (MQTT 3.1.1): a session the broker keeps across reconnects, as a
        real backend has, so QoS 1 messages published while the observer reconnects (a
        cluster node failing over) still reach it."""
        self.messages: list[Observed] = []
        self.violations: list[str] = []
        self.checked: dict[str, int] = {}  # channel suffix -> messages validated
        self._check_contract = check_contract
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._filter = topic_filter
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if protocol is MQTTProtocolVersion.MQTTv5 else not persistent,
        )
        self._client.tls_set_context(context)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._host, self._port = host, port

    def start(self, timeout_s: float = 10.0) -> Observer:
        try:
            rc = self._client.connect(self._host, self._port, keepalive=30)
        except (ssl.SSLError, OSError) as err:
            raise SimError(f"observer cannot connect to {self._host}:{self._port}: {err}") from err
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise SimError(f"observer connect failed: {mqtt.error_string(rc)}")
        self._client.loop_start()
        if not self._ready.wait(timeout_s):
            self.stop()
            raise SimError(f"observer did not subscribe to {self._filter!r} within {timeout_s} s")
        return self

    def stop(self) -> None:
        """Disconnect; raise ContractError if any observed message broke the contract."""
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            violations = list(self.violations)
        if violations:
            shown = "; ".join(violations[:5])
            raise ContractError(f"{len(violations)} message(s) broke docs/asyncapi.yaml: {shown}")

    def __enter__(self) -> Observer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish as the observer (a backend sending a command) and wait for the PUBACK."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=10)
        if not info.is_published():
            raise SimError(f"observer publish to {topic} was not acknowledged")

    def snapshot(self) -> list[Observed]:
        with self._lock:
            return list(self.messages)

    def on_topic(self, topic: str) -> list[Observed]:
        return [m for m in self.snapshot() if m.topic == topic]

    def wait_for(
        self, predicate: Callable[[list[Observed]], bool], timeout_s: float = 10.0
    ) -> list[Observed]:
        """Wait until ``predicate(messages)`` holds; return the messages either way."""
        deadline = time.monotonic() + timeout_s
        while True:
            messages = self.snapshot()
            if predicate(messages) or time.monotonic() > deadline:
                return messages
            time.sleep(0.01)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        if not reason_code.is_failure:
            client.subscribe(self._filter, qos=1)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        item = Observed(
            message.topic,
            bytes(message.payload),
            bool(message.retain),
            message.qos,
            time.monotonic(),
        )
        violation = self._violation(item) if self._check_contract else None
        with self._lock:
            self.messages.append(item)
            if violation is not None:
                self.violations.append(violation)

    def _violation(self, item: Observed) -> str | None:
        contract = default_contract()
        channel = contract.channel_of(item.topic)
        if channel == "cmd":
            return None
        try:
            contract.check(item.topic, item.payload)
        except ContractError as err:
            return str(err)
        key = channel or item.topic  # check() refused unknown topics above
        with self._lock:
            self.checked[key] = self.checked.get(key, 0) + 1
        return None
